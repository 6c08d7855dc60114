"""Model: a net, a loss and an optimizer, stepped once per batch; ``fit``, ``evaluate``, ``save``/``load``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import parallel, rng
from .callbacks import (
    Callback,
    CallbackList,
    ModelCheckpoint,
    ProgressBar,
    RecordHistory,
    SchedulerCallback,
    TerminateOnNaN,
    TrainingDiverged,
    diverged,
)
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .checks import check_int, check_positive
from .data import BatchIterator
from .history import History
from .losses import Loss
from .net import Net
from .optim.lr_scheduler import check_interval

__all__ = ["History", "Model", "TrainingDiverged"]


class Model:
    """Wraps ``net``, ``loss`` and ``optimizer``; one ``train_step`` per batch.

    ``optimizer`` is any object with ``step(params, grads)`` updating ``params`` in place,
    normally one of :mod:`tinynn.optim`. ``gradient_clip``: if set, the gradient vector is
    multiplied by ``min(1, gradient_clip / (norm + 1e-6))`` (its global L2 norm) before the
    optimizer sees it, exactly as torch's ``clip_grad_norm_``.
    """

    def __init__(self, net: Net, loss: Loss, optimizer: Any, gradient_clip: float | None = None) -> None:
        if not isinstance(net, Net):
            raise TypeError(f"Model: net must be a tinynn.Net, got {type(net).__name__}")
        if not callable(getattr(loss, "loss_and_grad", None)):
            raise TypeError(f"Model: loss must be a tinynn loss (with loss_and_grad), got {loss!r}")
        if not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"Model: optimizer must have a step(params, grads) method, got {optimizer!r}")
        if gradient_clip is not None:
            gradient_clip = check_positive(gradient_clip, "gradient_clip (or None)", "Model")
        self.net, self.loss, self.optimizer = net, loss, optimizer
        self.gradient_clip = gradient_clip
        # Carried by save/load with the net and optimizer, so a run can resume where it stopped.
        self.scheduler: Any = None
        self.scheduler_interval = "epoch"
        self.epoch = 0  # epochs completed (as numbered by fit: the next fit may pass initial_epoch=model.epoch)
        self.history = History()  # every epoch trained so far: fit appends, save/load carry it
        self.stop_training = False  # a callback sets it to end fit after the current epoch
        self.run_id: str | None = None  # names the run this model belongs to (tinynn train); save/load carry it

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The net's output for batch ``x``, in the net's current mode."""
        return self.net.forward(x)

    def backward(self, preds: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss of ``preds`` against ``targets``, and ``net.grads`` filled with its gradient."""
        loss, grad = self.loss.loss_and_grad(preds, targets)
        self.net.backward(grad)
        return loss, self.net.grads

    def apply_grads(self, grads: np.ndarray) -> None:
        """Clip (if asked) and hand the flat gradient to the optimizer: one call per batch."""
        if self.gradient_clip is not None:  # torch's clip_grad_norm_
            scale = self.gradient_clip / (float(np.sqrt(np.vdot(grads, grads))) + 1e-6)
            if scale < 1:
                grads *= scale
        parallel.optimizer_step(self.optimizer, self.net.params, grads, self.net.workers)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        """forward, backward and apply_grads on one batch, in training mode; returns the loss."""
        if not self.net.training:
            self.net.train()
        preds = self.net.forward(x)
        loss, grads = self.backward(preds, y)
        self.apply_grads(grads)
        return loss

    def predict(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Outputs for all of ``x``, in eval mode, ``batch_size`` rows at a time.

        ``uint8`` images (raw 0..255 pixels) are scaled to [0, 1] batch by batch, like ``fit``.
        """
        x = np.asarray(x)
        check_int(batch_size, "batch_size", where="predict")
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"predict got input of shape {x.shape}; expected a non-empty batch")
        with self._inference():
            batches = BatchIterator(batch_size, shuffle=False)(x)
            return np.concatenate([self.net.forward(xb) for xb, _ in batches])

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> dict[str, float]:
        """Mean loss (and accuracy, for classification losses) over ``(x, y)``, in eval mode.

        Batched so memory stays flat; the net's mode is restored afterwards. ``uint8`` images are
        scaled per batch.
        """
        check_int(batch_size, "batch_size", where="evaluate")
        batches = BatchIterator(batch_size, shuffle=False)(x, y)
        metrics = _EpochMetrics(self.loss)
        with self._inference():
            for xb, yb in batches:
                preds = self.net.forward(xb)
                metrics.update(self.loss.loss(preds, yb), preds, yb)
        return metrics.result()

    @contextmanager
    def _inference(self) -> Iterator[None]:
        """Eval mode for the block; afterwards the previous mode, and no inference-sized scratch arrays."""
        was_training = self.net.training
        self.net.eval()
        try:
            yield
        finally:
            self.net.free_scratch()  # scratch arrays sized for big inference batches must not linger
            if was_training:
                self.net.train()

    # --- training ------------------------------------------------------------------------

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        epochs: int = 1,
        batch_size: int = 128,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        scheduler: Any = None,
        scheduler_interval: str | None = None,
        verbose: int = 1,
        initial_epoch: int = 0,
        shuffle: bool = True,
        checkpoint_path: str | os.PathLike | None = None,
        callbacks: Sequence[Callback] = (),
        drop_last: bool = False,
        augment: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> History:
        """Train on ``(x, y)`` in mini-batches; returns ``model.history`` (every epoch so far).

        As in Keras, ``epochs`` is the index to stop at: epochs ``initial_epoch .. epochs - 1``
        run, so a run saved after epoch k resumes with ``fit(..., epochs=n, initial_epoch=k)``.
        ``batch_size`` defaults to 128 (numpy pays a fixed cost per batch; 128 amortises it);
        ``drop_last`` skips a final batch smaller than it (as torch's DataLoader).

        ``x`` may be ``uint8`` images (0..255): each batch is scaled to float32 [0, 1] as it is drawn,
        so the dataset stays 4x smaller in memory. Batches are shuffled each epoch with tinynn's
        seeded generator (``tn.seed``). ``augment`` (e.g. ``tn.data.RandomShift(2, (28, 28))``) is
        applied to each training batch after scaling, never to validation data; it draws from the
        same generator, so a resumed run replays its draws too.

        ``scheduler`` (e.g. ``tn.optim.lr_scheduler.CosineAnnealingLR``) is stepped after every
        epoch, or every batch with ``scheduler_interval="batch"`` (None keeps the model's setting,
        "epoch" unless changed); it is kept on the model (``model.scheduler``) so ``save``/``load``
        carry it, and ``None`` keeps the model's current one.

        ``callbacks``: :class:`tinynn.callbacks.Callback` objects, called after the built-in ones
        (:class:`~tinynn.callbacks.TerminateOnNaN`, ``model.history``, the scheduler's
        :class:`~tinynn.callbacks.SchedulerCallback`). ``checkpoint_path`` adds a
        :class:`~tinynn.callbacks.ModelCheckpoint` saving there after every epoch; ``verbose``
        (0 silent, 1 a progress bar on stderr and a summary line per epoch on stdout, 2 the lines
        only) adds a :class:`~tinynn.callbacks.ProgressBar`, last.

        Raises :class:`TrainingDiverged` if the loss or the parameters become NaN/Inf.
        """
        batches = self._batches(x, y, epochs, batch_size, validation_data, initial_epoch, shuffle, drop_last, augment)
        settings = {"epochs": epochs, "steps": len(batches), "samples": min(batches.n, len(batches) * batch_size),
                    "validation": validation_data is not None}
        callbacks = self._callbacks(callbacks, scheduler, scheduler_interval, checkpoint_path, verbose, settings)
        self.stop_training = False
        callbacks.on_train_begin()
        try:
            for epoch in range(initial_epoch, epochs):
                callbacks.on_epoch_begin(epoch)
                start, lr = time.perf_counter(), getattr(self.optimizer, "lr", None)
                self.net.train()
                metrics = _EpochMetrics(self.loss)
                for step, (xb, yb) in enumerate(batches, 1):
                    preds = self.net.forward(xb)  # 1. forward
                    if not np.isfinite(preds).all():  # the loss would refuse them: that is divergence
                        raise diverged(epoch, step, len(batches), "the predictions")
                    loss, grads = self.backward(preds, yb)  # 2. loss, 3. backward: fills net.grads
                    self.apply_grads(grads)  # 4. one optimizer step for the whole net
                    metrics.update(loss, preds, yb)
                    callbacks.on_batch_end(step, {"loss": loss, "size": len(xb)})
                logs = metrics.result()
                if validation_data is not None:
                    val = self.evaluate(*validation_data, batch_size=max(1024, batch_size))
                    logs.update({f"val_{k}": v for k, v in val.items()})
                logs.update({"lr": lr} if lr is not None else {}, time=time.perf_counter() - start)
                self.epoch = epoch + 1
                callbacks.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        finally:
            callbacks.on_train_end()
        return self.history

    def _batches(self, x, y, epochs, batch_size, validation_data, initial_epoch, shuffle, drop_last, augment):  # noqa: ANN001
        """Check fit's arguments before anything trains; the batches of ``(x, y)``."""
        check_int(epochs, "epochs", 1, where="fit")
        check_int(initial_epoch, "initial_epoch", 0, where="fit")
        check_int(batch_size, "batch_size", 1, where="fit")
        if epochs < initial_epoch:
            raise ValueError(
                f"fit: epochs={epochs} < initial_epoch={initial_epoch}; epochs is the epoch to stop at "
                "(as in Keras): fit(epochs=10, initial_epoch=3) trains the 7 epochs 4..10"
            )
        batches = BatchIterator(batch_size, shuffle=shuffle, drop_last=drop_last, augment=augment)(x, y)  # checks sizes
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
            BatchIterator(1, shuffle=False)(*validation_data)  # check now, not after the first epoch
        smallest = batches.spec.batch_size if drop_last or batches.n % batch_size == 0 else batches.n % batch_size
        for _, layer in self.net.named_layers():  # e.g. batch norm cannot normalise one sample
            need = layer.min_train_batch
            if smallest < need:
                raise ValueError(
                    f"fit: {layer!r} needs batches of at least {need} samples in training, but with "
                    f"{batches.n} samples and batch_size={batch_size} a batch has {smallest}; "
                    "pass drop_last=True (skip the short last batch) or change batch_size"
                )
        return batches

    def _callbacks(self, extra, scheduler, interval, checkpoint_path, verbose, fit_settings) -> CallbackList:  # noqa: ANN001
        """The built-in callbacks, then the user's: the order in which every hook is called."""
        if scheduler is not None:
            if getattr(scheduler, "optimizer", self.optimizer) is not self.optimizer:
                raise ValueError("fit: the scheduler drives a different optimizer than this model's")
            if not callable(getattr(scheduler, "step", None)):
                raise TypeError(f"fit: scheduler must have a step() method, got {scheduler!r}")
        if interval is not None:
            check_interval(interval, "scheduler_interval", "fit")
        if verbose not in (0, 1, 2):
            raise ValueError(f"fit: verbose must be 0, 1 or 2, got {verbose!r}")
        built = [TerminateOnNaN(), RecordHistory(self.history)]
        if scheduler is not None or self.scheduler is not None:
            sched, interval = scheduler or self.scheduler, interval or self.scheduler_interval
            built.append(SchedulerCallback(sched, interval))  # checked before the model changes
            self.scheduler, self.scheduler_interval = sched, interval
        elif interval is not None:
            self.scheduler_interval = interval
        built += list(extra)
        if checkpoint_path is not None:
            built.append(ModelCheckpoint(checkpoint_path))
        if verbose:
            built.append(ProgressBar(verbose))
        return CallbackList(built, self, fit_settings)

    # --- saving --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write net, loss, optimizer and scheduler state, epoch, history and RNG state to ONE ``.npz``.

        Atomic: written to a temp file beside ``path``, then renamed, so a crash never leaves a
        half-written checkpoint. The file is written at ``path`` exactly (no suffix added).
        Format: :mod:`tinynn.checkpoint`.
        """
        record = Checkpoint(
            self.net, self.loss, self.optimizer, self.scheduler, self.epoch, self.scheduler_interval,
            self.gradient_clip, self.history, rng.get_state(), self.run_id,
        )  # fmt: skip
        return save_checkpoint(path, record)

    @classmethod
    def load(cls, path: str | os.PathLike, optimizer: Any = None, restore_rng: bool = True) -> Model:
        """Rebuild a model saved by :meth:`save`, ready to predict or to resume training.

        Without ``optimizer`` the saved tinynn optimizer is rebuilt with its hyperparameters and
        state, and the saved scheduler sets its lr. With ``optimizer=`` it is used as given: its
        hyperparameters (lr included) stay as you set them; it continues the saved state (step
        count, moments) if it is of the saved class, else starts fresh; a saved scheduler is
        reattached to it but changes its lr only from its next ``step``. A custom optimizer
        class must always be passed this way.

        ``model.epoch``, ``model.history`` (all epochs so far) and the scheduler are restored.
        With ``restore_rng`` (the default) tinynn's random generator is set to its saved state,
        which makes a resumed run bit-identical to an uninterrupted one; with
        ``restore_rng=False`` the generator is left exactly as it was.

        Never unpickles. A foreign, malformed or truncated file raises ``ValueError`` naming the
        file and the problem.
        """
        ckpt = load_checkpoint(path, optimizer=optimizer)
        try:
            model = cls(ckpt.net, ckpt.loss, ckpt.optimizer, gradient_clip=ckpt.gradient_clip)
        except (ValueError, TypeError) as e:
            raise ValueError(f"cannot load checkpoint {path}: {e}") from None
        model.scheduler, model.scheduler_interval = ckpt.scheduler, ckpt.scheduler_interval
        model.epoch, model.history, model.run_id = ckpt.epoch, ckpt.history, ckpt.run_id
        if restore_rng:
            try:
                rng.set_state(ckpt.rng_state)
            except (ValueError, TypeError, KeyError) as e:
                raise ValueError(f"cannot load checkpoint {path}: bad 'rng_state' ({e})") from None
        return model


class _EpochMetrics:
    """Sample-weighted mean loss over batches, and accuracy if the loss counts correct predictions."""

    def __init__(self, loss: Loss) -> None:
        self.count_correct = getattr(loss, "count_correct", lambda preds, targets: None)
        self.seen, self.total, self.correct, self.scored = 0, 0.0, 0, 0

    def update(self, loss: float, preds: np.ndarray, targets: np.ndarray) -> None:
        self.seen += len(preds)
        self.total += loss * len(preds)
        counts = self.count_correct(preds, targets)
        if counts is not None:
            self.correct, self.scored = self.correct + counts[0], self.scored + counts[1]

    def result(self) -> dict[str, float]:
        logs = {"loss": self.total / self.seen}
        if self.scored:
            logs["accuracy"] = self.correct / self.scored
        return logs
