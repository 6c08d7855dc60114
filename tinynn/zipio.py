"""Reading a ``.npz`` file you do not trust: its zip directory first, then each entry within a size bound.

:class:`NpzReader` never unpickles (an object array is refused from its ``.npy`` header), refuses
an entry whose header declares more bytes than the caller allows or than the archive can hold
(stored bytes, or deflate's most, 1032:1), and turns every problem (garbage bytes, truncation,
CRC, bad JSON) into a :class:`FileError`, a ``ValueError`` naming the file. The checkpoint format
(:mod:`tinynn.checkpoint`) is read through it; this module knows nothing of that format.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

MAX_TEXT = 2**22  # bytes a text entry may hold (numpy stores 4 per character): 1 Mi characters of JSON
_MAX_DEFLATE = 1032  # deflate's largest possible expansion ratio

# What a malformed value can raise from deep inside a constructor or numpy: each becomes a ValueError.
BAD_VALUE = (
    ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError, NotImplementedError,
    ZeroDivisionError,
)  # fmt: skip


class FileError(ValueError):
    """A problem already phrased as "cannot load <kind> <path>: ..."."""


class NpzReader:
    """The zip directory of ``path``, and its entries read one at a time, each within a size bound.

    Only the directory is read when opened: an entry is decompressed when asked for, after its
    ``.npy`` header has shown an allowed dtype and a size within the bound the caller gives.
    ``kind`` names the file in messages (``"checkpoint"``: "cannot load checkpoint PATH: ...").
    ``names`` maps each entry's name (without ``.npy``) to its zip directory record.
    """

    def __init__(self, path: Path, kind: str = "file") -> None:
        self.path, self.kind = path, kind
        if not path.is_file():
            raise FileNotFoundError(f"no {kind} at {path}")
        with open(path, "rb") as f:
            head = f.read(4)
        if head not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise self.error(f"not a readable .npz archive (not a zip file: starts with {head!r})")
        try:
            self.zip = zipfile.ZipFile(path)
        except Exception as e:  # zipfile.BadZipFile, OSError, ... on garbage bytes
            raise self.error(f"not a readable .npz archive ({type(e).__name__}: {e})") from None
        try:
            self.names = self._directory(path.stat().st_size)
        except BaseException:
            self.zip.close()
            raise

    def _directory(self, disk: int) -> dict[str, zipfile.ZipInfo]:
        names: dict[str, zipfile.ZipInfo] = {}
        for info in self.zip.infolist():
            key = info.filename.removesuffix(".npy")
            if key == info.filename or key in names:
                raise self.error(f"not a readable .npz archive (entry {info.filename!r})")
            # What an entry may inflate to: its stored bytes, or deflate's most (1032:1).
            ratio = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: _MAX_DEFLATE}.get(info.compress_type)
            if ratio is None or info.compress_size > disk or info.file_size > ratio * info.compress_size:
                raise self.error(
                    f"not a readable .npz archive (entry {info.filename!r}: {info.file_size:,} bytes "
                    f"from {info.compress_size:,}, compression type {info.compress_type})"
                )
            names[key] = info
        return names

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def error(self, problem: str) -> FileError:
        return FileError(f"cannot load {self.kind} {self.path}: {problem}")

    @contextmanager
    def reading(self, what: str) -> Iterator[None]:
        """Turn any error of a malformed value into a ValueError naming the file and ``what``."""
        try:
            yield
        except FileError:
            raise
        except BAD_VALUE as e:
            detail = str(e) if isinstance(e, ValueError) and str(e) else f"{type(e).__name__}: {e}"
            raise self.error(f"bad {what} ({detail[:500]})") from None

    def array(self, key: str, max_bytes: int) -> np.ndarray:
        """Entry ``key``, refused unread if its header declares more than ``max_bytes`` of data."""
        fmt = np.lib.format
        try:
            with self.zip.open(self.names[key]) as f:
                version = fmt.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise self.error(f"entry {key!r} is not a plain .npy array (format version {version})")
                read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                shape, _, dtype = read_header(f)
                if dtype.hasobject:
                    raise self.error(f"entry {key!r} holds pickled (object) data, which tinynn refuses to load")
                stored = self.names[key].file_size
                if math.prod(shape) * dtype.itemsize > min(max_bytes, stored):
                    raise self.error(
                        f"entry {key!r} declares a {dtype} array of shape {shape}: more than its place in "
                        f"the {self.kind} allows ({max_bytes:,} bytes) or its {stored:,} bytes in the archive"
                    )
            with self.zip.open(self.names[key]) as f:
                return fmt.read_array(f, allow_pickle=False)
        except FileError:
            raise
        except Exception as e:  # BadZipFile (CRC), EOFError, zlib.error, ValueError from a bad header
            raise self.error(f"not a readable .npz archive (entry {key!r}: {type(e).__name__}: {e})") from None

    def text(self, key: str, max_bytes: int = MAX_TEXT) -> str:
        """Entry ``key`` as a string (a 0-d unicode array)."""
        arr = self.array(key, max_bytes)
        if arr.dtype.kind != "U" or arr.ndim != 0:
            raise self.error(f"entry {key!r} should be text, got {arr.dtype} array of shape {arr.shape}")
        return str(arr)

    def json(self, key: str, kinds: tuple[type, ...] = (dict,)) -> Any:
        """Entry ``key`` as JSON text, its value one of ``kinds`` (``type(None)``: null)."""
        try:
            value = json.loads(self.text(key))
        except (json.JSONDecodeError, RecursionError, ValueError) as e:  # ValueError: an over-long integer
            if isinstance(e, FileError):
                raise
            raise self.error(f"entry {key!r} is not valid JSON ({type(e).__name__}: {str(e)[:200]})") from None
        if not isinstance(value, kinds):
            want = " or ".join("null" if k is type(None) else f"a JSON {k.__name__}" for k in kinds)
            raise self.error(f"entry {key!r} should be {want}, got {type(value).__name__}")
        return value

    def group(self, prefix: str, max_bytes: int) -> dict[str, Any]:
        """The entries ``prefix<name>``, by name: arrays, and 0-d numbers as Python numbers."""
        out = {}
        for key in self.names:
            if key.startswith(prefix):
                arr = self.array(key, max_bytes)
                if arr.dtype.kind not in "biuf":
                    raise self.error(f"entry {key!r} should hold numbers, got {arr.dtype}")
                out[key[len(prefix) :]] = arr.item() if arr.ndim == 0 else arr
        return out
