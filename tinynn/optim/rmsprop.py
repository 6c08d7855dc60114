"""RMSProp: divide the gradient by a running RMS of recent gradients."""

from __future__ import annotations

import numpy as np

from ..checks import check_bool, check_float
from .optimizer import Optimizer, register_optimizer


@register_optimizer
class RMSProp(Optimizer):
    r"""RMSProp (Hinton, Coursera lecture 6e, 2012), in torch's formulation.

        g_t      = grad_t + weight_decay * p_{t-1}
        v_t      = alpha * v_{t-1} + (1 - alpha) * g_t^2
        ga_t     = alpha * ga_{t-1} + (1 - alpha) * g_t          (centered only)
        r_t      = sqrt(v_t - ga_t^2)  if centered  else  sqrt(v_t)
        b_t      = momentum * b_{t-1} + g_t / (r_t + eps)        (momentum > 0 only)
        p_t      = p_{t-1} - lr * b_t        or   p_{t-1} - lr * g_t / (r_t + eps)

    All state starts at 0. Defaults: lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0,
    momentum=0, centered=False, maximize=False. Same as torch.optim.RMSprop.
    """

    elementwise = True  # each coordinate from its own values: may step in slices

    hyperparams = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")

    def __init__(
        self,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
        decay_mask: np.ndarray | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, maximize, decay_mask)
        where = type(self).__name__
        self.alpha = check_float(alpha, "alpha", 0, 1, where, max_open=True)
        self.eps = check_float(eps, "eps", 0, where=where, min_open=True)
        self.momentum = check_float(momentum, "momentum", 0, where=where)
        self.centered = check_bool(centered, "centered", where)

    def init_state(self, params: np.ndarray) -> dict[str, np.ndarray]:
        names = ("v",) + ("g_avg",) * self.centered + ("b",) * (self.momentum > 0)
        return {name: np.zeros_like(params) for name in names}

    def compute_step(self, g: np.ndarray, out: np.ndarray) -> None:
        a, v, d = self.alpha, self.state["v"], out
        v *= a
        v += np.multiply(np.square(g, out=d), 1 - a, out=d)
        if self.centered:  # subtract the squared mean: a running variance instead of 2nd moment
            g_avg = self.state["g_avg"]
            g_avg *= a
            g_avg += np.multiply(g, 1 - a, out=d)
            np.square(g_avg, out=d)
            np.subtract(v, d, out=d)
            np.sqrt(d, out=d)
        else:
            np.sqrt(v, out=d)
        d += self.eps
        np.divide(g, d, out=d)
        if self.momentum > 0:
            b = self.state["b"]
            b *= self.momentum
            b += d
            np.multiply(b, self.lr, out=d)
        else:
            d *= self.lr
