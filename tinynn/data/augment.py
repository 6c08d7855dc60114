"""Data augmentation: a random change to every training batch, drawn from tinynn's shared generator.

An augmentation is a callable ``xb -> xb`` given to ``BatchIterator(augment=...)`` or
``Model.fit(augment=...)``; it sees each batch after ``uint8`` images are scaled to [0, 1]. Its
draws come from :func:`tinynn.rng.get_rng`, after the epoch's permutation, so ``tn.seed`` fixes
them and a checkpoint (which saves the generator's state) resumes them exactly.
"""

from __future__ import annotations

import numpy as np

from ..checks import check_int
from ..rng import get_rng


class RandomShift:
    """Move each image by a random whole number of pixels: ``y[r, c] = x[r - dy, c - dx]``, 0 outside.

    ``dy`` and ``dx`` are drawn per image, uniformly from ``-max_shift .. max_shift``; the pixels
    shifted in are 0 (MNIST's background). A shift of 1-2 pixels keeps a digit a digit while the
    net sees each training image at up to ``(2*max_shift + 1)**2`` positions, which curbs
    overfitting the way more data would (LeCun et al. 1998 used such distortions for LeNet-5).

    ``image_shape``: ``(height, width)`` of flat rows, e.g. ``(28, 28)`` for MNIST's 784-pixel rows;
    None (the default) reads the last two axes of the batch as height and width (every channel of
    an image moves together). The result is a new array of the batch's shape and dtype.
    """

    def __init__(self, max_shift: int = 2, image_shape: tuple[int, int] | None = None) -> None:
        self.max_shift = check_int(max_shift, "max_shift", 0, where="RandomShift")
        if image_shape is not None:
            if not (isinstance(image_shape, (tuple, list)) and len(image_shape) == 2):
                raise ValueError(f"RandomShift: image_shape must be (height, width) or None, got {image_shape!r}")
            image_shape = tuple(check_int(s, "image_shape", where="RandomShift") for s in image_shape)
        self.image_shape = image_shape

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n, m = len(x), self.max_shift
        if self.image_shape is not None:
            h, w = self.image_shape
            if x.ndim != 2 or x.shape[1] != h * w:
                raise ValueError(f"{self!r} got a batch of shape {x.shape}; expected (batch, {h * w})")
        elif x.ndim < 3:
            raise ValueError(f"{self!r} got a batch of shape {x.shape}; expected (batch, ..., height, width)")
        else:
            h, w = x.shape[-2:]
        if m == 0:
            return x.copy()
        dy, dx = get_rng().integers(-m, m + 1, size=(2, n))
        images = x.reshape(n, -1, h, w)  # (batch, channels, h, w)
        out = np.zeros_like(images)
        # One slice copy per offset, for all images drawn with it: ~10x faster than a per-pixel gather.
        for a in range(-m, m + 1):
            for b in range(-m, m + 1):
                idx = np.flatnonzero((dy == a) & (dx == b))
                if idx.size:  # out[r, c] = x[r - a, c - b] where both are inside the image
                    out[idx, :, max(a, 0) : h + min(a, 0), max(b, 0) : w + min(b, 0)] = (
                        images[idx, :, max(-a, 0) : h + min(-a, 0), max(-b, 0) : w + min(-b, 0)])
        return out.reshape(x.shape)

    def __repr__(self) -> str:
        shape = "" if self.image_shape is None else f", image_shape={self.image_shape}"
        return f"RandomShift(max_shift={self.max_shift}{shape})"
