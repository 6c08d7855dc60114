"""A ``.npz`` file of plain entries (arrays, text, JSON), written atomically and read as a file you do not trust.

Reading: :class:`NpzReader` reads the zip directory first, then each entry within a size bound.
It never unpickles (an object array is refused from its ``.npy`` header), refuses an entry whose
header declares more bytes than the caller allows or than the archive can hold (stored bytes, or
deflate's most, 1032:1), can refuse a file whose entries are not those of its format before
reading any (:meth:`NpzReader.check_layout`), and turns every problem (garbage bytes,
truncation, CRC, bad JSON) into a :class:`FileError`, a ``ValueError`` naming the file.

Writing: :func:`text_entry`, :func:`json_entry` and :func:`number_entries` make the entries the
reader reads back, and :func:`write_npz` writes them atomically (:mod:`tinynn.fileio`).

The checkpoint format (:mod:`tinynn.checkpoint`) is written and read through it; this module
knows nothing of that format.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .fileio import atomic_write

MAX_TEXT = 2**22  # bytes a text entry may hold (numpy stores 4 per character): 1 Mi characters of JSON
_MAX_DEFLATE = 1032  # deflate's largest possible expansion ratio

# What a malformed value can raise from deep inside a constructor or numpy: each becomes a ValueError.
BAD_VALUE = (
    ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError, NotImplementedError,
    ZeroDivisionError,
)  # fmt: skip


class FileError(ValueError):
    """A problem already phrased as "cannot load <kind> <path>: ..."."""


def text_entry(text: str) -> np.ndarray:
    """``text`` as an entry: a 0-d unicode array (read back by :meth:`NpzReader.text`)."""
    return np.array(text, dtype=np.str_)


def json_entry(value: Any) -> np.ndarray:
    """``value`` as JSON text (read back by :meth:`NpzReader.json`)."""
    return text_entry(json.dumps(value))


def number_entries(prefix: str, values: dict[str, Any], what: str) -> dict[str, np.ndarray]:
    """The entries ``prefix<name>`` of ``values`` (read back by :meth:`NpzReader.group`): numbers and arrays only,
    else a TypeError naming ``what``."""
    out = {}
    for key, value in values.items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"cannot save {what} state {key!r} of type {type(value).__name__}: numbers and arrays only")
        out[prefix + key] = arr
    return out


def write_npz(path: str | os.PathLike, entries: dict[str, np.ndarray]) -> Path:
    """Write ``entries`` to ``path`` exactly (no ``.npz`` suffix appended), atomically, in their order."""
    return atomic_write(path, lambda f: np.savez(f, **entries))


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

    def check_layout(self, marker: str, formats: Sequence[str], required: Sequence[str],
                     optional: Sequence[str] = (), groups: tuple[str, ...] = ()) -> str:  # fmt: skip
        """The format the text entry ``marker`` names (one of ``formats``), once every entry is ``required``,
        ``optional`` or named with a prefix of ``groups``, and every ``required`` one is present.

        Nothing but the marker is read: an unknown entry is refused from the zip directory. On a
        refusal the reader is closed.
        """
        try:
            if marker not in self.names:
                raise self.error(f"not a tinynn {self.kind} (no {marker!r} marker)")
            found = self.text(marker, max_bytes=1024)
            if found not in formats:
                raise self.error(f"unsupported {self.kind} format {found!r} (this tinynn reads {formats[0]!r})")
            unknown = [k for k in self.names if k not in (*required, *optional) and not k.startswith(groups)]
            if unknown:
                raise self.error(f"unknown entries {unknown[:5]} (refused unread)")
            missing = [k for k in required if k not in self.names]
            if missing:
                raise self.error(f"missing entries {missing}")
        except BaseException:
            self.close()
            raise
        return found

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

    def exact_array(self, key: str, shape: tuple[int, ...], dtype: np.dtype, needs: str) -> np.ndarray:
        """Entry ``key``, refused unless it is a finite ``dtype`` array of ``shape`` (read within those bytes);
        ``needs`` says who wants that shape ("the architecture needs")."""
        arr = self.array(key, max_bytes=math.prod(shape) * dtype.itemsize)
        if arr.shape != shape or arr.dtype != dtype:
            raise self.error(f"{key!r} is a {arr.dtype} array of shape {arr.shape}, but {needs} {shape} {dtype}")
        if not np.isfinite(arr).all():
            raise self.error(f"{key!r} holds NaN or Inf")
        return arr

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

    def typed(self, key: str, extra: tuple[str, ...] = ()) -> tuple[str, Any, dict]:
        """``(type name, config, whole dict)`` of a JSON entry ``{"type": ..., "config": ...}`` (and ``extra``
        keys), exactly those keys."""
        value = self.json(key)
        if set(value) != {"type", "config", *extra}:
            raise self.error(f"entry {key!r} should have exactly the keys {sorted({'type', 'config', *extra})}")
        if not isinstance(value["type"], str):
            raise self.error(f"entry {key!r} has no 'type' name")
        return value["type"], value["config"], value

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
