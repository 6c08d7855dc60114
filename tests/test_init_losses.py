"""Initializers' statistics and losses' values against their formulas."""

import math

import numpy as np
import pytest

import tinynn as tn
from tinynn import losses


@pytest.mark.parametrize(
    "name, std",
    [
        ("xavier_uniform", math.sqrt(2 / (400 + 300))),
        ("xavier_normal", math.sqrt(2 / (400 + 300))),
        ("glorot_normal", math.sqrt(2 / (400 + 300))),
        ("he_uniform", math.sqrt(2 / 400)),
        ("he_normal", math.sqrt(2 / 400)),
        ("kaiming_normal", math.sqrt(2 / 400)),
    ],
)
def test_variance_scaling_initializers(name, std):
    tn.seed(0)
    w = tn.init.get(name)((400, 300), np.float32)
    assert w.dtype == np.float32 and w.shape == (400, 300)
    assert abs(w.mean()) < 0.01 * std * 10
    assert w.std() == pytest.approx(std, rel=0.02)


def test_uniform_bounds_and_gain():
    tn.seed(0)
    w = tn.init.he_uniform(gain=1.0)((300, 10), np.float64)
    bound = math.sqrt(3 / 300)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    w = tn.init.xavier_uniform(gain=2.0)((100, 100))
    assert np.abs(w).max() <= 2 * math.sqrt(6 / 200)


def test_simple_initializers():
    assert np.array_equal(tn.init.zeros((2, 3)), np.zeros((2, 3)))
    assert np.array_equal(tn.init.ones((2,)), np.ones(2))
    assert np.array_equal(tn.init.constant(0.5)((3,)), np.full(3, 0.5, np.float32))
    tn.seed(0)
    u = tn.init.uniform(-2, -1)((1000,))
    assert u.min() >= -2 and u.max() <= -1
    n = tn.init.normal(3, 0.1)((10000,))
    assert n.mean() == pytest.approx(3, abs=0.01) and n.std() == pytest.approx(0.1, rel=0.05)


def test_initializers_follow_the_seed():
    tn.seed(4)
    a = tn.layers.Dense(5, 5).params["w"].copy()
    tn.seed(4)
    assert np.array_equal(a, tn.layers.Dense(5, 5).params["w"])


def test_dense_default_is_he_uniform_with_zero_bias():
    tn.seed(0)
    d = tn.layers.Dense(600, 400)
    assert not d.params["b"].any()
    assert d.params["w"].std() == pytest.approx(math.sqrt(2 / 600), rel=0.02)
    assert np.abs(d.params["w"]).max() <= math.sqrt(6 / 600)


# --- every initializer on every layer's weight layout -----------------------------------------
# Each weight has >= 100k entries: the sample std of n draws is off by ~0.5/sqrt(n) = 0.16% (one
# standard error, uniform or normal), so a 2% tolerance is > 10 standard errors and the seed is fixed.
# In each layout fan_in != fan_out by a factor >= 4, so swapping the fans moves He's std by >= 2x.

def dense_layout(init):  # w (in, out), x @ w
    layer = tn.layers.Dense(800, 200, w_init=init)
    return layer.params["w"], (800, 200)


def conv_layout(init):  # w (out, in, kh, kw) = (40, 200, 5, 3); torch's fans: in*kh*kw, out*kh*kw
    layer = tn.layers.Conv2D(200, 40, (5, 3), w_init=init)
    assert layer.params["w"].shape == (40, 200, 5, 3)
    return layer.params["w"], (200 * 15, 40 * 15)


LAYOUTS = {"Dense": dense_layout, "Conv2D": conv_layout}
FORMULAS = {  # name -> (std, bound of a uniform init or None) from (fan_in, fan_out)
    "he_uniform": lambda i, o: (math.sqrt(2 / i), math.sqrt(6 / i)),
    "kaiming_uniform": lambda i, o: (math.sqrt(2 / i), math.sqrt(6 / i)),
    "he_normal": lambda i, o: (math.sqrt(2 / i), None),
    "kaiming_normal": lambda i, o: (math.sqrt(2 / i), None),
    "xavier_uniform": lambda i, o: (math.sqrt(2 / (i + o)), math.sqrt(6 / (i + o))),
    "glorot_uniform": lambda i, o: (math.sqrt(2 / (i + o)), math.sqrt(6 / (i + o))),
    "xavier_normal": lambda i, o: (math.sqrt(2 / (i + o)), None),
    "glorot_normal": lambda i, o: (math.sqrt(2 / (i + o)), None),
}


def check_stats(w: np.ndarray, std: float, bound: float | None) -> None:
    assert w.size >= 100_000
    assert w.std() == pytest.approx(std, rel=0.02)
    assert abs(w.mean()) < 0.02 * std  # the standard error of the mean is std/sqrt(n) < 0.004 std
    if bound is not None:  # U(-a, a): nothing beyond a, and 100k draws come within 1% of it
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_every_initializer_on_every_layout(name, layout):
    tn.seed(0)
    w, (fan_in, fan_out) = LAYOUTS[layout](name)
    check_stats(w, *FORMULAS[name](fan_in, fan_out))


def test_conv_default_init_uses_in_channels_times_kernel():
    """Conv2D(1, 6, 5): he_uniform with fan_in 1*5*5 = 25, std sqrt(2/25) = 0.283 (not 6*25's 0.115)."""
    tn.seed(0)
    w = np.concatenate([tn.layers.Conv2D(1, 6, 5).params["w"].ravel() for _ in range(700)])  # 105k draws
    check_stats(w, math.sqrt(2 / 25), math.sqrt(6 / 25))


def test_layers_tell_the_initializer_their_fans():
    seen = []

    def record(shape, dtype, fans):
        seen.append((shape, fans))
        return np.zeros(shape, dtype)

    tn.layers.Dense(3, 4, w_init=record, b_init=record)
    tn.layers.Conv2D(2, 5, (3, 4), w_init=record, b_init=record)
    assert seen == [((3, 4), (3, 4)), ((4,), (3, 4)), ((5, 2, 3, 4), (24, 60)), ((5,), (24, 60))]


def test_bias_init_gets_the_weights_fans():
    """With the weight's fans, he_uniform(gain=1/sqrt(3)) is torch's default bias U(+-1/sqrt(fan_in))."""
    tn.seed(0)
    conv = tn.layers.Conv2D(8, 100_000, (2, 2), b_init=tn.init.he_uniform(gain=1 / math.sqrt(3)))
    check_stats(conv.params["b"], 1 / math.sqrt(3 * 32), 1 / math.sqrt(32))


def test_a_shape_without_fans_is_refused():
    with pytest.raises(ValueError, match="fans"):
        tn.init.he_normal()((4, 3, 2, 2), np.float32)
    with pytest.raises(ValueError, match="fans"):
        tn.init.xavier_uniform()((3, 3), np.float32, (0, 3))
    w = tn.init.he_normal()((4, 3, 2, 2), np.float32, (12, 16))  # the layer says
    assert w.shape == (4, 3, 2, 2)


@pytest.mark.parametrize("cls, size", [("RNN", (400, 256)), ("LSTM", (200, 128)), ("GRU", (200, 160))])
def test_recurrent_init_is_torchs(cls, size):
    """RNN/LSTM/GRU draw every weight and bias from U(-1/sqrt(H), 1/sqrt(H)), as torch does, stored
    transposed from torch's (G*H, in) to the x @ w layout (in, G*H)."""
    tn.seed(0)
    layer = getattr(tn.layers, cls)(*size)
    n_in, h = size
    gh = layer.gates * h
    assert layer.params["w_x"].shape == (n_in, gh) and layer.params["w_h"].shape == (h, gh)
    every = np.concatenate([p.ravel() for p in layer.params.values()])
    check_stats(every, 1 / math.sqrt(3 * h), 1 / math.sqrt(h))
    for name in ("w_x", "w_h"):  # each one alone: >= 20k draws, std within 5% (> 7 standard errors)
        assert layer.params[name].std() == pytest.approx(1 / math.sqrt(3 * h), rel=0.05)


r = np.random.default_rng(0)
P = r.standard_normal((6, 4))
T = r.standard_normal((6, 4))


def test_mse_mae_huber_values():
    assert losses.MSE().loss(P, T) == pytest.approx(((P - T) ** 2).mean())
    assert losses.MAE().loss(P, T) == pytest.approx(np.abs(P - T).mean())
    d = np.abs(P - T)
    huber = np.where(d <= 0.5, 0.5 * d**2, 0.5 * (d - 0.25)).mean()
    assert losses.Huber(0.5).loss(P, T) == pytest.approx(huber)


def test_softmax_cross_entropy_value():
    y = np.array([0, 3, 1, 2, 2, 0])
    logp = P - np.log(np.exp(P).sum(1, keepdims=True))
    assert losses.SoftmaxCrossEntropy().loss(P, y) == pytest.approx(-logp[np.arange(6), y].mean())
    onehot = np.eye(4)[y]
    assert losses.SoftmaxCrossEntropy().loss(P, onehot) == pytest.approx(-logp[np.arange(6), y].mean())
    smooth = 0.9 * onehot + 0.1 / 4
    assert losses.SoftmaxCrossEntropy(0.1).loss(P, y) == pytest.approx(-(smooth * logp).sum(1).mean())
    # Its gradient is (softmax - onehot) / N.
    p = np.exp(logp)
    assert np.allclose(losses.SoftmaxCrossEntropy().grad(P, y), (p - onehot) / 6)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    preds = np.array([[1e4, 0, -1e4], [-1e4, 1e4, 0]], dtype=np.float32)
    loss, grad = losses.SoftmaxCrossEntropy().loss_and_grad(preds, np.array([2, 1]))
    assert loss == pytest.approx(2e4 / 2, rel=1e-6) and np.isfinite(grad).all()


def test_binary_cross_entropy_value_and_stability():
    z = np.array([[-2.0], [0.5], [3.0]])
    t = np.array([0.0, 1.0, 1.0])
    s = 1 / (1 + np.exp(-z[:, 0]))
    expected = -(t * np.log(s) + (1 - t) * np.log(1 - s)).mean()
    assert losses.BinaryCrossEntropy().loss(z, t) == pytest.approx(expected)
    big = np.array([[800.0, -800.0]], dtype=np.float32)
    loss, grad = losses.BinaryCrossEntropy().loss_and_grad(big, np.array([[0.0, 1.0]]))
    assert loss == pytest.approx(800, rel=1e-6) and np.isfinite(grad).all()


def test_losses_keep_float32():
    p32 = P.astype(np.float32)
    for loss, t in [(losses.MSE(), T), (losses.MAE(), T), (losses.Huber(), T),
                    (losses.SoftmaxCrossEntropy(0.1), np.array([0, 1, 2, 3, 0, 1])),
                    (losses.BinaryCrossEntropy(), (T > 0).astype(np.float64))]:
        value, grad = loss.loss_and_grad(p32, t)
        assert isinstance(value, float) and grad.dtype == np.float32, loss
