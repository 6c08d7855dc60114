"""tinynn.parallel: the batch split over threads and the sharded optimizer step."""

from __future__ import annotations

import numpy as np
import pytest

import tinynn as tn
from tinynn import layers as L
from tinynn import optim, parallel


def mlp(workers: int, dtype=np.float64) -> tn.Net:
    tn.seed(0)
    return tn.Net([L.Dense(12, 16), L.ReLU(), L.Dense(16, 8), L.Tanh(), L.Dense(8, 3)], dtype=dtype, workers=workers)


def test_chunks_cover_the_range_in_order():
    assert parallel.chunks(10, 3) == [slice(0, 3), slice(3, 6), slice(6, 10)]
    parts = parallel.chunks(235_146, 2, align=16)
    assert parts[0].start == 0 and parts[0].stop % 16 == 0 and parts[1].start == parts[0].stop
    assert parts[-1].stop == 235_146


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("rows", [7, 40])
def test_split_forward_backward_match_one_thread(workers, rows):
    one, split = mlp(1), mlp(workers)
    np.testing.assert_array_equal(one.params, split.params)
    x = np.random.default_rng(1).standard_normal((rows, 12))
    g = np.random.default_rng(2).standard_normal((rows, 3))
    np.testing.assert_allclose(split.forward(x), one.forward(x), rtol=1e-12, atol=1e-14)
    dx_split, dx_one = split.backward(g, input_grad=True), one.backward(g, input_grad=True)
    np.testing.assert_allclose(dx_split, dx_one, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(split.grads, one.grads, rtol=1e-10, atol=1e-12)
    # and again with a different batch size: buffers and the gradient sum start afresh
    split.forward(x[:5]), one.forward(x[:5])
    split.backward(g[:5]), one.backward(g[:5])
    np.testing.assert_allclose(split.grads, one.grads, rtol=1e-10, atol=1e-12)


def test_replicas_share_parameters_so_updates_need_no_sync():
    net = mlp(2)
    x = np.random.default_rng(1).standard_normal((8, 12))
    before = net.forward(x)
    net.params *= 0.5  # what an optimizer does: in place on the flat vector
    after = net.forward(x)
    assert not np.allclose(before, after)
    one = mlp(1)
    one.params *= 0.5
    np.testing.assert_allclose(after, one.forward(x), rtol=1e-12)


def test_too_small_a_batch_runs_on_one_thread():
    net, one = mlp(2), mlp(1)
    x = np.ones((3, 12))
    np.testing.assert_allclose(net.forward(x), one.forward(x))
    net.backward(np.ones((3, 3))), one.backward(np.ones((3, 3)))
    np.testing.assert_allclose(net.grads, one.grads)


@pytest.mark.parametrize("layer", [L.Dropout(0.5), L.BatchNorm1d(16)])
def test_layers_that_mix_rows_are_refused(layer):
    with pytest.raises(ValueError, match="cannot be split"):
        tn.Net([L.Dense(12, 16), layer, L.Dense(16, 3)], workers=2)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_workers(workers):
    with pytest.raises(ValueError, match="workers"):
        tn.Net([L.Dense(2, 2)], workers=workers)


def test_backward_must_follow_a_forward_of_the_same_rows():
    net = mlp(2)
    net.forward(np.ones((8, 12)))
    with pytest.raises(ValueError, match="rows"):
        net._split.backward(np.ones((6, 3)), False)


OPTIMIZERS = [
    lambda: optim.SGD(lr=0.1, weight_decay=0.01, maximize=True),
    lambda: optim.SGDm(lr=0.1, momentum=0.9, nesterov=True),
    lambda: optim.SGDm(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.1),
    lambda: optim.Adagrad(lr=0.1),
    lambda: optim.RMSProp(lr=0.01),
    lambda: optim.Adam(lr=1e-2, amsgrad=True, weight_decay=0.1),
    lambda: optim.AdamW(lr=1e-2),
]


@pytest.mark.parametrize("make", OPTIMIZERS)
@pytest.mark.parametrize("workers", [2, 3])
def test_sharded_step_is_bit_identical(make, workers):
    rng = np.random.default_rng(0)
    p1 = rng.standard_normal(1001).astype(np.float32)
    p2 = p1.copy()
    one, sharded = make(), make()
    for _ in range(5):
        g = rng.standard_normal(1001).astype(np.float32)
        one.step(p1, g)
        parallel.optimizer_step(sharded, p2, g, workers)
        np.testing.assert_array_equal(p1, p2)  # bit for bit: elementwise, each element sees the same operations
    assert sharded.t == one.t == 5
    for name, value in one.state_dict().items():
        np.testing.assert_array_equal(value, sharded.state_dict()[name])


def test_an_optimizer_that_is_not_elementwise_steps_whole():
    seen = []

    class Norm(optim.SGD):
        elementwise = False

        def compute_step(self, g, out):
            seen.append(g.size)
            super().compute_step(g, out)

    p, g = np.ones(100, np.float32), np.ones(100, np.float32)
    opt = Norm(lr=0.1)
    for _ in range(3):
        parallel.optimizer_step(opt, p, g, 2)
    assert seen == [100, 100, 100]


class GlobalNorm(optim.SGD):
    """SGD on the gradient scaled to unit global norm: one coordinate's step depends on all of them."""

    def compute_step(self, g, out):
        np.multiply(g, self.lr / float(np.linalg.norm(g)), out=out)


def test_elementwise_is_declared_not_inherited():
    assert all(cls.is_elementwise() for cls in tn.optim.OPTIMIZERS.values())
    assert not GlobalNorm.is_elementwise()  # overrides compute_step without declaring anything
    assert not optim.Optimizer.is_elementwise()

    class Declared(GlobalNorm):
        elementwise = True  # a (false) claim, but an explicit one: trusted

    class Renamed(optim.Adam):  # only defaults change: the math is Adam's, the claim stands
        def __init__(self, lr=0.5):
            super().__init__(lr=lr)

    assert Declared.is_elementwise() and Renamed.is_elementwise()
    with pytest.raises(TypeError, match="not elementwise"):
        GlobalNorm(lr=0.1).shard(np.zeros(4, np.float32), slice(0, 2))


def test_a_global_norm_optimizer_under_two_workers_equals_one():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((128, 12)).astype(np.float32)
    y = (x[:, :3].argmax(1)).astype(np.int64)
    params = {}
    for workers in (1, 2):
        tn.seed(2)
        net = mlp(workers, np.float32)
        model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), GlobalNorm(lr=0.05))
        model.fit(x, y, epochs=2, batch_size=64, verbose=0, shuffle=False)
        params[workers] = net.params.copy()
    # Only the rounding of the chunks' gradient sums differs (float32); sharded, each half would be
    # scaled by its own norm and the parameters would drift far beyond this tolerance.
    np.testing.assert_allclose(params[2], params[1], rtol=1e-5, atol=1e-6)


def test_an_error_in_a_worker_reaches_the_caller():
    def boom():
        raise RuntimeError("in a worker")

    with pytest.raises(RuntimeError, match="in a worker"):
        parallel.run([lambda: 1, boom])
    assert parallel.run([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]


def test_blas_threads_are_restored():
    if parallel._OPENBLAS is None:
        pytest.skip("numpy's OpenBLAS not found: blas_threads is a no-op")
    _, get = parallel._OPENBLAS
    before = get()
    with parallel.blas_threads(1):
        assert get() == 1
    assert get() == before


def test_fit_with_two_workers_learns_like_one_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 12)).astype(np.float32)
    y = (x[:, :3].argmax(1)).astype(np.int64)
    params, accuracy = {}, {}
    for workers in (1, 2, 2):
        net = mlp(workers, np.float32)
        model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), optim.Adam(lr=1e-2))
        tn.seed(1)
        model.fit(x, y, epochs=5, batch_size=64, verbose=0)
        if workers in params:
            np.testing.assert_array_equal(params[workers], net.params)  # same seed, same result
        params[workers], accuracy[workers] = net.params.copy(), model.evaluate(x, y)["accuracy"]
    assert accuracy[2] > 0.85 and abs(accuracy[2] - accuracy[1]) < 0.02
    np.testing.assert_allclose(params[2], params[1], atol=1e-3)  # only the rounding of chunk sums differs
    net.free_scratch()
    assert all(not layer._scratch for layers, _ in net._split.replicas for layer in layers)


def test_workers_survive_a_config_round_trip_and_bad_values_are_refused():
    net = tn.Net([tn.layers.Dense(3, 2), tn.layers.ReLU()], workers=2)
    assert tn.Net.from_config(net.get_config()).workers == 2
    assert "workers" not in tn.Net([tn.layers.Dense(3, 2)]).get_config()  # old configs stay as they were
    for bad in (0, 9, "2", 2.0, True):
        with pytest.raises(ValueError, match="workers"):
            tn.Net.from_config({**net.get_config(), "workers": bad})
