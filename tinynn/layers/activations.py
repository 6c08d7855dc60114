"""Elementwise activations and softmax."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..textbook import dense as textbook
from .base import Layer, register_layer


@register_layer
class ReLU(Layer):
    """``y = max(x, 0)``; ``dL/dx = g * [x > 0]``.

    Both are one multiply by the same 0/1 mask, kept from forward for backward: ``y = x * mask``
    (equal to ``max(x, 0)`` for finite x), ``dL/dx = g * mask``. A float mask is faster than a
    boolean one (which numpy would cast on every multiply) and than ``np.maximum(x, 0)``; ReLU is
    on the MNIST hot path, so it writes into scratch arrays (``out=``). The optimised version of
    :func:`tinynn.textbook.dense.relu` (``fast=False`` runs it).
    """

    cache = ("_mask",)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.fast:
            return self._textbook_keep(*textbook.relu(x))
        mask = self._mask = self.scratch_array("mask", x.shape, x.dtype)
        np.greater(x, 0, out=mask)  # 1.0 where x > 0, else 0.0
        out = self.scratch_array("out", x.shape, x.dtype)
        np.multiply(x, mask, out=out)
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if not self.fast:
            return textbook.relu_backward(grad, self._textbook_cache(grad))
        (mask,) = self.cached()
        dx = self.scratch_array("dx", grad.shape, grad.dtype)
        np.multiply(grad, mask, out=dx)
        return dx


@register_layer
class LeakyReLU(Layer):
    """``y = x`` for ``x > 0`` else ``slope * x``; ``dL/dx = g`` or ``slope * g`` likewise."""

    cache = ("_factor",)

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        if not 0 <= slope:
            raise ValueError(f"LeakyReLU: slope must be >= 0, got {slope}")
        self.slope = float(slope)

    def forward(self, x: np.ndarray) -> np.ndarray:
        # factor = 1 where x > 0 else slope; then y = x * factor and dL/dx = g * factor.
        self._factor = self.scratch_array("factor", x.shape, x.dtype)
        self._factor.fill(self.slope)
        np.copyto(self._factor, 1, where=x > 0)
        out = self.scratch_array("out", x.shape, x.dtype)
        np.multiply(x, self._factor, out=out)
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        (factor,) = self.cached()
        return grad * factor

    def get_config(self) -> dict[str, Any]:
        return {"slope": self.slope}


@register_layer
class Sigmoid(Layer):
    """``s = 1 / (1 + exp(-x))``; ``dL/dx = g * s * (1 - s)``.

    Computed as ``s = e / t`` with ``e = exp(x)``, ``t = 1 + e``; then ``1 - s = 1 / t`` and
    ``dL/dx = g * s / t``. Every step loses at most an ulp, so both keep full relative precision
    in the far tails (sigmoid(-40) is 4.2e-18, not 0 as ``(1 + tanh(x / 2)) / 2`` would round to;
    sigmoid'(40) is 4.2e-18, not 0 as ``s * (1 - s)`` would). If ``exp(x)`` overflows somewhere
    (``x > 88.7`` in float32), ``x`` is capped and the three steps rerun: ``s`` is 1 there anyway.
    The optimised version of :func:`tinynn.textbook.dense.sigmoid` (``fast=False`` runs it).
    """

    cache = ("_s", "_t")

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.fast:
            return self._textbook_keep(*textbook.sigmoid(x))
        s = self._s = self.scratch_array("out", x.shape, x.dtype)
        t = self._t = self.scratch_array("t", x.shape, x.dtype)
        try:
            with np.errstate(over="raise", invalid="raise", under="ignore"):  # exp(-200) = 0 is right
                _exp_ratio(x, s, t)
        except FloatingPointError:  # exp(x) is inf for some huge x: cap x (s is 1 there whatever the cap)
            np.minimum(x, np.log(np.finfo(x.dtype).max) - 1, out=s)
            with np.errstate(under="ignore"):
                _exp_ratio(s, s, t)
        return s

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if not self.fast:
            return textbook.sigmoid_backward(grad, self._textbook_cache(grad))
        s, t = self.cached()
        return grad * s / t  # s * (1 - s) = s / t


def _exp_ratio(x: np.ndarray, s: np.ndarray, t: np.ndarray) -> None:
    """``t = 1 + exp(x)``, ``s = exp(x) / t`` (``s`` may be ``x``)."""
    np.exp(x, out=s)
    np.add(s, 1, out=t)
    np.divide(s, t, out=s)


@register_layer
class Tanh(Layer):
    """``t = tanh(x)``; ``dL/dx = g * (1 - t^2)``."""

    cache = ("_t",)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._t = self.scratch_array("out", x.shape, x.dtype)
        np.tanh(x, out=self._t)
        return self._t

    def backward(self, grad: np.ndarray) -> np.ndarray:
        (t,) = self.cached()
        return grad * (1 - t * t)


@register_layer
class GELU(Layer):
    """GELU, tanh approximation (as torch's ``approximate="tanh"``; Hendrycks & Gimpel 2016).

    ``y = x/2 * (1 + t)``, ``t = tanh(u)``, ``u = c (x + k x^3)``, ``c = sqrt(2/pi)``, ``k = 0.044715``.
    ``dy/dx = (1 + t)/2 + x/2 * (1 - t^2) * c (1 + 3 k x^2)``.
    """

    _C = math.sqrt(2.0 / math.pi)
    _K = 0.044715
    cache = ("_x", "_t")

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        t = self._t = self.scratch_array("t", x.shape, x.dtype)
        np.multiply(x, x, out=t)
        t *= self._K * self._C
        t += self._C
        t *= x
        np.tanh(t, out=t)
        out = self.scratch_array("out", x.shape, x.dtype)
        np.add(t, 1, out=out)
        out *= x
        out *= 0.5
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        x, t = self.cached()
        # dy/dx = (1 + t + x (1 - t^2) du/dx) / 2, in place in two scratch arrays (no temporaries)
        du = self.scratch_array("du", x.shape, x.dtype)
        np.multiply(x, x, out=du)
        du *= 3 * self._K * self._C
        du += self._C  # du/dx = c (1 + 3 k x^2)
        dx = self.scratch_array("dx", x.shape, x.dtype)
        np.multiply(t, t, out=dx)
        np.subtract(1, dx, out=dx)
        dx *= x
        dx *= du
        dx += t
        dx += 1
        dx *= 0.5
        dx *= grad
        return dx


@register_layer
class Softmax(Layer):
    """``s_i = exp(x_i) / sum_j exp(x_j)`` over the last axis; ``dL/dx = s * (g - sum(g * s))``.

    For classification prefer ``losses.SoftmaxCrossEntropy`` on raw logits: it fuses the two
    and is more stable. This layer is for when you need the probabilities inside a net.
    """

    cache = ("_s",)

    def forward(self, x: np.ndarray) -> np.ndarray:
        s = self._s = self.scratch_array("out", x.shape, x.dtype)
        np.subtract(x, x.max(axis=-1, keepdims=True), out=s)  # exp can't overflow now
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        return s

    def backward(self, grad: np.ndarray) -> np.ndarray:
        (s,) = self.cached()
        return s * (grad - (grad * s).sum(axis=-1, keepdims=True))
