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
(see :mod:`tinynn.runs`).

``python -m tinynn`` is the same command.

Long because: it holds every command's parser and the steps of a training run in the order they
happen (resume checks, folder, data, model, fit, status), each step a short function.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import zoo
from .runs import (
    CHECKPOINT,
    CURVES,
    DEFAULTS,
    HISTORY,
    IMAGE_SIZE,
    NAMES_DATA,
    NAMES_OUT,
    NUM_CLASSES,
    RUN_FILE,
    RUN_FILES,
    RUN_OPTIONS,
    CommandError,
    add_run_options,
    add_sweep_options,
    check_out,
    check_size,
    fill_model_defaults,
    free_run_folder,
    hold_folder,
    new_run_id,
    positive_int,
    read_run,
    write_json,
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


# --- the run folder --------------------------------------------------------------------------


def _build_net(args: argparse.Namespace):
    """The ``--model`` builder from :mod:`tinynn.zoo`, given the options it takes (hidden, dropout)."""
    from . import zoo

    build = zoo.NETS[args.model]
    accepted = inspect.signature(build).parameters
    kwargs = {k: getattr(args, k) for k in ("hidden", "dropout") if k in accepted}
    return build(**kwargs)


# --- train -----------------------------------------------------------------------------------


_UNSET = object()


def _given(argv: Sequence[str]) -> set[str]:
    """The ``tinynn train`` options written in ``argv`` (whatever their value, default or not)."""
    probe = _Probe(prog="tinynn train", add_help=False)
    add_run_options(probe)
    for flag in ("--out", "--resume"):
        probe.add_argument(flag)
    for flag in ("--overwrite", "--quiet"):
        probe.add_argument(flag, action="store_true")
    probe.set_defaults(**{k: _UNSET for k in (*RUN_OPTIONS, "out", "data")})
    args, _ = probe.parse_known_args(list(argv))
    return {k for k, v in vars(args).items() if v is not _UNSET and k in (*RUN_OPTIONS, "out", "data")}


class _Probe(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise ValueError(message)  # the real parser has already accepted argv


def _resume_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """Replace ``args``' run options by those saved in ``--resume DIR``; returns the run record.

    An option also given on the command line must equal the saved one: a resume never changes a run.
    """
    folder = Path(args.resume)
    try:
        record = read_run(folder)
    except ValueError as e:
        parser.error(f"--resume: {e}")
    saved = record["options"]
    given = _given(args.argv)
    if "out" in given and Path(args.out).resolve() == folder.resolve():
        given.remove("out")
    differ = [k for k in sorted(given) if k in RUN_OPTIONS and getattr(args, k) != saved[k]]
    refused = [f"--{k.replace('_', '-')} (the run's is {saved[k]!r})" for k in differ]
    refused += ["--out"] * ("out" in given) + ["--overwrite"] * args.overwrite
    if refused:
        parser.error(f"--resume continues the run with the options saved in {folder / RUN_FILE}; "
                     f"drop {', '.join(refused)}")
    for key in RUN_OPTIONS:
        setattr(args, key, saved[key])
    if args.data is None:
        args.data = record.get("data")
    args.out = str(folder)
    return record


def _new_model(args: argparse.Namespace, n_train: int, parser: argparse.ArgumentParser):
    """The model (net, optimizer, scheduler) a new run with these options starts from."""
    import tinynn as tn

    try:
        net = _build_net(args)
    except (ValueError, MemoryError) as e:
        parser.error(f"cannot build --model {args.model}: {e}")
    kwargs = {"lr": args.lr}
    if args.weight_decay:
        kwargs["weight_decay"] = args.weight_decay
    optimizer = tn.optim.get(args.optimizer, **kwargs)
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), optimizer, gradient_clip=args.gradient_clip)
    if args.scheduler == "cosine":
        steps = args.epochs * -(-n_train // args.batch_size)
        model.scheduler = tn.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        model.scheduler_step = "batch"
    elif args.scheduler == "warmup-cosine":  # linear warmup over the first tenth of the batches
        steps = args.epochs * -(-n_train // args.batch_size)
        warm = max(1, steps // 10)
        sched = tn.optim.lr_scheduler
        warmup = sched.LinearLR(optimizer, start_factor=0.01, total_iters=warm)
        cosine = sched.CosineAnnealingLR(optimizer, T_max=max(1, steps - warm))
        model.scheduler = sched.SequentialLR(optimizer, [warmup, cosine], milestones=[warm])
        model.scheduler_step = "batch"
    elif args.scheduler == "step":
        milestones = sorted({max(1, args.epochs // 2), max(1, 3 * args.epochs // 4)})
        model.scheduler = tn.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    return model


def _describe(model) -> dict:
    """What must be equal between a run's options and its checkpoint (the lr as the schedule's base)."""
    opt, sched = model.optimizer, model.scheduler
    config = dict(opt.get_config()) if callable(getattr(opt, "get_config", None)) else {}
    config.pop("lr", None)
    net = {k: v for k, v in model.net.get_config().items() if k != "workers"}  # how it runs, decided by the net
    return {
        "net": net,
        "loss": type(model.loss).__name__,
        "optimizer": (type(opt).__name__, config),
        "lr": sched.base_lr if sched is not None else getattr(opt, "lr", None),
        "scheduler": None if sched is None else (type(sched).__name__, sched.get_config(), model.scheduler_step),
        "gradient_clip": model.gradient_clip,
    }


def _check_belongs(model, record: dict, args: argparse.Namespace, n_train: int, parser, path: Path) -> None:
    """Refuse a checkpoint that is not of this run: another run's id, or another net, optimizer or schedule."""
    import tinynn as tn

    if model.run_id != record.get("run_id"):
        raise CommandError(f"cannot resume: {path} belongs to another run (run id {model.run_id}, "
                           f"{RUN_FILE} says {record.get('run_id')})", code=2)
    state = tn.rng.get_state()
    try:  # the model these options build, to compare with; the random generator is left as the checkpoint set it
        want = _describe(_new_model(args, n_train, parser))
    finally:
        tn.rng.set_state(state)
    have = _describe(model)
    differ = [k for k in want if json.dumps(want[k]) != json.dumps(have[k])]
    if differ:
        raise CommandError(f"cannot resume: {path} is not the model of the run in {RUN_FILE} (its "
                           f"{', '.join(differ)} differ from the run's options)", code=2)
    if model.epoch > args.epochs:
        raise CommandError(f"cannot resume: {path} holds {model.epoch} epochs, more than the run's {args.epochs}",
                           code=2)


PARENT_ENV = "TINYNN_STOP_WITH_PARENT"
"""Set (to its pid) by a sweep for its runs: a run whose sweep process is gone stops as after Ctrl-C."""


def _stop_with_parent() -> None:
    """If ``$TINYNN_STOP_WITH_PARENT`` names our parent (a sweep, or its Ray worker), SIGINT stops the run and so
    does the parent's end (as Ctrl-C): a sweep killed outright leaves no run training on its own."""
    import _thread
    import os
    import signal
    import threading

    parent = os.environ.get(PARENT_ENV, "")
    if not parent.isdigit() or int(parent) != os.getppid():
        return
    # A Ray worker's children inherit SIGINT blocked (and maybe ignored): a sweep stops its runs by SIGINT.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(0.25)
        _thread.interrupt_main()  # KeyboardInterrupt in the main thread: the run saves and says so

    threading.Thread(target=watch, name="tinynn-parent-watch", daemon=True).start()


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    _stop_with_parent()
    if args.resume:
        folder = Path(args.resume)
        if not folder.is_dir():
            parser.error(f"--resume {folder}: no such run folder")
    else:
        fill_model_defaults(args)
        if args.out is None:  # not given: a fresh folder, so the same command can run again; --overwrite: the first
            default = NAMES_OUT if args.data == NAMES_DATA else DEFAULTS["out"]
            args.out = default if args.overwrite else str(free_run_folder(default))
        folder = Path(args.out)
        try:
            check_out(folder)
        except ValueError as e:
            parser.error(f"--out {e}")
        try:
            check_size(args.hidden)
        except ValueError as e:
            parser.error(str(e))
    with hold_folder(folder):  # one writer per run folder, for the whole run
        record = _resume_options(args, parser) if args.resume else None
        _train_in(args, parser, record, folder)


def _train_in(args: argparse.Namespace, parser: argparse.ArgumentParser, record: dict | None, out: Path) -> None:
    """The run in ``out``: a new one (``record`` None) or the one ``record`` describes, resumed."""
    import tinynn as tn

    if record is None:
        _check_new_folder(out, args, parser)
    # --- names: a character-level language model (tinynn.lm) ---
    if args.data == NAMES_DATA:
        if args.model not in zoo.NAMES_NETS:
            parser.error(f"--model {args.model} is an MNIST net; --data names trains {', '.join(zoo.NAMES_NETS)}")
        from .lm import train_names

        return train_names(args, parser, record, out)
    if args.model not in zoo.NETS:
        parser.error(f"--model {args.model} is a names model: add --data names (MNIST nets: {', '.join(zoo.NETS)})")
    if record is not None and record.get("status") == "finished":
        print(f"{out}: this run finished all {args.epochs} epochs already; "
              f"test accuracy: {record['test_accuracy']:.4f} (loss {record['test_loss']:.4f})")
        return

    tn.seed(args.seed)
    (x, y), (x_test, y_test) = _load_data(args.data)
    if args.limit is not None:
        x, y = x[: args.limit], y[: args.limit]
    n_val = min(args.val_size, len(x) // 10)
    val = None
    if n_val:
        x, y, val = x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])  # views, no copies

    model = _start_model(args, parser, record, out, len(x))
    run = _RunStatus(out, args, model, record)
    # Drawn from the seeded generator, whose state the checkpoint saves: a resumed run shifts alike.
    augment = tn.data.RandomShift(args.random_shift, IMAGE_SHAPE) if args.random_shift else None
    verbose = 0 if args.quiet else 1
    if verbose:
        print(model.net.summary(input_shape=(IMAGE_SIZE,)))
        what = f"resuming after epoch {model.epoch}: " if record is not None else ""
        shift = f", random shifts of up to {args.random_shift} px" if augment else ""
        print(f"{what}training on {len(x):,} images, validating on {n_val:,}; {args.optimizer} lr={args.lr:g}, "
              f"scheduler={args.scheduler}, batch size {args.batch_size}, {args.epochs} epochs{shift}")
    start = time.perf_counter()
    done_before = model.epoch
    try:
        run.save("running")
        _fit(model, args, run, x, y, val, augment, verbose)
        test = _finish(model, args, run, x_test, y_test)
    except OSError as e:  # a full disk, a folder made read-only: one line naming the file
        error = _os_error(e)
        try:
            run.save("failed", run.saved_epochs(), error=error)
        except OSError:
            pass  # the disk that refused the others refuses run.json too
        raise CommandError(error) from None
    if verbose:
        trained = model.epoch - done_before
        elapsed = time.perf_counter() - start
        per_epoch = f" ({elapsed / trained:.1f}s/epoch)" if trained else ""
        print(f"trained in {elapsed:.1f}s{per_epoch}; wrote {', '.join(RUN_FILES)} to {out}")
    print(f"test accuracy: {test['accuracy']:.4f} (loss {test['loss']:.4f})")


def _check_new_folder(out: Path, args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse an ``--out`` holding another run (unless ``--overwrite``) or something that is not a run's file."""
    held = [name for name in RUN_FILES if (out / name).exists() or (out / name).is_symlink()]
    odd = [name for name in held if not (out / name).is_file()]
    if odd:
        parser.error(f"--out {out}: {out / odd[0]} is not a file of a run (a folder?); remove it or "
                     "choose another --out")
    if held and not args.overwrite:
        parser.error(f"--out {out} holds another run ({', '.join(held)}): continue it with "
                     f"'tinynn train --resume {out}', replace it with --overwrite, or choose another --out")


def _start_model(args: argparse.Namespace, parser: argparse.ArgumentParser, record: dict | None, out: Path,
                 n_train: int):  # fmt: skip
    """The run's model: its checkpoint when a run is resumed, else a new one (a new run first removes the
    previous run's files, so the folder never mixes two runs)."""
    import tinynn as tn

    checkpoint = out / CHECKPOINT
    if record is not None and checkpoint.exists():
        try:  # restores the random generator and the history: the run continues exactly
            model = tn.Model.load(checkpoint)
        except (ValueError, OSError) as e:
            raise CommandError(f"cannot resume: {e}", code=2) from None
        _check_belongs(model, record, args, n_train, parser, checkpoint)
        return model
    model = _new_model(args, n_train, parser)
    model.run_id = record.get("run_id") if record is not None else new_run_id()
    if record is None:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    return model


class _RunStatus:
    """The run's ``run.json``, rewritten at each change: its options, status, epochs done and results."""

    def __init__(self, out: Path, args: argparse.Namespace, model, record: dict | None) -> None:
        self.out, self.model, self.checkpoint = out, model, out / CHECKPOINT
        self.fields = {"options": {k: getattr(args, k) for k in RUN_OPTIONS}, "data": args.data,
                       "train_seconds": 0.0, "run_id": model.run_id,
                       **({} if record is None else {k: record[k] for k in ("train_seconds",) if k in record})}

    def save(self, state: str, epochs: int | None = None, **extra) -> None:
        done = self.model.epoch if epochs is None else epochs
        write_json(self.out / RUN_FILE, {**self.fields, "status": state, "epochs_done": done, **extra})

    def saved_epochs(self) -> int:
        """Epochs in the checkpoint on disk, read back: a Ctrl-C inside a save may leave the previous one."""
        import tinynn as tn

        try:
            return tn.Model.load(self.checkpoint, restore_rng=False).epoch if self.checkpoint.exists() else 0
        except (ValueError, OSError):
            return 0


def _fit(model, args: argparse.Namespace, run: _RunStatus, x, y, val, augment, verbose: int) -> None:  # noqa: ANN001
    """``model.fit`` with a checkpoint after every epoch. Ctrl-C, divergence or a failed write end the run:
    history.json keeps the epochs the checkpoint holds, run.json says why, and a CommandError tells the user."""
    import tinynn as tn

    start = time.perf_counter()
    try:
        model.fit(
            x, y, epochs=args.epochs, batch_size=args.batch_size, validation_data=val, initial_epoch=model.epoch,
            scheduler=model.scheduler, scheduler_step=model.scheduler_step, verbose=verbose, augment=augment,
            callbacks=[tn.callbacks.ModelCheckpoint(run.checkpoint)],  # atomic, after every epoch
        )  # fmt: skip
    except (KeyboardInterrupt, tn.TrainingDiverged, OSError) as e:
        run.fields["train_seconds"] += time.perf_counter() - start
        done = run.saved_epochs()
        _keep_epochs(model.history, done).save(run.out / HISTORY)  # the epochs the checkpoint holds
        kept = f"the checkpoint of epoch {done} is {run.checkpoint}" if done else "no epoch was finished"
        if isinstance(e, KeyboardInterrupt):
            run.save("interrupted", done)
            raise CommandError(f"interrupted during epoch {done + 1}/{args.epochs}; "
                               f"{kept if done else 'no epoch was finished, nothing is lost'}. "
                               f"Continue with: tinynn train --resume {run.out}", code=130) from None
        error = _os_error(e) if isinstance(e, OSError) else str(e)
        run.save("failed", done, error=error)
        raise CommandError(f"{error} ({kept})") from None
    run.fields["train_seconds"] += time.perf_counter() - start


def _finish(model, args: argparse.Namespace, run: _RunStatus, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    """Score the model on the test set; write history.json (every epoch, resumed or not), curves.png and the
    finished run.json. Returns the test scores."""
    try:
        test = _scores(model, x_test, y_test)
    except CommandError as e:
        run.save("failed", error=str(e))
        raise
    full = model.history
    full.save(run.out / HISTORY)
    title = (f"MLP {'-'.join(map(str, [IMAGE_SIZE, *args.hidden, NUM_CLASSES]))}" if args.model == "mlp"
             else f"{args.model} on MNIST")  # fmt: skip
    full.plot(run.out / CURVES, title=title)
    val = full.history.get("val_accuracy", [])
    run.save("finished", test_loss=test["loss"], test_accuracy=test["accuracy"],
             best_val_accuracy=max(val, default=None), final_val_accuracy=val[-1] if val else None)
    return test


def _os_error(e: OSError) -> str:
    """``cannot write runs/x/model.npz: No space left on device``."""
    where = f" {e.filename}" if e.filename else ""
    return f"cannot write{where}: {e.strerror or e}"


def _keep_epochs(history, n: int):
    """The first ``n`` epochs of ``history``."""
    return type(history)({k: v[:n] for k, v in history.history.items()}, history.epoch[:n])


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
