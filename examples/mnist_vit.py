"""A vision transformer on MNIST: train it as `tinynn train --model vit` does, then look inside.

    python examples/mnist_vit.py                        # the full run: 10 epochs (minutes), then the figures
    python examples/mnist_vit.py --run runs/vit         # figures of a run `tinynn train --model vit` already made
    python examples/mnist_vit.py --quick --out /tmp     # 2,000 training images, 1 epoch (seconds)

Each 28x28 digit is cut into 16 patches of 7x7 pixels; a ``Conv2D(1, 64, 7, stride=7)`` embeds
each patch, learned positions are added, four pre-norm transformer blocks mix the 16 tokens, and
the mean of the tokens feeds a Dense classifier (``tinynn.zoo.vit``). Training is the command's
own (``tinynn train --model vit``: AdamW, linear warmup then cosine decay), so the accuracy
printed here is the command's.

Figures, written into ``--out`` (default docs/figures):

- ``vit_attention.png``: for a few test digits, how much attention each patch *receives* in each
  block (the attention weights averaged over the 4 heads and the 16 queries), drawn over the digit.
- ``vit_positions.png``: the cosine similarity of each learned position embedding with all 16
  (the ViT paper's figure 7): the net learns the 4x4 grid from data alone.

See docs/attention.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinynn as tn  # noqa: E402
from tinynn import cli  # noqa: E402
from tinynn.layers import MultiHeadAttention, PositionalEmbedding, TransformerBlock  # noqa: E402
from tinynn.runs import read_run  # noqa: E402
from tinynn.textbook import attention as tb  # noqa: E402

GRID = 4  # 4x4 patches of 7x7 pixels


def attention_weights(mha: MultiHeadAttention, x: np.ndarray) -> np.ndarray:
    """The (N, heads, T, T) attention weights of ``mha`` on its input x (N, T, E): the textbook
    ``multi_head_attention`` on its parameters, ``softmax(q k^T / sqrt(d))`` per head, from its cache."""
    p = mha.params
    _, cache = tb.multi_head_attention(x, p["in_proj_weight"], p.get("in_proj_bias"), p["out_proj_weight"],
                                       p.get("out_proj_bias"), mha.num_heads)
    return cache[6][3]  # the attention cache's softmax weights p


def attention_per_block(net: tn.Net, images: np.ndarray) -> list[np.ndarray]:
    """For each TransformerBlock: (N, T) attention each token receives, averaged over heads and queries."""
    net.eval()
    x, maps = images.astype(np.float32) / 255, []
    for layer in net.layers:
        if isinstance(layer, TransformerBlock):
            norm, mha = layer.layers[0].layers[:2]  # the block's first Residual: LayerNorm, attention
            maps.append(attention_weights(mha, norm.forward(x)).mean(axis=(1, 2)))
        x = layer.forward(x)
    return maps


def draw_attention(net: tn.Net, images: np.ndarray, labels: np.ndarray, path: Path) -> None:
    maps = attention_per_block(net, images)
    rows, cols = len(images), 1 + len(maps)
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.1 * rows), squeeze=False)
    for i in range(rows):
        digit = images[i].reshape(28, 28)
        axes[i, 0].imshow(digit, cmap="gray_r")
        axes[i, 0].set_ylabel(f"label {labels[i]}")
        for b, received in enumerate(maps):
            grid = received[i].reshape(GRID, GRID)
            axes[i, b + 1].imshow(digit, cmap="gray_r")
            axes[i, b + 1].imshow(np.kron(grid, np.ones((7, 7))), cmap="magma", alpha=0.6,
                                  vmin=0, vmax=grid.max())  # fmt: skip
            if i == 0:
                axes[i, b + 1].set_title(f"block {b}")
        for ax in axes[i]:
            ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_title("digit")
    fig.suptitle("Attention each 7x7 patch receives (mean over heads and queries)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_positions(net: tn.Net, path: Path) -> float:
    """Cosine similarities of the learned positions; returns the mean similarity of grid neighbours
    minus that of non-neighbours (> 0: the net has learned which patches are adjacent)."""
    (pos,) = [layer for layer in net.layers if isinstance(layer, PositionalEmbedding)]
    w = pos.params["weight"].astype(np.float64)
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    sim = w @ w.T
    fig, axes = plt.subplots(GRID, GRID, figsize=(7.5, 7))
    for t in range(GRID * GRID):
        ax = axes[t // GRID, t % GRID]
        im = ax.imshow(sim[t].reshape(GRID, GRID), cmap="viridis", vmin=-1, vmax=1)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"patch ({t // GRID}, {t % GRID})", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label="cosine similarity")
    fig.suptitle("Learned position embeddings: similarity of each position with every other")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    r, c = np.divmod(np.arange(GRID * GRID), GRID)
    dist = np.abs(r[:, None] - r) + np.abs(c[:, None] - c)
    return float(sim[dist == 1].mean() - sim[dist >= 2].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="folder for the PNGs")
    parser.add_argument("--quick", action="store_true", help="2,000 training images, 1 epoch")
    parser.add_argument("--run", type=Path, default=None,
                        help="draw from this finished `tinynn train --model vit` run folder instead of training")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.run is not None:
        figures(args.run, args.out)
        return
    with tempfile.TemporaryDirectory(prefix="mnist_vit-") as tmp:
        train = ["train", "--model", "vit", "--seed", str(args.seed), "--out", f"{tmp}/run", "--quiet"]
        if args.quick:
            train += ["--limit", "2000", "--epochs", "1", "--val-size", "0"]
        if cli.main(train) != 0:
            raise SystemExit(1)
        figures(Path(tmp) / "run", args.out)


def figures(run: Path, out: Path) -> None:
    record = read_run(run)
    print(f"{run}: test accuracy {record['test_accuracy']:.4f} after {record['epochs_done']} epochs "
          f"(seed {record['options']['seed']})")
    model = tn.Model.load(run / "model.npz", restore_rng=False)

    _, (x_test, y_test) = tn.data.load_mnist(dtype=np.uint8)
    x_test = x_test.reshape(len(x_test), -1)
    pick = [int(np.flatnonzero(y_test == d)[0]) for d in (0, 2, 4, 7)]
    out.mkdir(parents=True, exist_ok=True)
    draw_attention(model.net, x_test[pick], y_test[pick], out / "vit_attention.png")
    gap = draw_positions(model.net, out / "vit_positions.png")
    print(f"learned positions: cosine similarity of grid neighbours minus non-neighbours {gap:.2f}")
    print(f"wrote {out / 'vit_attention.png'} and {out / 'vit_positions.png'}")


if __name__ == "__main__":
    main()
