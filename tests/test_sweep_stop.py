"""Stopping a sweep: SIGTERM (timeout, a job scheduler) stops every run on both executors, each recorded as
interrupted and resumable; a run killed outright is recorded as such; a sweep without validation data works."""

from __future__ import annotations

import csv
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tinynn import cli

sweep_module = importlib.import_module("tinynn.sweep")  # (tinynn.sweep is also the name of the function)

posix = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _running_pids(out: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> list[int]:
    """The pids of the ``n`` runs of the sweep in ``out`` once each has started training (from their lock files)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        folders = sorted((out / "runs").glob("*"))
        started = [f for f in folders if (f / "run.json").exists() and (f / ".tinynn.lock").exists()]
        if len(started) == n:
            try:
                if all(cli.read_run(f)["status"] == "running" for f in started):
                    return [int((f / ".tinynn.lock").read_text()) for f in started]
            except ValueError:  # a file being replaced right now
                pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the runs did not start: {proc.communicate()}")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@posix
@pytest.mark.parametrize("executor", ["process", "ray"])
def test_sigterm_stops_every_run_of_a_sweep(tmp_path, executor):
    if executor == "ray":
        pytest.importorskip("ray")
    out = tmp_path / "sweep"
    args = ["sweep", "--seed", "0", "1", "--epochs", "200", "--hidden", "256", "--limit", "6000", "--workers", "2",
            "--executor", executor, "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "tinynn", *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    pids = _running_pids(out, 2, proc, timeout=180)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert "sweep interrupted" in err and "Traceback" not in err, err
    deadline = time.monotonic() + 30
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(p) for p in pids), "a run of the stopped sweep is still training"
    for folder in (out / "runs").glob("*"):
        record = cli.read_run(folder)
        assert record["status"] == "interrupted", record
    with open(out / "results.csv", newline="") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["interrupted", "interrupted"]


@posix
def test_a_killed_run_is_recorded_without_a_made_up_time(tmp_path):
    folder = tmp_path / "run"
    argv = ["--limit", "6000", "--hidden", "256", "--epochs", "200", "--out", str(folder), "--quiet"]
    result = {}
    thread = threading.Thread(target=lambda: result.update(sweep_module.run_one(argv, str(folder), 1)))
    thread.start()
    deadline = time.monotonic() + 120
    while thread.is_alive() and time.monotonic() < deadline:
        try:
            if cli.read_run(folder)["status"] == "running" and (folder / ".tinynn.lock").read_text().strip():
                break
        except (ValueError, OSError):
            pass
        time.sleep(0.1)
    os.kill(int((folder / ".tinynn.lock").read_text()), signal.SIGKILL)
    thread.join(60)
    assert result["status"] == "failed" and result["train_seconds"] is None
    assert result["error"] == "killed by signal 9 SIGKILL"


def test_a_sweep_without_validation_data(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "--seed", "0", "1", "--val-size", "0", "--limit", "300", "--epochs", "1", "--hidden", "16",
            "--workers", "2", "--out", str(out)]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "tinynn", *args], env=ENV, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "(no validation set)" in proc.stdout
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["finished", "finished"] and all(r["test_accuracy"] for r in rows)
    assert not (out / "sweep.png").exists() and "sweep.png" not in proc.stdout  # no curves: no figure, no claim
    assert json.loads((out / "sweep.json").read_text())["fixed"]["val_size"] == 0


@posix
def test_a_run_of_a_killed_sweep_stops_itself(tmp_path):
    """SIGKILL to the sweep (no handler runs): its runs notice their parent is gone, save and stop."""
    out = tmp_path / "sweep"
    args = ["sweep", "--seed", "0", "--epochs", "200", "--hidden", "256", "--limit", "6000", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "tinynn", *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    (pid,) = _running_pids(out, 1, proc)
    proc.kill()
    proc.communicate()
    deadline = time.monotonic() + 60
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(pid), "the run of a killed sweep trains on"
    (folder,) = (out / "runs").glob("*")
    assert cli.read_run(folder)["status"] == "interrupted"
