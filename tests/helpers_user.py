"""Run a check as an ordinary user: CI runs as root, whom no permission bit stops."""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

NOBODY = 65534  # the uid and gid of 'nobody' on Linux


def as_user(check: Callable[[], None]) -> None:
    """Call ``check()`` as a non-root user; an exception in it fails the caller with its traceback.

    Not root: called directly. Root: called in a forked child that has become ``nobody`` (fork, not a new
    interpreter: the child keeps the modules already imported, so nobody needs no access to them).
    """
    if os.geteuid() != 0:
        check()
        return
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        code, text = 0, b""
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            check()
        except BaseException:  # noqa: BLE001 - everything goes back to the parent
            code, text = 1, traceback.format_exc().encode()
        os.write(write, text)
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        text = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"the check failed as user nobody:\n{text}"


@contextmanager
def shared_folder():
    """A new folder everybody may write into (pytest's tmp_path is root's own when root runs the tests)."""
    folder = Path(tempfile.mkdtemp(prefix="tinynn-user-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
