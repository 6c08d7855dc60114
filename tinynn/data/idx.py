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


class ChecksumError(ValueError):
    """A file's (decompressed) SHA-256 is not the expected one."""


def read_idx(
    path: str | os.PathLike,
    expected_sha256: str | None = None,
    magic: int | None = None,
) -> np.ndarray:
    """Read an IDX file (raw or gzip, detected from its first bytes) into a numpy array.

    Checks, in order, each failing with a ``ValueError`` that names the file: the magic
    number is a valid IDX one (and equals ``magic`` if given); the data length matches the
    header (expected and actual byte counts); the SHA-256 of the decompressed bytes equals
    ``expected_sha256`` if given (:class:`ChecksumError`, with both hashes).
    Returns a writable array in native byte order with the shape from the header.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        size_limit = os.fstat(raw.fileno()).st_size
        if gzipped:
            size_limit *= _MAX_DEFLATE_RATIO
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                return _read(f, path, expected_sha256, magic, size_limit)
        return _read(raw, path, expected_sha256, magic, size_limit)


def _read(
    f: BinaryIO, path: Path, expected_sha256: str | None, magic: int | None, size_limit: int
) -> np.ndarray:
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
    header_len = 4 + 4 * ndim
    if len(dims) < 4 * ndim:
        raise ValueError(
            f"{path}: truncated IDX header: expected at least {header_len} bytes, got {4 + len(dims)}"
        )
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = np.dtype(IDX_DTYPES[type_code])
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    expected_len = header_len + nbytes

    def length_error(actual: int) -> ValueError:
        what = "truncated file" if actual < expected_len else "trailing data"
        return ValueError(
            f"{path}: IDX data length does not match its header (shape {shape}): "
            f"expected {expected_len} bytes, got {actual} ({what})"
        )

    if nbytes > size_limit:  # don't allocate what the file can't possibly hold
        raise length_error(header_len + _drain(f, path))
    buf = bytearray(nbytes)
    view = memoryview(buf)
    got = 0
    while got < nbytes:
        try:
            n = f.readinto(view[got : got + _CHUNK])
        except (EOFError, OSError, zlib.error) as err:
            raise ValueError(
                f"{path}: corrupt or truncated gzip stream after about {header_len + got} of "
                f"{expected_len} decompressed bytes ({err})"
            ) from None
        if not n:
            raise length_error(header_len + got)
        got += n
    extra = _drain(f, path)
    if extra:
        raise length_error(expected_len + extra)

    if expected_sha256 is not None:
        hasher = hashlib.sha256(head)
        hasher.update(dims)
        hasher.update(view)
        actual = hasher.hexdigest()
        if actual != expected_sha256.lower():
            raise ChecksumError(
                f"{path}: SHA-256 mismatch of the decompressed content: expected {expected_sha256.lower()}, "
                f"got {actual}. The file is corrupt or not the expected one; delete it and load again."
            )
    arr = np.frombuffer(buf, dtype=dtype).reshape(shape)
    return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))


def _read_some(f: BinaryIO, path: Path, n: int) -> bytes:
    """Up to ``n`` bytes; gzip decoding errors become a ValueError naming the file."""
    try:
        return f.read(n)
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(f"{path}: corrupt or truncated gzip stream ({err})") from None


def _drain(f: BinaryIO, path: Path) -> int:
    """Read what is left (in chunks, without keeping it) and return how many bytes that was."""
    total = 0
    while chunk := _read_some(f, path, _CHUNK):
        total += len(chunk)
    return total
