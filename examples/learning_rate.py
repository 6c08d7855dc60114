"""Learning rate, schedules and batch size, measured on MNIST with a 784-256-128-10 ReLU MLP.

1. An LR range test (Smith, 2017): one short run whose learning rate grows exponentially at every
   step; the loss against the rate shows where training is too slow, where it is fast, and where
   it diverges.
2. Warmup + cosine: a constant rate, cosine decay, and linear warmup followed by cosine decay, at
   a peak rate taken from the range test.
3. Batch size: how the noise of the mini-batch gradient falls with the batch size (as 1/B), and
   how the best SGD learning rate for one epoch moves with it.

Writes into --out (default runs/figures):
  learning_rate_range_test.png, learning_rate_schedules.png, learning_rate_batch_size.png

    python examples/learning_rate.py                     # full MNIST (a few minutes)
    python examples/learning_rate.py --quick --out /tmp/figs
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
from tinynn.layers import Dense, ReLU  # noqa: E402
from tinynn.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR  # noqa: E402


def mlp() -> tn.Net:
    return tn.Net([Dense(784, 256), ReLU(), Dense(256, 128), ReLU(), Dense(128, 10)])


def model_with(optimizer) -> tn.Model:
    return tn.Model(mlp(), tn.losses.SoftmaxCrossEntropy(), optimizer)


def batches_forever(x, y, batch_size: int):
    epochs = tn.data.BatchIterator(batch_size)(x, y)
    while True:
        yield from epochs


def safe_step(model: tn.Model, xb: np.ndarray, yb: np.ndarray) -> float:
    """model.train_step, or inf once training has diverged (the loss refuses NaN/Inf predictions)."""
    try:
        return model.train_step(xb, yb)
    except ValueError:
        return math.inf


# --- 1. the LR range test ----------------------------------------------------------------------


def range_test(x, y, steps: int, lr_min: float = 1e-5, lr_max: float = 10.0):
    """Loss per step while lr grows from lr_min to lr_max geometrically; stops once the loss explodes."""
    tn.seed(0)
    model = model_with(tn.optim.SGDm(lr=lr_min, momentum=0.9))
    factor = (lr_max / lr_min) ** (1 / (steps - 1))
    lrs, losses, smooth, avg = [], [], [], 0.0
    with np.errstate(all="ignore"):
        for t, (xb, yb) in enumerate(batches_forever(x, y, 64), 1):
            lr = model.optimizer.lr
            loss = safe_step(model, xb, yb)
            if not math.isfinite(loss):
                break
            avg = 0.9 * avg + 0.1 * loss  # an exponential moving average, bias-corrected below
            lrs.append(lr)
            losses.append(loss)
            smooth.append(avg / (1 - 0.9**t))
            if t == steps or smooth[-1] > 4 * min(smooth):
                break
            model.optimizer.lr = lr * factor
    return np.array(lrs), np.array(losses), np.array(smooth)


def plot_range_test(lrs, losses, smooth, out: Path) -> tuple[Path, float, float]:
    best = float(lrs[int(np.argmin(smooth))])
    pick = best / 10
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.plot(lrs, losses, color="0.75", lw=0.8, label="loss of each batch")
    ax.plot(lrs, smooth, color="tab:blue", lw=2, label="smoothed (moving average)")
    ax.axvline(best, color="tab:red", ls="--", lw=1)
    ax.axvline(pick, color="tab:green", ls="--", lw=1)
    ax.text(best, ax.get_ylim()[1] * 0.95, f" lowest smoothed loss\n lr = {best:.2g}", color="tab:red",
            va="top", fontsize=9)
    ax.text(pick, ax.get_ylim()[1] * 0.75, f"a safe choice: 1/10 of it\nlr = {pick:.2g} ", color="tab:green",
            va="top", ha="right", fontsize=9)
    ax.axhline(math.log(10), color="black", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (grows by a constant factor every step)")
    ax.set_ylabel("training loss")
    ax.set_title("LR range test: SGD with momentum 0.9, batch 64, one short run")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    path = out / "learning_rate_range_test.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path, best, pick


# --- 2. warmup + cosine ----------------------------------------------------------------------------


def warmup_cosine(optimizer, warmup: int, total: int, start_factor: float = 0.01) -> SequentialLR:
    """Linear warmup from `start_factor` x lr to lr over `warmup` steps, then cosine decay to 0 at `total`."""
    return SequentialLR(
        optimizer,
        [LinearLR(optimizer, start_factor=start_factor, total_iters=warmup),
         CosineAnnealingLR(optimizer, T_max=total - warmup)],
        milestones=[warmup],
    )  # fmt: skip


def schedules(x, y, x_val, y_val, peak: float, steps: int, out: Path) -> tuple[Path, dict[str, float]]:
    warmup = steps // 10
    makers = {
        f"constant lr {peak:.2g}": lambda opt: None,
        "cosine decay to 0": lambda opt: CosineAnnealingLR(opt, T_max=steps),
        f"warmup ({warmup} steps) + cosine": lambda opt: warmup_cosine(opt, warmup, steps),
    }
    fig, (ax_lr, ax_loss) = plt.subplots(1, 2, figsize=(15, 5))
    finals = {}
    for (name, make), color in zip(makers.items(), ("tab:red", "tab:blue", "tab:green"), strict=True):
        tn.seed(0)
        model = model_with(tn.optim.SGDm(lr=peak, momentum=0.9))
        scheduler = make(model.optimizer)
        lrs, losses = [], []
        with np.errstate(all="ignore"):
            for _, (xb, yb) in zip(range(steps), batches_forever(x, y, 128), strict=False):
                lrs.append(model.optimizer.lr)
                losses.append(safe_step(model, xb, yb))
                if scheduler is not None:
                    scheduler.step()
        val = model.evaluate(x_val, y_val) if all(map(math.isfinite, losses)) else {"accuracy": float("nan")}
        finals[name] = val["accuracy"]
        ax_lr.plot(lrs, color=color, lw=2, label=name)
        k = max(1, steps // 40)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax_loss.plot(np.arange(len(smooth)) + k - 1, smooth, color=color, lw=1.6,
                     label=f"{name}: validation accuracy {val['accuracy']:.4f}")
    ax_lr.set_title("learning rate per step")
    ax_lr.set_xlabel("step")
    ax_lr.legend()
    ax_lr.grid(alpha=0.3)
    ax_loss.set_yscale("log")
    ax_loss.set_title(f"training loss (mean of {max(1, steps // 40)} steps)")
    ax_loss.set_xlabel("step (batch 128, SGD with momentum 0.9)")
    ax_loss.legend(fontsize=9)
    ax_loss.grid(alpha=0.3, which="both")
    fig.suptitle(f"Three schedules with the same peak rate, {steps} steps", fontsize=13)
    fig.tight_layout()
    path = out / "learning_rate_schedules.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path, finals


# --- 3. batch size -----------------------------------------------------------------------------------


def gradient_noise(x, y, sizes: list[int], draws: int) -> dict[int, float]:
    """E ||g_B - g||^2 / ||g||^2 at the initial weights, g the gradient over all of x."""
    tn.seed(0)
    model = model_with(tn.optim.SGD(lr=0.0))
    _, g = model.backward(model.forward(x), y)
    full = g.astype(np.float64)
    rng = np.random.default_rng(0)
    noise = {}
    for b in sizes:
        errs = []
        for _ in range(draws):
            idx = rng.choice(len(x), size=b, replace=False)
            _, gb = model.backward(model.forward(x[idx]), y[idx])
            errs.append(float(np.sum((gb - full) ** 2)))
        noise[b] = float(np.mean(errs) / np.sum(full**2))
    return noise


def best_lr_per_batch(x, y, x_val, y_val, sizes: list[int], grid: list[float]) -> dict[int, list[float]]:
    """Validation loss after one epoch of plain SGD, for every (batch size, lr)."""
    results = {}
    for b in sizes:
        row = []
        for lr in grid:
            tn.seed(0)
            model = model_with(tn.optim.SGD(lr=lr))
            with np.errstate(all="ignore"):
                ok = all(math.isfinite(safe_step(model, xb, yb)) for xb, yb in tn.data.BatchIterator(b)(x, y))
            row.append(model.evaluate(x_val, y_val)["loss"] if ok and np.isfinite(model.net.params).all() else math.nan)
        results[b] = row
    return results


def plot_batch_size(noise, curves, grid, out: Path) -> Path:
    fig, (ax_n, ax_lr) = plt.subplots(1, 2, figsize=(15, 5))
    sizes = np.array(list(noise))
    ax_n.loglog(sizes, list(noise.values()), "o-", color="tab:blue", lw=2, label="measured")
    ref = list(noise.values())[0] * sizes[0] / sizes
    ax_n.loglog(sizes, ref, ":", color="black", label=r"$\propto 1/B$")
    ax_n.set_xlabel("batch size B")
    ax_n.set_ylabel(r"$E\,\|g_B - g\|^2 / \|g\|^2$")
    ax_n.set_title("noise of the mini-batch gradient (at the initial weights)")
    ax_n.legend()
    ax_n.grid(alpha=0.3, which="both")
    diverged_any = False
    for j, ((b, row), color) in enumerate(zip(curves.items(), plt.cm.plasma(np.linspace(0, 0.8, len(curves))),
                                              strict=True)):
        row = np.array(row)
        ax_lr.plot(grid, row, "o-", color=color, lw=1.8, label=f"batch {b}")
        if np.isfinite(row).any():
            i = int(np.nanargmin(row))
            ax_lr.plot(grid[i], row[i], "*", color=color, ms=16, mec="black")
        # A diverged run has no validation loss: an X at the top of the panel, one row per batch size.
        gone = [lr for lr, v in zip(grid, row, strict=True) if not np.isfinite(v)]
        if gone:
            diverged_any = True
            ax_lr.plot(gone, [0.96 - 0.04 * j] * len(gone), "X", color=color, ms=11, mec="black",
                       transform=ax_lr.get_xaxis_transform(), clip_on=False)
    ax_lr.axhline(math.log(10), color="black", ls=":", lw=1)
    ax_lr.text(grid[0], math.log(10) * 1.04, "ln 10: guessing", fontsize=9)
    lo, hi = ax_lr.get_ylim()
    ax_lr.set_ylim(lo, hi * 1.8)  # headroom for the X marks above the curves
    ax_lr.set_xscale("log")
    ax_lr.set_yscale("log")
    ax_lr.set_xlabel("learning rate (plain SGD)")
    ax_lr.set_ylabel("validation loss after one epoch")
    ax_lr.set_title("best learning rate per batch size (star), same number of samples seen"
                    + ("\nX at the top: the run diverged (no validation loss)" if diverged_any else ""))
    ax_lr.legend(loc="lower left")
    ax_lr.grid(alpha=0.3, which="both")
    fig.tight_layout()
    path = out / "learning_rate_batch_size.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/figures"), help="folder for the PNGs")
    parser.add_argument("--quick", action="store_true", help="subsets and short runs (for tests)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (x_all, y_all), _ = tn.data.load_mnist(progress=False)
    x_val, y_val = x_all[-5000:], y_all[-5000:]  # validation: never trained on
    x, y = x_all[:-5000], y_all[:-5000]
    if args.quick:
        x, y, x_val, y_val = x[:2000], y[:2000], x_val[:1000], y_val[:1000]

    lrs, losses, smooth = range_test(x, y, 60 if args.quick else 400)
    path, best, pick = plot_range_test(lrs, losses, smooth, args.out)
    print(f"range test: lowest smoothed loss at lr {best:.3g}; 1/10 of it: {pick:.3g}; wrote {path}")

    peak = 2 * best  # on purpose near the edge of stability, where schedules matter
    path, finals = schedules(x, y, x_val, y_val, peak, 60 if args.quick else 600, args.out)
    for name, acc in finals.items():
        print(f"  {name:<34} validation accuracy {acc:.4f}")
    print("wrote", path)

    sizes = [8, 32, 128, 512] if args.quick else [8, 16, 32, 64, 128, 256, 512, 1024]
    noise = gradient_noise(x[:2000] if args.quick else x[:20000], y[:2000] if args.quick else y[:20000],
                           sizes, 5 if args.quick else 20)
    print("gradient noise E|g_B - g|^2/|g|^2: " + ", ".join(f"B={b}: {v:.3g}" for b, v in noise.items()))
    grid = [0.01, 0.1, 1.0] if args.quick else [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    batch_sizes = [16, 256] if args.quick else [16, 64, 256]
    subset = slice(0, 1000) if args.quick else slice(0, 10_000)
    curves = best_lr_per_batch(x[subset], y[subset], x_val, y_val, batch_sizes, grid)
    for b, row in curves.items():
        print(f"  batch {b:>4}: validation loss " + ", ".join(f"lr {lr:g}: {v:.3f}" for lr, v in zip(grid, row,
                                                                                                  strict=True)))
    print("wrote", plot_batch_size(noise, curves, grid, args.out))


if __name__ == "__main__":
    main()
