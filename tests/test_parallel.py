"""tinynn.parallel: the batch split over threads and the sharded optimizer step."""

from __future__ import annotations

import numpy as np
import pytest

import tinynn as tn
from tinynn import blas, optim, parallel
from tinynn import layers as L


def mlp(workers: int | None, dtype=np.float64) -> tn.Net:
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
    # and again with a different batch size: scratch arrays and the gradient sum start afresh
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
    if not blas.found():
        pytest.skip("numpy's OpenBLAS not found: blas_threads is a no-op")
    before = blas.blas_thread_count()
    with parallel.blas_threads(1):
        assert blas.blas_thread_count() == 1
    assert blas.blas_thread_count() == before


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


# --- the automatic choice (workers=None, the default) -----------------------------------------

# What auto_workers may use on this machine and thread count (CI runs 1 and 2 BLAS threads).
AUTO = min(parallel.blas_thread_count(), parallel.usable_cores(), parallel.AUTO_MAX_WORKERS)


def small_cnn(**kwargs) -> tn.Net:
    tn.seed(0)  # 16x16 images: at 64 rows the layers keep 1.4 MiB, above AUTO_MIN_HELD
    return tn.Net([L.Conv2D(1, 4, 3, padding=1), L.MaxPool2D(2), L.ReLU(), L.Flatten(), L.Dense(256, 3)], **kwargs)


def train_batch(net: tn.Net, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    first = net.layers[0]
    shape = (rows, 1, 16, 16) if isinstance(first, L.Conv2D) else (rows, first.in_features)
    out = net.forward(rng.standard_normal(shape))
    net.backward(np.ones_like(out))


def test_auto_splits_a_conv_net_once_its_first_training_batch_has_run():
    net = small_cnn()
    assert net.workers == 1 and net._split is None  # nothing decided before a training batch
    net.eval()
    net.forward(np.zeros((64, 1, 16, 16)))
    assert net._split is None  # an inference batch decides nothing
    net.train()
    train_batch(net, 64)
    assert net.workers == AUTO
    assert net.get_config().get("workers", 1) == AUTO  # recorded: a checkpoint resumes with the same split
    one = small_cnn(workers=1)
    train_batch(net, 64, seed=1), train_batch(one, 64, seed=1)
    np.testing.assert_allclose(net.grads, one.grads, rtol=1e-4, atol=1e-6)  # float32, another summation order


def test_auto_leaves_dense_nets_small_batches_row_mixing_layers_and_the_textbook_path_whole():
    for net, rows in [
        (mlp(None, np.float32), 128),  # a tiny net: too little work to share out
        (tn.Net([L.Dense(784, 256), L.ReLU(), L.Dense(256, 10)]), 128),  # little kept per row per parameter
        (small_cnn(), 16),  # too few rows to share out: nothing is decided yet
        (small_cnn(fast=False), 128),  # the textbook path stays on one thread
    ]:
        train_batch(net, rows)
        assert net.workers == 1 and net._split is None and "workers" not in net.get_config()
    train_batch(net := small_cnn(), 16)
    train_batch(net, 64)  # the first batch large enough decides
    assert net.workers == AUTO
    tn.seed(0)
    net = tn.Net([L.Conv2D(1, 4, 3), L.Dropout(0.5), L.Flatten(), L.Dense(784, 3)])  # no error: it runs whole
    net.forward(np.zeros((64, 1, 16, 16)))
    assert net.workers == 1 and net._split is None


def test_the_automatic_rule_weighs_activations_kept_per_row_against_parameters():
    def held_per_row_per_param(net: tn.Net, x: np.ndarray) -> float:
        net.forward(x)
        return sum(layer.scratch_size() for _, layer in net.named_layers()) / len(x) / net.num_params

    conv = held_per_row_per_param(small_cnn(workers=1), np.zeros((64, 1, 16, 16)))
    dense = held_per_row_per_param(tn.Net([L.Dense(784, 256), L.ReLU(), L.Dense(256, 10)], workers=1),
                                   np.zeros((64, 784)))
    assert dense < parallel.AUTO_HELD_PER_PARAM / 4 and conv > 4 * parallel.AUTO_HELD_PER_PARAM  # far from the line


def test_a_run_resumed_from_a_checkpoint_of_an_automatic_net_is_bit_identical(tmp_path):
    # bit for bit: the resumed run takes the same code path (the same split) as the uninterrupted one
    rng = np.random.default_rng(0)
    x = rng.standard_normal((160, 1, 16, 16)).astype(np.float32)
    y = rng.integers(0, 3, 160)

    def model() -> tn.Model:
        return tn.Model(small_cnn(), tn.losses.SoftmaxCrossEntropy(), optim.Adam(lr=1e-2))

    tn.seed(5)
    whole = model()
    whole.fit(x, y, epochs=3, batch_size=64, verbose=0)
    tn.seed(5)
    first = model()
    first.fit(x, y, epochs=1, batch_size=64, verbose=0, checkpoint_path=tmp_path / "ck.npz")
    resumed = tn.Model.load(tmp_path / "ck.npz")
    assert resumed.net.workers == whole.net.workers == AUTO
    resumed.fit(x, y, epochs=3, batch_size=64, verbose=0, initial_epoch=1)
    np.testing.assert_array_equal(resumed.net.params, whole.net.params)
