"""Model.fit / evaluate / predict: real MNIST learning, History, schedulers, divergence, verbosity, uint8."""

from __future__ import annotations

import numpy as np
import pytest

import tinynn as tn
from tinynn.layers import Dense, Dropout, ReLU
from tinynn.losses import MSE, SoftmaxCrossEntropy
from tinynn.model import TrainingDiverged
from tinynn.optim.lr_scheduler import ExponentialLR, StepLR


@pytest.fixture(scope="module")
def mnist():
    """The vendored MNIST as uint8 (the way the CLI loads it)."""
    return tn.data.load_mnist(dtype=np.uint8)


def mlp(hidden=64, dropout=0.0, lr=1e-3, optimizer="adam", seed=0):
    tn.seed(seed)
    layers = [Dense(784, hidden), ReLU()] + ([Dropout(dropout)] if dropout else []) + [Dense(hidden, 10)]
    return tn.Model(tn.Net(layers), SoftmaxCrossEntropy(), tn.optim.get(optimizer, lr=lr))


def test_short_training_on_real_mnist_beats_90_percent(mnist):
    (x, y), (xt, yt) = mnist
    model = mlp(hidden=128, lr=2e-3)
    history = model.fit(x[:5000], y[:5000], epochs=4, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    scores = model.evaluate(xt, yt)  # all 10,000 held-out test images
    assert scores["accuracy"] > 0.90, scores


def test_history_keys_lengths_and_validation(mnist):
    (x, y), (xt, yt) = mnist
    model = mlp()
    h = model.fit(x[:1000], y[:1000], epochs=3, batch_size=100, validation_data=(xt[:500], yt[:500]), verbose=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert all(len(v) == 3 for v in h.history.values())
    assert h.epoch == [0, 1, 2] and model.epoch == 3 and model.history is h
    assert all(0 <= a <= 1 for a in h.history["accuracy"] + h.history["val_accuracy"])
    # val metrics are exactly what evaluate reports for the final parameters
    final = model.evaluate(xt[:500], yt[:500])
    assert h.history["val_loss"][-1] == pytest.approx(final["loss"])
    assert h.history["val_accuracy"][-1] == final["accuracy"]
    assert all(t > 0 for t in h.history["time"])

    h2 = model.fit(x[:1000], y[:1000], epochs=5, initial_epoch=3, verbose=0)  # Keras semantics
    assert h2 is h and h2.epoch == [0, 1, 2, 3, 4]  # model.history: every epoch the model trained
    assert len(h2.history["val_loss"]) == 5 and np.isnan(h2.history["val_loss"][3:]).all()


def test_train_accuracy_comes_from_the_batch_predictions(mnist):
    """With lr=0 the parameters never move, so fit's loss/accuracy must equal evaluate's."""
    (x, y), _ = mnist
    model = mlp(optimizer="sgd", lr=0.0)
    h = model.fit(x[:700], y[:700], epochs=1, batch_size=64, verbose=0)
    ref = model.evaluate(x[:700], y[:700])
    # Batches of 64 against evaluate's one batch: BLAS may round the logits differently (another
    # kernel), which can flip the argmax of a near-tie; one image is the most that may change.
    assert h.history["accuracy"][0] == pytest.approx(ref["accuracy"], abs=1.01 / 700)
    assert h.history["loss"][0] == pytest.approx(ref["loss"], rel=1e-5)


def test_regression_loss_has_no_accuracy():
    tn.seed(0)
    x = tn.get_rng().standard_normal((200, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    model = tn.Model(tn.Net([Dense(3, 1)]), MSE(), tn.optim.get("sgd", lr=0.1))
    h = model.fit(x, y, epochs=20, batch_size=20, validation_data=(x, y), verbose=0)
    assert "accuracy" not in h.history and "val_accuracy" not in h.history
    assert h.history["loss"][-1] < 1e-3 * h.history["loss"][0]
    assert set(model.evaluate(x, y)) == {"loss"}


def test_scheduler_per_epoch(mnist):
    (x, y), _ = mnist
    model = mlp(lr=1e-3)
    sched = StepLR(model.optimizer, step_size=1, gamma=0.5)
    h = model.fit(x[:300], y[:300], epochs=3, batch_size=100, scheduler=sched, verbose=0)
    assert h.history["lr"] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert model.optimizer.lr == pytest.approx(1.25e-4)
    assert sched.last_epoch == 3 and model.scheduler is sched


def test_scheduler_per_batch(mnist):
    (x, y), _ = mnist
    model = mlp(lr=1e-3)
    sched = ExponentialLR(model.optimizer, gamma=0.9)
    h = model.fit(x[:95], y[:95], epochs=2, batch_size=10, scheduler=sched, scheduler_interval="batch", verbose=0)
    # 95 samples / 10 = 10 batches (last one partial) per epoch
    assert h.history["lr"] == pytest.approx([1e-3, 1e-3 * 0.9**10])
    assert model.optimizer.lr == pytest.approx(1e-3 * 0.9**20)
    assert sched.last_epoch == 20


def test_fit_argument_errors(mnist):
    (x, y), _ = mnist
    model = mlp()
    with pytest.raises(ValueError, match="initial_epoch"):
        model.fit(x[:10], y[:10], epochs=2, initial_epoch=3, verbose=0)
    with pytest.raises(ValueError, match="scheduler_interval"):
        model.fit(x[:10], y[:10], epochs=1, scheduler_interval="step", verbose=0)
    with pytest.raises(ValueError, match="different optimizer"):
        model.fit(x[:10], y[:10], scheduler=StepLR(tn.optim.Adam(), 1), verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit(x[:10], y[:9], verbose=0)
    with pytest.raises(ValueError, match="epochs"):
        model.fit(x[:10], y[:10], epochs=0, verbose=0)
    assert model.epoch == 0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow warnings on the way to Inf
@pytest.mark.parametrize("loss", ["softmax", "mse"])
def test_divergence_raises_clear_error(mnist, loss):
    (x, y), _ = mnist
    tn.seed(0)
    if loss == "softmax":
        model = tn.Model(tn.Net([Dense(784, 32), ReLU(), Dense(32, 10)]), SoftmaxCrossEntropy(), tn.optim.SGD(lr=1e20))
        targets = y[:512]
    else:
        model = tn.Model(tn.Net([Dense(784, 32), ReLU(), Dense(32, 1)]), MSE(), tn.optim.SGD(lr=1e8))
        targets = y[:512].astype(np.float32)
    with pytest.raises(TrainingDiverged, match=r"NaN or Inf at epoch 1, step \d+/8.*lower learning rate") as info:
        model.fit(x[:512], targets, epochs=3, batch_size=64, verbose=0)
    assert isinstance(info.value, RuntimeError)
    assert model.epoch == 0  # no epoch was recorded as completed


def test_a_loss_error_on_finite_predictions_is_not_divergence():
    """Divergence is read from the values: bad labels raise the loss's own ValueError."""
    tn.seed(0)
    model = tn.Model(tn.Net([Dense(3, 4)]), SoftmaxCrossEntropy(), tn.optim.SGD(lr=0.1))
    x, y = np.ones((8, 3), np.float32), np.full(8, 7)  # class 7 of 4
    with pytest.raises(ValueError, match="SoftmaxCrossEntropy") as info:
        model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert not isinstance(info.value, TrainingDiverged)


def test_nan_parameters_after_the_last_step_are_caught(mnist):
    """Even when no later forward pass would notice, fit never returns NaN parameters silently."""
    (x, y), _ = mnist

    class Poison:
        def __init__(self):
            self.calls = 0

        def step(self, params, grads):
            self.calls += 1
            if self.calls == 4:  # the last step of the epoch
                params[7] = np.nan

    tn.seed(0)
    model = tn.Model(tn.Net([Dense(784, 10)]), SoftmaxCrossEntropy(), Poison())
    with pytest.raises(TrainingDiverged, match=r"parameters became NaN or Inf at epoch 1, step 4/4"):
        model.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)


def test_verbosity(mnist, capsys):
    (x, y), (xt, yt) = mnist
    model = mlp()
    model.fit(x[:200], y[:200], epochs=2, batch_size=50, validation_data=(xt[:100], yt[:100]), verbose=0)
    out, err = capsys.readouterr()
    assert out == "" and err == ""

    model.fit(x[:200], y[:200], epochs=2, batch_size=50, validation_data=(xt[:100], yt[:100]), verbose=2)
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 2 and err == ""
    assert lines[1].startswith("Epoch 2/2") and "val_accuracy:" in lines[1] and "loss:" in lines[1]

    model.fit(x[:200], y[:200], epochs=1, batch_size=50, verbose=1)
    out, err = capsys.readouterr()
    assert out.startswith("Epoch 1/1") and "Epoch 1/1" in err  # summary on stdout, bar on stderr


def test_uint8_input_matches_float_input(mnist):
    (x, y), (xt, yt) = mnist
    xf = x[:600].astype(np.float32) / np.float32(255)
    a, b = mlp(dropout=0.2), mlp(dropout=0.2)  # same seed, so same init
    tn.seed(5)
    a.fit(x[:600], y[:600], epochs=2, batch_size=64, verbose=0)
    tn.seed(5)
    b.fit(xf, y[:600], epochs=2, batch_size=64, verbose=0)
    # Bit for bit: uint8 is converted to the same float32 values first, then the same code path runs.
    assert np.array_equal(a.net.params, b.net.params)
    xtf = xt[:300].astype(np.float32) / np.float32(255)
    assert np.array_equal(a.predict(xt[:300]), a.predict(xtf))
    assert a.predict(xt[:300]).dtype == np.float32
    assert a.evaluate(xt[:300], yt[:300]) == a.evaluate(xtf, yt[:300])


def test_evaluate_batches_and_restores_mode(mnist):
    _, (xt, yt) = mnist
    model = mlp(dropout=0.5)
    model.net.train()
    whole = model.evaluate(xt[:1000], yt[:1000], batch_size=1000)
    small = model.evaluate(xt[:1000], yt[:1000], batch_size=33)
    assert model.net.training  # mode restored
    # Other batch sizes round differently (BLAS kernels): a near-tie's argmax may flip, one image at most.
    assert whole["accuracy"] == pytest.approx(small["accuracy"], abs=1.01 / 1000)
    assert whole["loss"] == pytest.approx(small["loss"], rel=1e-5)
    assert whole["accuracy"] == pytest.approx(tn.metrics.accuracy(model.predict(xt[:1000]), yt[:1000]), abs=1.01 / 1000)
    model.net.eval()
    model.evaluate(xt[:10], yt[:10])
    assert not model.net.training
    with pytest.raises(ValueError, match="batch_size"):
        model.evaluate(xt[:10], yt[:10], batch_size=0)


def test_binary_cross_entropy_reports_accuracy(mnist):
    (x, y), (xt, yt) = mnist
    tn.seed(0)
    model = tn.Model(tn.Net([Dense(784, 1)]), tn.losses.BinaryCrossEntropy(), tn.optim.Adam(lr=1e-2))
    is_zero = (y[:2000] == 0).astype(np.float32)  # (N,) targets for (N, 1) logits
    h = model.fit(x[:2000], is_zero, epochs=2, batch_size=100, verbose=0,
                  validation_data=(xt[:1000], (yt[:1000] == 0).astype(np.float32)))  # fmt: skip
    assert h.history["accuracy"][-1] > 0.95 and h.history["val_accuracy"][-1] > 0.95
    logits = model.predict(xt[:1000])[:, 0]
    assert h.history["val_accuracy"][-1] == np.mean((logits > 0) == (yt[:1000] == 0))
