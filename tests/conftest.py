import functools
import os
import subprocess
import time

# Tests must not depend on the number of BLAS threads the machine offers: 2 unless the caller exports
# another count (set before numpy is imported, and inherited by subprocesses). It is a default, not a
# choice that hides the 1-thread case: .ci/run runs the suite again with the other of 1 and 2.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Same examples on every run: CI stays reproducible, and no .hypothesis database is written.
settings.register_profile("tinynn", derandomize=True, database=None)
settings.load_profile("tinynn")


@pytest.fixture
def cached_mnist(monkeypatch):
    """The in-process ``tinynn train`` runs of one test read MNIST from disk once, not once a run."""
    from tinynn import cli

    monkeypatch.setattr(cli, "_load_data", functools.lru_cache(maxsize=1)(cli._load_data))


# Loaded by every Python process started with the fixture's environment (through PYTHONPATH): after a
# `tinynn train` run writes its checkpoint of epoch 1, it says so with a file and waits for a Ctrl-C.
_HOLD = """
import os, pathlib, time
import tinynn as tn

_save = tn.callbacks.ModelCheckpoint.on_epoch_end

def on_epoch_end(self, epoch, logs):
    _save(self, epoch, logs)
    pathlib.Path(os.environ["TINYNN_TEST_HOLD"], str(os.getpid())).touch()
    time.sleep(300)  # until the Ctrl-C (KeyboardInterrupt) arrives

tn.callbacks.ModelCheckpoint.on_epoch_end = on_epoch_end
"""


@pytest.fixture
def hold_after_first_checkpoint(tmp_path):
    """``(env, wait)``: subprocesses started with ``env`` hold after their first epoch's checkpoint;
    ``wait(proc, runs)`` returns once ``runs`` of them hold, so a Ctrl-C sent then lands at a known
    point (a checkpoint written, the next epoch not begun) instead of racing the run."""
    hook, held = tmp_path / "hold-hook", tmp_path / "held"
    hook.mkdir()
    held.mkdir()
    (hook / "sitecustomize.py").write_text(_HOLD)
    pythonpath = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": pythonpath, "TINYNN_TEST_HOLD": str(held)}

    def wait(proc: subprocess.Popen, runs: int = 1) -> None:
        deadline = time.monotonic() + 120
        while len(list(held.iterdir())) < runs and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(list(held.iterdir())) == runs, f"{runs} run(s) should hold after their first checkpoint"

    return env, wait
