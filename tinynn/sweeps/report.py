"""What a sweep reports: a row per run, ``results.csv``, ``summary.md`` (mean ± spread over seeds), ``sweep.png``."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from ..fileio import atomic_write
from .grid import GRID_OPTIONS, fmt

COLUMNS = ("name", *GRID_OPTIONS, "status", "epochs_done", "best_val_accuracy", "final_val_accuracy",
           "test_accuracy", "test_loss", "train_seconds", "error")  # fmt: skip


def make_row(run: dict, record: dict) -> dict:
    """The results row of ``run`` (a point of the grid) from the record its run left."""
    row = {k: run[k] for k in GRID_OPTIONS}
    row.update(name=run["name"], status=record.get("status", "not started"), epochs_done=record.get("epochs_done", 0))
    for key in ("best_val_accuracy", "final_val_accuracy", "test_accuracy", "test_loss", "train_seconds", "error"):
        row[key] = record.get(key)
    row["val_accuracy"] = record.get("val_accuracy", [])
    return row


def progress(done: int, total: int, row: dict) -> str:
    """The line printed when a run ends: ``[3/12] NAME: final val accuracy 0.9712, 41.3s``."""
    if row["status"] == "finished":
        score = (f"final val accuracy {row['final_val_accuracy']:.4f}" if row["final_val_accuracy"] is not None
                 else f"test accuracy {row['test_accuracy']:.4f} (no validation set)")  # fmt: skip
        what = f"{score}, {row['train_seconds']:.1f}s"
    else:
        what = f"{row['status'].upper()}: {row['error']}"
    return f"[{done}/{total}] {row['name']}: {what}"


def write_results(out: Path, rows: list[dict]) -> tuple[str, list[Path]]:
    """Write results.csv, summary.md and (when a run has validation accuracies) sweep.png; the summary and the
    files written."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (fmt(v) if isinstance(v, (list, tuple)) else v) for k, v in row.items()})
    data = buf.getvalue().encode()
    atomic_write(out / "results.csv", lambda f: f.write(data))
    summary = summarize(rows)
    text = summary.encode()
    atomic_write(out / "summary.md", lambda f: f.write(text + b"\n"))
    written = [out / "results.csv", out / "summary.md"]
    if any(r["val_accuracy"] for r in rows):
        written.append(plot(rows, out / "sweep.png"))
    return summary, written


def _varying(rows: list[dict]) -> list[str]:
    return [k for k in GRID_OPTIONS if k != "seed" and len({fmt(r[k]) for r in rows}) > 1]


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    """Rows by configuration (every grid option but the seed)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(fmt(r[k]) for k in GRID_OPTIONS if k != "seed"), []).append(r)
    return groups


def _stats(values: list[float]) -> str:
    if not values:
        return "-"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.2%}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.2%} ± {sd:.2%}"


def summarize(rows: list[dict]) -> str:
    """A Markdown table: one line per configuration, mean ± standard deviation over its seeds, best first."""
    keys = _varying(rows) or ["optimizer", "lr"]
    lines = [
        "| " + " | ".join(k.replace("_", " ") for k in keys)
        + " | seeds | failed | best val accuracy | final val accuracy | test accuracy | train time (s) |",
        "|" + "---|" * len(keys) + "---:|---:|---:|---:|---:|---:|",
    ]

    def col(group: list[dict], key: str) -> list[float]:
        return [r[key] for r in group if r["status"] == "finished" and r[key] is not None]

    def score(group: list[dict]) -> float:
        acc = col(group, "final_val_accuracy")
        return sum(acc) / len(acc) if acc else -1.0

    for group in sorted(_groups(rows).values(), key=score, reverse=True):
        ok = [r for r in group if r["status"] == "finished"]
        secs = col(group, "train_seconds")
        lines.append(
            "| " + " | ".join(fmt(group[0][k]) for k in keys)
            + f" | {len(group)} | {len(group) - len(ok)} | {_stats(col(group, 'best_val_accuracy'))} "
            f"| {_stats(col(group, 'final_val_accuracy'))} | {_stats(col(group, 'test_accuracy'))} "
            + (f"| {sum(secs) / len(secs):.1f} |" if secs else "| - |")
        )
    return "\n".join(lines)


def best_per_optimizer(rows: list[dict]) -> dict[str, list[dict]]:
    """For each optimizer, the runs (all seeds) of its configuration with the best mean final validation accuracy."""
    best: dict[str, tuple[float, list[dict]]] = {}
    for group in _groups(rows).values():
        ok = [r for r in group if r["status"] == "finished" and r["val_accuracy"]]
        if not ok:
            continue
        score = sum(r["final_val_accuracy"] for r in ok) / len(ok)
        name = group[0]["optimizer"]
        if name not in best or score > best[name][0]:
            best[name] = (score, ok)
    return {name: group for name, (_, group) in sorted(best.items(), key=lambda kv: -kv[1][0])}


def plot(rows: list[dict], path: str | os.PathLike, title: str | None = None, floor: float = 0.9) -> Path:
    """Validation accuracy per epoch (mean, min-max band over seeds) per optimizer at its best configuration,
    and final validation accuracy vs learning rate per optimizer.

    The accuracy axes start at ``floor`` (lower if a curve goes lower) and end at 1, so a gap of
    0.2 points looks like one, not like a chasm.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from ..fileio import atomic_savefig

    fig = Figure(figsize=(13, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_epoch, ax_lr = fig.subplots(1, 2)
    colors = {}
    lowest = 1.0
    for i, (name, points) in enumerate(best_per_optimizer(rows).items()):
        color = colors[name] = f"C{i}"
        n = min(len(r["val_accuracy"]) for r in points)
        acc = np.array([r["val_accuracy"][:n] for r in points])
        epochs = np.arange(1, n + 1)
        mean = acc.mean(axis=0)
        lowest = min(lowest, float(acc.min()))
        ax_epoch.plot(epochs, mean, "o-", color=color, lw=2, ms=4,
                      label=f"{name} (lr={fmt(points[0]['lr'])}, {len(points)} seed{'s' * (len(points) > 1)})")
        if len(points) > 1:
            ax_epoch.fill_between(epochs, acc.min(axis=0), acc.max(axis=0), color=color, alpha=0.2, lw=0)
    ax_epoch.set_xlabel("epoch")
    ax_epoch.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_epoch.set_title("Validation accuracy per epoch\n(best learning rate per optimizer; band: min-max over seeds)")
    by_opt: dict[str, dict[float, list[float]]] = {}
    for r in rows:
        if r["status"] == "finished" and r["final_val_accuracy"] is not None:
            by_opt.setdefault(r["optimizer"], {}).setdefault(r["lr"], []).append(r["final_val_accuracy"])
    for i, (name, per_lr) in enumerate(sorted(by_opt.items())):
        lrs = sorted(per_lr)
        shift = 1.03 ** (i - (len(by_opt) - 1) / 2)  # side by side, not on top of each other, at a shared lr
        mean = np.array([np.mean(per_lr[lr]) for lr in lrs])
        lo = mean - np.array([min(per_lr[lr]) for lr in lrs])
        hi = np.array([max(per_lr[lr]) for lr in lrs]) - mean
        lowest = min(lowest, float(min(min(v) for v in per_lr.values())))
        ax_lr.errorbar(np.array(lrs) * shift, mean, yerr=[lo, hi], fmt="o-", capsize=3, lw=2, color=colors.get(name),
                       label=name)  # fmt: skip
    ax_lr.set_xscale("log")
    ax_lr.set_xlabel("learning rate (log scale)")
    ax_lr.set_title("Final validation accuracy vs learning rate\n(mean; bars: min-max over seeds)")
    bottom = min(floor, math.floor(lowest * 20) / 20)
    for ax in (ax_epoch, ax_lr):
        ax.set_ylim(max(0.0, bottom), 1.0)
        ax.set_ylabel("validation accuracy")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=9, loc="lower right")
    if title:
        fig.suptitle(title)
    return atomic_savefig(fig, path)
