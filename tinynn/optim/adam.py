"""Adam and AdamW: momentum plus per-coordinate scaling, with bias correction."""

from __future__ import annotations

import math

import numpy as np

from ..checks import check_bool, check_float
from .optimizer import Optimizer, register_optimizer


@register_optimizer
class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), in torch's floating-point formulation.

        g_t  = grad_t + weight_decay * p_{t-1}       (or p_{t-1} *= 1 - lr*weight_decay if decoupled)
        m_t  = beta1 * m_{t-1} + (1 - beta1) * g_t
        v_t  = beta2 * v_{t-1} + (1 - beta2) * g_t^2
        v_t  = max(vmax_{t-1}, v_t) = vmax_t                    (amsgrad only)
        p_t  = p_{t-1} - lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

    m and v start at 0. Defaults: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    amsgrad=False, decoupled_weight_decay=False, maximize=False. Same as torch.optim.Adam.
    """

    elementwise = True  # each coordinate from its own values: may step in slices

    hyperparams = ("lr", "betas", "eps", "weight_decay", "amsgrad", "decoupled_weight_decay", "maximize")

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
        decay_mask: np.ndarray | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, maximize, decay_mask)
        where = type(self).__name__
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"{where}: betas must be a pair of numbers (beta1, beta2), got {betas!r}")
        self.betas = tuple(check_float(b, f"betas[{i}]", 0, 1, where, max_open=True) for i, b in enumerate(betas))
        self.eps = check_float(eps, "eps", 0, where=where, min_open=True)
        self.amsgrad = check_bool(amsgrad, "amsgrad", where)
        self.decoupled_weight_decay = check_bool(decoupled_weight_decay, "decoupled_weight_decay", where)

    def init_state(self, params: np.ndarray) -> dict[str, np.ndarray]:
        names = ("m", "v") + ("v_max",) * self.amsgrad
        return {name: np.zeros_like(params) for name in names}

    def compute_step(self, g: np.ndarray, out: np.ndarray) -> None:
        (b1, b2), m, v, d = self.betas, self.state["m"], self.state["v"], out
        m *= b1
        m += np.multiply(g, 1 - b1, out=d)                    # m = b1 m + (1 - b1) g
        v *= b2
        v += np.multiply(np.square(g, out=d), 1 - b2, out=d)  # v = b2 v + (1 - b2) g^2
        if self.amsgrad:
            v = np.maximum(self.state["v_max"], v, out=self.state["v_max"])  # never let the step size grow back
        bias1 = 1 - b1**self.t
        bias2 = 1 - b2**self.t
        # lr * m_hat / (sqrt(v_hat) + eps) with the bias corrections moved onto scalars: one pass
        # over memory less than dividing v first. Kingma & Ba (end of Sec. 2) suggest this reordering
        # with a plain eps, which is not the same update (eps grows by 1/sqrt(bias2)); scaling eps by
        # sqrt(bias2), as here, makes it exact and keeps torch's trajectory.
        np.sqrt(v, out=d)
        d += self.eps * math.sqrt(bias2)
        np.divide(m, d, out=d)
        d *= self.lr * math.sqrt(bias2) / bias1


@register_optimizer
class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    Before the Adam update the weights shrink directly, p *= 1 - lr * weight_decay,
    instead of adding weight_decay * p to the gradient (where Adam's scaling would
    dilute it). This is `Adam(..., decoupled_weight_decay=True)`.

    Defaults: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
    maximize=False. Same as torch.optim.AdamW.
    """

    hyperparams = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
        decay_mask: np.ndarray | None = None,
    ) -> None:
        super().__init__(lr, betas, eps, weight_decay, amsgrad, True, maximize, decay_mask)
