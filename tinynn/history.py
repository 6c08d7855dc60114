"""History: the per-epoch record of ``Model.fit``, as in Keras (``history.history["loss"]``).

A plain record: during ``fit`` the callback :class:`tinynn.callbacks.RecordHistory` appends each
epoch's logs to it. ``model.history`` is the one History of a model; checkpoints carry it, so a
resumed run's history covers every epoch.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .checks import check_int
from .fileio import atomic_savefig, atomic_write


class History:
    """Per-epoch metrics: ``history.history[key]`` is a list with one float per epoch.

    Keys written by ``fit``: ``loss``, ``accuracy`` (classification losses only), ``val_loss``
    and ``val_accuracy`` (with validation data), ``lr`` (the learning rate at the start of the
    epoch) and ``time`` (seconds, training plus validation). ``history.epoch`` lists the epoch
    indices. ``model.history`` keeps every epoch the model was trained for (``fit`` appends, and
    checkpoints carry it), so every list has one entry per epoch: NaN where an epoch did not
    record that key (e.g. ``val_loss`` of a ``fit`` without validation data).
    """

    def __init__(self, history: dict[str, list[float]] | None = None, epoch: list[int] | None = None) -> None:
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
        self.epoch: list[int] = list(epoch or [])

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        """Record one epoch's ``logs``."""
        n = len(self.epoch)
        self.epoch.append(int(epoch))
        for key, value in logs.items():
            self.history.setdefault(key, [math.nan] * n).append(float(value))
        for values in self.history.values():
            if len(values) == n:  # a key this epoch did not log
                values.append(math.nan)

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, keys={list(self.history)})"

    # --- saving ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """``{"epoch": [...], "history": {key: [...]}}``, plain JSON (NaN written as null)."""
        return {
            "epoch": list(self.epoch),
            "history": {k: [None if math.isnan(v) else v for v in vs] for k, vs in self.history.items()},
        }

    @classmethod
    def from_dict(cls, data: Any) -> History:
        if not isinstance(data, dict) or not isinstance(data.get("history"), dict):
            raise ValueError("History data must be an object with a 'history' mapping")
        epoch = data.get("epoch", [])
        history = data["history"]
        if not isinstance(epoch, list):
            raise ValueError("History 'epoch' must be a list of integers")
        epoch = [check_int(e, "epoch", 0, "History") for e in epoch]
        for key, values in history.items():
            if not isinstance(values, list) or len(values) != len(epoch):
                raise ValueError(f"History {key!r} must be a list with one value per epoch ({len(epoch)})")
            if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
                raise ValueError(f"History {key!r} must hold numbers (or null)")
        return cls({k: [math.nan if v is None else float(v) for v in vs] for k, vs in history.items()}, epoch)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> History:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``to_json()`` to ``path`` atomically (an existing file is never left half-written)."""
        text = self.to_json().encode()
        return atomic_write(path, lambda f: f.write(text))

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        return cls.from_json(Path(path).read_text())

    # --- plotting ----------------------------------------------------------------------------

    def plot(self, path: str | os.PathLike, title: str | None = None) -> Path:
        """Save a PNG of loss (and accuracy, if recorded) per epoch, train vs validation.

        Uses matplotlib's Agg backend on a private Figure (no pyplot, no window, thread-safe);
        matplotlib is imported only here, so training never pays for it.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        h = self.history
        panels = [k for k in ("loss", "accuracy") if k in h or f"val_{k}" in h]
        if not panels:
            raise ValueError("History.plot: nothing to plot (no loss or accuracy recorded)")
        fig = Figure(figsize=(5 * len(panels), 3.8), layout="constrained")
        FigureCanvasAgg(fig)
        epochs = [e + 1 for e in self.epoch]
        for i, key in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            for name, label in ((key, "train"), (f"val_{key}", "validation")):
                if name in h:  # NaN (an epoch without that key) leaves a gap
                    ax.plot(epochs, h[name], marker="o", ms=3, label=label)
            ax.set_xlabel("epoch")
            ax.set_ylabel(key)
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        return atomic_savefig(fig, path)
