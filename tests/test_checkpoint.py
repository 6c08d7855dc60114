"""Checkpoints: round trip, atomic writes, refusal of foreign/malformed files, bit-identical resume; History I/O."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

import tinynn as tn
import tinynn.checkpoint as ckpt
from tinynn.layers import BatchNorm1d, Dense, Dropout, ReLU
from tinynn.losses import SoftmaxCrossEntropy
from tinynn.optim.lr_scheduler import CosineAnnealingLR, MultiStepLR


@pytest.fixture(scope="module")
def mnist_small():
    (x, y), (xt, yt) = tn.data.load_mnist(dtype=np.uint8)
    return x[:1200].copy(), y[:1200].copy(), xt[:300].copy(), yt[:300].copy()


def build(seed=0, lr=3e-3):
    tn.seed(seed)
    net = tn.Net([Dense(784, 32), BatchNorm1d(32), ReLU(), Dropout(0.3), Dense(32, 10)])
    return tn.Model(net, SoftmaxCrossEntropy(label_smoothing=0.05), tn.optim.Adam(lr=lr), gradient_clip=5.0)


@pytest.fixture
def trained(mnist_small, tmp_path):
    x, y, _, _ = mnist_small
    model = build()
    sched = MultiStepLR(model.optimizer, milestones=[1, 3], gamma=0.5)
    model.fit(x, y, epochs=2, batch_size=100, scheduler=sched, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path


def rewrite(src, dst, drop=(), **replace):
    """Copy checkpoint ``src`` to ``dst`` without the ``drop`` keys and with ``replace`` entries."""
    with np.load(src, allow_pickle=False) as d:
        arrays = {k: d[k] for k in d.files if k not in drop}
    arrays.update({k.replace("__", "/"): v for k, v in replace.items()})
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


def as_old_format(src, dst, version):
    """Rewrite format-5 checkpoint ``src`` as format ``version`` (4 or 3) wrote it: buffers under ``net_state/``
    and the interval as "scheduler_step"; format 3 also names buffers by layer index only ("1.running_var")."""
    with np.load(src, allow_pickle=False) as d:
        arrays = {k.replace("net_buffers/", "net_state/"): d[k] for k in d.files}
    if version == 3:
        arrays = {k.replace(".BatchNorm1d.", "."): v for k, v in arrays.items()}
    training = json.loads(str(arrays["training"]))
    training["scheduler_step"] = training.pop("scheduler_interval")
    arrays["training"] = np.array(json.dumps(training))
    arrays["tinynn_format"] = np.array(f"tinynn-checkpoint-{version}")
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


# --- round trip ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [3, 4])
def test_older_formats_load_with_their_names_mapped(trained, mnist_small, tmp_path, version):
    """Format 4 kept buffers under net_state/ and the interval as "scheduler_step"; format 3 also named
    buffers by layer index only ("1.running_var"), its nets being flat."""
    model, path = trained
    old = as_old_format(path, tmp_path / f"v{version}.npz", version)
    with np.load(old, allow_pickle=False) as d:
        assert ("net_state/1.running_var" if version == 3 else "net_state/1.BatchNorm1d.running_var") in d.files
        assert "scheduler_step" in json.loads(str(d["training"]))
    back = tn.Model.load(old)
    for name, value in model.net.buffers().items():
        np.testing.assert_array_equal(back.net.buffers()[name], value)
    assert back.scheduler_interval == model.scheduler_interval and back.epoch == model.epoch
    assert back.optimizer.t == model.optimizer.t and back.scheduler.last_epoch == model.scheduler.last_epoch
    x = mnist_small[2]
    np.testing.assert_array_equal(back.predict(x), model.predict(x))  # same numbers, same code


@pytest.mark.parametrize("version", [3, 4, 5])
def test_each_format_refuses_the_names_of_another(trained, tmp_path, version):
    """A file is read by the names of the format it declares: format 5's net_buffers/ in a format-4 file, or
    format 4's net_state/ in a format-5 file, is an unknown entry; the other interval key is a wrong key."""
    _, path = trained
    src = as_old_format(path, tmp_path / "old.npz", version) if version < 5 else path
    with np.load(src, allow_pickle=False) as d:
        arrays = dict(d)
    own, new = ("net_state/", "net_buffers/") if version < 5 else ("net_buffers/", "net_state/")
    arrays = {(new + k.removeprefix(own) if k.startswith(own) else k): v for k, v in arrays.items()}
    with open(tmp_path / "names.npz", "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match=f"unknown entries \\['{new}"):
        tn.Model.load(tmp_path / "names.npz")
    with np.load(src, allow_pickle=False) as d:
        training = json.loads(str(d["training"]))
    key = "scheduler_step" if version < 5 else "scheduler_interval"
    other = "scheduler_interval" if version < 5 else "scheduler_step"
    training[other] = training.pop(key)
    with pytest.raises(ValueError, match=f"should have exactly the keys .*'{key}'"):
        tn.Model.load(rewrite(src, tmp_path / "key.npz", training=np.array(json.dumps(training))))


def test_round_trip_restores_everything(trained, mnist_small):
    model, path = trained
    _, _, xt, _ = mnist_small
    loaded = tn.Model.load(path)
    assert np.array_equal(loaded.predict(xt), model.predict(xt))  # same parameters, same code path: bit for bit
    assert np.array_equal(loaded.net.params, model.net.params)
    for (k, a), (k2, b) in zip(model.net.buffers().items(), loaded.net.buffers().items(), strict=True):
        assert k == k2 and np.array_equal(a, b)
    assert type(loaded.optimizer) is tn.optim.Adam and loaded.optimizer.t == model.optimizer.t == 24
    assert np.array_equal(loaded.optimizer.state["m"], model.optimizer.state["m"])
    assert np.array_equal(loaded.optimizer.state["v"], model.optimizer.state["v"])
    assert loaded.optimizer.lr == model.optimizer.lr == pytest.approx(1.5e-3)
    assert type(loaded.scheduler) is MultiStepLR and loaded.scheduler.milestones == (1, 3)
    assert loaded.scheduler.optimizer is loaded.optimizer and loaded.scheduler.last_epoch == 2
    assert loaded.loss.label_smoothing == 0.05 and loaded.gradient_clip == 5.0
    assert loaded.epoch == 2
    assert loaded.history.epoch == [0, 1] and loaded.history.history == model.history.history
    with np.load(path, allow_pickle=False) as d:
        assert str(d["tinynn_format"]) == "tinynn-checkpoint-5"
        assert json.loads(str(d["net_config"])) == model.net.get_config()
        assert json.loads(str(d["optim_config"])) == {
            "type": "Adam", "config": model.optimizer.get_config(), "decay_mask": False
        }
        assert json.loads(str(d["training"]))["epoch"] == 2


def test_save_writes_exactly_the_given_path_and_leaves_no_temp_files(trained, tmp_path):
    model, _ = trained
    out = model.save(tmp_path / "sub" / "ckpt")  # no .npz suffix, missing directory
    assert out == tmp_path / "sub" / "ckpt" and out.is_file()
    assert os.listdir(tmp_path / "sub") == ["ckpt"]
    assert tn.Model.load(out).epoch == 2
    assert sorted(os.listdir(tmp_path)) == ["model.npz", "sub"]


def test_failed_save_keeps_the_old_file(trained, monkeypatch):
    model, path = trained
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ckpt.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["model.npz"]


def test_custom_optimizer_needs_override(mnist_small, tmp_path):
    class MySGD:
        def __init__(self):
            self.lr = 0.01

        def step(self, params, grads):
            params -= self.lr * grads

    x, y, xt, _ = mnist_small
    tn.seed(0)
    model = tn.Model(tn.Net([Dense(784, 10)]), SoftmaxCrossEntropy(), MySGD())
    model.fit(x[:200], y[:200], verbose=0)
    path = model.save(tmp_path / "custom.npz")
    with pytest.raises(ValueError, match=r"'MySGD' is not a registered optimizer.*optimizer="):
        tn.Model.load(path)
    loaded = tn.Model.load(path, optimizer=MySGD())
    assert np.array_equal(loaded.predict(xt), model.predict(xt))  # same parameters, same code path: bit for bit
    # an optimizer of another class starts fresh
    fresh = tn.Model.load(path, optimizer=tn.optim.SGD(lr=0.5))
    assert fresh.optimizer.lr == 0.5 and fresh.optimizer.t == 0


def test_a_given_optimizer_is_used_as_given(trained):
    """Its hyperparameters stay the caller's, even with a saved scheduler; its state continues."""
    model, path = trained
    assert model.optimizer.lr == pytest.approx(1.5e-3)  # the scheduler moved the saved lr
    mine = tn.optim.Adam(lr=1e-4, betas=(0.8, 0.9))
    loaded = tn.Model.load(path, optimizer=mine)
    assert loaded.optimizer is mine and mine.lr == 1e-4 and mine.betas == (0.8, 0.9)
    assert mine.t == 24 and np.array_equal(mine.state["m"], model.optimizer.state["m"])
    assert loaded.scheduler.optimizer is mine and loaded.scheduler.last_epoch == 2
    loaded.scheduler.step()  # from its next step on, the schedule drives the lr again
    assert mine.lr == pytest.approx(0.75e-3)


def test_restore_rng_false_leaves_the_generator_untouched(trained):
    _, path = trained
    tn.seed(99)
    expected = tn.get_rng().random(5)
    tn.seed(99)
    tn.Model.load(path, restore_rng=False)  # building the net draws initial weights: must not show
    assert np.array_equal(tn.get_rng().random(5), expected)


def test_history_of_all_epochs_survives_save_and_load(mnist_small, tmp_path):
    x, y, xt, yt = mnist_small
    model = build()
    model.fit(x, y, epochs=2, batch_size=200, validation_data=(xt, yt), verbose=0)
    model.save(tmp_path / "a.npz")
    resumed = tn.Model.load(tmp_path / "a.npz")
    h = resumed.fit(x, y, epochs=3, initial_epoch=2, batch_size=200, verbose=0)  # no validation this time
    assert h is resumed.history and h.epoch == [0, 1, 2]
    assert h.history["loss"][:2] == model.history.history["loss"]
    assert h.history["val_loss"][:2] == model.history.history["val_loss"] and np.isnan(h.history["val_loss"][2])
    resumed.save(tmp_path / "b.npz")
    again = tn.Model.load(tmp_path / "b.npz").history
    assert again.epoch == [0, 1, 2] and np.isnan(again.history["val_loss"][2])
    assert again.history["loss"] == h.history["loss"]


# --- refusing bad files --------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        tn.Model.load(tmp_path / "nope.npz")


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p, good: p.write_bytes(b""), "not a readable .npz"),
        (lambda p, good: p.write_bytes(b"hello, not a zip at all" * 10), "not a readable .npz"),
        (lambda p, good: p.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2]), "not a readable .npz"),
        (lambda p, good: p.write_bytes(os.urandom(5000)), "not a readable .npz"),
        (lambda p, good: np.save(p.open("wb"), np.zeros(3)), "not a readable .npz"),
        (lambda p, good: np.savez(p.open("wb"), a=np.zeros(3)), "no 'tinynn_format' marker"),
        (lambda p, good: np.savez(p.open("wb"), a=np.array([{"x": 1}], dtype=object)), "no 'tinynn_format'"),
        (lambda p, good: rewrite(good, p, obj=np.array([None], dtype=object)), r"unknown entries \['obj'\]"),
        (lambda p, good: rewrite(good, p, tinynn_format=np.array("tinynn-checkpoint-99")), "unsupported"),
        (lambda p, good: rewrite(good, p, drop=["params"]), r"missing entries \['params'\]"),
        (lambda p, good: rewrite(good, p, drop=["rng_state", "training"]), "missing entries"),
        (lambda p, good: rewrite(good, p, params=np.zeros(10, np.float32)), r"shape \(10,\)"),
        (lambda p, good: rewrite(good, p, params=np.zeros(25450, np.float64)), "float64"),
        (lambda p, good: rewrite(good, p, net_config=np.array("{not json")), "not valid JSON"),
        (lambda p, good: rewrite(good, p, net_config=np.array('{"layers": [{"type": "Conv9d"}]}')), "Conv9d"),
        (lambda p, good: rewrite(good, p, net_config=np.zeros(3)), "should be text"),
        (lambda p, good: rewrite(good, p, net_buffers__1_running_mean=np.zeros(7, np.float32)), "running_mean"),
        (lambda p, good: rewrite(good, p, drop=["net_buffers/1.BatchNorm1d.running_var"]), "buffers do not match"),
        (lambda p, good: rewrite(good, p, optim_state__m=np.zeros(5, np.float32)), "optimizer state 'm'"),
        (lambda p, good: rewrite(good, p, loss_config=np.array('{"type": "Nope", "config": {}}')), "unknown loss"),
        (lambda p, good: rewrite(good, p, optim_config=np.array('{"type": "Lion", "config": {}, "decay_mask": false}')),
         "'Lion' is not a registered optimizer"),
        (lambda p, good: rewrite(good, p, sched_config=np.array('{"type": "Warp", "config": {}}')),
         "'Warp' is not a registered scheduler"),
        (lambda p, good: rewrite(good, p, training=np.array('{"epoch": [1, 2]}')), "'training' should have"),
    ],
    ids=[
        "empty", "text", "truncated", "random-bytes", "npy", "foreign-npz", "object-array", "object-entry",
        "future-format", "no-params", "no-rng", "params-size", "params-dtype", "bad-json", "unknown-layer",
        "config-not-text", "buffer-shape", "missing-buffer", "optim-shape", "bad-loss", "unknown-optim",
        "unknown-sched", "epoch-not-scalar",
    ],
)  # fmt: skip
def test_bad_files_are_refused_with_clear_errors(trained, tmp_path, make, problem):
    _, good = trained
    bad = tmp_path / "bad.npz"
    make(bad, good)
    with pytest.raises(ValueError, match=problem) as info:
        tn.Model.load(bad)
    assert f"cannot load checkpoint {bad}" in str(info.value)


def test_load_never_unpickles(trained, tmp_path, monkeypatch):
    """A zip whose member is a pickle (numpy's object-array format) must not run any code."""
    _, good = trained
    called = []

    class Evil:
        def __reduce__(self):
            return (called.append, ("pwned",))

    arr = np.empty(1, dtype=object)
    arr[0] = Evil()
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    bad = tmp_path / "evil.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name) if name != "params.npy" else buf.getvalue())
    with pytest.raises(ValueError, match="pickled"):
        tn.Model.load(bad)
    assert called == []


# --- resume ---------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", ["epoch", "batch"])
def test_resume_is_bit_identical(mnist_small, tmp_path, interval):
    """Stop after epoch 2, resume from the checkpoint in a scrambled RNG state, finish at epoch 4:
    the parameters equal an uninterrupted 4-epoch run's, bit for bit (dropout, Adam, scheduler,
    batch-norm statistics, shuffling all continue exactly)."""
    x, y, xt, yt = mnist_small

    def run(epochs, **kw):
        model = build(seed=3)
        sched = CosineAnnealingLR(model.optimizer, T_max=4 if interval == "epoch" else 48)
        model.fit(x, y, epochs=epochs, batch_size=100, scheduler=sched, scheduler_interval=interval,
                  validation_data=(xt, yt), verbose=0, **kw)  # fmt: skip
        return model

    full = run(4)
    path = tmp_path / "ckpt.npz"
    run(2, checkpoint_path=path)

    tn.seed(12345)  # anything that happened in between must not matter
    tn.get_rng().random(1000)
    resumed = tn.Model.load(path)
    assert resumed.epoch == 2 and resumed.scheduler_interval == interval
    history = resumed.fit(x, y, epochs=4, initial_epoch=resumed.epoch, batch_size=100,
                          validation_data=(xt, yt), verbose=0)  # fmt: skip
    assert history.epoch == [0, 1, 2, 3]  # the history covers the whole run
    assert np.array_equal(resumed.net.params, full.net.params)  # resume: the same code path runs, bit for bit
    for a, b in zip(resumed.net.buffers().values(), full.net.buffers().values(), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(resumed.optimizer.state["m"], full.optimizer.state["m"])
    assert history.history["val_loss"] == full.history.history["val_loss"]
    assert resumed.optimizer.lr == full.optimizer.lr


def test_resume_without_rng_differs(mnist_small, tmp_path):
    """The RNG state in the checkpoint is what makes resume exact (the test above is not vacuous)."""
    x, y, _, _ = mnist_small
    full = build(seed=3)
    full.fit(x, y, epochs=3, batch_size=100, verbose=0)
    half = build(seed=3)
    half.fit(x, y, epochs=2, batch_size=100, verbose=0, checkpoint_path=tmp_path / "c.npz")
    tn.seed(777)
    resumed = tn.Model.load(tmp_path / "c.npz", restore_rng=False)
    resumed.fit(x, y, epochs=3, initial_epoch=2, batch_size=100, verbose=0)
    assert not np.array_equal(resumed.net.params, full.net.params)


# --- History I/O ---------------------------------------------------------------------------


def test_history_json_and_plot(trained, mnist_small, tmp_path):
    model, _ = trained
    x, y, xt, yt = mnist_small
    h = model.fit(x, y, epochs=4, initial_epoch=2, batch_size=100, validation_data=(xt, yt), verbose=0)
    path = h.save(tmp_path / "history.json")
    back = tn.History.load(path)
    assert back.history == h.history and back.epoch == h.epoch == [0, 1, 2, 3]
    assert tn.History.from_json(h.to_json()).history == h.history
    png = h.plot(tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert sorted(os.listdir(tmp_path)) == ["curves.png", "history.json", "model.npz"]
    with pytest.raises(ValueError, match="history"):
        tn.History.from_json("[1, 2]")
    with pytest.raises(ValueError, match="nothing to plot"):
        tn.History().plot(tmp_path / "empty.png")


def test_saved_files_get_an_ordinary_file_mode(tmp_path):
    """The temp file behind an atomic save is owner-only; the finished file must not stay so."""
    import stat

    tn.seed(0)
    model = tn.Model(tn.Net([tn.layers.Dense(3, 2)]), tn.losses.MSE(), tn.optim.SGD())
    path = model.save(tmp_path / "m.npz")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_decay_mask_is_saved(tmp_path):
    tn.seed(0)
    net = tn.Net([Dense(6, 4), BatchNorm1d(4), ReLU(), Dense(4, 3)])
    opt = tn.optim.AdamW(weight_decay=0.1, decay_mask=tn.optim.decay_mask(net.named_params()))
    model = tn.Model(net, SoftmaxCrossEntropy(), opt)
    x = tn.get_rng().standard_normal((20, 6)).astype(np.float32)
    y = np.arange(20) % 3
    model.fit(x, y, epochs=1, batch_size=10, verbose=0)
    path = model.save(tmp_path / "m.npz")
    model.fit(x, y, epochs=3, initial_epoch=1, batch_size=10, verbose=0)
    loaded = tn.Model.load(path)  # restores the RNG as it was when saved
    assert np.array_equal(loaded.optimizer.decay_mask, opt.decay_mask) and opt.decay_mask.sum() == 24 + 12
    loaded.fit(x, y, epochs=3, initial_epoch=1, batch_size=10, verbose=0)
    assert np.array_equal(loaded.net.params, model.net.params)
