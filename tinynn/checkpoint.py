"""Checkpoints: a whole training state in ONE ``.npz`` file, written atomically, read without pickle.

Layout (every entry a plain numpy array; text is a 0-d unicode array)::

    tinynn_format   "tinynn-checkpoint-1"         marker + version, checked first
    net_config      JSON of Net.get_config()       the architecture
    loss_config     JSON {"type": ..., "config": ...}
    params          the net's flat parameter vector
    buffer/<name>   Net.buffers() (batch-norm running statistics)
    optim_class     optimizer class name ("Adam"), optim/<key> its state_dict() entries
    sched_class     scheduler class name (if any), sched/<key> its state_dict() entries
    scheduler_step  "epoch" or "batch"
    rng_state       JSON of tinynn.rng.get_state()
    epoch           number of epochs completed
    gradient_clip   the Model's gradient_clip (NaN for None)

``np.load(..., allow_pickle=False)`` means a checkpoint can never run code when loaded; every
problem (foreign file, missing key, wrong shape, truncated bytes) is a ``ValueError`` naming
the file and what is wrong.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import losses, optim, rng
from .fileio import atomic_write
from .net import Net
from .optim import lr_scheduler

if TYPE_CHECKING:
    from .model import Model

FORMAT = "tinynn-checkpoint-1"
_REQUIRED = ("tinynn_format", "net_config", "loss_config", "params", "optim_class", "rng_state", "epoch")


def _text(s: str) -> np.ndarray:
    return np.array(s, dtype=np.str_)


def save_checkpoint(model: Model, path: str | os.PathLike) -> Path:
    """Write ``model`` (net, loss, optimizer, scheduler, RNG state, epoch) to ``path`` exactly.

    Unlike ``np.savez`` no ``.npz`` suffix is appended: the file lands at ``path`` as given.
    """
    net = model.net
    arrays: dict[str, np.ndarray] = {
        "tinynn_format": _text(FORMAT),
        "net_config": _text(json.dumps(net.get_config())),
        "loss_config": _text(json.dumps({"type": type(model.loss).__name__, "config": model.loss.get_config()})),
        "params": net.params,
        "optim_class": _text(type(model.optimizer).__name__),
        "rng_state": _text(json.dumps(rng.get_state())),
        "epoch": np.array(int(model.epoch), dtype=np.int64),
        "scheduler_step": _text(model.scheduler_step),
        "gradient_clip": np.array(np.nan if model.gradient_clip is None else model.gradient_clip),
    }
    for name, buf in net.buffers().items():
        arrays[f"buffer/{name}"] = buf
    state_dict = getattr(model.optimizer, "state_dict", None)
    if callable(state_dict):
        arrays.update(_flatten("optim/", state_dict(), "optimizer"))
    if model.scheduler is not None:
        arrays["sched_class"] = _text(type(model.scheduler).__name__)
        arrays.update(_flatten("sched/", model.scheduler.state_dict(), "scheduler"))
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def _flatten(prefix: str, state: dict[str, Any], what: str) -> dict[str, np.ndarray]:
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

    def json(self, key: str) -> Any:
        try:
            return json.loads(self.text(key))
        except json.JSONDecodeError as e:
            raise self.error(f"entry {key!r} is not valid JSON ({e})") from None

    def group(self, prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) :]: v for k, v in self.arrays.items() if k.startswith(prefix)}


def load_checkpoint(
    path: str | os.PathLike,
    optimizer: Any = None,
    restore_rng: bool = True,
    model_cls: type[Model] | None = None,
) -> Model:
    """Rebuild the Model saved by :func:`save_checkpoint` (see ``Model.load``)."""
    from .model import Model  # model imports this module; import here to keep one direction at import time

    model_cls = model_cls or Model
    r = _Reader(Path(path))

    try:
        net = Net.from_config(r.json("net_config"))
    except (ValueError, TypeError, KeyError) as e:
        raise r.error(f"bad architecture in 'net_config' ({e})") from None
    params = r.arrays["params"]
    if params.ndim != 1 or params.dtype != net.dtype or params.size != net.num_params:
        raise r.error(
            f"'params' is a {params.dtype} array of shape {params.shape}, but the architecture needs "
            f"({net.num_params},) {net.dtype}"
        )
    net.params[...] = params
    try:
        net.load_buffers(r.group("buffer/"))
    except ValueError as e:
        raise r.error(str(e)) from None

    try:
        loss = losses.from_config(r.json("loss_config"))
    except (ValueError, TypeError, AttributeError) as e:
        raise r.error(f"bad loss in 'loss_config' ({e})") from None

    try:
        epoch = int(r.arrays["epoch"])
        clip = float(r.arrays.get("gradient_clip", np.nan))
    except (TypeError, ValueError) as e:
        raise r.error(f"bad 'epoch' or 'gradient_clip' entry ({e})") from None
    optimizer = _optimizer(r, optimizer, net)
    model = model_cls(net, loss, optimizer, gradient_clip=None if np.isnan(clip) else clip)
    model.epoch = epoch
    if "scheduler_step" in r.arrays:
        model.scheduler_step = r.text("scheduler_step")
    if "sched_class" in r.arrays:
        model.scheduler = _scheduler(r, optimizer)
    if restore_rng:
        state = r.json("rng_state")
        try:
            rng.set_state(state)
        except (ValueError, TypeError, KeyError) as e:
            raise r.error(f"bad 'rng_state' ({e})") from None
    return model


def _optimizer(r: _Reader, given: Any, net: Net) -> Any:
    name = r.text("optim_class")
    state = r.group("optim/")
    if given is not None:
        # Same class: continue its state. Another class: the caller wants a fresh optimizer.
        if type(given).__name__ == name and state and callable(getattr(given, "load_state_dict", None)):
            _load_optim_state(r, given, state, net)
        return given
    try:
        opt = optim.get(name)
    except ValueError:
        opt = None
    if opt is None or type(opt).__name__ != name:
        raise r.error(
            f"optimizer class {name!r} is not a tinynn optimizer; pass it yourself: "
            f"Model.load(path, optimizer={name}(...))"
        )
    _load_optim_state(r, opt, state, net)
    return opt


def _load_optim_state(r: _Reader, opt: Any, state: dict[str, np.ndarray], net: Net) -> None:
    hyper = set(getattr(opt, "hyperparams", ()))
    for name, value in state.items():  # array state (moments) is shaped like the flat params
        if name not in hyper and value.ndim and (value.shape != net.params.shape or value.dtype != net.params.dtype):
            raise r.error(
                f"optimizer buffer {name!r} is {value.dtype} {value.shape}, "
                f"the parameters are {net.params.dtype} {net.params.shape}"
            )
    try:
        opt.load_state_dict(state)
    except (ValueError, TypeError, KeyError) as e:
        raise r.error(f"bad optimizer state ({e})") from None


def _scheduler(r: _Reader, optimizer: Any) -> lr_scheduler.LRScheduler:
    name = r.text("sched_class")
    cls = getattr(lr_scheduler, name, None)
    if not (isinstance(cls, type) and issubclass(cls, lr_scheduler.LRScheduler)):
        raise r.error(f"scheduler class {name!r} is not a tinynn scheduler")
    state = r.group("sched/")
    try:
        kwargs = {k: (tuple(state[k].tolist()) if state[k].ndim else state[k].item()) for k in cls.hyperparams}
        sched = cls(optimizer, **kwargs)
        sched.load_state_dict(state)
    except (ValueError, TypeError, KeyError) as e:
        raise r.error(f"bad scheduler state ({type(e).__name__}: {e})") from None
    return sched
