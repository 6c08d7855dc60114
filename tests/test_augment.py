"""Data augmentation: RandomShift's output, its seeded draws, fit(augment=...) and bit-identical resume with it."""

from __future__ import annotations

import numpy as np
import pytest

import tinynn as tn
from tinynn import runs, zoo
from tinynn.data import RandomShift
from tinynn.layers import Dense, ReLU


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image`` (..., h, w) moved down by dy and right by dx, zeros shifted in: the definition, pixel by pixel."""
    h, w = image.shape[-2:]
    out = np.zeros_like(image)
    for r in range(h):
        for c in range(w):
            if 0 <= r - dy < h and 0 <= c - dx < w:
                out[..., r, c] = image[..., r - dy, c - dx]
    return out


@pytest.mark.parametrize("shape, image_shape", [((40, 6 * 5), (6, 5)), ((40, 3, 6, 5), None), ((40, 6, 5), None)])
def test_each_image_is_its_input_shifted_by_a_drawn_offset(shape, image_shape):
    rng = np.random.default_rng(0)
    x = rng.random(shape).astype(np.float32) + 1  # no zeros: every shift is told apart by its zero border
    tn.seed(1)
    y = RandomShift(2, image_shape)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    images, outs = x.reshape(len(x), -1, 6, 5), y.reshape(len(x), -1, 6, 5)
    offsets = []
    for image, out in zip(images, outs, strict=True):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if np.array_equal(out, shifted(image, dy, dx))]
        assert len(found) == 1, "each output must be its input moved by one offset within +-2 (channels alike)"
        offsets += found
    assert len(set(offsets)) > 10, "the offsets are drawn per image"
    tn.seed(1)  # the draws come from tinynn's seeded generator: same seed, same batch
    assert np.array_equal(RandomShift(2, image_shape)(x), y)
    assert not np.array_equal(RandomShift(2, image_shape)(x), y)  # and the next call draws anew


def test_zero_shift_is_a_copy_that_draws_nothing():
    x = np.arange(12.0).reshape(3, 4)
    tn.seed(0)
    y = RandomShift(0, (2, 2))(x)
    assert np.array_equal(y, x) and y is not x
    after = tn.get_rng().random()
    tn.seed(0)
    assert tn.get_rng().random() == after


def test_bad_arguments_and_batches_are_named():
    with pytest.raises(ValueError, match="max_shift"):
        RandomShift(-1)
    with pytest.raises(ValueError, match="image_shape"):
        RandomShift(1, (28,))
    with pytest.raises(ValueError, match=r"expected \(batch, 784\)"):
        RandomShift(1, (28, 28))(np.zeros((2, 780), np.float32))
    with pytest.raises(ValueError, match="height, width"):
        RandomShift(1)(np.zeros((2, 780), np.float32))
    with pytest.raises(TypeError, match="augment"):
        tn.data.BatchIterator(10, augment=3)


@pytest.fixture(scope="module")
def mnist_small():
    (x, y), (xt, yt) = tn.data.load_mnist(dtype=np.uint8)
    return x[:600].copy(), y[:600].copy(), xt[:200].copy(), yt[:200].copy()


def fit(data, epochs, augment, **kw):
    x, y, xt, yt = data
    tn.seed(5)
    model = tn.Model(tn.Net([Dense(784, 32), ReLU(), Dense(32, 10)]), tn.losses.SoftmaxCrossEntropy(),
                     tn.optim.Adam(lr=3e-3))  # fmt: skip
    model.fit(x, y, epochs=epochs, batch_size=100, validation_data=(xt, yt), verbose=0, augment=augment, **kw)
    return model


def test_fit_trains_on_augmented_batches_and_validates_on_the_data(mnist_small):
    seen = []

    def record(xb):
        seen.append(xb.copy())
        return xb

    plain = fit(mnist_small, 1, None)
    same = fit(mnist_small, 1, record)
    assert len(seen) == 6 and all(xb.shape == (100, 784) and xb.dtype == np.float32 for xb in seen)
    assert max(xb.max() for xb in seen) == 1.0  # scaled before augment sees it
    assert np.array_equal(same.net.params, plain.net.params)  # an identity augment changes nothing
    shifted = fit(mnist_small, 1, RandomShift(2, zoo.IMAGE_SHAPE))
    assert not np.array_equal(shifted.net.params, plain.net.params)  # the shifted batches are what trains
    assert shifted.history.history["val_loss"] != plain.history.history["val_loss"]


def test_resume_with_augmentation_is_bit_identical(mnist_small, tmp_path):
    """The shifts are drawn from the generator the checkpoint saves: stopping after epoch 2 and resuming
    gives the uninterrupted run's parameters bit for bit (the same code path runs both)."""
    augment = RandomShift(2, zoo.IMAGE_SHAPE)
    full = fit(mnist_small, 3, augment)
    fit(mnist_small, 2, augment, checkpoint_path=tmp_path / "c.npz")
    tn.seed(99)
    resumed = tn.Model.load(tmp_path / "c.npz")
    x, y, xt, yt = mnist_small
    resumed.fit(x, y, epochs=3, initial_epoch=2, batch_size=100, validation_data=(xt, yt), verbose=0, augment=augment)
    assert np.array_equal(resumed.net.params, full.net.params)


def test_the_cnn_trains_with_shifts_by_default_and_the_mlp_without():
    cnn = runs.parse_run_options(["--model", "cnn"])
    assert cnn.random_shift == zoo.TRAIN_DEFAULTS["cnn"]["random_shift"] >= 1
    assert runs.parse_run_options(["--model", "cnn", "--random-shift", "0"]).random_shift == 0
    assert runs.parse_run_options([]).random_shift == 0
    with pytest.raises(ValueError, match="random-shift"):
        runs.parse_run_options(["--random-shift", "-1"])


def test_a_run_recorded_before_random_shift_reads_as_without_shifts(tmp_path):
    options = {k: v for k, v in vars(runs.parse_run_options([])).items() if k in runs.RUN_OPTIONS}
    del options["random_shift"]
    runs.write_json(tmp_path / runs.RUN_FILE, {"options": options, "status": "interrupted"})
    assert runs.read_run(tmp_path)["options"]["random_shift"] == 0
