"""What a run of ``tinynn train`` is: its options, its folder and the checks made before it starts.

Shared by the ``tinynn`` command (:mod:`tinynn.cli`; :mod:`tinynn.run` runs one) and sweeps
(:mod:`tinynn.sweeps`). A run folder holds ``run.json`` (the options and the run's status), ``model.npz``
(the checkpoint, rewritten atomically after every epoch), ``history.json`` and ``curves.png``.

Long because: a run's contract is one piece (the options of ``train`` and ``sweep``, their checks,
the folder, ``run.json`` and the one-writer lock), and both commands and sweeps read all of it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import zoo
from .fileio import atomic_write
from .zoo import IMAGE_SIZE, NUM_CLASSES

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
    "gradient_clip": None,
    "random_shift": 0,
}
# Where a net trains best with other settings (used when the user does not give the option).
MODEL_DEFAULTS = zoo.TRAIN_DEFAULTS

MAX_PARAMS = 50_000_000
"""Largest net ``tinynn train`` builds: 200 MB of float32 weights, ~1 GB with gradients and Adam's moments."""

RUN_FILE, CHECKPOINT, HISTORY, CURVES = "run.json", "model.npz", "history.json", "curves.png"
RUN_FILES = (RUN_FILE, CHECKPOINT, HISTORY, CURVES)
"""The files of one run folder; a new run removes all of them before it writes any."""
LOCK_FILE = ".tinynn.lock"
"""Locked (``flock``) by the one process writing a run folder; it holds that process's id."""
STATUSES = ("running", "interrupted", "failed", "finished")

SCHEDULERS = ("none", "cosine", "warmup-cosine", "step")
"""The learning-rate schedules ``--scheduler`` names (built in :mod:`tinynn.cli`)."""

# The options that define a run: saved in run.json, reused by --resume, varied by `tinynn sweep`.
RUN_OPTIONS = ("model", "hidden", "dropout", "optimizer", "lr", "weight_decay", "scheduler", "epochs",
               "batch_size", "val_size", "seed", "limit", "gradient_clip", "random_shift")  # fmt: skip


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


positive_int, nonneg_int = _int_at_least(1), _int_at_least(0)


def float_in(lo: float, hi: float, lo_open: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < lo or value > hi or (lo_open and value == lo):
            bounds = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
            raise argparse.ArgumentTypeError(f"must be in {bounds}, got {text}")
        return value

    return parse


class CommandError(Exception):
    """A runtime failure of a command (no data, divergence): its message goes to stderr, exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of one run (``RUN_OPTIONS``, plus ``--data``), as ``tinynn train`` takes them."""
    from . import optim

    optimizers = optim.names()
    d = DEFAULTS
    parser.add_argument("--model", choices=sorted(set(zoo.NETS) | set(zoo.NAMES_NETS)), default=None,
                        help="which net. MNIST: mlp (784 -> hidden... -> 10); cnn (LeNet-5); "
                        "lstm (28 rows of 28 pixels -> LSTM 128 -> 10); vit (a vision transformer: 16 patches "
                        "of 7x7 -> 4 pre-norm blocks of width 64 -> 10). --data names: bigram, mlp, lstm, gru, "
                        f"transformer (default: {d['model']}; --data names: transformer)")
    parser.add_argument("--hidden", type=positive_int, nargs="+", default=d["hidden"], metavar="N",
                        help=f"sizes of the hidden layers, mlp only (default: {' '.join(map(str, d['hidden']))})")
    # Options whose default depends on the data or model are None here (fill_model_defaults sets them).
    parser.add_argument("--dropout", type=float_in(0, 0.95), default=None,
                        help=f"dropout probability after each hidden layer, 0 = none; mlp only "
                        f"(default: {d['dropout']:g}; names runs: per model, tinynn.zoo)")
    parser.add_argument("--optimizer", choices=optimizers, default=None,
                        help=f"optimizer {_default_per_model('optimizer')}; names runs: adamw (bigram: adam)")
    parser.add_argument("--lr", type=float_in(0, 10, lo_open=True), default=None,
                        help=f"learning rate, > 0 {_default_per_model('lr')}")
    parser.add_argument("--weight-decay", type=float_in(0, 1), default=None,
                        help=f"weight decay (L2; decoupled for adamw) {_default_per_model('weight_decay')}; "
                        "names runs: 0.01 (bigram: 0)")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default=None,
                        help="learning-rate schedule: cosine decays lr to 0 over the run (per batch); "
                        "warmup-cosine first rises linearly from lr/100 to lr over the first tenth of the "
                        "batches, then decays as cosine; step multiplies it by 0.1 at 50%% and 75%% of the "
                        f"epochs {_default_per_model('scheduler')}; names runs: cosine after a linear warmup")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help=f"number of epochs {_default_per_model('epochs')}")
    parser.add_argument("--gradient-clip", type=float_in(0, 1e6, lo_open=True), default=None, metavar="NORM",
                        help="rescale each batch's gradient to global L2 norm <= NORM "
                        f"{_default_per_model('gradient_clip')}")
    parser.add_argument("--random-shift", type=nonneg_int, default=None, metavar="PIXELS",
                        help="data augmentation: move each training image by a random whole number of pixels, "
                        "up to PIXELS along each axis, drawn anew every epoch, 0 = none "
                        f"{_default_per_model('random_shift')}")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help=f"mini-batch size (default: {d['batch_size']}; names runs: 32)")
    parser.add_argument("--val-size", type=nonneg_int, default=d["val_size"],
                        help="training images held out for validation, the last ones; at most 10%% of them "
                        f"(default: {d['val_size']})")
    parser.add_argument("--seed", type=nonneg_int, default=d["seed"],
                        help=f"random seed: init, shuffling, dropout (default: {d['seed']})")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="folder holding the four MNIST files (default: $TINYNN_DATA/mnist, the copy bundled "
                        "with tinynn, or ~/.cache/tinynn/mnist, downloading if missing); 'names': train a "
                        "character-level language model on the bundled names (its options per model: "
                        "tinynn.zoo.NAMES_TRAIN_DEFAULTS)")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="train on the first N training images only (quick runs)")


def _default_per_model(key: str) -> str:
    """``"(default: 0.001; cnn, lstm: 0.002)"``: the default for ``key``, and the models that have their own."""
    show = lambda v: f"{v:g}" if isinstance(v, (int, float)) else str(v)  # noqa: E731
    general = DEFAULTS[key]
    own: dict[str, list[str]] = {}
    for model, values in sorted(MODEL_DEFAULTS.items()):
        if key in values and values[key] != general:
            own.setdefault(show(values[key]), []).append(model)
    shown = "none" if general is None else show(general)
    return "(default: " + "; ".join([shown, *(f"{', '.join(m)}: {v}" for v, m in own.items())]) + ")"


FILLED = ("model", "dropout", "optimizer", "lr", "weight_decay", "scheduler", "epochs", "batch_size", "gradient_clip",
          "random_shift")
"""The options whose parser default is None: filled in by ``fill_model_defaults``."""


def fill_model_defaults(args: argparse.Namespace) -> None:
    """Options the user left out (None) get the model's own default, else the general one.

    A names run (``--data names``) takes them from :func:`names_defaults`; its default model is the transformer.
    """
    names = getattr(args, "data", None) == NAMES_DATA
    if args.model is None:
        args.model = "transformer" if names else DEFAULTS["model"]
    own = names_defaults(args.model) if names else MODEL_DEFAULTS.get(args.model, {})
    for key in FILLED:
        if getattr(args, key) is None:
            setattr(args, key, own.get(key, DEFAULTS[key]))


def names_defaults(model: str) -> dict:
    """A names model's training defaults: ``zoo.NAMES_TRAIN_DEFAULTS[model]`` over ``zoo.NAMES_COMMON_DEFAULTS``."""
    return {**zoo.NAMES_COMMON_DEFAULTS, **zoo.NAMES_TRAIN_DEFAULTS.get(model, {})}


NAMES_DATA = "names"
"""``--data names``: the bundled names (:func:`tinynn.data.load_names`) instead of an MNIST folder."""
NAMES_OUT = "runs/names"
"""Where a names run goes when ``--out`` is not given (then ``runs/names-2``, ... as for MNIST)."""


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise ValueError(message)


def to_argv(options: Mapping[str, Any]) -> list[str]:
    """``{"batch_size": 64, "hidden": [256, 128]}`` as ``["--batch-size", "64", "--hidden", "256", "128"]``.

    Options set to None are left out."""
    argv = []
    for key, value in options.items():
        if value is None:
            continue
        argv.append("--" + key.replace("_", "-"))
        argv += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    return argv


def parse_run_options(argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` parsed as ``tinynn train`` would, raising ValueError (not exiting) on a bad option or value."""
    parser = _RaisingParser(prog="tinynn train", add_help=False)
    add_run_options(parser)
    args = parser.parse_args(list(argv))
    fill_model_defaults(args)
    check_size(args.hidden)
    return args


def check_out(out: str | os.PathLike) -> None:
    """Raise ValueError if ``out`` cannot become a folder of results, before anything is trained or created.

    Catches an existing non-folder, a dangling symlink (anywhere on the path), a path under a regular
    file, and a folder where no file can be created (tested by creating and removing one).
    """
    out = Path(out)
    for p in (out, *out.absolute().parents):
        if p.is_symlink() and not p.exists():
            raise ValueError(f"{out}: {p} is a dangling symbolic link")
        if p.exists():
            if not p.is_dir():
                raise ValueError(f"{out} exists and is not a folder" if p == out
                                 else f"{out} is under {p}, which is not a folder")  # fmt: skip
            try:  # as root os.access says yes to everything; a real attempt does not lie
                os.rmdir(tempfile.mkdtemp(dir=p, prefix=".tinynn-probe-"))
            except OSError as e:
                raise ValueError(f"{out}: cannot create files in {p} ({e.strerror or e})") from None
            return


def free_run_folder(base: str | os.PathLike) -> Path:
    """``base``, or the first of ``base-2``, ``base-3``, ... that holds none of a run's files (``RUN_FILES``)."""
    base = Path(base)
    candidate, n = base, 1
    while any((candidate / name).exists() for name in RUN_FILES):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def check_size(hidden: Sequence[int]) -> None:
    """Raise ValueError if an MLP with these hidden widths has more than MAX_PARAMS parameters (nothing allocated)."""
    widths = [IMAGE_SIZE, *hidden, NUM_CLASSES]
    n = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
    if n > MAX_PARAMS:
        raise ValueError(f"--hidden {' '.join(map(str, hidden))} makes a net of {n:,} parameters; "
                         f"tinynn train builds at most {MAX_PARAMS:,}")


def write_json(path: Path, data: dict) -> None:

    text = (json.dumps(data, indent=1) + "\n").encode()
    atomic_write(path, lambda f: f.write(text))


def new_run_id() -> str:
    """A random id naming one run: written into its run.json and its checkpoint, so a resume can tell them apart."""
    return secrets.token_hex(8)


# The JSON type each option of run.json must have (what the flag's parser produces), before its range is checked.
_OPTION_TYPES = {"model": str, "hidden": list, "dropout": float, "optimizer": str, "lr": float, "weight_decay": float,
                 "scheduler": str, "epochs": int, "batch_size": int, "val_size": int, "seed": int, "limit": int,
                 "gradient_clip": float}  # fmt: skip
_MAY_BE_NULL = ("limit", "gradient_clip")


def check_options(options: Any) -> dict:
    """The run options of a run.json, checked by the same rules as the flags of ``tinynn train``; else ValueError."""
    if not isinstance(options, dict):
        raise ValueError("'options' must be a JSON object")
    missing = [k for k in RUN_OPTIONS if k not in options]
    unknown = sorted(set(options) - set(RUN_OPTIONS))
    if missing or unknown:
        raise ValueError("'options' " + (f"lacks {missing}" if missing else f"has unknown keys {unknown}"))
    for key, kind in _OPTION_TYPES.items():
        value = options[key]
        if value is None and key in _MAY_BE_NULL:
            continue
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is list:
            ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        else:
            ok = isinstance(value, kind)
        if not ok:
            want = {float: "a number", int: "an integer", list: "a list of integers", str: "a string"}[kind]
            raise ValueError(f"option {key!r} must be {want}{' or null' * (key in _MAY_BE_NULL)}, got {value!r}")
    try:  # the ranges and choices: exactly the flags' rules
        args = parse_run_options(to_argv(options))
    except ValueError as e:
        raise ValueError(f"'options' are not valid tinynn train options ({e})") from None
    return {k: options[k] if options[k] is None else getattr(args, k) for k in RUN_OPTIONS}


def _number(value: Any, name: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name!r} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def read_run(folder: str | os.PathLike) -> dict:
    """The ``run.json`` of a run folder: ``{"options", "status", "epochs_done", ...}``; ValueError if unreadable.

    Every field is checked: the options by the rules of ``tinynn train``'s flags, the status, counts and
    results by their types and ranges (a finished run has its test results).
    """
    path = Path(folder) / RUN_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{folder} is not a tinynn run folder (no {RUN_FILE})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"cannot read {path}: {e}") from None
    if isinstance(data, dict) and isinstance(data.get("options"), dict):
        data["options"].setdefault("random_shift", 0)  # a record older than the option: trained without it
    if not (isinstance(data, dict) and isinstance(data.get("options"), dict)
            and set(RUN_OPTIONS) <= set(data["options"])):  # fmt: skip
        raise ValueError(f"{path} is not a tinynn run record (no complete 'options')")
    try:
        data["options"] = check_options(data["options"])
        if data.get("status") not in STATUSES:
            raise ValueError(f"'status' must be one of {list(STATUSES)}, got {data.get('status')!r}")
        epochs_done = data.get("epochs_done", 0)
        if isinstance(epochs_done, bool) or not isinstance(epochs_done, int) or epochs_done < 0:
            raise ValueError(f"'epochs_done' must be an integer >= 0, got {epochs_done!r}")
        if epochs_done > data["options"]["epochs"]:
            raise ValueError(f"'epochs_done' {epochs_done} is more than the run's {data['options']['epochs']} epochs")
        for key in ("data", "run_id", "error"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ValueError(f"{key!r} must be a string or null, got {data[key]!r}")
        _number(data.get("train_seconds", 0.0), "train_seconds")
        results = ("test_loss", "train_loss") if data.get("data") == NAMES_DATA else ("test_loss", "test_accuracy")
        if data["status"] == "finished" or any(data.get(k) is not None for k in results):
            for key in results:
                _number(data.get(key), key)
        for key in ("best_val_accuracy", "final_val_accuracy"):
            if data.get(key) is not None:
                _number(data[key], key)
    except ValueError as e:
        raise ValueError(f"{path} is not a valid run record: {e}") from None
    return data


@contextmanager
def hold_folder(folder: str | os.PathLike) -> Iterator[None]:
    """One writer per run folder: hold an OS lock (``flock``) on ``folder/.tinynn.lock`` while the block runs.

    Creates ``folder`` if needed (and removes what it created if the block leaves it empty). The lock
    is the kernel's: released on any exit, even SIGKILL, so a crashed run leaves no stale lock. A
    second process gets a ``CommandError`` naming the pid of the one holding it. POSIX only (elsewhere
    the block just runs).
    """
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CommandError(f"cannot create {folder}: {e.strerror or e}") from None
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    path = folder / LOCK_FILE
    fd = None
    try:
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as e:
                raise CommandError(f"cannot lock {folder} for this run ({path}: {e.strerror or e})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                fd = None  # not ours: the holder's file stays
                raise CommandError(f"{folder} is in use by another tinynn process (pid {holder}); wait for it "
                                   f"to finish or stop it, or choose another folder") from None
            try:  # the file may have been removed by the holder between our open and lock: lock the new one
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
            fd = None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        if fd is not None:
            path.unlink(missing_ok=True)  # still locked: a process that opened it meanwhile retries (above)
            os.close(fd)
        if created:
            try:
                folder.rmdir()  # only if nothing was written
            except OSError:
                pass


def add_sweep_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``tinynn sweep``: the run options it may vary (each one or more values; None when not
    given), those shared by all runs, and where the runs go."""
    from . import optim

    g = parser.add_argument_group("grid (each takes one or more values; options not given keep tinynn train's "
                                  "defaults)")
    g.add_argument("--model", nargs="+", choices=sorted(zoo.NETS), default=None)
    g.add_argument("--hidden", nargs="+", type=_widths, default=None, metavar="N[,N...]",
                   help="hidden layer sizes, comma-separated per value: --hidden 256,128 64")
    g.add_argument("--dropout", nargs="+", metavar="P", type=float_in(0, 0.95), default=None)
    g.add_argument("--optimizer", nargs="+", choices=optim.names(), default=None)
    g.add_argument("--lr", nargs="+", metavar="LR", type=float_in(0, 10, lo_open=True), default=None)
    g.add_argument("--weight-decay", nargs="+", metavar="WD", type=float_in(0, 1), default=None)
    g.add_argument("--scheduler", nargs="+", choices=SCHEDULERS, default=None)
    g.add_argument("--epochs", nargs="+", metavar="N", type=positive_int, default=None)
    g.add_argument("--batch-size", nargs="+", metavar="N", type=positive_int, default=None)
    g.add_argument("--seed", nargs="+", metavar="S", type=nonneg_int, default=None)
    f = parser.add_argument_group("shared by all runs")
    f.add_argument("--val-size", type=nonneg_int, default=DEFAULTS["val_size"], metavar="N",
                   help=f"training images held out for validation (default: {DEFAULTS['val_size']})")
    f.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="train on the first N training images only")
    f.add_argument("--data", metavar="DIR", default=None, help="folder holding the four MNIST files")
    e = parser.add_argument_group("where the runs go")
    e.add_argument("--out", default="sweeps/sweep", metavar="DIR", help="sweep folder (default: sweeps/sweep)")
    e.add_argument("--executor", choices=("process", "ray"), default="process",
                   help="local worker processes (default), or Ray tasks (pip install 'tinynn[ray]')")
    e.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="Ray cluster to join (from 'ray start --head'); default: start a local Ray")
    e.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="runs at a time with --executor process (default: one per core)")
    e.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="BLAS threads per run (default: cores // workers)")


def _widths(text: str) -> list[int]:
    """``"256,128"`` -> ``[256, 128]``: one value of ``tinynn sweep --hidden``."""
    return [positive_int(part) for part in text.split(",")]
