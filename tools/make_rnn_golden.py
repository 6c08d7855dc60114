"""Write tests/golden/rnn_*.npz: torch's nn.RNN / nn.LSTM / nn.GRU forward outputs and gradients.

Run with torch installed (a dev-time oracle only; the tests never import torch):

    python tools/make_rnn_golden.py

One file per layer kind: rnn_tanh, rnn_relu, rnn_lstm, rnn_gru. Each holds, in float64, for
``batch=3, time=7, input_size=4, hidden=5`` and both output modes (key prefix ``last_`` for the
last step's hidden state, ``seq_`` for every step's):

  x (3, 7, 4)          the input (batch_first)
  w_x, w_h, b_x, b_h   torch's parameters in tinynn's layout: weight_ih.T, weight_hh.T, bias_ih, bias_hh
  <mode>_r             the upstream gradient dL/dy of L = sum(y * r)
  <mode>_y             the output y
  <mode>_dx, <mode>_dw_x, <mode>_dw_h, <mode>_db_x, <mode>_db_h   every gradient of L
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"
BATCH, TIME, INPUT, HIDDEN = 3, 7, 4, 5

KINDS = {
    "tanh": lambda: torch.nn.RNN(INPUT, HIDDEN, nonlinearity="tanh", batch_first=True),
    "relu": lambda: torch.nn.RNN(INPUT, HIDDEN, nonlinearity="relu", batch_first=True),
    "lstm": lambda: torch.nn.LSTM(INPUT, HIDDEN, batch_first=True),
    "gru": lambda: torch.nn.GRU(INPUT, HIDDEN, batch_first=True),
}


def make(kind: str, seed: int) -> dict[str, np.ndarray]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    module = KINDS[kind]().double()
    with torch.no_grad():  # weights larger than torch's default init, so the gates saturate somewhat
        for p in module.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.8, 0.8, tuple(p.shape))))
    x_np = rng.standard_normal((BATCH, TIME, INPUT))
    out: dict[str, np.ndarray] = {
        "x": x_np,
        "w_x": module.weight_ih_l0.detach().numpy().T.copy(),
        "w_h": module.weight_hh_l0.detach().numpy().T.copy(),
        "b_x": module.bias_ih_l0.detach().numpy().copy(),
        "b_h": module.bias_hh_l0.detach().numpy().copy(),
    }
    for mode in ("last", "seq"):
        module.zero_grad()
        x = torch.from_numpy(x_np.copy()).requires_grad_(True)
        seq, _ = module(x)
        y = seq if mode == "seq" else seq[:, -1]
        r = torch.from_numpy(rng.standard_normal(tuple(y.shape)))
        (y * r).sum().backward()
        out[f"{mode}_r"] = r.numpy()
        out[f"{mode}_y"] = y.detach().numpy()
        out[f"{mode}_dx"] = x.grad.numpy()
        out[f"{mode}_dw_x"] = module.weight_ih_l0.grad.numpy().T.copy()
        out[f"{mode}_dw_h"] = module.weight_hh_l0.grad.numpy().T.copy()
        out[f"{mode}_db_x"] = module.bias_ih_l0.grad.numpy().copy()
        out[f"{mode}_db_h"] = module.bias_hh_l0.grad.numpy().copy()
    return out


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for seed, kind in enumerate(KINDS):
        path = GOLDEN / f"rnn_{kind}.npz"
        np.savez_compressed(path, torch_version=np.array(torch.__version__), **make(kind, seed))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
