"""The ``tinynn`` command: train an MLP on MNIST, or evaluate a saved one.

    tinynn train --hidden 256 128 --optimizer adam --lr 1e-3 --epochs 10 --out runs/mnist
    tinynn evaluate runs/mnist/model.npz

``python -m tinynn`` is the same command.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

IMAGE_SIZE, NUM_CLASSES = 784, 10

DEFAULTS = {
    "model": "mlp",
    "hidden": [256, 128],
    "dropout": 0.1,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "scheduler": "cosine",
    "epochs": 10,
    "batch_size": 128,
    "val_size": 5000,
    "seed": 0,
    "out": "runs/mnist",
}


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= minimum, or a usage error naming the rule."""

    rule = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
        return value

    return parse


_positive_int, _nonneg_int = _int_at_least(1), _int_at_least(0)


def _float_in(lo: float, hi: float, lo_open: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < lo or value > hi or (lo_open and value == lo):
            interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
            raise argparse.ArgumentTypeError(f"must be in {interval}, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    from . import optim, zoo

    optimizers = sorted(optim.OPTIMIZERS)
    parser = argparse.ArgumentParser(
        prog="tinynn",
        description="tinynn: train and evaluate small numpy neural networks on MNIST.",
        epilog="Run 'tinynn train --help' or 'tinynn evaluate --help' for the options of each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate}", required=True)
    d = DEFAULTS

    tr = sub.add_parser(
        "train",
        help="train an MLP on MNIST; save model.npz, history.json and curves.png",
        description="Train a fully connected net (784 -> hidden... -> 10, ReLU) on MNIST with softmax "
        "cross-entropy. Writes model.npz (checkpoint), history.json (per-epoch metrics) and curves.png "
        "(loss/accuracy plot) into --out, then prints the test accuracy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    tr.add_argument("--model", choices=sorted(zoo.NETS), default=d["model"],
                    help="which net: mlp (784 -> hidden... -> 10) or cnn (LeNet-5; defaults lr 2e-3, 8 epochs)")
    tr.add_argument("--hidden", type=_positive_int, nargs="+", default=d["hidden"], metavar="N",
                    help="sizes of the hidden layers")
    tr.add_argument("--dropout", type=_float_in(0, 0.95), default=d["dropout"],
                    help="dropout probability after each hidden layer (0 = none)")
    tr.add_argument("--optimizer", choices=optimizers, default=d["optimizer"], help="optimizer")
    tr.add_argument("--lr", type=_float_in(0, 10, lo_open=True), default=None,
                    # "%(default).0s" prints nothing; it stops argparse from adding "(default: None)"
                    help=f"learning rate (> 0) (default: {d['lr']:g}; cnn: 2e-3)%(default).0s")
    tr.add_argument("--weight-decay", type=_float_in(0, 1), default=d["weight_decay"],
                    help="weight decay (L2; decoupled for adamw)")
    tr.add_argument("--scheduler", choices=("none", "cosine", "step"), default=d["scheduler"],
                    help="learning-rate schedule: cosine decays lr to 0 over the run (per batch); "
                    "step multiplies it by 0.1 at 50%% and 75%% of the epochs")
    tr.add_argument("--epochs", type=_positive_int, default=None,
                    help=f"number of epochs (default: {d['epochs']}; cnn: 8)%(default).0s")
    tr.add_argument("--batch-size", type=_positive_int, default=d["batch_size"], help="mini-batch size")
    tr.add_argument("--val-size", type=_nonneg_int, default=d["val_size"],
                    help="training images held out for validation (the last ones; at most 10%% of them)")
    tr.add_argument("--seed", type=_nonneg_int, default=d["seed"], help="random seed (init, shuffling, dropout)")
    tr.add_argument("--data", metavar="DIR", default=None,
                    help="folder holding the four MNIST files (default: $TINYNN_DATA/mnist, the repo's "
                    "data/mnist, or ~/.cache/tinynn/mnist, downloading if missing)")
    tr.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                    help="train on the first N training images only (quick runs)")
    tr.add_argument("--out", default=d["out"], metavar="DIR", help="output folder")
    tr.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    tr.set_defaults(run=_train)

    ev = sub.add_parser(
        "evaluate",
        help="evaluate a saved model on the MNIST test set",
        description="Load a checkpoint written by 'tinynn train' (or Model.save) and print its test loss, "
        "accuracy, confusion matrix and per-class precision/recall/F1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ev.add_argument("model", metavar="MODEL", help="checkpoint file, e.g. runs/mnist/model.npz")
    ev.add_argument("--data", metavar="DIR", default=None, help="folder holding the four MNIST files")
    ev.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                    help="evaluate on the first N test images only")
    ev.add_argument("--batch-size", type=_positive_int, default=1024, help="images per forward pass")
    ev.set_defaults(run=_evaluate)
    return parser


class _Fail(Exception):
    """A runtime failure (no data, divergence): message to stderr, exit code 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tinynn`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args, parser)
    except _Fail as e:
        print(f"tinynn {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tinynn {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


def _load_data(root: str | None):
    from .data import MNISTNotFoundError, load_mnist

    try:
        # uint8 keeps the 60k images at 47 MB; BatchIterator scales each batch to float32.
        return load_mnist(root, dtype=np.uint8)
    except (MNISTNotFoundError, ValueError, OSError) as e:
        raise _Fail(str(e)) from None


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    import tinynn as tn
    from tinynn import zoo

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out} exists and is not a directory")

    for key in ("lr", "epochs"):  # options left unset take the model's default, else the CLI's
        if getattr(args, key) is None:
            setattr(args, key, zoo.TRAIN_DEFAULTS.get(args.model, {}).get(key, DEFAULTS[key]))
    tn.seed(args.seed)
    (x, y), (x_test, y_test) = _load_data(args.data)
    if args.limit is not None:
        x, y = x[: args.limit], y[: args.limit]
    n_val = min(args.val_size, len(x) // 10)
    if n_val:
        x, y, x_val, y_val = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]  # views, no copies

    net = zoo.mlp(args.hidden, args.dropout) if args.model == "mlp" else zoo.NETS[args.model]()

    kwargs = {"lr": args.lr}
    if args.weight_decay:
        kwargs["weight_decay"] = args.weight_decay
    optimizer = tn.optim.get(args.optimizer, **kwargs)
    scheduler, step_unit = None, "epoch"
    if args.scheduler == "cosine":
        steps = args.epochs * -(-len(x) // args.batch_size)
        scheduler, step_unit = tn.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps), "batch"
    elif args.scheduler == "step":
        milestones = sorted({max(1, args.epochs // 2), max(1, 3 * args.epochs // 4)})
        scheduler = tn.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), optimizer)

    verbose = 0 if args.quiet else 1
    if verbose:
        print(net.summary(input_shape=(IMAGE_SIZE,)))
        print(f"training on {len(x):,} images, validating on {n_val:,}; {args.optimizer} lr={args.lr:g}, "
              f"scheduler={args.scheduler}, batch size {args.batch_size}, {args.epochs} epochs")
    start = time.perf_counter()
    try:
        history = model.fit(
            x, y, epochs=args.epochs, batch_size=args.batch_size,
            validation_data=(x_val, y_val) if n_val else None,
            scheduler=scheduler, scheduler_step=step_unit, verbose=verbose,
        )  # fmt: skip
    except tn.model.TrainingDiverged as e:
        raise _Fail(str(e)) from None
    elapsed = time.perf_counter() - start

    test = model.evaluate(x_test, y_test)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.npz")
    history.save(out / "history.json")
    title = f"MLP {'-'.join(map(str, [IMAGE_SIZE, *args.hidden, 10]))}" if args.model == "mlp" else "LeNet-5"
    history.plot(out / "curves.png", title=title)
    if verbose:
        per_epoch = elapsed / args.epochs
        print(f"trained in {elapsed:.1f}s ({per_epoch:.1f}s/epoch); wrote model.npz, history.json, "
              f"curves.png to {out}")
    print(f"test accuracy: {test['accuracy']:.4f} (loss {test['loss']:.4f})")


def _evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    import tinynn as tn

    path = Path(args.model)
    if not path.is_file():
        parser.error(f"model file not found: {path}")
    try:
        model = tn.Model.load(path, restore_rng=False)
    except ValueError as e:
        parser.error(str(e))
    try:  # any net whose first layer accepts a flat 784-pixel row (Dense, Reshape((1, 28, 28)), ...)
        model.predict(np.zeros((1, IMAGE_SIZE), np.uint8))
    except ValueError as e:
        parser.error(f"{path}: the model does not take MNIST's {IMAGE_SIZE}-pixel images ({e})")

    _, (x, y) = _load_data(args.data)
    if args.limit is not None:
        x, y = x[: args.limit], y[: args.limit]
    logits = model.predict(x, batch_size=args.batch_size)  # one pass over the test set serves every number
    preds = logits.argmax(axis=1)
    cm = tn.metrics.confusion_matrix(y, preds, num_classes=NUM_CLASSES)

    print(f"{path}: {len(x):,} test images")
    print(f"test loss: {model.loss.loss(logits, y):.4f}")
    print(f"test accuracy: {tn.metrics.accuracy(preds, y):.4f}")
    print("\nconfusion matrix (rows: true class, columns: predicted class)")
    width = max(5, len(str(cm.max())) + 1)
    print("     " + "".join(f"{c:>{width}}" for c in range(NUM_CLASSES)))
    for i, row in enumerate(cm):
        print(f"{i:>4} " + "".join(f"{v:>{width}}" for v in row))
    print()
    print(tn.metrics.classification_report(y, preds, num_classes=NUM_CLASSES))
