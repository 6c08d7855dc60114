"""Callbacks: the hooks fit calls, and each built-in one (Keras names and semantics)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinynn as tn
from tinynn import callbacks as cbs
from tinynn.layers import BatchNorm1d, Dense, ReLU
from tinynn.losses import MSE, SoftmaxCrossEntropy


def blobs(n=120, seed=0):
    r = np.random.default_rng(seed)
    y = r.integers(0, 3, n)
    x = (r.normal(size=(n, 4)) + 2 * np.eye(3, 4)[y]).astype(np.float32)
    return x, y


def model(lr=0.05, bn=False, seed=0):
    tn.seed(seed)
    layers = [Dense(4, 16)] + ([BatchNorm1d(16)] if bn else []) + [ReLU(), Dense(16, 3)]
    return tn.Model(tn.Net(layers), SoftmaxCrossEntropy(), tn.optim.SGD(lr=lr))


class Recorder(cbs.Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self):
        self.calls.append(("train_begin", self.fit_settings["steps"], self.fit_settings["samples"]))

    def on_epoch_begin(self, epoch):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_end(self, step, logs):
        self.calls.append(("batch", step, logs["size"]))

    def on_epoch_end(self, epoch, logs):
        self.calls.append(("epoch_end", epoch, sorted(logs), self.model.epoch))

    def on_train_end(self):
        self.calls.append(("train_end",))


class Scores(cbs.Callback):
    """Puts a made-up metric into the epoch logs (callbacks after it see it) and snapshots the params."""

    def __init__(self, values):
        self.values, self.params_at = list(values), []

    def on_epoch_end(self, epoch, logs):
        logs["score"] = self.values[epoch]
        self.params_at.append(self.model.net.params.copy())


def test_hooks_are_called_in_order_with_the_logs():
    x, y = blobs(100)
    rec = Recorder()
    model(0.1).fit(x, y, epochs=2, batch_size=40, callbacks=[rec], verbose=0)
    keys = ["accuracy", "loss", "lr", "time"]
    assert rec.calls == [
        ("train_begin", 3, 100),
        ("epoch_begin", 0), ("batch", 1, 40), ("batch", 2, 40), ("batch", 3, 20), ("epoch_end", 0, keys, 1),
        ("epoch_begin", 1), ("batch", 1, 40), ("batch", 2, 40), ("batch", 3, 20), ("epoch_end", 1, keys, 2),
        ("train_end",),
    ]  # fmt: skip
    with pytest.raises(TypeError, match="Callback"):
        model().fit(x, y, callbacks=[object()], verbose=0)


def test_stop_training_ends_fit_after_the_epoch():
    class StopAt1(cbs.Callback):
        def on_epoch_end(self, epoch, logs):
            self.model.stop_training = epoch == 1

    x, y = blobs()
    m = model()
    h = m.fit(x, y, epochs=5, callbacks=[StopAt1()], verbose=0)
    assert h.epoch == [0, 1] and m.epoch == 2


def test_early_stopping_patience_and_best_weights():
    x, y = blobs()
    scores = Scores([3.0, 2.0, 2.5, 2.4, 2.6, 1.0])
    stop = cbs.EarlyStopping(monitor="score", patience=2, restore_best_weights=True)
    m = model()
    h = m.fit(x, y, epochs=6, callbacks=[scores, stop], verbose=0)
    assert h.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3 and stop.best_epoch == 1
    assert np.array_equal(m.net.params, scores.params_at[1])


def test_early_stopping_restores_the_best_weights_also_when_patience_never_ran_out():
    x, y = blobs()
    scores = Scores([3.0, 1.0, 2.0])
    stop = cbs.EarlyStopping(monitor="score", patience=5, restore_best_weights=True)
    m = model(bn=True)
    m.fit(x, y, epochs=3, callbacks=[scores, stop], verbose=0)
    assert stop.stopped_epoch is None and stop.best_epoch == 1
    assert np.array_equal(m.net.params, scores.params_at[1])
    assert not np.array_equal(scores.params_at[1], scores.params_at[2])  # the test is not vacuous


def test_early_stopping_min_delta_mode_and_errors():
    x, y = blobs()
    # accuracies are maximised ("auto"); improvements under min_delta do not count
    stop = cbs.EarlyStopping(monitor="score", mode="max", min_delta=0.1, patience=0)
    model().fit(x, y, epochs=4, callbacks=[Scores([0.5, 0.55, 0.9, 0.95]), stop], verbose=0)
    assert stop.stopped_epoch == 1 and stop.best_epoch == 0
    with pytest.raises(ValueError, match="EarlyStopping: val_loss .* only with validation data"):  # before any epoch
        model().fit(x, y, callbacks=[cbs.EarlyStopping()], verbose=0)
    with pytest.raises(ValueError, match="patience"):
        cbs.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode"):
        cbs.EarlyStopping(mode="up")


def test_model_checkpoint_every_epoch_and_best_only(tmp_path):
    x, y = blobs()
    every = cbs.ModelCheckpoint(tmp_path / "e{epoch:02d}.npz")
    best = cbs.ModelCheckpoint(tmp_path / "best.npz", monitor="score", save_best_only=True)
    m = model()
    m.fit(x, y, epochs=3, callbacks=[Scores([2.0, 1.0, 1.5]), every, best], verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz", "e01.npz", "e02.npz", "e03.npz"]
    assert tn.Model.load(tmp_path / "best.npz").epoch == 2
    assert tn.Model.load(tmp_path / "e03.npz").history.epoch == [0, 1, 2]


def test_csv_logger(tmp_path):
    x, y = blobs()
    path = tmp_path / "log.csv"
    m = model()
    m.fit(x, y, epochs=2, callbacks=[cbs.CSVLogger(path)], verbose=0)
    m.fit(x, y, epochs=3, initial_epoch=2, callbacks=[cbs.CSVLogger(path, append=True)], verbose=0)
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,accuracy,lr,time" and [ln.split(",")[0] for ln in lines[1:]] == ["0", "1", "2"]
    assert float(lines[3].split(",")[1]) == m.history.history["loss"][2]


def test_reduce_lr_on_plateau_callback():
    x, y = blobs()
    m = model(lr=0.1)
    plateau = cbs.ReduceLROnPlateau(monitor="score", factor=0.5, patience=1, min_delta=0.0)
    h = m.fit(x, y, epochs=5, callbacks=[Scores([1.0, 1.0, 1.0, 0.5, 0.5]), plateau], verbose=0)
    assert h.history["lr"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05])
    assert m.optimizer.lr == pytest.approx(0.05)  # epoch 4 is the first bad one after the drop: patience 1 holds


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow warnings on the way to Inf
def test_terminate_on_nan_is_built_in():
    x, y = blobs()
    m = tn.Model(tn.Net([Dense(4, 1)]), MSE(), tn.optim.SGD(lr=1e30))
    with pytest.raises(tn.TrainingDiverged, match=r"at epoch 1, step \d/4"):
        m.fit(x, y[:, None].astype(np.float32) * 1e20, epochs=2, batch_size=32, verbose=0)
    assert m.epoch == 0 and len(m.history) == 0


def test_drop_last_and_batch_norm_with_a_one_sample_batch():
    x, y = blobs(101)
    m = model(bn=True)
    before = m.net.params.copy()
    with pytest.raises(ValueError, match=r"BatchNorm1d.*at least 2 samples.*101 samples and batch_size=50.*drop_last"):
        m.fit(x, y, epochs=1, batch_size=50, verbose=0)
    assert np.array_equal(m.net.params, before)  # refused before the first update
    rec = Recorder()
    m.fit(x, y, epochs=1, batch_size=50, drop_last=True, callbacks=[rec], verbose=0)
    assert rec.calls[0] == ("train_begin", 2, 100)
    with pytest.raises(ValueError, match="batch_size=1"):
        m.fit(x, y, batch_size=1, drop_last=True, verbose=0)
    model().fit(x, y, epochs=1, batch_size=50, verbose=0)  # no batch norm: a batch of 1 is fine


def test_gradient_clip_is_torchs_clip_grad_norm():
    """torch multiplies by min(1, clip / (norm + 1e-6)): also a norm a hair below clip shrinks."""
    seen = []

    class Keep:
        def step(self, params, grads):
            seen.append(grads.copy())

    tn.seed(0)
    net = tn.Net([Dense(4, 3)], dtype=np.float64)
    x, y = blobs(8)
    grads = tn.Model(net, SoftmaxCrossEntropy(), Keep()).train_step(x, y) and seen[-1]
    norm = float(np.linalg.norm(grads))
    for clip in (norm * 0.5, norm - 1e-7, norm * 2):
        tn.Model(net, SoftmaxCrossEntropy(), Keep(), gradient_clip=clip).train_step(x, y)
        np.testing.assert_allclose(seen[-1], grads * min(1.0, clip / (norm + 1e-6)), rtol=1e-12)
    assert not np.array_equal(seen[-2], grads)  # norm - 1e-7 < norm + 1e-6: scaled, as in torch


def test_callback_configs_round_trip(tmp_path):
    for cb in (
        cbs.ProgressBar(2),
        cbs.ModelCheckpoint(str(tmp_path / "m.npz"), monitor="val_accuracy", save_best_only=True),
        cbs.EarlyStopping(monitor="loss", min_delta=0.01, patience=3, restore_best_weights=True),
        cbs.CSVLogger(str(tmp_path / "l.csv"), separator=";", append=True),
        cbs.ReduceLROnPlateau(factor=0.2, patience=2, cooldown=1, min_lr=1e-5),
    ):
        again = type(cb).from_config(cb.get_config())
        assert again.get_config() == cb.get_config() and repr(again) == repr(cb)


def test_scheduler_callback_per_batch_and_errors():
    x, y = blobs(100)
    m = model(lr=0.1)
    sched = tn.optim.lr_scheduler.ExponentialLR(m.optimizer, gamma=0.5)
    m.fit(x, y, epochs=1, batch_size=25, callbacks=[cbs.SchedulerCallback(sched, "batch")], verbose=0)
    assert sched.last_epoch == 4 and math.isclose(m.optimizer.lr, 0.1 / 16)
    assert m.scheduler is None  # a scheduler passed as a callback is not the model's (not saved)
    with pytest.raises(ValueError, match="interval"):
        cbs.SchedulerCallback(sched, "step")


@pytest.mark.parametrize("kind", ["sequential", "plateau"])
def test_fit_with_composite_schedulers_saves_and_resumes_them(tmp_path, kind):
    x, y = blobs()

    def build():
        m = model(lr=0.1)
        opt = m.optimizer
        if kind == "sequential":
            warm = tn.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=4)
            cos = tn.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)
            return m, tn.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[4]), "batch"
        return m, tn.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.2), "epoch"

    full, sched, interval = build()
    full.fit(x, y, epochs=4, batch_size=40, scheduler=sched, scheduler_interval=interval, validation_data=(x, y),
             verbose=0)  # fmt: skip
    half, sched, interval = build()
    half.fit(x, y, epochs=2, batch_size=40, scheduler=sched, scheduler_interval=interval, validation_data=(x, y),
             verbose=0, checkpoint_path=tmp_path / "c.npz")  # fmt: skip
    resumed = tn.Model.load(tmp_path / "c.npz")
    assert type(resumed.scheduler) is type(sched) and resumed.scheduler.get_config() == sched.get_config()
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=40, validation_data=(x, y), verbose=0)
    assert resumed.history.history["lr"] == full.history.history["lr"]
    assert np.array_equal(resumed.net.params, full.net.params)  # resume: the same code path runs, bit for bit
    if kind == "plateau":
        assert len(set(full.history.history["lr"])) > 1  # the schedule did something
