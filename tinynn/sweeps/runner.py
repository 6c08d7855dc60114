"""One run of a sweep: ``python -m tinynn train ...`` in a process of its own, and the record it leaves.

Used by both executors (in a worker thread, or in a Ray task on any machine). The runs in flight
on this machine are known, so a stopped sweep can pass the stop on to each (:func:`stop_all`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .. import runs

BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")  # fmt: skip

_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()
_stopping = threading.Event()  # set on Ctrl-C: a run about to start does not


def blas_env(threads: int) -> dict[str, str]:
    """Environment variables giving numpy's BLAS ``threads`` threads (read once, when numpy starts)."""
    return {var: str(threads) for var in BLAS_VARS}


def allow_starts() -> None:
    """Runs may start again (a new sweep after a stopped one)."""
    _stopping.clear()


def stop_all() -> None:
    """No run starts any more; every run in flight gets SIGINT (it writes its status and exits)."""
    with _live_lock:
        _stopping.set()
        for proc in _live:
            proc.send_signal(signal.SIGINT)


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
            return {**read_record(Path(folder)), "status": "interrupted", "error": "not started"}
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
    except KeyboardInterrupt:  # Ray's cancel, or Ctrl-C: let the run write its status and say so
        proc.send_signal(signal.SIGINT)
        proc.communicate()
        raise
    finally:
        with _live_lock:
            _live.discard(proc)
    record = read_record(Path(folder))
    record["returncode"] = proc.returncode
    if proc.returncode != 0:
        _record_failure(record, proc.returncode, err)
    return record


def _record_failure(record: dict, returncode: int, err: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    if record.get("status") == "running":  # killed before it could record its end: its time is unknown
        record["train_seconds"] = None
    record["status"] = "interrupted" if returncode == 130 else "failed"
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        lines.append(f"killed by signal {-returncode} {name}".rstrip())
    record["error"] = lines[-1] if lines else f"exit code {returncode}"


def read_record(folder: Path) -> dict:
    """The run's ``run.json`` (or ``{"status": "not started"}``) and its ``val_accuracy`` per epoch."""
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
