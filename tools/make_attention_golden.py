"""Write tests/golden/attention.npz: torch's embedding, layer norm, attention and masked cross-entropy.

Run with torch installed (a dev-time oracle only; the tests never import torch):

    python tools/make_attention_golden.py

Everything in float64, for sequences of ``batch=3, time=6`` (arrays named ``<case>_<what>``):

  emb_*    nn.Embedding(7, 5): idx (3, 6) with repeated indices, weight, r, y, dweight
  pos_*    a learned positional table (as makemore: x + nn.Embedding(9, 5)(arange(T))): x, weight, r, y, dx, dweight
  ln_*     nn.LayerNorm(5) and ln2_* nn.LayerNorm((6, 5)), random affine: x, weight, bias, r, y, dx, dweight, dbias
  mha_<mask>_*   nn.MultiheadAttention(8, 2, batch_first=True) called as self-attention with
           need_weights=False, for mask in none / causal / pad / causal_pad (key_padding_mask
           ``pad`` True = ignore; causal as a boolean attn_mask, True = not allowed): x, r, y, dx and
           the gradients of in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias
  sdpa_<mask>_*  the same projections by hand around F.scaled_dot_product_attention (its boolean
           attn_mask: True = take part): the same arrays
  mha_in_proj_weight, mha_in_proj_bias, mha_out_proj_weight, mha_out_proj_bias, mha_pad: shared inputs
  ce_<case>_*    F.cross_entropy on (3, 6, 7) logits flattened to (18, 7), targets (3, 6) with
           ignore_index -100 (case ``ignore``), label smoothing 0.1 too (``smooth``), ignore_index=0
           (``ignore0``): logits, targets, loss, dlogits (of the mean loss)
  gelu_*   F.gelu(approximate="tanh") and the exact (erf) default: x, y_tanh, dx_tanh, y_erf
  block_*  a causal pre-norm transformer block written with torch modules (GPT-2's): x + attn(ln_1(x)),
           then x + fc_2(gelu_tanh(fc_1(ln_2(x)))), width 8, 2 heads, MLP 32: x, r, y, dx, and for every
           parameter p_<name> (tinynn's path names, Dense weights as (in, out)) and its gradient d_<name>
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"
N, T, E, H = 3, 6, 8, 2


def t64(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float64)).requires_grad_(grad)


def embedding(rng: np.random.Generator) -> dict[str, np.ndarray]:
    emb = torch.nn.Embedding(7, 5).double()
    idx = np.array([[0, 1, 1, 6, 3, 3], [3, 3, 3, 2, 0, 6], [5, 5, 1, 1, 1, 1]])  # repeats accumulate
    r = rng.standard_normal((N, T, 5))
    y = emb(torch.from_numpy(idx))
    (y * t64(r)).sum().backward()
    return {"idx": idx, "weight": emb.weight.detach().numpy().copy(), "r": r, "y": y.detach().numpy(),
            "dweight": emb.weight.grad.numpy()}


def positional(rng: np.random.Generator) -> dict[str, np.ndarray]:
    wpe = torch.nn.Embedding(9, 5).double()
    x, r = t64(rng.standard_normal((N, T, 5)), True), rng.standard_normal((N, T, 5))
    y = x + wpe(torch.arange(T))
    (y * t64(r)).sum().backward()
    return {"x": x.detach().numpy(), "weight": wpe.weight.detach().numpy().copy(), "r": r, "y": y.detach().numpy(),
            "dx": x.grad.numpy(), "dweight": wpe.weight.grad.numpy()}


def layer_norm(rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    ln = torch.nn.LayerNorm(shape).double()
    with torch.no_grad():
        ln.weight.copy_(t64(rng.uniform(0.5, 1.5, shape)))
        ln.bias.copy_(t64(rng.standard_normal(shape)))
    x = t64(rng.standard_normal((N, T, 5)) * 3 + 1, True)
    r = rng.standard_normal((N, T, 5))
    y = ln(x)
    (y * t64(r)).sum().backward()
    return {"x": x.detach().numpy(), "weight": ln.weight.detach().numpy().copy(),
            "bias": ln.bias.detach().numpy().copy(), "r": r, "y": y.detach().numpy(), "dx": x.grad.numpy(),
            "dweight": ln.weight.grad.numpy(), "dbias": ln.bias.grad.numpy()}


def attention(rng: np.random.Generator) -> dict[str, np.ndarray]:
    params = {"in_proj_weight": rng.uniform(-0.6, 0.6, (3 * E, E)), "in_proj_bias": rng.uniform(-0.3, 0.3, 3 * E),
              "out_proj_weight": rng.uniform(-0.6, 0.6, (E, E)), "out_proj_bias": rng.uniform(-0.3, 0.3, E)}
    pad = np.zeros((N, T), dtype=bool)
    pad[0, 4:] = True  # right padding, as after the end of a name
    pad[2, [1, 5]] = True  # holes too
    out: dict[str, np.ndarray] = {f"mha_{k}": v for k, v in params.items()}
    out["mha_pad"] = pad
    causal = np.triu(np.ones((T, T), dtype=bool), k=1)  # True = masked
    for mask in ("none", "causal", "pad", "causal_pad"):
        x_np, r = rng.standard_normal((N, T, E)), rng.standard_normal((N, T, E))
        # nn.MultiheadAttention
        mha = torch.nn.MultiheadAttention(E, H, batch_first=True).double()
        with torch.no_grad():
            mha.in_proj_weight.copy_(t64(params["in_proj_weight"]))
            mha.in_proj_bias.copy_(t64(params["in_proj_bias"]))
            mha.out_proj.weight.copy_(t64(params["out_proj_weight"]))
            mha.out_proj.bias.copy_(t64(params["out_proj_bias"]))
        x = t64(x_np, True)
        kwargs = {"need_weights": False}
        if "causal" in mask:
            kwargs["attn_mask"] = torch.from_numpy(causal)
        if "pad" in mask:
            kwargs["key_padding_mask"] = torch.from_numpy(pad)
        y, _ = mha(x, x, x, **kwargs)
        (y * t64(r)).sum().backward()
        grads = {"in_proj_weight": mha.in_proj_weight.grad, "in_proj_bias": mha.in_proj_bias.grad,
                 "out_proj_weight": mha.out_proj.weight.grad, "out_proj_bias": mha.out_proj.bias.grad}
        out |= {f"mha_{mask}_x": x_np, f"mha_{mask}_r": r, f"mha_{mask}_y": y.detach().numpy(),
                f"mha_{mask}_dx": x.grad.numpy()}
        out |= {f"mha_{mask}_d{k}": g.numpy().copy() for k, g in grads.items()}
        # the same projections around scaled_dot_product_attention
        p = {k: t64(v, True) for k, v in params.items()}
        x = t64(x_np, True)
        q, k, v = F.linear(x, p["in_proj_weight"], p["in_proj_bias"]).chunk(3, dim=-1)
        q, k, v = (a.reshape(N, T, H, E // H).transpose(1, 2) for a in (q, k, v))
        allowed = torch.ones((N, 1, T, T), dtype=torch.bool)  # True = take part
        if "causal" in mask:
            allowed = allowed & ~torch.from_numpy(causal)
        if "pad" in mask:
            allowed = allowed & ~torch.from_numpy(pad)[:, None, None, :]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask == "none" else allowed)
        y = F.linear(a.transpose(1, 2).reshape(N, T, E), p["out_proj_weight"], p["out_proj_bias"])
        (y * t64(r)).sum().backward()
        out |= {f"sdpa_{mask}_y": y.detach().numpy(), f"sdpa_{mask}_dx": x.grad.numpy()}
        out |= {f"sdpa_{mask}_d{k}": g.grad.numpy() for k, g in p.items()}
    return out


def cross_entropy(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for case, smoothing, ignore in (("ignore", 0.0, -100), ("smooth", 0.1, -100), ("ignore0", 0.0, 0)):
        logits = t64(rng.standard_normal((N, T, 7)) * 2, True)
        targets = rng.integers(0, 7, (N, T))
        targets[0, 3:] = ignore  # padding after the end of a sequence
        targets[1, 5] = ignore
        loss = F.cross_entropy(logits.reshape(-1, 7), torch.from_numpy(targets).reshape(-1), ignore_index=ignore,
                               label_smoothing=smoothing)
        loss.backward()
        out |= {f"ce_{case}_logits": logits.detach().numpy(), f"ce_{case}_targets": targets,
                f"ce_{case}_loss": loss.detach().numpy(), f"ce_{case}_dlogits": logits.grad.numpy()}
    return out


def gelu(rng: np.random.Generator) -> dict[str, np.ndarray]:
    x, r = t64(np.linspace(-6, 6, 49), True), np.ones(49)
    y = F.gelu(x, approximate="tanh")
    (y * t64(r)).sum().backward()
    return {"x": x.detach().numpy(), "y_tanh": y.detach().numpy(), "dx_tanh": x.grad.numpy(),
            "y_erf": F.gelu(x.detach()).numpy()}


def block(rng: np.random.Generator) -> dict[str, np.ndarray]:
    ln1, ln2 = torch.nn.LayerNorm(E).double(), torch.nn.LayerNorm(E).double()
    attn = torch.nn.MultiheadAttention(E, H, batch_first=True).double()
    fc1, fc2 = torch.nn.Linear(E, 4 * E).double(), torch.nn.Linear(4 * E, E).double()
    tensors = {"0.Residual.0.LayerNorm.weight": ln1.weight, "0.Residual.0.LayerNorm.bias": ln1.bias,
               "0.Residual.1.MultiHeadAttention.in_proj_weight": attn.in_proj_weight,
               "0.Residual.1.MultiHeadAttention.in_proj_bias": attn.in_proj_bias,
               "0.Residual.1.MultiHeadAttention.out_proj_weight": attn.out_proj.weight,
               "0.Residual.1.MultiHeadAttention.out_proj_bias": attn.out_proj.bias,
               "1.Residual.0.LayerNorm.weight": ln2.weight, "1.Residual.0.LayerNorm.bias": ln2.bias,
               "1.Residual.1.Dense.w": fc1.weight, "1.Residual.1.Dense.b": fc1.bias,
               "1.Residual.3.Dense.w": fc2.weight, "1.Residual.3.Dense.b": fc2.bias}
    with torch.no_grad():
        for t in tensors.values():
            t.copy_(t64(rng.uniform(-0.5, 0.5, tuple(t.shape))))
    x, r = t64(rng.standard_normal((N, T, E)), True), rng.standard_normal((N, T, E))
    causal = torch.from_numpy(np.triu(np.ones((T, T), dtype=bool), k=1))
    h = ln1(x)
    h = x + attn(h, h, h, attn_mask=causal, need_weights=False)[0]
    y = h + fc2(F.gelu(fc1(ln2(h)), approximate="tanh"))
    (y * t64(r)).sum().backward()
    out = {"x": x.detach().numpy(), "r": r, "y": y.detach().numpy(), "dx": x.grad.numpy()}
    for name, t in tensors.items():
        value, grad = t.detach().numpy().copy(), t.grad.numpy().copy()
        if name.endswith("Dense.w"):  # torch's Linear weight is (out, in); Dense keeps x @ w with w (in, out)
            value, grad = value.T, grad.T
        out |= {f"p_{name}": value, f"d_{name}": grad}
    return out


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    out: dict[str, np.ndarray] = {}
    out |= {f"emb_{k}": v for k, v in embedding(rng).items()}
    out |= {f"pos_{k}": v for k, v in positional(rng).items()}
    out |= {f"ln_{k}": v for k, v in layer_norm(rng, (5,)).items()}
    out |= {f"ln2_{k}": v for k, v in layer_norm(rng, (T, 5)).items()}
    out |= attention(rng)
    out |= cross_entropy(rng)
    out |= {f"gelu_{k}": v for k, v in gelu(rng).items()}
    out |= {f"block_{k}": v for k, v in block(np.random.default_rng(1)).items()}  # own stream: earlier arrays unchanged
    path = GOLDEN / "attention.npz"
    np.savez_compressed(path, torch_version=np.array(torch.__version__), **out)
    print(f"wrote {path} ({len(out)} arrays)")


if __name__ == "__main__":
    main()
