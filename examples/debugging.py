"""Debugging a net that does not learn: the checks to run, each on a healthy net and a broken one.

1. The initial loss: a 10-class net that knows nothing should score about ln 10 = 2.30.
2. Overfit one batch: any working setup drives the loss on 32 fixed images to near 0. Broken
   ones (all-zero weights, a Softmax layer in front of SoftmaxCrossEntropy, a learning rate far
   too small) do not, and they fail in recognisable ways.
3. Gradient norms per layer: in a deep sigmoid net the first layers get gradients orders of
   magnitude smaller than the last ones; in a ReLU net with He init they are comparable.
4. Dead ReLUs: with a learning rate far too large, units are pushed to output 0 for every input,
   and a dead unit gets no gradient to bring it back.

(The fifth check, a hand-written backward pass compared with finite differences, is in
docs/debugging.md and docs/gradcheck.md; it needs no figure.)

Writes into --out (default runs/figures):
  debugging_overfit_one_batch.png, debugging_gradient_norms.png, debugging_dead_relus.png

    python examples/debugging.py                     # full MNIST for the dead-ReLU runs (a minute or two)
    python examples/debugging.py --quick --out /tmp/figs
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinynn as tn  # noqa: E402
from tinynn.layers import Dense, ReLU, Sigmoid, Softmax  # noqa: E402


def mlp(w_init="he_uniform", head=()) -> tn.Net:
    return tn.Net([Dense(784, 128, w_init=w_init), ReLU(), Dense(128, 64, w_init=w_init), ReLU(),
                   Dense(64, 10, w_init=w_init), *head])


def initial_loss(x, y) -> dict[str, float]:
    loss = tn.losses.SoftmaxCrossEntropy()
    tn.seed(0)
    healthy = loss.loss(mlp().forward(x), y)
    tn.seed(0)
    net = mlp()
    last = net.layers[-1].params["w"]
    last[...] = tn.get_rng().normal(0, 1.0, last.shape)  # a last layer with std-1 weights: confident guesses
    return {"He init (the default)": healthy, "last layer std 1": loss.loss(net.forward(x), y)}


# --- overfit one batch ----------------------------------------------------------------------------

OVERFIT_SETUPS = {
    "healthy: Adam lr 1e-3": dict(),
    "all weights zero": dict(w_init="zeros"),
    "Softmax layer before the loss": dict(head=(Softmax(),)),
    "lr 1e-6 (far too small)": dict(lr=1e-6),
}


def overfit_one_batch(x, y, steps: int, out: Path) -> tuple[Path, dict[str, float]]:
    fig, ax = plt.subplots(figsize=(10, 5))
    finals = {}
    for (name, setup), style in zip(OVERFIT_SETUPS.items(), ("-", "--", "-.", ":"), strict=True):
        tn.seed(0)
        net = mlp(setup.get("w_init", "he_uniform"), setup.get("head", ()))
        model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=setup.get("lr", 1e-3)))
        losses = [model.train_step(x, y) for _ in range(steps)]  # the same 32 images every step
        finals[name] = losses[-1]
        ax.plot(losses, ls=style, lw=2, label=f"{name}: {losses[-1]:.3g} after {steps} steps")
    ax.axhline(math.log(10), color="black", lw=0.8, ls=":")
    ax.text(steps * 0.99, math.log(10) * 1.15, "ln 10", ha="right", fontsize=9)
    ax.set_yscale("log")
    ax.set_xlabel("step (the same batch of 32 images every time)")
    ax.set_ylabel("training loss on that batch (log scale)")
    ax.set_title("Overfit one batch: a working setup memorises it, a broken one cannot")
    ax.legend(fontsize=9, loc="lower left")
    ax.grid(alpha=0.3, which="both")
    # Setups that end within 20% of ln 10 lie one on top of another at the main panel's scale (the
    # zero-init line hides under the lr 1e-6 one): the inset spreads out that band so each can be seen.
    near = [v for v in finals.values() if v > 0.8 * math.log(10)]
    band = (min(near, default=2.0) - 0.03, math.log(10) + 0.02)
    inset = ax.inset_axes([0.52, 0.3, 0.45, 0.4])
    for line in ax.get_lines()[: len(OVERFIT_SETUPS)]:
        inset.plot(line.get_xdata(), line.get_ydata(), ls=line.get_linestyle(), lw=2, color=line.get_color())
    inset.axhline(math.log(10), color="black", lw=0.8, ls=":")
    inset.set_ylim(*band)
    inset.set_title("zoom on the band just below ln 10 (linear scale)", fontsize=9)
    inset.tick_params(labelsize=8)
    inset.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "debugging_overfit_one_batch.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path, finals


# --- gradient norms per layer ----------------------------------------------------------------------


def gradient_norms(x, y, steps: int, out: Path) -> tuple[Path, dict[str, list[float]]]:
    """||dL/dw|| of every Dense layer per step, for an 8-layer sigmoid net and an 8-layer ReLU net."""
    nets = {
        "sigmoid, Xavier init": lambda: [Sigmoid(), "xavier_normal"],
        "ReLU, He init": lambda: [ReLU(), "he_normal"],
    }
    fig, axes = plt.subplots(1, 2, figsize=(15, 5), sharey=True)
    firsts = {}
    for ax, (name, parts) in zip(axes, nets.items(), strict=True):
        tn.seed(0)
        layers, n_in = [], 784
        for _ in range(7):
            activation, init = parts()
            layers += [Dense(n_in, 64, w_init=init), activation]
            n_in = 64
        layers.append(Dense(64, 10, w_init="xavier_normal"))
        model = tn.Model(tn.Net(layers), tn.losses.SoftmaxCrossEntropy(), tn.optim.SGDm(lr=0.01))
        dense = [layer for layer in model.net.layers if isinstance(layer, Dense)]
        norms = np.empty((steps, len(dense)))
        batches = tn.data.BatchIterator(64)(x, y)
        t = 0
        while t < steps:
            for xb, yb in batches:
                model.train_step(xb, yb)  # the optimizer reads net.grads and leaves them as they were
                norms[t] = [np.linalg.norm(layer.grads["w"]) for layer in dense]
                t += 1
                if t == steps:
                    break
        colors = plt.cm.viridis(np.linspace(0, 0.9, len(dense)))
        for i in range(len(dense)):
            ax.plot(norms[:, i], color=colors[i], lw=1.3, label=f"Dense {i + 1}" + (" (first)" if i == 0 else ""))
        firsts[name] = [float(np.median(norms[:, i])) for i in range(len(dense))]
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("step (batch 64, SGD with momentum 0.9, lr 0.01)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(r"$\|\partial L / \partial W\|$ of each Dense layer")
    axes[1].legend(fontsize=8, ncol=2, loc="lower right")
    fig.suptitle("Gradient norm per layer, 8 Dense layers: vanishing with sigmoid, balanced with ReLU + He",
                 fontsize=13)
    fig.tight_layout()
    path = out / "debugging_gradient_norms.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path, firsts


# --- dead ReLUs -------------------------------------------------------------------------------------


def dead_fraction(net: tn.Net, probe: np.ndarray) -> list[float]:
    """Per ReLU layer: the fraction of its units that output 0 for every probe image."""
    fractions, h = [], probe
    net.eval()
    for layer in net.layers:
        h = layer.forward(h)
        if isinstance(layer, ReLU):
            fractions.append(float(np.mean(np.all(h == 0, axis=0))))
    net.train()
    return fractions


def dead_relus(x, y, probe, steps: int, out: Path) -> tuple[Path, dict[str, list[float]]]:
    fig, ax = plt.subplots(figsize=(10, 5))
    finals = {}
    for lr, color in ((1e-3, "tab:blue"), (0.03, "tab:orange"), (0.1, "tab:red")):
        tn.seed(0)
        model = tn.Model(mlp(), tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=lr))
        batches, t, when, dead = tn.data.BatchIterator(128)(x, y), 0, [], []
        every = max(1, steps // 25)
        with np.errstate(all="ignore"):
            while t < steps:
                for xb, yb in batches:
                    if t % every == 0:
                        when.append(t)
                        dead.append(dead_fraction(model.net, probe))
                    model.train_step(xb, yb)
                    t += 1
                    if t == steps:
                        break
        when.append(t)
        dead.append(dead_fraction(model.net, probe))
        dead = np.array(dead)
        # per layer: dead share at the first probe after step 0, lowest and highest after it, at the end
        finals[f"Adam lr {lr:g}"] = [(d[1], d[1:].min(), d[1:].max(), d[-1]) for d in dead.T]
        ax.plot(when, 100 * dead[:, 0], color=color, lw=2, label=f"Adam lr {lr:g}, first hidden layer (128 units)")
        ax.plot(when, 100 * dead[:, 1], color=color, lw=2, ls="--", label=f"Adam lr {lr:g}, second hidden layer (64)")
    ax.set_xlabel("step (batch 128)")
    ax.set_ylabel("dead units (%): output 0 for all probe images")
    ax.set_title(f"Dead ReLUs: a learning rate too large kills units ({len(probe)} probe images)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "debugging_dead_relus.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path, finals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/figures"), help="folder for the PNGs")
    parser.add_argument("--quick", action="store_true", help="subsets and short runs (for tests)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (x, y), _ = tn.data.load_mnist(progress=False)
    if args.quick:
        x, y = x[:2000], y[:2000]

    for name, loss in initial_loss(x[:1000], y[:1000]).items():
        print(f"initial loss, {name:<22} {loss:.3f}   (ln 10 = {math.log(10):.3f})")
    path, finals = overfit_one_batch(x[:32], y[:32], 100 if args.quick else 300, args.out)
    for name, loss in finals.items():
        print(f"overfit one batch, {name:<32} final loss {loss:.3g}")
    print("wrote", path)
    path, norms = gradient_norms(x, y, 40 if args.quick else 400, args.out)
    for name, row in norms.items():
        print(f"median |dL/dW| per layer, {name:<22} " + " ".join(f"{v:.1e}" for v in row))
    print("wrote", path)
    path, dead = dead_relus(x, y, x[-1000:], 60 if args.quick else 800, args.out)
    for name, row in dead.items():
        for i, (early, low, high, end) in enumerate(row):
            print(f"dead units, {name:<14} layer {i + 1}: {100 * early:.0f}% at the first probe after step 0, "
                  f"then between {100 * low:.0f}% and {100 * high:.0f}%, {100 * end:.0f}% at the end")
    print("wrote", path)


if __name__ == "__main__":
    main()
