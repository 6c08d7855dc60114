"""Compare tinynn's optimizers on MNIST with a sweep: several learning rates and seeds per optimizer.

One MLP (784-256-128-10, ReLU, no dropout, no learning-rate schedule) is trained with each optimizer
of tinynn.optim (AdamW included) at three learning rates around its usual starting point, each with
several seeds. Every run is a `tinynn train` run of a `tn.sweep` (local worker processes); runs with
the same seed start from the same weights and see the same batches, so only the optimizer and its
learning rate differ. Accuracy is measured on the validation split (the last 5,000 training images,
held out), never on the test set, which is reported once per run at the end.

Writes into `--out` (default `sweeps/compare_optimizers`, outside the tracked files):
`compare_optimizers.png` (validation accuracy per epoch, mean and min-max band over the seeds, for
each optimizer at its best learning rate; final validation accuracy vs learning rate),
`compare_optimizers.md` (a Markdown table, also printed) and the sweep itself in `sweep/`
(results.csv and one run folder per run; rerunning resumes it).

    python examples/compare_optimizers.py                      # 6 optimizers x 3 lr x 3 seeds, 5 epochs
    python examples/compare_optimizers.py --quick --out /tmp/c # 2,000 images, 1 lr, 2 seeds, 2 epochs
    cp sweeps/compare_optimizers/compare_optimizers.png docs/figures/   # to update the docs figure
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import tinynn as tn
from tinynn.sweeps import best_per_optimizer, plot

# CLI name -> (name shown, learning rates: a factor of ~3 either side of the usual starting point)
OPTIMIZERS = {
    "sgd": ("SGD", [0.03, 0.1, 0.3]),
    "sgdm": ("SGDm", [0.01, 0.03, 0.1]),
    "adagrad": ("Adagrad", [0.003, 0.01, 0.03]),
    "rmsprop": ("RMSProp", [3e-4, 1e-3, 3e-3]),
    "adam": ("Adam", [3e-4, 1e-3, 3e-3]),
    "adamw": ("AdamW", [3e-4, 1e-3, 3e-3]),
}
FIXED_OPTIONS = {"hidden": [[256, 128]], "dropout": [0.0], "scheduler": ["none"], "batch_size": [128]}


def grid(seeds: int, epochs: int, quick: bool) -> list[dict]:
    """One grid per optimizer (its own learning rates), all with the same seeds and options."""
    return [
        {"optimizer": [name], "lr": lrs[1:2] if quick else lrs, "seed": list(range(seeds)), "epochs": [epochs],
         **FIXED_OPTIONS}
        for name, (_, lrs) in OPTIMIZERS.items()
    ]  # fmt: skip


def mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2%}"
    return f"{statistics.mean(values):.2%} ± {statistics.stdev(values):.2%}"


def table(rows: list[dict]) -> str:
    """One row per optimizer at its best learning rate (by mean final validation accuracy)."""
    lines = [
        "| optimizer | best learning rate | seeds | final validation accuracy | test accuracy "
        "| training time per epoch (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in best_per_optimizer(rows).items():
        per_epoch = statistics.median(r["train_seconds"] / r["epochs"] for r in runs)
        lines.append(
            f"| {OPTIMIZERS[name][0]} | {runs[0]['lr']:g} | {len(runs)} "
            f"| {mean_sd([r['final_val_accuracy'] for r in runs])} | {mean_sd([r['test_accuracy'] for r in runs])} "
            f"| {per_epoch:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("sweeps/compare_optimizers"),
                        help="folder for the figure, the table and the sweep")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="2,000 training images, 1 lr, 2 seeds, 2 epochs")
    parser.add_argument("--epochs", type=int, default=None, help="default: 5 (2 with --quick)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per setting (default: 3, 2 with --quick)")
    parser.add_argument("--workers", type=int, default=None, help="runs at a time (default: one per core)")
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 5)
    seeds = args.seeds or (2 if args.quick else 3)
    fixed = {"limit": 2000} if args.quick else {}

    rows = tn.sweep(grid(seeds, epochs, args.quick), args.out / "sweep", workers=args.workers, **fixed)
    failed = [r for r in rows if r["status"] != "finished"]
    if failed:
        raise SystemExit(f"{len(failed)} runs failed: {failed[0]['name']}: {failed[0]['error']}")

    n_lr = 1 if args.quick else 3
    n_train = "1,800" if args.quick else "55,000"  # the last 10% (quick) or 5,000 images are held out
    title = (f"One MLP (784-256-128-10, ReLU), 6 optimizers x {n_lr} learning rate(s) x {seeds} seeds, batch 128\n"
             f"MNIST: {n_train} training images; accuracy on the held-out validation images, not the test set")
    plot(rows, args.out / "compare_optimizers.png", title=title)
    text = table(rows)
    (args.out / "compare_optimizers.md").write_text(text + "\n", encoding="utf-8")
    print()
    print(text)
    print(f"\nwrote {args.out / 'compare_optimizers.png'} and {args.out / 'compare_optimizers.md'}")


if __name__ == "__main__":
    main()
