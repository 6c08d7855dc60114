"""Optimizers on flat numpy arrays: `opt.step(params, grads)` updates params in place.

Build one by name with `tinynn.optim.get("adam", lr=1e-3)` or by class with `Adam(lr=1e-3)`;
the names, defaults and update rules are torch.optim's. See docs/optimizers.md.
"""

from __future__ import annotations

from typing import Any

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import OPTIMIZERS, Optimizer, decay_mask, register_optimizer
from .rmsprop import RMSProp
from .sgd import SGD
from .sgdm import SGDm


def get(name: str, **kwargs: Any) -> Optimizer:
    """Build a registered optimizer by (case-insensitive) class name, e.g. get("adam", lr=1e-3)."""
    return OPTIMIZERS.find(name)(**kwargs)


def names() -> list[str]:
    """The registered optimizers' names in lower case, as ``get`` and the command line take them."""
    return sorted(name.lower() for name in OPTIMIZERS)


__all__ = [
    "OPTIMIZERS", "Optimizer", "SGD", "SGDm", "Adagrad", "RMSProp", "Adam", "AdamW", "decay_mask", "get", "names",
    "lr_scheduler", "register_optimizer",
]  # fmt: skip
