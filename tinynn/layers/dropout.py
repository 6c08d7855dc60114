"""Dropout."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..rng import get_rng
from .base import Layer, register_layer

_IDENTITY = np.float32(1)  # the "mask" of an eval-mode (or p=0) forward: backward passes g through


@register_layer
class Dropout(Layer):
    """Inverted dropout: in training, zero each entry with probability ``p`` and scale the rest
    by ``1 / (1 - p)`` so the expected output equals the input; identity in eval mode.

    ``dL/dx = g * mask`` with the same scaled mask.
    """

    cache = ("_mask",)
    batch_independent = False  # random draws: split over threads, their order would not be seeded

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p (the probability to drop) must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0:
            self._mask = _IDENTITY
            return x
        mask = self._mask = self.scratch_array("mask", x.shape, x.dtype)
        get_rng().random(out=mask, dtype=mask.dtype)
        keep = 1.0 - self.p
        # mask = [u >= p] / (1 - p), built in place: no boolean temporary.
        np.greater_equal(mask, self.p, out=mask)
        if keep > 0:
            mask *= 1.0 / keep
        out = self.scratch_array("out", x.shape, x.dtype)
        np.multiply(x, mask, out=out)
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        (mask,) = self.cached()
        if mask is _IDENTITY:
            return grad
        dx = self.scratch_array("dx", grad.shape, grad.dtype)
        np.multiply(grad, mask, out=dx)
        return dx

    def get_config(self) -> dict[str, Any]:
        return {"p": self.p}
