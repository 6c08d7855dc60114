"""One Registry type for every kind a checkpoint names: custom layers, losses, optimizers and
schedulers save and load once registered; unregistered ones fail to load with a message naming them."""

from __future__ import annotations

import numpy as np
import pytest

import tinynn as tn
from tinynn.registry import Registry


class HalfMSE(tn.losses.Loss):
    """0.5 * mean((p - t)^2), with a settable scale."""

    def __init__(self, scale: float = 0.5) -> None:
        self.scale = scale

    def loss_and_grad(self, preds, targets):
        d = preds - targets.reshape(preds.shape)
        return float(self.scale * np.mean(d * d)), (2 * self.scale / d.size) * d

    def get_config(self):
        return {"scale": self.scale}


class SignSGD(tn.optim.Optimizer):
    """p -= lr * sign(m), m a momentum of the gradient (state: m)."""

    hyperparams = ("lr", "beta")
    elementwise = True

    def __init__(self, lr: float = 0.01, beta: float = 0.9) -> None:
        super().__init__(lr)
        self.beta = beta

    def init_state(self, params):
        return {"m": np.zeros_like(params)}

    def compute_step(self, g, out):
        m = self.state["m"]
        m *= self.beta
        m += (1 - self.beta) * g
        np.sign(m, out=out)
        out *= self.lr


class Halving(tn.optim.lr_scheduler.LRScheduler):
    """lr = base_lr / 2**(epoch // every)."""

    hyperparams = ("every",)

    def __init__(self, optimizer, every: int = 1) -> None:
        self.every = every
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr / 2 ** (epoch // self.every)


@pytest.fixture
def registered():
    kinds = [(tn.losses.LOSSES, HalfMSE), (tn.optim.OPTIMIZERS, SignSGD), (tn.optim.lr_scheduler.SCHEDULERS, Halving)]
    tn.losses.register_loss(HalfMSE)
    tn.optim.register_optimizer(SignSGD)
    tn.optim.lr_scheduler.register_scheduler(Halving)
    yield
    for registry, cls in kinds:
        registry.pop(cls.__name__)


def _trained(tmp_path):
    tn.seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)).astype(np.float32), rng.standard_normal((40, 2)).astype(np.float32)
    opt = SignSGD(lr=0.05, beta=0.8)
    model = tn.Model(tn.Net([tn.layers.Dense(3, 2)]), HalfMSE(scale=0.25), opt)
    model.fit(x, y, epochs=3, batch_size=10, scheduler=Halving(opt, every=2), verbose=0)
    return model, model.save(tmp_path / "custom.npz"), x, y


def test_custom_loss_optimizer_and_scheduler_round_trip(tmp_path, registered):
    model, path, x, y = _trained(tmp_path)
    back = tn.Model.load(path)
    assert type(back.loss) is HalfMSE and back.loss.scale == 0.25
    assert type(back.optimizer) is SignSGD and back.optimizer.beta == 0.8 and back.optimizer.t == model.optimizer.t
    np.testing.assert_array_equal(back.optimizer.state["m"], model.optimizer.state["m"])
    assert type(back.scheduler) is Halving and back.scheduler.every == 2 and back.optimizer.lr == model.optimizer.lr
    # Resuming continues the same run: the same code on the same numbers, so bit-identical.
    state = tn.rng.get_state()  # load restored the saved generator: both continue from it
    model.fit(x, y, epochs=5, initial_epoch=3, batch_size=10, verbose=0)
    tn.rng.set_state(state)
    back.fit(x, y, epochs=5, initial_epoch=3, batch_size=10, verbose=0)
    np.testing.assert_array_equal(back.net.params, model.net.params)


def test_unregistered_classes_fail_to_load_naming_them(tmp_path, registered):
    _, path, _, _ = _trained(tmp_path)
    tn.losses.LOSSES.pop("HalfMSE")
    with pytest.raises(ValueError, match="unknown loss type 'HalfMSE'.*@tn.losses.register_loss"):
        tn.Model.load(path)
    tn.losses.register_loss(HalfMSE)
    tn.optim.OPTIMIZERS.pop("SignSGD")
    with pytest.raises(ValueError, match="'SignSGD' is not a registered optimizer.*register_optimizer"):
        tn.Model.load(path)
    tn.optim.register_optimizer(SignSGD)
    tn.optim.lr_scheduler.SCHEDULERS.pop("Halving")
    with pytest.raises(ValueError, match="'Halving' is not a registered scheduler"):
        tn.Model.load(path)
    tn.optim.lr_scheduler.register_scheduler(Halving)


def test_registry_rules():
    registry = Registry("thing", tn.losses.Loss, "register_thing")
    assert registry.register(HalfMSE) is HalfMSE and registry.register(HalfMSE) is HalfMSE  # again: a no-op
    assert registry.lookup("HalfMSE") is HalfMSE and registry.find("halfmse") is HalfMSE
    with pytest.raises(TypeError, match="register_thing expects a Loss subclass"):
        registry.register(SignSGD)
    other = type("HALFMSE", (tn.losses.Loss,), {})
    with pytest.raises(ValueError, match="a different thing named 'HalfMSE'"):
        registry.register(other)  # the same name in another capitalisation would be ambiguous
    with pytest.raises(ValueError, match="unknown thing type 'Nope'; known: HalfMSE .*@register_thing"):
        registry.lookup("Nope")
    with pytest.raises(ValueError, match="unknown thing 'nope'; known: halfmse"):
        registry.find("nope")


def test_every_kind_uses_the_one_registry_type():
    for registry in (tn.layers.LAYERS, tn.losses.LOSSES, tn.optim.OPTIMIZERS, tn.optim.lr_scheduler.SCHEDULERS):
        assert isinstance(registry, Registry)
        assert all(name == cls.__name__ for name, cls in registry.items())  # one key style: the class name
    assert tn.optim.get("adamw") is not None and tn.optim.names() == sorted(n.lower() for n in tn.optim.OPTIMIZERS)
