"""Runs that survive interruption: per-epoch checkpoints, ``tinynn train --resume``, checked ``--out``,
run folders that never mix two runs, and ``tinynn evaluate`` that never shows a traceback."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers_runs import SMALL, interrupt_after, train
from helpers_user import as_user, shared_folder

import tinynn as tn
from tinynn import cli, zoo
from tinynn.layers import Dense, ReLU

pytestmark = pytest.mark.usefixtures("cached_mnist")


def params(folder) -> np.ndarray:
    return tn.Model.load(folder / "model.npz", restore_rng=False).net.params


# --- resume -----------------------------------------------------------------------------------

CASES = [  # every optimizer, every scheduler, every net of the zoo
    *[(opt, sched, "mlp") for opt, sched in zip(tn.optim.names(), itertools.cycle(["cosine", "step"]))],
    *[("sgdm", sched, "mlp") for sched in ("cosine", "step", "none")],
    *[("adam", "cosine", model) for model in sorted(zoo.NETS) if model != "mlp"],
]


@pytest.mark.parametrize("optimizer, scheduler, model", CASES)
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, monkeypatch, capsys, optimizer, scheduler, model):
    lr = {"sgd": "0.1", "sgdm": "0.05", "adagrad": "0.02"}.get(optimizer, "0.003")
    opts = [*SMALL, "--epochs", "4", "--optimizer", optimizer, "--scheduler", scheduler, "--model", model,
            "--lr", lr, "--weight-decay", "1e-4", "--seed", "3"]  # fmt: skip
    assert train(*opts, "--out", str(tmp_path / "full")) == 0

    with monkeypatch.context() as m:
        interrupt_after(m, 2)
        assert train(*opts, "--out", str(tmp_path / "cut")) == 130
    err = capsys.readouterr().err
    assert f"Continue with: tinynn train --resume {tmp_path / 'cut'}" in err and "epoch 3/4" in err
    record = cli.read_run(tmp_path / "cut")
    assert record["status"] == "interrupted" and record["epochs_done"] == 2
    assert tn.Model.load(tmp_path / "cut" / "model.npz", restore_rng=False).epoch == 2

    (tmp_path / "cut" / "history.json").unlink()  # as after a crash: the checkpoint carries the history
    tn.seed(12345)  # resume must not depend on the state the process happens to be in
    assert train("--resume", str(tmp_path / "cut")) == 0
    assert np.array_equal(params(tmp_path / "cut"), params(tmp_path / "full"))
    full = json.loads((tmp_path / "full" / "history.json").read_text())  # resume: the same code path runs, bit for bit
    cut = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert cut["epoch"] == full["epoch"] == [0, 1, 2, 3]
    for key in ("loss", "val_loss", "val_accuracy", "lr"):
        assert cut["history"][key] == full["history"][key], key
    finished = cli.read_run(tmp_path / "cut")
    assert finished["status"] == "finished"
    assert finished["test_accuracy"] == cli.read_run(tmp_path / "full")["test_accuracy"]
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == sorted(cli.RUN_FILES)


def test_interrupt_in_the_first_epoch_then_resume_starts_over(tmp_path, monkeypatch, capsys):
    opts = [*SMALL, "--epochs", "2"]
    assert train(*opts, "--out", str(tmp_path / "full")) == 0
    with monkeypatch.context() as m:
        m.setattr(tn.Model, "fit", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        assert train(*opts, "--out", str(tmp_path / "cut")) == 130
    assert "no epoch was finished" in capsys.readouterr().err
    assert not (tmp_path / "cut" / "model.npz").exists()
    assert train("--resume", str(tmp_path / "cut")) == 0
    assert np.array_equal(params(tmp_path / "cut"), params(tmp_path / "full"))  # resume: bit for bit


def test_resume_of_a_finished_run_changes_nothing(tmp_path, capsys):
    assert train(*SMALL, "--epochs", "1", "--out", str(tmp_path)) == 0
    before = (tmp_path / "model.npz").read_bytes()
    assert train("--resume", str(tmp_path)) == 0
    assert "finished all 1 epochs already" in capsys.readouterr().out
    assert (tmp_path / "model.npz").read_bytes() == before


def test_resume_refuses_changed_options_and_non_runs(tmp_path, capsys):
    assert train(*SMALL, "--epochs", "1", "--out", str(tmp_path / "run")) == 0
    with pytest.raises(SystemExit) as e:
        train("--resume", str(tmp_path / "run"), "--lr", "0.5")
    assert e.value.code == 2 and "drop --lr" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        train("--resume", str(tmp_path / "nothing"))
    assert e.value.code == 2 and "no such run folder" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    with pytest.raises(SystemExit) as e:
        train("--resume", str(tmp_path / "other"))
    assert e.value.code == 2 and "not a tinynn run folder" in capsys.readouterr().err


DIVERGES = ["--optimizer", "sgd", "--lr", "10", "--weight-decay", "1", "--scheduler", "none", "--batch-size", "10"]
"""Weight decay 1 at lr 10 multiplies the weights by -9 per step: inf within two epochs of 54 steps."""


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_divergence_is_recorded(tmp_path, capsys):
    assert train(*SMALL, "--epochs", "3", *DIVERGES, "--out", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "Traceback" not in err
    record = cli.read_run(tmp_path)
    assert record["status"] == "failed" and "diverged" in record["error"]


# --- the run folder ---------------------------------------------------------------------------


def test_out_is_checked_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    os.symlink(tmp_path / "missing", tmp_path / "dangling")
    cases = {
        str(tmp_path / "file"): "exists and is not a folder",
        str(tmp_path / "file" / "run"): "which is not a folder",
        str(tmp_path / "dangling"): "dangling symbolic link",
        str(tmp_path / "dangling" / "run"): "dangling symbolic link",
        "/proc/tinynn-run": "cannot create files in /proc",
    }
    for out, message in cases.items():
        with pytest.raises(SystemExit) as e:
            train(*SMALL, "--out", out)
        assert e.value.code == 2, out
        assert message in capsys.readouterr().err, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "file"]  # nothing created


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unwritable_out_is_a_usage_error(capsys):
    """As an ordinary user (as nobody when root runs the tests: root writes into read-only folders)."""
    with shared_folder() as shared:
        (shared / "ro").mkdir(mode=0o555)

        def check():
            with pytest.raises(SystemExit) as e:
                train(*SMALL, "--out", str(shared / "ro" / "run"))
            assert e.value.code == 2 and "cannot create files" in capsys.readouterr().err

        as_user(check)


def test_a_folder_never_mixes_two_runs(tmp_path, monkeypatch, capsys):
    out = str(tmp_path)
    assert train(*SMALL, "--epochs", "1", "--out", out) == 0
    with pytest.raises(SystemExit) as e:  # a second run into the same folder must say what to do
        train(*SMALL, "--epochs", "1", "--out", out)
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"tinynn train --resume {out}" in err and "--overwrite" in err
    # --overwrite, interrupted during its first epoch: the old run's files are gone, not mixed with the new ones
    with monkeypatch.context() as m:
        m.setattr(tn.Model, "fit", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        assert train(*SMALL, "--epochs", "2", "--lr", "0.01", "--out", out, "--overwrite") == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json", "run.json"]
    assert cli.read_run(tmp_path)["options"]["lr"] == 0.01
    assert json.loads((tmp_path / "history.json").read_text())["epoch"] == []


def test_the_main_job_runs_again_as_written(tmp_path, monkeypatch, capsys):
    """README's `tinynn train` (no --out) twice: each run gets a fresh folder, runs/mnist then runs/mnist-2;
    --overwrite without --out replaces runs/mnist; a folder named with --out is still refused."""
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    assert train(*SMALL, "--epochs", "1") == 0
    first = (runs / "mnist" / "model.npz").read_bytes()
    assert train(*SMALL, "--epochs", "1", "--seed", "3") == 0
    assert train(*SMALL, "--epochs", "1", "--seed", "4") == 0
    assert sorted(p.name for p in runs.iterdir()) == ["mnist", "mnist-2", "mnist-3"]
    assert (runs / "mnist" / "model.npz").read_bytes() == first  # the first run is untouched
    assert [cli.read_run(runs / n)["options"]["seed"] for n in ("mnist", "mnist-2", "mnist-3")] == [0, 3, 4]
    assert train(*SMALL, "--epochs", "1", "--seed", "5", "--overwrite") == 0
    assert cli.read_run(runs / "mnist")["options"]["seed"] == 5 and not (runs / "mnist-4").exists()
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        train(*SMALL, "--epochs", "1", "--out", "runs/mnist-2")
    assert e.value.code == 2 and "holds another run" in capsys.readouterr().err
    assert train("--resume", "runs/mnist-2") == 0  # finished already: says so, changes nothing
    assert cli.free_run_folder("runs/mnist") == Path("runs/mnist-4")


def test_a_real_ctrl_c_saves_and_says_how_to_continue(tmp_path, hold_after_first_checkpoint):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tinynn", "train", "--limit", "6000", "--hidden", "256", "--epochs", "40",
           "--out", str(out), "--quiet"]  # fmt: skip
    env, wait_until_held = hold_after_first_checkpoint  # Ctrl-C once epoch 1 is saved: no race with the run
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    wait_until_held(proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"Continue with: tinynn train --resume {out}" in stderr and "Traceback" not in stderr
    done = cli.read_run(out)["epochs_done"]
    assert 1 <= done < 40 and tn.Model.load(out / "model.npz", restore_rng=False).epoch == done
    assert len(json.loads((out / "history.json").read_text())["epoch"]) == done


def test_impossible_sizes_are_refused_before_allocating(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        train("--hidden", "100000000", "--out", str(tmp_path / "big"))
    assert e.value.code == 2 and "parameters" in capsys.readouterr().err
    assert not (tmp_path / "big").exists()


# --- evaluate never shows a traceback ---------------------------------------------------------


def _save(path, net, loss=None, nan=False):
    model = tn.Model(net, loss or tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam())
    if nan:
        net.params[3] = np.nan
    model.save(path)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"garbage"), "not a readable .npz"),
        (lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 40), "not a readable .npz"),
        (lambda p: np.savez(open(p, "wb"), w=np.zeros(3)), "not a tinynn checkpoint"),
        (lambda p: _save(p, tn.Net([Dense(784, 10)]), nan=True), "NaN"),
        (lambda p: _save(p, tn.Net([Dense(784, 10)]), loss=tn.losses.MSE()), "not a classifier"),
        (lambda p: _save(p, tn.Net([Dense(100, 10)])), "does not take 784"),
        (lambda p: _save(p, tn.Net([Dense(784, 16), ReLU(), Dense(16, 3)])), "MNIST has 10 classes"),
    ],
    ids=["garbage", "broken-zip", "foreign", "nan", "regression", "wrong-input", "wrong-output"],
)
def test_evaluate_refuses_bad_checkpoints_with_a_message(tmp_path, capsys, make, message):
    path = tmp_path / "model.npz"
    make(path)
    with pytest.raises(SystemExit) as e:
        cli.main(["evaluate", str(path), "--limit", "10"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and "Traceback" not in err


def test_evaluate_takes_a_run_folder(tmp_path, capsys):
    assert train(*SMALL, "--epochs", "1", "--out", str(tmp_path)) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", str(tmp_path), "--limit", "50"]) == 0
    assert "50 test images" in capsys.readouterr().out
