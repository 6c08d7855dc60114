"""Batch normalization."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import check_int
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
        self.state = {
            "running_mean": np.zeros(num_features, np.float32),
            "running_var": np.ones(num_features, np.float32),
        }

    @classmethod
    def param_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        n = check_int(config.get("num_features"), "num_features", where="BatchNorm1d")
        return {"gamma": (n,), "beta": (n,)}  # the running statistics (state) have the same size

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._expect_2d(x, self.num_features)
        return self._normalize(x)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return self._backward(grad)

    def _normalize(self, x: np.ndarray) -> np.ndarray:
        """The layer on an (M, C) matrix: statistics per column over its M rows."""
        gamma = self.params["gamma"]
        if x.dtype != gamma.dtype:
            x = x.astype(gamma.dtype)
        n = x.shape[0]
        xhat = self._xhat = self._scratch_array("xhat", x.shape, x.dtype)
        if self.training:
            if n < 2:
                raise ValueError(f"{self!r} needs more than 1 sample per batch in training, got {x.shape}")
            mean = x.mean(axis=0)
            np.subtract(x, mean, out=xhat)
            var = np.einsum("ij,ij->j", xhat, xhat) / n  # biased batch variance, no (N, C) temp
            m = self.momentum
            rm, rv = self.state["running_mean"], self.state["running_var"]
            rm *= 1 - m
            rm += m * mean
            rv *= 1 - m
            rv += (m * n / (n - 1)) * var
        else:
            var = self.state["running_var"]
            np.subtract(x, self.state["running_mean"], out=xhat)
        self._inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat *= self._inv_std
        out = self._scratch_array("out", x.shape, x.dtype)
        np.multiply(xhat, gamma, out=out)
        out += self.params["beta"]
        return out

    def _backward(self, grad: np.ndarray) -> np.ndarray:
        (xhat, inv_std, *_), gamma = self._cached(), self.params["gamma"]
        n = grad.shape[0]
        np.sum(grad, axis=0, out=self.grads["beta"])
        np.einsum("ij,ij->j", grad, xhat, out=self.grads["gamma"])
        dx = self._scratch_array("dx", grad.shape, grad.dtype)
        if not self.training:
            np.multiply(grad, gamma * inv_std, out=dx)
            return dx
        # With gh = g * gamma: sum(gh) = gamma * dbeta and sum(gh * xhat) = gamma * dgamma.
        np.multiply(xhat, self.grads["gamma"] / n, out=dx)
        np.subtract(grad, dx, out=dx)
        dx -= self.grads["beta"] / n
        dx *= gamma * inv_std
        return dx

    def check_state(self, state: dict[str, np.ndarray]) -> None:
        if (state["running_var"] < 0).any():
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
        n, c, h, w = self._shape = x.shape
        out = self._normalize(x.transpose(0, 2, 3, 1).reshape(n * h * w, c))
        return out.reshape(n, h, w, c).transpose(0, 3, 1, 2)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        *_, (n, c, h, w) = self._cached()
        dx = self._backward(grad.transpose(0, 2, 3, 1).reshape(n * h * w, c))
        return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2)

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape
