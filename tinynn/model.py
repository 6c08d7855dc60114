"""Model: a net, a loss and an optimizer, stepped once per batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from .losses import Loss
from .net import Net


class History:
    """Per-epoch metrics of ``Model.fit`` (placeholder, filled in by the training issue)."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}


class Model:
    """Wraps ``net``, ``loss`` and ``optimizer``; one ``train_step`` per batch.

    ``optimizer`` is any object with ``step(params, grads)`` updating ``params`` in place,
    normally one of :mod:`tinynn.optim`. ``gradient_clip``: if set, the gradient vector is
    rescaled so its global L2 norm is at most this value before the optimizer sees it
    (as torch's ``clip_grad_norm_``).
    """

    def __init__(self, net: Net, loss: Loss, optimizer: Any, gradient_clip: float | None = None) -> None:
        if not isinstance(net, Net):
            raise TypeError(f"Model: net must be a tinynn.Net, got {type(net).__name__}")
        if not callable(getattr(loss, "loss_and_grad", None)):
            raise TypeError(f"Model: loss must be a tinynn loss (with loss_and_grad), got {loss!r}")
        if not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"Model: optimizer must have a step(params, grads) method, got {optimizer!r}")
        if gradient_clip is not None and not gradient_clip > 0:
            raise ValueError(f"Model: gradient_clip must be > 0 or None, got {gradient_clip}")
        self.net, self.loss, self.optimizer = net, loss, optimizer
        self.gradient_clip = gradient_clip

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The net's output for batch ``x``, in the net's current mode."""
        return self.net.forward(x)

    def backward(self, preds: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss of ``preds`` against ``targets``, and ``net.grads`` filled with its gradient."""
        loss, grad = self.loss.loss_and_grad(preds, targets)
        self.net.backward(grad)
        return loss, self.net.grads

    def apply_grads(self, grads: np.ndarray) -> None:
        """Clip (if asked) and hand the flat gradient to the optimizer: one call per batch."""
        if self.gradient_clip is not None:
            norm = float(np.sqrt(np.vdot(grads, grads)))
            if norm > self.gradient_clip:
                grads *= self.gradient_clip / (norm + 1e-6)
        self.optimizer.step(self.net.params, grads)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        """forward, backward and apply_grads on one batch, in training mode; returns the loss."""
        if not self.net.training:
            self.net.train()
        preds = self.net.forward(x)
        loss, grads = self.backward(preds, y)
        self.apply_grads(grads)
        return loss

    def predict(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Outputs for all of ``x``, in eval mode, ``batch_size`` rows at a time."""
        x = np.asarray(x)
        if batch_size <= 0:
            raise ValueError(f"predict: batch_size must be positive, got {batch_size}")
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"predict got input of shape {x.shape}; expected a non-empty batch")
        was_training = self.net.training
        self.net.eval()
        try:
            return np.concatenate([self.net.forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
        finally:
            if was_training:
                self.net.train()
