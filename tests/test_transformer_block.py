"""TransformerBlock: a causal pre-norm block, as torch modules compute it (golden file), gradchecked,
strict to load, and the same block a user would write by hand from Residual and the layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tinynn as tn
from tinynn import layers as L
from tinynn.gradcheck import check_net
from tinynn.layers.base import param_shapes

GOLDEN = Path(__file__).resolve().parent / "golden"


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def test_block_matches_torch_modules():
    with np.load(GOLDEN / "attention.npz") as g:
        g = {k.removeprefix("block_"): g[k] for k in g.files if k.startswith("block_")}
    net = tn.Net([L.TransformerBlock(8, 2, causal=True)], dtype=np.float64)
    names = [name.removeprefix("0.TransformerBlock.") for name, _ in net.named_params()]
    assert sorted(names) == sorted(k.removeprefix("p_") for k in g if k.startswith("p_"))
    for (_, where), name in zip(net.param_slices(), names, strict=True):
        net.params[where] = g[f"p_{name}"].ravel()
    y = net.forward(g["x"])
    dx = net.backward(g["r"], input_grad=True)
    assert rel(y, g["y"]) < 1e-10 and rel(dx, g["dx"]) < 1e-10
    for (full, where), name in zip(net.param_slices(), names, strict=True):
        assert rel(net.grads[where], g[f"d_{name}"].ravel()) < 1e-10, full


@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck(causal):
    tn.seed(0)
    net = tn.Net([L.TransformerBlock(6, 2, mlp_ratio=2, causal=causal), L.TransformerBlock(6, 3)], dtype=np.float64)
    report = check_net(net, np.random.default_rng(0).standard_normal((2, 4, 6)))
    assert report.passed, str(report)
    assert len(report) == 1 + 2 * 12  # the input and the 12 tensors of each block


def test_it_is_the_block_written_by_hand():
    """Same layers, same order, same parameter names as Residual blocks a user would write."""
    tn.seed(0)
    block = tn.Net([L.TransformerBlock(8, 2, dropout=0.1, causal=True)])
    tn.seed(0)
    hand = tn.Net([L.Sequential([
        L.Residual([L.LayerNorm(8), L.MultiHeadAttention(8, 2, causal=True, dropout=0.1), L.Dropout(0.1)]),
        L.Residual([L.LayerNorm(8), L.Dense(8, 32), L.GELU(), L.Dense(32, 8), L.Dropout(0.1)]),
    ])])
    strip = [name.split(".", 2)[2] for name, _ in hand.named_params()]
    assert [name.split(".", 2)[2] for name, _ in block.named_params()] == strip
    assert np.array_equal(block.params, hand.params)  # same draws in the same order (one code path)
    x = np.random.default_rng(1).standard_normal((3, 5, 8)).astype(np.float32)
    block.eval()
    hand.eval()
    assert np.array_equal(block(x), hand(x))


def test_config_round_trip_and_shapes_without_building(tmp_path):
    tn.seed(0)
    net = tn.Net([L.Embedding(27, 16), L.PositionalEmbedding(8, 16), L.TransformerBlock(16, 4, causal=True),
                  L.LayerNorm(16), L.Dense(16, 27)])
    config = net.get_config()
    assert config["layers"][2] == {"type": "TransformerBlock", "config": {
        "dim": 16, "num_heads": 4, "mlp_ratio": 4, "dropout": 0.0, "causal": True}}
    assert param_shapes(config["layers"][2]) == {
        name.removeprefix("2.TransformerBlock."): shape for name, shape in net.named_params() if name.startswith("2.")}
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.AdamW(lr=1e-3))
    x = np.random.default_rng(0).integers(0, 27, (4, 8))
    before = model.predict(x)
    model.save(tmp_path / "m.npz")
    loaded = tn.Model.load(tmp_path / "m.npz")
    assert np.array_equal(loaded.predict(x), before)  # same weights, same code path


@pytest.mark.parametrize("args, words", [
    ((6, 4), "divisible"), ((0, 2), "dim"), ((8, 2, 0), "mlp_ratio"), ((8, 2, 4, 1.0), "dropout"),
    ((8, 2, 4, 0.0, "yes"), "causal"), ((8.0, 2), "dim"),
])  # fmt: skip
def test_bad_arguments_are_named(args, words):
    with pytest.raises(ValueError, match=words):
        L.TransformerBlock(*args)


def test_a_huge_block_is_refused_before_anything_is_allocated():
    shapes = param_shapes({"type": "TransformerBlock", "config": {"dim": 2**20, "num_heads": 1}})
    assert shapes["1.Residual.1.Dense.w"] == (2**20, 2**22)  # computed, not built
