"""A fully connected layer and the activations whose fast code does not read as the formula."""

from __future__ import annotations

import numpy as np


def dense(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> tuple[np.ndarray, tuple]:
    """``y = x @ w + b``: x (N, in) or (N, ..., in), w (in, out), b (out,) or None."""
    y = x @ w
    if b is not None:
        y = y + b
    return y, (x, w, b)


def dense_backward(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``dx = dy @ w.T``, ``dw = x.T @ dy``, ``db = sum over the batch of dy``.

    For (N, ..., in) input every position is a row: x and dy are read as (rows, in) and (rows, out).
    """
    x, w, b = cache
    x2, dy2 = x.reshape(-1, w.shape[0]), dy.reshape(-1, w.shape[1])
    return dy @ w.T, x2.T @ dy2, None if b is None else dy2.sum(axis=0)


def relu(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``y = max(x, 0)``."""
    return np.maximum(x, 0), (x,)


def relu_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """``dx = dy * [x > 0]``."""
    (x,) = cache
    return dy * (x > 0)


def sigmoid(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``s = 1 / (1 + exp(-x))``."""
    with np.errstate(over="ignore"):  # exp(-x) = inf for very negative x: s = 0, the right limit
        s = 1 / (1 + np.exp(-x))
    return s, (s,)


def sigmoid_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """``dx = dy * s * (1 - s)``."""
    (s,) = cache
    return dy * s * (1 - s)
