"""The language-model ladder on the names: counted bigram, trained bigram, MLP, LSTM, GRU, transformer.

    python examples/names_transformer.py                      # each model with its defaults (many minutes)
    python examples/names_transformer.py --quick --out /tmp   # 200 names, 1 epoch each (seconds)

1. The bigram model in closed form: count every pair of consecutive characters in the training
   names (start/stop token included), add 1 to every count, normalise each row.
2. Each model trained by ``tinynn train --data names --model M`` with its defaults, in ``--runs``
   (a run already there is resumed, or reused if finished).
3. The ladder: test loss in nats per character (the exact mean over the 1,000 test names'
   characters and stop tokens) and its perplexity, with the training loss beside it; and the
   transformer for 10 epochs without dropout, with dropout 0.1, and with makemore's constant
   learning rate of 5e-4 instead of the schedule.
4. Samples from the transformer at three temperatures and with top-k, names of the training set
   marked with '*'; the figure ``names_sampling.png`` (into ``--out``, default docs/figures) shows
   what temperature and top-k do to the distribution of a first letter, and
   ``names_loss_curves.png`` the train and test loss per epoch of each trained model.
See docs/language_models.md.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinynn as tn  # noqa: E402
from tinynn import cli, lm  # noqa: E402
from tinynn.data import VOCAB, load_names  # noqa: E402
from tinynn.runs import read_run  # noqa: E402

MODELS = ("bigram", "mlp", "lstm", "gru", "transformer")
# What the transformer's choices bought: each variant changes the defaults (20 epochs, dropout 0.1,
# warmup + cosine to lr 1e-3) as its options say.
VARIANTS = {
    "transformer-10-epochs": ["--model", "transformer", "--epochs", "10", "--dropout", "0"],
    "transformer-10-epochs-dropout-0.1": ["--model", "transformer", "--epochs", "10", "--dropout", "0.1"],
    "transformer-10-epochs-constant-lr": ["--model", "transformer", "--epochs", "10", "--dropout", "0",
                                          "--scheduler", "none", "--lr", "5e-4"],
}
QUICK = ["--limit", "200", "--epochs", "1"]
SEED = 0


def train(name: str, runs: Path, quick: bool) -> dict:
    """``tinynn train --data names --model NAME`` (or a variant's options) in ``runs/NAME``, resumed if
    there; its run.json."""
    folder = runs / name
    if (folder / "run.json").is_file():
        args = ["train", "--resume", str(folder), "--quiet"]
    else:
        args = ["train", "--data", "names", *VARIANTS.get(name, ["--model", name]), "--out", str(folder), "--quiet"]
        args += QUICK if quick else []
    code = cli.main(args)
    if code:
        raise SystemExit(f"tinynn train ({name}) failed (exit code {code})")
    return read_run(folder)


def sampling_figure(net: tn.Net, path: Path) -> None:
    """The distribution of a name's first letter: the model's, sharpened (T=0.5), flattened (T=2), top-5."""
    logits = net.eval().forward(np.zeros((1, 1), np.int64))[0, -1].astype(np.float64)
    panels = [("temperature 1 (the model)", logits), ("temperature 0.5", logits / 0.5),
              ("temperature 2", logits / 2.0), ("temperature 1, top-k 5", np.where(logits < np.sort(logits)[-5],
                                                                                   -np.inf, logits))]  # fmt: skip
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), sharey=True, layout="constrained")
    for ax, (title, z) in zip(axes, panels, strict=True):
        p = np.exp(lm.log_softmax(z))
        ax.bar(range(len(VOCAB)), p, color="tab:blue")
        ax.set_xticks(range(len(VOCAB)), list(VOCAB), fontsize=7)
        ax.set_title(f"{title}\nentropy {-(p[p > 0] * np.log(p[p > 0])).sum():.2f} nats", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("P(first character)")
    fig.suptitle("The first letter of a name as the transformer draws it")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves_figure(runs: Path, models: list[str], path: Path) -> None:
    """Train (mean of the epoch's batches, dropout on) and test loss per epoch of each trained model."""
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for i, model in enumerate(models):
        h = json.loads((runs / model / "history.json").read_text())["history"]
        epochs = np.arange(1, len(h["loss"]) + 1)
        ax.plot(epochs, h["loss"], color=f"C{i}", ls="--", marker="o", ms=3, label=f"{model} train")
        ax.plot(epochs, h["val_loss"], color=f"C{i}", marker="o", ms=3, label=f"{model} test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (nats per character)")
    ax.grid(alpha=0.3)
    ax.legend(ncol=2, fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 training names, one epoch per model (seconds)")
    parser.add_argument("--out", default="docs/figures", help="folder for the PNG figures")
    parser.add_argument("--runs", default=None, help="folder of the runs (default: runs/names; with --quick a "
                        "temporary folder)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory() if args.quick and args.runs is None else None
    runs = Path(tmp.name if tmp else args.runs or "runs/names")

    train_names, test_names = load_names()
    if args.quick:
        train_names = train_names[:200]
    counted = lm.table_nll(lm.counted_bigram(train_names), test_names)
    results = {m: train(m, runs, args.quick) for m in (*MODELS, *VARIANTS)}

    print(f"\n{len(train_names):,} training names, {len(test_names):,} test names; "
          "loss = nats per character over the test names")
    print(f"{'model':<34} {'params':>8} {'train loss':>10} {'test loss':>10} {'perplexity':>10}")
    print(f"{'bigram (counted, +1)':<34} {27 * 27:>8,} {'':>10} {counted:>10.4f} {math.exp(counted):>10.2f}")
    for m, r in results.items():
        params = tn.Model.load(runs / m / "model.npz", restore_rng=False).net.num_params
        test_loss = r["test_loss"]
        print(f"{m:<34} {params:>8,} {r['train_loss']:>10.4f} {test_loss:>10.4f} {math.exp(test_loss):>10.2f}")
    loss = {m: r["test_loss"] for m, r in results.items()}
    print(f"\ncounted vs trained bigram: {abs(counted - loss['bigram']):.4f} nats apart")
    print(f"mlp beats the bigram: {loss['mlp'] < loss['bigram']}; "
          f"transformer beats the mlp: {loss['transformer'] < loss['mlp']}")
    print("10 epochs, no dropout: warmup + cosine to lr 1e-3 instead of makemore's constant 5e-4: "
          f"{loss['transformer-10-epochs-constant-lr'] - loss['transformer-10-epochs']:+.4f} nats less test loss")
    print("dropout 0.1 for 20 epochs (the default) instead of none for 10: "
          f"{loss['transformer-10-epochs'] - loss['transformer']:+.4f} nats less test loss")
    print("dropout 0.1 instead of none, both for 10 epochs: "
          f"{loss['transformer-10-epochs-dropout-0.1'] - loss['transformer-10-epochs']:+.4f} nats MORE test loss")

    net = tn.Model.load(runs / "transformer" / "model.npz", restore_rng=False).net
    seen, draws = set(train_names), 100 if args.quick else 1000
    for temperature, top_k in ((0.5, None), (1.0, None), (1.5, None), (1.0, 5)):
        names = lm.sample(net, 12, temperature=temperature, top_k=top_k, seed=SEED)
        share = sum(n in seen for n in lm.sample(net, draws, temperature=temperature, top_k=top_k, seed=SEED + 1))
        print(f"\ntemperature {temperature}{f', top-k {top_k}' if top_k else ''}: "
              f"{share / draws:.1%} of {draws} samples are training names")
        print("  " + ", ".join(lm.marked(names, seen)))

    sampling_figure(net, out / "names_sampling.png")
    curves_figure(runs, [m for m in MODELS if m != "bigram"], out / "names_loss_curves.png")
    print(f"\nwrote {out / 'names_sampling.png'} and {out / 'names_loss_curves.png'}")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
