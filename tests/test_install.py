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


def test_ci_runs_readme_test_command_and_the_suite_under_both_thread_counts(tmp_path):
    """.ci/run: README's command verbatim, then the suite with the other OMP_NUM_THREADS; any failure fails CI.

    Run with stand-ins for python3, pip, python and ruff that record what they were asked and fail on request."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = 'pip install -e ".[test,ray]" && python -m pytest -q'
    assert f"```bash\n{command}\n```" in readme and command in (ROOT / ".ci" / "run").read_text()
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    # Each stand-in logs its command line and fails if that line contains $FAIL.
    stub = ('#!/bin/sh\nline="$(basename "$0") $* threads=${OMP_NUM_THREADS:-unset}"\necho "$line" >> "$LOG"\n'
            'case "$line" in *"$FAIL"*) exit 1;; esac\n')
    (bin_ / "python3").write_text(stub + 'mkdir -p .venv-ci/bin && : > .venv-ci/bin/activate\n')
    for name in ("pip", "python", "ruff"):
        (bin_ / name).write_text(stub)
    for path in bin_.iterdir():
        path.chmod(0o755)

    def ci(threads, fail=""):
        log = tmp_path / "log"
        log.unlink(missing_ok=True)
        env = {"PATH": f"{bin_}:/usr/bin:/bin", "LOG": str(log), "FAIL": fail or "no such line"}
        if threads:
            env["OMP_NUM_THREADS"] = threads
        rc = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], env=env, capture_output=True).returncode
        return rc, [line for line in log.read_text().splitlines() if "pytest" in line]

    assert ci(None) == (0, ["python -m pytest -q threads=unset", "python -m pytest -q threads=1"])
    assert ci("1") == (0, ["python -m pytest -q threads=1", "python -m pytest -q threads=2"])
    assert ci(None, fail="pytest -q threads=1")[0] != 0  # the second run fails: CI fails
    assert ci("1", fail="pytest -q threads=1") == (1, ["python -m pytest -q threads=1"])  # the first: CI stops
    assert ci(None, fail="pip install -e")[0] != 0  # a failed install fails CI too
