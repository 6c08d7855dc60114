"""tinynn.optim: torch-golden trajectories, plain-math steps, dtype, state, validation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tinynn import optim
from tinynn.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSProp, SGDm

GOLDEN = Path(__file__).parent / "golden"
NAMES = ["sgd", "sgdm", "adagrad", "rmsprop", "adam", "adamw"]

# Every option switched on, for tests that should touch every state array and code path.
FULL_OPTIONS = {
    "sgd": {"lr": 0.01, "weight_decay": 0.1},
    "sgdm": {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    "adagrad": {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.1},
    "rmsprop": {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.1},
    "adam": {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1},
    "adamw": {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1},
}


# -- golden trajectories from torch.optim (tools/make_optim_golden.py) ---------------------


def load_problems() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "optim_problems.npz", allow_pickle=False) as f:
        return dict(f)


def golden_grad(problems: dict[str, np.ndarray], name: str, p: np.ndarray, t: int) -> np.ndarray:
    A, b = problems[f"{name}_A"], problems[f"{name}_b"]
    if name == "quadratic":
        return A @ p - b
    return problems["noisy_D"] * (A @ p - b + problems["noisy_noise"][t])


def golden_cases() -> list:
    params = []
    for name in NAMES:
        with np.load(GOLDEN / f"optim_{name}.npz", allow_pickle=False) as f:
            cases = json.loads(str(f["cases"]))
        for i, case in enumerate(cases):
            label = ",".join(f"{k}={v}" for k, v in case["kwargs"].items())
            params.append(pytest.param(name, i, id=f"{name}-{case['problem']}-{label}"))
    return params


@pytest.fixture(scope="module")
def problems() -> dict[str, np.ndarray]:
    return load_problems()


@pytest.mark.parametrize("name, index", golden_cases())
def test_matches_torch_trajectory(problems: dict, name: str, index: int) -> None:
    with np.load(GOLDEN / f"optim_{name}.npz", allow_pickle=False) as f:
        case = json.loads(str(f["cases"]))[index]
        record, expected = f["record_steps"], f[f"traj_{index}"]
    opt = optim.get(name, **case["kwargs"])
    p = problems[f"{case['problem']}_x0"].copy()
    got = []
    for t in range(int(record[-1])):
        opt.step(p, case["grad_sign"] * golden_grad(problems, case["problem"], p, t))
        if t + 1 in record:
            got.append(p.copy())
    np.testing.assert_allclose(np.array(got), expected, rtol=1e-6, atol=1e-10)


def test_golden_covers_every_option() -> None:
    seen: dict[str, set] = {}
    for name in NAMES:
        with np.load(GOLDEN / f"optim_{name}.npz", allow_pickle=False) as f:
            for case in json.loads(str(f["cases"])):
                seen.setdefault(name, set()).update(case["kwargs"])
    for name in NAMES:
        missing = set(optim.get(name).hyperparams) - seen[name] - ({"eps"} if name == "adamw" else set())
        assert not missing, f"{name}: golden cases never set {missing}"


# -- plain math: the update formulas, written out with python floats -----------------------

G = [np.array([0.5, -1.0, 2.0]), np.array([0.25, 0.75, -1.5]), np.array([-0.5, 0.1, 1.0])]
P0 = np.array([1.0, -2.0, 0.5])


def run(opt: Optimizer, steps: int = 3) -> np.ndarray:
    p = P0.copy()
    for g in G[:steps]:
        opt.step(p, g.copy())
    return p


def test_sgd_by_hand() -> None:
    # p1 = p0 - 0.1 (g0 + 0.5 p0); p2 = p1 - 0.1 (g1 + 0.5 p1)
    p1 = P0 - 0.1 * (G[0] + 0.5 * P0)
    p2 = p1 - 0.1 * (G[1] + 0.5 * p1)
    np.testing.assert_allclose(run(SGD(lr=0.1, weight_decay=0.5), 2), p2, rtol=1e-14)
    np.testing.assert_allclose(run(SGD(lr=0.1, maximize=True), 1), [1.05, -2.1, 0.7], rtol=1e-14)


def test_sgdm_by_hand() -> None:
    lr, mu, damp = 0.1, 0.9, 0.5
    b = G[0]  # step 1: the velocity is the gradient itself, undampened
    p = P0 - lr * b
    for g in G[1:]:
        b = mu * b + (1 - damp) * g
        p = p - lr * b
    np.testing.assert_allclose(run(SGDm(lr=lr, momentum=mu, dampening=damp)), p, rtol=1e-14)
    b, p = G[0], P0 - lr * (G[0] + mu * G[0])  # nesterov steps along g + mu b
    for g in G[1:]:
        b = mu * b + g
        p = p - lr * (g + mu * b)
    np.testing.assert_allclose(run(SGDm(lr=lr, momentum=mu, nesterov=True)), p, rtol=1e-14)


def test_adagrad_by_hand() -> None:
    lr, decay, init, eps = 0.1, 0.5, 0.2, 1e-10
    for i in range(3):
        p, s = P0[i], init
        for t, g in enumerate(G, start=1):
            s += g[i] ** 2
            p -= lr / (1 + (t - 1) * decay) * g[i] / (math.sqrt(s) + eps)
        opt = Adagrad(lr=lr, lr_decay=decay, initial_accumulator_value=init)
        assert run(opt)[i] == pytest.approx(p, rel=1e-14)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_rmsprop_by_hand(centered: bool, momentum: float) -> None:
    lr, a, eps = 0.01, 0.9, 1e-8
    got = run(RMSProp(lr=lr, alpha=a, centered=centered, momentum=momentum))
    for i in range(3):
        p, v, ga, b = P0[i], 0.0, 0.0, 0.0
        for g in G:
            v = a * v + (1 - a) * g[i] ** 2
            ga = a * ga + (1 - a) * g[i]
            r = math.sqrt(v - ga**2) if centered else math.sqrt(v)
            b = momentum * b + g[i] / (r + eps)
            p -= lr * b
        assert got[i] == pytest.approx(p, rel=1e-13)


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_by_hand(amsgrad: bool, decoupled: bool) -> None:
    lr, b1, b2, eps, wd = 0.1, 0.8, 0.9, 1e-8, 0.2
    got = run(Adam(lr=lr, betas=(b1, b2), weight_decay=wd, amsgrad=amsgrad, decoupled_weight_decay=decoupled))
    for i in range(3):
        p, m, v, vmax = P0[i], 0.0, 0.0, 0.0
        for t, g in enumerate(G, start=1):
            if decoupled:
                p *= 1 - lr * wd
                gi = g[i]
            else:
                gi = g[i] + wd * p
            m = b1 * m + (1 - b1) * gi
            v = b2 * v + (1 - b2) * gi**2
            vmax = max(vmax, v)
            m_hat, v_hat = m / (1 - b1**t), (vmax if amsgrad else v) / (1 - b2**t)
            p -= lr * m_hat / (math.sqrt(v_hat) + eps)
        assert got[i] == pytest.approx(p, rel=1e-13)


def test_adamw_is_adam_with_decoupled_weight_decay() -> None:
    a = run(AdamW(lr=0.1, weight_decay=0.3))
    b = run(Adam(lr=0.1, weight_decay=0.3, decoupled_weight_decay=True))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, run(Adam(lr=0.1, weight_decay=0.3)))
    assert AdamW().weight_decay == 1e-2


def test_first_adam_step_is_lr_times_sign() -> None:
    # bias correction makes step 1 exactly lr * g / (|g| + eps): the well-known "sign" first step
    p = run(Adam(lr=0.1), 1)
    np.testing.assert_allclose(p, P0 - 0.1 * np.sign(G[0]), rtol=1e-7)


# -- behaviour shared by all optimizers ---------------------------------------------------


def quadratic(n: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (q * np.linspace(1, 10, n)) @ q.T
    b = rng.standard_normal(n)
    return A, b, np.linalg.solve(A, b)


CONVERGE = {
    "sgd": {"lr": 0.1},
    "sgdm": {"lr": 0.02, "momentum": 0.9},
    "adagrad": {"lr": 0.5},
    "rmsprop": {"lr": 0.01},
    "adam": {"lr": 0.05},
    "adamw": {"lr": 0.05, "weight_decay": 0.0},
}


@pytest.mark.parametrize("name", NAMES)
def test_converges_on_convex_quadratic(name: str) -> None:
    A, b, x_star = quadratic()
    opt = optim.get(name, **CONVERGE[name])
    if name == "rmsprop":
        sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.995)  # plain RMSProp hovers at ~lr
    p = np.zeros_like(b)
    for _ in range(1500):
        opt.step(p, A @ p - b)
        if name == "rmsprop":
            sched.step()
    assert np.linalg.norm(p - x_star) < 1e-3 * np.linalg.norm(x_star)


@pytest.mark.parametrize("name", NAMES)
def test_maximize_climbs(name: str) -> None:
    A, b, x_star = quadratic()
    opt = (
        optim.get(name, **CONVERGE[name], maximize=True)
        if name != "adamw"
        else AdamW(lr=0.05, weight_decay=0.0, maximize=True)
    )
    p = np.zeros_like(b)
    for _ in range(300):
        opt.step(p, b - A @ p)  # gradient of -f: maximizing it minimizes f
    assert np.linalg.norm(p - x_star) < 0.1 * np.linalg.norm(x_star)


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32(name: str) -> None:
    opt = optim.get(name, **FULL_OPTIONS[name], maximize=True)
    p = np.linspace(-1, 1, 50, dtype=np.float32)
    for _ in range(5):
        opt.step(p, (0.3 * p + 0.1).astype(np.float32))
    assert p.dtype == np.float32
    for key, value in opt.state.items():
        assert value.dtype == np.float32, key
    assert opt._g.dtype == opt._out.dtype == np.float32
    assert len(opt.state) == {"sgd": 0, "sgdm": 1, "adagrad": 1, "rmsprop": 3, "adam": 3, "adamw": 3}[name]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("maximize", [False, True])
def test_step_does_not_touch_grads(name: str, maximize: bool) -> None:
    opt = optim.get(name, **FULL_OPTIONS[name], maximize=maximize)
    p = np.linspace(-1, 1, 7)
    g = np.linspace(2, 3, 7)
    before = g.copy()
    for _ in range(3):
        opt.step(p, g)
    np.testing.assert_array_equal(g, before)


@pytest.mark.parametrize("name", NAMES)
def test_state_and_scratch_arrays_are_reused(name: str) -> None:
    opt = optim.get(name, **FULL_OPTIONS[name])
    p, g = np.ones(10), np.full(10, 0.5)
    opt.step(p, g)
    arrays = lambda: {k: id(v) for k, v in {**opt.state, "_g": opt._g, "_out": opt._out}.items()}  # noqa: E731
    ids = arrays()
    for _ in range(4):
        opt.step(p, g)
        assert ids == arrays()


@pytest.mark.parametrize("name", NAMES)
def test_lr_is_read_at_every_step(name: str) -> None:
    a, b = optim.get(name, **FULL_OPTIONS[name]), optim.get(name, **FULL_OPTIONS[name])
    pa, pb = P0.copy(), P0.copy()
    a.step(pa, G[0].copy())
    b.step(pb, G[0].copy())
    a.lr = b.lr = 0.5 * a.lr
    a.step(pa, G[1].copy())
    b.step(pb, G[1].copy())
    c = optim.get(name, **FULL_OPTIONS[name])
    pc = P0.copy()
    c.step(pc, G[0].copy())
    c.step(pc, G[1].copy())  # c kept the old lr: must land elsewhere
    np.testing.assert_array_equal(pa, pb)  # the same steps twice: bit for bit
    assert not np.allclose(pa, pc)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_resume_is_bit_identical(name: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((20, 30)).astype(np.float32)
    opt = optim.get(name, **FULL_OPTIONS[name])
    p = rng.standard_normal(30).astype(np.float32)
    for g in grads[:10]:
        opt.step(p, g)
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    saved_p = p.copy()
    for g in grads[10:]:
        opt.step(p, g)

    config = opt.get_config()
    fresh = type(opt).from_config(json.loads(json.dumps(config)))  # hyperparameters: the config
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
        fresh.load_state_dict(dict(f))  # everything that changes per step: the state
    assert fresh.t == 10
    assert repr(fresh) == repr(optim.get(name, **FULL_OPTIONS[name]))
    q = saved_p
    for g in grads[10:]:
        fresh.step(q, g)
    np.testing.assert_array_equal(q, p)  # resume: the same steps, bit for bit
    assert q.dtype == np.float32


def test_state_dict_is_flat_and_copies() -> None:
    opt = Adam(amsgrad=True)
    p = np.ones(4)
    opt.step(p, np.ones(4))
    d = opt.state_dict()
    assert set(d) == {"t", "m", "v", "v_max"}
    assert all(isinstance(v, (int, float, np.ndarray)) for v in d.values())
    d["m"][:] = 123.0  # a snapshot, not a view of the live state
    assert not np.any(opt.state["m"] == 123.0)
    with pytest.raises(ValueError, match="state names"):
        opt.load_state_dict({**d, "momentum": np.ones(4)})
    with pytest.raises(ValueError, match="state names"):
        Adam().load_state_dict(d)  # no v_max without amsgrad
    with pytest.raises(ValueError, match="'v'.*float64 \\(3,\\)"):
        opt.load_state_dict({**d, "v": np.ones(3)})


def test_state_dict_before_first_step() -> None:
    opt = SGDm(lr=0.1)
    fresh = SGDm.from_config(opt.get_config())
    fresh.load_state_dict(opt.state_dict())
    assert fresh.lr == 0.1 and fresh.t == 0 and opt.state_dict() == {"t": 0}
    p = np.ones(3)
    fresh.step(p, np.ones(3))
    np.testing.assert_allclose(p, 0.9)


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, kwargs, word",
    [
        (SGD, {"lr": -1.0}, "lr"),
        (SGD, {"weight_decay": -0.1}, "weight_decay"),
        (SGDm, {"momentum": -0.5}, "momentum"),
        (SGDm, {"momentum": 0.0, "nesterov": True}, "momentum"),
        (SGDm, {"dampening": 0.1, "nesterov": True}, "dampening"),
        (Adagrad, {"lr_decay": -1.0}, "lr_decay"),
        (Adagrad, {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
        (Adagrad, {"eps": 0.0}, "eps"),
        (RMSProp, {"alpha": 1.0}, "alpha"),
        (RMSProp, {"alpha": -0.1}, "alpha"),
        (RMSProp, {"eps": -1e-8}, "eps"),
        (RMSProp, {"momentum": -0.1}, "momentum"),
        (Adam, {"betas": (1.0, 0.999)}, r"betas\[0\]"),
        (Adam, {"betas": (0.9, -0.1)}, r"betas\[1\]"),
        (Adam, {"eps": 0.0}, "eps"),
        (Adam, {"lr": -1e-3}, "lr"),
        (AdamW, {"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_bad_hyperparameters(cls: type, kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        cls(**kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_bad_arrays(name: str) -> None:
    opt = optim.get(name)
    with pytest.raises(ValueError, match=rf"{type(opt).__name__}.*\(3,\).*\(4,\)"):
        opt.step(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="1-D"):
        opt.step(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="float32.*float64"):
        opt.step(np.ones(3, np.float32), np.ones(3))
    with pytest.raises(ValueError, match="float"):
        opt.step(np.ones(3, int), np.ones(3, int))
    with pytest.raises(TypeError):
        opt.step([1.0, 2.0], [1.0, 2.0])
    opt.step(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"\(3,\).*\(5,\)"):
        opt.step(np.ones(5), np.ones(5))
    assert opt.t == 1


def test_two_element_vectors_work() -> None:
    for name in NAMES:
        p = np.array([1.0, -1.0])
        optim.get(name, lr=0.1).step(p, np.array([1.0, -1.0]))
        assert np.all(np.abs(p) < 1.0)


# -- get -----------------------------------------------------------------------------------


def test_get() -> None:
    assert type(optim.get("SGDm", lr=0.5)) is SGDm and optim.get("sgdm", lr=0.5).lr == 0.5
    assert type(optim.get("AdamW")) is AdamW and type(optim.get("RMSprop")) is RMSProp
    for name in NAMES:
        assert isinstance(optim.get(name.upper()), Optimizer)
    with pytest.raises(ValueError, match="known: adagrad, adam, adamw, rmsprop, sgd, sgdm"):
        optim.get("lamb")
    with pytest.raises(TypeError):
        optim.get("sgd", momentum=0.9)


def test_defaults_match_torch() -> None:
    assert repr(SGD()) == "SGD(lr=0.001, weight_decay=0.0, maximize=False)"
    assert repr(SGDm()) == (
        "SGDm(lr=0.001, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False)"
    )
    assert repr(Adagrad()) == (
        "Adagrad(lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, maximize=False)"
    )
    assert repr(RMSProp()) == (
        "RMSProp(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.0, centered=False, maximize=False)"
    )
    assert repr(Adam()) == (
        "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False, "
        "decoupled_weight_decay=False, maximize=False)"
    )
    assert repr(AdamW()) == (
        "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, amsgrad=False, maximize=False)"
    )


# -- weight decay masks --------------------------------------------------------------------


@pytest.mark.parametrize("name, decoupled", [(n, False) for n in NAMES] + [("adam", True), ("adamw", True)])
def test_decay_mask_equals_two_parameter_groups(name: str, decoupled: bool) -> None:
    """Masked decay on one vector is, bit for bit, torch's two parameter groups: decay on the
    masked part, none on the rest (each group an independent optimizer on its slice)."""
    kwargs = dict(FULL_OPTIONS[name], weight_decay=0.2)
    if decoupled and name == "adam":
        kwargs["decoupled_weight_decay"] = True
    elif name == "adamw" and not decoupled:
        name = "adam"  # coupled L2 decay with AdamW's other options
    rng = np.random.default_rng(3)
    mask = np.array([1, 1, 0, 1, 0, 0, 1, 0], np.float32)
    on, off = mask == 1, mask == 0
    p = rng.standard_normal(8).astype(np.float32)
    p_on, p_off = p[on].copy(), p[off].copy()
    masked = optim.get(name, **kwargs, decay_mask=mask)
    decayed, plain = optim.get(name, **kwargs), optim.get(name, **{**kwargs, "weight_decay": 0.0})
    for _ in range(20):
        g = rng.standard_normal(8).astype(np.float32)
        masked.step(p, g)
        decayed.step(p_on, g[on].copy())
        plain.step(p_off, g[off].copy())
    np.testing.assert_array_equal(p[on], p_on)
    np.testing.assert_array_equal(p[off], p_off)
    assert masked.decay_mask.dtype == np.float32


def test_decay_mask_from_parameter_names() -> None:
    import tinynn as tn

    net = tn.Net([tn.layers.Dense(4, 3), tn.layers.BatchNorm1d(3), tn.layers.Dense(3, 2)])
    mask = optim.decay_mask(net.named_params())
    assert mask.shape == net.params.shape and mask.dtype == np.float32
    # Dense w (12) decayed, b (3) not; BatchNorm gamma, beta (3 + 3) not; Dense w (6) decayed, b (2) not
    expected = np.r_[np.ones(12), np.zeros(3), np.zeros(6), np.ones(6), np.zeros(2)]
    np.testing.assert_array_equal(mask, expected)
    only_first = optim.decay_mask(net.named_params(), decay=lambda name, shape: name.startswith("0."))
    assert only_first.sum() == 15
    opt = optim.AdamW(decay_mask=mask)
    opt.step(net.params, np.zeros_like(net.params))
    assert opt.decay_mask.dtype == net.params.dtype
    with pytest.raises(ValueError, match="decay_mask"):
        optim.SGD(decay_mask=np.full(3, 0.5))
    with pytest.raises(ValueError, match=r"decay_mask has shape \(29,\), params \(5,\)"):
        optim.SGD(weight_decay=0.1, decay_mask=mask).step(np.ones(5, np.float32), np.ones(5, np.float32))


class _ScalarState(Optimizer):
    """A toy optimizer whose step depends on a running scalar product (like NAdam's mu_product)."""

    hyperparams = ("lr", "decay")

    def __init__(self, lr=0.1, decay=0.9):
        super().__init__(lr)
        self.decay = decay

    def init_state(self, params):
        return {"m": np.zeros_like(params), "product": 1.0}

    def compute_step(self, g, out):
        self.state["product"] *= self.decay
        m = self.state["m"]
        m *= self.decay
        m += g
        np.multiply(m, self.lr / (1 - self.state["product"]), out=out)


def test_scalar_state_is_saved_and_resumes_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((12, 5))
    opt, p = _ScalarState(), np.ones(5)
    for g in grads[:6]:
        opt.step(p, g)
    d = opt.state_dict()
    assert set(d) == {"t", "m", "product"} and d["product"] == pytest.approx(0.9**6)
    np.savez(tmp_path / "s.npz", **d)
    q = p.copy()
    for g in grads[6:]:
        opt.step(p, g)
    fresh = _ScalarState.from_config(opt.get_config())
    with np.load(tmp_path / "s.npz", allow_pickle=False) as f:
        fresh.load_state_dict(dict(f))
    assert isinstance(fresh.state["product"], float)
    for g in grads[6:]:
        fresh.step(q, g)
    np.testing.assert_array_equal(p, q)  # resume: the same steps, bit for bit
    with pytest.raises(ValueError, match="'product'.*should|'product' is"):
        fresh.load_state_dict({**d, "product": np.ones(5)})
