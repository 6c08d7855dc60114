"""MNIST: find the four IDX files (downloading them if needed), verify and load them.

Where the files are looked for, first match wins (``root`` is the folder that holds the
four files directly, not a parent of it):

1. ``root``, if given;
2. ``$TINYNN_DATA/mnist``, if the environment variable ``TINYNN_DATA`` is set;
3. the copy bundled with tinynn, ``tinynn/data/bundled/mnist`` (package data: it ships in the
   wheel, so an ordinary ``pip install`` has it), if it holds all four files;
4. the user cache, ``$XDG_CACHE_HOME/tinynn/mnist`` (default ``~/.cache/tinynn/mnist``).

Each file may be gzip-compressed (``name.gz``) or not (``name``, preferred if both exist).
Missing files are downloaded into the chosen folder from :data:`MIRRORS` (never into the
bundled copy: an incomplete one is skipped).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike

from .download import DEFAULT_TIMEOUT, DownloadError, check_mirrors, download_file
from .idx import check_idx, read_idx

# SHA-256 of the decompressed IDX files (the .gz bytes differ between mirrors; the content doesn't).
MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = MNIST_SHA256

# Decompressed sizes in bytes (header included): a file that claims more is refused unread.
MNIST_SIZES: dict[str, int] = {
    TRAIN_IMAGES: 47_040_016,
    TRAIN_LABELS: 60_008,
    TEST_IMAGES: 7_840_016,
    TEST_LABELS: 10_008,
}


def _download_cap(name: str) -> int:
    """Bytes a mirror may send for ``name.gz``: gzip never grows data by more than ~0.01% plus a header,
    and a mirror may serve the file uncompressed."""
    return MNIST_SIZES[name] * 101 // 100 + (64 << 10)


# Base URLs tried in turn; each serves the four files as ``<name>.gz``.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

IMAGES_MAGIC = 0x00000803  # uint8, 3 dims (N, rows, cols)
LABELS_MAGIC = 0x00000801  # uint8, 1 dim (N,)
NUM_CLASSES = 10

# The copy shipped inside the package (see bundled/mnist/README.md for its origin and licence).
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled" / "mnist"


class MNISTNotFoundError(FileNotFoundError):
    """The MNIST files are not on disk and could not be downloaded."""


def mnist_dir(root: str | os.PathLike | None = None) -> Path:
    """The folder MNIST is read from (and downloaded into), by the lookup order above."""
    return _locate(root)[0]


def _locate(root: str | os.PathLike | None) -> tuple[Path, str]:
    if root is not None:
        return _expand(root, "the root argument"), "the root argument"
    env = os.environ.get("TINYNN_DATA")
    if env:
        return _expand(env, "$TINYNN_DATA") / "mnist", "$TINYNN_DATA/mnist"
    if all(_find(BUNDLED_DIR, name) for name in MNIST_SHA256):
        return BUNDLED_DIR, "the copy bundled with tinynn"
    cache = _expand(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "the user cache ($XDG_CACHE_HOME or ~/.cache)")
    return cache / "tinynn" / "mnist", "the user cache (no root, no $TINYNN_DATA)"


def _expand(path: str | os.PathLike, what: str) -> Path:
    """``path`` with ``~`` / ``~user`` expanded; a ValueError (not pathlib's RuntimeError) if that fails."""
    try:
        return Path(path).expanduser()
    except RuntimeError:  # no such user, or no home directory to be found
        raise ValueError(
            f"{what}: cannot expand {os.fspath(path)!r}: its home directory cannot be determined "
            f"(no such user, or $HOME unset); give a full path"
        ) from None


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_mnist(
    root: str | os.PathLike | None = None,
    flatten: bool = True,
    one_hot: bool = False,
    dtype: DTypeLike = np.float32,
    *,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str | None] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST as ``(train_x, train_y), (test_x, test_y)``.

    Images: ``(N, 784)``, or ``(N, 28, 28)`` with ``flatten=False``; scaled to [0, 1] in
    ``dtype`` (a float dtype), or the raw 0..255 pixels with ``dtype=np.uint8`` (4x less
    memory; :class:`~tinynn.data.BatchIterator` scales each batch as it is drawn).
    Labels: int64 ``(N,)``, or one-hot ``(N, 10)`` with ``one_hot=True`` (in ``dtype`` if it
    is a float dtype, else float32).

    Missing files are downloaded (unless ``download=False``) from ``mirrors``
    (default :data:`MIRRORS`; a list of http(s) base URLs), each with a ``timeout`` in
    seconds and at most about the file's known size (:data:`MNIST_SIZES`); failure raises
    :class:`MNISTNotFoundError` saying where it looked and what each mirror answered.
    Every file's decompressed SHA-256 is checked against ``checksums`` (file name ->
    hex digest, default :data:`MNIST_SHA256`; a name mapped to None or absent is not checked).
    """
    dt = np.dtype(dtype)
    if dt != np.uint8 and dt.kind != "f":
        raise ValueError(f"dtype must be a float dtype (scaled to [0, 1]) or np.uint8 (raw 0..255), got {dt}")
    mirrors = check_mirrors(MIRRORS if mirrors is None else mirrors)
    checksums = MNIST_SHA256 if checksums is None else checksums
    folder, why = _locate(root)

    paths = {name: _find(folder, name) for name in MNIST_SHA256}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        fix = (
            f"Put the four MNIST files (.gz or uncompressed) in {folder}, pass root=<folder holding "
            f"them>, or set TINYNN_DATA=<dir> with the files in <dir>/mnist."
        )
        looked = f"MNIST not found in {folder} ({why}): missing {', '.join(n + '[.gz]' for n in missing)}."
        if not download:
            raise MNISTNotFoundError(f"{looked}\nNot downloading (download=False).\n{fix}")
        for name in missing:
            verify = functools.partial(
                check_idx, expected_sha256=checksums.get(name), magic=_magic(name),
                max_bytes=MNIST_SIZES[name], name=folder / f"{name}.gz",
            )
            try:
                paths[name] = download_file(
                    f"{name}.gz", folder, mirrors, verify, timeout, progress, max_bytes=_download_cap(name)
                )
            except (DownloadError, OSError) as err:
                raise MNISTNotFoundError(f"{looked}\nDownload failed: {err}\n{fix}") from err

    train = _load_pair(paths[TRAIN_IMAGES], paths[TRAIN_LABELS], checksums, flatten, one_hot, dt)
    test = _load_pair(paths[TEST_IMAGES], paths[TEST_LABELS], checksums, flatten, one_hot, dt)
    return train, test


def _magic(name: str) -> int:
    return IMAGES_MAGIC if "images" in name else LABELS_MAGIC


def _load_pair(
    images_path: Path,
    labels_path: Path,
    checksums: Mapping[str, str | None],
    flatten: bool,
    one_hot: bool,
    dt: np.dtype,
) -> tuple[np.ndarray, np.ndarray]:
    def read(path: Path) -> np.ndarray:
        name = path.name.removesuffix(".gz")
        return read_idx(path, checksums.get(name), _magic(name), max_bytes=MNIST_SIZES[name])

    images, labels = read(images_path), read(labels_path)
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise ValueError(f"{labels_path}: label {labels.max()} out of range 0..{NUM_CLASSES - 1}")

    if flatten:
        images = images.reshape(len(images), -1)
    if dt != np.uint8:
        scaled = np.empty(images.shape, dtype=dt)
        np.divide(images, dt.type(255), out=scaled)  # no float64 temporary
        images = scaled
    if one_hot:
        y = np.zeros((len(labels), NUM_CLASSES), dtype=dt if dt.kind == "f" else np.float32)
        y[np.arange(len(labels)), labels] = 1
        return images, y
    return images, labels.astype(np.int64)
