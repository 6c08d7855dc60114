"""RNN vs LSTM on MNIST read row by row: train both, and measure how far back their gradients reach.

    python examples/mnist_rnn.py                      # 2 epochs each, full MNIST (a few minutes)
    python examples/mnist_rnn.py --quick --out /tmp   # 1,500 training images, 1 epoch (seconds)

Each 28x28 image is 28 time steps of 28 pixels; the last hidden state feeds a Dense layer with
10 outputs. Both nets have 128 hidden units and train the same way (Adam, lr 1e-3 with cosine
decay, gradient norm clipped at 1).

The figure: for a batch of test images, the mean norm of dL/dx_t -- how strongly the loss,
computed from the LAST step, still depends on the row read k = 27 - t steps earlier -- divided by
its value at k = 0; at initialization and after training. A plain RNN multiplies the gradient
by ``diag(1 - h^2) w_h.T`` once per step back, so it shrinks geometrically; the LSTM's cell path
multiplies only by the forget gate. Writes ``rnn_gradient_reach.png`` into ``--out``
(default docs/figures) and prints the test accuracies. See docs/recurrent.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinynn as tn  # noqa: E402
from tinynn.layers import GRU, LSTM, RNN, Dense, Reshape  # noqa: E402

STEPS, PIXELS, HIDDEN = 28, 28, 128


def build(kind: str) -> tn.Model:
    cell = {"RNN": lambda: RNN(PIXELS, HIDDEN), "LSTM": lambda: LSTM(PIXELS, HIDDEN),
            "GRU": lambda: GRU(PIXELS, HIDDEN)}[kind]()  # fmt: skip
    net = tn.Net([Reshape((STEPS, PIXELS)), cell, Dense(HIDDEN, 10)])
    return tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=1e-3), gradient_clip=1.0)


def gradient_reach(model: tn.Model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reach[k] = mean over the batch of ||dL/dx_{T-1-k}||, divided by its value at k = 0."""
    net = model.net
    logits = net.forward(x.astype(np.float32) / 255)
    _, grad = model.loss.loss_and_grad(logits, y)
    dx = net.backward(grad, input_grad=True).reshape(len(x), STEPS, PIXELS)
    norms = np.linalg.norm(dx.astype(np.float64), axis=2).mean(axis=0)[::-1]  # index k = steps back
    return norms / norms[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="folder for the PNG")
    parser.add_argument("--quick", action="store_true", help="1,500 training images, 1 epoch, 1,000 test images")
    parser.add_argument("--epochs", type=int, default=None, help="default: 2 (1 with --quick)")
    args = parser.parse_args()
    epochs = args.epochs or (1 if args.quick else 2)

    (x, y), (x_test, y_test) = tn.data.load_mnist(dtype=np.uint8)
    if args.quick:
        x, y, x_test, y_test = x[:1500], y[:1500], x_test[:1000], y_test[:1000]
    probe_x, probe_y = x_test[:256], y_test[:256]

    reach: dict[str, dict[str, np.ndarray]] = {}
    for kind in ("RNN", "LSTM"):
        tn.seed(0)
        model = build(kind)
        reach[kind] = {"init": gradient_reach(model, probe_x, probe_y)}
        steps = epochs * -(-len(x) // 128)
        schedule = tn.optim.lr_scheduler.CosineAnnealingLR(model.optimizer, T_max=steps)
        model.fit(x, y, epochs=epochs, batch_size=128, scheduler=schedule, scheduler_interval="batch", verbose=0)
        reach[kind]["trained"] = gradient_reach(model, probe_x, probe_y)
        acc = model.evaluate(x_test, y_test)["accuracy"]
        reach[kind]["accuracy"] = acc
        init, back = reach[kind]["init"], reach[kind]["trained"]
        print(f"{kind}: test accuracy {acc:.4f} after {epochs} epoch(s) on {len(x):,} images; "
              f"gradient reaching back 10 / 27 steps: {back[10]:.2e} / {back[27]:.2e} of the last step's "
              f"(at initialization {init[10]:.2e} / {init[27]:.2e}, a factor 10 every "
              f"{27 / -np.log10(init[27]):.1f} steps); from k = 22 to 27 it changes {back[27] / back[22]:.1f}x")

    args.out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    k = np.arange(STEPS)
    for ax, when, title in zip(axes, ("init", "trained"), ("at initialization", f"after {epochs} epoch(s)"),
                               strict=True):  # fmt: skip
        for kind, color in (("RNN", "tab:red"), ("LSTM", "tab:blue")):
            label = f"{kind} (tanh)" if kind == "RNN" else kind
            if when == "trained":
                label += f", test acc. {reach[kind]['accuracy']:.3f}"
            ax.semilogy(k, reach[kind][when], "o-", ms=3, color=color, label=label)
        ax.set_title(f"MNIST rows, 128 hidden units, {title}")
        ax.set_xlabel("k: steps back from the last row")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("mean ||dL/dx_(T-1-k)|| / k = 0 value")
    fig.tight_layout()
    path = args.out / "rnn_gradient_reach.png"
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
