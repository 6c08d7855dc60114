"""The learning rate over a run: linear warmup then cosine decay (SequentialLR), stepped per batch.

Trains a small MLP on MNIST with Adam and records the lr every batch with a callback, next to
the batch loss. One PNG: lr per step (left) and the loss (right), for the recipe of
docs/training.md.

    python examples/lr_schedules.py                  # into docs/figures
    python examples/lr_schedules.py --quick --out /tmp/figs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinynn as tn  # noqa: E402
from tinynn.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class RecordLoss(tn.Callback):
    """Every batch's loss (the History keeps one mean per epoch)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        self.losses.append(logs["loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few thousand images, for the tests")
    parser.add_argument("--out", default=str(ROOT / "docs" / "figures"), help="folder for the PNG")
    args = parser.parse_args()

    (x, y), _ = tn.data.load_mnist(dtype=np.uint8)
    n, epochs = (4000, 3) if args.quick else (60000, 5)
    x, y = x[:n], y[:n]
    batch_size = 128
    steps = epochs * -(-n // batch_size)
    warmup = steps // 10

    tn.seed(0)
    net = tn.Net([tn.layers.Dense(784, 128), tn.layers.ReLU(), tn.layers.Dense(128, 10)])
    opt = tn.optim.Adam(lr=3e-3)
    sched = SequentialLR(
        opt, [LinearLR(opt, start_factor=0.01, total_iters=warmup), CosineAnnealingLR(opt, T_max=steps - warmup)],
        milestones=[warmup],
    )  # fmt: skip
    lrs = [sched.lr_at(t) for t in range(steps)]  # closed form: the lr batch t trains with
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), opt)
    record = RecordLoss()
    model.fit(x, y, epochs=epochs, batch_size=batch_size, scheduler=sched, scheduler_step="batch",
              callbacks=[record], verbose=0)  # fmt: skip
    assert np.isclose(model.history.history["lr"][1], lrs[steps // epochs])  # the run used the closed form

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    ax1.plot(lrs)
    ax1.axvline(warmup, color="gray", ls=":", label=f"milestone (step {warmup})")
    ax1.set(xlabel="step (batch)", ylabel="learning rate", title="LinearLR warmup, then CosineAnnealingLR")
    ax1.legend()
    ax1.grid(alpha=0.3)
    loss = np.array(record.losses)
    smooth = np.convolve(loss, np.ones(20) / 20, mode="valid")
    ax2.plot(loss, alpha=0.3, label="batch loss")
    ax2.plot(np.arange(19, len(loss)), smooth, label="mean of 20 batches")
    ax2.set(xlabel="step (batch)", ylabel="training loss", yscale="log", title=f"MLP on {n:,} MNIST images, Adam")
    ax2.legend()
    ax2.grid(alpha=0.3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "lr_warmup_cosine.png", dpi=100)
    print(f"wrote {out / 'lr_warmup_cosine.png'}; final training loss {model.history.history['loss'][-1]:.4f}")


if __name__ == "__main__":
    main()
