"""Learning-rate schedules: each one is a closed-form `lr_at(epoch)` from the base lr.

A scheduler only sets `optimizer.lr`. Call `step()` once per unit of your choice
(an epoch or a batch). Construction applies `lr_at(0)`, like torch:

    sched = StepLR(opt, step_size=10)      # opt.lr == base_lr now
    for epoch in range(n):
        train_one_epoch(opt)
        sched.step()                       # opt.lr = lr_at(epoch + 1)

The formulas are torch.optim.lr_scheduler's closed forms, so the sequences match torch's.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from typing import Any

from .optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses write `lr_at(epoch)` and list their settings in `hyperparams`."""

    hyperparams: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = -1
        self.step()

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one unit and set the optimizer's lr."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def get_last_lr(self) -> float:
        """The lr set by the latest `step` (tinynn has one lr, so a float, not torch's list)."""
        return self.lr_at(self.last_epoch)

    def get_config(self) -> dict[str, Any]:
        """The settings (``hyperparams``) as JSON-able data; the optimizer is not part of it."""
        return {name: list(v) if isinstance(v := getattr(self, name), tuple) else v for name in self.hyperparams}

    @classmethod
    def from_config(cls, config: dict[str, Any], optimizer: Optimizer) -> LRScheduler:
        """A scheduler with these settings driving ``optimizer`` (as if newly built)."""
        return cls(optimizer, **config)

    def state_dict(self) -> dict[str, Any]:
        """What changes as it runs: ``{"base_lr": float, "last_epoch": int}`` (settings: ``get_config``)."""
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, d: dict[str, Any], set_lr: bool = True) -> None:
        """Continue from a ``state_dict``; sets the optimizer's lr for ``last_epoch`` unless ``set_lr=False``."""
        self.base_lr = float(d["base_lr"])
        self.last_epoch = int(d["last_epoch"])
        if set_lr:
            self.optimizer.lr = self.lr_at(self.last_epoch)

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.hyperparams)
        return f"{type(self).__name__}({args}, last_epoch={self.last_epoch})"


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size): divide by 1/gamma every step_size epochs."""

    hyperparams = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if step_size < 1:
            raise ValueError(f"invalid step_size={step_size!r}: must be >= 1")
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """lr = base_lr * gamma ** (number of milestones <= epoch)."""

    hyperparams = ("milestones", "gamma")

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1) -> None:
        self.milestones = tuple(sorted(int(m) for m in milestones))
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch."""

    hyperparams = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    Reaches eta_min at epoch T_max; past it the cosine climbs back up (period 2 T_max), as in torch.
    """

    hyperparams = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        if T_max < 1:
            raise ValueError(f"invalid T_max={T_max!r}: must be >= 1")
        self.T_max = int(T_max)
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    """lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters).

    The usual warmup: start small, reach base_lr * end_factor after total_iters steps.
    Defaults: start_factor=1/3, end_factor=1.0, total_iters=5 (torch's LinearLR).
    """

    hyperparams = ("start_factor", "end_factor", "total_iters")

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ) -> None:
        if not 0 < start_factor <= 1:
            raise ValueError(f"invalid start_factor={start_factor!r}: must be in (0, 1]")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"invalid end_factor={end_factor!r}: must be in [0, 1]")
        if total_iters < 1:
            raise ValueError(f"invalid total_iters={total_iters!r}: must be >= 1")
        self.start_factor = float(start_factor)
        self.end_factor = float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        ramp = (self.end_factor - self.start_factor) * min(self.total_iters, epoch) / self.total_iters
        return self.base_lr * (self.start_factor + ramp)


LinearWarmup = LinearLR

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "LinearWarmup"]
