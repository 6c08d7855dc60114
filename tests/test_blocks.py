"""Blocks (layers made of layers): Sequential and Residual, through any nesting.

Their parameters stay views into the net's one flat vector; gradients, names, buffers, saving,
strict loading, summary, workers and decay masks all see through them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import tinynn as tn
from tinynn import layers as L
from tinynn.gradcheck import check_layer, check_net


def nested(width: int = 5) -> list[L.Layer]:
    """A residual MLP with a block inside a block inside a block."""
    return [
        L.Dense(4, width),
        L.Residual([L.Dense(width, width), L.Tanh(), L.Sequential([L.Dense(width, width), L.Sigmoid()])]),
        L.Residual([L.Sequential([L.Residual([L.Dense(width, width), L.GELU()]), L.Dense(width, width)])]),
        L.Dense(width, 3),
    ]


def test_gradcheck_through_nested_blocks():
    tn.seed(0)
    net = tn.Net(nested(), dtype=np.float64)
    report = check_net(net, np.random.default_rng(1).standard_normal((6, 4)))
    assert report.passed, str(report)
    # every parameter tensor, at every depth, was checked by name
    assert set(report) == {"input", *(name for name, _ in net.named_params())}
    assert "2.Residual.0.Sequential.0.Residual.0.Dense.w" in report


@pytest.mark.parametrize("block", [L.Sequential, L.Residual])
def test_gradcheck_of_one_block(block):
    tn.seed(1)
    layer = block([L.Dense(3, 3), L.BatchNorm1d(3), L.LeakyReLU(0.1), L.Dense(3, 3)])
    assert check_layer(layer, np.random.default_rng(2).standard_normal((5, 3))).passed


def test_gradcheck_residual_conv_block():
    tn.seed(2)
    block = L.Residual([L.Conv2D(2, 2, 3, padding=1), L.ReLU(), L.Conv2D(2, 2, 3, padding=1)])
    net = tn.Net([block, L.Flatten(), L.Dense(2 * 4 * 4, 2)], dtype=np.float64)
    assert check_net(net, np.random.default_rng(3).standard_normal((3, 2, 4, 4))).passed


def test_residual_adds_its_input_and_its_gradient():
    tn.seed(3)
    inner = L.Dense(3, 3)
    net = tn.Net([L.Residual([inner])], dtype=np.float64)
    x = np.random.default_rng(4).standard_normal((2, 3))
    w, b = inner.params["w"], inner.params["b"]
    assert np.allclose(net(x), x + x @ w + b)
    g = np.random.default_rng(5).standard_normal((2, 3))
    net(x)
    dx = net.backward(g, input_grad=True)
    assert np.allclose(dx, g + g @ w.T)
    assert np.allclose(inner.grads["w"], x.T @ g)


def test_params_are_views_into_the_flat_vectors():
    net = tn.Net(nested())
    for _, layer in net.named_layers():
        for name, p in layer.params.items():
            assert np.shares_memory(p, net.params) and np.shares_memory(layer.grads[name], net.grads)
    assert net.num_params == sum(int(np.prod(s)) for _, s in net.named_params())
    assert len({name for name, _ in net.named_params()}) == len(net.named_params())


def test_names_are_paths_for_params_and_buffers():
    net = tn.Net([L.Dense(2, 3), L.Residual([L.BatchNorm1d(3), L.Dense(3, 3)])])
    assert [n for n, _ in net.named_params()] == [
        "0.Dense.w", "0.Dense.b", "1.Residual.0.BatchNorm1d.gamma", "1.Residual.0.BatchNorm1d.beta",
        "1.Residual.1.Dense.w", "1.Residual.1.Dense.b",
    ]  # fmt: skip
    assert set(net.buffers()) == {"1.Residual.0.BatchNorm1d.running_mean", "1.Residual.0.BatchNorm1d.running_var"}
    assert [p for p, _ in net.named_layers()] == ["0.Dense", "1.Residual", "1.Residual.0.BatchNorm1d",
                                                  "1.Residual.1.Dense"]  # fmt: skip


def test_train_and_eval_reach_every_depth():
    net = tn.Net(nested())
    net.eval()
    assert not any(layer.training for _, layer in net.named_layers())
    net.train()
    assert all(layer.training for _, layer in net.named_layers())


def test_config_round_trip_and_param_shapes_without_building():
    net = tn.Net(nested())
    config = json.loads(json.dumps(net.get_config()))
    named, dtype = tn.Net.config_params(config)
    assert named == net.named_params() and dtype == net.dtype
    again = tn.Net.from_config(config)
    assert again.named_params() == net.named_params() and repr(again) == repr(net)


def test_save_load_round_trip(tmp_path):
    tn.seed(4)
    net = tn.Net([L.Dense(4, 6), L.Residual([L.BatchNorm1d(6), L.Dense(6, 6), L.ReLU()]), L.Dense(6, 2)])
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=1e-2))
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((32, 4)).astype(np.float32), rng.integers(0, 2, 32)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.npz")
    back = tn.Model.load(tmp_path / "m.npz")
    assert np.array_equal(back.net.params, net.params)  # the same bytes written and read back
    assert all(np.array_equal(back.net.buffers()[k], v) for k, v in net.buffers().items())
    assert np.array_equal(back.predict(x), model.predict(x))  # the same code on the same numbers


def test_strict_loading_checks_nested_sizes(tmp_path):
    net = tn.Net([L.Residual([L.Dense(3, 3)])])
    model = tn.Model(net, tn.losses.MSE(), tn.optim.SGD(lr=0.1))
    path = model.save(tmp_path / "m.npz")
    with np.load(path) as d:
        arrays = dict(d)
    config = json.loads(str(arrays["net_config"]))
    config["layers"][0]["config"]["layers"][0]["config"]["out_features"] = 4  # a bigger nested layer
    arrays["net_config"] = np.array(json.dumps(config))
    with open(tmp_path / "bad.npz", "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match="architecture needs"):
        tn.Model.load(tmp_path / "bad.npz")


def test_workers_2_equals_workers_1():
    rng = np.random.default_rng(6)
    x, g = rng.standard_normal((64, 4)).astype(np.float32), rng.standard_normal((64, 3)).astype(np.float32)
    nets = []
    for workers in (1, 2):
        tn.seed(7)
        net = tn.Net(nested(8), workers=workers)
        nets.append((net.forward(x), net.backward(g, input_grad=True), net.grads.copy()))
    for one, two in zip(*nets, strict=True):  # another batch split sums the chunks' gradients: float32 rounding
        assert np.allclose(one, two, rtol=1e-5, atol=1e-5)


def test_summary_indents_blocks_with_their_totals():
    net = tn.Net([L.Dense(4, 5), L.Residual([L.Dense(5, 5), L.ReLU()]), L.Dense(5, 2)])
    lines = net.summary().splitlines()
    block = next(line for line in lines if "1: Residual" in line)
    assert block.split()[-1] == "30" and "(N, 5)" in block
    assert any(line.startswith("  0: Dense(5 -> 5)") and line.endswith("30") for line in lines)
    assert any(line.startswith("  1: ReLU()") for line in lines)


def test_decay_mask_sees_nested_names():
    net = tn.Net(nested())
    mask = tn.optim.decay_mask(net.named_params(), lambda name, shape: ".Residual." in name)
    inside = sum(int(np.prod(s)) for n, s in net.named_params() if ".Residual." in n)
    assert mask.sum() == inside > 0


def test_residual_must_keep_the_shape():
    with pytest.raises(ValueError, match="Residual.*must keep the shape"):
        tn.Net([L.Residual([L.Dense(3, 4)])]).forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="must keep the shape"):
        tn.Net([L.Dense(2, 3), L.Residual([L.Dense(3, 4)])]).summary()


@pytest.mark.parametrize("bad", [[], "relu", [L.ReLU(), "relu"]])
def test_blocks_refuse_bad_layer_lists(bad):
    with pytest.raises((ValueError, TypeError), match="Sequential"):
        L.Sequential(bad)


def test_backward_without_input_grad_stops_at_the_first_parameters():
    net = tn.Net([L.Sequential([L.Flatten(), L.Dense(4, 2)])])
    net.forward(np.ones((3, 2, 2), np.float32))
    assert net.backward(np.ones((3, 2), np.float32)) is None
    flatten = net.layers[0].layers[0]
    assert flatten.cached() == ((3, 2, 2),)  # cached by forward, never differentiated: no error either
    assert not net.layers[0].layers[1].input_grad


def test_set_flags_reaches_every_layer_and_every_replica():
    net = tn.Net(nested(), workers=2)
    net.eval().set_flags(probe=7)
    replicas = [layers for layers, _ in net._split.replicas]
    everyone = [layer for chain in (net.layers, *replicas) for _, layer in L.named_layers(chain)]
    assert len({id(layer) for layer in everyone}) == 2 * len(net.named_layers())  # a replica shares no layer...
    for (_, mine), (_, theirs) in zip(L.named_layers(net.layers), L.named_layers(replicas[0]), strict=True):
        for name, p in mine.params.items():  # ... but every parameter array, and no gradient array
            assert theirs.params[name] is p and not np.shares_memory(theirs.grads[name], mine.grads[name])
    assert all(layer.probe == 7 and not layer.training for layer in everyone)
    assert net.train().training and all(layer.training for layer in everyone)


def test_a_block_reports_what_its_layers_need():
    block = L.Residual([L.Dense(3, 3), L.Sequential([L.BatchNorm1d(3)])])
    assert block.min_train_batch == 2 and not block.batch_independent
    assert L.Sequential([L.Dense(3, 3)]).batch_independent
    with pytest.raises(ValueError, match=r"layer 0\.Residual\.1\.Sequential\.0\.BatchNorm1d.*workers=1"):
        tn.Net([block], workers=2)


def test_a_block_defined_by_its_arguments_shows_them():
    class Pair(L.Sequential):
        def __init__(self, width):
            self.width = width
            super().__init__([L.Dense(width, width), L.ReLU()])

        def get_config(self):
            return {"width": self.width}

    assert repr(Pair(3)) == "Pair(width=3)"
    assert repr(L.Residual([L.ReLU()])) == "Residual([ReLU()])"


def test_layer_buffers_inside_a_block_are_checked_on_load():
    """A negative running variance is refused at any depth, named by its path."""
    net = tn.Net([L.Dense(3, 4), L.Residual([L.BatchNorm1d(4), L.Dense(4, 4)])])
    buffers = {k: v.copy() for k, v in net.buffers().items()}
    net.load_buffers(buffers)  # the net's own buffers load
    buffers["1.Residual.0.BatchNorm1d.running_var"][0] = -1.0
    with pytest.raises(ValueError, match="running_var"):
        net.load_buffers(buffers)
