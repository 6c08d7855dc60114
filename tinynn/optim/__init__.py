"""Optimizers on flat numpy arrays: `opt.step(params, grads)` updates params in place.

Build one by name with `tinynn.optim.get("adam", lr=1e-3)` or by class with `Adam(lr=1e-3)`;
the names, defaults and update rules are torch.optim's. See docs/optimizers.md.
"""

from __future__ import annotations

from typing import Any

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer, decay_mask
from .rmsprop import RMSProp
from .sgd import SGD
from .sgdm import SGDm

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "sgdm": SGDm,
    "adagrad": Adagrad,
    "rmsprop": RMSProp,
    "adam": Adam,
    "adamw": AdamW,
}


def get(name: str, **kwargs: Any) -> Optimizer:
    """Build an optimizer by (case-insensitive) name, e.g. get("adam", lr=1e-3)."""
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[key](**kwargs)


__all__ = ["Optimizer", "SGD", "SGDm", "Adagrad", "RMSProp", "Adam", "AdamW", "decay_mask", "get", "lr_scheduler"]
