"""Draw where each head of the names transformer looks: its attention weights on one name.

    python examples/names_attention.py --run runs/names --out docs/figures   # a trained `tinynn train --data names`
    python examples/names_attention.py --quick --out /tmp/a                  # a tiny model, trained briefly

For each block and head, row t of a map is the softmax over the positions a query at t may see
(causal: t and before), computed by the textbook function ``tinynn.textbook.attention.multi_head_attention``
on the input the block's attention layer receives. Writes ``names_attention.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import tinynn as tn
from tinynn.textbook import attention as tb


def attention_maps(net: tn.Net, name: str) -> tuple[list[str], list[np.ndarray]]:
    """The tokens fed for ``name`` (the start token, then its letters) and each block's (heads, T, T) weights."""
    x, _ = tn.data.encode_names([name])
    t = len(name) + 1
    h = x[:, :t]
    maps = []
    net.eval()
    for layer in net.layers:
        if isinstance(layer, tn.layers.TransformerBlock):
            norm, mha = layer.layers[0].layers[:2]  # Residual([LayerNorm, MultiHeadAttention, ...])
            p = mha.params
            _, cache = tb.multi_head_attention(norm.forward(h), p["in_proj_weight"], p.get("in_proj_bias"),
                                               p["out_proj_weight"], p.get("out_proj_bias"), mha.num_heads,
                                               mask=tb.causal_mask(t))
            maps.append(cache[6][3][0])  # the attention cache's softmax weights p, of the one name: (heads, T, T)
        h = layer.forward(h)
    return [".", *name], maps


def draw(tokens: list[str], maps: list[np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks, heads = len(maps), maps[0].shape[0]
    fig, axes = plt.subplots(blocks, heads, figsize=(max(2.3 * heads, 7), max(2.3 * blocks, 4)), squeeze=False,
                             layout="constrained")
    for b, per_head in enumerate(maps):
        for hd, weights in enumerate(per_head):
            ax = axes[b, hd]
            image = ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(tokens)), tokens, fontsize=7)
            ax.set_yticks(range(len(tokens)), tokens, fontsize=7)
            ax.set_title(f"block {b + 1}, head {hd + 1}", fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight (rows: queries, columns: keys)")
    fig.suptitle(f"Where each head looks when reading '{''.join(tokens[1:])}' (causal: nothing after the query)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="a names run folder (holds model.npz)")
    parser.add_argument("--quick", action="store_true", help="train a tiny transformer for a few steps instead")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for names_attention.png")
    parser.add_argument("--name", default="isabella", help="the name to read (letters a-z)")
    args = parser.parse_args()
    if args.quick:
        tn.seed(0)
        net = tn.Net([tn.layers.Embedding(27, 16), tn.layers.PositionalEmbedding(16, 16),
                      tn.layers.TransformerBlock(16, 2, causal=True), tn.layers.LayerNorm(16), tn.layers.Dense(16, 27)])
        model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.AdamW(lr=3e-3))
        x, y = tn.data.encode_names(tn.data.load_names()[0][:512])
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    elif args.run is not None:
        net = tn.Model.load(args.run / "model.npz", restore_rng=False).net
    else:
        parser.error("give --run DIR (a `tinynn train --data names` run) or --quick")
    args.out.mkdir(parents=True, exist_ok=True)
    tokens, maps = attention_maps(net, args.name)
    draw(tokens, maps, args.out / "names_attention.png")
    for b, per_head in enumerate(maps):  # where the last letter's query looks, per head
        print(f"block {b + 1}: the last letter's strongest key per head: "
              + ", ".join(tokens[int(np.argmax(w[-1]))] for w in per_head))
    print(f"wrote {args.out / 'names_attention.png'}")


if __name__ == "__main__":
    main()
