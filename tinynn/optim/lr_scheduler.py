"""Learning-rate schedules: each one is a closed-form `lr_at(epoch)` from the base lr
(except `ReduceLROnPlateau`, which follows a metric).

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
from typing import Any, TypeVar

import numpy as np

from ..checks import check_float, check_int
from ..registry import Registry
from .optimizer import Optimizer, check_lr


class LRScheduler:
    """Base class: subclasses write `lr_at(epoch)` and list their settings in `hyperparams`."""

    hyperparams: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.base_lr = check_lr(optimizer.lr, type(self).__name__)
        self.last_epoch = -1
        self.step()

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one unit and set the optimizer's lr."""
        self.last_epoch += 1
        self.optimizer.lr = self._checked_lr(self.last_epoch)

    def _checked_lr(self, epoch: int) -> float:
        """``lr_at(epoch)``, refused if it is not a finite number >= 0 (an lr that would corrupt training)."""
        try:
            try:
                lr = self.lr_at(epoch)
            except OverflowError:  # a float power past 1e308
                lr = math.inf
            return check_lr(lr, f"{type(self).__name__} at step {epoch}")
        except (TypeError, ValueError) as e:
            raise ValueError(f"{e} (computed from base_lr={self.base_lr!r} and {self.get_config()})") from None

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
        """Continue from a ``state_dict``; sets the optimizer's lr for ``last_epoch`` unless ``set_lr=False``.

        Exactly the keys ``state_dict`` writes, each checked by the rule that made it (lr >= 0, counts >= 0).
        """
        d = _exact_keys(self, d)
        base_lr = check_lr(d["base_lr"], f"{type(self).__name__} base_lr")
        self.last_epoch = check_int(d["last_epoch"], "last_epoch", 0, type(self).__name__)
        self.base_lr = base_lr
        if set_lr:
            self.optimizer.lr = self._checked_lr(self.last_epoch)

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.hyperparams)
        return f"{type(self).__name__}({args}, last_epoch={self.last_epoch})"


SCHEDULERS: Registry = Registry("scheduler", LRScheduler, "tn.optim.lr_scheduler.register_scheduler")
"""Every scheduler class a checkpoint may name: class name -> class. Fill it with ``register_scheduler``."""

S = TypeVar("S", bound=type[LRScheduler])


def register_scheduler(cls: S) -> S:
    """Class decorator: make ``cls`` rebuildable by name from a checkpoint (``cls.from_config(config, optimizer)``)."""
    return SCHEDULERS.register(cls)


@register_scheduler
class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size): divide by 1/gamma every step_size epochs."""

    hyperparams = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_int(step_size, "step_size", 1, "StepLR")
        self.gamma = check_float(gamma, "gamma", 0, where="StepLR")
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


@register_scheduler
class MultiStepLR(LRScheduler):
    """lr = base_lr * gamma ** (number of milestones <= epoch)."""

    hyperparams = ("milestones", "gamma")

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1) -> None:
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
            raise TypeError(f"MultiStepLR: milestones must be a list of integers, got {milestones!r}")
        self.milestones = tuple(sorted(check_int(m, "milestones", 0, "MultiStepLR") for m in milestones))
        self.gamma = check_float(gamma, "gamma", 0, where="MultiStepLR")
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** bisect_right(self.milestones, epoch)


@register_scheduler
class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch."""

    hyperparams = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = check_float(gamma, "gamma", 0, where="ExponentialLR")
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma**epoch


@register_scheduler
class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    Reaches eta_min at epoch T_max; past it the cosine climbs back up (period 2 T_max), as in torch.
    """

    hyperparams = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = check_int(T_max, "T_max", 1, "CosineAnnealingLR")
        self.eta_min = check_float(eta_min, "eta_min", 0, where="CosineAnnealingLR")
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


@register_scheduler
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
        self.start_factor = check_float(start_factor, "start_factor", 0, 1, "LinearLR", min_open=True)
        self.end_factor = check_float(end_factor, "end_factor", 0, 1, "LinearLR")
        self.total_iters = check_int(total_iters, "total_iters", 1, "LinearLR")
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        ramp = (self.end_factor - self.start_factor) * min(self.total_iters, epoch) / self.total_iters
        return self.base_lr * (self.start_factor + ramp)


LinearWarmup = LinearLR


@register_scheduler
class SequentialLR(LRScheduler):
    """Schedulers one after another: ``schedulers[i]`` runs from ``milestones[i - 1]`` on, counting
    its own epochs from 0 there; all share the first one's base lr (torch's ``SequentialLR``).

        lr_at(epoch) = schedulers[i].lr_at(epoch - milestones[i - 1]),   i = #milestones <= epoch

    Warmup then cosine decay over ``total`` steps::

        warmup = LinearLR(opt, start_factor=0.01, total_iters=w)
        cosine = CosineAnnealingLR(opt, T_max=total - w)
        sched = SequentialLR(opt, [warmup, cosine], milestones=[w])
    """

    def __init__(self, optimizer: Optimizer, schedulers: list[LRScheduler], milestones: Iterable[int]) -> None:
        schedulers, milestones = list(schedulers), tuple(milestones)
        if not schedulers:
            raise ValueError("SequentialLR needs at least one scheduler")
        for i, sched in enumerate(schedulers):
            if not isinstance(sched, LRScheduler) or isinstance(sched, ReduceLROnPlateau):
                raise ValueError(f"SequentialLR: schedulers[{i}] must be a closed-form tinynn scheduler, got {sched!r}")
            if sched.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedulers[{i}] drives a different optimizer")
        if len(milestones) != len(schedulers) - 1:
            n = len(schedulers)
            raise ValueError(f"SequentialLR: {n} schedulers need {n - 1} milestones, got {len(milestones)}")
        if any(not isinstance(m, int) or isinstance(m, bool) for m in milestones) or any(
            b <= a for a, b in zip((0, *milestones), milestones, strict=False)
        ):
            raise ValueError(f"SequentialLR: milestones must be increasing positive ints, got {list(milestones)}")
        self.schedulers, self.milestones = schedulers, milestones
        optimizer.lr = schedulers[0].base_lr  # undo what building the schedulers did to the lr
        super().__init__(optimizer)

    @property
    def base_lr(self) -> float:
        return self._base_lr

    @base_lr.setter
    def base_lr(self, value: float) -> None:  # one base lr for every scheduler in the sequence
        self._base_lr = value
        for sched in self.schedulers:
            sched.base_lr = value

    def lr_at(self, epoch: int) -> float:
        i = bisect_right(self.milestones, epoch)
        return self.schedulers[i].lr_at(epoch - (self.milestones[i - 1] if i else 0))

    def get_config(self) -> dict[str, Any]:
        return {
            "schedulers": [{"type": type(s).__name__, "config": s.get_config()} for s in self.schedulers],
            "milestones": list(self.milestones),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], optimizer: Optimizer) -> SequentialLR:
        schedulers = []
        for item in config["schedulers"]:
            if not isinstance(item, dict):
                raise ValueError(f"SequentialLR: a scheduler's config must be a dict, got {item!r}")
            sub = SCHEDULERS.lookup(item.get("type"))
            schedulers.append(sub.from_config(item["config"], optimizer))
        return cls(optimizer, schedulers, config["milestones"])

    def __repr__(self) -> str:
        return f"SequentialLR({self.schedulers!r}, milestones={list(self.milestones)}, last_epoch={self.last_epoch})"


@register_scheduler
class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric has stopped improving (torch's ``ReduceLROnPlateau``).

    Call ``step(metric)`` once per epoch (``fit`` passes ``val_loss``, or ``loss`` without
    validation data). With ``mode="min"`` a value is an improvement if it is below
    ``best * (1 - threshold)`` (``threshold_mode="rel"``) or ``best - threshold`` ("abs"); "max"
    mirrors it. After more than ``patience`` epochs without one: ``lr = max(lr * factor, min_lr)``
    (skipped if that changes lr by at most ``eps``), then ``cooldown`` epochs in which bad epochs
    are not counted. Defaults: mode="min", factor=0.1, patience=10, threshold=1e-4,
    threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8. Unlike the others it leaves the lr
    alone when built.
    """

    hyperparams = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps")
    takes_metric = True

    def __init__(
        self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
        threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:  # fmt: skip
        if mode not in ("min", "max"):
            raise ValueError(f"invalid mode={mode!r}: must be 'min' or 'max'")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"invalid threshold_mode={threshold_mode!r}: must be 'rel' or 'abs'")
        where = "ReduceLROnPlateau"
        factor = check_float(factor, "factor", 0, 1, where, max_open=True)
        patience, cooldown = (check_int(v, k, 0, where) for k, v in (("patience", patience), ("cooldown", cooldown)))
        threshold, min_lr, eps = (check_float(v, k, 0, where=where)
                                  for k, v in (("threshold", threshold), ("min_lr", min_lr), ("eps", eps)))  # fmt: skip
        self.optimizer, self.mode, self.factor, self.patience = optimizer, mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown = threshold, threshold_mode, cooldown
        self.min_lr, self.eps = min_lr, eps
        self.base_lr = check_lr(optimizer.lr, where)
        self.last_epoch = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0

    def is_better(self, a: float, best: float) -> bool:
        sign = 1.0 if self.mode == "min" else -1.0
        if self.threshold_mode == "rel":
            return sign * a < sign * best * (1 - sign * self.threshold)
        return sign * a < sign * best - self.threshold

    def step(self, metric: float) -> None:  # type: ignore[override]
        """One epoch's value of the monitored metric."""
        current = float(metric)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.optimizer.lr * self.factor, self.min_lr)
            if self.optimizer.lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    def lr_at(self, epoch: int) -> float:
        raise TypeError("ReduceLROnPlateau has no closed form: its lr depends on the metrics it was given")

    def get_last_lr(self) -> float:
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.optimizer.lr, "best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter, "last_epoch": self.last_epoch}  # fmt: skip

    def load_state_dict(self, d: dict[str, Any], set_lr: bool = True) -> None:
        d, name = _exact_keys(self, d), type(self).__name__
        check_lr(d["lr"], name)
        if isinstance(d["best"], bool) or not isinstance(d["best"], (int, float)) or math.isnan(d["best"]):
            raise ValueError(f"{name}: best must be a number, got {d['best']!r}")
        counts = [check_int(d[k], k, 0, name) for k in ("num_bad_epochs", "cooldown_counter", "last_epoch")]
        self.best = float(d["best"])
        self.num_bad_epochs, self.cooldown_counter, self.last_epoch = counts
        if set_lr:
            self.optimizer.lr = float(d["lr"])


def _exact_keys(sched: LRScheduler, d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with 0-d arrays as Python numbers, if its keys are exactly those of ``sched.state_dict()``."""
    want = set(sched.state_dict())
    if set(d) != want:
        raise ValueError(f"{type(sched).__name__}.load_state_dict: keys {sorted(d)}, expected {sorted(want)}")
    return {k: v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v for k, v in d.items()}


__all__ = [
    "LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "LinearWarmup",
    "SequentialLR", "ReduceLROnPlateau", "SCHEDULERS", "register_scheduler",
]  # fmt: skip
