"""Dense on (N, ..., C) input: the same weights at every position, fast and textbook paths."""

import numpy as np
import pytest

import tinynn as tn
from tinynn import layers as L


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 2, 5)])
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_nd_gradients(shape, fast, bias) -> None:
    tn.seed(0)
    layer = L.Dense(5, 3, bias=bias, b_init=tn.init.normal(0, 0.5))
    layer.fast = fast
    x = np.random.default_rng(1).standard_normal(shape)
    report = tn.gradcheck.check_layer(layer, x)
    assert report.passed, f"{layer!r}\n{report}"
    assert set(report) == {"input"} | {f"0.Dense.{p}" for p in layer.params}


@pytest.mark.parametrize("fast", [True, False])
def test_dense_nd_equals_rows(fast) -> None:
    """(N, T, C) gives, position by position, what the 2-D layer gives on the rows (N*T, C)."""
    tn.seed(0)
    net = tn.Net([L.Dense(5, 3)], dtype=np.float64, fast=fast)
    rng = np.random.default_rng(2)
    x, g = rng.standard_normal((4, 6, 5)), rng.standard_normal((4, 6, 3))
    y = net.forward(x)
    assert y.shape == (4, 6, 3)
    dx = net.backward(g, input_grad=True)
    grads = net.grads.copy()
    y2 = net.forward(x.reshape(-1, 5))
    dx2 = net.backward(g.reshape(-1, 3), input_grad=True)
    np.testing.assert_allclose(y, y2.reshape(y.shape), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx2.reshape(dx.shape), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads, net.grads, rtol=1e-12, atol=1e-12)
    assert net.layers[0].output_shape((None, 7, 5)) == (None, 7, 3)


def test_dense_nd_errors() -> None:
    layer = L.Dense(5, 3)
    with pytest.raises(ValueError, match=r"Dense\(5 -> 3\) got input of shape \(2, 4, 6\)"):
        layer.forward(np.zeros((2, 4, 6), np.float32))
    with pytest.raises(ValueError, match="Dense"):
        layer.forward(np.zeros(5, np.float32))
    layer.forward(np.zeros((2, 4, 5), np.float32))
    with pytest.raises(ValueError, match="backward got gradient of shape"):
        layer.backward(np.zeros((8, 3), np.float32))
