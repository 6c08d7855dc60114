"""Each optimizer's update as a pure function: ``new_param, new_state = update(param, grad, state, t, ...)``.

``t`` is the number of this step (1 for the first), ``state`` a dict of arrays (``{}`` before the
first step). Hyperparameters have torch.optim's names and defaults, and weight decay works as in
tinynn's ``Optimizer.step``::

    L2 (default):          g = grad + weight_decay * mask * param      (grad negated first if maximize)
    decoupled (AdamW):     param <- param - lr * weight_decay * mask * param,   g = grad

``mask`` (``decay_mask``, None = everywhere) is 1 where weight decay applies and 0 where it does not.

These are the reference the optimizers of :mod:`tinynn.optim` are tested against
(tests/test_textbook.py); training always steps with those. Their ``compute_step`` is already one
screen of elementwise numpy on the same formulas, so a second, switchable path would add nothing
to read and one more thing to save and shard.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray
State = dict[str, np.ndarray]
Update = tuple[np.ndarray, State]


def gradient(param: Array, grad: Array, weight_decay: float = 0.0, maximize: bool = False,
             decay_mask: Array | None = None) -> Array:
    """The gradient an update uses: ``-grad`` if maximize, plus the L2 term ``weight_decay * mask * param``."""
    g = -grad if maximize else grad
    mask = 1 if decay_mask is None else decay_mask
    return g + weight_decay * mask * param


def sgd(param: Array, grad: Array, state: State, t: int, lr: float = 1e-3, weight_decay: float = 0.0,
        maximize: bool = False, decay_mask: Array | None = None) -> Update:
    """``p <- p - lr * g``."""
    g = gradient(param, grad, weight_decay, maximize, decay_mask)
    return param - lr * g, state


def sgdm(param: Array, grad: Array, state: State, t: int, lr: float = 1e-3, momentum: float = 0.9,
         dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0, maximize: bool = False,
         decay_mask: Array | None = None) -> Update:
    """Momentum (torch.optim.SGD with momentum > 0)::

        b = g (first step)   or   b = momentum * b + (1 - dampening) * g
        p <- p - lr * (g + momentum * b   if nesterov   else   b)
    """
    g = gradient(param, grad, weight_decay, maximize, decay_mask)
    b = g if t == 1 else momentum * state["b"] + (1 - dampening) * g
    d = g + momentum * b if nesterov else b
    return param - lr * d, {"b": b}


def adagrad(param: Array, grad: Array, state: State, t: int, lr: float = 1e-2, lr_decay: float = 0.0,
            weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10,
            maximize: bool = False, decay_mask: Array | None = None) -> Update:
    """Adagrad (Duchi et al. 2011): ``s = s + g^2`` (``s`` starts at initial_accumulator_value),
    ``p <- p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)``."""
    g = gradient(param, grad, weight_decay, maximize, decay_mask)
    s = state.get("sum_sq", np.full_like(param, initial_accumulator_value)) + g**2
    return param - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps), {"sum_sq": s}


def rmsprop(param: Array, grad: Array, state: State, t: int, lr: float = 1e-2, alpha: float = 0.99,
            eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
            maximize: bool = False, decay_mask: Array | None = None) -> Update:
    """RMSProp (Hinton 2012), torch's form::

        v = alpha * v + (1 - alpha) * g^2                  (all state starts at 0)
        ga = alpha * ga + (1 - alpha) * g;  r = sqrt(v - ga^2)    if centered   else   r = sqrt(v)
        b = momentum * b + g / (r + eps);   p <- p - lr * b       if momentum > 0
        p <- p - lr * g / (r + eps)                               otherwise
    """
    g = gradient(param, grad, weight_decay, maximize, decay_mask)
    new = {"v": alpha * state.get("v", 0) + (1 - alpha) * g**2}
    if centered:
        new["g_avg"] = alpha * state.get("g_avg", 0) + (1 - alpha) * g
        r = np.sqrt(new["v"] - new["g_avg"] ** 2)
    else:
        r = np.sqrt(new["v"])
    d = g / (r + eps)
    if momentum > 0:
        d = new["b"] = momentum * state.get("b", 0) + d
    return param - lr * d, new


def adam(param: Array, grad: Array, state: State, t: int, lr: float = 1e-3,
         betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
         amsgrad: bool = False, decoupled_weight_decay: bool = False, maximize: bool = False,
         decay_mask: Array | None = None) -> Update:
    """Adam (Kingma & Ba 2015)::

        m = b1 * m + (1 - b1) * g          v = b2 * v + (1 - b2) * g^2      (both start at 0)
        v_max = max(v_max, v), used instead of v                            (amsgrad only)
        m_hat = m / (1 - b1^t)             v_hat = v / (1 - b2^t)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)

    ``decoupled_weight_decay=True`` is AdamW: the weights shrink before the update instead.
    """
    b1, b2 = betas
    if decoupled_weight_decay:
        mask = 1 if decay_mask is None else decay_mask
        param = param - lr * weight_decay * mask * param
        g = gradient(param, grad, 0.0, maximize)
    else:
        g = gradient(param, grad, weight_decay, maximize, decay_mask)
    new = {"m": b1 * state.get("m", 0) + (1 - b1) * g, "v": b2 * state.get("v", 0) + (1 - b2) * g**2}
    v = new["v"]
    if amsgrad:
        v = new["v_max"] = np.maximum(state.get("v_max", 0), v)
    m_hat, v_hat = new["m"] / (1 - b1**t), v / (1 - b2**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), new


def adamw(param: Array, grad: Array, state: State, t: int, lr: float = 1e-3,
          betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
          amsgrad: bool = False, maximize: bool = False, decay_mask: Array | None = None) -> Update:
    """AdamW (Loshchilov & Hutter 2019): ``p <- p - lr * weight_decay * p``, then the Adam update of ``grad``."""
    return adam(param, grad, state, t, lr, betas, eps, weight_decay, amsgrad, True, maximize, decay_mask)


UPDATES = {"sgd": sgd, "sgdm": sgdm, "adagrad": adagrad, "rmsprop": rmsprop, "adam": adam, "adamw": adamw}
"""Each update by the name ``tinynn.optim.get`` knows its optimizer by."""
