"""Plain stochastic gradient descent."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, register_optimizer


@register_optimizer
class SGD(Optimizer):
    r"""Stochastic gradient descent, the simplest optimizer.

        g_t      = grad_t + weight_decay * p_{t-1}       (negate grad_t first if maximize)
        p_t      = p_{t-1} - lr * g_t

    Defaults: lr=1e-3, weight_decay=0, maximize=False. Same as torch.optim.SGD with
    momentum=0 (torch's default lr is also 1e-3).
    """

    elementwise = True  # each coordinate from its own values: may step in slices

    def __init__(
        self, lr: float = 1e-3, weight_decay: float = 0.0, maximize: bool = False, decay_mask: np.ndarray | None = None
    ) -> None:
        super().__init__(lr, weight_decay, maximize, decay_mask)

    def compute_step(self, g: np.ndarray, out: np.ndarray) -> None:
        np.multiply(g, self.lr, out=out)
