"""Write small IDX files (and a fake four-file MNIST) for the data tests."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

from tinynn.data.mnist import MNIST_SHA256

# numpy dtype -> IDX type code
_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
          np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}

NAMES = tuple(MNIST_SHA256)  # train images, train labels, test images, test labels


def idx_bytes(a: np.ndarray) -> bytes:
    """The uncompressed IDX encoding of ``a`` (uint8, int8 or big-endian i2/i4/f4/f8)."""
    a = np.asarray(a)
    dt = a.dtype if a.dtype.itemsize == 1 else a.dtype.newbyteorder(">")
    header = bytes([0, 0, _CODES[dt], a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + np.ascontiguousarray(a, dtype=dt).tobytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    """Write ``data`` (gzip-compressed and with ``.gz`` appended to the name if ``gz``)."""
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def fake_mnist(n_train: int = 7, n_test: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Four small arrays shaped like MNIST's: (N, 28, 28) uint8 images, (N,) uint8 labels."""
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in (n_train, n_test)]
    for im in images:  # make sure both extremes are present
        im[0, 0, 0], im[0, 0, 1] = 0, 255
    labels = [np.arange(n, dtype=np.uint8) % 10 for n in (n_train, n_test)]
    return dict(zip(NAMES, (images[0], labels[0], images[1], labels[1]), strict=True))


def write_fake_mnist(folder: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> dict[str, str]:
    """Write the four files into ``folder``; return their (decompressed) SHA-256 by name."""
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name, a in arrays.items():
        data = idx_bytes(a)
        write(folder / name, data, gz=gz)
        sums[name] = sha256(data)
    return sums
