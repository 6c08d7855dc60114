"""Adagrad: per-coordinate learning rates from the sum of squared gradients."""

from __future__ import annotations

import numpy as np

from ..checks import check_float
from .optimizer import Optimizer, register_optimizer


@register_optimizer
class Adagrad(Optimizer):
    r"""Adagrad (Duchi, Hazan & Singer, 2011).

        g_t   = grad_t + weight_decay * p_{t-1}
        lr_t  = lr / (1 + (t - 1) * lr_decay)
        s_t   = s_{t-1} + g_t^2                      (s_0 = initial_accumulator_value)
        p_t   = p_{t-1} - lr_t * g_t / (sqrt(s_t) + eps)

    Defaults: lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
    eps=1e-10, maximize=False. Same as torch.optim.Adagrad.
    """

    elementwise = True  # each coordinate from its own values: may step in slices

    hyperparams = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize")

    def __init__(
        self,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
        decay_mask: np.ndarray | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, maximize, decay_mask)
        where = type(self).__name__
        self.lr_decay = check_float(lr_decay, "lr_decay", 0, where=where)
        self.initial_accumulator_value = check_float(initial_accumulator_value, "initial_accumulator_value", 0,
                                                     where=where)  # fmt: skip
        self.eps = check_float(eps, "eps", 0, where=where, min_open=True)

    def init_state(self, params: np.ndarray) -> dict[str, np.ndarray]:
        return {"sum_sq": np.full_like(params, self.initial_accumulator_value)}

    def compute_step(self, g: np.ndarray, out: np.ndarray) -> None:
        s = self.state["sum_sq"]
        s += np.square(g, out=out)
        np.sqrt(s, out=out)
        out += self.eps
        np.divide(g, out, out=out)
        out *= self.lr / (1 + (self.t - 1) * self.lr_decay)
