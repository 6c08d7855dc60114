"""Layers that only change an array's shape."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Layer, Shape, register_layer


@register_layer
class Flatten(Layer):
    """Reshape (N, d1, d2, ...) to (N, d1*d2*...); backward reshapes the gradient back."""

    cache = ("_shape",)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 2:
            raise ValueError(f"{self!r} got input of shape {x.shape}; expected (batch, ...)")
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        (shape,) = self.cached()
        return grad.reshape(shape)

    def output_shape(self, input_shape: Shape) -> Shape:
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))


@register_layer
class Reshape(Layer):
    """Reshape each sample: (N, ...) -> (N, *shape), as ``x.reshape(N, *shape)``; ``-1`` infers one size.

    ``Reshape((1, 28, 28))`` turns flat 784-pixel MNIST rows into 1-channel images;
    ``Reshape((28, 28))`` into 28 time steps of 28 pixels. Backward reshapes the gradient back.
    """

    cache = ("_shape",)

    def __init__(self, shape: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
            shape = (shape,)
        try:
            dims = tuple(shape)
        except TypeError:
            raise ValueError(f"Reshape: shape must be a tuple of integers, got {shape!r}") from None
        bad = [d for d in dims if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or (d <= 0 and d != -1)]
        if not dims or bad or dims.count(-1) > 1:
            raise ValueError(
                f"Reshape: shape must be a non-empty tuple of positive integers with at most one -1, got {shape!r}"
            )
        self.shape = tuple(int(d) for d in dims)

    def forward(self, x: np.ndarray) -> np.ndarray:
        known = math.prod(d for d in self.shape if d != -1)
        size = math.prod(x.shape[1:]) if x.ndim >= 1 else 0
        if x.ndim < 2 or size % known or (-1 not in self.shape and size != known):
            raise ValueError(
                f"{self!r} got input of shape {x.shape}; its {size} values per sample cannot be "
                f"reshaped to {self.shape}"
            )
        self._shape = x.shape
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        (shape,) = self.cached()
        return grad.reshape(shape)

    def output_shape(self, input_shape: Shape) -> Shape:
        rest = input_shape[1:]
        if -1 not in self.shape:
            return (input_shape[0], *self.shape)
        if None in rest:
            return (input_shape[0], *(None if d == -1 else d for d in self.shape))
        known = math.prod(d for d in self.shape if d != -1)
        return (input_shape[0], *(math.prod(rest) // known if d == -1 else d for d in self.shape))

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}


@register_layer
class PatchesToTokens(Layer):
    """A grid of patch features to a sequence of tokens: (N, D, H, W) -> (N, H*W, D).

    ``y[n, r*W + c, :] = x[n, :, r, c]``, torch's ``x.flatten(2).transpose(1, 2)``: after a
    ``Conv2D(C, D, kernel_size=p, stride=p)`` has embedded each p x p patch as a D-vector, token
    ``r*W + c`` is the patch in row r, column c (row-major order, as a ViT reads them). Backward
    puts the gradient back on the grid: ``dL/dx[n, :, r, c] = g[n, r*W + c, :]``.
    """

    cache = ("_shape",)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4:
            raise ValueError(f"{self!r} got input of shape {x.shape}; expected (batch, channels, height, width)")
        self._shape = x.shape
        n, d, h, w = x.shape
        return x.reshape(n, d, h * w).transpose(0, 2, 1)  # a view: the next layer reads it as it is

    def backward(self, grad: np.ndarray) -> np.ndarray:
        (shape,) = self.cached()
        n, d, h, w = shape
        if grad.shape != (n, h * w, d):
            raise ValueError(f"{self!r}: backward got gradient of shape {grad.shape}; expected {(n, h * w, d)}")
        return grad.transpose(0, 2, 1).reshape(shape)

    def output_shape(self, input_shape: Shape) -> Shape:
        n, d, h, w = input_shape
        return (n, None if h is None or w is None else h * w, d)
