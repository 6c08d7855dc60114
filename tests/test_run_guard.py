"""Run folders that lose nothing: one writer per folder, a resume that checks what it resumes, run.json checked
field by field, one line (not a traceback) for a full disk, a read-only folder or an overflowing model."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers_runs import SMALL, interrupt_after, train
from helpers_user import as_user, shared_folder

import tinynn as tn
from tinynn import cli

posix = pytest.mark.skipif(os.name != "posix", reason="POSIX locks, signals and limits")
pytestmark = pytest.mark.usefixtures("cached_mnist")


def usage_error(capsys, *args: str) -> str:
    """``tinynn train ARGS`` must stop with a usage error (exit 2); its message."""
    with pytest.raises(SystemExit) as e:
        train(*args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err, err
    return err


def interrupted_run(folder: Path, monkeypatch, *options: str) -> None:
    """A run of 3 epochs stopped by Ctrl-C after its first checkpoint."""
    with monkeypatch.context() as m:
        interrupt_after(m, 1)
        assert train(*SMALL, "--epochs", "3", *options, "--out", str(folder)) == 130


# --- one writer per run folder -------------------------------------------------------------


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-m", "tinynn", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)  # fmt: skip


@posix
def test_two_trains_on_one_folder_the_second_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "run"
    first = _cli("train", "--limit", "6000", "--hidden", "256", "--epochs", "200", "--out", str(out), "--quiet")
    try:
        deadline = time.monotonic() + 60
        while not (out / "run.json").exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()
        for args in (["--overwrite", *SMALL, "--epochs", "1", "--out", str(out)], ["--resume", str(out)]):
            second = _cli("train", *args)
            _, err = second.communicate(timeout=120)
            assert second.returncode == 1, err
            assert f"in use by another tinynn process (pid {first.pid})" in err and "Traceback" not in err, err
        assert cli.read_run(out)["status"] == "running" and first.poll() is None  # the first run goes on
    finally:
        first.kill()  # a crash: the kernel drops its lock
        first.communicate()
    # the lock of a killed run is stale: the next run takes the folder
    third = _cli("train", *SMALL, "--epochs", "1", "--out", str(out), "--overwrite")
    _, err = third.communicate(timeout=120)
    assert third.returncode == 0, err
    assert cli.read_run(out)["status"] == "finished"
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "history.json", "model.npz", "run.json"]


@posix
def test_a_failed_start_leaves_no_folder_behind(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_load_data", lambda root: (_ for _ in ()).throw(cli.CommandError("no data here")))
    assert train(*SMALL, "--out", str(tmp_path / "new" / "run")) == 1
    assert "no data here" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "new"]  # only the folder that was... not even the lock file
    assert list((tmp_path / "new").iterdir()) == []


# --- resume checks what it resumes ----------------------------------------------------------


def test_resume_refuses_the_checkpoint_of_another_run(tmp_path, monkeypatch, capsys):
    interrupted_run(tmp_path / "a", monkeypatch)
    interrupted_run(tmp_path / "b", monkeypatch, "--hidden", "24")  # another run, another net
    before = (tmp_path / "a" / "model.npz").read_bytes()
    shutil.copy(tmp_path / "b" / "model.npz", tmp_path / "a" / "model.npz")
    assert train("--resume", str(tmp_path / "a")) == 2
    err = capsys.readouterr().err
    assert "belongs to another run" in err and "Traceback" not in err
    # the same net and options, but another run (a run.json copied over): the run ids differ
    interrupted_run(tmp_path / "c", monkeypatch)
    (tmp_path / "a" / "model.npz").write_bytes(before)
    shutil.copy(tmp_path / "c" / "run.json", tmp_path / "a" / "run.json")
    assert train("--resume", str(tmp_path / "a")) == 2
    assert "belongs to another run" in capsys.readouterr().err


def test_resume_refuses_a_checkpoint_that_is_not_the_runs_options(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "a"
    interrupted_run(folder, monkeypatch)
    record = json.loads((folder / "run.json").read_text())
    for key, value in (("epochs", 6), ("lr", 0.01), ("optimizer", "sgd"), ("hidden", [32])):
        edited = {**record, "options": {**record["options"], key: value}}
        (folder / "run.json").write_text(json.dumps(edited))
        assert train("--resume", str(folder)) == 2, key  # raising epochs would restart the cosine schedule
        err = capsys.readouterr().err
        assert "is not the model of the run" in err and "Traceback" not in err, (key, err)
    (folder / "run.json").write_text(json.dumps(record))
    assert train("--resume", str(folder)) == 0  # untouched, it resumes


def test_resume_refuses_given_flags_that_differ_even_defaults(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "a"
    interrupted_run(folder, monkeypatch)
    cases = {"--model": ["--model", "cnn"], "--batch-size": ["--batch-size", "128"],
             "--epochs": ["--lr", "0.001", "--epochs", "4"], "--hidden": ["--seed", "0", "--hidden", "256", "128"]}
    for flag, flags in cases.items():  # 128, 0.001 and 256 128 are the defaults: still refused
        err = usage_error(capsys, "--resume", str(folder), *flags)
        assert "--resume continues the run" in err and f"drop {flag} (the run's is" in err, (flags, err)
    # a flag equal to the run's own value changes nothing: accepted
    assert train("--resume", str(folder), "--batch-size", "50", "--hidden", "16") == 0


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("batch_size", "128", "'batch_size' must be an integer"),
        ("hidden", 5, "'hidden' must be a list of integers"),
        ("lr", "x", "'lr' must be a number"),
        ("lr", -1.0, "--lr"),
        ("model", "resnet", "--model"),
        ("epochs", 0, "--epochs"),
        ("dropout", True, "'dropout' must be a number"),
        ("train_seconds", "x", "'train_seconds' must be a number"),
        ("status", "done", "'status' must be one of"),
        ("epochs_done", 9, "more than the run's 3 epochs"),
        ("test_accuracy", None, "'test_accuracy' must be a number"),
    ],
)
def test_a_hand_edited_run_json_is_a_clear_error(tmp_path, monkeypatch, capsys, key, value, message):
    folder = tmp_path / "a"
    interrupted_run(folder, monkeypatch)
    record = json.loads((folder / "run.json").read_text())
    if key in record["options"]:
        record["options"][key] = value
    elif key == "test_accuracy":  # "finished" without its results
        record.update(status="finished", test_loss=0.3, test_accuracy=value)
    else:
        record[key] = value
    (folder / "run.json").write_text(json.dumps(record))
    err = usage_error(capsys, "--resume", str(folder))
    assert message in err and "run.json" in err, err
    with pytest.raises(ValueError, match="not a valid run record"):
        cli.read_run(folder)


def test_epochs_below_the_checkpoints_are_refused(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "a"
    original = tn.Model.save
    saves = iter(range(10))

    def save(self, path):
        original(self, path)
        if next(saves) == 1:
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(tn.Model, "save", save)
        assert train(*SMALL, "--epochs", "3", "--scheduler", "none", "--out", str(folder)) == 130
    record = json.loads((folder / "run.json").read_text())
    record["options"]["epochs"], record["epochs_done"] = 1, 1  # the checkpoint holds 2
    (folder / "run.json").write_text(json.dumps(record))
    assert train("--resume", str(folder)) == 2
    assert "holds 2 epochs, more than the run's 1" in capsys.readouterr().err


# --- Ctrl-C, full disks, read-only folders: what the run says it holds ------------------------------


def test_ctrl_c_inside_a_save_reports_the_epoch_the_checkpoint_holds(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    original, calls = tn.Model.save, iter(range(10))

    def save(self, path):
        if next(calls) == 1:  # Ctrl-C while the second checkpoint is written: model.npz still holds epoch 1
            raise KeyboardInterrupt
        return original(self, path)

    monkeypatch.setattr(tn.Model, "save", save)
    assert train(*SMALL, "--epochs", "3", "--out", str(out)) == 130
    err = capsys.readouterr().err
    assert "interrupted during epoch 2/3; the checkpoint of epoch 1" in err, err
    assert tn.Model.load(out / "model.npz", restore_rng=False).epoch == 1
    assert cli.read_run(out)["epochs_done"] == 1 and cli.read_run(out)["status"] == "interrupted"
    assert json.loads((out / "history.json").read_text())["epoch"] == [0]


@posix
def test_a_full_disk_is_one_line_and_run_json_says_so(tmp_path):
    """RLIMIT_FSIZE (16 KiB): run.json fits, the 51 KB checkpoint does not (EFBIG, as a full disk's ENOSPC)."""
    out = tmp_path / "run"

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))

    proc = _cli("train", *SMALL, "--epochs", "2", "--out", str(out), preexec_fn=small_files)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert err.strip() == f"tinynn train: cannot write {out / 'model.npz'}: File too large (no epoch was finished)"
    record = cli.read_run(out)
    assert record["status"] == "failed" and record["error"] == f"cannot write {out / 'model.npz'}: File too large"
    assert record["epochs_done"] == 0 and not (out / "model.npz").exists()


@posix
def test_resume_in_a_read_only_folder_is_one_line(tmp_path, monkeypatch, capsys):
    """As an ordinary user (as nobody when root runs the tests: root writes anywhere)."""
    with shared_folder() as shared:
        folder = shared / "run"
        interrupted_run(folder, monkeypatch)
        folder.chmod(0o555)

        def check():
            assert train("--resume", str(folder)) == 1
            err = capsys.readouterr().err
            assert f"cannot lock {folder}" in err and "Permission denied" in err and "Traceback" not in err, err
            assert ".tmp" not in err

        as_user(check)


def test_overwrite_onto_a_folder_named_like_a_run_file(tmp_path, capsys):
    (tmp_path / "model.npz").mkdir()
    err = usage_error(capsys, *SMALL, "--out", str(tmp_path), "--overwrite")
    assert f"{tmp_path / 'model.npz'} is not a file of a run" in err
    assert (tmp_path / "model.npz").is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


# --- evaluate -----------------------------------------------------------------------------------


def test_evaluate_a_model_whose_finite_weights_overflow(tmp_path, capsys):
    net = tn.Net([tn.layers.Dense(784, 10)])
    net.params[...] = 1e38  # finite, but every logit overflows float32
    tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.SGD()).save(tmp_path / "m.npz")
    assert cli.main(["evaluate", str(tmp_path / "m.npz"), "--limit", "100"]) == 1
    err = capsys.readouterr().err
    assert "overflow" in err and "Traceback" not in err


def save_with_running_var(net: tn.Net, path: Path, running_var: np.ndarray) -> None:
    """Save ``net`` (its layer 1 a BatchNorm1d) as a model, then put ``running_var`` in the file in place of its own."""
    tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.SGD()).save(path)
    with np.load(path) as z:
        arrays = dict(z)
    arrays["net_buffers/1.BatchNorm1d.running_var"] = running_var
    np.savez(path, **arrays)


def test_evaluate_refuses_bad_batch_norm_statistics(tmp_path, capsys):
    net = tn.Net([tn.layers.Dense(784, 8), tn.layers.BatchNorm1d(8), tn.layers.Dense(8, 10)])
    path = tmp_path / "m.npz"
    save_with_running_var(net, path, np.full(8, -1.0, np.float32))
    with pytest.raises(SystemExit) as e:
        cli.main(["evaluate", str(path), "--limit", "100"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "running_var" in err and "Traceback" not in err, err


def test_model_checkpoint_with_val_fields_needs_validation_data(tmp_path):
    model = tn.Model(tn.Net([tn.layers.Dense(2, 2)]), tn.losses.MSE(), tn.optim.SGD())
    x = np.zeros((8, 2), np.float32)
    saver = tn.callbacks.ModelCheckpoint(str(tmp_path / "m-{val_loss:.3f}.npz"))
    with pytest.raises(ValueError, match=r"val_loss .* only with validation data"):
        model.fit(x, x, epochs=2, callbacks=[saver], verbose=0)
    assert model.epoch == 0 and list(tmp_path.iterdir()) == []  # refused before the first epoch
    model.fit(x, x, epochs=1, validation_data=(x, x), callbacks=[saver], verbose=0)
    assert [p.name for p in tmp_path.iterdir()] == ["m-0.000.npz"]
    with pytest.raises(ValueError, match=r"EarlyStopping: val_loss .* only with validation data"):
        model.fit(x, x, epochs=3, initial_epoch=1, callbacks=[tn.callbacks.EarlyStopping()], verbose=0)
    assert model.epoch == 1  # refused before its first epoch, as ModelCheckpoint


def test_sigint_to_a_run_is_still_a_clean_stop(tmp_path):
    """The lock changes nothing for Ctrl-C: the run saves, says how to continue, and leaves no lock file."""
    out = tmp_path / "run"
    proc = _cli("train", "--limit", "6000", "--hidden", "256", "--epochs", "200", "--out", str(out), "--quiet")
    deadline = time.monotonic() + 60
    while not (out / "model.npz").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Continue with" in err, err
    assert not (out / ".tinynn.lock").exists()


@pytest.mark.parametrize(
    "bad",
    [
        np.array([np.nan] * 8, np.float32),
        np.array([np.inf] * 8, np.float32),
        np.full(8, -1.0, np.float32),
        np.ones(8, np.int32),
        np.ones(8, np.float16),
        np.ones(8, bool),
        np.ones(8, ">f4"),
        np.ones(8, np.float64),
    ],
    ids=["nan", "inf", "negative", "int32", "float16", "bool", "big-endian", "float64"],
)
def test_batch_norm_statistics_are_checked_on_load(tmp_path, bad):
    net = tn.Net([tn.layers.Dense(4, 8), tn.layers.BatchNorm1d(8), tn.layers.Dense(8, 2)])
    path = tmp_path / "m.npz"
    save_with_running_var(net, path, bad)
    with pytest.raises(ValueError, match="running_var"):
        tn.Model.load(path)
    with pytest.raises(ValueError, match="running_var"):  # the same rule for a net's own load_buffers
        net.load_buffers({**net.buffers(), "1.BatchNorm1d.running_var": bad})


def test_net_refuses_one_layer_twice_and_a_layer_of_another_net():
    d = tn.layers.Dense(4, 4)
    with pytest.raises(ValueError, match="items 0 and 2 are the same Dense object"):
        tn.Net([d, tn.layers.Tanh(), d])
    first = tn.Net([d, tn.layers.Tanh()])
    with pytest.raises(ValueError, match="already belongs to another Net"):
        tn.Net([d])
    assert np.shares_memory(d.params["weight" if "weight" in d.params else next(iter(d.params))], first.params)
    del first  # a net that is gone owns nothing
    tn.Net([d])
