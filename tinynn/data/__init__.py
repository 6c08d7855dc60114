"""Datasets and batching: MNIST (IDX files, verified, downloaded if missing), makemore's names, BatchIterator,
RandomShift.

Knows nothing of layers or models: it hands out numpy arrays.
"""

from .augment import RandomShift
from .batches import BatchIterator, Epochs
from .download import DownloadError, download_file
from .idx import ChecksumError, check_idx, read_idx
from .mnist import MIRRORS, MNIST_SHA256, MNISTNotFoundError, load_mnist, mnist_dir
from .names import NAMES_SHA256, VOCAB, decode_name, encode_names, load_names

__all__ = [
    "MIRRORS",
    "MNIST_SHA256",
    "NAMES_SHA256",
    "VOCAB",
    "BatchIterator",
    "ChecksumError",
    "DownloadError",
    "Epochs",
    "MNISTNotFoundError",
    "RandomShift",
    "check_idx",
    "decode_name",
    "download_file",
    "encode_names",
    "load_mnist",
    "load_names",
    "mnist_dir",
    "read_idx",
]
