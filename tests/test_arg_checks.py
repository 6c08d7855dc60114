"""Every optimizer and scheduler argument passes one rule per kind (tinynn.checks): the constructor a user
calls and the checkpoint loader refuse the same values, and a scheduler never sets an lr that is not a finite
number >= 0."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import tinynn as tn
from tinynn.optim import SGD, Adagrad, Adam, AdamW, RMSProp, SGDm, lr_scheduler

nan, inf = math.nan, math.inf


@pytest.mark.parametrize(
    "cls, kwargs, error, word",
    [
        (SGD, {"lr": "0.1"}, TypeError, "SGD: lr must be a number, got '0.1'"),
        (SGD, {"lr": nan}, ValueError, "lr"),
        (SGD, {"lr": inf}, ValueError, "lr"),
        (SGD, {"lr": -0.1}, ValueError, "lr"),
        (SGD, {"lr": True}, TypeError, "lr"),
        (SGD, {"maximize": "false"}, TypeError, "maximize must be True or False"),
        (SGD, {"maximize": 0}, TypeError, "maximize"),
        (SGD, {"weight_decay": nan}, ValueError, "weight_decay"),
        (SGD, {"weight_decay": inf}, ValueError, "weight_decay"),
        (SGDm, {"momentum": nan}, ValueError, "momentum"),
        (SGDm, {"nesterov": "yes"}, TypeError, "nesterov"),
        (SGDm, {"dampening": nan}, ValueError, "dampening"),
        (Adam, {"betas": (nan, 0.999)}, ValueError, r"betas\[0\]"),
        (Adam, {"betas": 0.9}, TypeError, "betas"),
        (Adam, {"eps": inf}, ValueError, "eps"),
        (Adam, {"amsgrad": "false"}, TypeError, "amsgrad"),
        (AdamW, {"weight_decay": "0.01"}, TypeError, "weight_decay"),
        (RMSProp, {"alpha": nan}, ValueError, "alpha"),
        (RMSProp, {"centered": 1}, TypeError, "centered"),
        (Adagrad, {"lr_decay": nan}, ValueError, "lr_decay"),
        (Adagrad, {"initial_accumulator_value": inf}, ValueError, "initial_accumulator_value"),
    ],
)
def test_optimizer_arguments(cls, kwargs, error, word):
    with pytest.raises(error, match=word):
        cls(**kwargs)
    config = {**cls().get_config(), **kwargs}
    with pytest.raises(error, match=word):  # the rebuild from a saved config: the same rule
        cls.from_config(config)


SCHEDULER_CASES = [
    (lambda o: lr_scheduler.StepLR(o, step_size=2.5), "step_size"),
    (lambda o: lr_scheduler.StepLR(o, step_size=True), "step_size"),
    (lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=nan), "gamma"),
    (lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=-0.5), "gamma"),
    (lambda o: lr_scheduler.MultiStepLR(o, [2.5]), "milestones"),
    (lambda o: lr_scheduler.MultiStepLR(o, [2], gamma=inf), "gamma"),
    (lambda o: lr_scheduler.ExponentialLR(o, gamma=nan), "gamma"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=2.9), "T_max"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=-5), "eta_min"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=nan), "eta_min"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=nan), "start_factor"),
    (lambda o: lr_scheduler.LinearLR(o, total_iters=5.5), "total_iters"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=inf), "min_lr"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=1.5), "patience"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=nan), "factor"),
]


@pytest.mark.parametrize("make, word", SCHEDULER_CASES)
def test_scheduler_arguments(make, word):
    with pytest.raises(ValueError, match=word):
        make(SGD(lr=0.1))


def _checkpoint(tmp_path, sched_config=None, sched_state=None, optim_config=None):
    """A saved model (SGD + CosineAnnealingLR), with entries replaced as a hand-edited file would."""
    opt = SGD(lr=0.1)
    model = tn.Model(tn.Net([tn.layers.Dense(2, 2)]), tn.losses.MSE(), opt)
    model.scheduler = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as z:
        arrays = dict(z)
    if sched_config is not None:
        arrays["sched_config"] = np.array(json.dumps({"type": "CosineAnnealingLR", "config": sched_config}))
    for key, value in (sched_state or {}).items():
        arrays[f"sched_state/{key}"] = np.array(value)
    if optim_config is not None:
        arrays["optim_config"] = np.array(json.dumps({"type": "SGD", "config": {**opt.get_config(), **optim_config},
                                                      "decay_mask": False}))  # fmt: skip
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "edit, word",
    [
        ({"sched_config": {"T_max": 2.9, "eta_min": 0.0}}, "T_max"),
        ({"sched_config": {"T_max": True, "eta_min": 0.0}}, "T_max"),
        ({"sched_config": {"T_max": 10, "eta_min": -5}}, "eta_min"),
        ({"sched_state": {"base_lr": inf}}, "base_lr"),
        ({"sched_state": {"base_lr": nan}}, "base_lr"),
        ({"optim_config": {"maximize": "false"}}, "maximize"),
        ({"optim_config": {"lr": "0.1"}}, "lr"),
        ({"optim_config": {"weight_decay": nan}}, "weight_decay"),
    ],
)
def test_the_loader_refuses_what_the_constructors_refuse(tmp_path, edit, word):
    path = _checkpoint(tmp_path, **edit)
    with pytest.raises(ValueError, match=f"cannot load checkpoint .*{word}"):
        tn.Model.load(path)


def test_a_scheduler_never_sets_a_bad_lr():
    opt = SGD(lr=0.1)
    sched = lr_scheduler.ExponentialLR(opt, gamma=10.0)
    for _ in range(300):  # 0.1 * 10**300 is finite, 10**310 is not
        if sched.last_epoch == 307:
            break
        sched.step()
    with pytest.raises(ValueError, match="ExponentialLR at step 3.*lr must be a finite number"):
        for _ in range(10):
            sched.step()
    assert math.isfinite(opt.lr)


def test_sgd_with_a_string_lr_is_a_clear_type_error():
    with pytest.raises(TypeError, match=r"^SGD: lr must be a number, got '0.1' \(str\)$"):
        SGD(lr="0.1")
