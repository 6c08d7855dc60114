"""Conv2D, MaxPool2D, AvgPool2D, BatchNorm2d: gradient checks, torch golden files, errors, saving."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynn as tn
from tinynn import layers as L
from tinynn import zoo

GOLDEN = Path(__file__).parent / "golden"
REL = 1e-10


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def run(layer: L.Layer, x: np.ndarray, g: np.ndarray, training: bool = True) -> tuple[np.ndarray, np.ndarray]:
    net = tn.Net([layer], dtype=np.float64)
    net.train() if training else net.eval()
    y = net.forward(x)
    return y, net.backward(g, input_grad=True)


def load(name: str) -> tuple[list[dict], dict[str, np.ndarray]]:
    data = dict(np.load(GOLDEN / f"conv_{name}.npz"))
    return json.loads(str(data.pop("cases"))), data


# -- torch golden files (tools/make_conv_golden.py) --------------------------------------------------


def test_conv2d_matches_torch() -> None:
    cases, d = load("conv2d")
    for i, case in enumerate(cases):
        layer = L.Conv2D(**case)
        net = tn.Net([layer], dtype=np.float64)
        layer.params["w"][...] = d[f"w_{i}"]
        if case["bias"]:
            layer.params["b"][...] = d[f"b_{i}"]
        y = net.forward(d[f"x_{i}"])
        dx = net.backward(d[f"g_{i}"], input_grad=True)
        assert y.shape == d[f"y_{i}"].shape, case
        assert rel(y, d[f"y_{i}"]) < REL, case
        assert rel(dx, d[f"dx_{i}"]) < REL, case
        assert rel(layer.grads["w"], d[f"dw_{i}"]) < REL, case
        if case["bias"]:
            assert rel(layer.grads["b"], d[f"db_{i}"]) < REL, case
        else:
            assert "b" not in layer.params
    assert {c["padding"] for c in cases if isinstance(c["padding"], str)} == {"same", "valid"}


def test_pooling_matches_torch() -> None:
    cases, d = load("pool")
    for i, case in enumerate(cases):
        cls = {"max": L.MaxPool2D, "avg": L.AvgPool2D}[case.pop("kind")]
        y, dx = run(cls(**case), d[f"x_{i}"], d[f"g_{i}"])
        assert y.shape == d[f"y_{i}"].shape, case
        assert rel(y, d[f"y_{i}"]) < REL, case
        assert rel(dx, d[f"dx_{i}"]) < REL, case  # case 0 has many ties: one element takes the gradient


def test_batchnorm2d_matches_torch() -> None:
    cases, d = load("batchnorm")
    for i, case in enumerate(cases):
        training = case.pop("training")
        bn = L.BatchNorm2d(**case)
        net = tn.Net([bn], dtype=np.float64)
        bn.params["gamma"][...], bn.params["beta"][...] = d[f"gamma_{i}"], d[f"beta_{i}"]
        bn.buffers["running_mean"][...] = d[f"running_mean_in_{i}"]
        bn.buffers["running_var"][...] = d[f"running_var_in_{i}"]
        net.train() if training else net.eval()
        y = net.forward(d[f"x_{i}"])
        dx = net.backward(d[f"g_{i}"], input_grad=True)
        for got, key in ((y, "y"), (dx, "dx"), (bn.grads["gamma"], "dgamma"), (bn.grads["beta"], "dbeta"),
                         (bn.buffers["running_mean"], "running_mean"), (bn.buffers["running_var"], "running_var")):
            assert rel(got, d[f"{key}_{i}"]) < REL, (case, key)


# -- float64 gradient checks on random shapes --------------------------------------------------------

size = st.integers(1, 3)


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 2), c=size, o=size, h=st.integers(3, 7), w=st.integers(3, 7), kh=size, kw=size,
       sh=st.integers(1, 2), sw=st.integers(1, 2), ph=st.integers(0, 1), pw=st.integers(0, 2),
       bias=st.booleans(), seed=st.integers(0, 2**16))  # fmt: skip
def test_conv2d_gradients(n, c, o, h, w, kh, kw, sh, sw, ph, pw, bias, seed) -> None:
    tn.seed(seed)
    layer = L.Conv2D(c, o, (kh, kw), stride=(sh, sw), padding=(ph, pw), bias=bias)
    x = np.random.default_rng(seed).standard_normal((n, c, h, w))
    report = tn.gradcheck.check_layer(layer, x)
    assert report.passed, f"{layer!r}\n{report}"
    assert len(report) == 2 + bias  # input, w and (if any) b were all checked


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv2d_gradients_named_padding(padding: str) -> None:
    tn.seed(1)
    layer = L.Conv2D(2, 3, (2, 3), padding=padding)
    report = tn.gradcheck.check_layer(layer, np.random.default_rng(1).standard_normal((2, 2, 5, 4)))
    assert report.passed, str(report)
    assert layer.output_shape((None, 2, 5, 4)) == ((None, 3, 5, 4) if padding == "same" else (None, 3, 4, 2))


@settings(max_examples=10, deadline=None)
@given(kind=st.sampled_from(["max", "avg"]), n=st.integers(1, 2), c=size, h=st.integers(2, 7),
       w=st.integers(2, 7), kh=st.integers(1, 3), kw=st.integers(1, 2), stride=st.sampled_from([None, 1, 2, (1, 2)]),
       pad=st.booleans(), seed=st.integers(0, 2**16))  # fmt: skip
def test_pooling_gradients(kind, n, c, h, w, kh, kw, stride, pad, seed) -> None:
    padding = (kh // 2, kw // 2) if pad else 0
    layer = (L.MaxPool2D if kind == "max" else L.AvgPool2D)((kh, kw), stride, padding)
    if kh > h or kw > w:
        return  # the error case, tested below
    x = np.random.default_rng(seed).standard_normal((n, c, h, w))  # distinct values: no ties
    report = tn.gradcheck.check_layer(layer, x)
    assert report.passed, f"{layer!r}\n{report}"


@pytest.mark.parametrize("n, c, h, w", [(2, 1, 3, 4), (1, 3, 2, 3), (3, 4, 1, 1)])
def test_batchnorm2d_gradients(n, c, h, w) -> None:
    tn.seed(2)
    bn = L.BatchNorm2d(c)
    bn.params["gamma"][...] = np.random.default_rng(0).standard_normal(c)
    report = tn.gradcheck.check_layer(bn, np.random.default_rng(n).standard_normal((n, c, h, w)) * 2 + 1)
    assert report.passed, str(report)
    assert len(report) == 3


def test_cnn_gradients_through_every_layer() -> None:
    """Conv -> BN -> pool -> ReLU -> conv (stride 2) -> avg-pool -> dense: layouts mix correctly.

    The first conv has no bias: BatchNorm subtracts the mean, so a bias there has zero gradient."""
    tn.seed(4)
    net = tn.Net([L.Reshape((2, 7, 6)), L.Conv2D(2, 3, 3, padding=1, bias=False), L.BatchNorm2d(3),
                  L.MaxPool2D(2, 1), L.ReLU(), L.Conv2D(3, 4, (2, 3), stride=2), L.AvgPool2D(2, 1, 1), L.Tanh(),
                  L.Flatten(), L.Dense(4 * 4 * 3, 3, bias=False)], dtype=np.float64)  # fmt: skip
    report = tn.gradcheck.check_net(net, np.random.default_rng(0).standard_normal((3, 84)))
    assert report.passed, str(report)
    assert len(report) == 1 + len(net.named_params())


def test_dense_without_bias() -> None:
    tn.seed(0)
    layer = L.Dense(4, 3, bias=False)
    assert set(layer.params) == {"w"} and layer.get_config()["bias"] is False
    assert "bias" not in L.Dense(4, 3).get_config()  # configs of older checkpoints are unchanged
    x = np.random.default_rng(0).standard_normal((5, 4))
    net = tn.Net([layer], dtype=np.float64)
    np.testing.assert_allclose(net.forward(x), x @ layer.params["w"])
    assert tn.gradcheck.check_layer(L.Dense(4, 3, bias=False), x).passed


# -- shapes, summary, saving --------------------------------------------------------------------------


def test_lenet_summary_shapes() -> None:
    net = zoo.lenet5()
    text = net.summary(input_shape=(784,))
    for shape in ("(N, 6, 28, 28)", "(N, 6, 14, 14)", "(N, 16, 10, 10)", "(N, 16, 5, 5)", "(N, 400)", "(N, 10)"):
        assert shape in text, shape
    assert net.num_params == 61_706  # 156 + 2,416 + 48,120 + 10,164 + 850
    assert "(N, 3, 8, 8)" in tn.Net([L.Conv2D(1, 3, 3)]).summary(input_shape=(1, 10, 10))
    assert net.forward(np.zeros((2, 784), np.uint8)).shape == (2, 10)


def test_cnn_checkpoint_round_trip(tmp_path: Path) -> None:
    tn.seed(0)
    net = tn.Net([L.Conv2D(1, 4, 3, stride=(1, 2), padding=1, bias=False), L.BatchNorm2d(4),
                  L.ReLU(), L.AvgPool2D(2), L.Conv2D(4, 2, 2, padding="same"), L.MaxPool2D((2, 1), padding=(1, 0)),
                  L.Flatten(), L.Dense(2 * 3 * 2, 3)])  # fmt: skip
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=1e-2))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 16)
    for _ in range(3):
        model.train_step(x, y)
    model.save(tmp_path / "cnn.npz")
    loaded = tn.Model.load(tmp_path / "cnn.npz")
    assert loaded.net.get_config() == net.get_config()
    np.testing.assert_array_equal(loaded.net.params, net.params)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))  # BN running statistics came back too


# -- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make, match", [
    (lambda: L.Conv2D(1, 2, 0), "kernel_size"),
    (lambda: L.Conv2D(1, 2, 3, stride=0), "stride"),
    (lambda: L.Conv2D(1, 2, 2.5), "kernel_size"),
    (lambda: L.Conv2D(1, 2, (3, 3, 3)), "kernel_size"),
    (lambda: L.Conv2D(1, 2, 3, padding=-1), "padding"),
    (lambda: L.Conv2D(1, 2, 3, padding="full"), "padding"),
    (lambda: L.Conv2D(1, 2, 3, stride=2, padding="same"), "same.*stride"),
    (lambda: L.Conv2D(0, 2, 3), "in_channels"),
    (lambda: L.Conv2D(1, 2.0, 3), "out_channels"),
    (lambda: L.MaxPool2D(0), "MaxPool2D: kernel_size"),
    (lambda: L.AvgPool2D(2, stride=0), "AvgPool2D: stride"),
    (lambda: L.MaxPool2D(2, padding=2), "MaxPool2D: padding"),
    (lambda: L.BatchNorm2d(0), "BatchNorm2d: num_features"),
])  # fmt: skip
def test_bad_arguments(make, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("layer, shape, match", [
    (L.Conv2D(3, 2, 3), (2, 3, 5), r"Conv2D\(3 -> 2, 3x3\) got input of shape \(2, 3, 5\)"),
    (L.Conv2D(3, 2, 3), (2, 1, 5, 5), r"shape \(2, 1, 5, 5\); expected \(batch, 3, height, width\)"),
    (L.Conv2D(1, 2, 5), (2, 1, 4, 9), r"Conv2D.*\(2, 1, 4, 9\): kernel 5x5 is larger than the padded input 4x9"),
    (L.Conv2D(1, 2, 5, padding=1), (2, 1, 2, 9), r"kernel 5x5 is larger than the padded input 4x11"),
    (L.MaxPool2D(3), (1, 2, 2, 5), r"MaxPool2D\(3x3\).*\(1, 2, 2, 5\).*kernel 3x3 is larger"),
    (L.AvgPool2D(2), (4, 8), r"AvgPool2D\(2x2\) got input of shape \(4, 8\)"),
    (L.BatchNorm2d(3), (2, 4, 5, 5), r"BatchNorm2d.*\(2, 4, 5, 5\); expected \(batch, 3, height, width\)"),
])  # fmt: skip
def test_bad_input_shapes(layer, shape, match) -> None:
    with pytest.raises(ValueError, match=match):
        tn.Net([layer]).forward(np.ones(shape, np.float32))


# -- the command line ---------------------------------------------------------------------------------


def test_cli_trains_and_evaluates_a_cnn(tmp_path: Path) -> None:
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tinynn", *args], capture_output=True, text=True, timeout=300)

    out = tmp_path / "run"
    proc = run("train", "--model", "cnn", "--limit", "640", "--epochs", "1", "--val-size", "0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Conv2D(1 -> 6, 5x5, padding=2)" in proc.stdout and "(N, 16, 5, 5)" in proc.stdout
    assert "adam lr=0.002" in proc.stdout  # the cnn's own default, since --lr was not given
    assert float(proc.stdout.split("test accuracy:")[1].split()[0]) > 0.2  # 5 steps: better than chance
    proc = run("evaluate", str(out / "model.npz"), "--limit", "300")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "test accuracy:" in proc.stdout and "confusion matrix" in proc.stdout

    rgb = tn.Model(tn.Net([L.Conv2D(3, 2, 3), L.Flatten()]), tn.losses.SoftmaxCrossEntropy(), tn.optim.SGD(lr=0.1))
    rgb.save(tmp_path / "rgb.npz")
    proc = run("evaluate", str(tmp_path / "rgb.npz"), "--limit", "10")
    assert proc.returncode == 2 and "does not take 784-pixel MNIST images" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_conv2d_inference_in_bands_matches_training_forward() -> None:
    """Eval mode builds im2col in bands of output rows (bounded memory); the output is the same."""
    tn.seed(0)
    conv = L.Conv2D(2, 3, (3, 2), stride=(2, 1), padding=1)
    net = tn.Net([conv], dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((5, 2, 11, 7))
    expected = net.train().forward(x)
    row = 2 * 3 * 2 * 8 * 5  # numbers of cols per output row: (C*kh*kw) * Wo * N; Ho = 6
    for budget in (1, 2 * row, 4 * row + 7, 10**9):  # bands of 1 row, 2 rows, 4 rows + a tail of 2, all 6
        conv.INFERENCE_COLS = budget
        np.testing.assert_allclose(net.eval().forward(x), expected, rtol=1e-13, atol=1e-13)
    g = np.random.default_rng(1).standard_normal(expected.shape)
    dx_eval, dw_eval = net.backward(g, input_grad=True), conv.grads["w"].copy()  # cols rebuilt for backward
    net.train().forward(x)
    np.testing.assert_allclose(net.backward(g, input_grad=True), dx_eval, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(conv.grads["w"], dw_eval, rtol=1e-13, atol=1e-13)
    with pytest.raises(RuntimeError, match="before forward"):
        L.Conv2D(1, 1, 1).backward(np.ones((1, 1, 1, 1)))


def test_conv_in_column_blocks_equals_one_product(monkeypatch):
    """On one BLAS thread the products run over blocks of columns; the sums equal one product's up to
    float rounding (another summation order), forward and backward."""
    from tinynn import blas
    from tinynn.layers import conv

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 9, 9))
    g = rng.standard_normal((5, 4, 9, 9))
    outs = []
    for block in (10**9, 37):  # 37: blocks that do not divide the 405 columns
        monkeypatch.setattr(conv, "BLOCK_COLUMNS", block)
        tn.seed(0)
        net = tn.Net([L.Conv2D(3, 4, 3, padding=1)], dtype=np.float64, workers=1)
        with blas.blas_threads(1):
            y = net.forward(x)
            dx = net.backward(g, input_grad=True)
        outs.append((y, dx, net.grads.copy()))
    for a, b in zip(*outs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
