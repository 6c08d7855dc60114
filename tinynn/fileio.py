"""Atomic file writes: a file is either the old one or the complete new one, never half of it.

The rules :func:`atomic_write` keeps (docs/guarantees.md):

- the content goes to a temp file beside the target, is flushed to disk, then renamed over it;
- saving onto a symlink writes the file the link points to (the link stays a link);
- only a regular file is ever replaced: a folder, FIFO, device or socket at the path is refused, and so
  is a file descriptor link (``/dev/stdout``, ``/proc/self/fd/1``): it would replace whatever file the
  descriptor has open (a redirected log);
- a new file gets the mode ``open()`` would give it (0o666 minus the umask); a replaced file keeps its mode;
- temp files of a save that was killed (their process is gone) are removed by the next save to the
  same path;
- errors name the path the caller gave, not the temp file; folders made for a failed save are removed,
  and so is a folder left holding nothing but a killed save's temp file (made for that save) when the
  save that cleaned it up fails too.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

_NAME_KEEP = 200  # bytes of the target's name kept in a temp name: stays under the usual 255-byte limit
# errors of writing to disk that carry no file name; anything else raised by ``write`` is the caller's
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS}


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[IO[bytes]], None],
    verify: Callable[[Path], object] | None = None,
) -> Path:
    """Call ``write(f)`` on a temp file beside ``path``, then rename it onto ``path``.

    ``verify(tmp_path)``, if given, sees the complete temp file first and may raise to reject
    it. On any error the temp file is removed and an existing ``path`` is left as it was.
    ``os.replace`` is atomic on POSIX and Windows within a directory. Raises ``ValueError``
    for a path that cannot name a file (``""``, ``"."``, ``"dir/"``) or names something
    other than a regular file; the rules are in this module's docstring.
    """
    shown = os.fsdecode(os.fspath(path))  # the caller's spelling, for messages
    target = _target(shown)
    mode = _existing_mode(target, shown)
    created = _make_parents(target.parent)
    tmp: Path | None = None
    stale = 0
    try:
        stale = _remove_stale_temps(target)
        fd, tmp = _create_temp(target)
        f = os.fdopen(fd, "wb")
        try:
            if mode is not None:
                os.chmod(tmp, mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        except BaseException as err:
            try:  # closing flushes again, and on a full disk fails again: that error would hide this one
                f.close()
            except OSError:
                pass
            if isinstance(err, OSError) and err.filename is None and err.errno in _DISK_ERRNOS:
                err.filename = str(tmp)  # renamed to the caller's path below
            raise
        f.close()
        if verify is not None:
            verify(tmp)
        _existing_mode(target, shown)  # again just before the rename: it may have changed meanwhile
        os.replace(tmp, target)
    except BaseException as err:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        _remove_empty(created or ([target.parent] if stale else []))
        if isinstance(err, OSError) and err.errno is not None and _mentions(err, tmp, target):
            raise OSError(err.errno, err.strerror, shown) from None
        raise
    _fsync_dir(target.parent)
    return Path(shown)


def _target(shown: str) -> Path:
    """The file to write: ``shown`` with symlinks resolved; refuses names that cannot be a file."""
    if not shown:
        raise ValueError("cannot save to an empty path ''")
    last = re.split("[/\\\\]" if os.altsep else "/", shown)[-1]  # pathlib would drop a trailing "/" or "."
    if last in ("", ".", ".."):
        raise ValueError(f"cannot save to {shown!r}: it names a folder, not a file")
    if _through_fd_link(shown):
        raise ValueError(f"cannot save to {shown!r}: it is a file descriptor link (like /dev/stdout), not a file; "
                         "saving would replace whatever file the descriptor has open")
    target = Path(os.path.realpath(shown))
    if target.is_symlink():  # realpath gives up on a loop and returns a link
        raise ValueError(f"cannot save to {shown!r}: too many levels of symbolic links (a link loop)")
    return target


_FD_FOLDER = re.compile(r"/proc/[^/]+(/task/[^/]+)?/fd|/dev/fd")


def _through_fd_link(shown: str) -> bool:
    """True if ``shown``, following its symbolic links one by one, passes through a folder of
    file descriptor links (``/proc/<pid>/fd``, ``/dev/fd``), whose entries stand for open files."""
    path = os.path.abspath(shown)
    for _ in range(40):  # as many hops as the kernel follows
        parent = os.path.realpath(os.path.dirname(path))
        if _FD_FOLDER.fullmatch(parent):
            return True
        path = os.path.join(parent, os.path.basename(path))
        if not os.path.islink(path):
            return False
        path = os.path.join(parent, os.readlink(path))
    return False


def _existing_mode(target: Path, shown: str) -> int | None:
    """The permission bits of the regular file at ``target``, None if there is none; refuses the rest."""
    try:
        st = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISREG(st.st_mode):
        return stat.S_IMODE(st.st_mode)
    kind = (
        "a folder" if stat.S_ISDIR(st.st_mode)
        else "a FIFO" if stat.S_ISFIFO(st.st_mode)
        else "a character device" if stat.S_ISCHR(st.st_mode)
        else "a block device" if stat.S_ISBLK(st.st_mode)
        else "a socket" if stat.S_ISSOCK(st.st_mode)
        else "not a regular file"
    )
    via = f" ({target})" if str(target) != os.path.abspath(shown) else ""
    raise ValueError(f"cannot save to {shown!r}{via}: it is {kind}; only a regular file is ever replaced")


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    if missing:
        missing[0].mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (someone else's file) or already gone
            break


def _temp_prefix(target: Path) -> str:
    """``.<name>.``, the name cut to ``_NAME_KEEP`` bytes (a 244-byte UTF-8 name must still leave room)."""
    name = target.name
    while len(os.fsencode(name)) > _NAME_KEEP:  # cut whole characters: the temp name stays valid UTF-8
        name = name[:-1]
    return f".{name}."


def _create_temp(target: Path) -> tuple[int, Path]:
    """A new temp file ``.<name>.<pid>.<random>.tmp`` beside ``target``, created with mode 0o666
    so the umask applies as for any new file (mkstemp would make it owner-only)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = target.parent / f"{_temp_prefix(target)}{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as err:  # a read-only folder, ...: the caller names the file it was asked for
            raise OSError(err.errno, err.strerror, str(target)) from None
    raise FileExistsError(errno.EEXIST, "no free temp file name", str(tmp))


def _remove_stale_temps(target: Path) -> int:
    """Remove temp files of earlier saves to ``target`` whose process no longer runs (killed mid-save);
    return how many.

    Temps of a live process (a save running right now) are left alone. POSIX only: the
    process check needs ``kill(pid, 0)``."""
    if os.name != "posix":
        return 0
    pattern = re.compile(re.escape(_temp_prefix(target)) + r"(\d{1,10})\.[0-9a-f]{8}\.tmp")
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and entry.is_file(follow_symlinks=False) and not _alive(int(match.group(1))):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # exists but is someone else's / not a pid: keep the file
        return True
    return True


def _mentions(err: OSError, tmp: Path | None, target: Path) -> bool:
    names = {str(target)} | ({str(tmp)} if tmp is not None else set())
    return err.filename in names or err.filename2 in names


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); best effort."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_savefig(fig: Any, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save a matplotlib figure as a PNG through :func:`atomic_write` (a plot is never half-written)."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
