"""The names of makemore: 32,033 first names for a character-level language model.

The file ships inside the package (``tinynn/data/bundled/names``, with its licence), so it loads
offline; its SHA-256 is checked before anything is read. The split is makemore's: a random
permutation with a fixed seed, the last 1,000 names for testing, the rest for training.

Characters are numbered by :data:`VOCAB`: index 0 is ``"."``, the start/stop token, and
``a..z`` are 1..26, so a model has ``len(VOCAB) = 27`` classes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..checks import check_int
from .idx import ChecksumError

NAMES_SHA256 = "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"
NAMES_FILE = Path(__file__).resolve().parent / "bundled" / "names" / "names.txt"
VOCAB = ".abcdefghijklmnopqrstuvwxyz"  # index 0: the start/stop token
STOP = 0
BLOCK_SIZE = 16  # the longest name (15 characters) plus its start (inputs) or stop (targets) token
TEST_SIZE = 1000
SPLIT_SEED = 3407  # makemore's default seed (its permutation is torch's: the names in each split differ)
_INDEX = {c: i for i, c in enumerate(VOCAB)}
_LETTERS = frozenset(VOCAB[1:])  # the characters a name may hold


def load_names(
    path: str | os.PathLike | None = None, sha256: str | None = NAMES_SHA256, test_size: int = TEST_SIZE,
    seed: int = SPLIT_SEED,
) -> tuple[list[str], list[str]]:
    """``(train, test)`` lists of names: 31,033 and 1,000 of the bundled file, the same ones every time.

    The names (one per line, blank lines skipped) are permuted with ``np.random.default_rng(seed)``;
    the last ``test_size`` are the test names, the others the training names (in that order),
    as makemore splits them. ``path`` reads another file (default: the bundled copy); its SHA-256
    must equal ``sha256`` (None skips the check). A missing file is a FileNotFoundError, an altered
    one a :class:`~tinynn.data.ChecksumError`, a name with a character outside a..z a ValueError;
    each names the file.
    """
    file = NAMES_FILE if path is None else Path(path)
    test_size = check_int(test_size, "test_size", where="load_names")
    seed = check_int(seed, "seed", minimum=0, where="load_names")
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        where = " (the copy bundled with tinynn: reinstall tinynn)" if path is None else ""
        raise FileNotFoundError(f"load_names: names file not found: {file}{where}") from None
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise ChecksumError(f"load_names: {file} is altered or corrupt: SHA-256 {digest}, expected {sha256}")
    try:
        names = [line.strip() for line in data.decode("ascii").splitlines()]
    except UnicodeDecodeError:
        raise ValueError(f"load_names: {file} is not a plain-ASCII list of names") from None
    names = [w for w in names if w]
    for i, name in enumerate(names):
        if not set(name) <= _LETTERS:
            raise ValueError(f"load_names: {file}: name {i + 1} ({name!r}) has a character outside a..z")
    if len(names) <= test_size:
        raise ValueError(f"load_names: {file} holds {len(names)} names, not more than test_size={test_size}")
    order = np.random.default_rng(seed).permutation(len(names))
    train, test = order[:-test_size], order[-test_size:]
    return [names[i] for i in train], [names[i] for i in test]


def encode_names(
    names: Sequence[str], block_size: int = BLOCK_SIZE, ignore_index: int = -100
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-character targets ``(x, y)``, both int64 of shape (N, block_size).

    Each name is written as the sequence ``. n a m e .`` (start token, characters, stop token) and
    padded; ``x`` holds its first block_size positions and ``y`` the same shifted by one, so a
    model reading ``x[:, :t+1]`` is trained to predict ``y[:, t]``::

        "emma"  ->  x = [0, 5, 13, 13, 1, 0,    0, ...]     . e m m a . . ...
                    y = [5, 13, 13, 1, 0, -100, -100, ...]  e m m a . (ignored) ...

    Padding after the stop token is 0 in ``x`` (a valid index for an ``Embedding``) and
    ``ignore_index`` in ``y``, so ``SoftmaxCrossEntropy(ignore_index=...)`` averages over the
    characters and stop tokens of the names only. With a causal model, position t sees only
    ``x[:, :t+1]``, so the padding in x never changes a prediction that counts. A name must have at
    most ``block_size - 1`` characters (15 by default: the longest in the file).
    """
    block_size = check_int(block_size, "block_size", where="encode_names")
    x = np.zeros((len(names), block_size), dtype=np.int64)
    y = np.full((len(names), block_size), ignore_index, dtype=np.int64)
    for i, name in enumerate(names):
        if not isinstance(name, str) or not set(name) <= _LETTERS:
            raise ValueError(f"encode_names: name {i} ({name!r}) must be a string of letters a..z")
        if len(name) >= block_size:
            raise ValueError(
                f"encode_names: name {i} ({name!r}) has {len(name)} characters; block_size={block_size} "
                f"holds at most {block_size - 1} (plus the start/stop token)"
            )
        codes = [_INDEX[c] for c in name]
        x[i, 1 : len(codes) + 1] = codes
        y[i, : len(codes) + 1] = [*codes, STOP]
    return x, y


def decode_name(indices: Sequence[int] | np.ndarray) -> str:
    """The characters of ``indices`` up to the first stop token (0), a leading start token skipped.

    ``decode_name(y_row)`` and ``decode_name(x_row)`` both give back the name ``encode_names`` wrote.
    """
    out = []
    for k, i in enumerate(np.asarray(indices).tolist()):
        if i == STOP:
            if k == 0:
                continue  # the start token of an input row
            break
        if not 0 < i < len(VOCAB):
            raise ValueError(f"decode_name: index {i} is not a character (expected 0..{len(VOCAB) - 1})")
        out.append(VOCAB[i])
    return "".join(out)
