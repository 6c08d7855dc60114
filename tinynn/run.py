"""A run of ``tinynn train`` as it happens: the steps from the command's options to a finished run folder.

:mod:`tinynn.runs` says what a run is (its options, its folder, ``run.json``); this module runs one.
:func:`train` checks the options and the folder, holds the folder (one writer), reads back a
resumed run's options (refusing a flag that would change the run), and hands over to a
:class:`Run`, which owns the rest, in this order:

1. a finished run: say so and change nothing;
2. seed the generator, load and split the data;
3. the model: a resumed run's checkpoint, refused unless it is this run's (its id, net, loss,
   optimizer, schedule and epochs against the options), or a new one (the folder first emptied
   of an older run's files, so it never mixes two runs);
4. ``run.json`` says "running"; ``fit``, with a checkpoint after every epoch;
5. score the model; write ``history.json``, ``curves.png`` and the finished ``run.json``.

A kind of run says only what differs: its data, its model, what it prints and how it is scored
(MNIST: ``cli.MnistRun``; names: ``lm.NamesRun``). Every kind ends alike on Ctrl-C, divergence or a
failed write (a full disk): ``run.json`` says why and how many epochs the checkpoint holds,
``history.json`` keeps those epochs, and the user reads one line (a :class:`~tinynn.runs.CommandError`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import callbacks, rng
from .model import Model, TrainingDiverged
from .runs import (
    CHECKPOINT,
    CURVES,
    DEFAULTS,
    HISTORY,
    NAMES_DATA,
    NAMES_OUT,
    RUN_FILE,
    RUN_FILES,
    RUN_OPTIONS,
    CommandError,
    add_run_options,
    check_out,
    check_size,
    fill_model_defaults,
    free_run_folder,
    hold_folder,
    new_run_id,
    read_run,
    write_json,
)

PARENT_ENV = "TINYNN_STOP_WITH_PARENT"
"""Set (to its pid) by a sweep for its runs: a run whose sweep process is gone stops as after Ctrl-C."""


class Run:
    """One run in its folder, from its data to its finished ``run.json`` (the steps: this module's docstring).

    A kind of run subclasses it and says what differs: ``nets`` (the ``--model`` names it trains),
    ``input_shape`` (of one example, for the summary), :meth:`wrong_model`, :meth:`results_line`,
    :meth:`data`, :meth:`new_model`, :meth:`intro`, :meth:`score`, :meth:`title` and :meth:`report`
    (and :meth:`augment`, None by default).
    """

    nets: dict[str, Any] = {}
    input_shape: tuple[int, ...] = ()

    def __init__(self, args: argparse.Namespace, parser: argparse.ArgumentParser, record: dict | None,
                 out: Path) -> None:  # fmt: skip
        """``record``: the ``run.json`` of the run resumed, or None for a new run."""
        if args.model not in self.nets:
            parser.error(self.wrong_model(args.model))
        self.args, self.parser, self.record, self.out = args, parser, record, out
        self.checkpoint = out / CHECKPOINT
        self.model: Any = None
        self.fields: dict[str, Any] = {}  # what run.json always holds: options, data, train_seconds, run_id

    # --- what a kind of run says --------------------------------------------------------------

    def wrong_model(self, model: str) -> str:
        """The usage error for a ``--model`` this kind does not train."""
        raise NotImplementedError

    def results_line(self, results: dict) -> str:
        """The results of ``run.json`` (``self.record`` or :meth:`score`'s) in one line, as a finished run's
        resume prints them."""
        raise NotImplementedError

    def data(self) -> tuple[np.ndarray, np.ndarray, tuple | None]:
        """Load the data (the generator is seeded): the training inputs and targets, the validation pair or None."""
        raise NotImplementedError

    def new_model(self, n_train: int) -> Model:
        """A new model (net, loss, optimizer, scheduler and its step unit) for the options and ``n_train``
        training examples; the same options give the same model."""
        raise NotImplementedError

    def augment(self) -> Any:
        """The ``augment`` of ``Model.fit``, or None."""
        return None

    def intro(self, n_train: int) -> str:
        """The line printed before training: the data and the options."""
        raise NotImplementedError

    def score(self) -> dict:
        """The trained model's results, as ``run.json`` keeps them; a CommandError if it cannot be scored."""
        raise NotImplementedError

    def title(self) -> str:
        """The title of ``curves.png``."""
        raise NotImplementedError

    def report(self, results: dict, verbose: int) -> None:
        """Print the results: the last line of the run."""
        raise NotImplementedError

    # --- the steps ----------------------------------------------------------------------------

    def train(self) -> None:
        """The run, from its data to its finished ``run.json``; a CommandError (one line) if it stops."""
        args, record = self.args, self.record
        if record is not None and record.get("status") == "finished":
            print(f"{self.out}: this run finished all {args.epochs} epochs already; {self.results_line(record)}")
            return
        rng.seed(args.seed)
        x, y, val = self.data()
        model = self.model = self.start_model(len(x))
        self.fields = {"options": {k: getattr(args, k) for k in RUN_OPTIONS}, "data": args.data,
                       "train_seconds": 0.0, "run_id": model.run_id,
                       **({} if record is None else {k: record[k] for k in ("train_seconds",) if k in record})}
        # Drawn from the seeded generator, whose state the checkpoint saves: a resumed run draws alike.
        augment = self.augment()
        verbose = 0 if args.quiet else 1
        if verbose:
            print(model.net.summary(input_shape=self.input_shape))
            print(("" if record is None else f"resuming after epoch {model.epoch}: ") + self.intro(len(x)))
        start, done_before = time.perf_counter(), model.epoch
        try:
            self.save_status("running")
            self.fit(x, y, val, augment, verbose)
            results = self.finish()
        except OSError as e:  # a full disk, a folder made read-only: one line naming the file
            error = os_error(e)
            try:
                self.save_status("failed", self.saved_epochs(), error=error)
            except OSError:
                pass  # the disk that refused the others refuses run.json too
            raise CommandError(error) from None
        if verbose:
            trained, elapsed = model.epoch - done_before, time.perf_counter() - start
            per_epoch = f" ({elapsed / trained:.1f}s/epoch)" if trained else ""
            print(f"trained in {elapsed:.1f}s{per_epoch}; wrote {', '.join(RUN_FILES)} to {self.out}")
        self.report(results, verbose)

    def start_model(self, n_train: int) -> Model:
        """The run's model: its checkpoint when a run is resumed, else a new one (a new run first removes the
        previous run's files, so the folder never mixes two runs)."""
        if self.record is not None and self.checkpoint.exists():
            try:  # restores the random generator and the history: the run continues exactly
                model = Model.load(self.checkpoint)
            except (ValueError, OSError) as e:
                raise CommandError(f"cannot resume: {e}", code=2) from None
            self.check_belongs(model, n_train)
            return model
        model = self.new_model(n_train)
        model.run_id = self.record.get("run_id") if self.record is not None else new_run_id()
        if self.record is None:
            for name in RUN_FILES:
                (self.out / name).unlink(missing_ok=True)
        return model

    def check_belongs(self, model: Model, n_train: int) -> None:
        """Refuse a checkpoint that is not of this run: another run's id, or another net, optimizer or schedule."""
        record, path = self.record or {}, self.checkpoint
        if model.run_id != record.get("run_id"):
            raise CommandError(f"cannot resume: {path} belongs to another run (run id {model.run_id}, "
                               f"{RUN_FILE} says {record.get('run_id')})", code=2)
        rng_state = rng.get_state()
        try:  # the model these options build, to compare with; the generator is left as the checkpoint set it
            want = describe(self.new_model(n_train))
        finally:
            rng.set_state(rng_state)
        have = describe(model)
        differ = [k for k in want if json.dumps(want[k]) != json.dumps(have[k])]
        if differ:
            raise CommandError(f"cannot resume: {path} is not the model of the run in {RUN_FILE} (its "
                               f"{', '.join(differ)} differ from the run's options)", code=2)
        if model.epoch > self.args.epochs:
            raise CommandError(f"cannot resume: {path} holds {model.epoch} epochs, more than the run's "
                               f"{self.args.epochs}", code=2)

    def save_status(self, status: str, epochs: int | None = None, **extra: Any) -> None:
        """Rewrite ``run.json``: its fields, ``status``, the epochs done (the model's unless given) and ``extra``."""
        done = self.model.epoch if epochs is None else epochs
        write_json(self.out / RUN_FILE, {**self.fields, "status": status, "epochs_done": done, **extra})

    def saved_epochs(self) -> int:
        """Epochs in the checkpoint on disk, read back: a Ctrl-C inside a save may leave the previous one."""
        try:
            return Model.load(self.checkpoint, restore_rng=False).epoch if self.checkpoint.exists() else 0
        except (ValueError, OSError):
            return 0

    def fit(self, x: np.ndarray, y: np.ndarray, val: tuple | None, augment: Any, verbose: int) -> None:
        """``model.fit`` with a checkpoint after every epoch. Ctrl-C, divergence or a failed write end the run:
        history.json keeps the epochs the checkpoint holds, run.json says why, and a CommandError tells the user."""
        model, args, start = self.model, self.args, time.perf_counter()
        try:
            model.fit(
                x, y, epochs=args.epochs, batch_size=args.batch_size, validation_data=val, initial_epoch=model.epoch,
                scheduler=model.scheduler, scheduler_interval=model.scheduler_interval, verbose=verbose,
                augment=augment, callbacks=[callbacks.ModelCheckpoint(self.checkpoint)],  # atomic, after every epoch
            )  # fmt: skip
        except (KeyboardInterrupt, TrainingDiverged, OSError) as e:
            self.fields["train_seconds"] += time.perf_counter() - start
            done = self.saved_epochs()
            keep_epochs(model.history, done).save(self.out / HISTORY)  # the epochs the checkpoint holds
            kept = f"the checkpoint of epoch {done} is {self.checkpoint}" if done else "no epoch was finished"
            if isinstance(e, KeyboardInterrupt):
                self.save_status("interrupted", done)
                raise CommandError(f"interrupted during epoch {done + 1}/{args.epochs}; "
                                   f"{kept if done else 'no epoch was finished, nothing is lost'}. "
                                   f"Continue with: tinynn train --resume {self.out}", code=130) from None
            error = os_error(e) if isinstance(e, OSError) else str(e)
            self.save_status("failed", done, error=error)
            raise CommandError(f"{error} ({kept})") from None
        self.fields["train_seconds"] += time.perf_counter() - start

    def finish(self) -> dict:
        """Score the model; write history.json (every epoch, resumed or not), curves.png and the finished
        run.json. Returns the results."""
        try:
            results = self.score()
        except CommandError as e:
            self.save_status("failed", error=str(e))
            raise
        self.model.history.save(self.out / HISTORY)
        self.model.history.plot(self.out / CURVES, title=self.title())
        self.save_status("finished", **results)
        return results


def train(args: argparse.Namespace, parser: argparse.ArgumentParser,
          kind: Callable[[argparse.Namespace], type[Run]]) -> None:  # fmt: skip
    """``tinynn train``: check the options and the folder, hold the folder, read back a resumed run's options,
    then train a run of ``kind(args)`` (the kind the options, resumed ones included, name)."""
    _stop_with_parent()
    folder = _folder(args, parser)
    with hold_folder(folder):  # one writer per run folder, for the whole run
        record = _resume_options(args, parser) if args.resume else None
        if record is None:
            _check_new_folder(folder, args, parser)
        kind(args)(args, parser, record, folder).train()


def _folder(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path:
    """The run folder, ``--resume DIR`` or ``--out``, checked before anything is written (``--out`` not given:
    a default folder holding no run); a new run's options get their defaults."""
    if args.resume:
        folder = Path(args.resume)
        if not folder.is_dir():
            parser.error(f"--resume {folder}: no such run folder")
        return folder
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
    return folder


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


def describe(model: Model) -> dict:
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
        "scheduler": None if sched is None else (type(sched).__name__, sched.get_config(), model.scheduler_interval),
        "gradient_clip": model.gradient_clip,
    }


def os_error(e: OSError) -> str:
    """``cannot write runs/x/model.npz: No space left on device``."""
    where = f" {e.filename}" if e.filename else ""
    return f"cannot write{where}: {e.strerror or e}"


def keep_epochs(history: Any, n: int) -> Any:
    """The first ``n`` epochs of ``history``."""
    return type(history)({k: v[:n] for k, v in history.history.items()}, history.epoch[:n])


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
