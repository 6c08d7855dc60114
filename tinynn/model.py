"""Model: a net, a loss and an optimizer, stepped once per batch; ``fit``, ``evaluate``, ``save``/``load``."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from . import parallel
from .checkpoint import load_checkpoint, save_checkpoint
from .data import BatchIterator
from .history import History
from .losses import BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from .net import Net

__all__ = ["History", "Model", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """The loss (or the parameters) became NaN or Inf during ``fit``: lower the learning rate."""


def _correct_fn(loss: Loss) -> Callable[[np.ndarray, np.ndarray], tuple[int, int]] | None:
    """``(preds, targets) -> (number correct, number scored)`` for classification losses, else None.

    Works on the batch predictions ``fit`` already has, so accuracy costs one argmax per batch.
    """
    if isinstance(loss, SoftmaxCrossEntropy):

        def correct(preds: np.ndarray, targets: np.ndarray) -> tuple[int, int]:
            labels = targets.argmax(axis=1) if targets.ndim == 2 else targets
            return int(np.count_nonzero(preds.argmax(axis=1) == labels)), len(preds)

        return correct
    if isinstance(loss, BinaryCrossEntropy):

        def correct(preds: np.ndarray, targets: np.ndarray) -> tuple[int, int]:
            hit = (preds > 0) == (np.reshape(targets, preds.shape) > 0.5)  # logit > 0 <=> p > 0.5
            return int(np.count_nonzero(hit)), hit.size

        return correct
    return None


class Model:
    """Wraps ``net``, ``loss`` and ``optimizer``; one ``train_step`` per batch.

    ``optimizer`` is any object with ``step(params, grads)`` updating ``params`` in place,
    normally one of :mod:`tinynn.optim`. ``gradient_clip``: if set, the gradient vector is
    rescaled so its global L2 norm is at most this value before the optimizer sees it
    (as torch's ``clip_grad_norm_``).
    """

    def __init__(self, net: Net, loss: Loss, optimizer: Any, gradient_clip: float | None = None) -> None:
        if not isinstance(net, Net):
            raise TypeError(f"Model: net must be a tinynn.Net, got {type(net).__name__}")
        if not callable(getattr(loss, "loss_and_grad", None)):
            raise TypeError(f"Model: loss must be a tinynn loss (with loss_and_grad), got {loss!r}")
        if not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"Model: optimizer must have a step(params, grads) method, got {optimizer!r}")
        if gradient_clip is not None and not gradient_clip > 0:
            raise ValueError(f"Model: gradient_clip must be > 0 or None, got {gradient_clip}")
        self.net, self.loss, self.optimizer = net, loss, optimizer
        self.gradient_clip = gradient_clip
        # Training state carried by save/load so a run can resume where it stopped.
        self.scheduler: Any = None
        self.scheduler_step = "epoch"
        self.epoch = 0  # epochs completed (as numbered by fit: the next fit may pass initial_epoch=model.epoch)
        self.history: History | None = None  # of the latest fit

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
        if self.gradient_clip is not None:
            norm = float(np.sqrt(np.vdot(grads, grads)))
            if norm > self.gradient_clip:
                grads *= self.gradient_clip / (norm + 1e-6)
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
        if batch_size <= 0:
            raise ValueError(f"predict: batch_size must be positive, got {batch_size}")
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
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"evaluate: batch_size must be a positive int, got {batch_size!r}")
        batches = BatchIterator(batch_size, shuffle=False)(x, y)
        correct_fn = _correct_fn(self.loss)
        total, seen, correct, scored = 0.0, 0, 0, 0
        with self._inference():
            for xb, yb in batches:
                preds = self.net.forward(xb)
                total += self.loss.loss(preds, yb) * len(xb)
                seen += len(xb)
                if correct_fn is not None:
                    c, s = correct_fn(preds, yb)
                    correct, scored = correct + c, scored + s
        result = {"loss": total / seen}
        if correct_fn is not None:
            result["accuracy"] = correct / scored
        return result

    @contextmanager
    def _inference(self) -> Iterator[None]:
        """Eval mode for the block; afterwards the previous mode, and no inference-sized buffers."""
        was_training = self.net.training
        self.net.eval()
        try:
            yield
        finally:
            self.net.free_buffers()  # scratch arrays sized for big inference batches must not linger
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
        scheduler_step: str | None = None,
        verbose: int = 1,
        initial_epoch: int = 0,
        shuffle: bool = True,
        checkpoint_path: str | os.PathLike | None = None,
    ) -> History:
        """Train on ``(x, y)`` in mini-batches; returns a :class:`History` (one entry per epoch).

        As in Keras, ``epochs`` is the index to stop at: epochs ``initial_epoch .. epochs - 1``
        run, so a run saved after epoch k resumes with ``fit(..., epochs=n, initial_epoch=k)``.
        ``batch_size`` defaults to 128 (numpy pays a fixed cost per batch; 128 amortises it).

        ``x`` may be ``uint8`` images (0..255): each batch is scaled to float32 [0, 1] as it is drawn,
        so the dataset stays 4x smaller in memory. Batches are shuffled each epoch with tinynn's
        seeded generator (``tn.seed``).

        ``scheduler`` (e.g. ``tn.optim.lr_scheduler.CosineAnnealingLR``) is stepped after every
        epoch, or every batch with ``scheduler_step="batch"`` (None keeps the model's setting,
        "epoch" unless changed); it is kept on the model
        (``model.scheduler``) so ``save``/``load`` carry it, and ``None`` keeps the model's current
        one (None unless set by an earlier ``fit`` or by ``load``).

        ``verbose``: 0 silent, 1 a progress bar (stderr) and a summary line per epoch (stdout),
        2 the summary lines only. ``checkpoint_path``: ``save`` there after every epoch.

        Raises :class:`TrainingDiverged` if the loss or the parameters become NaN/Inf.
        """
        _check_int("epochs", epochs, 1)
        _check_int("initial_epoch", initial_epoch, 0)
        if epochs < initial_epoch:
            raise ValueError(
                f"fit: epochs={epochs} < initial_epoch={initial_epoch}; epochs is the epoch to stop at "
                "(as in Keras): fit(epochs=10, initial_epoch=3) trains the 7 epochs 4..10"
            )
        batches = BatchIterator(batch_size, shuffle=shuffle)(x, y)  # validates batch_size and lengths
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
            BatchIterator(1, shuffle=False)(*validation_data)  # check now, not after the first epoch
        if scheduler is not None:
            if getattr(scheduler, "optimizer", self.optimizer) is not self.optimizer:
                raise ValueError("fit: the scheduler drives a different optimizer than this model's")
            if not callable(getattr(scheduler, "step", None)):
                raise TypeError(f"fit: scheduler must have a step() method, got {scheduler!r}")
            self.scheduler = scheduler
        if scheduler_step is not None:
            if scheduler_step not in ("epoch", "batch"):
                raise ValueError(f"fit: scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
            self.scheduler_step = scheduler_step
        sched = self.scheduler
        per_batch = sched is not None and self.scheduler_step == "batch"
        correct_fn = _correct_fn(self.loss)
        net, n = self.net, batches.n
        history = self.history = History()

        for epoch in range(initial_epoch, epochs):
            start = time.perf_counter()
            lr = getattr(self.optimizer, "lr", None)
            total, seen, correct, scored = 0.0, 0, 0, 0
            bar = tqdm(
                total=n, desc=f"Epoch {epoch + 1}/{epochs}", unit="sample", unit_scale=True, leave=False,
                file=sys.stderr, mininterval=0.5, disable=verbose != 1, dynamic_ncols=True,
            )  # fmt: skip
            net.train()
            for step, (xb, yb) in enumerate(batches, 1):
                preds = net.forward(xb)
                try:
                    loss, grads = self.backward(preds, yb)
                except ValueError as e:  # Loss refuses NaN/Inf predictions: that is divergence
                    if np.isfinite(preds).all():
                        raise
                    raise _diverged(epoch, step, len(batches), "the predictions") from e
                if not math.isfinite(loss):
                    raise _diverged(epoch, step, len(batches), f"the loss ({loss})")
                self.apply_grads(grads)
                b = len(xb)
                total += loss * b
                seen += b
                if correct_fn is not None:
                    c, s = correct_fn(preds, yb)
                    correct, scored = correct + c, scored + s
                if per_batch:
                    sched.step()
                if not bar.disable:
                    bar.update(b)
                    if step % 16 == 0:
                        bar.set_postfix_str(f"loss={total / seen:.4f}", refresh=False)
            bar.close()
            if not np.isfinite(net.params).all():
                raise _diverged(epoch, len(batches), len(batches), "the parameters")

            logs = {"loss": total / seen}
            if correct_fn is not None:
                logs["accuracy"] = correct / scored
            if validation_data is not None:
                val = self.evaluate(*validation_data, batch_size=max(1024, batch_size))
                logs.update({f"val_{k}": v for k, v in val.items()})
            if lr is not None:
                logs["lr"] = lr
            logs["time"] = time.perf_counter() - start
            history.append(epoch, logs)
            if sched is not None and not per_batch:
                sched.step()
            self.epoch = epoch + 1
            if checkpoint_path is not None:
                self.save(checkpoint_path)
            if verbose >= 1:
                print(_summary(epoch, epochs, logs), flush=True)
        return history

    # --- saving --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write net, loss, optimizer and scheduler state, RNG state and epoch to ONE ``.npz``.

        Atomic: written to a temp file beside ``path``, then renamed, so a crash never leaves a
        half-written checkpoint. The file is written at ``path`` exactly (no suffix added).
        Format: :mod:`tinynn.checkpoint`.
        """
        return save_checkpoint(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, optimizer: Any = None, restore_rng: bool = True) -> Model:
        """Rebuild a model saved by :meth:`save`, ready to predict or to resume training.

        The optimizer is rebuilt by class name from :mod:`tinynn.optim` with its saved state; for
        a custom optimizer pass ``optimizer=`` (its state is restored if it is of the saved class
        and has ``load_state_dict``; an optimizer of another class starts fresh). The scheduler
        and ``model.epoch`` are restored; with ``restore_rng`` so is tinynn's random generator,
        which makes a resumed run bit-identical to an uninterrupted one.

        Never unpickles. A foreign, malformed or truncated file raises ``ValueError`` naming the
        file and the problem.
        """
        return load_checkpoint(path, optimizer=optimizer, restore_rng=restore_rng, model_cls=cls)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"fit: {name} must be an int >= {minimum}, got {value!r}")


def _diverged(epoch: int, step: int, steps: int, what: str) -> TrainingDiverged:
    return TrainingDiverged(
        f"training diverged: {what} became NaN or Inf at epoch {epoch + 1}, step {step}/{steps}. "
        "Try a lower learning rate (or gradient_clip=...). The model's parameters are no longer usable; "
        "reload a checkpoint or rebuild the model."
    )


def _summary(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    parts = [f"Epoch {epoch + 1}/{epochs}", f"{logs['time']:.1f}s"]
    for key, value in logs.items():
        if key == "time":
            continue
        parts.append(f"{key}: {value:.3g}" if key == "lr" else f"{key}: {value:.4f}")
    return " - ".join(parts)
