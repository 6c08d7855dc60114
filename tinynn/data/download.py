"""Fetch a file from a list of mirrors, verified before it is put in place.

Each attempt streams into a temporary file in the destination folder; the file is renamed
to its final name (:func:`tinynn.fileio.atomic_write`) only once ``verify`` accepts it, so a
failed or interrupted download never leaves a half-written file behind.
"""

from __future__ import annotations

import functools
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from ..fileio import atomic_write

DEFAULT_TIMEOUT = 30.0  # seconds, for connecting and for each read


class DownloadError(RuntimeError):
    """Every mirror failed; ``attempts`` holds ``(url, reason)`` for each one tried."""

    def __init__(self, message: str, attempts: list[tuple[str, str]]):
        super().__init__(message)
        self.attempts = attempts


def download_file(
    filename: str,
    dest_dir: str | os.PathLike,
    mirrors: Sequence[str],
    verify: Callable[[Path], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> Path:
    """Download ``filename`` into ``dest_dir``, trying ``mirrors`` (base URLs) in turn.

    ``verify(tmp_path)`` is called on the complete temporary file and should raise (e.g. a
    checksum ``ValueError``) if it is bad; a mirror whose download or verification fails
    is skipped. Returns the final path; raises :class:`DownloadError` listing every
    mirror with its reason if none worked.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / filename
    attempts: list[tuple[str, str]] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            fetch = functools.partial(_fetch, url, timeout=timeout, progress=progress, desc=filename)
            return atomic_write(target, fetch, verify)
        except (OSError, ValueError, EOFError, http.client.HTTPException) as err:
            # URLError, HTTPError and timeouts are OSErrors; a bad checksum is a ValueError
            attempts.append((url, _reason(err)))
    tried = "\n".join(f"  - {url}: {reason}" for url, reason in attempts) or "  (no mirrors given)"
    raise DownloadError(f"could not download {filename} into {dest_dir}; mirrors tried:\n{tried}", attempts)


def _fetch(url: str, out: BinaryIO, timeout: float, progress: bool, desc: str) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "tinynn"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        bar = tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress, leave=False)
        with bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise OSError(f"connection closed after {received} of {total} bytes")


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"{type(err.reason).__name__}: {err.reason}"
    return f"{type(err).__name__}: {err}"
