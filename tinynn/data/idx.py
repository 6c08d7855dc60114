"""The IDX file format (the one MNIST ships in), read with its checksum verified.

An IDX file is a 4-byte magic number ``0x0000TTNN`` (TT: element type, NN: number of
dimensions), NN big-endian uint32 sizes, then the elements in C order. Files may be
gzip-compressed; the SHA-256 is always that of the *decompressed* bytes, so a file
recompressed with other settings still verifies.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

# IDX type code -> numpy dtype (multi-byte types are big-endian on disk).
IDX_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DEFLATE_RATIO = 1032  # deflate never expands data by more than this: bounds a bogus header
_CHUNK = 1 << 20
_DRAIN_LIMIT = 16 * _CHUNK  # bytes past the end (or of a bogus file) counted exactly before giving up


class ChecksumError(ValueError):
    """A file's (decompressed) SHA-256 is not the expected one."""


def read_idx(
    path: str | os.PathLike,
    expected_sha256: str | None = None,
    magic: int | None = None,
    *,
    max_bytes: int | None = None,
    name: str | os.PathLike | None = None,
) -> np.ndarray:
    """Read an IDX file (raw or gzip, detected from its first bytes) into a numpy array.

    Checks, in order, each failing with a ``ValueError`` that names the file (``name``, if
    given, else ``path``): the magic number is a valid IDX one (and equals ``magic`` if
    given); the size the header declares is at most ``max_bytes`` (decompressed, header
    included; checked before anything is allocated); the data length matches the header
    (expected and actual byte counts); the SHA-256 of the decompressed bytes equals
    ``expected_sha256`` if given (:class:`ChecksumError`, with both hashes).
    Returns a writable array in native byte order with the shape from the header.
    """
    buf, shape, dtype = _open(path, expected_sha256, magic, max_bytes, name, keep=True)
    arr = np.frombuffer(buf, dtype=dtype).reshape(shape)
    return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))


def check_idx(
    path: str | os.PathLike,
    expected_sha256: str | None = None,
    magic: int | None = None,
    *,
    max_bytes: int | None = None,
    name: str | os.PathLike | None = None,
) -> tuple[int, ...]:
    """Run :func:`read_idx`'s checks without keeping the data: memory stays at a few MiB (1 MiB chunks)
    whatever the file claims, and decompression stops soon after the declared length.
    Returns the shape. Used on a download before it is put in place."""
    return _open(path, expected_sha256, magic, max_bytes, name, keep=False)[1]


def _open(
    path: str | os.PathLike,
    expected_sha256: str | None,
    magic: int | None,
    max_bytes: int | None,
    name: str | os.PathLike | None,
    keep: bool,
) -> tuple[bytearray, tuple[int, ...], np.dtype]:
    shown = Path(path if name is None else name)
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        size_limit = os.fstat(raw.fileno()).st_size
        if gzipped:
            size_limit *= _MAX_DEFLATE_RATIO
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                return _read(f, shown, expected_sha256, magic, size_limit, max_bytes, keep)
        return _read(raw, shown, expected_sha256, magic, size_limit, max_bytes, keep)


def _read(
    f: BinaryIO,
    path: Path,
    expected_sha256: str | None,
    magic: int | None,
    size_limit: int,
    max_bytes: int | None,
    keep: bool,
) -> tuple[bytearray, tuple[int, ...], np.dtype]:
    head, dims, shape, dtype = _read_header(f, path, magic)
    header_len = len(head) + len(dims)
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    expected_len = header_len + nbytes
    if max_bytes is not None and expected_len > max_bytes:
        raise ValueError(
            f"{path}: the IDX header declares shape {shape}, {expected_len} bytes, more than the "
            f"{max_bytes} bytes such a file has at most"
        )

    def length_error(actual: int, more: bool = False) -> ValueError:
        what = "truncated file" if actual < expected_len else "trailing data"
        return ValueError(
            f"{path}: IDX data length does not match its header (shape {shape}): "
            f"expected {expected_len} bytes, got {'more than ' if more else ''}{actual} ({what})"
        )

    if nbytes > size_limit:  # don't allocate what the file can't possibly hold
        extra, more = _drain(f, path)
        raise length_error(header_len + extra, more)
    buf = bytearray(nbytes if keep else min(nbytes, _CHUNK))
    view = memoryview(buf)
    hasher = hashlib.sha256(head)
    hasher.update(dims)
    got = 0
    while got < nbytes:
        start = got if keep else 0
        try:
            n = f.readinto(view[start : start + min(_CHUNK, nbytes - got)])
        except (EOFError, OSError, zlib.error) as err:
            raise ValueError(
                f"{path}: corrupt or truncated gzip stream after about {header_len + got} of "
                f"{expected_len} decompressed bytes ({err})"
            ) from None
        if not n:
            raise length_error(header_len + got)
        hasher.update(view[start : start + n])
        got += n
    extra, more = _drain(f, path)
    if extra:
        raise length_error(expected_len + extra, more)

    if expected_sha256 is not None:
        actual = hasher.hexdigest()
        if actual != expected_sha256.lower():
            raise ChecksumError(
                f"{path}: SHA-256 mismatch of the decompressed content: expected {expected_sha256.lower()}, "
                f"got {actual}. The file is corrupt or not the expected one; delete it and load again."
            )
    return buf, shape, dtype


def _read_header(f: BinaryIO, path: Path, magic: int | None) -> tuple[bytes, bytes, tuple[int, ...], np.dtype]:
    """The magic number's 4 bytes, the dimensions' bytes, the shape and the dtype; ValueError for a bad header."""
    head = _read_some(f, path, 4)
    if len(head) < 4:
        raise ValueError(f"{path}: not an IDX file: {len(head)} bytes, shorter than the 4-byte magic number")
    found = int.from_bytes(head, "big")
    type_code, ndim = head[2], head[3]
    if head[:2] != b"\0\0" or type_code not in IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file: bad magic number 0x{found:08x} (expected 0x0000TTNN)")
    if magic is not None and found != magic:
        raise ValueError(f"{path}: wrong IDX magic number 0x{found:08x}, expected 0x{magic:08x}")
    dims = _read_some(f, path, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(
            f"{path}: truncated IDX header: expected at least {4 + 4 * ndim} bytes, got {4 + len(dims)}"
        )
    return head, dims, struct.unpack(f">{ndim}I", dims), np.dtype(IDX_DTYPES[type_code])


def _read_some(f: BinaryIO, path: Path, n: int) -> bytes:
    """Up to ``n`` bytes; gzip decoding errors become a ValueError naming the file."""
    try:
        return f.read(n)
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(f"{path}: corrupt or truncated gzip stream ({err})") from None


def _drain(f: BinaryIO, path: Path) -> tuple[int, bool]:
    """Read what is left, in chunks without keeping them, up to :data:`_DRAIN_LIMIT` bytes (a gzip
    bomb must not keep us decompressing). Returns how many bytes that was, and whether there was more."""
    total = 0
    while total < _DRAIN_LIMIT and (chunk := _read_some(f, path, _CHUNK)):
        total += len(chunk)
    return total, total >= _DRAIN_LIMIT
