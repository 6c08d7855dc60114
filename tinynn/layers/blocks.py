"""Blocks: layers made of layers. ``Sequential`` chains its layers; ``Residual`` adds its input back.

A block owns no parameters itself: its children keep theirs, and a :class:`tinynn.Net` binds
them (at any depth) into its one flat parameter vector and one flat gradient vector, named by
their path (``"1.Residual.0.Dense.w"``). Blocks nest: ``Residual([Dense, ReLU, Dense])`` inside
a ``Sequential`` inside a ``Residual`` is still one list of views into two vectors.

Residual connection (He et al., 2016, "Deep Residual Learning")::

    y = x + f(x)          f = the layers in order
    dL/dx = dL/dy + dL/dy · df/dx     (the identity path carries the gradient unchanged)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Layer, Shape, from_config, has_params, layer_config, param_shapes, register_layer


@register_layer
class Sequential(Layer):
    """Its layers applied in order, as one layer: ``y = f_k(... f_2(f_1(x)))``.

    ``sublayers()`` returns them (the composite-layer protocol, see :class:`Layer`). ``backward``
    sets each child's ``input_grad`` as ``Net`` does: without an input gradient, it stops at the
    first child with parameters.
    """

    def __init__(self, layers: Sequence[Layer]) -> None:
        super().__init__()
        layers = list(layers) if isinstance(layers, (list, tuple)) else layers
        if not isinstance(layers, list) or not layers:
            raise ValueError(f"{type(self).__name__} needs a non-empty list of layers, got {layers!r}")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"{type(self).__name__}: item {i} is {layer!r}, not a tinynn Layer")
        self.layers = layers

    def sublayers(self) -> list[Layer]:
        return self.layers

    @property
    def batch_independent(self) -> bool:  # type: ignore[override]
        """Rows never interact if they never do in any of its layers."""
        return all(layer.batch_independent for layer in self.layers)

    @property
    def min_train_batch(self) -> int:  # type: ignore[override]
        return max(layer.min_train_batch for layer in self.layers)

    @property
    def integer_input(self) -> bool:  # type: ignore[override]
        """It takes indices if its first layer does (an ``Embedding`` first)."""
        return self.layers[0].integer_input

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        first = 0 if self.input_grad else next((i for i, c in enumerate(self.layers) if has_params(c)), 0)
        for i, layer in enumerate(self.layers):
            layer.input_grad = self.input_grad or i > first
        for layer in reversed(self.layers[first:]):
            grad = layer.backward(grad)
        return grad if self.input_grad else None

    def free_scratch(self) -> None:
        super().free_scratch()
        for layer in self.layers:
            layer.free_scratch()

    def output_shape(self, input_shape: Shape) -> Shape:
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return input_shape

    def input_shape(self) -> Shape | None:
        return self.layers[0].input_shape()

    def get_config(self) -> dict[str, Any]:
        return {"layers": [layer_config(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls([from_config(c) for c in _layer_list(cls, config)])

    @classmethod
    def param_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        """The children's shapes under their paths in the block (``"0.Dense.w"``), nothing built."""
        return {
            f"{i}.{c['type']}.{name}": shape
            for i, c in enumerate(_layer_list(cls, config))
            for name, shape in param_shapes(c).items()
        }

    def __repr__(self) -> str:
        if set(self.get_config()) != {"layers"}:  # a block built from its own arguments shows them
            return super().__repr__()
        return f"{type(self).__name__}([{', '.join(repr(layer) for layer in self.layers)}])"


@register_layer
class Residual(Sequential):
    """``y = x + f(x)``, f its layers in order; f must keep the shape of x.

    Backward: ``dL/dx = g + f'(x)ᵀ g`` for ``g = dL/dy``: the gradient flows through the block
    and, unchanged, around it.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        fx = super().forward(x)
        if fx.shape != x.shape:
            raise ValueError(
                f"{self!r}: its layers map input {x.shape} to {fx.shape}; a residual block must keep the shape"
            )
        return np.add(x, fx, out=self.scratch_array("out", x.shape, x.dtype))

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        dfx = super().backward(grad)
        if dfx is None:
            return None
        return np.add(grad, dfx, out=self.scratch_array("dx", grad.shape, grad.dtype))

    def output_shape(self, input_shape: Shape) -> Shape:
        inner = super().output_shape(input_shape)
        known = all(a is not None and b is not None for a, b in zip(inner[1:], input_shape[1:], strict=False))
        if len(inner) != len(input_shape) or (known and tuple(inner[1:]) != tuple(input_shape[1:])):
            raise ValueError(f"{self!r}: its layers map {input_shape} to {inner}; a residual block must keep the shape")
        return input_shape


def _layer_list(cls: type, config: dict[str, Any]) -> list[Any]:
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or not layers or set(config) != {"layers"}:
        got = repr(config)[:200]
        raise ValueError(f"{cls.__name__} config must be {{'layers': [a non-empty list of layer configs]}}, got {got}")
    return layers
