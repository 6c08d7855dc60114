"""Train the same MLP on MNIST with each optimizer of tinynn.optim and compare them.

Every run starts from the same initial weights (the net is built once after `tn.seed`, and
its flat `net.params` is copied into each run) and sees the same batches in the same order
(each run replays tinynn's random state from the same seed). Only the optimizer differs.

Writes `compare_optimizers.png` (training loss and test accuracy per epoch) and
`compare_optimizers.md` (a Markdown table, also printed) into `--out`.

    python examples/compare_optimizers.py                    # 5 epochs on all 60,000 images
    python examples/compare_optimizers.py --quick --out /tmp # a 5,000-image subset, 3 epochs
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinynn as tn  # noqa: E402

# name -> (learning rate, factory). Rates are the usual starting points for each method.
OPTIMIZERS: dict[str, tuple[float, Callable[[float], tn.optim.Optimizer]]] = {
    "SGD": (0.1, lambda lr: tn.optim.SGD(lr=lr)),
    "SGDm": (0.05, lambda lr: tn.optim.SGDm(lr=lr, momentum=0.9)),
    "Adagrad": (0.01, lambda lr: tn.optim.Adagrad(lr=lr)),
    "RMSProp": (1e-3, lambda lr: tn.optim.RMSProp(lr=lr)),
    "Adam": (1e-3, lambda lr: tn.optim.Adam(lr=lr)),
}
COLORS = {"SGD": "tab:blue", "SGDm": "tab:orange", "Adagrad": "tab:green", "RMSProp": "tab:red", "Adam": "tab:purple"}


def build_net() -> tn.Net:
    """A 784-256-128-10 ReLU MLP (He-uniform weights, zero biases: Dense's defaults)."""
    L = tn.layers
    return tn.Net([L.Dense(784, 256), L.ReLU(), L.Dense(256, 128), L.ReLU(), L.Dense(128, 10)])


def train_all(
    data: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    epochs: int,
    batch_size: int,
    seed: int,
) -> dict[str, tn.History]:
    """Train one model per optimizer, all from the same weights and with the same batches.

    The runs take turns, one epoch each, so that a busy machine slows them all alike and the
    times per epoch stay comparable. Each run keeps its own copy of tinynn's random state
    (which drives the shuffling), so every run still sees the same batches in the same order.
    """
    (train_x, train_y), (test_x, test_y) = data
    tn.seed(seed)
    initial = build_net().params.copy()  # every run starts from these exact weights
    start_state = tn.rng.get_state()
    models, states, histories = {}, {}, {}
    for name, (lr, make) in OPTIMIZERS.items():
        net = build_net()
        net.params[...] = initial  # in place: the layers' weights are views into net.params
        models[name] = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), make(lr))
        states[name] = start_state
        histories[name] = tn.History()

    for epoch in range(epochs):
        for name, model in models.items():
            tn.rng.set_state(states[name])
            h = model.fit(
                train_x, train_y, epochs=epoch + 1, initial_epoch=epoch, batch_size=batch_size,
                validation_data=(test_x, test_y), verbose=0,
            ).history  # fmt: skip
            states[name] = tn.rng.get_state()
            histories[name].append(epoch, {key: values[-1] for key, values in h.items()})
            print(
                f"epoch {epoch + 1}/{epochs} {name:>8} (lr={OPTIMIZERS[name][0]:g}): loss {h['loss'][-1]:.4f}, "
                f"test accuracy {h['val_accuracy'][-1]:.2%}, {h['time'][-1]:.1f} s",
                flush=True,
            )
    return histories


def table(histories: dict[str, tn.History]) -> str:
    rows = [
        "| optimizer | learning rate | final training loss | final test accuracy | median time per epoch (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, hist in histories.items():
        h = hist.history
        rows.append(
            f"| {name} | {OPTIMIZERS[name][0]:g} | {h['loss'][-1]:.4f} | {h['val_accuracy'][-1]:.2%} "
            f"| {np.median(h['time']):.2f} |"
        )
    return "\n".join(rows)


def plot(histories: dict[str, tn.History], title: str, path: Path) -> None:
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(13, 5))
    for name, hist in histories.items():
        h = hist.history
        epochs = np.arange(1, len(h["loss"]) + 1)
        label = f"{name} (lr={OPTIMIZERS[name][0]:g})"
        ax_loss.plot(epochs, h["loss"], "o-", color=COLORS[name], lw=2, label=label)
        ax_acc.plot(epochs, 100 * np.array(h["val_accuracy"]), "o-", color=COLORS[name], lw=2, label=label)
    ax_loss.set_yscale("log")
    ax_loss.set_title("Training loss (mean over the epoch)")
    ax_loss.set_ylabel("cross-entropy (log scale)")
    ax_acc.set_title("Test accuracy after each epoch")
    ax_acc.set_ylabel("accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="folder for the PNG and the table")
    parser.add_argument("--quick", action="store_true", help="5,000 training / 2,000 test images, 3 epochs")
    parser.add_argument("--epochs", type=int, default=None, help="default: 5 (3 with --quick)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    epochs = args.epochs or (3 if args.quick else 5)

    (train_x, train_y), (test_x, test_y) = tn.data.load_mnist(progress=False)
    if args.quick:
        train_x, train_y, test_x, test_y = train_x[:5000], train_y[:5000], test_x[:2000], test_y[:2000]
    n_train, n_test = len(train_x), len(test_x)
    print(f"MNIST: {n_train:,} training and {n_test:,} test images, {epochs} epochs, batch size {args.batch_size}")

    histories = train_all(((train_x, train_y), (test_x, test_y)), epochs, args.batch_size, args.seed)

    title = (
        f"One MLP (784-256-128-10, ReLU), same initial weights, five optimizers — "
        f"MNIST, {n_train:,} training images, batch size {args.batch_size}"
    )
    plot(histories, title, args.out / "compare_optimizers.png")
    text = table(histories)
    (args.out / "compare_optimizers.md").write_text(text + "\n", encoding="utf-8")
    print()
    print(text)
    print(f"\nwrote {args.out / 'compare_optimizers.png'} and {args.out / 'compare_optimizers.md'}")


if __name__ == "__main__":
    main()
