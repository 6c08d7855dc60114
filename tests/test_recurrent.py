"""RNN, LSTM, GRU: float64 gradient checks over 1..10 steps, torch golden files, errors, saving, the zoo net."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tinynn as tn
from tinynn import layers as L

GOLDEN = Path(__file__).resolve().parent / "golden"

# name -> a small layer (input_size 2, hidden 3) in either output mode
KINDS = {
    "RNN_tanh": lambda seq: L.RNN(2, 3, return_sequences=seq),
    "RNN_relu": lambda seq: L.RNN(2, 3, nonlinearity="relu", return_sequences=seq),
    "LSTM": lambda seq: L.LSTM(2, 3, return_sequences=seq),
    "GRU": lambda seq: L.GRU(2, 3, return_sequences=seq),
}


@pytest.mark.parametrize("seq", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_recurrent_gradients(kind: str, seq: bool) -> None:
    """Input and every parameter, for sequences of 1 to 10 steps."""
    rng = np.random.default_rng(0)
    for steps in range(1, 11):
        tn.seed(steps)
        layer = KINDS[kind](seq)
        x = rng.standard_normal((2, steps, 2)) * 1.5
        if kind == "RNN_relu":  # keep pre-activations away from ReLU's kink at 0 (the difference quotient straddles it)
            layer.params["b_x"][...] += 0.5
        report = tn.gradcheck.check_layer(layer, x)
        assert report.passed, f"{layer!r}, {steps} steps\n{report}"
        assert set(report) == {"input"} | {f"0.{type(layer).__name__}.{p}" for p in ("w_x", "w_h", "b_x", "b_h")}


def test_stacked_recurrent_gradients() -> None:
    tn.seed(0)
    net = tn.Net([L.Reshape((4, 3)), L.LSTM(3, 4, return_sequences=True), L.GRU(4, 3, return_sequences=True),
                  L.RNN(3, 3, return_sequences=True), L.LSTM(3, 2), L.Dense(2, 2)], dtype=np.float64)
    report = tn.gradcheck.check_net(net, np.random.default_rng(1).standard_normal((3, 12)))
    assert report.passed, str(report)
    assert len(report) == 1 + len(net.named_params())


GOLDEN_KINDS = {
    "tanh": lambda seq: L.RNN(4, 5, return_sequences=seq),
    "relu": lambda seq: L.RNN(4, 5, nonlinearity="relu", return_sequences=seq),
    "lstm": lambda seq: L.LSTM(4, 5, return_sequences=seq),
    "gru": lambda seq: L.GRU(4, 5, return_sequences=seq),
}


@pytest.mark.parametrize("mode", ["last", "seq"])
@pytest.mark.parametrize("kind", sorted(GOLDEN_KINDS))
def test_matches_torch(kind: str, mode: str) -> None:
    """Forward and every gradient against torch's nn.RNN/LSTM/GRU (tools/make_rnn_golden.py), float64."""
    g = np.load(GOLDEN / f"rnn_{kind}.npz")
    layer = GOLDEN_KINDS[kind](mode == "seq")
    net = tn.Net([layer], dtype=np.float64)
    for name in ("w_x", "w_h", "b_x", "b_h"):
        layer.params[name][...] = g[name]
    y = net.forward(g["x"])
    dx = net.backward(g[f"{mode}_r"], input_grad=True)

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a - b).max() / np.abs(b).max())

    assert y.shape == g[f"{mode}_y"].shape
    assert rel(y, g[f"{mode}_y"]) < 1e-10
    assert rel(dx, g[f"{mode}_dx"]) < 1e-10
    for name in ("w_x", "w_h", "b_x", "b_h"):
        assert rel(layer.grads[name], g[f"{mode}_d{name}"]) < 1e-10, name


def test_split_parameters_give_the_same_gradients() -> None:
    """The fast path treats [w_x; w_h; b_x; b_h] as one matrix; parameters apart in memory still work."""
    x = np.random.default_rng(0).standard_normal((3, 4, 2))
    r = np.random.default_rng(1).standard_normal((3, 3))
    for kind in ("RNN_tanh", "LSTM"):
        tn.seed(0)
        layer = KINDS[kind](False)
        net = tn.Net([layer], dtype=np.float64)
        y = net.forward(x)
        net.backward(r)
        want = {k: v.copy() for k, v in layer.grads.items()}
        layer.params = {k: v.copy() for k, v in layer.params.items()}  # four separate arrays
        layer.grads = {k: np.zeros_like(v) for k, v in layer.grads.items()}
        np.testing.assert_array_equal(layer.forward(x), y)  # bit for bit: the same matrix, the same products
        layer.backward(r)
        for k in want:
            np.testing.assert_allclose(layer.grads[k], want[k], rtol=1e-12, atol=1e-14)


def test_batch_size_changes_reuse_scratch_arrays_correctly() -> None:
    tn.seed(0)
    net = tn.Net([L.LSTM(3, 4, return_sequences=True), L.GRU(4, 2)])
    x = np.random.default_rng(0).standard_normal((6, 5, 3)).astype(np.float32)
    full = net.forward(x)
    assert full.dtype == np.float32 and full.shape == (6, 2)
    np.testing.assert_allclose(net.forward(x[:2]), full[:2], rtol=1e-6)
    np.testing.assert_allclose(net.forward(x[:, :3]), net.forward(x[:, :3].copy()), rtol=0)
    np.testing.assert_allclose(net.forward(x), full, rtol=0)


def test_lstm_inference_keeps_one_step() -> None:
    tn.seed(0)
    net = tn.Net([L.LSTM(3, 6, return_sequences=True), L.LSTM(6, 4)], dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((5, 9, 3))
    train_out = net.forward(x)
    net.eval()
    np.testing.assert_allclose(net.forward(x), train_out, rtol=1e-13)
    assert net.layers[0]._scratch["a"].shape[0] == 1  # not one block per step
    with pytest.raises(RuntimeError, match="eval mode"):
        net.backward(np.ones((5, 4)))


@pytest.mark.parametrize("layer", [L.RNN(3, 4), L.LSTM(3, 4, return_sequences=True), L.GRU(3, 4)], ids=repr)
def test_bad_input_shapes(layer: L.Layer) -> None:
    name = type(layer).__name__
    cases = [
        (np.zeros((2, 3)), r"3-D \(batch, time, 3\)"),
        (np.zeros((2, 0, 3)), "zero time steps"),
        (np.zeros((2, 5, 4)), "4 features per step"),
    ]
    for x, problem in cases:
        with pytest.raises(ValueError, match=problem) as err:
            layer.forward(x)
        assert name in str(err.value) and str(x.shape) in str(err.value)
    layer.forward(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="backward got gradient of shape"):
        layer.backward(np.zeros((2, 7)))


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="nonlinearity"):
        L.RNN(2, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="LSTM: hidden_size must be a positive integer"):
        L.LSTM(2, 0)
    with pytest.raises(ValueError, match="GRU: input_size"):
        L.GRU(2.5, 3)


def test_shapes_config_and_summary() -> None:
    from tinynn import zoo

    net = zoo.lstm()
    assert net.layers[1].output_shape((None, 28, 28)) == (None, 128)
    assert L.GRU(3, 5, return_sequences=True).output_shape((None, 7, 3)) == (None, 7, 5)
    text = net.summary(input_shape=(784,))
    assert "LSTM(28 -> 128)" in text and "(N, 28, 28)" in text and "(N, 10)" in text
    lstm_params = (28 + 128 + 2) * 4 * 128  # torch's nn.LSTM(28, 128) has the same count
    assert f"{lstm_params:,}" in text and net.num_params == lstm_params + 128 * 10 + 10
    stacked = tn.Net([L.GRU(3, 5, return_sequences=True), L.RNN(5, 2)]).summary()  # shapes without input_shape
    assert "(N, ?, 5)" in stacked and "(N, 2)" in stacked
    rebuilt = tn.Net.from_config(tn.Net([L.RNN(2, 3, nonlinearity="relu", return_sequences=True)]).get_config())
    assert repr(rebuilt.layers[0]) == "RNN(2 -> 3, relu, return_sequences=True)"


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    tn.seed(0)
    net = tn.Net([L.Reshape((4, 3)), L.GRU(3, 5, return_sequences=True), L.RNN(5, 4, nonlinearity="relu"),
                  L.Dense(4, 3)])
    x = np.random.default_rng(0).random((16, 12)).astype(np.float32)
    y = np.arange(16) % 3
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=1e-2), gradient_clip=1.0)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = tn.Model.load(tmp_path / "m.npz")
    assert [repr(a) for a in loaded.net.layers] == [repr(b) for b in net.layers]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))  # same parameters, same code path: bit for bit


def test_cli_lstm_defaults() -> None:
    from tinynn.cli import build_parser
    from tinynn.runs import MODEL_DEFAULTS, fill_model_defaults

    parse = build_parser().parse_args
    args = parse(["train", "--model", "lstm"])
    fill_model_defaults(args)
    assert (args.lr, args.epochs, args.gradient_clip) == tuple(MODEL_DEFAULTS["lstm"][k] for k in
                                                               ("lr", "epochs", "gradient_clip"))
    args = parse(["train", "--model", "lstm", "--lr", "0.01", "--gradient-clip", "5"])
    fill_model_defaults(args)
    assert (args.lr, args.gradient_clip) == (0.01, 5.0)
    args = parse(["train"])
    fill_model_defaults(args)
    assert (args.lr, args.epochs, args.gradient_clip) == (1e-3, 10, None)  # the MLP's defaults are unchanged


def test_cli_evaluates_an_lstm_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tinynn import zoo
    from tinynn.cli import main

    tn.seed(0)
    model = tn.Model(zoo.lstm(hidden_size=16), tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam())
    model.save(tmp_path / "model.npz")
    assert main(["evaluate", str(tmp_path / "model.npz"), "--limit", "200"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    # A recurrent net that does not take 784 pixels: a clear message, not a traceback.
    tn.Model(tn.Net([L.Reshape((20, 20)), L.LSTM(20, 4), L.Dense(4, 10)]), tn.losses.SoftmaxCrossEntropy(),
             tn.optim.Adam()).save(tmp_path / "bad.npz")
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(tmp_path / "bad.npz"), "--limit", "10"])
    assert exit_info.value.code == 2
    assert "does not take 784-pixel MNIST images" in capsys.readouterr().err
