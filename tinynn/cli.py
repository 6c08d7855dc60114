"""The ``tinynn`` command: train a net on MNIST, resume an interrupted run, evaluate a saved one, sweep a grid.

    tinynn train                              # the default MLP, into runs/mnist (runs/mnist-2, ... if taken)
    tinynn train --hidden 256 128 --optimizer adam --lr 1e-3 --epochs 10 --out runs/wide
    tinynn train --resume runs/mnist          # continue an interrupted run where it stopped
    tinynn evaluate runs/mnist/model.npz
    tinynn sweep --optimizer adam sgdm --lr 1e-3 1e-2 --seed 0 1 2 --out sweeps/opt
    tinynn train --data names --model transformer --out runs/names   # a character-level language model
    tinynn sample runs/names -n 20 --temperature 0.8

A run folder (``--out``) holds ``run.json`` (the options and the run's status), ``model.npz`` (the
checkpoint, rewritten atomically after every epoch), ``history.json`` and ``curves.png``
(see :mod:`tinynn.runs`). A run goes through the steps of :mod:`tinynn.run`; this module says what an MNIST
run loads, builds, prints and scores (:class:`MnistRun`).

``python -m tinynn`` is the same command.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import run, zoo
from .runs import (
    CHECKPOINT,
    DEFAULTS,
    IMAGE_SIZE,
    NAMES_DATA,
    NUM_CLASSES,
    RUN_FILES,  # noqa: F401 - the files of a run, as cli.RUN_FILES too
    CommandError,
    add_run_options,
    add_sweep_options,
    free_run_folder,  # noqa: F401 - as cli.free_run_folder too
    positive_int,
    read_run,  # noqa: F401 - as cli.read_run too
)
from .zoo import IMAGE_SHAPE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinynn",
        description="tinynn: train and evaluate small numpy neural networks on MNIST.",
        epilog="Run 'tinynn train --help', 'tinynn evaluate --help' or 'tinynn sweep --help' for the options "
        "of each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate,sweep,sample}", required=True)
    d = DEFAULTS

    tr = sub.add_parser(
        "train",
        help="train a net on MNIST; save model.npz, history.json and curves.png",
        description="Train a net (default: a fully connected 784 -> hidden... -> 10, ReLU) on MNIST with "
        "softmax cross-entropy. Writes run.json (options, status), model.npz (checkpoint, after every "
        "epoch), history.json (per-epoch metrics) and curves.png (loss/accuracy plot) into --out, then "
        "prints the test accuracy. An interrupted run continues with --resume DIR.",
    )
    add_run_options(tr)
    tr.add_argument("--out", default=None, metavar="DIR",
                    help="run folder; one given here is refused if it holds another run, unless --overwrite "
                    f"(default: {d['out']}, or the first of {d['out']}-2, {d['out']}-3, ... that holds no run; "
                    f"{d['out']} with --overwrite)")
    tr.add_argument("--resume", metavar="DIR", default=None,
                    help="continue the run in DIR from its last epoch checkpoint, with its saved options "
                    "(bit-identical to an uninterrupted run)")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace the run already in --out (its files are removed first)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    tr.set_defaults(run=_train)

    ev = sub.add_parser(
        "evaluate",
        help="evaluate a saved model on the MNIST test set",
        description="Load a checkpoint written by 'tinynn train' (or Model.save) and print its test loss, "
        "accuracy, confusion matrix and per-class precision/recall/F1.",
    )
    ev.add_argument("model", metavar="MODEL", help="checkpoint file, e.g. runs/mnist/model.npz, or a run folder")
    ev.add_argument("--data", metavar="DIR", default=None, help="folder holding the four MNIST files")
    ev.add_argument("--limit", type=positive_int, default=None, metavar="N",
                    help="evaluate on the first N test images only")
    ev.add_argument("--batch-size", type=positive_int, default=1024, help="images per forward pass (default: 1024)")
    ev.set_defaults(run=_evaluate)

    sw = sub.add_parser(
        "sweep",
        help="train a grid of runs (optimizers x learning rates x seeds ...) on local cores or Ray",
        description="Run 'tinynn train' for every combination of the values given (each option takes one or "
        "more values), each run in OUT/runs/NAME, on local worker processes or a Ray cluster. Writes "
        "results.csv, summary.md and sweep.png into --out. Rerun the same command to resume an interrupted "
        "sweep: finished runs are skipped, the others continue from their last epoch.",
    )
    add_sweep_options(sw)
    sw.set_defaults(run=_sweep)

    from .lm import add_sample_parser  # names: tinynn sample RUN

    add_sample_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tinynn`` console script; returns the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv[1:]  # the command's own options (after "train", "evaluate" or "sweep")
    try:
        args.run(args, parser)
    except CommandError as e:
        print(f"tinynn {args.command}: {e}", file=sys.stderr)
        return e.code
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
        raise CommandError(str(e)) from None


# --- train -----------------------------------------------------------------------------------


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """``tinynn train``: an MNIST run (:class:`MnistRun`), or with ``--data names`` a names run
    (:class:`tinynn.lm.NamesRun`); :func:`tinynn.run.train` runs it."""
    from .lm import NamesRun

    run.train(args, parser, lambda options: NamesRun if options.data == NAMES_DATA else MnistRun)


def _build_net(args: argparse.Namespace):
    """The ``--model`` builder from :mod:`tinynn.zoo`, given the options it takes (hidden, dropout)."""
    build = zoo.NETS[args.model]
    accepted = inspect.signature(build).parameters
    kwargs = {k: getattr(args, k) for k in ("hidden", "dropout") if k in accepted}
    return build(**kwargs)


class MnistRun(run.Run):
    """``tinynn train`` on MNIST: a digit classifier of :data:`tinynn.zoo.NETS`, its validation images the last
    ``--val-size`` training images, scored on the test set."""

    nets = zoo.NETS
    input_shape = (IMAGE_SIZE,)

    def wrong_model(self, model: str) -> str:
        return f"--model {model} is a names model: add --data names (MNIST nets: {', '.join(zoo.NETS)})"

    def results_line(self, results: dict) -> str:
        return f"test accuracy: {results['test_accuracy']:.4f} (loss {results['test_loss']:.4f})"

    def data(self):
        args = self.args
        (x, y), self.test = _load_data(args.data)
        if args.limit is not None:
            x, y = x[: args.limit], y[: args.limit]
        self.n_val = min(args.val_size, len(x) // 10)
        if not self.n_val:
            return x, y, None
        return x[: -self.n_val], y[: -self.n_val], (x[-self.n_val :], y[-self.n_val :])  # views, no copies

    def new_model(self, n_train: int):
        import tinynn as tn

        args = self.args
        try:
            net = _build_net(args)
        except (ValueError, MemoryError) as e:
            self.parser.error(f"cannot build --model {args.model}: {e}")
        kwargs = {"lr": args.lr}
        if args.weight_decay:
            kwargs["weight_decay"] = args.weight_decay
        optimizer = tn.optim.get(args.optimizer, **kwargs)
        model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), optimizer, gradient_clip=args.gradient_clip)
        sched, steps = tn.optim.lr_scheduler, args.epochs * -(-n_train // args.batch_size)
        if args.scheduler == "cosine":
            model.scheduler = sched.CosineAnnealingLR(optimizer, T_max=steps)
            model.scheduler_interval = "batch"
        elif args.scheduler == "warmup-cosine":  # linear warmup over the first tenth of the batches
            warm = max(1, steps // 10)
            warmup = sched.LinearLR(optimizer, start_factor=0.01, total_iters=warm)
            cosine = sched.CosineAnnealingLR(optimizer, T_max=max(1, steps - warm))
            model.scheduler = sched.SequentialLR(optimizer, [warmup, cosine], milestones=[warm])
            model.scheduler_interval = "batch"
        elif args.scheduler == "step":
            milestones = sorted({max(1, args.epochs // 2), max(1, 3 * args.epochs // 4)})
            model.scheduler = sched.MultiStepLR(optimizer, milestones, gamma=0.1)
        return model

    def augment(self):
        import tinynn as tn

        return tn.data.RandomShift(self.args.random_shift, IMAGE_SHAPE) if self.args.random_shift else None

    def intro(self, n_train: int) -> str:
        args = self.args
        shift = f", random shifts of up to {args.random_shift} px" if args.random_shift else ""
        return (f"training on {n_train:,} images, validating on {self.n_val:,}; {args.optimizer} lr={args.lr:g}, "
                f"scheduler={args.scheduler}, batch size {args.batch_size}, {args.epochs} epochs{shift}")

    def score(self) -> dict:
        test = _scores(self.model, *self.test)
        val = self.model.history.history.get("val_accuracy", [])
        return {"test_loss": test["loss"], "test_accuracy": test["accuracy"],
                "best_val_accuracy": max(val, default=None), "final_val_accuracy": val[-1] if val else None}

    def title(self) -> str:
        if self.args.model == "mlp":
            return f"MLP {'-'.join(map(str, [IMAGE_SIZE, *self.args.hidden, NUM_CLASSES]))}"
        return f"{self.args.model} on MNIST"

    def report(self, results: dict, verbose: int) -> None:
        print(self.results_line(results))


def _scores(model, x: np.ndarray, y: np.ndarray) -> dict:
    """Test loss and accuracy; a net whose finite weights give infinite logits is refused with a message."""
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            return model.evaluate(x, y)
        except ValueError as e:
            raise CommandError(f"cannot score the model: {e}") from None


# --- evaluate --------------------------------------------------------------------------------


def _evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    import tinynn as tn

    path = Path(args.model)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        parser.error(f"model file not found: {path}")
    try:
        model = tn.Model.load(path, restore_rng=False)
    except ValueError as e:
        parser.error(str(e))
    except Exception as e:  # noqa: BLE001 - whatever a damaged file provokes, the user gets a message
        parser.error(f"cannot load checkpoint {path}: {type(e).__name__}: {e}")
    if not isinstance(model.loss, tn.losses.SoftmaxCrossEntropy):
        parser.error(f"{path}: the model is trained with {type(model.loss).__name__}, not a classifier with "
                     "SoftmaxCrossEntropy; 'tinynn evaluate' scores MNIST digit classifiers")
    if not np.isfinite(model.net.params).all():
        parser.error(f"{path}: the model's parameters contain NaN or Inf (a diverged run?)")
    try:
        with np.errstate(all="ignore"):
            probe = model.predict(np.zeros((1, IMAGE_SIZE), np.float32))
    except Exception as e:  # noqa: BLE001
        parser.error(f"{path}: the model does not take {IMAGE_SIZE}-pixel MNIST images ({e})")
    if probe.shape != (1, NUM_CLASSES):
        parser.error(f"{path}: the model gives {probe.shape[1:]} outputs per image, MNIST has {NUM_CLASSES} classes")

    _, (x, y) = _load_data(args.data)
    if args.limit is not None:
        x, y = x[: args.limit], y[: args.limit]
    with np.errstate(over="ignore", invalid="ignore"):
        logits = model.predict(x, batch_size=args.batch_size)  # one pass over the test set serves every number
    if not np.isfinite(logits).all():
        raise CommandError(f"{path}: the model's outputs overflow to NaN or Inf on the test images (finite "
                           "parameters too large for float32: a diverged run?)")
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


def _sweep(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from .sweeps import FIXED_OPTIONS, GRID_OPTIONS, sweep

    # Only the options given vary (and name the runs); the others keep tinynn train's defaults.
    grid = {k: getattr(args, k) for k in GRID_OPTIONS if getattr(args, k) is not None}
    if not grid:
        parser.error("sweep: give at least one option to vary, e.g. --optimizer adam sgdm --seed 0 1 2")
    fixed = {k: getattr(args, k) for k in FIXED_OPTIONS if getattr(args, k) is not None}
    try:
        rows = sweep(grid, args.out, executor=args.executor, workers=args.workers, threads=args.threads,
                     address=args.address, **fixed)  # fmt: skip
    except ValueError as e:
        parser.error(str(e).removeprefix("sweep: "))
    if any(r["status"] != "finished" for r in rows):
        failed = sum(r["status"] != "finished" for r in rows)
        results = Path(args.out) / "results.csv"
        raise CommandError(f"{failed} of {len(rows)} runs failed (see the error column of {results})")
