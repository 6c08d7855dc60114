"""Training edges: NaN labels, soft targets that are not probabilities, Sigmoid and BCE in the far tails."""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest

import tinynn as tn
from tinynn import losses
from tinynn.layers import Sigmoid


def _sigmoid_exact(x: float) -> float:
    """1 / (1 + exp(-x)) in 60-digit decimal arithmetic, rounded once to float64."""
    with localcontext() as ctx:
        ctx.prec = 60
        return float(1 / (1 + (-Decimal(float(x))).exp()))


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    want = want.astype(got.dtype)
    return np.abs(got.astype(np.float64) - want.astype(np.float64)) / np.spacing(np.abs(want)).astype(np.float64)


# ---------------------------------------------------------------------------- labels


@pytest.mark.parametrize("labels", [np.array([0.0, 1.0, np.nan]), np.array([0, 1, np.nan], dtype=np.float32)])
def test_nan_label_is_reported_as_a_nan_label(labels):
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy.*NaN label at index 2"):
        losses.SoftmaxCrossEntropy().loss(np.zeros((3, 4), np.float32), labels)
    with pytest.raises(ValueError, match=r"non-integer label 1.5 at index 0"):
        losses.SoftmaxCrossEntropy().loss(np.zeros((1, 4), np.float32), np.array([1.5]))


def test_nan_label_in_fit_is_reported_before_any_update():
    tn.seed(0)
    model = tn.Model(tn.Net([tn.layers.Dense(4, 3)]), losses.SoftmaxCrossEntropy(), tn.optim.SGD(lr=0.1))
    before = model.net.params.copy()
    y = np.array([0, 1, 2, np.nan] * 2)
    with pytest.raises(ValueError, match="NaN label at index 3"):
        model.fit(np.ones((8, 4), np.float32), y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_array_equal(model.net.params, before)


@pytest.mark.parametrize("loss", [losses.MSE(), losses.BinaryCrossEntropy()])
def test_nan_or_inf_targets_say_which(loss):
    t = np.array([[0.0, 1.0], [np.nan, 0.0]])
    with pytest.raises(ValueError, match=r"targets contain NaN \(first at index \(1, 0\)\)"):
        loss.loss(np.zeros((2, 2)), t)
    with pytest.raises(ValueError, match=r"targets contain -inf"):
        loss.loss(np.zeros((2, 2)), np.array([[0.0, -np.inf], [0.0, 0.0]]))


# ---------------------------------------------------------------------------- soft targets


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_soft_targets_must_be_probability_rows(smoothing):
    loss = losses.SoftmaxCrossEntropy(label_smoothing=smoothing)
    z = np.random.default_rng(0).standard_normal((3, 4))
    good = np.array([[0.25, 0.25, 0.5, 0.0], [1, 0, 0, 0], [0.1, 0.2, 0.3, 0.4]])
    loss.loss_and_grad(z, good)
    for bad, msg in [
        (good * 2, r"row 0 sums to 2"),
        (np.array([[0.25, 0.25, 0.5, 0.0], [1, 0, 0, 0], [0.1, 0.2, 0.3, 0.3]]), r"row 2 sums to 0.9"),
        (np.array([[0.25, 0.25, 0.5, 0], [1.5, -0.5, 0, 0], [0.1, 0.2, 0.3, 0.4]]), r"row 1 .* smallest entry is -0.5"),
        (np.zeros((3, 4)), r"row 0 sums to 0"),
    ]:
        with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy.*probabilities.*" + msg):
            loss.loss_and_grad(z, bad)


def test_soft_targets_from_a_float32_softmax_are_accepted():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((64, 1000)).astype(np.float32) * 5
    t = np.exp(logits - logits.max(1, keepdims=True))
    t /= t.sum(1, keepdims=True)  # float32 rounding: rows sum to 1 within a few 1e-7
    loss, grad = losses.SoftmaxCrossEntropy().loss_and_grad(np.zeros_like(t), t)
    assert np.isfinite(loss)
    np.testing.assert_allclose(grad.sum(1), 0, atol=1e-6)  # the gradient of a valid target row sums to 0


# ---------------------------------------------------------------------------- the far tails


@pytest.mark.parametrize(
    "dtype, lo, hi", [(np.float64, -700.0, 36.0), (np.float32, -87.0, 16.0)]
)
def test_sigmoid_full_relative_precision_in_the_tails(dtype, lo, hi):
    x = np.concatenate([np.linspace(lo, hi, 2001), [-40.0, -30.0, -1e-8, 0.0, 1e-8]]).astype(dtype)
    want = np.array([_sigmoid_exact(v) for v in x])
    got = Sigmoid().forward(x.reshape(1, -1)).ravel()
    assert got.dtype == dtype
    assert _ulps(got, want).max() <= 4  # exp, add, divide: a few ulp, at every x (the old formula: 1e18 ulp at -40)
    if dtype == np.float64:
        assert got[-5] == pytest.approx(4.248354255291589e-18, rel=1e-15)  # not 0, as (1 + tanh(x/2)) / 2 gave
    # the ends, without warnings: overflowing exp(-x) gives exactly 0, and 1 at the top
    with np.errstate(all="raise"):
        ends = Sigmoid().forward(np.array([[-1e4, -800.0, 800.0, 1e4, -np.inf, np.inf]], dtype))
    np.testing.assert_array_equal(ends, [[0, 0, 1, 1, 0, 1]])


@pytest.mark.parametrize("huge", [None, 1000.0, np.inf])
def test_sigmoid_backward_in_both_tails(huge):
    x = np.array([[-40.0, -30.0, -5.0, 0.0, 5.0, 30.0, 40.0]])
    if huge is not None:  # one value whose exp overflows: the others must stay as exact
        x = np.concatenate([x, [[huge]]], axis=1)
    layer = Sigmoid()
    s = layer.forward(x)
    dx = layer.backward(np.ones_like(x))
    exact = np.array([_sigmoid_exact(v) for v in x.ravel()])
    want = exact * np.array([_sigmoid_exact(-v) for v in x.ravel()])  # s (1 - s) = s(x) s(-x)
    assert _ulps(s.ravel(), exact).max() <= 4
    assert _ulps(dx.ravel()[:7], want[:7]).max() <= 6  # sigmoid'(40) = 4.2e-18 too, where s * (1 - s) gives 0
    if huge is not None:
        assert s[0, -1] == 1 and 0 <= dx[0, -1] < 1e-300  # from the capped x: the true value underflows


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_gradient_and_loss_keep_relative_precision_in_the_tails(dtype):
    z = np.array([-700.0, -80.0, -40.0, -30.0, -2.0, 0.0, 2.0, 30.0, 40.0, 80.0], dtype)
    if dtype == np.float32:
        z = z[1:]  # -700 is out of float32's range of sigmoid
    t = np.zeros_like(z)
    loss, grad = losses.BinaryCrossEntropy().loss_and_grad(z.reshape(-1, 1), t.reshape(-1, 1))
    s = np.array([_sigmoid_exact(v) for v in z])
    assert _ulps(grad.ravel() * z.size, s).max() <= 4  # (s - 0) / n, s alone
    # target 1 on the right tail: the loss there is log(1 + exp(-z)) ~ exp(-z), tiny but exact
    loss1, grad1 = losses.BinaryCrossEntropy().loss_and_grad(np.array([[40.0]], dtype), np.ones((1, 1), dtype))
    assert loss1 == pytest.approx(float(np.exp(-40.0)), rel=1e-6)
    assert grad1[0, 0] == pytest.approx(-float(np.exp(-40.0)), rel=1e-5)
    # target 0 on the left tail likewise
    loss0, _ = losses.BinaryCrossEntropy().loss_and_grad(np.array([[-40.0]], dtype), np.zeros((1, 1), dtype))
    assert loss0 == pytest.approx(float(np.exp(-40.0)), rel=1e-6)
