"""Atomic file writes: a file is either the old one or the complete new one, never half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[IO[bytes]], None],
    verify: Callable[[Path], object] | None = None,
) -> Path:
    """Call ``write(f)`` on a temp file beside ``path``, then rename it onto ``path``.

    ``verify(tmp_path)``, if given, sees the complete temp file first and may raise to reject
    it. On any error the temp file is removed and an existing ``path`` is left as it was.
    ``os.replace`` is atomic on POSIX and Windows within a directory.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes files owner-only; give them an ordinary file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
