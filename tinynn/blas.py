"""numpy's OpenBLAS through ``ctypes``: how many threads it runs, and running a block on fewer.

numpy does not expose its BLAS's thread count; the OpenBLAS it ships does, under a symbol prefix
that depends on the build. If the library or the symbols are not found (another BLAS, a system
build), ``blas_threads`` leaves thread counts alone and ``blas_thread_count`` answers 1.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def _find_openblas() -> tuple[Callable[[int], None], Callable[[], int]] | None:
    """``(set_num_threads, get_num_threads)`` of numpy's bundled OpenBLAS, or None if not found
    (another BLAS, a system build, an unknown symbol prefix): then thread counts are left alone."""
    root = Path(np.__file__).parent
    for path in sorted([*root.parent.glob("numpy.libs/*openblas*"), *root.glob(".dylibs/*openblas*")]):
        try:
            lib = ctypes.CDLL(str(path))  # already loaded by numpy: this returns the same library
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                    return setter, getter
    return None


_OPENBLAS = _find_openblas()


def found() -> bool:
    """Was numpy's OpenBLAS found (else ``blas_threads`` is a no-op)?"""
    return _OPENBLAS is not None


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the block with BLAS on ``n`` threads (a no-op if numpy's OpenBLAS was not found)."""
    if _OPENBLAS is None:
        yield
        return
    set_threads, get_threads = _OPENBLAS
    before = get_threads()
    if before != n:
        set_threads(n)
    try:
        yield
    finally:
        if before != n:
            set_threads(before)


def blas_thread_count() -> int:
    """The threads numpy's OpenBLAS uses now (``OMP_NUM_THREADS``, or 1 inside ``blas_threads(1)``);
    1 if it was not found."""
    return _OPENBLAS[1]() if _OPENBLAS is not None else 1
