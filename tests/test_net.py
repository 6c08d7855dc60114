"""Net: one flat parameter/gradient vector each, dtypes, modes, determinism, summary."""

import numpy as np
import pytest

import tinynn as tn
from tinynn import layers as L


def mlp(dtype=np.float32, dropout=0.0):
    return tn.Net([L.Dense(20, 16), L.ReLU(), L.Dropout(dropout), L.Dense(16, 8), L.BatchNorm1d(8), L.Tanh(),
                   L.Dense(8, 4)], dtype=dtype)


def data(n=32, seed=0):
    r = np.random.default_rng(seed)
    return r.random((n, 20), dtype=np.float32), r.integers(0, 4, n)


def test_params_and_grads_are_one_flat_vector_with_layer_views():
    tn.seed(0)
    net = mlp()
    sizes = [20 * 16 + 16, 16 * 8 + 8, 8 + 8, 8 * 4 + 4]
    assert net.params.ndim == 1 and net.params.size == sum(sizes) == net.num_params
    assert net.grads.shape == net.params.shape
    assert net.params.flags.c_contiguous and net.grads.flags.c_contiguous
    for layer in net.layers:
        for name in layer.params:
            assert np.shares_memory(layer.params[name], net.params)
            assert np.shares_memory(layer.grads[name], net.grads)
    # Writing through the flat vector is seen by the layer, and the other way round.
    net.params[:] = 0
    assert not net.layers[0].params["w"].any()
    net.layers[3].params["b"][:] = 7
    assert (net.params == 7).sum() == 8


def test_named_params_lists_everything_in_order():
    net = mlp()
    named = net.named_params()
    assert [n for n, _ in named] == ["0.Dense.w", "0.Dense.b", "3.Dense.w", "3.Dense.b", "4.BatchNorm1d.gamma",
                                     "4.BatchNorm1d.beta", "6.Dense.w", "6.Dense.b"]
    assert sum(int(np.prod(s)) for _, s in named) == net.params.size
    assert dict(named)["0.Dense.w"] == (20, 16)


def test_backward_fills_the_flat_gradient():
    tn.seed(0)
    net = mlp()
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.SGD(lr=0.1))
    x, y = data()
    _, grads = model.backward(model.forward(x), y)
    assert grads is net.grads
    for layer in net.layers:
        for name, g in layer.grads.items():
            assert np.abs(g).sum() > 0, (layer, name)


@pytest.mark.parametrize("optimizer", ["sgd", "sgdm", "adagrad", "rmsprop", "adam"])
def test_float32_stays_float32_through_a_full_step(optimizer):
    tn.seed(0)
    net = mlp(dropout=0.2)
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.get(optimizer))
    x, y = data()
    preds = model.forward(x)
    assert preds.dtype == np.float32
    loss, grads = model.backward(preds, y)
    assert isinstance(loss, float)
    assert grads.dtype == np.float32
    model.apply_grads(grads)
    model.train_step(x, y)
    assert net.params.dtype == np.float32 and net.grads.dtype == np.float32
    for layer in net.layers:
        for d in (layer.params, layer.grads, layer.buffers):
            assert all(v.dtype == np.float32 for v in d.values())
    # float64 input to a float32 net is cast, not propagated.
    assert model.forward(x.astype(np.float64)).dtype == np.float32
    assert model.predict(x).dtype == np.float32


def test_float64_end_to_end():
    tn.seed(0)
    net = mlp(np.float64)
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam())
    x, y = data()
    model.train_step(x, y)
    assert model.forward(x).dtype == np.float64 and net.params.dtype == np.float64


def train(seed, steps=5):
    tn.seed(seed)
    net = mlp(dropout=0.3)
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=1e-2))
    x, y = data(64)
    for _ in range(steps):
        model.train_step(x, y)
    return net.params.copy()


def test_same_seed_bit_identical_parameters():
    a, b = train(0), train(0)
    assert np.array_equal(a, b)  # same seed, same code path: bit for bit
    assert not np.array_equal(a, train(1))


def test_forward_returns_a_fresh_array():
    tn.seed(0)
    net = mlp()
    x, _ = data()
    first = net.forward(x)
    kept = first.copy()
    net.forward(x[:10] * 3)
    assert np.array_equal(first, kept)


def test_smaller_last_batch_then_full_batch_again():
    tn.seed(0)
    net = mlp()
    net.eval()
    x, _ = data(32)
    full = net.forward(x)
    part = net.forward(x[:5])
    again = net.forward(x)
    assert np.allclose(part, full[:5], atol=1e-6)
    assert np.array_equal(again, full)  # bit for bit: the same batch through the same code path twice


def test_train_eval_modes():
    tn.seed(0)
    net = mlp(dropout=0.5)
    x, _ = data()
    net.eval()
    assert not any(layer.training for layer in net.layers) and not net.training
    assert np.array_equal(net.forward(x), net.forward(x))  # dropout off, running stats fixed
    net.train()
    assert all(layer.training for layer in net.layers)
    assert not np.array_equal(net.forward(x), net.forward(x))  # fresh dropout masks


def test_dropout_is_inverted_and_identity_in_eval():
    tn.seed(0)
    drop = L.Dropout(0.25)
    x = np.ones((400, 250), dtype=np.float32)
    y = drop.forward(x)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    assert np.allclose(y[kept], 1 / 0.75)
    assert abs(y.mean() - 1) < 0.02
    drop.training = False
    assert drop.forward(x) is x
    assert np.array_equal(L.Dropout(1.0).forward(x), np.zeros_like(x))


def test_batchnorm_statistics_match_torch_conventions():
    bn = L.BatchNorm1d(3, momentum=0.1)
    x = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32) * [1, 2, 3] + [1, -1, 5]
    y = bn.forward(x)
    assert np.allclose(y.mean(0), 0, atol=1e-5) and np.allclose(y.var(0), 1, atol=1e-3)
    assert np.allclose(bn.buffers["running_mean"], 0.1 * x.mean(0), atol=1e-6)
    assert np.allclose(bn.buffers["running_var"], 0.9 + 0.1 * x.var(0, ddof=1), atol=1e-5)
    bn.training = False
    expected = (x - bn.buffers["running_mean"]) / np.sqrt(bn.buffers["running_var"] + bn.eps)
    assert np.allclose(bn.forward(x), expected, atol=1e-5)


def test_activation_values():
    x = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0]])
    assert np.allclose(L.ReLU().forward(x), [[0, 0, 0, 0.5, 3]])
    assert np.allclose(L.LeakyReLU(0.1).forward(x), [[-0.3, -0.05, 0, 0.5, 3]])
    assert np.allclose(L.Sigmoid().forward(x), 1 / (1 + np.exp(-x)))
    assert np.allclose(L.Tanh().forward(x), np.tanh(x))
    gelu = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    assert np.allclose(L.GELU().forward(x), gelu)
    s = L.Softmax().forward(x)
    assert np.allclose(s, np.exp(x) / np.exp(x).sum())
    assert np.isfinite(L.Sigmoid().forward(np.array([[-1e4, 1e4]], dtype=np.float32))).all()
    assert np.allclose(L.Softmax().forward(np.array([[1000.0, 1000.0]])), 0.5)


def test_summary_lists_layers_shapes_and_total():
    net = tn.Net([L.Flatten(), L.Dense(784, 256), L.ReLU(), L.Dense(256, 10)])
    text = net.summary(input_shape=(28, 28))
    assert "Dense(784 -> 256)" in text and "(N, 784)" in text and "(N, 10)" in text
    assert "200,960" in text and f"Total params: {784 * 256 + 256 + 256 * 10 + 10:,}" in text
    assert "(N, 256)" in tn.Net([L.Dense(3, 256)]).summary()


def test_config_round_trip_rebuilds_the_architecture():
    net = mlp(dropout=0.3)
    again = tn.Net.from_config(net.get_config())
    assert [repr(a) for a in again.layers] == [repr(b) for b in net.layers]
    assert again.named_params() == net.named_params() and again.dtype == net.dtype
