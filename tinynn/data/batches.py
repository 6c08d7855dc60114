"""Mini-batches over in-memory arrays, shuffled per epoch with tinynn's shared generator."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..checks import check_int
from ..rng import get_rng

_MAX_PIXEL = np.float32(255)


class BatchIterator:
    """Cut ``(x, y)`` into mini-batches: ``for xb, yb in BatchIterator(128)(x, y): ...``.

    Calling it returns an :class:`Epochs` object; each pass over that is one epoch, with a
    fresh permutation from :func:`tinynn.rng.get_rng` when ``shuffle`` (so ``tn.seed``
    makes the order reproducible). Shuffled batches are gathered by fancy indexing (only the
    batch is copied); unshuffled ones are slices (views). ``uint8`` images are scaled to
    float32 in [0, 1] batch by batch. ``y`` may be None (batches are then ``(xb, None)``).
    ``drop_last`` drops a final batch smaller than ``batch_size``. ``augment``, a function
    ``xb -> xb`` such as :class:`tinynn.data.RandomShift`, is applied to every batch of ``x``
    after scaling (data augmentation, for training batches).
    """

    def __init__(self, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 augment: Callable[[np.ndarray], np.ndarray] | None = None):
        self.batch_size = check_int(batch_size, "batch_size", where="BatchIterator")
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if augment is not None and not callable(augment):
            raise TypeError(f"BatchIterator: augment must be a function xb -> xb or None, got {augment!r}")
        self.augment = augment

    def __call__(self, x: np.ndarray, y: np.ndarray | None = None) -> Epochs:
        return Epochs(self, x, y)

    def __repr__(self) -> str:
        return (
            f"BatchIterator(batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}{'' if self.augment is None else f', augment={self.augment!r}'})"
        )


class Epochs:
    """The batches of one dataset; ``len()`` is the number of batches, each ``iter()`` an epoch."""

    def __init__(self, spec: BatchIterator, x: np.ndarray, y: np.ndarray | None):
        x = np.asarray(x)
        if x.ndim == 0:
            raise ValueError("x must be an array of samples (at least 1-D), got a scalar")
        if y is not None:
            y = np.asarray(y)
            if y.ndim == 0 or len(y) != len(x):
                raise ValueError(
                    f"x and y must have the same number of samples: x has {len(x)}, "
                    f"y has {len(y) if y.ndim else 'a scalar'}"
                )
        n = len(x)
        if n == 0:
            raise ValueError("cannot make batches from an empty dataset (0 samples)")
        self.x, self.y, self.spec, self.n = x, y, spec, n
        size = spec.batch_size
        self.num_batches = n // size if spec.drop_last else -(-n // size)
        if self.num_batches == 0:
            raise ValueError(f"drop_last=True with batch_size={size} > {n} samples leaves no batch")

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        x, y, size = self.x, self.y, self.spec.batch_size
        scale = x.dtype == np.uint8
        order = get_rng().permutation(self.n) if self.spec.shuffle else None
        for start in range(0, self.num_batches * size, size):
            if order is None:
                xb = x[start : start + size]
                yb = None if y is None else y[start : start + size]
            else:
                idx = order[start : start + size]
                xb = x[idx]  # fancy indexing copies just the batch (and beats np.take ~3x)
                yb = None if y is None else y[idx]
            if scale:  # cast, then divide in place: float32 from end to end, one new array
                xb = xb.astype(np.float32)
                xb /= _MAX_PIXEL
            if self.spec.augment is not None:
                xb = self.spec.augment(xb)
            yield xb, yb
