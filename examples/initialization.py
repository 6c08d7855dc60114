"""Initialization and signal propagation: activations and gradients through a deep MLP on MNIST.

A 7-layer MLP (six hidden layers of 256 units) gets one batch of real MNIST digits. For each
activation and each weight initializer, the script records every hidden layer's output and the
gradient flowing back into it, and draws their histograms layer by layer. Then it trains the
deep net with each setup and shows which ones learn: vanishing and exploding gradients, then
the fixes (Xavier for tanh, He for ReLU).

Writes into --out (default runs/figures):
  initialization_activations.png   histograms of each hidden layer's output, per setup
  initialization_gradients.png     histograms of log10 |dL/d(output)| per layer, per setup
  initialization_training.png      training loss of the deep net for each setup

    python examples/initialization.py                     # full MNIST, 500 steps per setup (minutes)
    python examples/initialization.py --quick --out /tmp/figs
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
from tinynn.layers import Dense, ReLU, Sigmoid, Tanh  # noqa: E402

DEPTH = 6  # hidden layers
WIDTH = 256  # their width (--quick: 64)
ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}

# (label, activation, initializer for every Dense): what goes wrong, and the fix
SETUPS = [
    ("tanh, normal std 0.01", "tanh", tn.init.normal(std=0.01)),   # vanishing: each layer shrinks
    ("tanh, normal std 1", "tanh", tn.init.normal(std=1.0)),       # saturating: units pinned at +-1
    ("tanh, Xavier", "tanh", "xavier_normal"),                     # the fix for tanh
    ("sigmoid, Xavier", "sigmoid", "xavier_normal"),               # Xavier does not fit sigmoid
    ("relu, normal std 0.2", "relu", tn.init.normal(std=0.2)),     # exploding: x2.6 std per layer
    ("relu, He", "relu", "he_normal"),                             # the fix for ReLU
]


def build(activation: str, w_init, width: int = WIDTH) -> tn.Net:
    layers, width_in = [], 784
    for _ in range(DEPTH):
        layers += [Dense(width_in, width, w_init=w_init), ACTIVATIONS[activation]()]
        width_in = width
    layers.append(Dense(width_in, 10, w_init="xavier_normal"))
    return tn.Net(layers)


def safe_step(model: tn.Model, xb: np.ndarray, yb: np.ndarray) -> float:
    """model.train_step, or inf once training has diverged (the loss refuses NaN/Inf predictions)."""
    try:
        return model.train_step(xb, yb)
    except ValueError:
        return math.inf


def probe(net: tn.Net, x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each hidden activation's output and dL/d(that output), by running the layers by hand."""
    loss = tn.losses.SoftmaxCrossEntropy()
    outputs, h = [], x
    for layer in net.layers:
        h = layer.forward(h)
        outputs.append(h.copy())  # layers reuse their output arrays: keep a copy
    _, g = loss.loss_and_grad(h, y)
    grads = [None] * len(net.layers)
    for i in reversed(range(len(net.layers))):
        grads[i] = g.copy()  # dL/d(output of layer i)
        g = net.layers[i].backward(g)
    acts = [i for i, layer in enumerate(net.layers) if not isinstance(layer, Dense)]
    return [outputs[i] for i in acts], [grads[i] for i in acts]


def histograms(results, which: str, out: Path) -> Path:
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    colors = plt.cm.viridis(np.linspace(0, 0.9, DEPTH))
    for ax, (label, (acts, grads)) in zip(axes.flat, results.items(), strict=True):
        for depth, (a, g) in enumerate(zip(acts, grads, strict=True)):
            if which == "activations":
                values, bins = a.ravel(), np.linspace(-1.05, 1.05, 60) if "relu" not in label else None
                if bins is None:  # ReLU: the nonzero part, up to the largest value of any layer (none cut off)
                    hi = max(max(float(v.max()) for v in acts), 1e-6)
                    values, bins = values[values > 0], np.linspace(0, hi, 60)
                std = f"std {a.std():.2g}"
            else:
                mag = np.abs(g.ravel())
                values = np.log10(mag[mag > 0])
                # all layers of the panel on one range: up to the largest value, down to the 0.1% quantile
                # (a few underflowing values would otherwise stretch the axis to 1e-40)
                logs = np.log10(np.concatenate([np.abs(v[v != 0]) for v in grads]))
                bins = np.linspace(math.floor(np.percentile(logs, 0.1)), math.ceil(logs.max()), 70)
                std = f"std {g.std():.1e}"
            ax.hist(values, bins=bins, histtype="step", color=colors[depth], lw=1.4, density=True,
                    label=f"layer {depth + 1}: {std}")
        ax.set_title(label, fontsize=11)
        ax.legend(fontsize=7, loc="upper left" if which == "gradients" else "upper center")
        ax.set_yticks([])
        ax.set_xlabel("activation value (ReLU: nonzero values only)" if which == "activations"
                      else r"$\log_{10} |\partial L / \partial h|$ (the smallest 0.1% of values are off the left edge)")
    title = ("Outputs of the six hidden activations, one batch of MNIST digits (dark purple: layer 1, the first;"
             " yellow-green: layer 6, the last)"
             if which == "activations" else
             "Gradients flowing back into each hidden activation, log scale of |gradient|"
             " (dark purple: layer 1; yellow-green: layer 6)")
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    path = out / f"initialization_{which}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def train_curves(x, y, steps: int, width: int, out: Path) -> tuple[Path, dict[str, float]]:
    fig, ax = plt.subplots(figsize=(11, 5.5))
    finals = {}
    styles = ["-", "--", "-", ":", "-.", "-"]  # the two nets stuck at ln 10 must not hide each other
    for (label, activation, w_init), style in zip(SETUPS, styles, strict=True):
        tn.seed(0)
        model = tn.Model(build(activation, w_init, width), tn.losses.SoftmaxCrossEntropy(), tn.optim.SGDm(lr=0.01))
        batches, losses = tn.data.BatchIterator(128)(x, y), []
        with np.errstate(over="ignore", invalid="ignore"):  # the exploding setup overflows on purpose
            while len(losses) < steps and math.isfinite(losses[-1] if losses else 0.0):
                for xb, yb in batches:
                    losses.append(safe_step(model, xb, yb))
                    if len(losses) == steps or not math.isfinite(losses[-1]):
                        break
        if not math.isfinite(losses[-1]):
            print(f"  {label}: the loss became {losses[-1]} at step {len(losses)}: diverged")
        smooth = np.convolve(losses, np.ones(20) / 20, mode="valid") if len(losses) > 40 else np.array(losses)
        ax.plot(np.arange(len(smooth)) + (len(losses) - len(smooth)), smooth, lw=2, ls=style,
                label=label + (f"  (diverged at step {len(losses)}: loss off the chart)"
                               if not math.isfinite(losses[-1]) else ""))
        finals[label] = float(np.mean(losses[-20:]))
    ax.axhline(math.log(10), color="black", ls=":", lw=1)
    ax.text(steps * 0.99, math.log(10) * 1.03, "ln 10: guessing uniformly", ha="right", fontsize=9)
    ax.set_xlabel(f"step (batch of 128, SGD with momentum 0.9, lr 0.01; hidden width {width})")
    ax.set_ylabel("training loss (mean of 20 steps)")
    ax.set_ylim(0, 3.5)
    ax.set_title("Training the same 7-layer net from each initialization")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    path = out / "initialization_training.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path, finals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/figures"), help="folder for the PNGs")
    parser.add_argument("--quick", action="store_true", help="a small subset and few steps (for tests)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (x, y), _ = tn.data.load_mnist(progress=False)
    width, steps = (64, 40) if args.quick else (WIDTH, 500)
    if args.quick:
        x, y = x[:2000], y[:2000]

    probe_x, probe_y = x[:256], y[:256]
    results = {}
    print(f"{'setup':<24} " + " ".join(f"{'std h' + str(i + 1):>9}" for i in range(DEPTH)) + "   std dL/dh1")
    for label, activation, w_init in SETUPS:
        tn.seed(0)
        acts, grads = probe(build(activation, w_init, width), probe_x, probe_y)
        results[label] = (acts, grads)
        print(f"{label:<24} " + " ".join(f"{a.std():9.2e}" for a in acts) + f"   {grads[0].std():.2e}")
    for which in ("activations", "gradients"):
        print("wrote", histograms(results, which, args.out))

    path, finals = train_curves(x, y, steps, width, args.out)
    print("final training loss (mean of the last 20 steps):")
    for label, loss in finals.items():
        print(f"  {label:<24} {loss:.3f}")
    print("wrote", path)


if __name__ == "__main__":
    main()
