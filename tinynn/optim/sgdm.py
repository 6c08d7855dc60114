"""SGD with (heavy-ball or Nesterov) momentum, exactly as torch.optim.SGD."""

from __future__ import annotations

import numpy as np

from ..checks import check_bool, check_float
from .optimizer import Optimizer, check_hyper, register_optimizer


@register_optimizer
class SGDm(Optimizer):
    r"""SGD with momentum: a velocity `b` accumulates past gradients.

        g_t = grad_t + weight_decay * p_{t-1}
        b_1 = g_1                                       (first step: no dampening)
        b_t = momentum * b_{t-1} + (1 - dampening) * g_t
        d_t = g_t + momentum * b_t   if nesterov   else   b_t
        p_t = p_{t-1} - lr * d_t

    Defaults: lr=1e-3, momentum=0.9, dampening=0, nesterov=False, weight_decay=0,
    maximize=False. Same as torch.optim.SGD with momentum > 0. Nesterov needs
    momentum > 0 and dampening = 0.
    """

    elementwise = True  # each coordinate from its own values: may step in slices

    hyperparams = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "maximize")

    def __init__(
        self,
        lr: float = 1e-3,
        momentum: float = 0.9,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        maximize: bool = False,
        decay_mask: np.ndarray | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, maximize, decay_mask)
        where = type(self).__name__
        self.momentum = check_float(momentum, "momentum", 0, where=where)
        self.dampening = check_float(dampening, "dampening", 0, 1, where)
        self.nesterov = check_bool(nesterov, "nesterov", where)
        if nesterov:
            check_hyper("momentum", momentum, momentum > 0, "nesterov needs momentum > 0")
            check_hyper("dampening", dampening, dampening == 0, "nesterov needs dampening = 0")

    def init_state(self, params: np.ndarray) -> dict[str, np.ndarray]:
        return {"b": np.zeros_like(params)}  # the velocity

    def compute_step(self, g: np.ndarray, out: np.ndarray) -> None:
        b = self.state["b"]
        if self.t == 1:
            np.copyto(b, g)  # torch starts the velocity at the first gradient
        else:
            b *= self.momentum
            if self.dampening:
                b += np.multiply(g, 1 - self.dampening, out=out)
            else:
                b += g
        if self.nesterov:  # look ahead: step along g + momentum * b
            np.multiply(b, self.momentum, out=out)
            out += g
            out *= self.lr
        else:
            np.multiply(b, self.lr, out=out)
