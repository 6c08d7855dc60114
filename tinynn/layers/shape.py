"""Layers that only change an array's shape."""

from __future__ import annotations

import math

import numpy as np

from .base import Layer, Shape, register_layer


@register_layer
class Flatten(Layer):
    """Reshape (N, d1, d2, ...) to (N, d1*d2*...); backward reshapes the gradient back."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 2:
            raise ValueError(f"{self!r} got input of shape {x.shape}; expected (batch, ...)")
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad.reshape(self._shape)

    def output_shape(self, input_shape: Shape) -> Shape:
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))
