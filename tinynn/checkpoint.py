"""Checkpoints: a whole training state in ONE ``.npz`` file, written atomically, read without pickle.

This module knows nets, losses, optimizers and schedulers, never ``Model``: it writes and reads a
:class:`Checkpoint`, a plain record of the pieces (``Model.save``/``Model.load`` build it).

Layout (every entry a plain numpy array; text is a 0-d unicode array, "JSON" is text)::

    tinynn_format     "tinynn-checkpoint-4"          marker + version, checked first
    net_config        JSON of Net.get_config()        the architecture (blocks nest their layers)
    params            the net's flat parameter vector
    net_state/<name>  Net.state() arrays, named by path ("1.BatchNorm1d.running_var")
    loss_config       JSON {"type": ..., "config": Loss.get_config()}
    optim_config      JSON {"type": ..., "config": Optimizer.get_config(), "decay_mask": bool}
                      (config null: an optimizer without get_config, to be passed to load)
    optim_state/<key> Optimizer.state_dict(): "t" and every state entry (arrays and scalars)
    optim_decay_mask  the optimizer's decay_mask             (present exactly when "decay_mask" is true)
    sched_config      JSON {"type": ..., "config": LRScheduler.get_config()}, or null: no scheduler
    sched_state/<key> LRScheduler.state_dict()                               (only with a scheduler)
    training          JSON {"epoch": int, "scheduler_step": "epoch"|"batch",
                            "gradient_clip": float|null, "history": History.to_dict(),
                            "run_id": str (only when the model belongs to a run of tinynn train)}
    rng_state         JSON of tinynn.rng.get_state()

Loading is strict (docs/guarantees.md): it never unpickles (an object array is refused from its
header); an entry not in this table is refused unread; every entry is present; the parameter
count the ``net_config`` implies (``Net.config_params``, no layer built) is checked against
``params`` before anything is allocated, and no entry is read past the size its place allows;
every value passes the rules of the constructor that made it. Every problem (foreign file,
missing or unknown entry, wrong shape, bad value, truncated bytes) is a ``ValueError`` naming
the file and what is wrong.

Every ``type`` names a class in the registry of its kind (:mod:`tinynn.registry`): a custom
layer, loss, optimizer or scheduler loads once it is registered. Format 3 (flat nets, state named
``"1.running_var"``) is still read: its state names are given their layer's type.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import losses, optim, rng
from .callbacks import SchedulerCallback, check_interval
from .checks import check_int, check_positive
from .fileio import atomic_write
from .history import History
from .net import Net
from .optim import lr_scheduler

FORMAT = "tinynn-checkpoint-4"
_OLD_FORMAT = "tinynn-checkpoint-3"  # net_state/<i>.<name>: read, renamed to <i>.<Type>.<name>
_TEXTS = ("tinynn_format", "net_config", "loss_config", "optim_config", "sched_config", "training", "rng_state")
_REQUIRED = (*_TEXTS, "params")
_GROUPS = ("net_state/", "optim_state/", "sched_state/")
_TRAINING = {"epoch", "scheduler_step", "gradient_clip", "history"}
_MAX_TEXT = 2**22  # bytes a text entry may hold (numpy stores 4 per character): 1 Mi characters of JSON
_MAX_DEFLATE = 1032  # deflate's largest possible expansion ratio
_SCALAR = 64  # bytes of a number entry


@dataclass
class Checkpoint:
    """Everything needed to predict with a model or to continue its training."""

    net: Net
    loss: losses.Loss
    optimizer: Any
    scheduler: Any = None
    epoch: int = 0  # epochs completed
    scheduler_step: str = "epoch"
    gradient_clip: float | None = None
    history: History = field(default_factory=History)
    rng_state: dict | None = None  # tinynn.rng.get_state() when saved; restoring it is the caller's choice
    run_id: str | None = None  # the run of tinynn train this checkpoint belongs to (None: no run)


def _text(s: str) -> np.ndarray:
    return np.array(s, dtype=np.str_)


def _typed(obj: Any, config: Any) -> np.ndarray:
    return _text(json.dumps({"type": type(obj).__name__, "config": config}))


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` to ``path`` exactly (no ``.npz`` suffix appended), atomically."""
    net, opt, sched = ckpt.net, ckpt.optimizer, ckpt.scheduler
    get_config = getattr(opt, "get_config", None)
    training = {
        "epoch": int(ckpt.epoch),
        "scheduler_step": ckpt.scheduler_step,
        "gradient_clip": ckpt.gradient_clip,
        "history": ckpt.history.to_dict(),
        **({} if ckpt.run_id is None else {"run_id": ckpt.run_id}),
    }
    arrays: dict[str, np.ndarray] = {
        "tinynn_format": _text(FORMAT),
        "net_config": _text(json.dumps(net.get_config())),
        "params": net.params,
        "loss_config": _typed(ckpt.loss, ckpt.loss.get_config()),
        "optim_config": _text(json.dumps({
            "type": type(opt).__name__,
            "config": get_config() if callable(get_config) else None,
            "decay_mask": getattr(opt, "decay_mask", None) is not None,
        })),  # fmt: skip
        "sched_config": _typed(sched, sched.get_config()) if sched is not None else _text("null"),
        "training": _text(json.dumps(training)),
        "rng_state": _text(json.dumps(ckpt.rng_state if ckpt.rng_state is not None else rng.get_state())),
    }
    arrays.update({f"net_state/{k}": v for k, v in net.state().items()})
    if callable(getattr(opt, "state_dict", None)):
        arrays.update(_numbers("optim_state/", opt.state_dict(), "optimizer"))
    if getattr(opt, "decay_mask", None) is not None:
        arrays["optim_decay_mask"] = opt.decay_mask
    if sched is not None:
        arrays.update(_numbers("sched_state/", sched.state_dict(), "scheduler"))
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def _numbers(prefix: str, state: dict[str, Any], what: str) -> dict[str, np.ndarray]:
    out = {}
    for key, value in state.items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"cannot save {what} state {key!r} of type {type(value).__name__}: numbers and arrays only")
        out[prefix + key] = arr
    return out




class _FileError(ValueError):
    """A problem already phrased as "cannot load checkpoint <path>: ..."."""


# What a malformed value can raise from deep inside a constructor or numpy: each becomes a ValueError.
_BAD_VALUE = (
    ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError, NotImplementedError,
    ZeroDivisionError,
)  # fmt: skip


class _Reader:
    """The checkpoint's zip directory, and its entries read one at a time, each within a size bound.

    Only the directory is read when opened: an entry is decompressed when asked for, after its
    ``.npy`` header has shown an allowed dtype and a size within the bound the caller gives.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        with open(path, "rb") as f:
            head = f.read(4)
        if head not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise self.error(f"not a readable .npz archive (not a zip file: starts with {head!r})")
        try:
            self.zip = zipfile.ZipFile(path)
        except Exception as e:  # zipfile.BadZipFile, OSError, ... on garbage bytes
            raise self.error(f"not a readable .npz archive ({type(e).__name__}: {e})") from None
        self.names: dict[str, zipfile.ZipInfo] = {}
        try:
            disk = path.stat().st_size
            for info in self.zip.infolist():
                key = info.filename.removesuffix(".npy")
                if key == info.filename or key in self.names:
                    raise self.error(f"not a readable .npz archive (entry {info.filename!r})")
                # What an entry may inflate to: its stored bytes, or deflate's most (1032:1).
                ratio = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: _MAX_DEFLATE}.get(info.compress_type)
                if ratio is None or info.compress_size > disk or info.file_size > ratio * info.compress_size:
                    raise self.error(
                        f"not a readable .npz archive (entry {info.filename!r}: {info.file_size:,} bytes "
                        f"from {info.compress_size:,}, compression type {info.compress_type})"
                    )
                self.names[key] = info
            if "tinynn_format" not in self.names:
                raise self.error("not a tinynn checkpoint (no 'tinynn_format' marker)")
            marker = self.text("tinynn_format", max_bytes=1024)
            self.old_format = marker == _OLD_FORMAT
            if marker != FORMAT and not self.old_format:
                raise self.error(f"unsupported checkpoint format {marker!r} (this tinynn reads {FORMAT!r})")
            known = (*_REQUIRED, "optim_decay_mask")
            unknown = [k for k in self.names if k not in known and not k.startswith(_GROUPS)]
            if unknown:
                raise self.error(f"unknown entries {unknown[:5]} (refused unread)")
            missing = [k for k in _REQUIRED if k not in self.names]
            if missing:
                raise self.error(f"missing entries {missing}")
        except BaseException:
            self.zip.close()
            raise

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.zip.close()

    def error(self, problem: str) -> ValueError:
        return _FileError(f"cannot load checkpoint {self.path}: {problem}")

    @contextmanager
    def reading(self, what: str) -> Iterator[None]:
        """Turn any error of a malformed value into a ValueError naming the file and ``what``."""
        try:
            yield
        except _FileError:
            raise
        except _BAD_VALUE as e:
            detail = str(e) if isinstance(e, ValueError) and str(e) else f"{type(e).__name__}: {e}"
            raise self.error(f"bad {what} ({detail[:500]})") from None

    def array(self, key: str, max_bytes: int) -> np.ndarray:
        """Entry ``key``, refused unread if its header declares more than ``max_bytes`` of data."""
        fmt = np.lib.format
        try:
            with self.zip.open(self.names[key]) as f:
                version = fmt.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise self.error(f"entry {key!r} is not a plain .npy array (format version {version})")
                read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                shape, _, dtype = read_header(f)
                if dtype.hasobject:
                    raise self.error(f"entry {key!r} holds pickled (object) data, which tinynn refuses to load")
                stored = self.names[key].file_size
                if math.prod(shape) * dtype.itemsize > min(max_bytes, stored):
                    raise self.error(
                        f"entry {key!r} declares a {dtype} array of shape {shape}: more than its place in "
                        f"the checkpoint allows ({max_bytes:,} bytes) or its {stored:,} bytes in the archive"
                    )
            with self.zip.open(self.names[key]) as f:
                return fmt.read_array(f, allow_pickle=False)
        except _FileError:
            raise
        except Exception as e:  # BadZipFile (CRC), EOFError, zlib.error, ValueError from a bad header
            raise self.error(f"not a readable .npz archive (entry {key!r}: {type(e).__name__}: {e})") from None

    def text(self, key: str, max_bytes: int = _MAX_TEXT) -> str:
        arr = self.array(key, max_bytes)
        if arr.dtype.kind != "U" or arr.ndim != 0:
            raise self.error(f"entry {key!r} should be text, got {arr.dtype} array of shape {arr.shape}")
        return str(arr)

    def json(self, key: str, kinds: tuple[type, ...] = (dict,)) -> Any:
        try:
            value = json.loads(self.text(key))
        except (json.JSONDecodeError, RecursionError, ValueError) as e:  # ValueError: an over-long integer
            if isinstance(e, _FileError):
                raise
            raise self.error(f"entry {key!r} is not valid JSON ({type(e).__name__}: {str(e)[:200]})") from None
        if not isinstance(value, kinds):
            want = " or ".join("null" if k is type(None) else f"a JSON {k.__name__}" for k in kinds)
            raise self.error(f"entry {key!r} should be {want}, got {type(value).__name__}")
        return value

    def typed(self, key: str, extra: tuple[str, ...] = ()) -> tuple[str, Any, dict]:
        """``(type name, config, whole dict)`` of a ``{"type": ..., "config": ...}`` entry, exactly those keys."""
        value = self.json(key)
        if set(value) != {"type", "config", *extra}:
            raise self.error(f"entry {key!r} should have exactly the keys {sorted({'type', 'config', *extra})}")
        if not isinstance(value["type"], str):
            raise self.error(f"entry {key!r} has no 'type' name")
        return value["type"], value["config"], value

    def group(self, prefix: str, max_bytes: int) -> dict[str, Any]:
        """The entries ``prefix<name>``, by name: arrays, and 0-d numbers as Python numbers."""
        out = {}
        for key in self.names:
            if key.startswith(prefix):
                arr = self.array(key, max_bytes)
                if arr.dtype.kind not in "biuf":
                    raise self.error(f"entry {key!r} should hold numbers, got {arr.dtype}")
                out[key[len(prefix) :]] = arr.item() if arr.ndim == 0 else arr
        return out


def load_checkpoint(path: str | os.PathLike, optimizer: Any = None) -> Checkpoint:
    """Read a :class:`Checkpoint` written by :func:`save_checkpoint`, strictly (see the module docstring).

    Building the net draws initial weights (then overwritten); tinynn's random generator is put
    back afterwards, so loading never changes it (``Checkpoint.rng_state`` holds the saved one).
    ``optimizer``: use this one as given (see ``Model.load`` for the rule) instead of rebuilding
    the saved one.
    """
    try:
        return _load(Path(path), optimizer)
    except _FileError as e:
        raise ValueError(str(e)) from None


def _load(path: Path, optimizer: Any) -> Checkpoint:
    with _Reader(path) as r:
        net = _net(r)
        with r.reading("loss in 'loss_config'"):
            name, config, _ = r.typed("loss_config")
            loss = losses.from_config({"type": name, "config": config})
        epoch, scheduler_step, clip, history, run_id = _training(r)
        given = optimizer is not None
        optimizer = _optimizer(r, optimizer, net)
        scheduler = _scheduler(r, optimizer, scheduler_step, set_lr=not given)
        state = r.json("rng_state")
        with r.reading("'rng_state'"):
            rng.check_state(state)
    return Checkpoint(net, loss, optimizer, scheduler, epoch, scheduler_step, clip, history, state, run_id)


def _net(r: _Reader) -> Net:
    """The net, its size checked against ``params`` before it is built."""
    config = r.json("net_config")
    with r.reading("architecture in 'net_config'"):
        named, dtype = Net.config_params(config)
    size = sum(math.prod(shape) for _, shape in named)
    params = r.array("params", max_bytes=size * dtype.itemsize)
    if params.ndim != 1 or params.dtype != dtype or params.size != size:
        raise r.error(
            f"'params' is a {params.dtype} array of shape {params.shape}, but the architecture needs ({size},) {dtype}"
        )
    if not np.isfinite(params).all():
        raise r.error("'params' holds NaN or Inf")
    state = rng.get_state()
    try:
        with r.reading("architecture in 'net_config'"):
            net = Net.from_config(config)
    finally:
        rng.set_state(state)
    if net.named_params() != named:  # a layer's param_shapes disagrees with what it builds: its bug
        raise r.error(f"the layers built {net.named_params()}, but their param_shapes said {named}")
    net.params[...] = params
    own = net.state()
    names = {k.removeprefix("net_state/") for k in r.names if k.startswith("net_state/")}
    rename = (lambda n: _v3_state_name(n, net)) if r.old_format else (lambda n: n)
    names = {rename(n) for n in names}
    if names != set(own):
        raise r.error(f"layer state does not match the net: expected {sorted(own)}, got {sorted(names)}")
    with r.reading("layer state"):
        state = r.group("net_state/", max_bytes=max((a.nbytes for a in own.values()), default=0))
        net.load_state({rename(k): v for k, v in state.items()})
    return net


def _v3_state_name(name: str, net: Net) -> str:
    """Format 3's ``"1.running_var"`` as format 4 names it, ``"1.BatchNorm1d.running_var"`` (its nets are flat)."""
    i, _, rest = name.partition(".")
    if not (i.isdigit() and int(i) < len(net.layers)):
        return name  # not a state name of this net: refused by the name check
    return f"{i}.{type(net.layers[int(i)]).__name__}.{rest}"


def _training(r: _Reader) -> tuple[int, str, float | None, History, str | None]:
    training = r.json("training")
    if set(training) - {"run_id"} != _TRAINING:
        raise r.error(f"entry 'training' should have exactly the keys {sorted(_TRAINING)} (and 'run_id'), "
                      f"got {sorted(training)}")  # fmt: skip
    run_id = training.get("run_id")
    if run_id is not None and not (isinstance(run_id, str) and 0 < len(run_id) <= 64):
        raise r.error(f"entry 'training' has a bad 'run_id' {str(run_id)[:80]!r} (a string of 1 to 64 characters)")
    clip = training["gradient_clip"]
    with r.reading("'training' entry"):
        epoch = check_int(training["epoch"], "epoch", 0)
        scheduler_step = check_interval(training["scheduler_step"], "scheduler_step", "training")
        clip = None if clip is None else check_positive(clip, "gradient_clip (or null)")
        history = History.from_dict(training["history"])
    return epoch, scheduler_step, clip, history, run_id


def _optimizer(r: _Reader, given: Any, net: Net) -> Any:
    name, config, whole = r.typed("optim_config", extra=("decay_mask",))
    has_mask = whole["decay_mask"]
    if not isinstance(has_mask, bool) or has_mask != ("optim_decay_mask" in r.names):
        raise r.error(f"'optim_config' says decay_mask is {has_mask!r}, but entry 'optim_decay_mask' is "
                      + ("present" if "optim_decay_mask" in r.names else "missing"))  # fmt: skip
    state = r.group("optim_state/", max_bytes=net.params.nbytes)
    if given is not None:
        # Used as given: its hyperparameters stay the caller's. Same class: it continues the saved
        # state (step count, moments); another class: it starts fresh.
        if type(given).__name__ == name and callable(getattr(given, "load_state_dict", None)):
            _load_optim_state(r, given, state, net)
        return given
    cls = optim.OPTIMIZERS.get(name)
    if cls is None or config is None:
        raise r.error(
            f"optimizer class {name!r} is not a registered optimizer; register it "
            f"(@tn.optim.register_optimizer) or pass one: Model.load(path, optimizer={name}(...))"
        )
    with r.reading("optimizer config in 'optim_config'"):
        if not isinstance(config, dict):
            raise ValueError(f"expected a JSON object, got {type(config).__name__}")
        opt = cls.from_config(config)
    if has_mask:
        mask = r.array("optim_decay_mask", max_bytes=net.params.size * 8)
        if mask.shape != net.params.shape:
            raise r.error(f"'optim_decay_mask' has shape {mask.shape}, the parameters {net.params.shape}")
        with r.reading("'optim_decay_mask'"):
            opt.decay_mask = mask
    _load_optim_state(r, opt, state, net)
    return opt


def _load_optim_state(r: _Reader, opt: Any, state: dict[str, Any], net: Net) -> None:
    for name, value in state.items():  # array state (moments) is shaped like the flat params
        if isinstance(value, np.ndarray):
            if value.shape != net.params.shape or value.dtype != net.params.dtype:
                raise r.error(
                    f"optimizer state {name!r} is {value.dtype} {value.shape}, "
                    f"the parameters are {net.params.dtype} {net.params.shape}"
                )
            if not np.isfinite(value).all():
                raise r.error(f"optimizer state {name!r} holds NaN or Inf")
    with r.reading("optimizer state"):
        opt.load_state_dict(state)


def _scheduler(r: _Reader, optimizer: Any, scheduler_step: str, set_lr: bool) -> Any:
    value = r.json("sched_config", kinds=(dict, type(None)))
    state = r.group("sched_state/", max_bytes=_SCALAR)
    if value is None:
        if state:
            raise r.error(f"scheduler state {sorted(state)} saved without a scheduler ('sched_config' is null)")
        return None
    name, config, _ = r.typed("sched_config")
    cls = lr_scheduler.SCHEDULERS.get(name)
    if cls is None:
        raise r.error(
            f"scheduler class {name!r} is not a registered scheduler (register it: @tn.optim.lr_scheduler."
            "register_scheduler)"
        )
    lr = getattr(optimizer, "lr", None)
    with r.reading("scheduler in 'sched_config'/'sched_state'"):
        if not isinstance(config, dict):
            raise ValueError(f"expected a JSON object, got {type(config).__name__}")
        sched = cls.from_config(config, optimizer)
        sched.load_state_dict(state, set_lr=set_lr)
        SchedulerCallback(sched, scheduler_step)  # the interval fits the scheduler (a plateau steps per epoch)
    if not set_lr:
        optimizer.lr = lr  # building the scheduler applied its first lr: undo it
    return sched
