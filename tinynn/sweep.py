"""Sweeps: many ``tinynn train`` runs over a grid of options, on local worker processes or on Ray.

    tinynn sweep --optimizer adam sgdm --lr 1e-3 1e-2 --seed 0 1 2 --epochs 5 --out sweeps/opt
    tn.sweep({"optimizer": ["adam", "sgdm"], "lr": [1e-3, 1e-2], "seed": [0, 1, 2]}, "sweeps/opt", epochs=5)

Every point of the grid is a normal ``tinynn train`` run (``python -m tinynn train ... --out
OUT/runs/NAME``) in its own process, so each run can be evaluated or resumed alone, and a run that
crashes takes no other run with it. Executors:

- ``process`` (default): up to ``workers`` runs at a time on this machine (default: one per core),
  each with ``threads`` BLAS threads (default: cores // workers), set in the run's environment
  before numpy starts, so the workers never oversubscribe the CPU.
- ``ray``: each run is a Ray task asking for ``threads`` CPUs, on a local Ray (``ray.init()``) or
  the cluster at ``address``. Needs ``pip install "tinynn[ray]"``.

A run computes the same numbers on either executor (same command, same thread count). Rerunning
the same sweep skips finished runs and resumes the others from their last epoch checkpoint
(``tinynn train --resume``); a failed run is recorded with its error and the others go on.

Results in ``OUT``: ``results.csv`` (one row per run), ``summary.md`` (mean and spread over
seeds, also printed) and ``sweep.png`` (validation accuracy per epoch, mean and min-max band over
seeds, for each optimizer at its best learning rate; final validation accuracy vs learning rate).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from . import runs
from .checks import check_int

__all__ = ["GRID_OPTIONS", "FIXED_OPTIONS", "sweep", "expand"]

GRID_OPTIONS = ("model", "hidden", "dropout", "optimizer", "lr", "weight_decay", "scheduler", "epochs",
                "batch_size", "seed")  # fmt: skip
"""Options a sweep may vary (lists of values); each is a ``tinynn train`` option."""

FIXED_OPTIONS = ("val_size", "limit", "data")
"""Options shared by all runs of a sweep (one value)."""

BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")  # fmt: skip
COLUMNS = ("name", *GRID_OPTIONS, "status", "epochs_done", "best_val_accuracy", "final_val_accuracy",
           "test_accuracy", "test_loss", "train_seconds", "error")  # fmt: skip


# --- the grid --------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


_argv = runs.to_argv


def expand(grid: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]], **fixed: Any) -> list[dict]:
    """The points of ``grid``: one dict of ``tinynn train`` options per point, checked by the train parser.

    ``grid`` maps option names (``GRID_OPTIONS``, with ``_`` as in Python: ``batch_size``) to lists of
    values, or is a list of such dicts (the runs of each, in order: e.g. one learning-rate list per
    optimizer). ``fixed`` sets ``FIXED_OPTIONS``. Each run gets a ``name`` from its grid values.
    Raises ValueError for unknown options, empty lists and values ``tinynn train`` refuses.
    """

    grids = [grid] if isinstance(grid, Mapping) else list(grid)
    if not grids:
        raise ValueError("sweep: the grid is empty (no options to vary)")
    unknown = sorted(set(fixed) - set(FIXED_OPTIONS))
    if unknown:
        raise ValueError(f"sweep: unknown fixed option(s) {unknown}; fixed options are {list(FIXED_OPTIONS)}")
    keys: list[str] = []
    for g in grids:
        if not isinstance(g, Mapping):
            raise ValueError(f"sweep: a grid is a dict of option -> list of values, got {g!r}")
        unknown = sorted(set(g) - set(GRID_OPTIONS))
        if unknown:
            raise ValueError(f"sweep: unknown option(s) {unknown}; a sweep varies {list(GRID_OPTIONS)}")
        for key, values in g.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
                raise ValueError(f"sweep: {key} needs a non-empty list of values, got {values!r}")
            if key not in keys:
                keys.append(key)
    points, names = [], set()
    for g in grids:
        for point in itertools.product(*g.values()):
            options = dict(zip(g, point, strict=True))
            try:
                args = runs.parse_run_options(_argv({**options, **fixed}))
            except ValueError as e:
                raise ValueError(f"sweep: run {options} is invalid: {e}") from None
            run = {k: getattr(args, k) for k in runs.RUN_OPTIONS}
            run["data"] = args.data
            run["name"] = "_".join(f"{k.replace('_', '-')}={_fmt(run[k])}" for k in keys)
            if run["name"] not in names:  # a point listed twice is run once
                names.add(run["name"])
                points.append(run)
    return points


# --- one run (in a worker thread or a Ray task) ----------------------------------------------


def blas_env(threads: int) -> dict[str, str]:
    """Environment variables giving numpy's BLAS ``threads`` threads (read once, when numpy starts)."""
    return {var: str(threads) for var in BLAS_VARS}


_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()
_stopping = threading.Event()  # set on Ctrl-C: a run about to start does not


def run_one(argv: list[str], folder: str, threads: int, pythonpath: str | None = None) -> dict:
    """Run ``python -m tinynn train ARGV`` with ``threads`` BLAS threads; return its record.

    The record is the run's ``run.json`` plus its validation accuracy per epoch, the exit code
    and the error (last line of stderr) if it failed, so the caller needs no access to the folder
    (a Ray task may run on another machine).
    """
    env = {**os.environ, **blas_env(threads), "PYTHONUNBUFFERED": "1", "TINYNN_STOP_WITH_PARENT": str(os.getpid())}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    with _live_lock:
        if _stopping.is_set():
            return {**_read_record(Path(folder)), "status": "interrupted", "error": "not started"}
        # A session of its own: Ctrl-C reaches the sweep only, which passes it on once to each run.
        proc = subprocess.Popen([sys.executable, "-m", "tinynn", "train", *argv], env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        _live.add(proc)
    try:
        while True:  # in short waits: Ray's cancel raises KeyboardInterrupt only between Python instructions
            try:
                _, err = proc.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:  # Ray's cancel, or Ctrl-C: let the run save its state and say so
        proc.send_signal(signal.SIGINT)
        proc.communicate()
        raise
    finally:
        with _live_lock:
            _live.discard(proc)
    record = _read_record(Path(folder))
    record["returncode"] = proc.returncode
    if proc.returncode != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        if record.get("status") == "running":  # killed before it could record its end: its time is unknown
            record["train_seconds"] = None
        record["status"] = "interrupted" if proc.returncode == 130 else "failed"
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name if -proc.returncode in signal.valid_signals() else ""
            lines.append(f"killed by signal {-proc.returncode} {name}".rstrip())
        record["error"] = lines[-1] if lines else f"exit code {proc.returncode}"
    return record


def _read_record(folder: Path) -> dict:

    try:
        record = runs.read_run(folder)
    except ValueError:
        record = {"status": "not started"}
    try:
        history = json.loads((folder / runs.HISTORY).read_text())["history"]
        record["val_accuracy"] = history.get("val_accuracy", [])
    except (OSError, ValueError, KeyError, TypeError):
        record["val_accuracy"] = []
    return record


# --- executors -------------------------------------------------------------------------------


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class _ProcessExecutor:
    def __init__(self, workers: int) -> None:
        _stopping.clear()
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="tinynn-sweep")

    def submit(self, *args):
        return self.pool.submit(run_one, *args)

    def wait(self, pending):
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        return [(f, f.result()) for f in done]

    def stop(self, pending) -> None:
        for f in pending:
            f.cancel()
        with _live_lock:
            _stopping.set()
            for proc in _live:
                proc.send_signal(signal.SIGINT)  # each run saves its state and exits
        self.pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _check_address(address: str) -> None:
    """Fail fast (seconds, not minutes) when a Ray address cannot be reached."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"sweep: Ray address {address!r} should be HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ValueError(f"sweep: cannot reach the Ray cluster at {address} ({e.strerror or e}); is "
                         f"'ray start --head' running there, and the port open?") from None


class _RayExecutor:
    def __init__(self, address: str | None, threads: int) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError('sweep: --executor ray needs Ray: pip install "tinynn[ray]"') from None
        self.ray = ray
        if address:
            _check_address(address)
        self.started = not ray.is_initialized()
        if self.started:
            kwargs = {"address": address} if address else {"num_cpus": _cores()}
            try:
                ray.init(**kwargs, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ...
                raise ValueError(f"sweep: cannot start or join Ray ({type(e).__name__}: {e})") from None
        self.task = ray.remote(num_cpus=threads, max_retries=0)(run_one)

    def submit(self, *args):
        return self.task.remote(*args)

    def wait(self, pending):
        done, _ = self.ray.wait(list(pending), num_returns=1)
        return [(ref, self.ray.get(ref)) for ref in done]

    def stop(self, pending) -> None:
        for ref in pending:
            self.ray.cancel(ref)  # a running task gets KeyboardInterrupt and passes SIGINT on to its run
        for ref in pending:
            try:
                self.ray.get(ref, timeout=60)
            except Exception:  # noqa: BLE001, S110 - cancelled tasks raise; their runs record themselves
                pass
        self.close()

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


# --- the sweep -------------------------------------------------------------------------------


def sweep(
    grid: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]],
    out: str | os.PathLike = "sweeps/sweep",
    *,
    executor: str = "process",
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    verbose: bool = True,
    **fixed: Any,
) -> list[dict]:
    """Run every point of ``grid`` as a ``tinynn train`` run in ``out/runs/NAME``; return one row per run.

    ``grid``: option -> list of values (see :func:`expand`), e.g.
    ``{"optimizer": ["adam", "sgdm"], "lr": [1e-3, 1e-2], "seed": [0, 1, 2]}``; options left out
    take ``tinynn train``'s defaults. ``fixed``: ``val_size``, ``limit``, ``data``.
    ``executor``: ``"process"`` (local processes, ``workers`` at a time, default one per core) or
    ``"ray"`` (Ray tasks, on the cluster at ``address`` or a local Ray). ``threads``: BLAS threads
    per run (default cores // workers). Everything is checked before the first run starts: a bad
    option, an empty grid, an unreachable Ray address or an unusable ``out`` raise ValueError.

    Rows (also in ``out/results.csv``) hold the options, ``status`` (finished, failed, interrupted),
    best and final validation accuracy, test accuracy, training seconds and the error of a failed run.
    Interrupted (KeyboardInterrupt): running runs save their checkpoint, results so far are written,
    and the same call continues the sweep.
    """

    points = expand(grid, **fixed)
    if executor not in ("process", "ray"):
        raise ValueError(f"sweep: executor must be 'process' or 'ray', got {executor!r}")
    for name, value in (("workers", workers), ("threads", threads)):
        if value is not None:
            check_int(value, name, where="sweep")
    if address is not None and executor != "ray":
        raise ValueError("sweep: address is for executor='ray'")
    out = Path(out)
    runs.check_out(out)
    cores = _cores()
    workers = workers or cores
    threads = threads or max(1, cores // workers)

    # Runs already in out: finished ones are kept, others resumed; a folder of other options is an error.
    todo, rows = [], {}
    for run in points:
        folder = out.absolute() / "runs" / run["name"]  # absolute: a Ray worker may start elsewhere
        options = {k: run[k] for k in runs.RUN_OPTIONS}
        if (folder / runs.RUN_FILE).exists():
            try:
                record = runs.read_run(folder)
            except ValueError as e:
                raise ValueError(f"sweep: {e}; remove {folder} or choose another out") from None
            if _normal(record["options"]) != _normal(options):
                diff = {k: (record["options"].get(k), v) for k, v in options.items()
                        if _normal(record["options"].get(k)) != _normal(v)}  # fmt: skip
                raise ValueError(f"sweep: {folder} holds a run with other options (saved, asked: {diff}); "
                                 "choose another out")
            if record.get("status") == "finished":
                rows[run["name"]] = _row(run, _read_record(folder))
                continue
            argv = ["--resume", str(folder), "--quiet"]
        else:
            data = run["data"] and str(Path(run["data"]).expanduser().absolute())
            argv = [*_argv({**options, "data": data}), "--out", str(folder), "--overwrite", "--quiet"]
        todo.append((run, argv, str(folder)))

    pythonpath = str(Path(__file__).resolve().parents[1])  # the workers import this very tinynn
    ex = _ProcessExecutor(workers) if executor == "process" else _RayExecutor(address, threads)
    out.mkdir(parents=True, exist_ok=True)
    _write_sweep_json(out, grid, fixed, executor, workers, threads, address)
    if verbose:
        where = f"{workers} local worker(s)" if executor == "process" else f"Ray ({address or 'local'})"
        print(f"sweep: {len(points)} runs ({len(rows)} finished already, {len(todo)} to run) on {where}, "
              f"{threads} BLAS thread(s) per run; results in {out}", flush=True)
    start = time.perf_counter()
    pending: dict = {}
    try:
        with _stop_signals_interrupt():  # SIGTERM, SIGHUP: stop every run as Ctrl-C does
            pending = {ex.submit(argv, folder, threads, pythonpath): run for run, argv, folder in todo}
            while pending:
                for key, record in ex.wait(pending):
                    run = pending.pop(key)
                    rows[run["name"]] = row = _row(run, record)
                    if verbose:
                        print(_progress(len(rows), len(points), row), flush=True)
            ex.close()
    except KeyboardInterrupt:
        with _stop_signals_interrupt(ignore=True):  # the stop itself is not cut short by a second signal
            ex.stop(pending)
            _wait_unlocked([out / "runs" / run["name"] for run in pending.values()])
            for run in points:
                if run["name"] not in rows:
                    rows[run["name"]] = _row(run, _read_record(out / "runs" / run["name"]))
            ordered = [rows[run["name"]] for run in points]
            _write_results(out, ordered)
        print(f"sweep interrupted; finished runs and checkpoints are kept. Continue with the same command "
              f"(results so far in {out / 'results.csv'})", file=sys.stderr)
        raise
    ordered = [rows[run["name"]] for run in points]
    summary, written = _write_results(out, ordered)
    if verbose:
        failed = sum(r["status"] != "finished" for r in ordered)
        print(f"\nsweep done in {time.perf_counter() - start:.1f}s: {len(ordered) - failed} finished, "
              f"{failed} failed\n\n{summary}\nwrote {', '.join(str(p) for p in written)}")
    return ordered


def _wait_unlocked(folders: list[Path], timeout: float = 60.0) -> None:
    """Wait until no process holds the lock of these run folders (the stopped runs have saved and exited)."""
    try:
        import fcntl
    except ImportError:
        return
    deadline = time.monotonic() + timeout
    for folder in folders:
        while time.monotonic() < deadline:
            try:
                fd = os.open(folder / runs.LOCK_FILE, os.O_RDONLY)
            except OSError:
                break  # no lock file: nobody holds the folder
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.1)
            finally:
                os.close(fd)


@contextlib.contextmanager
def _stop_signals_interrupt(ignore: bool = False):
    """While the block runs, SIGTERM and SIGHUP raise KeyboardInterrupt (or, with ``ignore``, are ignored;
    SIGINT too): a sweep stopped by ``timeout``, a job scheduler or a closed terminal stops its runs, which
    live in sessions of their own and get no signal from the terminal. Main thread only (elsewhere: no change)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    names = ("SIGTERM", "SIGHUP", *(("SIGINT",) if ignore else ()))
    wanted = [getattr(signal, n) for n in names if hasattr(signal, n)]
    saved = {s: signal.signal(s, signal.SIG_IGN if ignore else interrupt) for s in wanted}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def _normal(value: Any) -> Any:
    """Options compared as JSON sees them (tuples are lists, 1e-3 == 0.001)."""
    return json.loads(json.dumps(value))


def _row(run: dict, record: dict) -> dict:
    row = {k: run[k] for k in GRID_OPTIONS}
    row.update(name=run["name"], status=record.get("status", "not started"), epochs_done=record.get("epochs_done", 0))
    for key in ("best_val_accuracy", "final_val_accuracy", "test_accuracy", "test_loss", "train_seconds", "error"):
        row[key] = record.get(key)
    row["val_accuracy"] = record.get("val_accuracy", [])
    return row


def _progress(done: int, total: int, row: dict) -> str:
    if row["status"] == "finished":
        score = (f"final val accuracy {row['final_val_accuracy']:.4f}" if row["final_val_accuracy"] is not None
                 else f"test accuracy {row['test_accuracy']:.4f} (no validation set)")  # fmt: skip
        what = f"{score}, {row['train_seconds']:.1f}s"
    else:
        what = f"{row['status'].upper()}: {row['error']}"
    return f"[{done}/{total}] {row['name']}: {what}"


def _write_sweep_json(out: Path, grid, fixed, executor, workers, threads, address) -> None:

    record = {"grid": grid, "fixed": fixed, "executor": executor, "workers": workers, "threads": threads,
              "address": address}  # fmt: skip
    runs.write_json(out / "sweep.json", _normal(record))


def _write_results(out: Path, rows: list[dict]) -> tuple[str, list[Path]]:
    """Write results.csv, summary.md and (when a run has validation accuracies) sweep.png; the summary and the
    files written."""
    from .fileio import atomic_write

    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (_fmt(v) if isinstance(v, (list, tuple)) else v) for k, v in row.items()})
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
    return [k for k in GRID_OPTIONS if k != "seed" and len({_fmt(r[k]) for r in rows}) > 1]


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    """Rows by configuration (every grid option but the seed)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(_fmt(r[k]) for k in GRID_OPTIONS if k != "seed"), []).append(r)
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
            "| " + " | ".join(_fmt(group[0][k]) for k in keys)
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
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    from .fileio import atomic_savefig

    best = best_per_optimizer(rows)
    curves = {}  # name -> (color, epochs, accuracies (seeds, epochs), label)
    for i, (name, points) in enumerate(best.items()):
        n = min(len(r["val_accuracy"]) for r in points)
        acc = np.array([r["val_accuracy"][:n] for r in points])
        label = f"{name} (lr={_fmt(points[0]['lr'])}, {len(points)} seed{'s' * (len(points) > 1)})"
        curves[name] = (f"C{i}", np.arange(1, n + 1), acc, label)
    cols = min(3, max(1, len(curves)))
    grid_rows = max(1, -(-len(curves) // cols))
    fig = Figure(figsize=(14, 1.2 + 2.4 * max(grid_rows, 2)), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subfigures(1, 2, width_ratios=[3, 2])
    axes = left.subplots(grid_rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
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

    ax_lr = right.subplots()
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
    bottom = min(floor, math.floor(lowest * 20) / 20)
    ax_lr.set_ylim(max(0.0, bottom), 1.0)
    ax_lr.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax_lr.set_ylabel("validation accuracy")
    ax_lr.grid(True, which="both", alpha=0.3)
    if by_opt:
        ax_lr.legend(fontsize=9, loc="lower right")
    if title:
        fig.suptitle(title)
    return atomic_savefig(fig, path)


# --- the command -----------------------------------------------------------------------------


def add_parser(sub) -> argparse.ArgumentParser:
    """Add ``tinynn sweep`` to the ``tinynn`` command's subparsers."""
    from . import optim, zoo

    d = runs.DEFAULTS
    sp = sub.add_parser(
        "sweep",
        help="train a grid of runs (optimizers x learning rates x seeds ...) on local cores or Ray",
        description="Run 'tinynn train' for every combination of the values given (each option takes one or "
        "more values), each run in OUT/runs/NAME, on local worker processes or a Ray cluster. Writes "
        "results.csv, summary.md and sweep.png into --out. Rerun the same command to resume an interrupted "
        "sweep: finished runs are skipped, the others continue from their last epoch.",
    )
    g = sp.add_argument_group("grid (each takes one or more values; options not given keep tinynn train's "
                              "defaults)")
    g.add_argument("--model", nargs="+", choices=sorted(zoo.NETS), default=None)
    g.add_argument("--hidden", nargs="+", type=_widths, default=None, metavar="N[,N...]",
                   help="hidden layer sizes, comma-separated per value: --hidden 256,128 64")
    g.add_argument("--dropout", nargs="+", metavar="P", type=runs.float_in(0, 0.95), default=None)
    g.add_argument("--optimizer", nargs="+", choices=optim.names(), default=None)
    g.add_argument("--lr", nargs="+", metavar="LR", type=runs.float_in(0, 10, lo_open=True), default=None)
    g.add_argument("--weight-decay", nargs="+", metavar="WD", type=runs.float_in(0, 1), default=None)
    g.add_argument("--scheduler", nargs="+", choices=runs.SCHEDULERS, default=None)
    g.add_argument("--epochs", nargs="+", metavar="N", type=runs.positive_int, default=None)
    g.add_argument("--batch-size", nargs="+", metavar="N", type=runs.positive_int, default=None)
    g.add_argument("--seed", nargs="+", metavar="S", type=runs.nonneg_int, default=None)
    f = sp.add_argument_group("shared by all runs")
    f.add_argument("--val-size", type=runs.nonneg_int, default=d["val_size"], metavar="N",
                   help=f"training images held out for validation (default: {d['val_size']})")
    f.add_argument("--limit", type=runs.positive_int, default=None, metavar="N",
                   help="train on the first N training images only")
    f.add_argument("--data", metavar="DIR", default=None, help="folder holding the four MNIST files")
    e = sp.add_argument_group("where the runs go")
    e.add_argument("--out", default="sweeps/sweep", metavar="DIR", help="sweep folder (default: sweeps/sweep)")
    e.add_argument("--executor", choices=("process", "ray"), default="process",
                   help="local worker processes (default), or Ray tasks (pip install 'tinynn[ray]')")
    e.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="Ray cluster to join (from 'ray start --head'); default: start a local Ray")
    e.add_argument("--workers", type=runs.positive_int, default=None, metavar="N",
                   help="runs at a time with --executor process (default: one per core)")
    e.add_argument("--threads", type=runs.positive_int, default=None, metavar="N",
                   help="BLAS threads per run (default: cores // workers)")
    sp.set_defaults(run=_command)
    return sp


def _widths(text: str) -> list[int]:

    return [runs.positive_int(part) for part in text.split(",")]


def _command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    # Only the options given vary (and name the runs); the others keep tinynn train's defaults.
    grid = {k: getattr(args, k) for k in GRID_OPTIONS if getattr(args, k) is not None}
    if not grid:
        parser.error("sweep: give at least one option to vary, e.g. --optimizer adam sgdm --seed 0 1 2")
    fixed = {k: getattr(args, k) for k in FIXED_OPTIONS if getattr(args, k) is not None}
    try:
        rows = sweep(grid, args.out, executor=args.executor, workers=args.workers, threads=args.threads,
                     address=args.address, **fixed)  # fmt: skip
    except ValueError as e:
        parser.error(str(e).removeprefix("sweep: "))
    if any(r["status"] != "finished" for r in rows):
        failed = sum(r["status"] != "finished" for r in rows)
        results = Path(args.out) / "results.csv"
        raise runs.CommandError(f"{failed} of {len(rows)} runs failed (see the error column of {results})")
