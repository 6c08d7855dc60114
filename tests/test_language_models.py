"""Names runs: ``tinynn train --data names`` (resume bit-identical), ``tinynn sample`` (its errors, the
training-set marks), the exact per-character loss, and the counted bigram equal to the trained one."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from helpers_runs import interrupt_after, train

import tinynn as tn
from tinynn import cli, lm, zoo
from tinynn.data import encode_names, load_names

TINY = ["--data", "names", "--limit", "200", "--batch-size", "25", "--quiet"]


@pytest.mark.parametrize("model", ["mlp", "gru"])
def test_names_resume_is_bit_identical(tmp_path, monkeypatch, capsys, model) -> None:
    opts = [*TINY, "--model", model, "--epochs", "3", "--seed", "2"]
    assert train(*opts, "--out", str(tmp_path / "full")) == 0
    out = capsys.readouterr().out
    assert out.startswith("train loss: ") and "test loss: " in out and "nats per character" in out
    with monkeypatch.context() as m:
        interrupt_after(m, 1)
        assert train(*opts, "--out", str(tmp_path / "cut")) == 130
    assert "--resume" in capsys.readouterr().err
    tn.seed(999)  # resume must not depend on the process's generator
    assert train("--resume", str(tmp_path / "cut")) == 0
    full, cut = (tn.Model.load(tmp_path / d / "model.npz", restore_rng=False) for d in ("full", "cut"))
    assert np.array_equal(full.net.params, cut.net.params)  # the same code path runs: bit for bit
    runs = [json.loads((tmp_path / d / "run.json").read_text()) for d in ("full", "cut")]
    assert runs[0]["test_loss"] == runs[1]["test_loss"] and runs[0]["data"] == "names"
    assert runs[0]["options"]["optimizer"] == "adamw" and runs[0]["options"]["batch_size"] == 25
    hist = [json.loads((tmp_path / d / "history.json").read_text())["history"] for d in ("full", "cut")]
    assert hist[0]["val_loss"] == hist[1]["val_loss"] and len(hist[0]["val_loss"]) == 3
    assert (tmp_path / "full" / "curves.png").stat().st_size > 0


def test_names_defaults_and_model_data_mismatch(tmp_path, capsys) -> None:
    args = tn.runs.parse_run_options(["--data", "names"])
    assert args.model == "transformer" and args.optimizer == "adamw" and args.batch_size == 32
    assert args.weight_decay == 0.01
    mnist = tn.runs.parse_run_options([])
    assert mnist.model == "mlp" and mnist.optimizer == "adam" and mnist.batch_size == 128
    with pytest.raises(SystemExit) as e:
        train("--data", "names", "--model", "cnn", "--out", str(tmp_path / "a"))
    assert e.value.code == 2 and "MNIST net" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        train("--model", "bigram", "--out", str(tmp_path / "b"))
    assert e.value.code == 2 and "--data names" in capsys.readouterr().err


@pytest.fixture(scope="module")
def names_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("names") / "run"
    assert train(*TINY, "--model", "bigram", "--epochs", "1", "--out", str(folder)) == 0
    return folder


def sample(*args: str) -> int:
    return cli.main(["sample", *args])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--temperature", "0"], "--temperature must be > 0"),
        (["--temperature", "-1"], "--temperature must be > 0"),
        (["--top-k", "0"], "--top-k must be at least 1"),
        (["--prompt", ""], "--prompt is empty"),
        (["--prompt", "A1"], "--prompt must be lowercase letters"),
    ],
)
def test_sample_errors(names_run, capsys, args, message) -> None:
    with pytest.raises(SystemExit) as e:
        sample(str(names_run), *args)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_sample_refuses_a_run_that_is_not_a_names_run(tmp_path, capsys) -> None:
    assert train("--limit", "300", "--epochs", "1", "--hidden", "8", "--quiet", "--out", str(tmp_path / "m")) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        sample(str(tmp_path / "m"))
    assert e.value.code == 2 and "is not a names run" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        sample(str(tmp_path / "nothing"))
    assert e.value.code == 2 and "not a tinynn run folder" in capsys.readouterr().err


def test_sample_prints_names_and_marks_training_names(names_run, capsys) -> None:
    assert sample(str(names_run), "-n", "30", "--seed", "1", "--top-k", "5", "--prompt", "ma") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 30 and all(line.startswith("ma") for line in lines)
    train_names = set(load_names()[0])
    for line in lines:
        name = line.removesuffix(" *")
        assert (name in train_names) == line.endswith(" *"), line
    assert lm.marked(["emma", "zzqx"], {"emma"}) == ["emma *", "zzqx"]


def test_sample_is_seeded_and_top_k_one_is_greedy() -> None:
    tn.seed(0)
    net = zoo.bigram()
    a, b = lm.sample(net, 5, seed=3), lm.sample(net, 5, seed=3)
    assert a == b and len(a) == 5
    greedy = lm.sample(net, 3, top_k=1, seed=0) + lm.sample(net, 3, top_k=1, seed=1)
    assert len(set(greedy)) == 1  # the argmax path: the same name whatever the draw
    with pytest.raises(ValueError, match="temperature"):
        lm.sample(net, 1, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        lm.sample(net, 1, top_k=0)


def test_nll_is_the_exact_mean_per_character() -> None:
    """sum / count over the scored characters, not a mean of per-batch means."""
    tn.seed(0)
    net = zoo.bigram()
    names = ["emma", "al", "christopher", "bo"]
    x, y = encode_names(names)
    total, count = lm.nll_sum(net, x, y, batch_size=3)  # batches of unequal character counts
    assert count == sum(len(n) + 1 for n in names)
    w = net.params.reshape(27, 27).astype(np.float64)
    logp = w - np.log(np.exp(w).sum(axis=1, keepdims=True))
    keep = y != -100
    assert math.isclose(total, -logp[x[keep], y[keep]].sum(), rel_tol=1e-6)
    assert math.isclose(lm.mean_nll(net, names), total / count, rel_tol=1e-12)


def test_counted_bigram_equals_the_trained_one() -> None:
    """On 2,000 names, training the one-layer bigram reaches the counted table's test loss within 0.01 nats."""
    train_names, test_names = load_names()
    train_names = train_names[:2000]
    counted = lm.table_nll(lm.counted_bigram(train_names), test_names)
    tn.seed(0)
    net = zoo.bigram()
    x, y = encode_names(train_names)
    opt = tn.optim.Adam(lr=0.05)
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), opt)
    model.fit(x, y, epochs=30, batch_size=500, verbose=0)
    trained = lm.mean_nll(net, test_names)
    assert 2.3 < counted < 2.7
    assert abs(trained - counted) < 0.01, (trained, counted)
    # and each row of the counted table is a distribution
    np.testing.assert_allclose(np.exp(lm.counted_bigram(train_names)).sum(axis=1), 1.0, rtol=1e-12)


def test_context_window() -> None:
    cw = tn.layers.ContextWindow(3)
    y = cw.forward(np.array([[0, 5, 13, 1]]))
    assert y.tolist() == [[[0, 0, 0], [0, 0, 5], [0, 5, 13], [5, 13, 1]]]
    assert cw.output_shape((None, 16)) == (None, 16, 3)
    with pytest.raises(ValueError, match="ContextWindow"):
        cw.forward(np.zeros(4, np.int64))
    # causal: changing a later character never changes an earlier position's logits
    tn.seed(0)
    net = zoo.names_mlp(context=4, embed=3, hidden=8)
    x = np.array([[0, 5, 13, 13, 1, 0]])
    x2 = x.copy()
    x2[0, 4] = 7
    np.testing.assert_array_equal(net.forward(x)[:, :4], net.forward(x2)[:, :4])


@pytest.mark.parametrize("name", ["bigram", "mlp", "lstm", "gru"])
def test_names_models_give_logits_at_every_position(name) -> None:
    tn.seed(0)
    net = zoo.NAMES_NETS[name]()
    x, _ = encode_names(["emma", "bo"])
    assert net.forward(x).shape == (2, 16, 27)
    loaded = tn.Net.from_config(net.get_config())
    assert loaded.get_config() == net.get_config()


@pytest.mark.parametrize("name", ["mlp", "transformer"])
def test_names_nets_gradients(name) -> None:
    """Every parameter of a names net, through ContextWindow (indices in, no gradient) or the blocks."""
    tn.seed(0)
    small = {"mlp": dict(context=3, embed=2, hidden=5), "transformer": dict(dim=8, num_heads=2, num_blocks=1)}
    net = zoo.NAMES_NETS[name](**small[name])
    net = tn.Net.from_config({**net.get_config(), "dtype": "float64"})
    x, _ = encode_names(["emma", "bo"], block_size=6)
    report = tn.gradcheck.check_net(net, x)
    assert report.passed, str(report)


# --- a names run goes through the steps of an MNIST run (tinynn.run): the same checks and stops ------------


def test_names_resume_refuses_a_checkpoint_that_is_not_the_runs_options(tmp_path, monkeypatch, capsys) -> None:
    """As tests/test_run_guard.py for MNIST: the options in run.json must build the checkpoint's model (an
    edited epochs count would restart the cosine schedule), and a flag given with --resume must not differ."""
    folder = tmp_path / "cut"
    with monkeypatch.context() as m:
        interrupt_after(m, 1)
        assert train(*TINY, "--model", "bigram", "--epochs", "3", "--out", str(folder)) == 130
    capsys.readouterr()
    record = json.loads((folder / "run.json").read_text())
    for key, value in (("epochs", 6), ("lr", 0.01), ("optimizer", "sgd")):
        edited = {**record, "options": {**record["options"], key: value}}
        (folder / "run.json").write_text(json.dumps(edited))
        assert train("--resume", str(folder)) == 2, key
        err = capsys.readouterr().err
        assert "is not the model of the run" in err and "Traceback" not in err, (key, err)
    (folder / "run.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit) as e:
        train("--resume", str(folder), "--lr", "0.5")
    assert e.value.code == 2 and "drop --lr (the run's is 0.05)" in capsys.readouterr().err
    assert train("--resume", str(folder)) == 0  # untouched, it resumes
    assert tn.runs.read_run(folder)["status"] == "finished"


def test_names_ctrl_c_inside_a_save_reports_the_epoch_the_checkpoint_holds(tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "run"
    original, calls = tn.Model.save, itertools.count()

    def save(self, path):
        if next(calls) == 1:  # Ctrl-C while the second checkpoint is written: model.npz still holds epoch 1
            raise KeyboardInterrupt
        return original(self, path)

    monkeypatch.setattr(tn.Model, "save", save)
    assert train(*TINY, "--model", "bigram", "--epochs", "3", "--out", str(out)) == 130
    err = capsys.readouterr().err
    assert "interrupted during epoch 2/3; the checkpoint of epoch 1" in err, err
    assert f"Continue with: tinynn train --resume {out}" in err
    record = tn.runs.read_run(out)
    assert record["status"] == "interrupted" and record["epochs_done"] == 1
    assert json.loads((out / "history.json").read_text())["epoch"] == [0]


def test_names_full_disk_is_one_line_and_run_json_says_so(tmp_path) -> None:
    """RLIMIT_FSIZE (4 KiB): run.json fits, the bigram's checkpoint (its 27 x 27 table and Adam's two moments,
    over 8 KB) does not: EFBIG, as a full disk's ENOSPC. The message and run.json are an MNIST run's."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    resource = pytest.importorskip("resource")  # POSIX file-size limits
    out = tmp_path / "run"

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "tinynn", "train", *TINY, "--model", "bigram", "--epochs", "2",
                           "--out", str(out)], env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=small_files)  # fmt: skip
    failed = f"cannot write {out / 'model.npz'}: File too large"
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == f"tinynn train: {failed} (no epoch was finished)"
    record = tn.runs.read_run(out)
    assert record["status"] == "failed" and record["error"] == failed
    assert record["epochs_done"] == 0 and not (out / "model.npz").exists()
