"""The ``tinynn`` command, run for real in subprocesses (``python -m tinynn`` and the console script)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinynn as tn


def run(*args: str, cwd=None, exe=None) -> subprocess.CompletedProcess:
    cmd = [exe] if exe else [sys.executable, "-m", "tinynn"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    args = ["--limit", "1000", "--epochs", "1", "--batch-size", "32", "--lr", "3e-3", "--hidden", "32", "--seed", "1"]
    proc = run("train", *args, "--out", str(out))
    return proc, out


def test_train_writes_outputs_and_prints_test_accuracy(trained_run):
    proc, out = trained_run
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "history.json", "model.npz", "run.json"]
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("test accuracy: ")
    accuracy = float(line.split()[2])
    assert 0.3 < accuracy <= 1  # 900 images, 1 epoch: well above chance (0.1)
    assert "Epoch 1/1" in proc.stdout and "training on 900 images, validating on 100" in proc.stdout
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [0] and set(history["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    model = tn.Model.load(out / "model.npz", restore_rng=False)
    assert [type(layer).__name__ for layer in model.net.layers] == ["Dense", "ReLU", "Dropout", "Dense"]
    assert model.epoch == 1 and type(model.optimizer).__name__ == "Adam"
    assert "Traceback" not in proc.stderr


def test_evaluate_prints_accuracy_confusion_matrix_and_report(trained_run):
    _, out = trained_run
    proc = run("evaluate", str(out / "model.npz"), "--limit", "500")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "500 test images" in text and "confusion matrix" in text and "precision" in text
    accuracy = float(text.split("test accuracy: ")[1].split()[0])
    # the printed matrix sums to the 500 images and its diagonal is the accuracy
    rows = text.split("predicted class)\n")[1].strip().splitlines()[1:11]
    cm = np.array([[int(v) for v in row.split()[1:]] for row in rows])
    assert cm.shape == (10, 10) and cm.sum() == 500
    assert np.trace(cm) / 500 == pytest.approx(accuracy, abs=1e-4)


def test_quiet_prints_only_the_result(tmp_path):
    proc = run("train", "--limit", "300", "--epochs", "1", "--hidden", "16", "--out", str(tmp_path), "--quiet",
               "--scheduler", "step", "--optimizer", "sgdm", "--lr", "0.05", "--weight-decay", "1e-4")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("test accuracy: ") and len(proc.stdout.splitlines()) == 1
    assert proc.stderr == ""


def test_help_explains_every_flag():
    top = run("--help")
    assert top.returncode == 0 and "train" in top.stdout and "evaluate" in top.stdout
    train = run("train", "--help")
    assert train.returncode == 0
    for flag in ("--hidden", "--dropout", "--optimizer", "--lr", "--weight-decay", "--scheduler", "--epochs",
                 "--batch-size", "--val-size", "--seed", "--data", "--limit", "--out", "--quiet", "--resume",
                 "--overwrite", "--random-shift", "--gradient-clip"):  # fmt: skip
        assert flag in train.stdout, flag
    assert "default: 10" in train.stdout  # defaults are shown
    # ... each once: one "(default: ...)" per option, none saying "None" (a default a model fills in is stated
    # by the option's own help, with the models that have their own)
    options = re.split(r"\n  (?=-)", train.stdout.split("\noptions:\n")[1])
    assert len(options) >= 19  # -h and every option
    for option in options:
        assert option.count("default") <= 1 and "None" not in option, option
    text = " ".join(train.stdout.split())
    assert "--lr LR learning rate, > 0 (default: 0.001;" in text
    assert "--epochs EPOCHS number of epochs (default: 10" in text
    evaluate = run("evaluate", "--help")
    assert evaluate.returncode == 0 and "MODEL" in evaluate.stdout and "None" not in evaluate.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--lr", "-1"], "--lr: must be in"),
        (["train", "--lr", "abc"], "--lr: expected a number"),
        (["train", "--epochs", "0"], "--epochs: must be a positive integer"),
        (["train", "--optimizer", "lion"], "invalid choice: 'lion'"),
        (["train", "--dropout", "1.5"], "--dropout: must be in"),
        (["train", "--hidden"], "expected at least one argument"),
        (["train", "--bogus"], "unrecognized arguments"),
        (["evaluate", "does/not/exist.npz"], "model file not found"),
        ([], "required: {train,evaluate,sweep}"),
    ],
)
def test_bad_values_exit_2_with_a_message(args, message):
    proc = run(*args)
    assert proc.returncode == 2
    assert message in proc.stderr and "error:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_evaluate_refuses_a_foreign_file(tmp_path):
    bad = tmp_path / "model.npz"
    np.savez(bad, w=np.zeros(3))
    proc = run("evaluate", str(bad))
    assert proc.returncode == 2 and "not a tinynn checkpoint" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_data_is_a_clear_failure(tmp_path):
    proc = run("train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--limit", "10")
    assert proc.returncode == 1, proc.stderr
    assert "MNIST not found" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(shutil.which("tinynn") is None, reason="the tinynn console script is not installed")
def test_console_script(trained_run, tmp_path):
    exe = shutil.which("tinynn")
    assert run("--help", exe=exe).returncode == 0
    _, out = trained_run
    proc = run("evaluate", str(out / "model.npz"), "--limit", "200", exe=exe)
    assert proc.returncode == 0 and "test accuracy:" in proc.stdout
    assert run("train", "--epochs", "0", exe=exe).returncode == 2
