"""Fetch a file from a list of mirrors, verified before it is put in place.

Each attempt streams into a temporary file in the destination folder; the file is renamed
to its final name (:func:`tinynn.fileio.atomic_write`) only once ``verify`` accepts it, so a
failed or interrupted download never leaves a half-written file behind (nor a folder made
for it; a killed download's temp file is removed by the next attempt). Only ``http`` and
``https`` URLs are fetched, redirects included, and at most ``max_bytes`` per file.
"""

from __future__ import annotations

import functools
import http.client
import os
import urllib.error
import urllib.parse
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
    max_bytes: int | None = None,
) -> Path:
    """Download ``filename`` into ``dest_dir``, trying ``mirrors`` (base URLs) in turn.

    ``verify(tmp_path)`` is called on the complete temporary file and should raise (e.g. a
    checksum ``ValueError``) if it is bad; a mirror whose download or verification fails,
    or that sends more than ``max_bytes``, is skipped. Returns the final path; raises
    :class:`DownloadError` listing every mirror with its reason if none worked, and
    ``ValueError`` for ``mirrors`` that are not a sequence of http(s) URLs.
    """
    mirrors = check_mirrors(mirrors)
    target = Path(dest_dir) / filename
    attempts: list[tuple[str, str]] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            fetch = functools.partial(
                _fetch, url, timeout=timeout, progress=progress, desc=filename, max_bytes=max_bytes
            )
            return atomic_write(target, fetch, verify)
        except (OSError, ValueError, EOFError, http.client.HTTPException) as err:
            # URLError, HTTPError and timeouts are OSErrors; a bad checksum is a ValueError
            attempts.append((url, _reason(err)))
    tried = "\n".join(f"  - {url}: {reason}" for url, reason in attempts) or "  (no mirrors given)"
    raise DownloadError(f"could not download {filename} into {dest_dir}; mirrors tried:\n{tried}", attempts)


def check_mirrors(mirrors: Sequence[str]) -> list[str]:
    """``mirrors`` as a list, or a ``ValueError``: a lone string (not a list of them) or a URL
    that is not ``http://host/...`` or ``https://host/...`` (no ``file:``, ``ftp:``, ...)."""
    if isinstance(mirrors, (str, bytes)):
        raise ValueError(f"mirrors must be a list of base URLs, not a single string: {mirrors!r}")
    mirrors = list(mirrors)
    for mirror in mirrors:
        if not isinstance(mirror, str):
            raise ValueError(f"mirrors must be base URLs (str), got {type(mirror).__name__}: {mirror!r}")
        parts = urllib.parse.urlsplit(mirror)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ValueError(f"mirror {mirror!r} is not an http:// or https:// URL; only those are fetched")
    return mirrors


class _HTTPOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to another http(s) URL (urllib alone would also follow one to ftp:)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect to a non-http(s) URL {newurl}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HTTPOnlyRedirects)


def _fetch(url: str, out: BinaryIO, timeout: float, progress: bool, desc: str, max_bytes: int | None) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "tinynn"})
    with _OPENER.open(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if max_bytes is not None and total is not None and total > max_bytes:
            raise ValueError(f"the server announces {total} bytes, more than the {max_bytes} bytes this file can have")
        received = 0
        bar = tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress, leave=False)
        with bar:
            while chunk := response.read(1 << 16):
                received += len(chunk)
                if max_bytes is not None and received > max_bytes:
                    raise ValueError(f"the server sent more than the {max_bytes} bytes this file can have")
                out.write(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise OSError(f"connection closed after {received} of {total} bytes")


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"{type(err.reason).__name__}: {err.reason}"
    return f"{type(err).__name__}: {err}"
