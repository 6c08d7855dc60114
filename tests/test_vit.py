"""The vision transformer's own layers (PatchesToTokens, TokenMean): gradient checks, the torch
formula they implement, shapes and errors."""

from __future__ import annotations

import numpy as np
import pytest

import tinynn as tn
from tinynn import layers as L

TOL = 1e-6


# --- PatchesToTokens ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (3, 5, 2, 3), (1, 1, 1, 1)])
def test_patches_to_tokens_gradients(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).standard_normal(shape)
    report = tn.gradcheck.check_layer(L.PatchesToTokens(), x)
    assert report.passed, report
    assert set(report) == {"input"}


def test_patches_to_tokens_is_torchs_flatten_transpose() -> None:
    """Token r*W + c holds the D features of grid cell (r, c): x.flatten(2).transpose(1, 2)."""
    x = np.arange(2 * 3 * 2 * 4, dtype=np.float64).reshape(2, 3, 2, 4)
    y = L.PatchesToTokens().forward(x)
    assert y.shape == (2, 8, 3)
    for r in range(2):
        for c in range(4):
            np.testing.assert_array_equal(y[:, r * 4 + c, :], x[:, :, r, c])
    assert L.PatchesToTokens().output_shape((None, 64, 4, 4)) == (None, 16, 64)


def test_patch_embedding_net_gradients() -> None:
    """Conv2D with stride = kernel cuts the image into patches; the tokens feed attention."""
    tn.seed(0)
    net = tn.Net([L.Conv2D(2, 4, 3, stride=3), L.PatchesToTokens(), L.PositionalEmbedding(4, 4),
                  L.MultiHeadAttention(4, 2), L.TokenMean(), L.Dense(4, 3)], dtype=np.float64)  # fmt: skip
    x = np.random.default_rng(1).standard_normal((3, 2, 6, 6))
    report = tn.gradcheck.check_net(net, x)
    assert report.passed, report
    assert net.forward(x).shape == (3, 3)


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 12), (2, 3, 4, 4, 1)])
def test_patches_to_tokens_bad_input(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"PatchesToTokens\(\) got input of shape .*\(batch, channels, height"):
        L.PatchesToTokens().forward(np.zeros(shape))


def test_patches_to_tokens_bad_gradient() -> None:
    layer = L.PatchesToTokens()
    layer.forward(np.zeros((2, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"PatchesToTokens\(\): backward got gradient of shape \(2, 3, 4\); "
                                         r"expected \(2, 4, 3\)"):
        layer.backward(np.zeros((2, 3, 4)))


# --- TokenMean ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 5, 4), (2, 1, 3)])
def test_token_mean_gradients(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).standard_normal(shape)
    layer = L.TokenMean()
    report = tn.gradcheck.check_layer(layer, x)
    assert report.passed, report
    np.testing.assert_allclose(layer.forward(x), x.mean(axis=1), rtol=1e-15)
    assert layer.output_shape((None, 16, 64)) == (None, 64)


@pytest.mark.parametrize("shape", [(2, 3), (2, 0, 3), (2, 3, 4, 5)])
def test_token_mean_bad_input(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"TokenMean\(\) got input of shape .*\(batch, time, features\)"):
        L.TokenMean().forward(np.zeros(shape))


def test_token_mean_bad_gradient() -> None:
    layer = L.TokenMean()
    layer.forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"TokenMean\(\): backward got gradient of shape \(2, 3, 4\); "
                                         r"expected \(2, 4\)"):
        layer.backward(np.zeros((2, 3, 4)))


def test_float32_stays_float32() -> None:
    tn.seed(0)
    net = tn.Net([L.Reshape((1, 8, 8)), L.Conv2D(1, 4, 4, stride=4), L.PatchesToTokens(), L.TokenMean()])
    y = net.forward(np.ones((2, 64), np.float32))
    assert y.dtype == np.float32 and y.shape == (2, 4)
    assert net.backward(np.ones((2, 4), np.float32), input_grad=True).dtype == np.float32
