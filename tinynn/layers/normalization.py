"""Batch normalization and layer normalization."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..checks import check_int, check_positive
from ..textbook import attention as tb
from ..textbook import norm as textbook
from .base import Layer, Shape, register_layer


@register_layer
class BatchNorm1d(Layer):
    """Batch normalization over the batch axis of (N, C) inputs (Ioffe & Szegedy, 2015).

    Training: ``xhat = (x - mean) / sqrt(var + eps)`` with the batch's mean and (biased)
    variance, ``y = gamma * xhat + beta``; the running statistics move by
    ``running = (1 - momentum) * running + momentum * batch_stat`` (variance unbiased, as torch).
    Eval: the running statistics replace the batch's.

    Backward in training, with ``gh = g * gamma`` and ``s = 1/sqrt(var + eps)``:
    ``dL/dx = s/N * (N gh - sum(gh) - xhat * sum(gh * xhat))``,
    ``dL/dgamma = sum(g * xhat)``, ``dL/dbeta = sum(g)``. In eval, ``dL/dx = gh * s``.

    The optimised version of :func:`tinynn.textbook.norm.batch_norm` (training) and
    ``batch_norm_eval``; ``fast=False`` runs those instead.
    """

    min_train_batch = 2  # the variance of one sample is 0: nothing to normalise by
    cache = ("_xhat", "_inv_std")
    batch_independent = False  # batch statistics mix the rows

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        num_features = check_int(num_features, "num_features", where=type(self).__name__)
        if eps <= 0:
            raise ValueError(f"{type(self).__name__}: eps must be > 0, got {eps}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1], got {momentum}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.params = {"gamma": np.ones(num_features, np.float32), "beta": np.zeros(num_features, np.float32)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers = {
            "running_mean": np.zeros(num_features, np.float32),
            "running_var": np.ones(num_features, np.float32),
        }

    @classmethod
    def param_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        n = check_int(config.get("num_features"), "num_features", where="BatchNorm1d")
        return {"gamma": (n,), "beta": (n,)}  # the running statistics (buffers) have the same size

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.expect_2d(x, self.num_features)
        if not self.fast:
            return self._textbook_keep(*self._textbook_normalize(x))
        return self._normalize(x)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if not self.fast:
            return self._textbook_backward(grad, self._textbook_cache(grad))
        return self._backward(grad)

    def _textbook_normalize(self, x: np.ndarray) -> tuple[np.ndarray, tuple]:
        """``_normalize`` by the textbook functions; the running statistics are updated in place."""
        p, b = self.params, self.buffers
        if x.dtype != p["gamma"].dtype:
            x = x.astype(p["gamma"].dtype)
        if not self.training:
            return textbook.batch_norm_eval(x, p["gamma"], p["beta"], b["running_mean"], b["running_var"], self.eps)
        if x.shape[0] < 2:
            raise ValueError(f"{self!r} needs more than 1 sample per batch in training, got {x.shape}")
        y, cache, b["running_mean"][...], b["running_var"][...] = textbook.batch_norm(
            x, p["gamma"], p["beta"], b["running_mean"], b["running_var"], self.momentum, self.eps
        )
        return y, cache

    def _textbook_backward(self, grad: np.ndarray, cache: tuple) -> np.ndarray:
        backward = textbook.batch_norm_backward if self.training else textbook.batch_norm_eval_backward
        dx, dgamma, dbeta = backward(grad, cache)
        self._set_grads(dgamma, dbeta)
        return dx

    def _normalize(self, x: np.ndarray) -> np.ndarray:
        """The layer on an (M, C) matrix: statistics per column over its M rows."""
        gamma = self.params["gamma"]
        if x.dtype != gamma.dtype:
            x = x.astype(gamma.dtype)
        n = x.shape[0]
        xhat = self._xhat = self.scratch_array("xhat", x.shape, x.dtype)
        if self.training:
            if n < 2:
                raise ValueError(f"{self!r} needs more than 1 sample per batch in training, got {x.shape}")
            mean = x.mean(axis=0)
            np.subtract(x, mean, out=xhat)
            var = np.einsum("ij,ij->j", xhat, xhat) / n  # biased batch variance, no (N, C) temp
            m = self.momentum
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            rm *= 1 - m
            rm += m * mean
            rv *= 1 - m
            rv += (m * n / (n - 1)) * var
        else:
            var = self.buffers["running_var"]
            np.subtract(x, self.buffers["running_mean"], out=xhat)
        self._inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat *= self._inv_std
        out = self.scratch_array("out", x.shape, x.dtype)
        np.multiply(xhat, gamma, out=out)
        out += self.params["beta"]
        return out

    def _backward(self, grad: np.ndarray) -> np.ndarray:
        (xhat, inv_std, *_), gamma = self.cached(), self.params["gamma"]
        n = grad.shape[0]
        np.sum(grad, axis=0, out=self.grads["beta"])
        np.einsum("ij,ij->j", grad, xhat, out=self.grads["gamma"])
        dx = self.scratch_array("dx", grad.shape, grad.dtype)
        if not self.training:
            np.multiply(grad, gamma * inv_std, out=dx)
            return dx
        # With gh = g * gamma: sum(gh) = gamma * dbeta and sum(gh * xhat) = gamma * dgamma.
        np.multiply(xhat, self.grads["gamma"] / n, out=dx)
        np.subtract(grad, dx, out=dx)
        dx -= self.grads["beta"] / n
        dx *= gamma * inv_std
        return dx

    def check_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        if (buffers["running_var"] < 0).any():
            raise ValueError(f"{type(self).__name__}: running_var holds negative variances")

    def get_config(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum}


@register_layer
class BatchNorm2d(BatchNorm1d):
    """Batch normalization of NCHW images per channel: BatchNorm1d over all N*H*W pixels.

    Each channel's mean and variance are taken over the batch and both spatial axes, so the
    layer is BatchNorm1d applied to the (N*H*W, C) matrix of pixels; the running variance is
    unbiased with ``n = N*H*W``, as torch's ``BatchNorm2d``.
    """

    cache = (*BatchNorm1d.cache, "_shape")

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"{self!r} got input of shape {x.shape}; expected (batch, {self.num_features}, height, width)"
            )
        if not self.fast:
            y, cache = self._textbook_normalize(textbook.to_rows(x))
            return self._textbook_keep(textbook.from_rows(y, x.shape), cache)
        n, c, h, w = self._shape = x.shape
        out = self._normalize(x.transpose(0, 2, 3, 1).reshape(n * h * w, c))
        return out.reshape(n, h, w, c).transpose(0, 3, 1, 2)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if not self.fast:
            dx = self._textbook_backward(textbook.to_rows(grad), self._textbook_cache(grad))
            return textbook.from_rows(dx, grad.shape)
        *_, (n, c, h, w) = self.cached()
        dx = self._backward(grad.transpose(0, 2, 3, 1).reshape(n * h * w, c))
        return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2)

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape


@register_layer
class LayerNorm(Layer):
    """Layer normalization (Ba, Kiros & Hinton, 2016) over the last ``len(normalized_shape)`` axes, as torch.

    Each sample (each time step of a sequence) is normalised over its own features, so training and
    eval compute the same thing and the rows of a batch never mix:
    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the biased variance; ``weight`` (ones)
    and ``bias`` (zeros) are shaped ``normalized_shape`` (absent with ``elementwise_affine=False``).
    Backward, with ``g = dL/dy * weight``, ``xhat`` the normalised input and means over the features:
    ``dL/dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)`` (BatchNorm's formula with the
    means taken over features instead of the batch), ``dL/dweight = sum(dL/dy * xhat)``,
    ``dL/dbias = sum(dL/dy)`` over the leading axes. Math: :func:`tinynn.textbook.attention.layer_norm`.

    The optimised version of that function (scratch arrays, row means as BLAS products);
    ``fast=False`` runs it instead.
    """

    cache = ("_xhat", "_inv_std")
    _shape: tuple[int, ...] = ()  # the fast forward's input shape

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps = check_positive(eps, "eps", where="LayerNorm")
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.params = {"weight": np.ones(self.normalized_shape, np.float32),
                           "bias": np.zeros(self.normalized_shape, np.float32)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    @classmethod
    def param_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        shape = _normalized_shape(config.get("normalized_shape"))
        return {"weight": shape, "bias": shape} if config.get("elementwise_affine", True) else {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        k = len(self.normalized_shape)
        if x.ndim < k + 1 or x.shape[-k:] != self.normalized_shape:
            want = ", ".join(["batch", "...", *map(str, self.normalized_shape)])
            raise ValueError(f"{self!r} got input of shape {x.shape}; expected ({want})")
        weight, bias = self.params.get("weight"), self.params.get("bias")
        dtype = weight.dtype if weight is not None else x.dtype
        if x.dtype != dtype:
            x = x.astype(dtype)
        if not self.fast:
            return self._textbook_keep(*tb.layer_norm(x, weight, bias, self.normalized_shape, self.eps))
        # The fast path: one row per sample (per time step), D normalised features; the row means
        # are products with a column of 1/D (BLAS, several times faster than np.mean on short rows).
        self._shape, d = x.shape, math.prod(self.normalized_shape)
        x2 = x.reshape(-1, d)
        rows = x2.shape[0]
        by_d = self.scratch_exact("by_d", (d,), dtype)
        by_d.fill(1.0 / d)
        xhat = self._xhat = self.scratch_array("xhat", (rows, d), dtype)
        np.subtract(x2, (x2 @ by_d)[:, None], out=xhat)  # x - mean
        sq = self.scratch_array("tmp", (rows, d), dtype)
        np.multiply(xhat, xhat, out=sq)
        inv_std = sq @ by_d  # the biased variance, then 1 / sqrt(var + eps) in place
        inv_std += dtype.type(self.eps)
        np.sqrt(inv_std, out=inv_std)
        np.divide(1, inv_std, out=inv_std)
        self._inv_std = inv_std = inv_std[:, None]
        xhat *= inv_std
        y = self.scratch_array("y", (rows, d), dtype)
        if weight is None:
            np.copyto(y, xhat)  # not xhat itself: the cache must not be handed to the next layer
        else:
            np.multiply(xhat, weight.reshape(-1), out=y)
            y += bias.reshape(-1)
        return y.reshape(x.shape)

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        if not self.fast:
            dx, dweight, dbias = tb.layer_norm_backward(grad, self._textbook_cache(grad))
            self._set_grads(dweight, dbias)
            return dx if self.input_grad else None
        xhat, inv_std = self.cached()
        if grad.shape != self._shape:
            raise ValueError(f"{self!r}: backward got gradient of shape {grad.shape}; expected {self._shape}")
        rows, d = xhat.shape
        dtype = xhat.dtype
        dy = grad.reshape(rows, d)
        tmp = self.scratch_array("tmp", (rows, d), dtype)
        g = dy
        if self.elementwise_affine:
            ones = self.scratch_exact("ones", (rows,), dtype)
            ones.fill(1)  # sums over the rows as products with a row of ones
            np.multiply(dy, xhat, out=tmp)
            np.matmul(ones, tmp, out=self.grads["weight"].reshape(-1))  # dweight = sum(dy * xhat)
            np.matmul(ones, dy, out=self.grads["bias"].reshape(-1))  # dbias = sum(dy)
            g = self.scratch_array("g", (rows, d), dtype)
            np.multiply(dy, self.params["weight"].reshape(-1), out=g)
        if not self.input_grad:
            return None
        by_d = self._scratch["by_d"]
        np.multiply(g, xhat, out=tmp)
        mean_gx = tmp @ by_d
        dx = self.scratch_array("dx", (rows, d), dtype)  # (g - mean(g) - xhat * mean(g xhat)) / sqrt(var + eps)
        np.multiply(xhat, mean_gx[:, None], out=dx)
        np.subtract(g, dx, out=dx)
        dx -= (g @ by_d)[:, None]
        dx *= inv_std
        return dx.reshape(self._shape)

    def get_config(self) -> dict[str, Any]:
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine}


def _normalized_shape(value: Any) -> tuple[int, ...]:
    """``normalized_shape`` as a tuple of positive ints (an int n means ``(n,)``); else a ValueError."""
    dims = (value,) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if not isinstance(dims, (tuple, list)) or not dims:
        raise ValueError(f"LayerNorm: normalized_shape must be a positive integer or a non-empty list of them, "
                         f"got {value!r}")
    return tuple(check_int(d, "normalized_shape", where="LayerNorm") for d in dims)
