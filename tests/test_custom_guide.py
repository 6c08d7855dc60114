"""The classes of docs/custom.md (ELU, GaussianNoise, LowRankDense, NAdam), taken from the page
itself, checked further than the page does: NAdam against torch's algorithm written out
independently, the layers' values and gradients, and exact resume with weight decay and a
per-batch schedule from every epoch boundary."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

import tinynn as tn
from tinynn.optim.lr_scheduler import CosineAnnealingLR

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "custom.md"
CLASSES = ("ELU", "GaussianNoise", "LowRankDense", "NAdam")


@pytest.fixture(scope="module")
def guide(tmp_path_factory: pytest.TempPathFactory):
    """The namespace of docs/custom.md's blocks up to (not including) the MNIST run."""
    blocks = re.findall(r"^```python\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    registries = (tn.layers.LAYERS, tn.losses.LOSSES, tn.optim.OPTIMIZERS, tn.optim.lr_scheduler.SCHEDULERS)
    saved = [dict(r) for r in registries]
    for name in (*CLASSES, "MLPBlock"):  # a page run earlier in this process registered its own classes
        tn.layers.LAYERS.pop(name, None)
    namespace: dict = {"__name__": "__guide__"}
    mp = pytest.MonkeyPatch()
    mp.chdir(tmp_path_factory.mktemp("guide"))  # the blocks write small files
    try:
        for code in blocks:
            if "load_mnist" in code:
                break
            exec(compile(code, str(GUIDE), "exec"), namespace)
        assert all(name in namespace for name in CLASSES), "docs/custom.md no longer defines " + ", ".join(CLASSES)
        yield namespace
    finally:
        mp.undo()
        for registry, before in zip(registries, saved, strict=True):
            registry.clear()
            registry.update(before)


def torch_nadam(p, grads, lr, b1, b2, eps, wd, psi):
    """torch.optim.NAdam's documented algorithm, step by step in float64 (two separate updates)."""
    m, v, mu_product = np.zeros_like(p), np.zeros_like(p), 1.0
    for t, g in enumerate(grads, start=1):
        g = g + wd * p
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        mu_product *= mu
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        denom = np.sqrt(v / (1 - b2**t)) + eps
        p = p - lr * (1 - mu) / (1 - mu_product) * g / denom
        p = p - lr * mu_next / (1 - mu_product * mu_next) * m / denom
    return p


@pytest.mark.parametrize(
    "hyper", [{}, {"lr": 1e-2, "weight_decay": 0.1}, {"betas": (0.8, 0.99), "eps": 1e-6, "momentum_decay": 1e-2}]
)
def test_nadam_follows_torch_algorithm(guide, hyper):
    rng = np.random.default_rng(0)
    p0, grads = rng.normal(size=20), rng.normal(size=(300, 20))
    opt, p = guide["NAdam"](**hyper), p0.copy()
    for g in grads:
        opt.step(p, g)
    h = {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "momentum_decay": 4e-3, **hyper}
    want = torch_nadam(p0, grads, h["lr"], *h["betas"], h["eps"], h["weight_decay"], h["momentum_decay"])
    np.testing.assert_allclose(p, want, rtol=1e-9, atol=1e-12)
    assert opt.t == 300 and opt.state["mu_product"] < 1e-100


def test_elu_values_derivative_and_dtype(guide):
    x = np.array([[-1000.0, -3.0, -1e-9, 0.0, 1e-9, 2.0, 1e4]])
    layer = guide["ELU"](alpha=0.7)
    with np.errstate(over="raise", invalid="raise"):  # exp is never taken of a large positive x
        y = layer.forward(x).copy()
    want = np.where(x > 0, x, 0.7 * np.expm1(np.minimum(x, 0)))
    np.testing.assert_allclose(y, want, rtol=1e-15)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), np.where(x > 0, 1.0, 0.7 * np.exp(np.minimum(x, 0))))
    x32 = x.astype(np.float32)
    assert layer.forward(x32).dtype == layer.backward(np.ones_like(x32)).dtype == np.float32
    with pytest.raises(RuntimeError, match="ELU"):
        guide["ELU"]().backward(x)


def test_a_net_of_the_guide_layers_passes_gradcheck(guide):
    tn.seed(1)
    net = tn.Net(
        [guide["LowRankDense"](6, 5, rank=2), guide["ELU"](alpha=0.5), guide["GaussianNoise"](0.3),
         tn.layers.Dense(5, 3)],
        dtype=np.float64,
    )  # fmt: skip
    report = tn.gradcheck.check_net(net, tn.get_rng().normal(size=(4, 6)))
    assert report.passed, str(report)
    assert set(report) == {"input", *(f"0.LowRankDense.{k}" for k in "uvb"), "3.Dense.w", "3.Dense.b"}


def test_a_layer_name_means_one_class(guide):
    class ELU(tn.layers.Layer):  # same name, another class
        pass

    with pytest.raises(ValueError, match="ELU"):
        tn.layers.register_layer(ELU)
    assert tn.layers.register_layer(guide["ELU"]) is guide["ELU"]  # registering the same one again is fine


@pytest.mark.parametrize("stop", [1, 2])
def test_resume_with_weight_decay_and_a_batch_schedule_is_exact(guide, tmp_path, stop):
    """Stopped after epoch `stop` of 3 and resumed from the checkpoint: the same parameters, bit for bit."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(240, 12)).astype(np.float32), rng.integers(0, 4, 240)
    steps = 3 * math.ceil(240 / 32)

    def make():
        tn.seed(0)
        net = tn.Net([guide["LowRankDense"](12, 16, rank=4), guide["ELU"](), guide["GaussianNoise"](0.2),
                      tn.layers.Dense(16, 4)])  # fmt: skip
        opt = guide["NAdam"](lr=1e-2, weight_decay=1e-3)
        return tn.Model(net, tn.losses.SoftmaxCrossEntropy(), opt), CosineAnnealingLR(opt, T_max=steps)

    def fit(model, epochs, **kw):
        model.fit(x, y, epochs=epochs, batch_size=32, scheduler_interval="batch", validation_data=(x[:64], y[:64]),
                  verbose=0, **kw)  # fmt: skip

    full, sched = make()
    fit(full, 3, scheduler=sched)
    half, sched = make()
    fit(half, stop, scheduler=sched, checkpoint_path=tmp_path / "ckpt.npz")
    resumed = tn.Model.load(tmp_path / "ckpt.npz", optimizer=guide["NAdam"](lr=1e-2, weight_decay=1e-3))
    assert resumed.optimizer.t == half.optimizer.t and resumed.epoch == stop
    # An optimizer passed to load keeps the lr it was given: take the schedule's, as docs/custom.md says.
    resumed.optimizer.lr = resumed.scheduler.get_last_lr()
    assert resumed.optimizer.lr == half.optimizer.lr
    fit(resumed, 3, initial_epoch=stop)
    assert np.array_equal(resumed.net.params, full.net.params)  # resume: the same code path runs, bit for bit
    assert resumed.history.history["val_loss"] == full.history.history["val_loss"]
