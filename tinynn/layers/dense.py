"""Fully connected layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import init as initializers
from ..checks import check_int
from ..textbook import dense as textbook
from .base import Layer, Shape, register_layer


@register_layer
class Dense(Layer):
    """Fully connected layer: ``y = x @ w + b`` with ``w`` of shape (in_features, out_features).

    ``x`` is (N, in_features), or (N, ..., in_features) as torch's ``nn.Linear`` takes it: the same
    ``w`` applies at every position of a sequence (a transformer's MLP and output head), the
    leading axes folded into rows of one matrix product.

    The optimised version of :func:`tinynn.textbook.dense.dense` (scratch outputs, the bias
    gradient as a BLAS product); ``fast=False`` runs that function instead.

    ``bias=False`` drops ``b`` (``y = x @ w``), as torch allows.
    Backward, for ``g = dL/dy``: ``dL/dw = x.T @ g``, ``dL/db = sum_batch g``, ``dL/dx = g @ w.T``.
    ``x.T`` and ``w.T`` are views: BLAS reads them transposed, nothing is copied.

    Defaults: ``w_init="he_uniform"`` (He et al. 2015, gain sqrt(2): right for ReLU nets),
    ``b_init="zeros"``. Pass any name from :mod:`tinynn.init` or a callable ``(shape, dtype, fans)``;
    the fans are ``(in_features, out_features)``.
    """

    cache = ("_x",)
    _lead: tuple[int, ...] = ()  # the leading axes of an (N, ..., C) input, folded into rows

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        w_init: str | initializers.Initializer = "he_uniform",
        b_init: str | initializers.Initializer = "zeros",
    ) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", where="Dense")
        self.out_features = check_int(out_features, "out_features", where="Dense")
        self.bias = bool(bias)
        try:
            w_init, b_init = initializers.get(w_init), initializers.get(b_init)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from None
        fans = (self.in_features, self.out_features)  # w is (in, out): x @ w
        self.params["w"] = w_init((self.in_features, self.out_features), np.float32, fans)
        if self.bias:
            self.params["b"] = b_init((self.out_features,), np.float32, fans)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    @classmethod
    def param_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        n_in = check_int(config.get("in_features"), "in_features", where="Dense")
        n_out = check_int(config.get("out_features"), "out_features", where="Dense")
        return {"w": (n_in, n_out), "b": (n_out,)} if config.get("bias", True) else {"w": (n_in, n_out)}

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 2 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r} got input of shape {x.shape}; expected (batch, {self.in_features}) "
                             f"or (batch, ..., {self.in_features})")
        w = self.params["w"]
        if x.dtype != w.dtype:
            x = x.astype(w.dtype)
        if not self.fast:
            return self._textbook_keep(*textbook.dense(x, w, self.params.get("b")))
        self._lead = x.shape[:-1]
        if x.ndim > 2:  # (N, ..., C) -> (N*..., C): one product for every position
            x = x.reshape(-1, self.in_features)
        self._x = x
        out = self.scratch_array("out", (x.shape[0], self.out_features), w.dtype)
        np.matmul(x, w, out=out)
        if self.bias:
            out += self.params["b"]
        return out if len(self._lead) == 1 else out.reshape(*self._lead, self.out_features)

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        if not self.fast:
            dx, dw, db = textbook.dense_backward(grad, self._textbook_cache(grad))
            self._set_grads(dw, db)
            return dx if self.input_grad else None
        (x,), w = self.cached(), self.params["w"]
        if grad.shape != (*self._lead, self.out_features):
            raise ValueError(
                f"{self!r}: backward got gradient of shape {grad.shape}; "
                f"expected {(*self._lead, self.out_features)}"
            )
        if grad.ndim > 2:
            grad = grad.reshape(-1, self.out_features)
        np.matmul(x.T, grad, out=self.grads["w"])
        if self.bias:
            # The sum over the batch as a product with a row of ones: BLAS is ~4x faster than np.sum.
            ones = self.scratch_array("ones", (x.shape[0],), w.dtype)
            ones.fill(1)
            np.matmul(ones, grad, out=self.grads["b"])
        if not self.input_grad:
            return None
        dx = self.scratch_array("dx", x.shape, w.dtype)
        np.matmul(grad, w.T, out=dx)
        return dx if len(self._lead) == 1 else dx.reshape(*self._lead, self.in_features)

    def output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.out_features)

    def input_shape(self) -> Shape:
        return (None, self.in_features)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"in_features": self.in_features, "out_features": self.out_features}
        if not self.bias:  # only when off, so configs of older checkpoints stay identical
            config["bias"] = False
        return config

    def __repr__(self) -> str:
        return f"Dense({self.in_features} -> {self.out_features}{'' if self.bias else ', bias=False'})"
