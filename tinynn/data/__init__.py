"""Datasets and batching: MNIST (IDX files, verified, downloaded if missing), BatchIterator, RandomShift.

Knows nothing of layers or models: it hands out numpy arrays.
"""

from .augment import RandomShift
from .batches import BatchIterator, Epochs
from .download import DownloadError, download_file
from .idx import ChecksumError, check_idx, read_idx
from .mnist import MIRRORS, MNIST_SHA256, MNISTNotFoundError, load_mnist, mnist_dir

__all__ = [
    "MIRRORS",
    "MNIST_SHA256",
    "BatchIterator",
    "ChecksumError",
    "DownloadError",
    "Epochs",
    "MNISTNotFoundError",
    "RandomShift",
    "check_idx",
    "download_file",
    "load_mnist",
    "mnist_dir",
    "read_idx",
]
