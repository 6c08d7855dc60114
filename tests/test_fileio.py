"""tinynn.fileio.atomic_write: links, non-regular files, permissions, killed saves, error messages."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers_user import as_user, shared_folder

from tinynn.fileio import atomic_write

posix = pytest.mark.skipif(os.name != "posix", reason="POSIX file semantics")


def _put(data: bytes):
    return lambda f: f.write(data)


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_and_replaces(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    assert atomic_write(path, _put(b"one")) == path
    atomic_write(path, _put(b"two"))
    assert path.read_bytes() == b"two" and _temps(path.parent) == []


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(path, boom)
    assert path.read_bytes() == b"old" and _temps(tmp_path) == []


def test_failed_save_removes_the_folders_it_made(tmp_path):
    def reject(_):
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        atomic_write(tmp_path / "a" / "b" / "f.bin", _put(b"x"), verify=reject)
    assert list(tmp_path.iterdir()) == []


@posix
def test_symlink_target_is_written_and_link_stays(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    atomic_write(link, _put(b"new"))
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new"
    # a relative link through a link to a folder elsewhere
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "dirlink").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "rel.bin").symlink_to(Path("dirlink") / "x.bin")  # dangling: written where it points
    atomic_write(tmp_path / "rel.bin", _put(b"x"))
    assert (tmp_path / "rel.bin").is_symlink() and (tmp_path / "elsewhere" / "x.bin").read_bytes() == b"x"


@posix
def test_symlink_loop_is_a_clear_error(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(ValueError, match="link loop"):
        atomic_write(tmp_path / "a", _put(b"x"))
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()


@posix
def test_fifo_is_refused_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"'.*pipe'.*a FIFO.*only a regular file"):
        atomic_write(fifo, _put(b"x"))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and _temps(tmp_path) == []
    link = tmp_path / "to-pipe"  # through a link too
    link.symlink_to(fifo)
    with pytest.raises(ValueError, match="a FIFO"):
        atomic_write(link, _put(b"x"))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@posix
def test_device_is_refused_not_replaced(tmp_path):
    dev = tmp_path / "null"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null twin, as root
    except (PermissionError, OSError):
        dev = Path("/dev/null")  # not root: can't replace it anyway, but the refusal must come first
    before = os.lstat(dev)
    with pytest.raises(ValueError, match="a character device"):
        atomic_write(dev, _put(b"x"))
    after = os.lstat(dev)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert _temps(dev.parent) == [] or dev.parent == Path("/dev")


@pytest.mark.parametrize("bad", ["", ".", "..", "sub/", "sub/."])
def test_paths_that_cannot_name_a_file(tmp_path, monkeypatch, bad):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="empty path" if bad == "" else "names a folder"):
        atomic_write(bad, _put(b"x"))
    assert list(tmp_path.iterdir()) == []


def test_model_and_history_saves_use_these_rules(tmp_path, monkeypatch):
    import tinynn as tn

    monkeypatch.chdir(tmp_path)
    model = tn.Model(tn.Net([tn.layers.Dense(3, 2)]), tn.losses.MSE(), tn.optim.SGD())
    for bad in ("", "."):
        with pytest.raises(ValueError, match="cannot save to"):
            model.save(bad)
        with pytest.raises(ValueError, match="cannot save to"):
            tn.History().save(bad)
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match=r"'.*d'.*it is a folder"):
        atomic_write(tmp_path / "d", _put(b"x"))
    assert (tmp_path / "d").is_dir() and _temps(tmp_path) == []


@posix
def test_new_files_respect_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        atomic_write(tmp_path / "private", _put(b"x"))
        os.umask(0o002)
        atomic_write(tmp_path / "group", _put(b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "group").stat().st_mode) == 0o664


@posix
def test_resave_keeps_the_permissions(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    for mode in (0o600, 0o640, 0o755):
        path.chmod(mode)
        atomic_write(path, _put(b"new"))
        assert stat.S_IMODE(path.stat().st_mode) == mode and path.read_bytes() == b"new"


@posix
def test_errors_name_the_users_path_not_the_temp(tmp_path):
    # root writes anywhere; make the rename fail instead: the target's folder vanishes
    folder = tmp_path / "ro"
    folder.mkdir()

    def vanish(tmp):
        os.rename(folder, tmp_path / "moved")

    with pytest.raises(FileNotFoundError) as info:
        atomic_write(folder / "f.bin", _put(b"x"), verify=vanish)
    assert info.value.filename == str(folder / "f.bin") and ".tmp" not in str(info.value)


@posix
def test_read_only_folder_error_names_the_users_path():
    """As an ordinary user (CI is root: the check runs as nobody), a read-only folder refuses the temp file;
    the error names the file asked for."""
    with shared_folder() as shared:
        folder = shared / "ro"

        def check():
            folder.mkdir()
            folder.chmod(0o500)
            with pytest.raises(PermissionError) as info:
                atomic_write(folder / "f.bin", _put(b"x"))
            assert info.value.filename == str(folder / "f.bin") and ".tmp" not in str(info.value)
            assert str(folder / "f.bin") in str(info.value) and os.listdir(folder) == []

        as_user(check)


def test_disk_full_names_the_users_path(tmp_path):
    def full(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left") as info:
        atomic_write(tmp_path / "f.bin", full)
    assert info.value.filename == str(tmp_path / "f.bin") and _temps(tmp_path) == []


_KILLED_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    from tinynn.fileio import atomic_write

    def write(f):
        f.write(b"half a file")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    atomic_write(sys.argv[1], write)
    """
)


@posix
def test_temp_of_a_killed_save_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(path)], env=env, timeout=60)
    assert done.returncode == -9  # SIGKILL, half-way through the write
    left = _temps(tmp_path)
    assert len(left) == 1 and left[0].startswith(".model.npz.")
    assert path.read_bytes() == b"old"
    other = tmp_path / "other.npz"  # a save to another path leaves it alone
    atomic_write(other, _put(b"o"))
    assert _temps(tmp_path) == left
    atomic_write(path, _put(b"new"))
    assert path.read_bytes() == b"new" and _temps(tmp_path) == []


@posix
def test_temp_of_a_running_save_is_kept(tmp_path):
    path = tmp_path / "m.npz"
    live = tmp_path / f".m.npz.{os.getppid()}.0123abcd.tmp"  # our parent process is alive
    live.write_bytes(b"in progress")
    atomic_write(path, _put(b"x"))
    assert live.exists()


@posix
@pytest.mark.parametrize("target", ["/dev/stdout", "/proc/self/fd/1", "/dev/fd/1"])
def test_fd_links_are_refused_and_a_redirected_log_survives(tmp_path, target):
    """``save('/dev/stdout') > log.txt``: the descriptor link resolves to log.txt; replacing it would lose the log."""
    log = tmp_path / "log.txt"
    code = f"""
import sys
print("the log", flush=True)
from tinynn.fileio import atomic_write
try:
    atomic_write({target!r}, lambda f: f.write(b"PK not a log"))
except ValueError as e:
    print("refused:", e, file=sys.stderr)
"""
    with open(log, "w") as out:
        proc = subprocess.run([sys.executable, "-c", code], stdout=out, stderr=subprocess.PIPE, text=True, timeout=60)
    assert "refused:" in proc.stderr and "file descriptor link" in proc.stderr, proc.stderr
    assert log.read_text() == "the log\n" and _temps(tmp_path) == []


@posix
def test_a_long_utf8_name_open_accepts_can_be_saved(tmp_path):
    name = "é" * 122  # 244 bytes, 122 characters: under the 255-byte limit, but not with a temp suffix on all of it
    with open(tmp_path / "probe", "wb"):
        pass
    path = tmp_path / name
    with open(path, "wb") as f:  # open() accepts the name
        f.write(b"old")
    atomic_write(path, _put(b"new"))
    assert path.read_bytes() == b"new" and _temps(tmp_path) == []


_FULL_DISK = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import tinynn as tn
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # a file may not grow past 4 KiB: EFBIG
    what, path = sys.argv[1], sys.argv[2]
    if what == "model":
        net = tn.Net([tn.layers.Dense(64, 64)])
        tn.Model(net, tn.losses.MSE(), tn.optim.SGD()).save(path)
    else:
        h = tn.History()
        for e in range(200):
            h.append(e, {"loss": 1.0 / (e + 1)})
        h.save(path)
    """
)


@posix
@pytest.mark.parametrize("what", ["model", "history"])
def test_a_full_disk_is_one_error_naming_the_file(tmp_path, what):
    """RLIMIT_FSIZE stands in for a full disk (EFBIG like ENOSPC: the write fails with no file name)."""
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK, what, str(path)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f"OSError: [Errno {errno.EFBIG}] File too large: '{path}'", proc.stderr
    assert "During handling" not in proc.stderr and "direct cause" not in proc.stderr, proc.stderr
    assert path.read_bytes() == b"old" and _temps(tmp_path) == []
