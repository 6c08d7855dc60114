"""Embedding, PositionalEmbedding, LayerNorm, MultiHeadAttention and the masked cross-entropy:
float64 gradient checks, torch golden files (tools/make_attention_golden.py), float32, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tinynn as tn
from tinynn import layers as L
from tinynn import losses
from tinynn.textbook import attention as tb

GOLDEN = Path(__file__).resolve().parent / "golden"
TOL = 1e-6


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a) - b).max() / max(np.abs(b).max(), 1e-300))


def randomize(layer: L.Layer, seed: int) -> L.Layer:
    """Parameters away from their init (LayerNorm starts at weight 1, bias 0; attention biases at 0)."""
    rng = np.random.default_rng(seed)
    for p in layer.params.values():
        p[...] = rng.uniform(-0.8, 0.8, p.shape) + (1 if p.ndim == 1 and p is layer.params.get("weight") else 0)
    return layer


# --- gradient checks ---------------------------------------------------------------------------


def _padding() -> np.ndarray:
    pad = np.zeros((3, 5), dtype=bool)
    pad[0, 3:] = True  # right padding
    pad[2, 1] = True  # a hole
    return pad


ATTENTION_CASES = {
    "plain": lambda: L.MultiHeadAttention(6, 2),
    "causal": lambda: L.MultiHeadAttention(6, 3, causal=True),
    "no_bias": lambda: L.MultiHeadAttention(6, 1, bias=False),
    "dropout": lambda: L.MultiHeadAttention(6, 2, dropout=0.3),
    "causal_dropout": lambda: L.MultiHeadAttention(6, 2, causal=True, dropout=0.5),
}


@pytest.mark.parametrize("pad", [False, True], ids=["", "padding"])
@pytest.mark.parametrize("case", sorted(ATTENTION_CASES))
def test_attention_gradients(case: str, pad: bool) -> None:
    """Input and all four parameters; causal, key padding, dropout (the same mask each call: gradcheck reseeds)."""
    tn.seed(0)
    layer = randomize(ATTENTION_CASES[case](), 1)
    if pad:
        layer.set_key_padding_mask(_padding())
    x = np.random.default_rng(2).standard_normal((3, 5, 6))
    report = tn.gradcheck.check_layer(layer, x)
    assert report.passed, f"{layer!r}\n{report}"
    assert set(report) == {"input"} | {f"0.MultiHeadAttention.{p}" for p in layer.params}


def test_masks_really_mask() -> None:
    """A masked key's value cannot change the output; unmasked keys' values do."""
    tn.seed(0)
    layer = L.MultiHeadAttention(4, 2, causal=True)
    net = tn.Net([layer], dtype=np.float64)
    pad = np.array([[False, False, False, True, True]])
    layer.set_key_padding_mask(pad)
    x = np.random.default_rng(0).standard_normal((1, 5, 4))
    y = net.forward(x)
    x2 = x.copy()
    x2[0, 3:] += 10.0  # the padded positions: queries 3 and 4 change (their own q), queries 0..2 must not
    y2 = net.forward(x2)
    np.testing.assert_array_equal(y2[0, :3], y[0, :3])
    x3 = x.copy()
    x3[0, 2] += 1.0  # a real key in the future of queries 0, 1 (causal) but visible to queries 2..4
    y3 = net.forward(x3)
    np.testing.assert_array_equal(y3[0, :2], y[0, :2])
    assert np.abs(y3[0, 2:] - y[0, 2:]).min() > 1e-6


@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 5), (4, 3, 2, 5)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_gradients(shape: tuple[int, ...], affine: bool) -> None:
    for normalized in ((5,), shape[-2:]) if len(shape) > 2 else ((5,),):
        layer = L.LayerNorm(normalized, elementwise_affine=affine)
        randomize(layer, 3)
        x = np.random.default_rng(4).standard_normal(shape) * 2 + 1
        report = tn.gradcheck.check_layer(layer, x)
        assert report.passed, f"{layer!r} on {shape}\n{report}"
        assert len(report) == 1 + 2 * affine


def test_embedding_gradients_with_repeated_indices() -> None:
    tn.seed(0)
    idx = np.array([[0, 2, 2, 2, 4], [4, 4, 1, 0, 0]])  # index 3 never occurs: its gradient is 0
    layer = L.Embedding(5, 3)
    report = tn.gradcheck.check_layer(layer, idx)
    assert report.passed, str(report)
    assert set(report) == {"0.Embedding.weight"}  # indices are not differentiated
    # The scatter-add by hand: row i of dweight is the sum of the upstream gradients at index i.
    r = np.random.default_rng(1).standard_normal((2, 5, 3))
    layer.forward(idx)
    layer.backward(r)
    want = np.zeros((5, 3))
    for n in range(2):
        for t in range(5):
            want[idx[n, t]] += r[n, t]
    np.testing.assert_allclose(layer.grads["weight"], want, rtol=1e-12)
    assert np.all(layer.grads["weight"][3] == 0)
    assert np.allclose(layer.grads["weight"][2], r[0, 1] + r[0, 2] + r[0, 3])


def test_positional_embedding_gradients() -> None:
    tn.seed(0)
    for steps in (1, 4, 7):
        x = np.random.default_rng(steps).normal(size=(2, steps, 3))
        report = tn.gradcheck.check_layer(L.PositionalEmbedding(7, 3), x)
        assert report.passed, str(report)


def test_language_model_net_gradients() -> None:
    """Embedding -> positions -> LayerNorm -> causal attention -> LayerNorm, through the masked loss."""
    tn.seed(0)
    net = tn.Net([L.Embedding(6, 8), L.PositionalEmbedding(5, 8), L.LayerNorm(8),
                  L.MultiHeadAttention(8, 2, causal=True), L.LayerNorm(8)], dtype=np.float64)
    idx = np.array([[0, 1, 5, 5, 2], [0, 3, 3, 0, 0]])
    report = tn.gradcheck.check_net(net, idx)
    assert report.passed, str(report)
    assert len(report) == len(net.named_params())

    loss = losses.SoftmaxCrossEntropy()
    targets = np.array([[1, 5, 5, 2, 0], [3, 3, 0, -100, -100]])
    model = tn.Model(net, loss, tn.optim.SGD(lr=0.1))
    model.backward(model.forward(idx), targets)
    analytic = net.grads.copy()
    numeric = tn.gradcheck.numerical_grad(lambda: loss.loss(net.forward(idx), targets), net.params)
    assert tn.gradcheck.rel_error(analytic, numeric) < TOL


# --- masked cross-entropy ----------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("ignore_index", [-100, 0])
def test_masked_cross_entropy_gradients(smoothing: float, ignore_index: int) -> None:
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((3, 4, 6)) * 2
    targets = rng.integers(1, 6, (3, 4))
    targets[0, 2:] = ignore_index
    targets[2, 0] = ignore_index
    loss = losses.SoftmaxCrossEntropy(label_smoothing=smoothing, ignore_index=ignore_index)
    report = tn.gradcheck.check_loss(loss, logits, targets)
    assert report.passed, str(report)
    grad = loss.grad(logits, targets)
    assert np.all(grad[targets == ignore_index] == 0)  # ignored positions get no gradient
    # The mean over the 9 counted labels equals the (N, C) loss on just those rows.
    kept = targets != ignore_index
    flat = losses.SoftmaxCrossEntropy(label_smoothing=smoothing, ignore_index=ignore_index)
    assert loss.loss(logits, targets) == pytest.approx(flat.loss(logits[kept], targets[kept]), rel=1e-12)


def test_cross_entropy_2d_unchanged_and_3d_probabilities() -> None:
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((5, 4))
    labels = rng.integers(0, 4, 5)
    loss = losses.SoftmaxCrossEntropy()
    assert loss.loss(logits, labels) == pytest.approx(loss.loss(logits, np.eye(4)[labels]), rel=1e-12)
    seq = rng.standard_normal((2, 3, 4))
    probs = rng.dirichlet(np.ones(4), (2, 3))
    assert tn.gradcheck.check_loss(loss, seq, probs).passed
    assert loss.loss(seq, probs) == pytest.approx(loss.loss(seq.reshape(6, 4), probs.reshape(6, 4)), rel=1e-12)
    assert loss.count_correct(seq, np.eye(4)[seq.argmax(-1)]) == (6, 6)
    assert loss.count_correct(seq, seq.argmax(-1)) == (6, 6)


def test_cross_entropy_count_correct_skips_ignored() -> None:
    logits = np.zeros((1, 4, 3))
    logits[0, :, 1] = 1  # predicts class 1 everywhere
    targets = np.array([[1, 2, -100, -100]])
    assert losses.SoftmaxCrossEntropy().count_correct(logits, targets) == (1, 2)


def test_cross_entropy_all_ignored_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"every label of the batch equals ignore_index=-100.*NaN"):
        losses.SoftmaxCrossEntropy().loss(np.zeros((2, 3, 4)), np.full((2, 3), -100))


def test_cross_entropy_sequence_errors() -> None:
    loss = losses.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"targets must be labels \(2, 3\) or one-hot.*got shape \(2, 4\)"):
        loss.loss(np.zeros((2, 3, 5)), np.zeros((2, 4), int))
    with pytest.raises(ValueError, match=r"label 5 out of range for 5 classes"):
        loss.loss(np.zeros((2, 3, 5)), np.array([[0, 1, 5], [0, -100, 0]]))
    with pytest.raises(ValueError, match=r"non-integer label 0.5 at index \(1, 2\)"):
        loss.loss(np.zeros((2, 3, 5)), np.array([[0, 1, 2], [0, 0, 0.5]]))
    with pytest.raises(ValueError, match="ignore_index must be an integer"):
        losses.SoftmaxCrossEntropy(ignore_index=1.5)
    again = losses.SoftmaxCrossEntropy.from_config(losses.SoftmaxCrossEntropy(0.1, ignore_index=0).get_config())
    assert (again.label_smoothing, again.ignore_index) == (0.1, 0)


# --- torch golden files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "attention.npz") as g:
        return dict(g)


def _run(layer: L.Layer, params: dict[str, np.ndarray], x: np.ndarray, r: np.ndarray) -> tuple:
    net = tn.Net([layer], dtype=np.float64)
    for name, value in params.items():
        layer.params[name][...] = value
    y = net.forward(x)
    dx = net.backward(r, input_grad=True)
    return y, dx


def test_embedding_matches_torch(golden) -> None:
    g = {k.removeprefix("emb_"): v for k, v in golden.items() if k.startswith("emb_")}
    layer = L.Embedding(7, 5)
    y, _ = _run(layer, {"weight": g["weight"]}, g["idx"], g["r"])
    assert rel(y, g["y"]) < 1e-12 and rel(layer.grads["weight"], g["dweight"]) < 1e-12


def test_positional_embedding_matches_torch(golden) -> None:
    g = {k.removeprefix("pos_"): v for k, v in golden.items() if k.startswith("pos_")}
    layer = L.PositionalEmbedding(9, 5)
    y, dx = _run(layer, {"weight": g["weight"]}, g["x"], g["r"])
    assert rel(y, g["y"]) < 1e-12 and rel(dx, g["dx"]) < 1e-12 and rel(layer.grads["weight"], g["dweight"]) < 1e-12


@pytest.mark.parametrize("case, shape", [("ln", (5,)), ("ln2", (6, 5))])
def test_layer_norm_matches_torch(golden, case: str, shape: tuple[int, ...]) -> None:
    g = {k.removeprefix(case + "_"): v for k, v in golden.items() if k.startswith(case + "_")}
    layer = L.LayerNorm(shape)
    y, dx = _run(layer, {"weight": g["weight"], "bias": g["bias"]}, g["x"], g["r"])
    assert rel(y, g["y"]) < 1e-10 and rel(dx, g["dx"]) < 1e-10
    assert rel(layer.grads["weight"], g["dweight"]) < 1e-10 and rel(layer.grads["bias"], g["dbias"]) < 1e-10


@pytest.mark.parametrize("oracle", ["mha", "sdpa"])
@pytest.mark.parametrize("mask", ["none", "causal", "pad", "causal_pad"])
def test_attention_matches_torch(golden, mask: str, oracle: str) -> None:
    """nn.MultiheadAttention(batch_first=True, need_weights=False) and the same projections around
    F.scaled_dot_product_attention, with causal and key padding masks."""
    names = ("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")
    layer = L.MultiHeadAttention(8, 2, causal="causal" in mask)
    if "pad" in mask:
        layer.set_key_padding_mask(golden["mha_pad"])
    y, dx = _run(layer, {n: golden[f"mha_{n}"] for n in names}, golden[f"mha_{mask}_x"], golden[f"mha_{mask}_r"])
    assert rel(y, golden[f"{oracle}_{mask}_y"]) < TOL
    assert rel(dx, golden[f"{oracle}_{mask}_dx"]) < TOL
    for n in names:
        assert rel(layer.grads[n], golden[f"{oracle}_{mask}_d{n}"]) < TOL, n


@pytest.mark.parametrize("case, smoothing, ignore", [("ignore", 0.0, -100), ("smooth", 0.1, -100), ("ignore0", 0.0, 0)])
def test_masked_cross_entropy_matches_torch(golden, case: str, smoothing: float, ignore: int) -> None:
    loss = losses.SoftmaxCrossEntropy(label_smoothing=smoothing, ignore_index=ignore)
    value, grad = loss.loss_and_grad(golden[f"ce_{case}_logits"], golden[f"ce_{case}_targets"])
    assert abs(value - golden[f"ce_{case}_loss"]) <= 1e-12 * abs(golden[f"ce_{case}_loss"])
    assert rel(grad, golden[f"ce_{case}_dlogits"]) < 1e-12


def test_gelu_is_torchs_tanh_form(golden) -> None:
    """GELU is torch's approximate="tanh"; torch's default (exact, erf) differs by at most ~5e-4 on [-6, 6]."""
    x = golden["gelu_x"]
    y, dx = _run(L.GELU(), {}, x[None], np.ones((1, x.size)))
    assert rel(y[0], golden["gelu_y_tanh"]) < 1e-12 and rel(dx[0], golden["gelu_dx_tanh"]) < 1e-12
    assert 1e-5 < np.abs(y[0] - golden["gelu_y_erf"]).max() < 1e-3


# --- float32, nets, saving ---------------------------------------------------------------------


def _lm(dtype=np.float32, dropout: float = 0.0) -> tn.Net:
    return tn.Net([L.Embedding(27, 16), L.PositionalEmbedding(8, 16), L.LayerNorm(16),
                   L.MultiHeadAttention(16, 4, causal=True, dropout=dropout), L.LayerNorm(16)], dtype=dtype)


def test_float32_end_to_end() -> None:
    tn.seed(0)
    net = _lm(dropout=0.1)
    idx = np.random.default_rng(0).integers(0, 27, (4, 8))
    y = net.forward(idx)
    assert y.dtype == np.float32 and y.shape == (4, 8, 16)
    net.backward(np.ones_like(y))
    assert net.grads.dtype == np.float32 and np.isfinite(net.grads).all()
    for layer in net.layers:
        for g in layer.grads.values():
            assert g.dtype == np.float32
    # float32 agrees with float64 to float32 precision
    tn.seed(1)
    n32 = _lm()
    n64 = tn.Net([type(la).from_config(la.get_config()) for la in n32.layers], dtype=np.float64)
    n64.params[...] = n32.params
    assert np.abs(n32.forward(idx) - n64.forward(idx)).max() < 1e-4
    loss = losses.SoftmaxCrossEntropy()
    value, grad = loss.loss_and_grad(n32.forward(idx)[..., :5], np.zeros((4, 8), int))
    assert grad.dtype == np.float32 and isinstance(value, float)


def test_fast_path_stays_float32_inside() -> None:
    """Every leaf layer of the names transformer takes and returns float32 on the fast path, both ways:
    no silent float64 upcast in between (each would cost a conversion and double the memory traffic)."""
    tn.seed(0)
    net = tn.Net([L.Embedding(27, 16), L.PositionalEmbedding(8, 16), L.TransformerBlock(16, 4, causal=True),
                  L.LayerNorm(16), L.Dense(16, 27)])
    seen = []

    def watch(path, layer):
        forward, backward = layer.forward, layer.backward

        def fwd(x):
            y = forward(x)
            seen.append((path, "forward", x.dtype if x.dtype.kind == "f" else np.dtype(np.float32), y.dtype))
            return y

        def bwd(g):
            dx = backward(g)
            seen.append((path, "backward", g.dtype, np.dtype(np.float32) if dx is None else dx.dtype))
            return dx

        layer.forward, layer.backward = fwd, bwd

    for path, layer in net.named_layers():
        if not layer.sublayers():
            watch(path, layer)
    idx = np.random.default_rng(0).integers(0, 27, (4, 8))
    y = net.forward(idx)
    net.backward(np.ones_like(y))
    assert len(seen) == 2 * 10  # 2 embeddings; LayerNorm, attention, LayerNorm, Dense, GELU, Dense; LayerNorm, Dense
    wrong = [s for s in seen if s[2] != np.float32 or s[3] != np.float32]
    assert not wrong, wrong


def test_dropout_only_in_training_and_seeded() -> None:
    tn.seed(0)
    layer = L.MultiHeadAttention(8, 2, dropout=0.5)
    net = tn.Net([layer], dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 5, 8))
    tn.seed(3)
    a = net.forward(x)
    tn.seed(3)
    np.testing.assert_array_equal(net.forward(x), a)  # same seed, same code path: bit-identical
    assert np.abs(net.forward(x) - a).max() > 1e-6  # a new draw
    net.eval()
    clean = net.forward(x)
    tn.seed(9)
    np.testing.assert_array_equal(net.forward(x), clean)
    with pytest.raises(ValueError, match="cannot be split over threads"):
        tn.Net([L.MultiHeadAttention(8, 2, dropout=0.1)], workers=2)
    tn.Net([L.MultiHeadAttention(8, 2)], workers=2)  # no dropout: rows are independent


def test_workers_split_matches_one_worker() -> None:
    tn.seed(0)
    one = _lm(np.float64)
    two = tn.Net([type(la).from_config(la.get_config()) for la in one.layers], dtype=np.float64, workers=2)
    two.params[...] = one.params
    idx = np.random.default_rng(0).integers(0, 27, (6, 8))
    r = np.random.default_rng(1).standard_normal((6, 8, 16))
    np.testing.assert_allclose(two.forward(idx), one.forward(idx), rtol=1e-12)
    one.backward(r)
    two.backward(r)
    np.testing.assert_allclose(two.grads, one.grads, rtol=1e-10, atol=1e-12)


def test_save_load_round_trip(tmp_path) -> None:
    tn.seed(0)
    net = _lm(dropout=0.1)
    model = tn.Model(net, losses.SoftmaxCrossEntropy(ignore_index=0), tn.optim.AdamW(lr=1e-3))
    idx = np.random.default_rng(0).integers(0, 27, (4, 8))
    model.train_step(idx, np.random.default_rng(1).integers(0, 16, (4, 8)))
    model.save(tmp_path / "m.npz")
    back = tn.Model.load(tmp_path / "m.npz")
    assert back.loss.ignore_index == 0
    np.testing.assert_array_equal(back.net.params, net.params)
    net.eval(), back.net.eval()
    np.testing.assert_array_equal(back.net.forward(idx), net.forward(idx))
    assert [n for n, _ in back.net.named_params()] == [n for n, _ in net.named_params()]
    assert ("3.MultiHeadAttention.in_proj_weight", (48, 16)) in net.named_params()


def test_textbook_softmax_jacobian() -> None:
    """softmax_backward applies the full Jacobian diag(s) - s s^T."""
    x = np.random.default_rng(0).standard_normal(5)
    s = tb.softmax(x)
    ds = np.random.default_rng(1).standard_normal(5)
    np.testing.assert_allclose(tb.softmax_backward(ds, s), (np.diag(s) - np.outer(s, s)) @ ds, rtol=1e-12)


# --- errors ------------------------------------------------------------------------------------


def test_embedding_errors() -> None:
    layer = L.Embedding(5, 3)
    for bad, match in [
        (np.array([[0, 5]]), r"Embedding\(num_embeddings=5, embedding_dim=3\): index 5 out of range .*0..4"),
        (np.array([[0, -1]]), "index -1 out of range"),
        (np.array([[0.5, 1.0]]), "indices must be integers, got 0.5"),
        (np.array([[np.nan, 1.0]]), "indices must be integers, got nan"),
    ]:
        with pytest.raises(ValueError, match=match):
            layer.forward(bad)
    with pytest.raises(TypeError, match=r"Embedding.*indices must be integers, got input of dtype bool"):
        layer.forward(np.array([[True]]))
    assert layer.forward(np.array([[1.0, 4.0]])).shape == (1, 2, 3)  # whole numbers stored as floats are fine
    net = tn.Net([L.Embedding(5, 3)])
    with pytest.raises(ValueError, match="index 7 out of range"):
        net.forward(np.array([[7, 0]]))
    with pytest.raises(ValueError, match="Embedding: num_embeddings must be a positive integer"):
        L.Embedding(0, 3)


def test_positional_and_layer_norm_errors() -> None:
    pos = L.PositionalEmbedding(4, 3)
    with pytest.raises(ValueError, match=r"PositionalEmbedding.*context longer than the positional table: 5 steps"):
        pos.forward(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match=r"PositionalEmbedding.*got input of shape \(2, 4\)"):
        pos.forward(np.zeros((2, 4)))
    ln = L.LayerNorm((2, 3))
    with pytest.raises(ValueError, match=r"LayerNorm.*input of shape \(4, 3, 2\); expected \(batch, \.\.\., 2, 3\)"):
        ln.forward(np.zeros((4, 3, 2)))
    for bad in (0, (), [3, 0], "3", True):
        with pytest.raises(ValueError, match="LayerNorm: normalized_shape"):
            L.LayerNorm(bad)
    with pytest.raises(ValueError, match="LayerNorm: eps must be a number > 0"):
        L.LayerNorm(3, eps=0)


def test_attention_errors() -> None:
    with pytest.raises(ValueError, match=r"embed_dim \(6\) must be divisible by num_heads \(4\)"):
        L.MultiHeadAttention(6, 4)
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\)"):
        L.MultiHeadAttention(6, 2, dropout=1.0)
    layer = L.MultiHeadAttention(6, 2)
    with pytest.raises(ValueError, match=r"MultiHeadAttention.*shape \(2, 3, 4\); expected \(batch, time, 6\)"):
        layer.forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="key_padding_mask must be a boolean"):
        layer.set_key_padding_mask(np.zeros((2, 3)))
    layer.set_key_padding_mask(np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(2, 3\) but the input has batch 2 and 4 steps"):
        layer.forward(np.zeros((2, 4, 6)))
    pad = np.zeros((2, 3), bool)
    pad[1] = True  # sequence 1 is all padding: no key for any query
    layer.set_key_padding_mask(pad)
    with pytest.raises(ValueError, match="query 0 of sequence 1 has every key masked"):
        layer.forward(np.zeros((2, 3, 6)))
    causal = L.MultiHeadAttention(6, 2, causal=True)
    causal.set_key_padding_mask(np.array([[True, False, False]]))  # left padding: query 0 sees only key 0
    with pytest.raises(ValueError, match="query 0 of sequence 0 has every key masked"):
        causal.forward(np.zeros((1, 3, 6)))
    causal.set_key_padding_mask(None)
    assert causal.forward(np.zeros((1, 3, 6))).shape == (1, 3, 6)


def test_textbook_functions_write_no_input() -> None:
    """Pure functions: every array handed to a forward or a backward is unchanged afterwards."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6))
    arrays = {"w_in": rng.standard_normal((18, 6)), "b_in": rng.standard_normal(18),
              "w_out": rng.standard_normal((6, 6)), "b_out": rng.standard_normal(6), "x": x,
              "gamma": rng.standard_normal(6), "beta": rng.standard_normal(6), "table": rng.standard_normal((5, 6)),
              "dy": rng.standard_normal((2, 4, 6))}
    idx = np.array([[0, 1, 1, 4], [2, 2, 2, 0]])
    before = {k: v.copy() for k, v in arrays.items()}
    a = arrays
    mask = tb.causal_mask(4)[None, None]
    drop = (rng.random((2, 3, 4, 4)) > 0.2) / 0.8
    y, cache = tb.multi_head_attention(a["x"], a["w_in"], a["b_in"], a["w_out"], a["b_out"], 3, mask, drop)
    tb.multi_head_attention_backward(a["dy"], cache)
    y, cache = tb.layer_norm(a["x"], a["gamma"], a["beta"], (6,))
    tb.layer_norm_backward(a["dy"], cache)
    y, cache = tb.embedding(idx, a["table"])
    tb.embedding_backward(a["dy"], cache)
    y, cache = tb.positional_embedding(a["x"], a["table"])
    tb.positional_embedding_backward(a["dy"], cache)
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], before[k], err_msg=k)


def test_summary_of_a_sequence_net() -> None:
    net = _lm()
    text = net.summary(input_shape=(8,))
    assert "(N, 8, 16)" in text and f"{net.num_params:,}" in text
    assert "MultiHeadAttention(embed_dim=16, num_heads=4, causal=True" in text
