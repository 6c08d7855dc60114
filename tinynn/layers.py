"""Layers: each maps ``x -> y`` in ``forward`` and ``dL/dy -> dL/dx`` in ``backward``.

A layer with trainable tensors keeps them in ``layer.params`` (name -> array) and writes
their gradients into ``layer.grads`` during ``backward``. Once the layer joins a
:class:`tinynn.Net`, both dicts hold views into the net's one flat parameter and gradient
vector, so an optimizer updates every layer at once.

Speed notes that shape the code:

- ``backward`` *overwrites* ``layer.grads`` (no accumulation), so no zeroing pass is needed.
- Outputs and input gradients go into buffers the layer owns and reuses while the batch
  shape repeats. A layer's output is therefore only valid until its next ``forward``;
  :class:`tinynn.Net` copies the final output before handing it to the caller.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import init as initializers
from .rng import get_rng

Shape = tuple[int | None, ...]


class Layer:
    """Base class. Subclasses implement ``forward`` and ``backward``."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}  # state that is saved but not trained
        self.training = True
        # Net switches this off for its first layer: nobody needs dL/d(input images).
        self.input_grad = True
        self._scratch: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def output_shape(self, input_shape: Shape) -> Shape:
        """Shape of the output for an input of ``input_shape`` (``None`` = any batch size)."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON-able data, enough to rebuild the layer."""
        return {}

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A reusable scratch array. A smaller batch gets a leading slice of the big one."""
        buf = self._scratch.get(name)
        if (
            buf is None
            or buf.dtype != dtype
            or buf.shape[1:] != shape[1:]
            or buf.shape[0] < shape[0]
        ):
            buf = np.empty(shape, dtype=dtype)
            self._scratch[name] = buf
        return buf[: shape[0]]

    def free_buffers(self) -> None:
        """Drop scratch arrays (they are re-created on the next forward)."""
        self._scratch.clear()

    def _expect_2d(self, x: np.ndarray, width: int | None = None) -> None:
        if x.ndim != 2 or (width is not None and x.shape[1] != width):
            want = f"(batch, {width})" if width is not None else "(batch, features)"
            raise ValueError(f"{self!r} got input of shape {x.shape}; expected {want}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Fully connected layer: ``y = x @ w + b`` with ``w`` of shape (in_features, out_features).

    Backward, for ``g = dL/dy``: ``dL/dw = x.T @ g``, ``dL/db = sum_batch g``, ``dL/dx = g @ w.T``.
    ``x.T`` and ``w.T`` are views: BLAS reads them transposed, nothing is copied.

    Defaults: ``w_init="he_uniform"`` (He et al. 2015, gain sqrt(2): right for ReLU nets),
    ``b_init="zeros"``. Pass any name from :mod:`tinynn.init` or a callable ``(shape, dtype)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        w_init: str | initializers.Initializer = "he_uniform",
        b_init: str | initializers.Initializer = "zeros",
    ) -> None:
        super().__init__()
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
                raise ValueError(f"Dense: {name} must be a positive integer, got {n!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        try:
            w_init, b_init = initializers.get(w_init), initializers.get(b_init)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from None
        self.params["w"] = w_init((self.in_features, self.out_features), np.float32)
        self.params["b"] = b_init((self.out_features,), np.float32)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._expect_2d(x, self.in_features)
        w = self.params["w"]
        if x.dtype != w.dtype:
            x = x.astype(w.dtype)
        self._x = x
        out = self._buffer("out", (x.shape[0], self.out_features), w.dtype)
        np.matmul(x, w, out=out)
        out += self.params["b"]
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        x, w = self._x, self.params["w"]
        if x is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        if grad.shape != (x.shape[0], self.out_features):
            raise ValueError(
                f"{self!r}: backward got gradient of shape {grad.shape}; "
                f"expected {(x.shape[0], self.out_features)}"
            )
        np.matmul(x.T, grad, out=self.grads["w"])
        # The sum over the batch as a product with a row of ones: BLAS is ~4x faster than np.sum.
        ones = self._buffer("ones", (x.shape[0],), w.dtype)
        ones.fill(1)
        np.matmul(ones, grad, out=self.grads["b"])
        if not self.input_grad:
            return None
        dx = self._buffer("dx", x.shape, w.dtype)
        np.matmul(grad, w.T, out=dx)
        return dx

    def output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], self.out_features)

    def get_config(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features}

    def __repr__(self) -> str:
        return f"Dense({self.in_features} -> {self.out_features})"


class ReLU(Layer):
    """``y = max(x, 0)``; ``dL/dx = g * [x > 0]``.

    Both are one multiply by the same 0/1 mask, kept from forward for backward: ``y = x * mask``
    (equal to ``max(x, 0)`` for finite x), ``dL/dx = g * mask``. A float mask is faster than a
    boolean one (which numpy would cast on every multiply) and than ``np.maximum(x, 0)``.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        mask = self._mask = self._buffer("mask", x.shape, x.dtype)
        np.greater(x, 0, out=mask)  # 1.0 where x > 0, else 0.0
        out = self._buffer("out", x.shape, x.dtype)
        np.multiply(x, mask, out=out)
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dx = self._buffer("dx", grad.shape, grad.dtype)
        np.multiply(grad, self._mask, out=dx)
        return dx


class LeakyReLU(Layer):
    """``y = x`` for ``x > 0`` else ``slope * x``; ``dL/dx = g`` or ``slope * g`` likewise."""

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        if not 0 <= slope:
            raise ValueError(f"LeakyReLU: slope must be >= 0, got {slope}")
        self.slope = float(slope)

    def forward(self, x: np.ndarray) -> np.ndarray:
        # factor = 1 where x > 0 else slope; then y = x * factor and dL/dx = g * factor.
        self._factor = self._buffer("factor", x.shape, x.dtype)
        self._factor.fill(self.slope)
        np.copyto(self._factor, 1, where=x > 0)
        out = self._buffer("out", x.shape, x.dtype)
        np.multiply(x, self._factor, out=out)
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dx = self._buffer("dx", grad.shape, grad.dtype)
        np.multiply(grad, self._factor, out=dx)
        return dx

    def get_config(self) -> dict[str, Any]:
        return {"slope": self.slope}


class Sigmoid(Layer):
    """``s = 1 / (1 + exp(-x))``; ``dL/dx = g * s * (1 - s)``.

    Computed as ``(1 + tanh(x / 2)) / 2``, the same function without overflow for large |x|.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        s = self._buffer("out", x.shape, x.dtype)
        np.multiply(x, 0.5, out=s)
        np.tanh(s, out=s)
        s += 1
        s *= 0.5
        self._s = s
        return s

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dx = self._buffer("dx", grad.shape, grad.dtype)
        np.subtract(1, self._s, out=dx)
        dx *= self._s
        dx *= grad
        return dx


class Tanh(Layer):
    """``t = tanh(x)``; ``dL/dx = g * (1 - t^2)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._t = self._buffer("out", x.shape, x.dtype)
        np.tanh(x, out=self._t)
        return self._t

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dx = self._buffer("dx", grad.shape, grad.dtype)
        np.square(self._t, out=dx)
        np.subtract(1, dx, out=dx)
        dx *= grad
        return dx


class GELU(Layer):
    """GELU, tanh approximation (as torch's ``approximate="tanh"``; Hendrycks & Gimpel 2016).

    ``y = x/2 * (1 + t)``, ``t = tanh(u)``, ``u = c (x + k x^3)``, ``c = sqrt(2/pi)``, ``k = 0.044715``.
    ``dy/dx = (1 + t)/2 + x/2 * (1 - t^2) * c (1 + 3 k x^2)``.
    """

    _C = math.sqrt(2.0 / math.pi)
    _K = 0.044715

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        t = self._t = self._buffer("t", x.shape, x.dtype)
        np.multiply(x, x, out=t)
        t *= self._K * self._C
        t += self._C
        t *= x
        np.tanh(t, out=t)
        out = self._buffer("out", x.shape, x.dtype)
        np.add(t, 1, out=out)
        out *= x
        out *= 0.5
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        x, t = self._x, self._t
        dx = self._buffer("dx", x.shape, x.dtype)
        tmp = self._buffer("tmp", x.shape, x.dtype)
        np.multiply(x, x, out=dx)  # dx = c (1 + 3k x^2) * x/2 * (1 - t^2)
        dx *= 3 * self._K * self._C
        dx += self._C
        dx *= x
        dx *= 0.5
        np.multiply(t, t, out=tmp)
        np.subtract(1, tmp, out=tmp)
        dx *= tmp
        np.add(t, 1, out=tmp)  # + (1 + t)/2
        tmp *= 0.5
        dx += tmp
        dx *= grad
        return dx


class Softmax(Layer):
    """``s_i = exp(x_i) / sum_j exp(x_j)`` over the last axis; ``dL/dx = s * (g - sum(g * s))``.

    For classification prefer ``losses.SoftmaxCrossEntropy`` on raw logits: it fuses the two
    and is more stable. This layer is for when you need the probabilities inside a net.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        s = self._s = self._buffer("out", x.shape, x.dtype)
        np.subtract(x, x.max(axis=-1, keepdims=True), out=s)  # exp can't overflow now
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        return s

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dx = self._buffer("dx", grad.shape, grad.dtype)
        np.multiply(grad, self._s, out=dx)
        dot = dx.sum(axis=-1, keepdims=True)
        np.subtract(grad, dot, out=dx)
        dx *= self._s
        return dx


class Dropout(Layer):
    """Inverted dropout: in training, zero each entry with probability ``p`` and scale the rest
    by ``1 / (1 - p)`` so the expected output equals the input; identity in eval mode.

    ``dL/dx = g * mask`` with the same scaled mask.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p (the probability to drop) must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0:
            self._mask = None
            return x
        mask = self._mask = self._buffer("mask", x.shape, x.dtype)
        get_rng().random(out=mask, dtype=mask.dtype)
        keep = 1.0 - self.p
        # mask = [u >= p] / (1 - p), built in place: no boolean temporary.
        np.greater_equal(mask, self.p, out=mask)
        if keep > 0:
            mask *= 1.0 / keep
        out = self._buffer("out", x.shape, x.dtype)
        np.multiply(x, mask, out=out)
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._mask is None:
            return grad
        dx = self._buffer("dx", grad.shape, grad.dtype)
        np.multiply(grad, self._mask, out=dx)
        return dx

    def get_config(self) -> dict[str, Any]:
        return {"p": self.p}


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

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        if not isinstance(num_features, (int, np.integer)) or num_features <= 0:
            raise ValueError(f"BatchNorm1d: num_features must be a positive integer, got {num_features!r}")
        if eps <= 0:
            raise ValueError(f"BatchNorm1d: eps must be > 0, got {eps}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm1d: momentum must be in [0, 1], got {momentum}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.params = {"gamma": np.ones(num_features, np.float32), "beta": np.zeros(num_features, np.float32)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers = {
            "running_mean": np.zeros(num_features, np.float32),
            "running_var": np.ones(num_features, np.float32),
        }

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._expect_2d(x, self.num_features)
        gamma = self.params["gamma"]
        if x.dtype != gamma.dtype:
            x = x.astype(gamma.dtype)
        n = x.shape[0]
        xhat = self._xhat = self._buffer("xhat", x.shape, x.dtype)
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
        out = self._buffer("out", x.shape, x.dtype)
        np.multiply(xhat, gamma, out=out)
        out += self.params["beta"]
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        xhat, gamma = self._xhat, self.params["gamma"]
        n = grad.shape[0]
        np.sum(grad, axis=0, out=self.grads["beta"])
        np.einsum("ij,ij->j", grad, xhat, out=self.grads["gamma"])
        dx = self._buffer("dx", grad.shape, grad.dtype)
        if not self.training:
            np.multiply(grad, gamma * self._inv_std, out=dx)
            return dx
        # With gh = g * gamma: sum(gh) = gamma * dbeta and sum(gh * xhat) = gamma * dgamma.
        np.multiply(xhat, self.grads["gamma"] / n, out=dx)
        np.subtract(grad, dx, out=dx)
        dx -= self.grads["beta"] / n
        dx *= gamma * self._inv_std
        return dx

    def get_config(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum}


LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (Dense, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax, Dropout, Flatten, BatchNorm1d)
}


def from_config(config: dict[str, Any]) -> Layer:
    """Rebuild a layer from ``{"type": name, "config": {...}}`` (as written by ``Net.get_config``)."""
    name = config.get("type")
    if name not in LAYERS:
        raise ValueError(f"unknown layer type {name!r}; known: {', '.join(sorted(LAYERS))}")
    try:
        return LAYERS[name](**config.get("config", {}))
    except TypeError as e:
        raise ValueError(f"bad config for layer {name}: {config.get('config')!r} ({e})") from None
