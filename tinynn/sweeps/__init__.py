"""Sweeps: many ``tinynn train`` runs over a grid of options, on local worker processes or on Ray.

    tinynn sweep --optimizer adam sgdm --lr 1e-3 1e-2 --seed 0 1 2 --epochs 5 --out sweeps/opt
    tn.sweep({"optimizer": ["adam", "sgdm"], "lr": [1e-3, 1e-2], "seed": [0, 1, 2]}, "sweeps/opt", epochs=5)

Every point of the grid is a normal ``tinynn train`` run (``python -m tinynn train ... --out
OUT/runs/NAME``) in its own process, so each run can be evaluated or resumed alone, and a run that
crashes takes no other run with it. Executors (:mod:`.executors`):

- ``process`` (default): up to ``workers`` runs at a time on this machine (default: one per core),
  each with ``threads`` BLAS threads (default: cores // workers), set in the run's environment
  before numpy starts, so the workers never oversubscribe the CPU.
- ``ray``: each run is a Ray task asking for ``threads`` CPUs, on a local Ray (``ray.init()``) or
  the cluster at ``address``. Needs ``pip install "tinynn[ray]"``.

A run computes the same numbers on either executor (same command, same thread count). Rerunning
the same sweep skips finished runs and resumes the others from their last epoch checkpoint
(``tinynn train --resume``); a failed run is recorded with its error and the others go on.

Results in ``OUT`` (:mod:`.report`): ``results.csv`` (one row per run), ``summary.md`` (mean and
spread over seeds, also printed) and ``sweep.png`` (validation accuracy per epoch, mean and min-max
band over seeds, for each optimizer at its best learning rate; final validation accuracy vs
learning rate).

The package is ``tinynn.sweeps`` (grid, runner, executors, report and, here, the orchestration);
its function :func:`sweep` is ``tn.sweep``, so the name ``tinynn.sweep`` always means the function.
The ``tinynn sweep`` command's parser is in :mod:`tinynn.cli`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import runs
from ..checks import check_int
from ..parallel import usable_cores
from .executors import ProcessExecutor, RayExecutor
from .grid import FIXED_OPTIONS, GRID_OPTIONS, expand, normal
from .report import best_per_optimizer, make_row, plot, progress, summarize, write_results
from .runner import read_record, run_one

__all__ = ["GRID_OPTIONS", "FIXED_OPTIONS", "sweep", "expand", "summarize", "plot", "best_per_optimizer", "run_one"]


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
    _check_executor(executor, workers, threads, address)
    out = Path(out)
    runs.check_out(out)
    workers = workers or usable_cores()
    threads = threads or max(1, usable_cores() // workers)
    todo, rows = _plan(points, out)
    ex = ProcessExecutor(workers) if executor == "process" else RayExecutor(address, threads)
    out.mkdir(parents=True, exist_ok=True)
    record = {"grid": grid, "fixed": fixed, "executor": executor, "workers": workers, "threads": threads,
              "address": address}  # fmt: skip
    runs.write_json(out / "sweep.json", normal(record))
    if verbose:
        where = f"{workers} local worker(s)" if executor == "process" else f"Ray ({address or 'local'})"
        print(f"sweep: {len(points)} runs ({len(rows)} finished already, {len(todo)} to run) on {where}, "
              f"{threads} BLAS thread(s) per run; results in {out}", flush=True)
    start = time.perf_counter()
    _execute(ex, todo, rows, points, out, threads, verbose)
    ordered = [rows[run["name"]] for run in points]
    summary, written = write_results(out, ordered)
    if verbose:
        failed = sum(r["status"] != "finished" for r in ordered)
        print(f"\nsweep done in {time.perf_counter() - start:.1f}s: {len(ordered) - failed} finished, "
              f"{failed} failed\n\n{summary}\nwrote {', '.join(str(p) for p in written)}")
    return ordered


def _check_executor(executor: str, workers: int | None, threads: int | None, address: str | None) -> None:
    if executor not in ("process", "ray"):
        raise ValueError(f"sweep: executor must be 'process' or 'ray', got {executor!r}")
    for name, value in (("workers", workers), ("threads", threads)):
        if value is not None:
            check_int(value, name, where="sweep")
    if address is not None and executor != "ray":
        raise ValueError("sweep: address is for executor='ray'")


def _plan(points: list[dict], out: Path) -> tuple[list[tuple[dict, list[str], str]], dict[str, dict]]:
    """``(todo, rows)``: the runs to start, each ``(run, argv, folder)``, and the rows of those finished already.

    A run already in ``out`` is kept if finished, else resumed; a folder of other options is an error.
    """
    todo, rows = [], {}
    for run in points:
        folder = out.absolute() / "runs" / run["name"]  # absolute: a Ray worker may start elsewhere
        options = {k: run[k] for k in runs.RUN_OPTIONS}
        if (folder / runs.RUN_FILE).exists():
            try:
                record = runs.read_run(folder)
            except ValueError as e:
                raise ValueError(f"sweep: {e}; remove {folder} or choose another out") from None
            if normal(record["options"]) != normal(options):
                diff = {k: (record["options"].get(k), v) for k, v in options.items()
                        if normal(record["options"].get(k)) != normal(v)}  # fmt: skip
                raise ValueError(f"sweep: {folder} holds a run with other options (saved, asked: {diff}); "
                                 "choose another out")
            if record.get("status") == "finished":
                rows[run["name"]] = make_row(run, read_record(folder))
                continue
            argv = ["--resume", str(folder), "--quiet"]
        else:
            data = run["data"] and str(Path(run["data"]).expanduser().absolute())
            argv = [*runs.to_argv({**options, "data": data}), "--out", str(folder), "--overwrite", "--quiet"]
        todo.append((run, argv, str(folder)))
    return todo, rows


def _execute(ex, todo: list, rows: dict[str, dict], points: list[dict], out: Path, threads: int,
             verbose: bool) -> None:  # fmt: skip
    """Run ``todo`` on ``ex``, adding each run's row to ``rows`` as it ends. On KeyboardInterrupt (or SIGTERM,
    SIGHUP) every run is stopped, the results so far are written, and the interrupt goes on."""
    pythonpath = str(Path(__file__).resolve().parents[2])  # the workers import this very tinynn
    pending: dict = {}
    try:
        with _stop_signals_interrupt():  # SIGTERM, SIGHUP: stop every run as Ctrl-C does
            pending = {ex.submit(argv, folder, threads, pythonpath): run for run, argv, folder in todo}
            while pending:
                for key, record in ex.wait(pending):
                    run = pending.pop(key)
                    rows[run["name"]] = row = make_row(run, record)
                    if verbose:
                        print(progress(len(rows), len(points), row), flush=True)
            ex.close()
    except KeyboardInterrupt:
        with _stop_signals_interrupt(ignore=True):  # the stop itself is not cut short by a second signal
            ex.stop(pending)
            _wait_unlocked([out / "runs" / run["name"] for run in pending.values()])
            for run in points:
                if run["name"] not in rows:
                    rows[run["name"]] = make_row(run, read_record(out / "runs" / run["name"]))
            write_results(out, [rows[run["name"]] for run in points])
        print(f"sweep interrupted; finished runs and checkpoints are kept. Continue with the same command "
              f"(results so far in {out / 'results.csv'})", file=sys.stderr)
        raise


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
