"""Embeddings: integer indices to learned vectors, and learned position vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import init as initializers
from ..checks import check_int
from ..textbook import attention as tb
from .base import Layer, Shape, register_layer


@register_layer
class Embedding(Layer):
    """A lookup table: ``y[..., :] = weight[x[...]]`` for integer indices ``x`` of any shape.

    ``weight`` is (num_embeddings, embedding_dim), drawn from N(0, 1) as torch's ``nn.Embedding``.
    Backward: ``dL/dweight[i]`` is the sum of the upstream gradients of every position holding
    index i (a scatter-add: a repeated index accumulates); indices get no gradient.

    It takes integer input (``integer_input``): as the first layer of a :class:`tinynn.Net` it
    receives the indices uncast. Whole numbers stored as floats are accepted; other values are a
    ValueError, as are indices outside ``0 .. num_embeddings - 1``.

    The optimised version of :func:`tinynn.textbook.attention.embedding` (whose ``np.add.at``
    scatter-add is slow): the backward sums the gradient rows of each index as a product with a
    one-hot matrix for a small table, by sorting the indices for a big one; ``fast=False`` runs
    the textbook function instead.
    """

    cache = ("_idx",)
    integer_input = True
    # The one-hot backward builds a (num_embeddings, positions) matrix: used up to this many
    # entries (16 MB in float32), beyond it the indices are sorted and summed with np.add.reduceat.
    ONE_HOT_MAX = 1 << 22

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.num_embeddings = check_int(num_embeddings, "num_embeddings", where="Embedding")
        self.embedding_dim = check_int(embedding_dim, "embedding_dim", where="Embedding")
        self.params["weight"] = initializers.normal(0.0, 1.0)((self.num_embeddings, self.embedding_dim), np.float32)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    @classmethod
    def param_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        n = check_int(config.get("num_embeddings"), "num_embeddings", where="Embedding")
        return {"weight": (n, check_int(config.get("embedding_dim"), "embedding_dim", where="Embedding"))}

    def forward(self, x: np.ndarray) -> np.ndarray:
        idx = self._indices(x)
        w = self.params["weight"]
        if not self.fast:
            return self._textbook_keep(*tb.embedding(idx, w))
        self._idx = idx
        out = self.scratch_array("out", (idx.size, self.embedding_dim), w.dtype)
        np.take(w, idx.reshape(-1), axis=0, out=out)
        return out.reshape(*idx.shape, self.embedding_dim)

    def backward(self, grad: np.ndarray) -> None:
        if not self.fast:
            self.grads["weight"][...] = tb.embedding_backward(grad, self._textbook_cache(grad))
            return None
        (idx,) = self.cached()
        want = (*idx.shape, self.embedding_dim)
        if grad.shape != want:
            raise ValueError(f"{self!r}: backward got gradient of shape {grad.shape}; expected {want}")
        flat, dy, dw = idx.reshape(-1), grad.reshape(-1, self.embedding_dim), self.grads["weight"]
        if self.num_embeddings * flat.size <= self.ONE_HOT_MAX:
            # dweight = onehot @ dy with onehot[i, m] = 1 where position m holds index i: one GEMM
            onehot = self.scratch_exact("onehot", (self.num_embeddings, flat.size), dy.dtype)
            onehot.fill(0)
            onehot[flat, np.arange(flat.size)] = 1
            np.matmul(onehot, dy, out=dw)
        else:
            # sort the positions by index; np.add.reduceat sums each run of equal indices at once
            order = np.argsort(flat, kind="stable")
            ordered = flat[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            dw.fill(0)
            dw[ordered[starts]] = np.add.reduceat(dy[order], starts, axis=0)
        return None  # indices are not differentiable

    def _indices(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind == "f":
            bad = ~np.isfinite(x) | (x != np.round(x))
            if bad.any():
                raise ValueError(
                    f"{self!r}: indices must be integers, got {x[bad].flat[0]} (input of dtype {x.dtype}, "
                    f"shape {x.shape}; keep indices in an int64 array: fit scales uint8 input as image pixels)"
                )
            x = x.astype(np.int64)
        elif x.dtype.kind not in "iu":
            raise TypeError(f"{self!r}: indices must be integers, got input of dtype {x.dtype}")
        if x.size == 0:
            raise ValueError(f"{self!r} got an empty input of shape {x.shape}")
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= self.num_embeddings:
            raise ValueError(
                f"{self!r}: index {lo if lo < 0 else hi} out of range for a table of {self.num_embeddings} rows "
                f"(expected 0..{self.num_embeddings - 1})"
            )
        return x

    def output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape, self.embedding_dim)

    def get_config(self) -> dict[str, Any]:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim}


@register_layer
class PositionalEmbedding(Layer):
    """Learned positions (as GPT and makemore): ``y[n, t] = x[n, t] + weight[t]`` for x (N, T, C).

    ``weight`` is (max_len, embedding_dim), drawn from N(0, 1) like an ``nn.Embedding`` of positions.
    Backward: ``dL/dx = g``; ``dL/dweight[t] = sum_n g[n, t]`` for t < T (rows past T get 0).
    A sequence longer than ``max_len`` is a ValueError: the table has no vector for its later positions.
    """

    cache = ("_cache",)

    def __init__(self, max_len: int, embedding_dim: int) -> None:
        super().__init__()
        self.max_len = check_int(max_len, "max_len", where="PositionalEmbedding")
        self.embedding_dim = check_int(embedding_dim, "embedding_dim", where="PositionalEmbedding")
        self.params["weight"] = initializers.normal(0.0, 1.0)((self.max_len, self.embedding_dim), np.float32)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    @classmethod
    def param_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        n = check_int(config.get("max_len"), "max_len", where="PositionalEmbedding")
        return {"weight": (n, check_int(config.get("embedding_dim"), "embedding_dim", where="PositionalEmbedding"))}

    def forward(self, x: np.ndarray) -> np.ndarray:
        w = self.params["weight"]
        if x.ndim != 3 or x.shape[2] != self.embedding_dim or x.shape[1] == 0:
            raise ValueError(
                f"{self!r} got input of shape {x.shape}; expected (batch, time, {self.embedding_dim}) with time >= 1"
            )
        if x.shape[1] > self.max_len:
            raise ValueError(
                f"{self!r}: context longer than the positional table: {x.shape[1]} steps, "
                f"max_len is {self.max_len}"
            )
        if x.dtype != w.dtype:
            x = x.astype(w.dtype)
        y, self._cache = tb.positional_embedding(x, w)
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        (cache,) = self.cached()
        steps = cache[0]
        if grad.ndim != 3 or grad.shape[1:] != (steps, self.embedding_dim):
            raise ValueError(
                f"{self!r}: backward got gradient of shape {grad.shape}; "
                f"expected (batch, {steps}, {self.embedding_dim})"
            )
        dx, dweight = tb.positional_embedding_backward(grad, cache)
        self.grads["weight"][...] = dweight
        return dx if self.input_grad else None

    def get_config(self) -> dict[str, Any]:
        return {"max_len": self.max_len, "embedding_dim": self.embedding_dim}
