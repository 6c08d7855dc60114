"""Overfitting and regularization: learning curves of an MLP trained on 1,000 MNIST digits.

Methodology: the training set is a small subset (1,000 images, so that the net can memorise it),
the validation set is 5,000 other images of MNIST's training file (used every epoch, to compare
settings and to stop early), and the test set (MNIST's 10,000 test images) is used once, at the
end, for the one setting that validation chose.

Three ways to regularize the same 784-256-256-10 ReLU net, all trained with Adam(lr=1e-3):
none, dropout 0.5 after each hidden layer, decoupled weight decay (AdamW), and early stopping
(the unregularized run, stopped when validation loss has not improved for `PATIENCE` epochs,
keeping the best weights). The training loop is written out (model.train_step and
model.evaluate), so early stopping is a few visible lines rather than a callback.

Writes into --out (default runs/figures):
  regularization_curves.png   training and validation loss per epoch for each setting,
                              and validation accuracy of all of them

    python examples/regularization.py                     # 60 epochs per setting (a few minutes)
    python examples/regularization.py --quick --out /tmp/figs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinynn as tn  # noqa: E402
from tinynn.layers import Dense, Dropout, ReLU  # noqa: E402

PATIENCE = 10  # epochs without a better validation loss before early stopping gives up
SETTINGS = {  # name -> (dropout probability, AdamW weight decay)
    "none": (0.0, 0.0),
    "dropout 0.5": (0.5, 0.0),
    "weight decay 1.0 (AdamW)": (0.0, 1.0),
}
COLORS = {"none": "tab:red", "dropout 0.5": "tab:blue", "weight decay 1.0 (AdamW)": "tab:green"}


def build(width: int, dropout: float, weight_decay: float) -> tn.Model:
    layers = []
    for n_in in (784, width):
        layers += [Dense(n_in, width), ReLU()] + ([Dropout(dropout)] if dropout else [])
    net = tn.Net([*layers, Dense(width, 10)])
    optimizer = tn.optim.AdamW(lr=1e-3, weight_decay=weight_decay) if weight_decay else tn.optim.Adam(lr=1e-3)
    return tn.Model(net, tn.losses.SoftmaxCrossEntropy(), optimizer)


def train(model: tn.Model, data, epochs: int) -> dict[str, list[float]]:
    """A plain loop: one epoch of train_step, then the validation metrics; returns the curves.

    Also tracks early stopping: the epoch of the best validation loss and its weights.
    """
    (x, y), (x_val, y_val) = data
    batches = tn.data.BatchIterator(50)(x, y)
    curves = {"loss": [], "val_loss": [], "val_accuracy": []}
    best, best_epoch, best_params, stop_epoch = np.inf, 0, model.net.params.copy(), None
    for epoch in range(1, epochs + 1):
        losses = [model.train_step(xb, yb) * len(xb) for xb, yb in batches]
        curves["loss"].append(sum(losses) / len(x))  # mean over the epoch, in training mode
        val = model.evaluate(x_val, y_val)
        curves["val_loss"].append(val["loss"])
        curves["val_accuracy"].append(val["accuracy"])
        if val["loss"] < best:  # early stopping: remember the best weights ...
            best, best_epoch, best_params = val["loss"], epoch, model.net.params.copy()
        elif stop_epoch is None and epoch - best_epoch >= PATIENCE:
            stop_epoch = epoch  # ... and where a run with early stopping would have ended
    curves["best_epoch"], curves["stop_epoch"] = best_epoch, stop_epoch or epochs
    curves["best_params"] = best_params
    return curves


def plot(results: dict[str, dict], out: Path) -> Path:
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.8))
    for ax in axes[1:-1]:
        ax.sharey(axes[0])  # one loss axis for the three settings, so their curves compare by eye
    for ax, (name, c) in zip(axes, results.items(), strict=False):
        epochs = np.arange(1, len(c["loss"]) + 1)
        ax.plot(epochs, c["loss"], color=COLORS[name], lw=1.8, label="training loss (train mode)")
        ax.plot(epochs, c["val_loss"], color=COLORS[name], lw=1.8, ls="--", label="validation loss")
        if name == "none":
            ax.axvline(c["best_epoch"], color="black", lw=1, ls=":")
            ax.axvline(c["stop_epoch"], color="grey", lw=1, ls="-.")
            # x in data, y in axes fraction: the labels stay put when the shared y axis grows
            ax.annotate(f"best validation loss\n(epoch {c['best_epoch']})", (c["best_epoch"], 0.88),
                        xycoords=ax.get_xaxis_transform(), xytext=(5, 0), textcoords="offset points", fontsize=8)
            ax.annotate(f"early stop\n(patience {PATIENCE})", (c["stop_epoch"], 0.74),
                        xycoords=ax.get_xaxis_transform(), xytext=(5, 0), textcoords="offset points", fontsize=8)
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    axes[0].set_ylabel("cross-entropy (log scale)")
    ax = axes[-1]
    for name, c in results.items():
        ax.plot(np.arange(1, len(c["val_accuracy"]) + 1), c["val_accuracy"], color=COLORS[name], lw=1.6, label=name)
    ax.set_title("validation accuracy")
    ax.set_xlabel("epoch")
    lo = min(min(c["val_accuracy"][len(c["val_accuracy"]) // 10 :]) for c in results.values())
    ax.set_ylim(lo - 0.01, None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("An MLP memorising 1,000 MNIST digits: where regularization helps", fontsize=13)
    fig.tight_layout()
    path = out / "regularization_curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/figures"), help="folder for the PNG")
    parser.add_argument("--quick", action="store_true", help="a smaller net, fewer images and epochs (for tests)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (x_all, y_all), (x_test, y_test) = tn.data.load_mnist(progress=False)
    n_train, n_val, width, epochs = (300, 1000, 64, 15) if args.quick else (1000, 5000, 256, 60)
    train_set = (x_all[:n_train], y_all[:n_train])
    val_set = (x_all[-n_val:], y_all[-n_val:])  # never trained on: the end of the training file

    results, models = {}, {}
    print(f"{'setting':<26} {'best val loss':>13} {'at epoch':>8} {'val acc there':>13} {'final train loss':>16}")
    for name, (dropout, weight_decay) in SETTINGS.items():
        tn.seed(0)  # the same initial weights and batch order for every setting
        models[name] = build(width, dropout, weight_decay)
        c = results[name] = train(models[name], (train_set, val_set), epochs)
        i = c["best_epoch"] - 1
        print(f"{name:<26} {c['val_loss'][i]:13.4f} {c['best_epoch']:8d} {c['val_accuracy'][i]:13.4f}"
              f" {c['loss'][-1]:16.4f}")
    print("wrote", plot(results, args.out))

    # Early stopping = the unregularized run with the weights of its best validation epoch.
    none = results["none"]
    print(f"early stopping (patience {PATIENCE}) would stop at epoch {none['stop_epoch']}, "
          f"keeping epoch {none['best_epoch']}")
    # Validation picks one of four candidates; the test set is then used once, for that one.
    candidates = {f"{name} (last epoch)": c["val_accuracy"][-1] for name, c in results.items()}
    candidates["early stopping"] = none["val_accuracy"][none["best_epoch"] - 1]
    for name, acc in candidates.items():
        print(f"  validation accuracy, {name:<36} {acc:.4f}")
    chosen = max(candidates, key=candidates.get)
    if chosen == "early stopping":
        model = models["none"]
        model.net.params[...] = none["best_params"]
    else:
        model = models[chosen.removesuffix(" (last epoch)")]
    print(f"validation chooses: {chosen}; its test accuracy, measured once: "
          f"{model.evaluate(x_test, y_test)['accuracy']:.4f}")

if __name__ == "__main__":
    main()
