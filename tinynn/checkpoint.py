"""Checkpoints: a whole training state in ONE ``.npz`` file, written atomically, read without pickle.

This module knows nets, losses, optimizers and schedulers, never ``Model``: it writes and reads a
:class:`Checkpoint`, a plain record of the pieces (``Model.save``/``Model.load`` build it).

Layout (every entry a plain numpy array; text is a 0-d unicode array, "JSON" is text)::

    tinynn_format     "tinynn-checkpoint-2"          marker + version, checked first
    net_config        JSON of Net.get_config()        the architecture
    params            the net's flat parameter vector
    net_state/<name>  Net.state() arrays               (batch-norm running statistics)
    loss_config       JSON {"type": ..., "config": Loss.get_config()}
    optim_config      JSON {"type": ..., "config": Optimizer.get_config()}   (config null: a custom optimizer)
    optim_state/<key> Optimizer.state_dict(): "t" and every state entry (arrays and scalars)
    optim_decay_mask  the optimizer's decay_mask             (only if it has one)
    sched_config      JSON {"type": ..., "config": LRScheduler.get_config()} (only with a scheduler)
    sched_state/<key> LRScheduler.state_dict()                               (only with a scheduler)
    training          JSON {"epoch": int, "scheduler_step": "epoch"|"batch",
                            "gradient_clip": float|null, "history": History.to_dict()}
    rng_state         JSON of tinynn.rng.get_state()

``np.load(..., allow_pickle=False)`` means a checkpoint can never run code when loaded; every
problem (foreign file, missing key, wrong shape, truncated bytes) is a ``ValueError`` naming
the file and what is wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import losses, optim, rng
from .fileio import atomic_write
from .history import History
from .net import Net
from .optim import lr_scheduler

FORMAT = "tinynn-checkpoint-2"
_REQUIRED = ("tinynn_format", "net_config", "params", "loss_config", "optim_config", "training", "rng_state")


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
    }
    arrays: dict[str, np.ndarray] = {
        "tinynn_format": _text(FORMAT),
        "net_config": _text(json.dumps(net.get_config())),
        "params": net.params,
        "loss_config": _typed(ckpt.loss, ckpt.loss.get_config()),
        "optim_config": _typed(opt, get_config() if callable(get_config) else None),
        "training": _text(json.dumps(training)),
        "rng_state": _text(json.dumps(ckpt.rng_state if ckpt.rng_state is not None else rng.get_state())),
    }
    arrays.update({f"net_state/{k}": v for k, v in net.state().items()})
    if callable(getattr(opt, "state_dict", None)):
        arrays.update(_numbers("optim_state/", opt.state_dict(), "optimizer"))
    if getattr(opt, "decay_mask", None) is not None:
        arrays["optim_decay_mask"] = opt.decay_mask
    if sched is not None:
        arrays["sched_config"] = _typed(sched, sched.get_config())
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


class _Reader:
    """The checkpoint's arrays, with errors that name the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        with open(path, "rb") as f:
            head = f.read(4)
        if head not in (b"PK\x03\x04", b"PK\x05\x06"):  # np.load would guess "pickle" for any other bytes
            raise self.error(f"not a readable .npz archive (not a zip file: starts with {head!r})")
        try:
            with np.load(path, allow_pickle=False) as data:
                self.arrays = {key: data[key] for key in data.files}  # read all now: truncation shows here
        except ValueError as e:
            if "pickle" in str(e):
                raise self.error("it holds pickled (object) data, which tinynn refuses to load") from None
            raise self.error(f"not a readable .npz archive ({e})") from None
        except Exception as e:  # zipfile.BadZipFile, EOFError, zlib.error, OSError on garbage bytes
            raise self.error(f"not a readable .npz archive ({type(e).__name__}: {e})") from None
        if "tinynn_format" not in self.arrays:
            raise self.error("not a tinynn checkpoint (no 'tinynn_format' marker)")
        marker = self.text("tinynn_format")
        if marker != FORMAT:
            raise self.error(f"unsupported checkpoint format {marker!r} (this tinynn reads {FORMAT!r})")
        missing = [k for k in _REQUIRED if k not in self.arrays]
        if missing:
            raise self.error(f"missing entries {missing}")

    def error(self, problem: str) -> ValueError:
        return ValueError(f"cannot load checkpoint {self.path}: {problem}")

    def text(self, key: str) -> str:
        arr = self.arrays[key]
        if arr.dtype.kind != "U" or arr.ndim != 0:
            raise self.error(f"entry {key!r} should be text, got {arr.dtype} array of shape {arr.shape}")
        return str(arr)

    def json(self, key: str, kind: type = dict) -> Any:
        try:
            value = json.loads(self.text(key))
        except json.JSONDecodeError as e:
            raise self.error(f"entry {key!r} is not valid JSON ({e})") from None
        if not isinstance(value, kind):
            raise self.error(f"entry {key!r} should be a JSON {kind.__name__}, got {type(value).__name__}")
        return value

    def typed(self, key: str) -> tuple[str, Any]:
        """``(type name, config)`` from a ``{"type": ..., "config": ...}`` entry."""
        value = self.json(key)
        if not isinstance(value.get("type"), str):
            raise self.error(f"entry {key!r} has no 'type' name")
        return value["type"], value.get("config")

    def group(self, prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) :]: v for k, v in self.arrays.items() if k.startswith(prefix)}


def load_checkpoint(path: str | os.PathLike, optimizer: Any = None) -> Checkpoint:
    """Read a :class:`Checkpoint` written by :func:`save_checkpoint`.

    Building the net draws initial weights (then overwritten); tinynn's random generator is put
    back afterwards, so loading never changes it (``Checkpoint.rng_state`` holds the saved one).
    ``optimizer``: use this one as given (see ``Model.load`` for the rule) instead of rebuilding
    the saved one.
    """
    r = _Reader(Path(path))
    state = rng.get_state()
    try:
        net = Net.from_config(r.json("net_config"))
    except (ValueError, TypeError, KeyError) as e:
        raise r.error(f"bad architecture in 'net_config' ({e})") from None
    finally:
        rng.set_state(state)
    params = r.arrays["params"]
    if params.ndim != 1 or params.dtype != net.dtype or params.size != net.num_params:
        raise r.error(
            f"'params' is a {params.dtype} array of shape {params.shape}, but the architecture needs "
            f"({net.num_params},) {net.dtype}"
        )
    net.params[...] = params
    try:
        net.load_state(r.group("net_state/"))
    except ValueError as e:
        raise r.error(str(e)) from None

    name, config = r.typed("loss_config")
    try:
        loss = losses.from_config({"type": name, "config": config or {}})
    except (ValueError, TypeError, AttributeError) as e:
        raise r.error(f"bad loss in 'loss_config' ({e})") from None

    training = r.json("training")
    try:
        history = History.from_dict(training.get("history", {"epoch": [], "history": {}}))
        epoch = int(training["epoch"])
        clip = training.get("gradient_clip")
        clip = None if clip is None else float(clip)
        scheduler_step = str(training.get("scheduler_step", "epoch"))
    except (TypeError, ValueError, KeyError) as e:
        raise r.error(f"bad 'training' entry ({type(e).__name__}: {e})") from None
    given = optimizer is not None
    optimizer = _optimizer(r, optimizer, net)
    scheduler = _scheduler(r, optimizer, set_lr=not given) if "sched_config" in r.arrays else None
    return Checkpoint(net, loss, optimizer, scheduler, epoch, scheduler_step, clip, history, r.json("rng_state"))


_TINYNN_OPTIMIZERS = {cls.__name__: cls for cls in optim.OPTIMIZERS.values()}


def _optimizer(r: _Reader, given: Any, net: Net) -> Any:
    name, config = r.typed("optim_config")
    state = r.group("optim_state/")
    if given is not None:
        # Used as given: its hyperparameters stay the caller's. Same class: it continues the saved
        # state (step count, moments); another class: it starts fresh.
        if type(given).__name__ == name and state and callable(getattr(given, "load_state_dict", None)):
            _load_optim_state(r, given, state, net)
        return given
    cls = _TINYNN_OPTIMIZERS.get(name)
    if cls is None or config is None:
        raise r.error(
            f"optimizer class {name!r} is not a tinynn optimizer; pass it yourself: "
            f"Model.load(path, optimizer={name}(...))"
        )
    try:
        opt = cls.from_config(config)
        if "optim_decay_mask" in r.arrays:
            opt.decay_mask = r.arrays["optim_decay_mask"]
    except (ValueError, TypeError) as e:
        raise r.error(f"bad optimizer config in 'optim_config' ({e})") from None
    _load_optim_state(r, opt, state, net)
    return opt


def _load_optim_state(r: _Reader, opt: Any, state: dict[str, np.ndarray], net: Net) -> None:
    for name, value in state.items():  # array state (moments) is shaped like the flat params
        if value.ndim and (value.shape != net.params.shape or value.dtype != net.params.dtype):
            raise r.error(
                f"optimizer state {name!r} is {value.dtype} {value.shape}, "
                f"the parameters are {net.params.dtype} {net.params.shape}"
            )
    try:
        opt.load_state_dict(state)
    except (ValueError, TypeError, KeyError) as e:
        raise r.error(f"bad optimizer state ({e})") from None


def _scheduler(r: _Reader, optimizer: Any, set_lr: bool) -> Any:
    name, config = r.typed("sched_config")
    cls = lr_scheduler.SCHEDULERS.get(name)
    if cls is None:
        raise r.error(f"scheduler class {name!r} is not a tinynn scheduler")
    lr = optimizer.lr
    try:
        sched = cls.from_config(config, optimizer)
        sched.load_state_dict(r.group("sched_state/"), set_lr=set_lr)
    except (ValueError, TypeError, KeyError) as e:
        raise r.error(f"bad scheduler state ({type(e).__name__}: {e})") from None
    if not set_lr:
        optimizer.lr = lr  # building the scheduler applied its first lr: undo it
    return sched
