"""Callbacks: the hooks ``Model.fit`` calls around its textbook loop (Keras names and semantics).

``fit`` calls, in this order::

    on_train_begin()
    for each epoch:   on_epoch_begin(epoch)
                      for each batch:  (forward, backward, update)  on_batch_end(step, {"loss", "size"})
                      on_epoch_end(epoch, logs)       logs: loss, accuracy, val_*, lr, time
    on_train_end()

Each built-in behaviour of ``fit`` is one small class here: the divergence check
(:class:`TerminateOnNaN`), the progress bar (:class:`ProgressBar`), scheduler stepping
(:class:`SchedulerCallback`), the per-epoch record (:class:`RecordHistory` fills a
:class:`~tinynn.history.History`), checkpoints, early stopping, CSV logs, plateau schedules.

Long because: one small class per built-in behaviour of ``fit``, each readable alone; they share
the helpers at the top (the monitored value, its direction, the check that it will be logged).
"""

from __future__ import annotations

import math
import os
import re
import string
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .checks import check_int
from .fileio import atomic_write
from .history import History
from .optim.lr_scheduler import check_interval
from .registry import Configurable

__all__ = [
    "Callback", "CallbackList", "CSVLogger", "EarlyStopping", "ModelCheckpoint", "ProgressBar",
    "RecordHistory", "ReduceLROnPlateau", "SchedulerCallback", "TerminateOnNaN", "TrainingDiverged",
]  # fmt: skip


class TrainingDiverged(RuntimeError):
    """The loss (or the parameters) became NaN or Inf during ``fit``: lower the learning rate."""


class Callback(Configurable):
    """Base class: override the hooks you need; ``self.model`` is the Model being trained.

    ``self.fit_settings`` holds ``epochs`` (the epoch to stop at), ``steps`` (batches per epoch),
    ``samples`` (per epoch) and ``validation`` (whether ``val_*`` logs will come). Set
    ``self.model.stop_training = True`` to stop after this epoch.
    """

    model: Any = None
    fit_settings: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_fit_settings(self, fit_settings: dict[str, Any]) -> None:
        self.fit_settings = fit_settings

    def on_train_begin(self) -> None: ...
    def on_train_end(self) -> None: ...
    def on_epoch_begin(self, epoch: int) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None: ...
    def on_batch_end(self, step: int, logs: dict[str, float]) -> None: ...


class CallbackList:
    """Calls each hook on every callback that overrides it, in order."""

    def __init__(self, callbacks: Iterable[Callback], model: Any, fit_settings: dict[str, Any]) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be tinynn Callback objects, got {cb!r}")
            cb.set_model(model)
            cb.set_fit_settings(fit_settings)
        # Per-batch hooks are looked up once: a no-op hook costs nothing per batch.
        self._batch_end = [cb.on_batch_end for cb in self.callbacks if _overrides(cb, "on_batch_end")]

    def on_train_begin(self) -> None:
        for cb in self.callbacks:
            cb.on_train_begin()

    def on_train_end(self) -> None:
        for cb in self.callbacks:
            cb.on_train_end()

    def on_epoch_begin(self, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        for hook in self._batch_end:
            hook(step, logs)


def _overrides(cb: Callback, hook: str) -> bool:
    return getattr(type(cb), hook) is not getattr(Callback, hook)


def _better(mode: str, monitor: str) -> str:
    """'min' or 'max' for ``mode`` ("auto": max for accuracies, else min)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


class _Best:
    """The best value of ``monitor`` so far, and whether an epoch improves on it by more than ``min_delta``:
    lower is better in mode "min", higher in "max" ("auto": max for accuracies, else min). ``best`` is
    kept signed (lower is better), so one comparison serves both modes."""

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        self.monitor, self.min_delta = monitor, min_delta
        self.sign = 1.0 if _better(mode, monitor) == "min" else -1.0
        self.best = math.inf

    def improved(self, logs: dict[str, float], who: str) -> bool:
        """Whether ``logs[monitor]`` is a new best (then it is kept); a NaN never is."""
        value = self.sign * _monitored(logs, self.monitor, who)
        if value < self.best - self.min_delta:
            self.best = value
            return True
        return False


def _check_logged(fit_settings: dict[str, Any], keys: list[str], who: str, where: str) -> None:
    """Before the first epoch: refuse ``val_*`` keys when ``fit`` has no validation data (no epoch will log them)."""
    missing = [k for k in keys if k.startswith("val_")] if fit_settings.get("validation") is False else []
    if missing:
        raise ValueError(f"{who}: {', '.join(missing)} (in {where}) is logged only with validation data; "
                         "pass validation_data to fit")


def _monitored(logs: dict[str, float], monitor: str, who: str) -> float:
    if monitor not in logs:
        raise ValueError(f"{who}: monitor={monitor!r} is not in the epoch logs {sorted(logs)}")
    return logs[monitor]


# --- the built-in behaviour of fit ------------------------------------------------------------


class TerminateOnNaN(Callback):
    """Raise :class:`TrainingDiverged` when a batch loss, or the parameters after an epoch, are NaN/Inf.

    ``fit`` always uses one (first in the list), so a diverged run never records an epoch or
    saves a checkpoint.
    """

    def on_epoch_begin(self, epoch: int) -> None:
        self.epoch = epoch

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        if not math.isfinite(logs["loss"]):
            raise diverged(self.epoch, step, self.fit_settings["steps"], f"the loss ({logs['loss']})")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if not np.isfinite(self.model.net.params).all():
            self.model.epoch = epoch  # this epoch did not complete
            raise diverged(epoch, self.fit_settings["steps"], self.fit_settings["steps"], "the parameters")


def diverged(epoch: int, step: int, steps: int, what: str) -> TrainingDiverged:
    """The error for ``what`` having become NaN/Inf at ``step`` (1-based) of ``epoch`` (0-based)."""
    return TrainingDiverged(
        f"training diverged: {what} became NaN or Inf at epoch {epoch + 1}, step {step}/{steps}. "
        "Try a lower learning rate (or gradient_clip=...). The model's parameters are no longer usable; "
        "reload a checkpoint or rebuild the model."
    )


class ProgressBar(Callback):
    """``verbose=1``: a tqdm bar per epoch (stderr) and a summary line (stdout); ``verbose=2``: the lines only."""

    hyperparams = ("verbose",)

    def __init__(self, verbose: int = 1) -> None:
        self.verbose = verbose
        self.bar: Any = None

    def on_epoch_begin(self, epoch: int) -> None:
        if self.verbose == 1:
            from tqdm import tqdm

            settings = self.fit_settings
            self.bar = tqdm(
                total=settings["samples"], desc=f"Epoch {epoch + 1}/{settings['epochs']}", unit="sample",
                unit_scale=True, leave=False, file=sys.stderr, mininterval=0.5, dynamic_ncols=True,
            )  # fmt: skip
            self.seen, self.total = 0, 0.0

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.update(logs["size"])
            self.seen += logs["size"]
            self.total += logs["loss"] * logs["size"]
            if step % 16 == 0:
                self.bar.set_postfix_str(f"loss={self.total / self.seen:.4f}", refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.verbose >= 1:
            print(summary(epoch, self.fit_settings["epochs"], logs), flush=True)

    def on_train_end(self) -> None:
        if self.bar is not None:  # an exception ended the epoch early
            self.bar.close()
            self.bar = None


def summary(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """``Epoch 3/10 - 1.2s - loss: 0.1234 - accuracy: 0.9650 - ... - lr: 0.001``."""
    parts = [f"Epoch {epoch + 1}/{epochs}", f"{logs.get('time', 0.0):.1f}s"]
    for key, value in logs.items():
        if key != "time":
            parts.append(f"{key}: {value:.3g}" if key == "lr" else f"{key}: {value:.4f}")
    return " - ".join(parts)


class RecordHistory(Callback):
    """Append each epoch's logs to ``history`` (``fit`` adds one, first after the divergence check, for
    ``model.history``: a checkpoint saved in the same epoch carries the epoch)."""

    def __init__(self, history: History) -> None:
        self.history = history

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.history.append(epoch, logs)


class SchedulerCallback(Callback):
    """Step a learning-rate scheduler after every epoch (``interval="epoch"``) or batch (``"batch"``).

    A scheduler whose ``step`` takes a metric (``ReduceLROnPlateau``) gets ``logs[monitor]`` at
    each epoch's end. ``fit(scheduler=...)`` adds one of these for ``model.scheduler``.
    """

    hyperparams = ("interval", "monitor")

    def __init__(self, scheduler: Any, interval: str = "epoch", monitor: str = "val_loss") -> None:
        check_interval(interval, scheduler=scheduler, monitor=monitor)
        if not callable(getattr(scheduler, "step", None)):
            raise TypeError(f"SchedulerCallback: scheduler must have a step() method, got {scheduler!r}")
        self.takes_metric = bool(getattr(scheduler, "takes_metric", False))
        self.scheduler, self.interval, self.monitor = scheduler, interval, monitor

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        if self.interval == "batch":
            self.scheduler.step()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.interval == "epoch":
            if self.takes_metric:
                monitor = self.monitor if self.monitor in logs or self.monitor != "val_loss" else "loss"
                self.scheduler.step(_monitored(logs, monitor, type(self.scheduler).__name__))
            else:
                self.scheduler.step()


# --- optional callbacks -------------------------------------------------------------------------


class ModelCheckpoint(Callback):
    """``model.save(filepath)`` after every epoch (atomic), or only when ``monitor`` improved.

    ``filepath`` may hold ``{epoch}`` and log keys, e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``
    (``epoch`` counts from 1, as printed). ``mode``: "min", "max" or "auto" (max for accuracies).
    The checkpoint carries everything ``Model.load`` needs to resume the run bit-identically.
    """

    hyperparams = ("filepath", "monitor", "save_best_only", "mode")

    def __init__(
        self, filepath: str | os.PathLike, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto"
    ) -> None:
        self.filepath, self.monitor, self.save_best_only = os.fspath(filepath), monitor, bool(save_best_only)
        self.mode = mode
        self._best = _Best(monitor, mode)

    def on_train_begin(self) -> None:
        """Refuse, before the first epoch, a ``{val_...}`` field or monitor that no epoch will log."""
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(self.filepath) if name}
        except ValueError as e:
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r} is not a format string ({e})") from None
        used = {re.split(r"[.\[]", name)[0] for name in fields} | ({self.monitor} if self.save_best_only else set())
        _check_logged(self.fit_settings, sorted(used), "ModelCheckpoint", f"filepath {self.filepath!r} or monitor")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.save_best_only:
            if not self._best.improved(logs, "ModelCheckpoint"):
                return
        try:
            path = Path(self.filepath.format(epoch=epoch + 1, **logs))
        except (KeyError, IndexError) as e:
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r} names {e}, which is not in the epoch "
                             f"logs {sorted(logs)}") from None
        self.model.save(path)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``restore_best_weights``: at the end of training the net gets the parameters (and batch-norm
    statistics) of its best epoch back, whether patience ran out or the last epoch was reached.
    The optimizer's state is not rewound. ``stopped_epoch`` is the epoch it stopped after (or None).
    """

    hyperparams = ("monitor", "min_delta", "patience", "mode", "restore_best_weights")

    def __init__(
        self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0, mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:  # fmt: skip
        patience = check_int(patience, "patience", 0, where="EarlyStopping")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        self.monitor, self.min_delta, self.patience, self.mode = monitor, float(min_delta), patience, mode
        self.restore_best_weights = bool(restore_best_weights)
        _better(mode, monitor)  # a bad mode is refused here, not at the first epoch

    def on_train_begin(self) -> None:
        _check_logged(self.fit_settings, [self.monitor], "EarlyStopping", "monitor")
        self._best = _Best(self.monitor, self.mode, self.min_delta)
        self.wait, self.best_epoch, self.stopped_epoch = 0, None, None
        self.best_weights: tuple[np.ndarray, dict[str, np.ndarray]] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self._best.improved(logs, "EarlyStopping"):
            self.wait, self.best_epoch = 0, epoch
            if self.restore_best_weights:
                net = self.model.net
                self.best_weights = (net.params.copy(), {k: v.copy() for k, v in net.buffers().items()})
            return
        self.wait += 1
        if self.wait >= self.patience:  # as Keras: patience=0 stops at the first epoch without improvement
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self) -> None:
        if self.best_weights is not None:
            params, buffers = self.best_weights
            self.model.net.params[...] = params
            self.model.net.load_buffers(buffers)


class CSVLogger(Callback):
    """Write the epoch logs to a CSV file, one row per epoch (the whole file rewritten atomically).

    ``append=True`` keeps the rows of an existing file (a resumed run continues its log).
    """

    hyperparams = ("filename", "separator", "append")

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        self.filename, self.separator, self.append = os.fspath(filename), separator, bool(append)

    def on_train_begin(self) -> None:
        path = Path(self.filename)
        self.lines = path.read_text().splitlines() if self.append and path.is_file() else []
        self.keys: list[str] | None = self.lines[0].split(self.separator)[1:] if self.lines else None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.keys is None:
            self.keys = list(logs)
            self.lines.append(self.separator.join(["epoch", *self.keys]))
        row = [str(epoch)] + [repr(float(logs.get(k, math.nan))) for k in self.keys]
        self.lines.append(self.separator.join(row))
        text = ("\n".join(self.lines) + "\n").encode()
        atomic_write(self.filename, lambda f: f.write(text))


class ReduceLROnPlateau(SchedulerCallback):
    """Keras' callback: ``lr *= factor`` when ``monitor`` stops improving for ``patience`` epochs.

    Builds a :class:`tinynn.optim.lr_scheduler.ReduceLROnPlateau` on the model's optimizer when
    training begins (``min_delta`` is its ``threshold``, absolute as in Keras) and steps it each
    epoch. To have its state saved in checkpoints, pass the scheduler itself:
    ``fit(scheduler=lr_scheduler.ReduceLROnPlateau(opt, ...))``.
    """

    hyperparams = ("monitor", "factor", "patience", "mode", "min_delta", "cooldown", "min_lr")

    def __init__(
        self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, mode: str = "auto",
        min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0,
    ) -> None:  # fmt: skip
        self.monitor, self.interval, self.takes_metric = monitor, "epoch", True
        self.factor, self.patience, self.mode, self.min_delta = factor, patience, mode, min_delta
        self.cooldown, self.min_lr = cooldown, min_lr
        self._mode = _better(mode, monitor)

    def on_train_begin(self) -> None:
        from .optim.lr_scheduler import ReduceLROnPlateau as Plateau

        self.scheduler = Plateau(
            self.model.optimizer, mode=self._mode, factor=self.factor, patience=self.patience,
            threshold=self.min_delta, threshold_mode="abs", cooldown=self.cooldown, min_lr=self.min_lr,
        )  # fmt: skip
