"""Why transformers are pre-norm residual stacks: gradient norms per block, with and without residuals.

    python examples/residual_stream.py                      # depth 24, 300 steps each (a minute or two)
    python examples/residual_stream.py --quick --out /tmp   # depth 8, 20 steps (seconds)

Three stacks of the same blocks, ``f = LayerNorm -> Dense -> GELU -> Dense`` (width 64, the MLP
half of a transformer block), between a ``Dense(784, 64)`` embedding of MNIST images and a
``LayerNorm -> Dense(64, 10)`` head:

- plain:      x <- f(x)                      (no residual connection)
- post-norm:  x <- LayerNorm(x + g(x))       (g = f without its LayerNorm; the 2017 transformer)
- pre-norm:   x <- x + f(x)                  (GPT-2 and ViT: the residual stream is never normalised)

Left panel: the norm of each block's parameter gradient at initialization (mean over a few
batches), block 0 nearest the input. Right panel: the training loss of each stack over the same
steps (Adam, lr 1e-3, no warmup). Writes ``residual_gradients.png`` into ``--out`` (default
docs/figures) and prints the numbers. See docs/attention.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinynn as tn  # noqa: E402
from tinynn.layers import GELU, Dense, LayerNorm, Residual, Sequential, named_layers  # noqa: E402

WIDTH = 64
WIRINGS = ("plain", "post-norm", "pre-norm")


def block(wiring: str) -> tn.layers.Layer:
    """One block of the stack, wired as the module docstring says."""
    if wiring == "plain":
        return Sequential([LayerNorm(WIDTH), Dense(WIDTH, WIDTH), GELU(), Dense(WIDTH, WIDTH)])
    if wiring == "post-norm":
        return Sequential([Residual([Dense(WIDTH, WIDTH), GELU(), Dense(WIDTH, WIDTH)]), LayerNorm(WIDTH)])
    return Residual([LayerNorm(WIDTH), Dense(WIDTH, WIDTH), GELU(), Dense(WIDTH, WIDTH)])


def build(wiring: str, depth: int) -> tn.Model:
    net = tn.Net([Dense(784, WIDTH), *(block(wiring) for _ in range(depth)), LayerNorm(WIDTH), Dense(WIDTH, 10)])
    return tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=1e-3))


def block_grad_norms(model: tn.Model, depth: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """norms[b] = ||dL/d(parameters of block b)||, for one batch; blocks are items 1..depth of the net."""
    model.backward(model.forward(x), y)  # fills net.grads, and each layer's views of them
    return np.array([
        np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for _, layer in named_layers([block])
                    for g in layer.grads.values()))
        for block in model.net.layers[1 : depth + 1]
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="folder for the PNG")
    parser.add_argument("--quick", action="store_true", help="depth 8, 20 training steps")
    args = parser.parse_args()
    depth, steps, batch = (8, 20, 64) if args.quick else (24, 300, 128)

    (x, y), _ = tn.data.load_mnist()
    x = x.reshape(len(x), -1)
    rng = np.random.default_rng(0)
    norms, losses = {}, {}
    for wiring in WIRINGS:
        tn.seed(0)
        model = build(wiring, depth)
        norms[wiring] = np.mean([block_grad_norms(model, depth, x[i : i + batch], y[i : i + batch])
                                 for i in range(0, 4 * batch, batch)], axis=0)  # fmt: skip
        order = rng.permutation(len(x))
        losses[wiring] = [model.train_step(x[j], y[j]) for j in order[: steps * batch].reshape(steps, batch)]
        first, last = norms[wiring][0], norms[wiring][-1]
        print(f"{wiring:>9}: gradient norm block 0 {first:.3g}, block {depth - 1} {last:.3g} "
              f"(ratio {first / last:.3g}); training loss after {steps} steps {np.mean(losses[wiring][-20:]):.3f}")

    fig, (ax_g, ax_l) = plt.subplots(1, 2, figsize=(11, 4))
    for wiring in WIRINGS:
        ax_g.plot(np.arange(depth), norms[wiring], "o-", ms=3, label=wiring)
        ax_l.plot(np.arange(1, steps + 1), losses[wiring], lw=1, label=wiring)
    ax_g.set_yscale("log")
    ax_g.set_xlabel("block (0 = nearest the input)")
    ax_g.set_ylabel("||dL/d(block parameters)||")
    ax_g.set_title(f"Gradient per block at initialization, depth {depth}")
    ax_l.set_yscale("log")
    ax_l.set_xlabel("step")
    ax_l.set_ylabel("training loss (batch)")
    ax_l.set_title("Training, Adam lr 1e-3, no warmup")
    for ax in (ax_g, ax_l):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "residual_gradients.png", dpi=110)
    print(f"wrote {args.out / 'residual_gradients.png'}")


if __name__ == "__main__":
    main()
