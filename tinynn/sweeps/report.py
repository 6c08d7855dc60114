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

    The per-epoch curves are small multiples, one panel per optimizer with the others in grey behind
    it, on one shared y axis zoomed to the curves (the range is stated in the title): optimizers
    that end within a few tenths of a point of each other would be one tangle on a single axis.
    The learning-rate panel starts at ``floor`` (lower if a point goes lower) and ends at 1, so a
    gap of 0.2 points there looks like one, not like a chasm.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..fileio import atomic_savefig

    curves = {}  # name -> (color, epochs, accuracies (seeds, epochs), label)
    for i, (name, points) in enumerate(best_per_optimizer(rows).items()):
        n = min(len(r["val_accuracy"]) for r in points)
        acc = np.array([r["val_accuracy"][:n] for r in points])
        label = f"{name} (lr={fmt(points[0]['lr'])}, {len(points)} seed{'s' * (len(points) > 1)})"
        curves[name] = (f"C{i}", np.arange(1, n + 1), acc, label)
    grid_rows, _ = _panel_grid(len(curves))
    fig = Figure(figsize=(14, 1.2 + 2.4 * max(grid_rows, 2)), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subfigures(1, 2, width_ratios=[3, 2])
    _epoch_panels(left, curves)
    _lr_panel(right.subplots(), rows, curves, floor)
    if title:
        fig.suptitle(title)
    return atomic_savefig(fig, path)


def _panel_grid(panels: int) -> tuple[int, int]:
    """``(rows, cols)`` of the per-optimizer panels: up to 3 a row, at least one of each."""
    cols = min(3, max(1, panels))
    return max(1, -(-panels // cols)), cols


def _epoch_panels(left, curves: dict) -> None:
    """One panel per optimizer: its mean curve and seed band, the others' curves in grey behind it."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    axes = left.subplots(*_panel_grid(len(curves)), sharex=True, sharey=True, squeeze=False).ravel()
    for ax, (name, (color, epochs, acc, label)) in zip(axes, curves.items(), strict=False):
        for other, (_, other_epochs, other_acc, _) in curves.items():
            if other != name:
                ax.plot(other_epochs, other_acc.mean(axis=0), "o-", color="0.8", lw=1, ms=2)
        mean = acc.mean(axis=0)
        ax.plot(epochs, mean, "o-", color=color, lw=2, ms=4)
        if len(acc) > 1 and len(epochs) > 1:
            ax.fill_between(epochs, acc.min(axis=0), acc.max(axis=0), color=color, alpha=0.25, lw=0)
        elif len(acc) > 1:  # one epoch: a band of one point is invisible, a bar is not
            ax.errorbar(epochs, mean, yerr=[mean - acc.min(axis=0), acc.max(axis=0) - mean], color=color, capsize=4)
        ax.set_title(label, fontsize=9)
        ax.grid(True, alpha=0.3)
    for ax in axes[len(curves):]:
        ax.set_visible(False)
    zoom = ""
    if curves:
        lo = min(float(acc.min()) for _, _, acc, _ in curves.values())
        hi = max(float(acc.max()) for _, _, acc, _ in curves.values())
        pad = max(0.08 * (hi - lo), 5e-4)
        axes[0].set_ylim(lo - pad, hi + pad)
        zoom = f"; y axis zoomed to {lo:.1%}-{hi:.1%}"
        last = max(len(epochs) for _, epochs, _, _ in curves.values())
        axes[0].set_xlim(0.5, last + 0.5)
        if last <= 12:
            axes[0].set_xticks(range(1, last + 1))  # whole epochs only, also for a 1-epoch sweep
        else:
            axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    left.supxlabel("epoch")
    left.supylabel("validation accuracy")
    left.suptitle(f"Validation accuracy per epoch, each optimizer at its best learning rate\n"
                  f"(mean; band: min-max over seeds; grey: the other optimizers{zoom})", fontsize=11)


def _lr_panel(ax_lr, rows: list[dict], curves: dict, floor: float) -> None:
    """Final validation accuracy vs learning rate, one line per optimizer (min-max bars over seeds)."""
    import numpy as np
    from matplotlib.ticker import PercentFormatter

    lowest = min((float(acc.min()) for _, _, acc, _ in curves.values()), default=1.0)
    by_opt: dict[str, dict[float, list[float]]] = {}
    for r in rows:
        if r["status"] == "finished" and r["final_val_accuracy"] is not None:
            by_opt.setdefault(r["optimizer"], {}).setdefault(r["lr"], []).append(r["final_val_accuracy"])
    for i, (name, per_lr) in enumerate(sorted(by_opt.items())):
        lrs = sorted(per_lr)
        shift = 1.03 ** (i - (len(by_opt) - 1) / 2)  # side by side, not on top of each other, at a shared lr
        mean = np.array([np.mean(per_lr[lr]) for lr in lrs])
        lo_bar = mean - np.array([min(per_lr[lr]) for lr in lrs])
        hi_bar = np.array([max(per_lr[lr]) for lr in lrs]) - mean
        lowest = min(lowest, float(min(min(v) for v in per_lr.values())))
        ax_lr.errorbar(np.array(lrs) * shift, mean, yerr=[lo_bar, hi_bar], fmt="o-", capsize=3, lw=2,
                       color=curves[name][0] if name in curves else None, label=name)
    ax_lr.set_xscale("log")
    shifted = ";\nat a shared lr, optimizers are drawn side by side, 3% apart" if len(by_opt) > 1 else ""
    ax_lr.set_xlabel("learning rate (log scale)")
    ax_lr.set_title(f"Final validation accuracy vs learning rate\n(mean; bars: min-max over seeds{shifted})",
                    fontsize=11)
    ax_lr.set_ylim(max(0.0, min(floor, math.floor(lowest * 20) / 20)), 1.0)
    ax_lr.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax_lr.set_ylabel("validation accuracy")
    ax_lr.grid(True, which="both", alpha=0.3)
    if by_opt:
        ax_lr.legend(fontsize=9, loc="lower right")
