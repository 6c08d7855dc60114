"""tinynn.optim.lr_scheduler: torch-golden lr sequences, resume, validation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tinynn.optim import SGD, Adam, lr_scheduler

GOLDEN = Path(__file__).parent / "golden" / "optim_lr_schedulers.npz"


def golden_cases() -> list:
    with np.load(GOLDEN, allow_pickle=False) as f:
        cases = json.loads(str(f["cases"]))
    return [
        pytest.param(i, case, id=f"{case['scheduler']}-" + ",".join(f"{k}={v}" for k, v in case["kwargs"].items()))
        for i, case in enumerate(cases)
    ]


@pytest.mark.parametrize("index, case", golden_cases())
def test_matches_torch_sequence(index: int, case: dict) -> None:
    with np.load(GOLDEN, allow_pickle=False) as f:
        expected = f[f"lrs_{index}"]
    opt = SGD(lr=case["base_lr"])
    kwargs = dict(case["kwargs"])
    if case["scheduler"] == "SequentialLR":
        kwargs["schedulers"] = [getattr(lr_scheduler, name)(opt, **kw) for name, kw in kwargs["schedulers"]]
    sched = getattr(lr_scheduler, case["scheduler"])(opt, **kwargs)
    metrics = case.get("metrics")
    got = [opt.lr]
    for i in range(len(expected) - 1):
        sched.step(*([metrics[i]] if metrics else []))
        got.append(opt.lr)
        assert sched.get_last_lr() == opt.lr
    # torch updates lr multiplicatively step by step; ours is the closed form: equal up to rounding
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_golden_covers_every_scheduler() -> None:
    with np.load(GOLDEN, allow_pickle=False) as f:
        names = {case["scheduler"] for case in json.loads(str(f["cases"]))}
    assert names == set(lr_scheduler.SCHEDULERS)


def test_closed_forms_by_hand() -> None:
    opt = SGD(lr=1.0)
    assert [lr_scheduler.StepLR(SGD(lr=1.0), 2, 0.5).lr_at(e) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    assert lr_scheduler.MultiStepLR(opt, [3, 1], 0.1).lr_at(2) == pytest.approx(0.1)
    assert lr_scheduler.ExponentialLR(SGD(lr=2.0), 0.5).lr_at(3) == 0.25
    cos = lr_scheduler.CosineAnnealingLR(SGD(lr=1.0), T_max=4, eta_min=0.2)
    assert [cos.lr_at(e) for e in (0, 2, 4, 8)] == pytest.approx([1.0, 0.6, 0.2, 1.0])
    warm = lr_scheduler.LinearWarmup(SGD(lr=0.3))
    assert [warm.lr_at(e) for e in (0, 5, 9)] == pytest.approx([0.1, 0.3, 0.3])


def test_construction_applies_epoch_zero_and_base_lr() -> None:
    opt = Adam(lr=0.03)
    sched = lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3)
    assert sched.base_lr == 0.03 and sched.last_epoch == 0
    assert opt.lr == pytest.approx(0.003)
    for _ in range(3):
        sched.step()
    assert opt.lr == pytest.approx(0.03) and sched.last_epoch == 3


def test_scheduler_lr_reaches_the_update() -> None:
    opt = SGD(lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    p = np.zeros(2)
    for _ in range(3):
        opt.step(p, np.ones(2))
        sched.step()
    np.testing.assert_allclose(p, -(1 + 0.5 + 0.25))


@pytest.mark.parametrize(
    "make",
    [
        lambda o: lr_scheduler.StepLR(o, 3, 0.5),
        lambda o: lr_scheduler.MultiStepLR(o, [2, 5, 7], 0.3),
        lambda o: lr_scheduler.ExponentialLR(o, 0.9),
        lambda o: lr_scheduler.CosineAnnealingLR(o, 6, 0.001),
        lambda o: lr_scheduler.LinearLR(o, 0.2, 0.9, 4),
    ],
)
def test_state_dict_resume(make, tmp_path: Path) -> None:
    a = make(SGD(lr=0.1))
    for _ in range(4):
        a.step()
    np.savez(tmp_path / "s.npz", **a.state_dict())
    opt_b = SGD(lr=0.5)  # wrong lr on purpose: the state dict must restore base_lr and lr
    b = type(a).from_config(json.loads(json.dumps(a.get_config())), opt_b)
    with np.load(tmp_path / "s.npz", allow_pickle=False) as f:
        b.load_state_dict(dict(f))
    assert repr(a) == repr(b) and opt_b.lr == a.optimizer.lr
    for _ in range(6):
        a.step()
        b.step()
        assert a.optimizer.lr == opt_b.lr


def test_linear_warmup_is_linear_lr() -> None:
    assert lr_scheduler.LinearWarmup is lr_scheduler.LinearLR
    assert lr_scheduler.LinearWarmup(SGD(lr=0.3)).optimizer.lr == pytest.approx(0.1)


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda o: lr_scheduler.StepLR(o, 0), "step_size"),
        (lambda o: lr_scheduler.CosineAnnealingLR(o, 0), "T_max"),
        (lambda o: lr_scheduler.LinearLR(o, start_factor=0.0), "start_factor"),
        (lambda o: lr_scheduler.LinearLR(o, end_factor=1.5), "end_factor"),
        (lambda o: lr_scheduler.LinearLR(o, total_iters=0), "total_iters"),
    ],
)
def test_bad_arguments(make, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        make(SGD())


def test_cosine_is_periodic_like_torch() -> None:
    sched = lr_scheduler.CosineAnnealingLR(SGD(lr=1.0), T_max=5)
    assert sched.lr_at(5) == pytest.approx(0.0, abs=1e-15)
    assert sched.lr_at(7) == pytest.approx((1 + math.cos(math.pi * 7 / 5)) / 2)
    assert sched.lr_at(10) == pytest.approx(1.0)


def test_sequential_and_plateau_resume_from_config_and_state(tmp_path: Path) -> None:
    opt = SGD(lr=0.1)
    warm = lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3)
    seq = lr_scheduler.SequentialLR(opt, [warm, lr_scheduler.CosineAnnealingLR(opt, T_max=8)], milestones=[3])
    for _ in range(5):
        seq.step()
    opt_b = SGD(lr=7.0)
    b = lr_scheduler.SequentialLR.from_config(json.loads(json.dumps(seq.get_config())), opt_b)
    b.load_state_dict(seq.state_dict())
    assert opt_b.lr == opt.lr and repr(b) == repr(seq)
    for _ in range(6):
        seq.step()
        b.step()
        assert opt_b.lr == opt.lr

    plateau = lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1)
    for metric in (1.0, 0.9, 0.95, 0.97):
        plateau.step(metric)
    assert opt.lr < 0.1 and plateau.cooldown_counter == 1
    c = lr_scheduler.ReduceLROnPlateau.from_config(plateau.get_config(), opt_c := SGD(lr=1.0))
    np.savez(tmp_path / "p.npz", **plateau.state_dict())
    with np.load(tmp_path / "p.npz", allow_pickle=False) as f:
        c.load_state_dict(dict(f))
    assert opt_c.lr == opt.lr
    for metric in (0.99, 0.99, 0.99, 0.5, 0.6, 0.7):
        plateau.step(metric)
        c.step(metric)
        assert opt_c.lr == opt.lr


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda o: lr_scheduler.SequentialLR(o, [], []), "at least one"),
        (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(o, 2)], [3]), "need 0 milestones"),
        (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(o, 2)] * 2, [0]), "increasing positive"),
        (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(SGD(), 2)], []), "different optimizer"),
        (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.ReduceLROnPlateau(o)], []), "closed-form"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), "factor"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="up"), "mode"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="x"), "threshold_mode"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=-1), "patience"),
    ],
)
def test_composite_bad_arguments(make, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        make(SGD(lr=0.1))
