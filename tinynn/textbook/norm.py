"""Batch normalization (Ioffe & Szegedy, 2015) of (N, C) features and (N, C, H, W) images."""

from __future__ import annotations

import numpy as np


def batch_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, running_mean: np.ndarray,
               running_var: np.ndarray, momentum: float = 0.1,
               eps: float = 1e-5) -> tuple[np.ndarray, tuple, np.ndarray, np.ndarray]:
    """Training mode, statistics per column of x (N, C) over the batch::

        mean = sum x / N      var = sum (x - mean)^2 / N      xhat = (x - mean) / sqrt(var + eps)
        y = gamma * xhat + beta
        running_mean <- (1 - momentum) * running_mean + momentum * mean
        running_var  <- (1 - momentum) * running_var  + momentum * var * N / (N - 1)   (unbiased, as torch)

    Returns ``y, cache, new_running_mean, new_running_var``.
    """
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    return gamma * xhat + beta, (xhat, inv_std, gamma), new_mean, new_var


def batch_norm_backward(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """With ``s = 1 / sqrt(var + eps)`` and sums over the batch::

        dgamma = sum dy * xhat      dbeta = sum dy
        dx = gamma * s / N * (N dy - sum dy - xhat * sum(dy * xhat))

    (the mean and variance depend on every row, hence the two sums). Returns dx, dgamma, dbeta.
    """
    xhat, inv_std, gamma = cache
    n = dy.shape[0]
    dgamma, dbeta = (dy * xhat).sum(axis=0), dy.sum(axis=0)
    dx = gamma * inv_std / n * (n * dy - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def batch_norm_eval(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, running_mean: np.ndarray,
                    running_var: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, tuple]:
    """Eval mode: ``y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta``, an affine map per column."""
    inv_std = 1 / np.sqrt(running_var + eps)
    xhat = (x - running_mean) * inv_std
    return gamma * xhat + beta, (xhat, inv_std, gamma)


def batch_norm_eval_backward(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``dx = dy * gamma / sqrt(running_var + eps)``, ``dgamma = sum dy * xhat``, ``dbeta = sum dy``.

    Returns dx, dgamma, dbeta (the running statistics are constants: no gradient).
    """
    xhat, inv_std, gamma = cache
    return dy * gamma * inv_std, (dy * xhat).sum(axis=0), dy.sum(axis=0)


def to_rows(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) images -> their (N*H*W, C) matrix of pixels: BatchNorm2d is batch_norm on it."""
    return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])


def from_rows(rows: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """The inverse of ``to_rows``, back to ``shape`` (N, C, H, W)."""
    n, c, h, w = shape
    return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)
