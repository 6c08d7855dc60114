"""Bad input gets a clear error naming the layer or loss, what was expected and what came."""

import re

import numpy as np
import pytest

import tinynn as tn
from tinynn import layers as L
from tinynn import losses


@pytest.fixture
def net():
    tn.seed(0)
    return tn.Net([L.Dense(784, 256), L.ReLU(), L.Dense(256, 10)])


def test_wrong_input_width(net):
    expected = r"Dense\(784 -> 256\) got input of shape \(32, 100\); expected \(batch, 784\)"
    with pytest.raises(ValueError, match=expected):
        net.forward(np.zeros((32, 100), np.float32))


def test_wrong_rank(net):
    with pytest.raises(ValueError, match=r"Net got input of shape \(784,\)"):
        net.forward(np.zeros(784, np.float32))
    with pytest.raises(ValueError, match=r"Dense\(784 -> 256\) got input of shape \(2, 28, 28\)"):
        net.forward(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm1d.*got input of shape \(4, 3, 2\)"):
        L.BatchNorm1d(3).forward(np.zeros((4, 3, 2), np.float32))


def test_empty_batch(net):
    with pytest.raises(ValueError, match=r"empty batch.*\(0, 784\)"):
        net.forward(np.zeros((0, 784), np.float32))
    with pytest.raises(ValueError, match="empty batch"):
        losses.MSE().loss(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_input(net, bad):
    x = np.zeros((4, 784), np.float32)
    x[2, 100] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        net.forward(x)


def test_huge_but_finite_input_is_not_mistaken_for_inf():
    net = tn.Net([L.Dense(4, 1, w_init="zeros")])
    x = np.full((2, 4), 3e38, np.float32)  # the sum overflows, the values are fine
    assert net.forward(x).shape == (2, 1)


def test_nan_in_preds_names_the_loss():
    preds = np.zeros((3, 4), np.float32)
    preds[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy.*NaN or Inf"):
        losses.SoftmaxCrossEntropy().loss(preds, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"MSE.*targets contain NaN"):
        losses.MSE().loss(np.zeros((2, 2)), np.array([[0, np.nan], [0, 0]]))


def test_mismatched_batch_sizes():
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy.*batch size 4.*targets have shape \(3,\)"):
        losses.SoftmaxCrossEntropy().loss(np.zeros((4, 10), np.float32), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"MSE.*\(4, 2\).*\(3, 2\)"):
        losses.MSE().loss(np.zeros((4, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy.*\(4, 1\).*\(5,\)"):
        losses.BinaryCrossEntropy().loss(np.zeros((4, 1)), np.zeros(5))
    with pytest.raises(ValueError, match=r"one-hot targets of shape \(4, 3\) do not match preds \(4, 10\)"):
        losses.SoftmaxCrossEntropy().loss(np.zeros((4, 10)), np.zeros((4, 3)))


def test_labels_out_of_range():
    with pytest.raises(ValueError, match=r"label 10 out of range for 10 classes \(expected 0..9\)"):
        losses.SoftmaxCrossEntropy().loss(np.zeros((2, 10)), np.array([3, 10]))
    with pytest.raises(ValueError, match=r"label -1 out of range"):
        losses.SoftmaxCrossEntropy().grad(np.zeros((2, 10)), np.array([-1, 0]))


def test_non_integer_labels():
    with pytest.raises(ValueError, match="labels must be integers"):
        losses.SoftmaxCrossEntropy().loss(np.zeros((2, 10)), np.array([0.5, 1.0]))
    with pytest.raises(TypeError, match="labels must be integers.*dtype <U1"):
        losses.SoftmaxCrossEntropy().loss(np.zeros((2, 10)), np.array(["a", "b"]))
    # Whole numbers stored as floats are fine.
    assert losses.SoftmaxCrossEntropy().loss(np.zeros((2, 10)), np.array([1.0, 2.0])) == pytest.approx(np.log(10))


def test_bce_targets_outside_unit_interval():
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy\(\): targets must be in \[0, 1\]"):
        losses.BinaryCrossEntropy().loss(np.zeros((2, 1)), np.array([[0.0], [2.0]]))


def test_unknown_initializer():
    with pytest.raises(ValueError, match=r"Dense\(3 -> 2\): unknown initializer 'glorious'; known: .*he_uniform"):
        L.Dense(3, 2, w_init="glorious")
    with pytest.raises(ValueError, match="unknown initializer"):
        tn.init.get("nope")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: L.Dense(0, 3), "in_features must be a positive integer"),
        (lambda: L.Dense(3, 2.5), "out_features must be a positive integer"),
        (lambda: L.Dropout(1.5), r"p \(the probability to drop\) must be in \[0, 1\]"),
        (lambda: L.LeakyReLU(-1), "slope must be >= 0"),
        (lambda: L.BatchNorm1d(0), "num_features"),
        (lambda: losses.Huber(0), "delta must be > 0"),
        (lambda: losses.SoftmaxCrossEntropy(label_smoothing=2), "label_smoothing"),
        (lambda: tn.Net([]), "at least one layer"),
        (lambda: tn.Net([L.ReLU()], dtype=np.int32), "floating-point"),
    ],
)
def test_bad_constructor_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_net_rejects_non_layers():
    with pytest.raises(TypeError, match="item 1 is 'relu', not a tinynn Layer"):
        tn.Net([L.Dense(2, 2), "relu"])


def test_batchnorm_needs_two_samples_in_training():
    with pytest.raises(ValueError, match="more than 1 sample"):
        L.BatchNorm1d(3).forward(np.zeros((1, 3), np.float32))


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        L.Dense(2, 2).backward(np.zeros((1, 2), np.float32))


def test_unknown_layer_in_config():
    with pytest.raises(ValueError, match="unknown layer type 'Conv9d'"):
        tn.Net.from_config({"layers": [{"type": "Conv9d", "config": {}}]})


@pytest.mark.parametrize("shape", [(), (0, 2), (-1, -1), (2.5,), "ab", None, (True,)])
def test_reshape_bad_shape(shape):
    with pytest.raises(ValueError, match="Reshape"):
        L.Reshape(shape)


def test_reshape_wrong_input_size():
    with pytest.raises(ValueError, match=r"Reshape.*\(4, 5\)"):
        L.Reshape((2, 2)).forward(np.zeros((4, 5)))


# --- one meaning per name: forward caches, one integer validator, one config idiom ---------------


def _every_layer():
    """Every built-in layer with an input shape it takes: (layer, x shape)."""
    from tinynn import layers as L

    flat = [L.Dense(3, 2), L.ReLU(), L.LeakyReLU(0.1), L.Sigmoid(), L.Tanh(), L.GELU(), L.Softmax(),
            L.Dropout(0.5), L.BatchNorm1d(3), L.Flatten(), L.Reshape((3,))]  # fmt: skip
    return [*((layer, (4, 3)) for layer in flat),
            (L.Conv2D(1, 2, 3), (4, 1, 5, 5)), (L.MaxPool2D(2), (4, 1, 4, 4)), (L.AvgPool2D(2), (4, 1, 4, 4)),
            (L.BatchNorm2d(3), (4, 3, 2, 2)), (L.RNN(3, 2), (4, 5, 3)), (L.LSTM(3, 2), (4, 5, 3)),
            (L.GRU(3, 2), (4, 5, 3)), (L.Embedding(3, 2), (4, 5)), (L.PositionalEmbedding(5, 3), (4, 5, 3)),
            (L.LayerNorm(3), (4, 5, 3)), (L.MultiHeadAttention(4, 2, causal=True), (4, 5, 4)),
            (L.PatchesToTokens(), (4, 3, 2, 2)), (L.TokenMean(), (4, 5, 3)),
            (L.Sequential([L.Dense(3, 2), L.Tanh()]), (4, 3)),
            (L.Residual([L.Dense(3, 3), L.ReLU()]), (4, 3)), (L.TransformerBlock(4, 2), (4, 5, 4)),
            (L.ContextWindow(3), (4, 5))]  # fmt: skip


@pytest.mark.parametrize("layer, shape", _every_layer(), ids=lambda v: type(v).__name__ if hasattr(v, "params") else "")
def test_backward_before_forward_names_the_layer(layer, shape):
    x = np.ones(shape, np.float32)
    out_shape = layer.forward(x).shape
    layer.free_scratch()  # the cache goes with the scratch arrays
    fresh = type(layer).from_config(layer.get_config())
    last = layer  # a block's last layer (at any depth) runs backward first
    while last.sublayers():
        last = last.sublayers()[-1]
    for one in (fresh, layer):
        with pytest.raises(RuntimeError, match=rf"{type(last).__name__}\(.*backward called before forward"):
            one.backward(np.ones(out_shape, np.float32))


def test_every_registered_layer_is_covered_above():
    assert {type(layer).__name__ for layer, _ in _every_layer()} == set(tn.layers.LAYERS)


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: tn.layers.BatchNorm1d(True), "BatchNorm1d: num_features must be a positive integer, got True"),
        (lambda: tn.layers.BatchNorm1d(3.0), "num_features"),
        (lambda: tn.layers.Dense(0, 3), "Dense: in_features must be a positive integer, got 0"),
        (lambda: tn.layers.Dense(2, np.int64(-1)), "out_features"),
        (lambda: tn.callbacks.EarlyStopping(patience=1.5), "patience must be an integer >= 0"),
    ],
)
def test_one_integer_validator(make, word):
    with pytest.raises(ValueError, match=re.escape(word)):
        make()


def test_fit_evaluate_predict_use_it_too():
    tn.seed(0)
    model = tn.Model(tn.Net([tn.layers.Dense(2, 2)]), tn.losses.MSE(), tn.optim.SGD())
    x = np.ones((4, 2), np.float32)
    for call, word in (
        (lambda: model.fit(x, x, epochs=True, verbose=0), "fit: epochs"),
        (lambda: model.fit(x, x, batch_size=2.0, verbose=0), "fit: batch_size"),
        (lambda: model.evaluate(x, x, batch_size=0), "evaluate: batch_size"),
        (lambda: model.predict(x, batch_size=-3), "predict: batch_size"),
    ):
        with pytest.raises(ValueError, match=word):
            call()


def test_get_config_from_config_everywhere():
    for layer, _ in _every_layer():
        again = type(layer).from_config(layer.get_config())
        assert type(again) is type(layer) and again.get_config() == layer.get_config()
    for loss in (tn.losses.MSE(), tn.losses.Huber(2.0), tn.losses.SoftmaxCrossEntropy(label_smoothing=0.1)):
        assert repr(type(loss).from_config(loss.get_config())) == repr(loss)
    opt = tn.optim.RMSProp(lr=0.3, centered=True)
    assert repr(tn.optim.RMSProp.from_config(opt.get_config())) == repr(opt)
    sched = tn.optim.lr_scheduler.StepLR(opt, 3, 0.5)
    assert repr(tn.optim.lr_scheduler.StepLR.from_config(sched.get_config(), opt)) == repr(sched)
    cb = tn.callbacks.EarlyStopping(patience=2)
    assert repr(tn.callbacks.EarlyStopping.from_config(cb.get_config())) == repr(cb)
