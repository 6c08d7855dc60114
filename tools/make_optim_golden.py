"""Write tests/golden/optim_*.npz: torch.optim trajectories that tinynn.optim must reproduce.

Run with torch installed (a dev-time oracle only; the tests never import torch):

    python tools/make_optim_golden.py

Files:
  optim_problems.npz      the two gradient problems (everything needed to recompute grads in numpy)
  optim_<name>.npz        per optimizer: `cases` (JSON), `record_steps`, `traj_<i>` (params at record_steps)
  optim_lr_schedulers.npz `cases` (JSON) and `lrs_<i>` (lr after construction and after each step).
                          A SequentialLR case names its children as [class, kwargs] pairs; a
                          ReduceLROnPlateau case carries the `metrics` fed to step(), one per step.

Problems (float64):
  quadratic  grad(p, t) = A p - b                      A: 20x20 SPD, condition number 100
  noisy      grad(p, t) = D * (A p - b + noise[t])     24 dims, per-coordinate scales D in
                                                        [1e-2, 1e1] like the layers of an MLP
For cases with maximize=True the gradient is negated (grad_sign = -1), so the optimizer still
descends the same problem and the trajectory stays bounded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"
STEPS = 300
RECORD = np.array([1, 2, 3, *range(10, STEPS + 1, 10)])


def spd(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.logspace(lo, hi, n)) @ q.T


def make_problems() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    return {
        "quadratic_A": spd(rng, 20, 0, 2),
        "quadratic_b": rng.standard_normal(20),
        "quadratic_x0": rng.standard_normal(20),
        "noisy_A": spd(rng, 24, -1, 1),
        "noisy_b": rng.standard_normal(24),
        "noisy_D": np.logspace(-2, 1, 24)[rng.permutation(24)],
        "noisy_noise": 0.5 * rng.standard_normal((STEPS, 24)),
        "noisy_x0": rng.standard_normal(24),
    }


def grad(problems: dict[str, np.ndarray], name: str, p: np.ndarray, t: int) -> np.ndarray:
    """Gradient at step t (0-based); the tests carry an identical copy of this function."""
    A, b = problems[f"{name}_A"], problems[f"{name}_b"]
    if name == "quadratic":
        return A @ p - b
    return problems["noisy_D"] * (A @ p - b + problems["noisy_noise"][t])


# tinynn class -> (torch class, extra torch kwargs), and the hyperparameter sets to cover.
CASES: dict[str, list[dict]] = {
    "sgd": [
        {"lr": 0.01},
        {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.005, "maximize": True},
        {"lr": 0.005, "weight_decay": 0.05, "maximize": True},
    ],
    "sgdm": [
        {"lr": 0.005, "momentum": 0.9},
        {"lr": 0.005, "momentum": 0.9, "dampening": 0.5},
        {"lr": 0.005, "momentum": 0.9, "dampening": 0.9},
        {"lr": 0.005, "momentum": 0.8, "nesterov": True},
        {"lr": 0.005, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
        {"lr": 0.005, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.05, "maximize": True},
    ],
    "adagrad": [
        {"lr": 0.1},
        {"lr": 0.3, "lr_decay": 0.01},
        {"lr": 0.1, "initial_accumulator_value": 0.5},
        {"lr": 0.1, "weight_decay": 0.1},
        {"lr": 0.1, "eps": 1e-3, "maximize": True},
        {"lr": 0.2, "lr_decay": 0.05, "initial_accumulator_value": 0.1, "weight_decay": 0.05, "maximize": True},
    ],
    "rmsprop": [
        {"lr": 0.01},
        {"lr": 0.01, "centered": True},
        {"lr": 0.002, "momentum": 0.9},
        {"lr": 0.002, "momentum": 0.9, "centered": True, "alpha": 0.95},
        {"lr": 0.01, "weight_decay": 0.1, "eps": 1e-4},
        {"lr": 0.005, "alpha": 0.98, "momentum": 0.5, "weight_decay": 0.05, "maximize": True},
    ],
    "adam": [
        {"lr": 0.01},
        {"lr": 0.02, "betas": [0.8, 0.99]},
        {"lr": 0.01, "amsgrad": True},
        {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        {"lr": 0.01, "eps": 1e-3, "maximize": True},
        {"lr": 0.01, "betas": [0.5, 0.9], "amsgrad": True, "weight_decay": 0.05, "maximize": True},
    ],
    "adamw": [
        {"lr": 0.01},
        {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True},
        {"lr": 0.02, "betas": [0.8, 0.99], "weight_decay": 0.3, "maximize": True},
    ],
}


def torch_optimizer(name: str, p: torch.Tensor, kwargs: dict) -> torch.optim.Optimizer:
    kw = dict(kwargs)
    if "betas" in kw:
        kw["betas"] = tuple(kw["betas"])
    if name == "sgd":
        return torch.optim.SGD([p], **kw)
    if name == "sgdm":
        return torch.optim.SGD([p], **kw)
    cls = {
        "adagrad": torch.optim.Adagrad,
        "rmsprop": torch.optim.RMSprop,
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
    }[name]
    return cls([p], **kw)


def trajectory(
    problems: dict, opt_name: str, problem: str, kwargs: dict, sign: float, nudge: float = 0.0
) -> np.ndarray:
    x0 = problems[f"{problem}_x0"] * (1 + nudge)
    p = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = torch_optimizer(opt_name, p, kwargs)
    out = []
    for t in range(STEPS):
        g = sign * grad(problems, problem, p.detach().numpy(), t)
        p.grad = torch.from_numpy(g)
        opt.step()
        if t + 1 in RECORD:
            out.append(p.detach().numpy().copy())
    return np.array(out)


def check_not_chaotic(traj: np.ndarray, nudged: np.ndarray, label: str) -> None:
    """A golden case is only useful if rounding-level differences stay rounding-level.

    Adaptive methods that hover around the optimum of a noiseless problem can amplify a
    1e-16 difference exponentially; such a trajectory would make a 1e-6 comparison a coin flip.
    """
    err = np.max(np.abs(traj - nudged) / np.maximum(np.abs(traj), 1e-8))
    if err > 1e-8:
        raise SystemExit(f"chaotic golden case (a 1e-13 nudge grows to {err:.1e}): {label}")


SCHEDULERS = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("StepLR", {"step_size": 10}),
    ("MultiStepLR", {"milestones": [5, 12, 13], "gamma": 0.3}),
    ("MultiStepLR", {"milestones": [30, 10]}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 10}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}),
    ("LinearLR", {}),
    ("LinearLR", {"start_factor": 0.1, "total_iters": 10}),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 8}),
    # warmup then cosine; constant-ish then exponential; three stages
    ("SequentialLR", {"schedulers": [["LinearLR", {"start_factor": 0.01, "total_iters": 5}],
                                     ["CosineAnnealingLR", {"T_max": 30, "eta_min": 0.001}]], "milestones": [5]}),
    ("SequentialLR", {"schedulers": [["StepLR", {"step_size": 2, "gamma": 0.5}],
                                     ["ExponentialLR", {"gamma": 0.9}]], "milestones": [7]}),
    ("SequentialLR", {"schedulers": [["LinearLR", {"start_factor": 0.1, "total_iters": 3}],
                                     ["MultiStepLR", {"milestones": [4, 8], "gamma": 0.5}],
                                     ["CosineAnnealingLR", {"T_max": 10}]], "milestones": [3, 15]}),
    ("ReduceLROnPlateau", {}),
    ("ReduceLROnPlateau", {"factor": 0.5, "patience": 2}),
    ("ReduceLROnPlateau", {"factor": 0.5, "patience": 1, "threshold": 0.05, "threshold_mode": "abs", "cooldown": 2}),
    ("ReduceLROnPlateau", {"mode": "max", "factor": 0.3, "patience": 0, "threshold": 0.01, "min_lr": 0.005}),
    ("ReduceLROnPlateau", {"factor": 0.5, "patience": 0, "eps": 0.02}),
]


def plateau_metrics(steps: int = 40, maximize: bool = False) -> list[float]:
    """A loss that falls, stalls, wobbles and falls again (rounded so the JSON is exact)."""
    rng = np.random.default_rng(7)
    t = np.arange(steps)
    loss = 1.0 / (1 + 0.3 * t) + 0.2 * (t > 20) * -0.3 + 0.03 * rng.standard_normal(steps)
    loss[10:18] = loss[10]  # a flat stretch
    values = 1.0 - loss if maximize else loss
    return [round(float(v), 6) for v in values]


def lr_sequence(
    cls_name: str, kwargs: dict, base_lr: float = 0.1, steps: int = 40, metrics: list[float] | None = None
) -> np.ndarray:
    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    kw = dict(kwargs)
    if cls_name == "SequentialLR":
        kw["schedulers"] = [getattr(torch.optim.lr_scheduler, c)(opt, **k) for c, k in kw["schedulers"]]
    sched = getattr(torch.optim.lr_scheduler, cls_name)(opt, **kw)
    lrs = [opt.param_groups[0]["lr"]]
    for i in range(steps):
        opt.step()
        sched.step(*([metrics[i]] if metrics is not None else []))
        lrs.append(opt.param_groups[0]["lr"])
    return np.array(lrs, dtype=np.float64)


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    problems = make_problems()
    np.savez_compressed(GOLDEN / "optim_problems.npz", **problems)
    for opt_name, sets in CASES.items():
        cases, arrays = [], {}
        for problem in ("quadratic", "noisy"):
            for kwargs in sets:
                sign = -1.0 if kwargs.get("maximize") else 1.0
                traj = trajectory(problems, opt_name, problem, kwargs, sign)
                check_not_chaotic(
                    traj, trajectory(problems, opt_name, problem, kwargs, sign, 1e-13), f"{opt_name} {problem} {kwargs}"
                )
                arrays[f"traj_{len(cases)}"] = traj
                cases.append({"optimizer": opt_name, "problem": problem, "kwargs": kwargs, "grad_sign": sign})
        np.savez_compressed(GOLDEN / f"optim_{opt_name}.npz", cases=json.dumps(cases), record_steps=RECORD, **arrays)
        print(f"optim_{opt_name}.npz: {len(cases)} cases")
    cases, arrays = [], {}
    for cls_name, kwargs in SCHEDULERS:
        case = {"scheduler": cls_name, "kwargs": kwargs, "base_lr": 0.1}
        if cls_name == "ReduceLROnPlateau":
            case["metrics"] = plateau_metrics(maximize=kwargs.get("mode") == "max")
        arrays[f"lrs_{len(cases)}"] = lr_sequence(cls_name, kwargs, metrics=case.get("metrics"))
        cases.append(case)
    np.savez_compressed(GOLDEN / "optim_lr_schedulers.npz", cases=json.dumps(cases), **arrays)
    print(f"optim_lr_schedulers.npz: {len(cases)} cases; torch {torch.__version__}")


if __name__ == "__main__":
    main()
