"""Each example script runs in its --quick mode and writes real, readable PNG figures."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_BYTES = 20_000  # a figure with axes, curves and a legend is far larger than this

# script -> the PNGs its quick mode must write
EXPECTED = {
    "optimizer_paths.py": [f"optimizer_paths_{name}.png" for name in ("quadratic", "rosenbrock", "beale", "saddle")],
    "compare_optimizers.py": ["compare_optimizers.png"],
    "initialization.py": [f"initialization_{name}.png" for name in ("activations", "gradients", "training")],
    "regularization.py": ["regularization_curves.png"],
    "learning_rate.py": [f"learning_rate_{name}.png" for name in ("range_test", "schedules", "batch_size")],
    "debugging.py": [f"debugging_{name}.png" for name in ("overfit_one_batch", "gradient_norms", "dead_relus")],
    "mnist_rnn.py": ["rnn_gradient_reach.png"],
    "mnist_cnn.py": ["cnn_filters.png", "cnn_feature_maps.png"],
    "names_transformer.py": ["names_sampling.png", "names_loss_curves.png"],
    "names_attention.py": ["names_attention.png"],
    "mnist_vit.py": ["vit_attention.png", "vit_positions.png"],
    "residual_stream.py": ["residual_gradients.png"],
}


def run_example(script: str, out: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", "--out", str(out)],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


def check_png(path: Path) -> None:
    assert path.is_file(), f"{path.name} was not written"
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert len(data) > MIN_BYTES, f"{path.name} is suspiciously small ({len(data)} bytes)"
    image = mpimg.imread(path)
    height, width = image.shape[:2]
    assert image.ndim == 3 and image.shape[2] in (3, 4), f"{path.name}: unexpected pixel layout {image.shape}"
    assert 300 <= height <= 4000 and 400 <= width <= 4000, f"{path.name}: odd size {width}x{height}"
    assert width >= height, f"{path.name}: expected a landscape figure, got {width}x{height}"
    assert image[..., :3].std() > 0.02, f"{path.name} looks blank"


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_writes_pngs(script: str, tmp_path: Path) -> None:
    assert (EXAMPLES / script).is_file(), f"examples/{script} is missing"
    result = run_example(script, tmp_path)
    for name in EXPECTED[script]:
        check_png(tmp_path / name)
    if script == "compare_optimizers.py":
        check_table(tmp_path / "compare_optimizers.md", result.stdout)
    if script == "mnist_cnn.py":
        check_same_run_as_the_cli(result.stdout, tmp_path)


def check_same_run_as_the_cli(stdout: str, tmp_path: Path) -> None:
    """mnist_cnn.py --quick trains `tinynn train --model cnn --epochs 1 --limit 1024`: the same recipe
    (optimizer, lr, schedule, batch size, shifts, seed, validation split), so the same code path runs
    twice and prints the same test accuracy and loss, digit for digit."""
    cli = subprocess.run(
        [sys.executable, "-m", "tinynn", "train", "--model", "cnn", "--epochs", "1", "--limit", "1024",
         "--out", str(tmp_path / "run"), "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-2000:]
    (result,) = [line for line in cli.stdout.splitlines() if line.startswith("test accuracy:")]
    assert result in stdout.splitlines(), f"the CLI printed {result!r}; the example printed:\n{stdout[-1500:]}"


def test_make_figures_covers_the_examples() -> None:
    """tools/make_figures.py regenerates docs/figures: every example with figures is in its table,
    and every figure that the docs use is one an example draws."""
    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "tools" / "make_figures.py")
    make_figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_figures)
    assert set(EXPECTED) <= set(make_figures.EXAMPLES), "add the example to tools/make_figures.py's EXAMPLES"
    drawn = {name for names in EXPECTED.values() for name in names}
    docs = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    used = set(re.findall(r"figures/([\w.-]+\.png)", docs))
    assert used & drawn, "no docs page shows an example's figure"
    for name in sorted(used & drawn):
        assert (ROOT / "docs" / "figures" / name).is_file(), f"docs use figures/{name}, which is not committed"


def check_table(path: Path, stdout: str) -> None:
    """The Markdown table: one row per optimizer, also printed to stdout."""
    table = path.read_text(encoding="utf-8")
    for name in ("SGD", "SGDm", "Adagrad", "RMSProp", "Adam", "AdamW"):
        assert f"| {name} " in table, f"no row for {name} in compare_optimizers.md"
    assert "|---" in table or "| ---" in table or "|:--" in table
    assert table.strip().splitlines()[-1] in stdout, "the table should also be printed"


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_help_exits_without_running(script: str, tmp_path: Path) -> None:
    """--help prints the options and exits 0: no data loaded, no training, no file written."""
    result = subprocess.run([sys.executable, str(EXAMPLES / script), "--help"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "MPLBACKEND": "Agg"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:") and "--out" in result.stdout and "--quick" in result.stdout
    assert "Epoch" not in result.stdout and "accuracy:" not in result.stdout, "--help started a run"
    assert list(tmp_path.iterdir()) == [], "--help wrote files"


def test_mnist_mlp_quick_writes_the_model_and_curves(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLES / "mnist_mlp.py"), "--quick", "--out", str(tmp_path / "o")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "MPLBACKEND": "Agg"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Epoch 2/2" in result.stdout and "test accuracy:" in result.stdout
    check_png(tmp_path / "o" / "curves.png")
    import tinynn as tn

    assert tn.Model.load(tmp_path / "o" / "model.npz", restore_rng=False).epoch == 2
