"""tinynn.textbook against the fast layers and optimizers: the two paths must agree.

Every fast layer is "the optimised version of" a textbook function; here both run on random shapes,
strides and paddings in float64 (``Net(fast=True)`` against ``Net(fast=False)``, same parameters)
and must agree within 1e-6 relative (to the largest entry) in the output, the input gradient and
every parameter gradient, with ``workers=1`` and ``workers=2`` where the layer allows a batch split.
The optimizers' steps are replayed by the textbook updates over several steps.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinynn as tn
from tinynn import layers as L
from tinynn import optim, parallel
from tinynn.textbook import conv as tconv
from tinynn.textbook import optim as toptim

RTOL = 1e-6


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """``got`` within RTOL of ``want``, relative to ``want``'s largest entry."""
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(np.abs(want).max(initial=0.0), 1e-12)
    err = np.abs(got - want).max(initial=0.0) / scale
    assert err <= RTOL, f"{what}: relative error {err:.2e}"


def both_paths(make, x, workers=1, train=True, steps=1, backward=True):
    """Run a net of ``make()`` layers on both paths from the same parameters; compare everything."""
    nets = []
    for fast in (True, False):
        tn.seed(0)
        net = tn.Net(make(), dtype=np.float64, workers=workers, fast=fast)
        nets.append(net.train() if train else net.eval())
    fast_net, textbook_net = nets
    np.testing.assert_array_equal(fast_net.params, textbook_net.params)
    rng = np.random.default_rng(1)
    for step in range(steps):  # a second step reuses the fast path's scratch arrays: they must not leak in
        y_fast, y_tb = fast_net.forward(x), textbook_net.forward(x)
        assert_close(y_fast, y_tb, f"step {step}: forward")
        if not backward:
            continue
        g = rng.standard_normal(y_tb.shape)
        dx_fast, dx_tb = fast_net.backward(g, input_grad=True), textbook_net.backward(g, input_grad=True)
        assert_close(dx_fast, dx_tb, f"step {step}: dL/dx")
        for i, (mine, theirs) in enumerate(zip(fast_net.layers, textbook_net.layers, strict=True)):
            for name, grad in theirs.grads.items():  # views of net.grads: with workers=2, the chunks' sum
                assert_close(mine.grads[name], grad, f"step {step}: layer {i} dL/d{name}")
        for name, value in textbook_net.buffers().items():
            assert_close(fast_net.buffers()[name], value, f"step {step}: buffer {name}")
    return fast_net, textbook_net


SEEDS = range(6)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("seed", SEEDS)
def test_dense(seed, workers):
    r = np.random.default_rng(seed)
    n_in, n_out, bias = int(r.integers(1, 9)), int(r.integers(1, 9)), bool(seed % 2)
    x = r.standard_normal((int(r.integers(4, 12)), n_in))
    both_paths(lambda: [L.Dense(n_in, n_out, bias=bias), L.ReLU(), L.Dense(n_out, 3)], x, workers, steps=2)


def conv_case(r):
    c, o = int(r.integers(1, 4)), int(r.integers(1, 5))
    k = (int(r.integers(1, 4)), int(r.integers(1, 4)))
    stride = (int(r.integers(1, 4)), int(r.integers(1, 4)))
    padding = "same" if stride == (1, 1) and r.random() < 0.5 else (int(r.integers(0, k[0])), int(r.integers(0, k[1])))
    h, w = int(r.integers(k[0], 9)), int(r.integers(k[1], 9))
    return c, o, k, stride, padding, r.standard_normal((int(r.integers(4, 9)), c, h, w))


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("seed", SEEDS)
def test_conv2d(seed, workers, monkeypatch):
    r = np.random.default_rng(seed)
    c, o, k, stride, padding, x = conv_case(r)
    bias = seed != 3
    make = lambda: [L.Conv2D(c, o, k, stride=stride, padding=padding, bias=bias)]  # noqa: E731
    both_paths(make, x, workers, steps=2)
    monkeypatch.setattr(L.Conv2D, "INFERENCE_COLS", 1)  # the fast eval forward: cols one output row at a time
    both_paths(make, x, workers, train=False)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("pool", [L.MaxPool2D, L.AvgPool2D])
@pytest.mark.parametrize("seed", SEEDS)
def test_pooling(seed, pool, workers):
    r = np.random.default_rng(seed)
    k = (int(r.integers(1, 4)), int(r.integers(1, 4)))
    stride = None if seed % 3 == 0 else (int(r.integers(1, 4)), int(r.integers(1, 4)))
    padding = (int(r.integers(0, k[0] // 2 + 1)), int(r.integers(0, k[1] // 2 + 1)))
    x = r.standard_normal((int(r.integers(4, 9)), int(r.integers(1, 4)), int(r.integers(k[0], 9)),
                           int(r.integers(k[1], 9))))
    both_paths(lambda: [pool(k, stride=stride, padding=padding)], x, workers, steps=2)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("seed", SEEDS)
def test_attention(seed, workers):
    """Random widths, heads, lengths; causal or not, with and without bias; two steps (scratch arrays reused)."""
    r = np.random.default_rng(seed)
    heads = int(r.integers(1, 4))
    dim, causal, bias = heads * int(r.integers(1, 4)), bool(seed % 2), seed != 2
    x = r.standard_normal((int(r.integers(4, 9)), int(r.integers(1, 7)), dim))
    both_paths(lambda: [L.MultiHeadAttention(dim, heads, causal=causal, bias=bias)], x, workers, steps=2)


@pytest.mark.parametrize("seed", range(4))
def test_attention_with_padding_and_dropout(seed):
    """A key padding mask (with and without causal) and dropout: one worker (neither may split the batch)."""
    r = np.random.default_rng(seed)
    n, t, heads = int(r.integers(2, 6)), int(r.integers(2, 7)), int(r.integers(1, 4))
    dim, causal, dropout = 2 * heads, bool(seed % 2), 0.3 if seed >= 2 else 0.0
    pad = np.zeros((n, t), bool)
    pad[:, 1:] = r.random((n, t - 1)) < 0.4  # key 0 is never padding: every query keeps a key
    x = r.standard_normal((n, t, dim))

    def make():
        layer = L.MultiHeadAttention(dim, heads, causal=causal, dropout=dropout)
        layer.set_key_padding_mask(pad)
        return [layer]

    if not dropout:
        both_paths(make, x, steps=2)
        return
    nets = []
    for fast in (True, False):
        tn.seed(0)
        nets.append(tn.Net(make(), dtype=np.float64, fast=fast))
    for step in range(2):  # each forward reseeded: both paths draw the same dropout masks
        g = r.standard_normal(x.shape)
        out = []
        for net in nets:
            tn.seed(10 + step)
            out.append((net.forward(x), net.backward(g, input_grad=True).copy(), net.grads.copy()))
        for got, want, what in zip(*out, ("forward", "dL/dx", "parameter gradients"), strict=True):
            assert_close(got, want, f"step {step}: {what}")


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("seed", SEEDS)
def test_layer_norm(seed, workers):
    r = np.random.default_rng(seed)
    shape = tuple(int(d) for d in r.integers(1, 6, size=int(r.integers(1, 3))))
    affine = seed != 1
    x = 2 + 3 * r.standard_normal((int(r.integers(4, 9)), *([int(r.integers(1, 5))] if seed % 2 else []), *shape))

    weight, bias = r.standard_normal(shape), r.standard_normal(shape)  # not 1 and 0: the affine part counts

    def make():
        layer = L.LayerNorm(shape, elementwise_affine=affine)
        if affine:
            layer.params["weight"][...], layer.params["bias"][...] = weight, bias
        return [layer]

    both_paths(make, x, workers, steps=2)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("one_hot", [True, False], ids=["one_hot", "sorted"])
@pytest.mark.parametrize("seed", range(4))
def test_embedding(seed, one_hot, workers, monkeypatch):
    """Both fast backwards (one-hot product, sort + reduceat) against ``np.add.at``; repeated indices."""
    if not one_hot:
        monkeypatch.setattr(L.Embedding, "ONE_HOT_MAX", 0)
    r = np.random.default_rng(seed)
    rows, dim = int(r.integers(1, 30)), int(r.integers(1, 6))
    x = r.integers(0, rows, size=(int(r.integers(4, 9)), *r.integers(1, 6, size=int(r.integers(1, 3)))))
    fast_net, textbook_net = both_paths(lambda: [L.Embedding(rows, dim)], x, workers, steps=2, backward=False)
    g = r.standard_normal((*x.shape, dim))
    fast_net.backward(g)
    textbook_net.backward(g)
    assert_close(fast_net.grads, textbook_net.grads, "dL/dweight")


@pytest.mark.parametrize("workers", [1, 2])
def test_transformer_language_model(workers):
    """The names model in small: embeddings, two causal pre-norm blocks, LayerNorm, head; every gradient."""
    r = np.random.default_rng(0)
    x = r.integers(0, 7, size=(6, 5))

    def make():
        return [L.Embedding(7, 8), L.PositionalEmbedding(6, 8), L.TransformerBlock(8, 2, causal=True),
                L.TransformerBlock(8, 2, causal=True), L.LayerNorm(8), L.Dense(8, 7)]

    fast_net, textbook_net = both_paths(make, x, workers, steps=2, backward=False)
    for step in range(2):
        g = r.standard_normal((6, 5, 7))
        for net in (fast_net, textbook_net):
            net.forward(x)
            net.backward(g)
        assert_close(fast_net.grads, textbook_net.grads, f"step {step}: every parameter gradient")


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("seed", SEEDS)
def test_batch_norm(seed, train):
    r = np.random.default_rng(seed)
    c = int(r.integers(1, 6))
    if seed % 2:
        x = 3 + 2 * r.standard_normal((int(r.integers(2, 10)), c))
        make = lambda: [L.BatchNorm1d(c, momentum=0.3)]  # noqa: E731
    else:
        x = 3 + 2 * r.standard_normal((int(r.integers(1, 5)), c, int(r.integers(1, 5)), int(r.integers(2, 5))))
        make = lambda: [L.BatchNorm2d(c, momentum=0.3)]  # noqa: E731
    fast_net, textbook_net = both_paths(make, x, train=True, steps=2)  # moves the running statistics
    if not train:
        for net in (fast_net, textbook_net):
            net.params[...] = np.random.default_rng(2).standard_normal(net.params.shape)  # gamma, beta != 1, 0
            net.eval()
        assert_close(fast_net.forward(x), textbook_net.forward(x), "eval forward")
        g = np.random.default_rng(3).standard_normal(x.shape)
        assert_close(fast_net.backward(g, input_grad=True), textbook_net.backward(g, input_grad=True), "eval dL/dx")
        assert_close(fast_net.grads, textbook_net.grads, "eval parameter gradients")


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("seed", range(4))
def test_recurrent(seed, kind, workers):
    r = np.random.default_rng(seed)
    n_in, hidden, seq = int(r.integers(1, 6)), int(r.integers(1, 7)), bool(seed % 2)
    x = r.standard_normal((int(r.integers(4, 9)), int(r.integers(1, 6)), n_in))
    layer = {
        "rnn_tanh": lambda: L.RNN(n_in, hidden, return_sequences=seq),
        "rnn_relu": lambda: L.RNN(n_in, hidden, nonlinearity="relu", return_sequences=seq),
        "lstm": lambda: L.LSTM(n_in, hidden, return_sequences=seq),
        "gru": lambda: L.GRU(n_in, hidden, return_sequences=seq),
    }[kind]
    both_paths(lambda: [layer()], x, workers, steps=2)
    both_paths(lambda: [layer()], x, workers, train=False, backward=False)  # the fast LSTM keeps one step in eval


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("act", [L.ReLU, L.Sigmoid])
def test_activations(act, workers):
    x = np.random.default_rng(0).standard_normal((6, 7)) * 4
    both_paths(lambda: [act()], x, workers, steps=2)


@pytest.mark.parametrize("seed", range(3))
def test_conv2d_naive_is_conv2d(seed):
    """The loops of the definition and the im2col matrix product: the same function and gradient."""
    r = np.random.default_rng(seed)
    c, o, k, stride, padding, x = conv_case(r)
    pads = L.conv.conv_padding(padding, k, stride)
    w, b = r.standard_normal((o, c, *k)), r.standard_normal(o)
    y, cache = tconv.conv2d(x, w, b, stride, pads)
    y_naive, cache_naive = tconv.conv2d_naive(x, w, b, stride, pads)
    assert_close(y_naive, y, "forward")
    g = r.standard_normal(y.shape)
    for got, want, name in zip(tconv.conv2d_naive_backward(g, cache_naive), tconv.conv2d_backward(g, cache),
                               ("dx", "dw", "db"), strict=True):
        assert_close(got, want, name)


# --- nets on both paths -----------------------------------------------------------------------


def lenet():
    return [L.Conv2D(1, 4, 5, padding=2), L.ReLU(), L.MaxPool2D(2), L.Conv2D(4, 6, 3), L.BatchNorm2d(6), L.ReLU(),
            L.AvgPool2D(2), L.Flatten(), L.Dense(6 * 2 * 2, 16), L.ReLU(), L.Dense(16, 10)]


def lstm_net():
    return [L.Reshape((12, 12)), L.LSTM(12, 16), L.Dense(16, 10)]


@pytest.mark.parametrize("make", [lenet, lstm_net])
def test_a_net_trains_the_same_on_both_paths(make):
    """Three Adam steps of a LeNet-shaped and an LSTM net, fast and textbook: the same parameters."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 1, 12, 12)), rng.integers(0, 10, 16)
    if make is lstm_net:
        x = x.reshape(16, 144)
    models = []
    for fast in (True, False):
        tn.seed(0)
        net = tn.Net(make(), dtype=np.float64, fast=fast)
        models.append(tn.Model(net, tn.losses.SoftmaxCrossEntropy(), optim.Adam(lr=1e-2)))
    for _ in range(3):
        losses = [m.train_step(x, y) for m in models]
        assert losses[0] == pytest.approx(losses[1], rel=RTOL)
    assert_close(models[0].net.params, models[1].net.params, "parameters after 3 steps")
    assert_close(models[0].predict(x), models[1].predict(x), "eval predictions")


@pytest.mark.parametrize("make", [
    # bias=False before batch norm, which removes any bias (its gradient is 0: nothing to check but rounding)
    lambda: [L.Conv2D(2, 3, (3, 2), stride=(2, 1), padding=1, bias=False), L.BatchNorm2d(3), L.ReLU(),
             L.MaxPool2D(2, stride=1), L.AvgPool2D(2, padding=1), L.Flatten(), L.Dense(3 * 2 * 3, 4),
             L.Sigmoid(), L.BatchNorm1d(4)],
    lambda: [L.LSTM(3, 4, return_sequences=True), L.GRU(4, 3, return_sequences=True), L.RNN(3, 2)],
], ids=["conv", "recurrent"])
def test_the_textbook_path_passes_the_gradient_check(make):
    """Independently of the fast layers: the textbook backwards are the derivatives of their forwards."""
    tn.seed(0)
    net = tn.Net(make(), dtype=np.float64, fast=False)
    shape = (3, 2, 5, 4) if isinstance(net.layers[0], L.Conv2D) else (3, 4, 3)
    report = tn.gradcheck.check_net(net, np.random.default_rng(0).standard_normal(shape))
    assert report.passed, report


@pytest.mark.parametrize("make", [lenet, lstm_net])
def test_the_textbook_path_keeps_float32(make):
    """The textbook functions compute in the dtype of their inputs: a float32 net stays float32."""
    tn.seed(0)
    net = tn.Net(make(), fast=False)
    x = np.random.default_rng(0).standard_normal((4, 144)).astype(np.float32)
    x = x.reshape(4, 1, 12, 12) if make is lenet else x
    y = net.forward(x)
    dx = net.backward(np.ones_like(y), input_grad=True)
    assert y.dtype == dx.dtype == np.float32


def test_fast_false_is_saved_and_loaded(tmp_path):
    tn.seed(0)
    net = tn.Net(lstm_net(), fast=False)
    assert not any(layer.fast for layer in net.layers) and "fast=False" in repr(net)
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), optim.SGD(lr=0.1))
    x = np.random.default_rng(0).standard_normal((8, 144)).astype(np.float32)
    model.train_step(x, np.arange(8) % 10)
    loaded = tn.Model.load(model.save(tmp_path / "m.npz"))
    assert loaded.net.fast is False and not any(layer.fast for layer in loaded.net.layers)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))  # the same code path: bit-identical
    assert tn.Net.from_config(tn.Net(lstm_net()).get_config()).fast is True
    assert "fast" not in tn.Net(lstm_net()).get_config()  # fast configs stay as they were


def test_bad_fast_flag_is_an_error():
    with pytest.raises(TypeError, match="fast"):
        tn.Net([L.Dense(2, 2)], fast="no")
    config = tn.Net([L.Dense(2, 2)]).get_config()
    with pytest.raises(ValueError, match="fast"):
        tn.Net.from_config({**config, "fast": 0})


def test_textbook_backward_names_the_layer():
    net = tn.Net([L.Dense(3, 2)], fast=False)
    with pytest.raises(RuntimeError, match="Dense"):
        net.backward(np.ones((4, 2)))
    net.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"Dense.*\(4, 2\)"):
        net.backward(np.ones((4, 3)))


# --- optimizers ------------------------------------------------------------------------------

OPTIMIZERS = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.1, "maximize": True}),
    ("sgdm", {"lr": 0.1}),
    ("sgdm", {"lr": 0.1, "dampening": 0.3, "weight_decay": 0.05}),
    ("sgdm", {"lr": 0.1, "nesterov": True, "maximize": True}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    ("adamw", {"lr": 0.01}),
    ("adamw", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.3}),
]


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(("name", "hyper"), OPTIMIZERS)
def test_optimizer_matches_its_textbook_update(name, hyper, workers, masked):
    rng = np.random.default_rng(0)
    size = 67
    mask = (rng.random(size) < 0.5).astype(np.float64) if masked else None
    opt = optim.get(name, **hyper, decay_mask=mask)
    fast = rng.standard_normal(size)
    p, state = fast.copy(), {}
    for t in range(1, 7):
        grad = rng.standard_normal(size)
        parallel.optimizer_step(opt, fast, grad.copy(), workers)
        p, state = toptim.UPDATES[name](p, grad, state, t, **hyper, decay_mask=mask)
        assert_close(fast, p, f"{name} step {t}")
    for key, value in state.items():
        assert_close(opt.state[key], value, f"{name} state {key}")
