"""The vision transformer's own layers (PatchesToTokens, TokenMean): gradient checks, the torch
formula they implement, shapes and errors."""

from __future__ import annotations

import numpy as np
import pytest

import tinynn as tn
from tinynn import layers as L

TOL = 1e-6


# --- PatchesToTokens ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (3, 5, 2, 3), (1, 1, 1, 1)])
def test_patches_to_tokens_gradients(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).standard_normal(shape)
    report = tn.gradcheck.check_layer(L.PatchesToTokens(), x)
    assert report.passed, report
    assert set(report) == {"input"}


def test_patches_to_tokens_is_torchs_flatten_transpose() -> None:
    """Token r*W + c holds the D features of grid cell (r, c): x.flatten(2).transpose(1, 2)."""
    x = np.arange(2 * 3 * 2 * 4, dtype=np.float64).reshape(2, 3, 2, 4)
    y = L.PatchesToTokens().forward(x)
    assert y.shape == (2, 8, 3)
    for r in range(2):
        for c in range(4):
            np.testing.assert_array_equal(y[:, r * 4 + c, :], x[:, :, r, c])
    assert L.PatchesToTokens().output_shape((None, 64, 4, 4)) == (None, 16, 64)


def test_patch_embedding_net_gradients() -> None:
    """Conv2D with stride = kernel cuts the image into patches; the tokens feed attention."""
    tn.seed(0)
    net = tn.Net([L.Conv2D(2, 4, 3, stride=3), L.PatchesToTokens(), L.PositionalEmbedding(4, 4),
                  L.MultiHeadAttention(4, 2), L.TokenMean(), L.Dense(4, 3)], dtype=np.float64)  # fmt: skip
    x = np.random.default_rng(1).standard_normal((3, 2, 6, 6))
    report = tn.gradcheck.check_net(net, x)
    assert report.passed, report
    assert net.forward(x).shape == (3, 3)


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 12), (2, 3, 4, 4, 1)])
def test_patches_to_tokens_bad_input(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"PatchesToTokens\(\) got input of shape .*\(batch, channels, height"):
        L.PatchesToTokens().forward(np.zeros(shape))


def test_patches_to_tokens_bad_gradient() -> None:
    layer = L.PatchesToTokens()
    layer.forward(np.zeros((2, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"PatchesToTokens\(\): backward got gradient of shape \(2, 3, 4\); "
                                         r"expected \(2, 4, 3\)"):
        layer.backward(np.zeros((2, 3, 4)))


# --- TokenMean ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 5, 4), (2, 1, 3)])
def test_token_mean_gradients(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).standard_normal(shape)
    layer = L.TokenMean()
    report = tn.gradcheck.check_layer(layer, x)
    assert report.passed, report
    np.testing.assert_allclose(layer.forward(x), x.mean(axis=1), rtol=1e-15)
    assert layer.output_shape((None, 16, 64)) == (None, 64)


@pytest.mark.parametrize("shape", [(2, 3), (2, 0, 3), (2, 3, 4, 5)])
def test_token_mean_bad_input(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"TokenMean\(\) got input of shape .*\(batch, time, features\)"):
        L.TokenMean().forward(np.zeros(shape))


def test_token_mean_bad_gradient() -> None:
    layer = L.TokenMean()
    layer.forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"TokenMean\(\): backward got gradient of shape \(2, 3, 4\); "
                                         r"expected \(2, 4\)"):
        layer.backward(np.zeros((2, 3, 4)))


def test_float32_stays_float32() -> None:
    tn.seed(0)
    net = tn.Net([L.Reshape((1, 8, 8)), L.Conv2D(1, 4, 4, stride=4), L.PatchesToTokens(), L.TokenMean()])
    y = net.forward(np.ones((2, 64), np.float32))
    assert y.dtype == np.float32 and y.shape == (2, 4)
    assert net.backward(np.ones((2, 4), np.float32), input_grad=True).dtype == np.float32


# --- the vision transformer of `tinynn train --model vit` --------------------------------------


def _images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    (x, y), _ = tn.data.load_mnist(dtype=np.uint8)
    pick = np.random.default_rng(seed).choice(len(x), n, replace=False)
    return x[pick].reshape(n, -1), y[pick]


def test_vit_shapes() -> None:
    tn.seed(0)
    net = tn.zoo.vit()
    table = net.summary(input_shape=(784,))
    assert "(N, 16, 64)" in table and "TokenMean" in table  # 16 tokens of width 64, mean-pooled
    assert sum(isinstance(layer, L.TransformerBlock) for layer in net.layers) == 4
    assert net.forward(np.zeros((3, 784), np.float32)).shape == (3, 10)
    with pytest.raises(ValueError, match="patch_size must divide 28"):
        tn.zoo.vit(patch_size=5)


def _small_vit() -> tn.Model:
    net = tn.zoo.vit(dim=16, depth=2, num_heads=2)
    return tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.AdamW(lr=2e-3, weight_decay=0.05))


def test_small_vit_learns() -> None:
    """A few steps on one batch of 64 digits: the loss falls well below its starting value."""
    tn.seed(0)
    model = _small_vit()
    x, y = _images(64)
    x = x.astype(np.float32) / 255
    losses = [model.train_step(x, y) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0], losses


def test_small_vit_save_load_resume(tmp_path) -> None:
    """Two epochs in one go equal one epoch, save, load, one more epoch: the same code path runs
    twice with the same numbers, so the parameters agree bit for bit."""
    x, y = _images(96)
    tn.seed(3)
    whole = _small_vit()
    whole.fit(x, y, epochs=2, batch_size=32, verbose=0)

    tn.seed(3)
    first = _small_vit()
    first.fit(x, y, epochs=1, batch_size=32, verbose=0)
    first.save(tmp_path / "vit.npz")
    resumed = tn.Model.load(tmp_path / "vit.npz")
    assert [n for n, _ in resumed.net.named_params()] == [n for n, _ in whole.net.named_params()]
    resumed.fit(x, y, epochs=2, batch_size=32, initial_epoch=1, verbose=0)
    np.testing.assert_array_equal(resumed.net.params, whole.net.params)


def test_vit_cli_defaults_and_sweep(tmp_path) -> None:
    """`tinynn train --model vit` takes its own recipe (AdamW, warmup + cosine); a sweep expands it too."""
    import subprocess
    import sys

    from tinynn import runs
    from tinynn import sweeps as sweep  # the package (tn.sweep is its function)

    args = runs.parse_run_options(["--model", "vit"])
    assert (args.optimizer, args.lr, args.weight_decay, args.scheduler) == ("adamw", 1e-3, 0.05, "warmup-cosine")
    assert runs.parse_run_options(["--model", "vit", "--optimizer", "adam"]).optimizer == "adam"
    (point,) = sweep.expand({"model": ["vit"], "epochs": [1]}, limit=100)
    assert point["optimizer"] == "adamw" and point["scheduler"] == "warmup-cosine"

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "tinynn", "train", "--model", "vit", "--limit", "200",
                           "--epochs", "1", "--batch-size", "50", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("test accuracy: ")
    model = tn.Model.load(out / "model.npz")
    assert type(model.optimizer).__name__ == "AdamW"
    assert type(model.scheduler).__name__ == "SequentialLR"
    # 180 training images (20 held out) in batches of 50: 4 steps, the first tenth (at least 1) warms up
    warmup, cosine = model.scheduler.schedulers
    assert model.scheduler.milestones == (1,) and warmup.start_factor == 0.01 and cosine.T_max == 3
