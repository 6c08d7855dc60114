"""Write tests/golden/conv_*.npz: torch's conv2d, max_pool2d, avg_pool2d and batch_norm, float64.

Run with torch installed (a dev-time oracle only; the tests never import torch):

    python tools/make_conv_golden.py

Each file holds ``cases`` (JSON: the layer's constructor arguments and shapes) and, per case i,
the inputs ``x_i``, ``g_i`` (dL/dy), the parameters (``w_i``, ``b_i``; ``gamma_i``, ``beta_i``,
``running_mean_in_i``, ``running_var_in_i``) and torch's results: ``y_i``, ``dx_i``, ``dw_i``, ``db_i``;
``dgamma_i``, ``dbeta_i``, ``running_mean_i``, ``running_var_i``.

Files: conv_conv2d.npz, conv_pool.npz, conv_batchnorm.npz.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"

# (batch, in_channels, out_channels, height, width, kernel_size, stride, padding, bias)
CONV_CASES = [
    (2, 1, 6, 16, 16, 5, 1, 2, True),  # as LeNet's first layer, smaller image
    (2, 6, 16, 9, 9, 5, 1, 0, True),  # as LeNet's second layer
    (1, 3, 4, 9, 7, [3, 2], 2, 1, True),  # batch 1, non-square kernel and input, stride 2
    (2, 2, 3, 8, 11, [2, 4], [2, 3], [1, 2], False),  # pairs everywhere, no bias
    (2, 4, 5, 6, 6, 4, 1, "same", True),  # even kernel: torch pads 1 before, 2 after
    (2, 3, 2, 7, 5, [3, 1], 1, "valid", True),
    (4, 5, 1, 5, 5, 1, 1, 0, True),  # 1x1 convolution, one output channel
]

# (kind, batch, channels, height, width, kernel_size, stride, padding)
POOL_CASES = [
    ("max", 2, 6, 12, 12, 2, None, 0),
    ("max", 1, 3, 7, 9, 3, 2, 1),
    ("max", 2, 2, 6, 8, [2, 3], [1, 2], [1, 0]),
    ("max", 3, 1, 5, 5, 2, 1, 0),  # overlapping windows
    ("avg", 2, 6, 12, 12, 2, None, 0),
    ("avg", 1, 3, 7, 9, 3, 2, 1),
    ("avg", 2, 2, 6, 8, [2, 3], [1, 2], [1, 0]),
]

# (batch, channels, height, width, momentum, eps, training)
BN_CASES = [
    (4, 3, 5, 6, 0.1, 1e-5, True),
    (1, 2, 3, 4, 0.3, 1e-3, True),  # one image: statistics over H*W
    (3, 5, 2, 2, 0.1, 1e-5, False),  # eval: running statistics
]


def t(a: np.ndarray, grad: bool = True) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def conv_file(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    cases = []
    for i, (n, c, o, h, w, k, s, p, bias) in enumerate(CONV_CASES):
        kh, kw = (k, k) if isinstance(k, int) else k
        x, wt = t(rng.standard_normal((n, c, h, w))), t(rng.standard_normal((o, c, kh, kw)) * 0.3)
        b = t(rng.standard_normal(o)) if bias else None
        y = F.conv2d(x, wt, b, stride=s, padding=p)
        g = rng.standard_normal(tuple(y.shape))
        y.backward(torch.tensor(g))
        cases.append({"in_channels": c, "out_channels": o, "kernel_size": k, "stride": s, "padding": p, "bias": bias})
        out |= {f"x_{i}": x.detach().numpy(), f"w_{i}": wt.detach().numpy(), f"g_{i}": g,
                f"y_{i}": y.detach().numpy(), f"dx_{i}": x.grad.numpy(), f"dw_{i}": wt.grad.numpy()}  # fmt: skip
        if bias:
            out |= {f"b_{i}": b.detach().numpy(), f"db_{i}": b.grad.numpy()}
    out["cases"] = np.array(json.dumps(cases))
    return out


def pool_file(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    cases = []
    for i, (kind, n, c, h, w, k, s, p) in enumerate(POOL_CASES):
        x = rng.standard_normal((n, c, h, w))
        if kind == "max" and i == 0:
            x = np.round(x)  # many ties: torch sends the gradient to the first max in the window
        xt = t(x)
        y = (F.max_pool2d if kind == "max" else F.avg_pool2d)(xt, k, s, p)
        g = rng.standard_normal(tuple(y.shape))
        y.backward(torch.tensor(g))
        cases.append({"kind": kind, "kernel_size": k, "stride": s, "padding": p})
        out |= {f"x_{i}": x, f"g_{i}": g, f"y_{i}": y.detach().numpy(), f"dx_{i}": xt.grad.numpy()}
    out["cases"] = np.array(json.dumps(cases))
    return out


def bn_file(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    cases = []
    for i, (n, c, h, w, momentum, eps, training) in enumerate(BN_CASES):
        x = t(rng.standard_normal((n, c, h, w)) * 2 + 1)
        gamma, beta = t(rng.standard_normal(c)), t(rng.standard_normal(c))
        rm, rv = rng.standard_normal(c), rng.random(c) + 0.5
        rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
        y = F.batch_norm(x, rm_t, rv_t, gamma, beta, training=training, momentum=momentum, eps=eps)
        g = rng.standard_normal(tuple(y.shape))
        y.backward(torch.tensor(g))
        cases.append({"num_features": c, "eps": eps, "momentum": momentum, "training": training})
        out |= {f"x_{i}": x.detach().numpy(), f"g_{i}": g, f"gamma_{i}": gamma.detach().numpy(),
                f"beta_{i}": beta.detach().numpy(), f"running_mean_in_{i}": rm, f"running_var_in_{i}": rv,
                f"y_{i}": y.detach().numpy(), f"dx_{i}": x.grad.numpy(), f"dgamma_{i}": gamma.grad.numpy(),
                f"dbeta_{i}": beta.grad.numpy(), f"running_mean_{i}": rm_t.numpy(),
                f"running_var_{i}": rv_t.numpy()}  # fmt: skip
    out["cases"] = np.array(json.dumps(cases))
    return out


def main() -> None:
    rng = np.random.default_rng(2024)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, make in (("conv2d", conv_file), ("pool", pool_file), ("batchnorm", bn_file)):
        path = GOLDEN / f"conv_{name}.npz"
        np.savez_compressed(path, **make(rng))
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
