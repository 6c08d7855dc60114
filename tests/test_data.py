"""tinynn.data: IDX reading, MNIST loading/lookup/download (local server only), BatchIterator."""

from __future__ import annotations

import gzip
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from helpers_idx import NAMES, fake_mnist, idx_bytes, sha256, write, write_fake_mnist

import tinynn
from tinynn.data import (
    BatchIterator,
    ChecksumError,
    MNISTNotFoundError,
    check_idx,
    download_file,
    load_mnist,
    mnist_dir,
    read_idx,
)
from tinynn.data import mnist as mnist_module
from tinynn.rng import seed

TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = NAMES


# ---------------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip_raw_and_gz(tmp_path, gz):
    a = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    data = idx_bytes(a)
    path = write(tmp_path / "x-idx3-ubyte", data, gz=gz)
    out = read_idx(path, expected_sha256=sha256(data), magic=0x00000803)
    assert out.dtype == np.uint8 and out.shape == (5, 28, 28)
    np.testing.assert_array_equal(out, a)
    assert out.flags.writeable


def test_read_idx_multibyte_types_native_order(tmp_path):
    a = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    b = np.linspace(-1, 1, 7)
    out_a = read_idx(write(tmp_path / "a", idx_bytes(a)))
    out_b = read_idx(write(tmp_path / "b", idx_bytes(b), gz=True))
    np.testing.assert_array_equal(out_a, a)
    np.testing.assert_array_equal(out_b, b)
    assert out_a.dtype.isnative and out_b.dtype.isnative


def test_read_idx_checksum_mismatch_names_file_and_both_hashes(tmp_path):
    data = idx_bytes(np.arange(10, dtype=np.uint8))
    path = write(tmp_path / "labels-idx1-ubyte", data, gz=True)
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        read_idx(path, expected_sha256=wrong)
    msg = str(info.value)
    assert "labels-idx1-ubyte.gz" in msg and wrong in msg and sha256(data) in msg
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated_reports_expected_and_actual_bytes(tmp_path, gz):
    data = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))  # 16 + 2352 bytes
    path = write(tmp_path / "img-idx3-ubyte", data[:-100], gz=gz)
    with pytest.raises(ValueError, match="img-idx3-ubyte") as info:
        read_idx(path)
    assert f"expected {len(data)} bytes, got {len(data) - 100}" in str(info.value)
    assert "truncated" in str(info.value)


def test_read_idx_trailing_data_is_an_error(tmp_path):
    data = idx_bytes(np.zeros(4, dtype=np.uint8)) + b"junk"
    with pytest.raises(ValueError, match=r"expected 12 bytes, got 16"):
        read_idx(write(tmp_path / "y", data))


def test_read_idx_cut_gzip_stream_is_a_clear_error(tmp_path):
    data = idx_bytes(np.random.default_rng(1).integers(0, 256, (20, 28, 28), dtype=np.uint8))
    path = tmp_path / "cut-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(data)[:5000])
    with pytest.raises(ValueError, match="cut-idx3-ubyte.gz.*gzip"):
        read_idx(path)


def test_read_idx_wrong_magic(tmp_path):
    labels = write(tmp_path / "labels", idx_bytes(np.zeros(3, dtype=np.uint8)))
    with pytest.raises(ValueError, match="0x00000801, expected 0x00000803"):
        read_idx(labels, magic=0x00000803)
    junk = tmp_path / "junk"
    junk.write_bytes(b"PK\x03\x04 not an idx file at all")
    with pytest.raises(ValueError, match="junk: not an IDX file"):
        read_idx(junk)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty: not an IDX file"):
        read_idx(empty)


def test_read_idx_bogus_huge_header_does_not_allocate(tmp_path):
    # header claims 4e9 x 4e9 x 4e9 bytes; must fail on length, not with a MemoryError
    path = tmp_path / "huge"
    path.write_bytes(bytes([0, 0, 8, 3]) + (4_000_000_000).to_bytes(4, "big") * 3 + b"\0" * 10)
    with pytest.raises(ValueError, match="got 26 "):
        read_idx(path)


# ---------------------------------------------------------------------------- load_mnist on fixtures


@pytest.fixture
def fake():
    return fake_mnist(n_train=7, n_test=4)


@pytest.mark.parametrize("gz", [True, False])
def test_load_fixture_mnist(tmp_path, fake, gz):
    sums = write_fake_mnist(tmp_path, fake, gz=gz)
    (x, y), (xt, yt) = load_mnist(tmp_path, checksums=sums, download=False)
    assert x.shape == (7, 784) and xt.shape == (4, 784)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x, fake[TRAIN_IMAGES].reshape(7, -1) / 255, rtol=1e-6)
    np.testing.assert_array_equal(y, fake[TRAIN_LABELS])
    np.testing.assert_array_equal(yt, fake[TEST_LABELS])


def test_load_fixture_variants(tmp_path, fake):
    sums = write_fake_mnist(tmp_path, fake)
    (x, y), _ = load_mnist(tmp_path, flatten=False, one_hot=True, checksums=sums, download=False)
    assert x.shape == (7, 28, 28) and y.shape == (7, 10) and y.dtype == np.float32
    np.testing.assert_array_equal(y.argmax(1), fake[TRAIN_LABELS])
    assert y.sum() == 7
    (x8, _), _ = load_mnist(tmp_path, dtype=np.uint8, checksums=sums, download=False)
    assert x8.dtype == np.uint8 and x8.shape == (7, 784)
    np.testing.assert_array_equal(x8, fake[TRAIN_IMAGES].reshape(7, -1))
    (x64, y64), _ = load_mnist(tmp_path, dtype=np.float64, one_hot=True, checksums=sums, download=False)
    assert x64.dtype == np.float64 and y64.dtype == np.float64
    with pytest.raises(ValueError, match="dtype must be a float dtype .* got int32"):
        load_mnist(tmp_path, dtype=np.int32, checksums=sums, download=False)


def test_load_uses_real_checksums_by_default(tmp_path, fake):
    write_fake_mnist(tmp_path, fake)
    with pytest.raises(ChecksumError, match="train-images-idx3-ubyte.gz.*expected ba891046"):
        load_mnist(tmp_path, download=False)


def test_load_mismatched_counts_and_bad_labels(tmp_path, fake):
    fake[TRAIN_LABELS] = fake[TRAIN_LABELS][:5]
    sums = write_fake_mnist(tmp_path, fake)
    with pytest.raises(ValueError, match="holds 7 images but .* holds 5 labels"):
        load_mnist(tmp_path, checksums=sums, download=False)
    fake[TRAIN_LABELS] = np.full(7, 12, dtype=np.uint8)
    sums = write_fake_mnist(tmp_path, fake)
    with pytest.raises(ValueError, match="label 12 out of range"):
        load_mnist(tmp_path, checksums=sums, download=False)


def test_load_wrong_magic_in_place_of_images(tmp_path, fake):
    fake[TRAIN_IMAGES] = fake[TRAIN_LABELS]  # a 1-D file where images belong
    sums = write_fake_mnist(tmp_path, fake)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: wrong IDX magic number 0x00000801"):
        load_mnist(tmp_path, checksums=sums, download=False)


def test_load_missing_without_download(tmp_path):
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist(tmp_path / "nowhere", download=False)
    msg = str(info.value)
    assert str(tmp_path / "nowhere") in msg and "train-images-idx3-ubyte" in msg and "TINYNN_DATA" in msg
    assert isinstance(info.value, FileNotFoundError)


# ---------------------------------------------------------------------------- where it looks


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ("TINYNN_DATA", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_lookup_root_beats_env(clean_env, tmp_path):
    clean_env.setenv("TINYNN_DATA", str(tmp_path / "env"))
    assert mnist_dir(tmp_path / "r") == tmp_path / "r"


def test_lookup_env_beats_bundled(clean_env, tmp_path, fake):
    clean_env.setenv("TINYNN_DATA", str(tmp_path / "env"))
    assert mnist_dir() == tmp_path / "env" / "mnist"
    sums = write_fake_mnist(tmp_path / "env" / "mnist", fake)
    (x, _), _ = load_mnist(checksums=sums, download=False)
    assert len(x) == 7  # the fixture, not the bundled real MNIST


def test_lookup_bundled_beats_cache(clean_env):
    bundled = Path(tinynn.__file__).resolve().parent / "data" / "bundled" / "mnist"
    assert sorted(p.name for p in bundled.glob("*.gz")) == sorted(f"{n}.gz" for n in NAMES)
    assert (bundled / "README.md").is_file()  # the licence travels with the data
    assert mnist_dir() == bundled


def test_lookup_skips_incomplete_bundled_copy(clean_env, tmp_path, fake):
    partial = tmp_path / "bundled"
    write_fake_mnist(partial, {k: v for k, v in fake.items() if k != TEST_LABELS})
    clean_env.setattr(mnist_module, "BUNDLED_DIR", partial)
    assert mnist_dir() == tmp_path / "home" / ".cache" / "tinynn" / "mnist"  # never downloads into the package


def test_lookup_cache_last(clean_env, tmp_path):
    clean_env.setattr(mnist_module, "BUNDLED_DIR", tmp_path / "not-installed" / "mnist")
    assert mnist_dir() == tmp_path / "home" / ".cache" / "tinynn" / "mnist"
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mnist_dir() == tmp_path / "xdg" / "tinynn" / "mnist"


# ---------------------------------------------------------------------------- download (local server)


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, bytes] = {}
    short: set[str] = set()  # paths answered with fewer bytes than Content-Length announces
    unsized: set[str] = set()  # paths answered without a Content-Length (the body ends when the connection does)
    redirects: dict[str, str] = {}
    stall: set[str] = set()  # paths that send half the body, then hang until `release` is set
    release = threading.Event()
    log: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.log.append(self.path)
        if self.path in self.redirects:
            self.send_response(302)
            self.send_header("Location", self.redirects[self.path])
            self.end_headers()
            return
        body = self.routes.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        if self.path not in self.unsized:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.stall:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.release.wait(30)
            return
        self.wfile.write(body[: len(body) // 2] if self.path in self.short else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server on an ephemeral port; mirrors are its subfolders."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    _Handler.routes, _Handler.short, _Handler.unsized, _Handler.redirects, _Handler.log = {}, set(), set(), {}, []
    _Handler.stall, _Handler.release = set(), threading.Event()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    _Handler.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def dead_mirror():
    """A URL on a port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def _publish(handler, fake, base):
    """Serve good copies under /good/, wrong-content ones under /corrupt/, garbage under /garbage/,
    truncated transfers under /short/. Returns the checksums and the good .gz bytes."""
    sums, good = {}, {}
    for name, a in fake.items():
        data = idx_bytes(a)
        sums[name] = sha256(data)
        good[name] = gzip.compress(data, mtime=0)
        bad = bytearray(data)
        bad[-1] ^= 0xFF
        handler.routes[f"/good/{name}.gz"] = good[name]
        handler.routes[f"/corrupt/{name}.gz"] = gzip.compress(bytes(bad), mtime=0)
        handler.routes[f"/garbage/{name}.gz"] = b"<html>not found, but 200 OK</html>"
        handler.routes[f"/short/{name}.gz"] = good[name]
        handler.short.add(f"/short/{name}.gz")
    return sums, good


def test_download_skips_bad_mirrors_and_keeps_no_partial_file(server, dead_mirror, tmp_path, fake):
    base, handler = server
    sums, good = _publish(handler, fake, base)
    mirrors = [dead_mirror, f"{base}/missing/", f"{base}/corrupt/", f"{base}/garbage/", f"{base}/short",
               f"{base}/good/"]
    folder = tmp_path / "dl"
    (x, y), (xt, yt) = load_mnist(folder, mirrors=mirrors, checksums=sums, timeout=5, progress=False)
    assert x.shape == (7, 784) and xt.shape == (4, 784)
    np.testing.assert_array_equal(y, fake[TRAIN_LABELS])
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.gz" for n in NAMES)
    for name in NAMES:
        assert (folder / f"{name}.gz").read_bytes() == good[name]
    # every bad mirror was tried, in order, before the good one
    first = [p for p in handler.log if p.endswith(f"{TRAIN_IMAGES}.gz")]
    assert first == [f"/{m}/{TRAIN_IMAGES}.gz" for m in ("missing", "corrupt", "garbage", "short", "good")]


def test_download_only_missing_files(server, tmp_path, fake):
    base, handler = server
    sums, _ = _publish(handler, fake, base)
    folder = tmp_path / "dl"
    write_fake_mnist(folder, {k: v for k, v in fake.items() if k != TEST_LABELS}, gz=False)
    load_mnist(folder, mirrors=[f"{base}/good/"], checksums=sums, timeout=5, progress=False)
    assert handler.log == [f"/good/{TEST_LABELS}.gz"]


def test_download_all_mirrors_fail(server, dead_mirror, tmp_path, fake):
    base, handler = server
    sums, _ = _publish(handler, fake, base)
    folder = tmp_path / "dl"
    mirrors = [dead_mirror, f"{base}/missing/", f"{base}/corrupt/"]
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist(folder, mirrors=mirrors, checksums=sums, timeout=5, progress=False)
    msg = str(info.value)
    for m in mirrors:
        assert m + TRAIN_IMAGES + ".gz" in msg
    assert "HTTP 404" in msg and "SHA-256 mismatch" in msg and "Connection" in msg
    assert str(folder) in msg and "TINYNN_DATA" in msg
    assert str(folder / f"{TRAIN_IMAGES}.gz") in msg and ".tmp" not in msg  # the file's name, not the temp's
    assert not folder.exists()  # nothing half-written left behind, not even the empty folder


def test_failed_download_leaves_no_empty_folders(server, tmp_path, fake):
    base, handler = server
    sums, _ = _publish(handler, fake, base)
    with pytest.raises(MNISTNotFoundError):
        load_mnist(tmp_path / "a" / "b" / "c", mirrors=[f"{base}/missing/"], checksums=sums, progress=False)
    assert list(tmp_path.iterdir()) == []


_KILLABLE_DOWNLOAD = """
import sys
from tinynn.data import load_mnist
load_mnist(sys.argv[1], mirrors=[sys.argv[2]], checksums=None, timeout=60, progress=False)
"""


def _kill_a_download_halfway(handler, good, base, folder, name) -> tuple[int, list[Path]]:
    """A child process downloads MNIST into ``folder`` from /slow/, where ``name`` stalls half-way; once
    its temp file exists the child is killed (SIGKILL: nothing can clean up). Its pid and the temp files."""
    handler.routes[f"/slow/{name}.gz"] = good[name] * 50
    handler.stall.add(f"/slow/{name}.gz")
    env = dict(os.environ, PYTHONPATH=str(Path(tinynn.__file__).resolve().parents[1]))
    child = subprocess.Popen([sys.executable, "-c", _KILLABLE_DOWNLOAD, str(folder), f"{base}/slow/"], env=env)
    try:
        deadline = time.monotonic() + 30
        while not list(folder.glob(".*.tmp")) and time.monotonic() < deadline:  # the download is under way
            time.sleep(0.05)
        temps = list(folder.glob(".*.tmp"))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    return child.pid, temps


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_temp_of_a_killed_download_is_removed_by_the_next_attempt(server, tmp_path, fake):
    base, handler = server
    sums, good = _publish(handler, fake, base)
    folder = tmp_path / "dl"
    write_fake_mnist(folder, {k: v for k, v in fake.items() if k != TEST_LABELS})
    pid, temps = _kill_a_download_halfway(handler, good, base, folder, TEST_LABELS)
    assert len(temps) == 1 and temps[0].name.startswith(f".{TEST_LABELS}.gz.{pid}.")
    assert temps[0].exists()  # killed half-way: nothing could clean up
    load_mnist(folder, mirrors=[f"{base}/good/"], checksums=sums, timeout=5, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.gz" for n in NAMES)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_a_killed_download_then_a_failing_retry_leave_no_folder(server, tmp_path, fake):
    base, handler = server
    sums, good = _publish(handler, fake, base)
    folder = tmp_path / "dl"  # made by the first download
    _, temps = _kill_a_download_halfway(handler, good, base, folder, TRAIN_IMAGES)
    assert len(temps) == 1
    with pytest.raises(MNISTNotFoundError):
        load_mnist(folder, mirrors=[f"{base}/missing/"], checksums=sums, timeout=5, progress=False)
    assert list(tmp_path.iterdir()) == []  # the temp, and the folder made for the download, are gone


@pytest.mark.parametrize("mirrors", ["https://example.com/mnist/", b"https://example.com/", ["file:///etc/"],
                                     ["ftp://example.com/mnist/"], ["example.com/mnist"], ["https:///mnist"], [7]])
def test_mirrors_must_be_a_list_of_http_urls(tmp_path, mirrors):
    with pytest.raises(ValueError, match="mirror"):
        load_mnist(tmp_path / "dl", mirrors=mirrors, progress=False)
    assert not (tmp_path / "dl").exists()
    with pytest.raises(ValueError, match="mirror"):
        download_file("x.gz", tmp_path, mirrors)


def test_redirect_to_another_scheme_is_refused(server, tmp_path, fake):
    base, handler = server
    sums, _ = _publish(handler, fake, base)
    for name in NAMES:
        handler.redirects[f"/moved/{name}.gz"] = f"ftp://127.0.0.1/{name}.gz"
    with pytest.raises(MNISTNotFoundError, match="redirect to a non-http"):
        load_mnist(tmp_path / "dl", mirrors=[f"{base}/moved/"], checksums=sums, timeout=5, progress=False)
    for name in NAMES:  # an http redirect is followed
        handler.redirects[f"/moved/{name}.gz"] = f"{base}/good/{name}.gz"
    load_mnist(tmp_path / "dl", mirrors=[f"{base}/moved/"], checksums=sums, timeout=5, progress=False)


@pytest.mark.parametrize("unsized", [False, True])
def test_download_size_is_capped(server, tmp_path, fake, unsized):
    base, handler = server
    sums, good = _publish(handler, fake, base)
    cap = mnist_module._download_cap(TEST_LABELS)
    big = f"/big/{TEST_LABELS}.gz"
    handler.routes[big] = good[TEST_LABELS] + b"\0" * cap  # would pass the checks if it were let through
    if unsized:
        handler.unsized.add(big)
    folder = tmp_path / "dl"
    write_fake_mnist(folder, {k: v for k, v in fake.items() if k != TEST_LABELS})
    with pytest.raises(MNISTNotFoundError, match=f"more than the {cap} bytes"):
        load_mnist(folder, mirrors=[f"{base}/big/"], checksums=sums, timeout=5, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.gz" for n in NAMES if n != TEST_LABELS)


def test_download_check_is_bounded_in_memory(tmp_path):
    data = idx_bytes(np.zeros((25_000, 28, 28), dtype=np.uint8))  # 19.6 MB decompressed, a few KB of gzip
    path = write(tmp_path / "train-images-idx3-ubyte", data, gz=True)
    tracemalloc.start()
    try:
        assert check_idx(path, sha256(data), 0x00000803, max_bytes=len(data)) == (25_000, 28, 28)
        checked = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        read_idx(path, sha256(data), 0x00000803)
        read = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read > len(data) and checked < 8 << 20  # the check keeps 1 MiB chunks (and gzip's buffers), not the file
    # a header that claims more than the known size is refused before anything is read or allocated
    with pytest.raises(ValueError, match="more than the 1000 bytes"):
        check_idx(path, max_bytes=1000, name="shown.gz")
    # a gzip bomb behind valid content: decompression stops, the message says "more than"
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(data + bytes(64 << 20), compresslevel=1, mtime=0))
    with pytest.raises(ValueError, match=r"bomb.gz: .*got more than \d+ \(trailing data\)"):
        check_idx(bomb)


def test_unresolvable_home_is_a_clear_error(clean_env, tmp_path):
    with pytest.raises(ValueError, match="cannot expand '~no_such_user_tinynn/mnist'"):
        load_mnist("~no_such_user_tinynn/mnist", download=False)
    clean_env.setenv("TINYNN_DATA", "~no_such_user_tinynn")
    with pytest.raises(ValueError, match=r"\$TINYNN_DATA: cannot expand"):
        mnist_dir()
    clean_env.setenv("HOME", str(tmp_path / "h"))
    assert mnist_dir("~/d") == tmp_path / "h" / "d"


# ---------------------------------------------------------------------------- the real MNIST bundled with tinynn


@pytest.fixture(scope="module")
def real():
    return load_mnist(download=False)


@pytest.fixture(scope="module")
def real_u8():
    return load_mnist(dtype=np.uint8, download=False)


TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist(real):
    (x, y), (xt, yt) = real
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert x.dtype == xt.dtype == np.float32 and y.dtype == yt.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0 and 0.1 < x.mean() < 0.15
    assert np.bincount(y).tolist() == TRAIN_COUNTS
    assert np.bincount(yt).tolist() == TEST_COUNTS


def test_real_mnist_uint8(real, real_u8):
    (x8, y8), (xt8, _) = real_u8
    assert x8.dtype == np.uint8 and x8.shape == (60000, 784) and xt8.shape == (10000, 784)
    assert x8.max() == 255 and x8.nbytes == 60000 * 784
    np.testing.assert_array_equal(y8, real[0][1])
    np.testing.assert_array_equal(np.divide(x8[:1000], np.float32(255), dtype=np.float32), real[0][0][:1000])


def test_real_mnist_unflattened_one_hot(real):
    (x, y), (xt, yt) = load_mnist(flatten=False, one_hot=True, download=False)
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert y.shape == (60000, 10) and y.dtype == np.float32 and yt.shape == (10000, 10)
    np.testing.assert_array_equal(y.argmax(1), real[0][1])
    np.testing.assert_array_equal(y.sum(1), 1)
    np.testing.assert_array_equal(x.reshape(60000, 784), real[0][0])


# ---------------------------------------------------------------------------- BatchIterator


def _xy(n=10):
    x = np.arange(n * 2, dtype=np.float64).reshape(n, 2)
    return x, np.arange(n)


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_every_sample_once(shuffle):
    x, y = _xy(10)
    batches = BatchIterator(3, shuffle=shuffle)(x, y)
    assert len(batches) == 4
    got = list(batches)
    assert [len(xb) for xb, _ in got] == [3, 3, 3, 1]
    ys = np.concatenate([yb for _, yb in got])
    assert sorted(ys.tolist()) == list(range(10))
    for xb, yb in got:  # x and y stay aligned
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)
    if not shuffle:
        assert ys.tolist() == list(range(10))


def test_batches_drop_last():
    x, y = _xy(10)
    batches = BatchIterator(3, drop_last=True)(x, y)
    assert len(batches) == 3
    got = [yb for _, yb in batches]
    assert [len(b) for b in got] == [3, 3, 3]
    assert len(set(np.concatenate(got).tolist())) == 9
    with pytest.raises(ValueError, match="leaves no batch"):
        BatchIterator(20, drop_last=True)(x, y)


def test_unshuffled_batches_are_views_shuffled_are_small_copies():
    x, y = _xy(10)
    xb, yb = next(iter(BatchIterator(4, shuffle=False)(x, y)))
    assert np.shares_memory(xb, x) and np.shares_memory(yb, y)
    xb, yb = next(iter(BatchIterator(4)(x, y)))
    assert not np.shares_memory(xb, x) and xb.shape == (4, 2)


def test_shuffle_is_seeded_and_changes_across_epochs():
    x, y = _xy(50)
    batches = BatchIterator(10)(x, y)
    seed(123)
    epoch1 = np.concatenate([yb for _, yb in batches])
    epoch2 = np.concatenate([yb for _, yb in batches])
    seed(123)
    again = np.concatenate([yb for _, yb in BatchIterator(10)(x, y)])
    np.testing.assert_array_equal(epoch1, again)
    assert not np.array_equal(epoch1, epoch2)
    assert not np.array_equal(epoch1, np.arange(50))
    assert sorted(epoch2.tolist()) == list(range(50))


@pytest.mark.parametrize("shuffle", [False, True])
def test_uint8_batches_are_scaled_to_float32(shuffle):
    x = np.arange(256, dtype=np.uint8).reshape(64, 4)
    batches = list(BatchIterator(16, shuffle=shuffle)(x))
    for xb, yb in batches:
        assert xb.dtype == np.float32 and yb is None
        assert 0.0 <= xb.min() and xb.max() <= 1.0
    allx = np.concatenate([xb for xb, _ in batches])
    assert allx.max() == 1.0 and allx.min() == 0.0
    np.testing.assert_allclose(np.sort(allx.ravel()), np.arange(256) / 255, rtol=1e-6)


def test_batch_count_for_mnist_size():
    x = np.zeros((60000, 1), dtype=np.uint8)
    assert len(BatchIterator(128)(x)) == 469
    assert len(BatchIterator(128, drop_last=True)(x)) == 468


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3", None])
def test_batch_size_must_be_positive_int(bad):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        BatchIterator(bad)


def test_batch_iterator_input_errors():
    it = BatchIterator(4)
    with pytest.raises(ValueError, match="x has 10, y has 9"):
        it(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="empty dataset"):
        it(np.zeros((0, 784)), np.zeros(0))
    with pytest.raises(ValueError, match="scalar"):
        it(np.float32(1.0))
