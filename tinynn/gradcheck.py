"""Numerical gradient checking: compare a hand-written backward pass with central differences.

For a scalar function ``f`` of an array ``x``, each partial derivative is estimated as
``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``, whose error shrinks like ``eps^2``. To check a
layer ``y = layer(x)``, take ``f(x) = sum(y * r)`` for a fixed random ``r``: its exact gradient
is what ``layer.backward(r)`` returns, and the parameter gradients land in ``layer.grads``.

Work in float64: in float32, rounding noise (~1e-7 / eps) swamps the comparison.

    >>> import numpy as np, tinynn as tn
    >>> report = tn.gradcheck.check_layer(tn.layers.Tanh(), np.random.randn(4, 3))
    >>> report.passed
    True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .layers import Layer
from .losses import Loss
from .net import Net
from .rng import get_state, seed, set_state


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of ``f()`` with respect to the array ``x``, which ``f`` reads.

    ``x`` is perturbed in place one entry at a time and restored afterwards.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    flat, out = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_grad needs an array whose entries can be changed in place")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        f_plus = f()
        flat[i] = old - eps
        f_minus = f()
        flat[i] = old
        out[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray, floor: float = 1e-7) -> float:
    """``||a - b|| / max(||a|| + ||b||, floor)``: 0 for equal arrays, ~1 for unrelated ones.

    The floor keeps two gradients that are both zero up to rounding (say, a bias feeding a
    batch norm, which cancels it) from counting as different.
    """
    denom = max(float(np.linalg.norm(a) + np.linalg.norm(b)), floor)
    return float(np.linalg.norm(a - b)) / denom


class Report(dict):
    """Relative error per checked quantity (``"input"``, parameter names); ``passed`` if all < tol."""

    def __init__(self, errors: dict[str, float], tol: float) -> None:
        super().__init__(errors)
        self.tol = tol

    @property
    def passed(self) -> bool:
        return all(err < self.tol for err in self.values())

    def __str__(self) -> str:
        lines = [f"{name:<20} rel. error {err:.2e}  {'ok' if err < self.tol else 'FAIL'}" for name, err in self.items()]
        return "\n".join(lines + [f"{'passed' if self.passed else 'FAILED'} (tolerance {self.tol:.0e})"])


def check_net(net: Net, x: np.ndarray, eps: float = 1e-6, tol: float = 1e-6, rng_seed: int = 0) -> Report:
    """Check ``dL/dx`` and every parameter gradient of ``net`` for ``L = sum(net(x) * r)``.

    The net must be float64. A net whose first layer takes integer indices (``Embedding``) gets
    ``x`` uncast and is checked for its parameters only. tinynn's generator is re-seeded with
    ``rng_seed`` before every forward pass (so dropout draws the same mask each time) and restored
    afterwards.
    """
    if net.dtype != np.float64:
        raise ValueError(f"gradcheck needs a float64 net (Net(..., dtype=np.float64)), got {net.dtype}")
    # A private copy we may perturb; integer indices (an Embedding first) are kept, and not differentiated.
    indices = net.layers[0].integer_input
    x = np.array(x) if indices else np.array(x, dtype=np.float64)
    saved_state = get_state()
    try:
        def forward() -> np.ndarray:
            seed(rng_seed)
            return net.forward(x)

        # A stream of its own: with default_rng(rng_seed), r could equal a user's x drawn from
        # that same seed, and r parallel to x is a direction batch norm's gradient ignores.
        r = np.random.default_rng([rng_seed, 0x9C4EC]).standard_normal(forward().shape)

        def f() -> float:
            return float(np.vdot(forward(), r))

        forward()
        dx = net.backward(r, input_grad=True)
        errors = {} if indices else {"input": rel_error(dx, numerical_grad(f, x, eps))}
        analytic = net.grads.copy()
        for name, where in net.param_slices():
            errors[name] = rel_error(analytic[where], numerical_grad(f, net.params[where], eps))
    finally:
        set_state(saved_state)
    return Report(errors, tol)


def check_layer(layer: Layer, x: np.ndarray, eps: float = 1e-6, tol: float = 1e-6, rng_seed: int = 0) -> Report:
    """Check one layer's backward pass. Its parameters are moved into a fresh float64 ``Net``."""
    return check_net(Net([layer], dtype=np.float64), x, eps=eps, tol=tol, rng_seed=rng_seed)


def check_loss(loss: Loss, preds: np.ndarray, targets: np.ndarray, eps: float = 1e-6, tol: float = 1e-6) -> Report:
    """Check ``loss.grad`` against central differences of ``loss.loss`` at float64 ``preds``."""
    preds = np.array(preds, dtype=np.float64)
    analytic = loss.grad(preds, targets)
    numeric = numerical_grad(lambda: loss.loss(preds, targets), preds, eps)
    return Report({"preds": rel_error(analytic, numeric)}, tol)

