"""Sweeps: a tiny grid on MNIST subsets with the process executor and with Ray (when installed), equal
results across executors, resume after an interrupt, a failing run recorded, bad input refused up front."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import pytest

import tinynn as tn
from tinynn import cli

FIXED = {"limit": 500, "val_size": 100}
GRID = [
    {"optimizer": ["adam"], "lr": [0.01], "seed": [0, 1], "hidden": [[16]], "epochs": [1], "batch_size": [32]},
    {"optimizer": ["sgdm"], "lr": [0.1], "seed": [0, 1], "hidden": [[16]], "epochs": [1], "batch_size": [32]},
    # diverges: weight decay 1 at lr 10 multiplies the weights by -9 per step
    {"optimizer": ["sgd"], "lr": [10.0], "weight_decay": [1.0], "batch_size": [10], "scheduler": ["none"],
     "hidden": [[16]], "epochs": [2]},
]  # fmt: skip
NUMBERS = ("status", "epochs_done", "best_val_accuracy", "final_val_accuracy", "test_accuracy", "test_loss")


@pytest.fixture(scope="module")
def process_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "process"
    # One BLAS thread per run whatever the core count, as in the runs compared with it below: equal numbers
    # are expected bit for bit only where the same code path runs (same thread count).
    return out, tn.sweep(GRID, out, workers=2, threads=1, verbose=False, **FIXED)


def test_process_sweep_runs_every_point_and_records_the_failure(process_sweep):
    out, rows = process_sweep
    assert [r["optimizer"] for r in rows] == ["adam", "adam", "sgdm", "sgdm", "sgd"]
    ok, failed = rows[:4], rows[4]
    assert all(r["status"] == "finished" for r in ok), [r["error"] for r in ok]
    assert all(0.2 < r["final_val_accuracy"] <= 1 and 0.2 < r["test_accuracy"] <= 1 for r in ok)
    assert ok[0]["test_loss"] != ok[1]["test_loss"]  # the seeds differ
    assert failed["status"] == "failed" and "diverged" in failed["error"]

    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [t["name"] for t in table] == [r["name"] for r in rows]
    assert table[4]["status"] == "failed" and "diverged" in table[4]["error"]
    assert float(table[0]["test_accuracy"]) == ok[0]["test_accuracy"]
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    summary = (out / "summary.md").read_text()
    assert "| adam |" in summary and "| sgd |" in summary and "±" in summary

    # each run is a normal tinynn train run folder: evaluate and resume work on it alone
    folder = out / "runs" / rows[0]["name"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(cli.RUN_FILES)
    assert cli.read_run(folder)["options"]["optimizer"] == "adam"
    model = tn.Model.load(folder / "model.npz", restore_rng=False)
    assert model.epoch == 1 and type(model.optimizer).__name__ == "Adam"


def test_a_run_equals_the_same_tinynn_train_run(process_sweep, tmp_path):
    out, rows = process_sweep
    row = rows[3]
    proc = subprocess.run(
        [sys.executable, "-m", "tinynn", "train", "--optimizer", "sgdm", "--seed", "1", "--hidden", "16", "--epochs",
         "1", "--lr", "0.1", "--batch-size", "32", "--limit", "500", "--val-size", "100", "--out", str(tmp_path),
         "--quiet"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert cli.read_run(tmp_path)["test_accuracy"] == row["test_accuracy"]


def test_rerun_skips_finished_runs_and_retries_failed_ones(process_sweep):
    out, rows = process_sweep
    stamps = {r["name"]: (out / "runs" / r["name"] / "model.npz").stat().st_mtime_ns for r in rows[:4]}
    again = tn.sweep(GRID, out, workers=2, verbose=False, **FIXED)
    assert [{k: r[k] for k in NUMBERS} for r in again] == [{k: r[k] for k in NUMBERS} for r in rows]
    assert stamps == {r["name"]: (out / "runs" / r["name"] / "model.npz").stat().st_mtime_ns for r in rows[:4]}


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_results(process_sweep, ray_session, tmp_path):
    _, rows = process_sweep
    ray_rows = tn.sweep(GRID, tmp_path, executor="ray", workers=2, threads=1, verbose=False, **FIXED)
    for a, b in zip(rows, ray_rows, strict=True):
        assert a["name"] == b["name"]
        assert {k: a[k] for k in NUMBERS} == {k: b[k] for k in NUMBERS}, a["name"]
    assert "diverged" in ray_rows[4]["error"]


def test_interrupted_sweep_resumes_to_the_uninterrupted_result(tmp_path, hold_after_first_checkpoint):
    args = ["sweep", "--optimizer", "adam", "--seed", "0", "1", "--epochs", "3", "--hidden", "128",
            "--limit", "4000", "--workers", "2"]  # fmt: skip
    cut = tmp_path / "cut"
    # Deterministic: Ctrl-C is sent when both runs have written their first checkpoint and hold there
    # (no polling race with runs that finish first or have not started yet).
    env, wait_until_held = hold_after_first_checkpoint
    proc = subprocess.Popen([sys.executable, "-m", "tinynn", *args, "--out", str(cut)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_until_held(proc, runs=2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "Continue with the same command" in err and "Traceback" not in err
    states = [cli.read_run(f) for f in cut.glob("runs/*") if (f / "run.json").exists()]
    assert [(s["status"], s["epochs_done"]) for s in states] == [("interrupted", 1)] * 2, states

    resumed = subprocess.run([sys.executable, "-m", "tinynn", *args, "--out", str(cut)],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    full = subprocess.run([sys.executable, "-m", "tinynn", *args, "--out", str(tmp_path / "full")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert full.returncode == 0, full.stderr

    def read(folder):
        with open(folder / "results.csv", newline="") as f:
            return [{k: r[k] for k in ("name", *NUMBERS)} for r in csv.DictReader(f)]

    assert read(cut) == read(tmp_path / "full")
    for name in (r["name"] for r in read(cut)):
        history = json.loads((cut / "runs" / name / "history.json").read_text())
        assert history["epoch"] == [0, 1, 2]


@pytest.mark.parametrize(
    "grid, fixed, message",
    [
        ({"momentum": [0.9]}, {}, "unknown option(s) ['momentum']"),
        ({"lr": []}, {}, "lr needs a non-empty list"),
        ({"lr": 0.1}, {}, "lr needs a non-empty list"),
        ([], {}, "the grid is empty"),
        ({"lr": [0.1, -1.0]}, {}, "--lr: must be in"),
        ({"optimizer": ["lion"]}, {}, "invalid choice: 'lion'"),
        ({"hidden": [[100_000_000]]}, {}, "at most 50,000,000"),
        ({"lr": [0.1]}, {"epochs": 3}, "unknown fixed option(s) ['epochs']"),
    ],
)
def test_bad_grids_are_refused_before_any_run(tmp_path, grid, fixed, message):
    with pytest.raises(ValueError) as e:
        tn.sweep(grid, tmp_path / "s", verbose=False, **fixed)
    assert message in str(e.value)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--momentum", "0.9"], "unrecognized arguments: --momentum"),
        ([], "give at least one option to vary"),
        (["--lr"], "expected at least one argument"),
        (["--seed", "0", "--executor", "ray", "--address", "127.0.0.1:9"], "cannot reach the Ray cluster"),
        (["--seed", "0", "--address", "127.0.0.1:9"], "address is for executor='ray'"),
    ],
)
def test_bad_command_lines_exit_2_before_any_run(tmp_path, args, message):
    if "ray" in args:
        pytest.importorskip("ray")
    proc = subprocess.run([sys.executable, "-m", "tinynn", "sweep", *args, "--out", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s").exists()
