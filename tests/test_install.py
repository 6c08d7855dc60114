"""A wheel built from the repository carries MNIST and the names and finds them anywhere, with no checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tinynn.data.mnist import MNIST_SHA256

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("setuptools", minversion="77")  # the test extra installs it: PEP 639 license string
    src = tmp_path_factory.mktemp("src")  # build from a copy: the checkout stays free of build/ and egg-info
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "tinynn", src / "tinynn", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", out,
           src]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"building the wheel failed: {done.stderr[-2000:]}"
    (path,) = out.glob("tinynn-*.whl")
    return path


def test_wheel_carries_mnist_with_its_licence(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in MNIST_SHA256:
        assert f"tinynn/data/bundled/mnist/{name}.gz" in names
    assert "tinynn/data/bundled/mnist/README.md" in names and "tinynn/data/bundled/mnist/SHA256SUMS" in names
    for name in ("names.txt", "README.md", "LICENSE-makemore", "SHA256SUMS"):
        assert f"tinynn/data/bundled/names/{name}" in names


def test_installed_wheel_loads_mnist_from_any_directory(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what `pip install` puts in site-packages
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("TINYNN_DATA", "XDG_CACHE_HOME")}
    env |= {"PYTHONPATH": str(site), "HOME": str(tmp_path / "home"),
            "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}  # offline
    code = ("import tinynn, tinynn.data as d; print(tinynn.__file__); print(d.mnist_dir()); "
            "(x, y), (xt, yt) = d.load_mnist(dtype='uint8', download=False); print(len(x), len(xt)); "
            "train, test = d.load_names(); print(len(train), len(test))")
    done = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    module, folder, sizes, names = done.stdout.split("\n")[:4]
    assert Path(module).is_relative_to(site)  # the installed copy, not the checkout
    assert Path(folder) == site / "tinynn" / "data" / "bundled" / "mnist"
    assert sizes == "60000 10000"
    assert names == "31033 1000"
