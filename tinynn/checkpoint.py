"""Checkpoints: everything a run needs to resume, in ONE ``.npz`` file, written atomically, read without pickle.

This module knows nets, losses, optimizers and schedulers, never ``Model``: it writes and reads a
:class:`Checkpoint`, a plain record of the pieces (``Model.save``/``Model.load`` build it).

Layout (every entry a plain numpy array; text is a 0-d unicode array, "JSON" is text)::

    tinynn_format     "tinynn-checkpoint-5"          marker + version, checked first
    net_config        JSON of Net.get_config()        the architecture (blocks nest their layers)
    params            the net's flat parameter vector
    net_buffers/<name> Net.buffers() arrays, named by path ("1.BatchNorm1d.running_var")
    loss_config       JSON {"type": ..., "config": Loss.get_config()}
    optim_config      JSON {"type": ..., "config": Optimizer.get_config(), "decay_mask": bool}
                      (config null: an optimizer without get_config, to be passed to load)
    optim_state/<key> Optimizer.state_dict(): "t" and every state entry (arrays and scalars)
    optim_decay_mask  the optimizer's decay_mask             (present exactly when "decay_mask" is true)
    sched_config      JSON {"type": ..., "config": LRScheduler.get_config()}, or null: no scheduler
    sched_state/<key> LRScheduler.state_dict()                               (only with a scheduler)
    training          JSON {"epoch": int, "scheduler_interval": "epoch"|"batch",
                            "gradient_clip": float|null, "history": History.to_dict(),
                            "run_id": str (only when the model belongs to a run of tinynn train)}
    rng_state         JSON of tinynn.rng.get_state()

Loading is strict (docs/guarantees.md). The file is read through :class:`tinynn.zipio.NpzReader`
(no pickle, every entry within a size bound, an entry not in this table refused unread); every
entry is present; the parameter count the ``net_config`` implies (``Net.config_params``, no layer
built) is checked against ``params`` before anything is allocated; every value passes the rules
of the constructor that made it. Every problem is a ``ValueError`` naming the file and what is wrong.

Every ``type`` names a class in the registry of its kind (:mod:`tinynn.registry`): a custom
layer, loss, optimizer or scheduler loads once it is registered. Formats 4 and 3 are still read:
they keep the buffers under ``net_state/`` and the interval as ``"scheduler_step"``, and format 3
(flat nets) names buffers by layer index only (``"1.running_var"``): they are given their layer's type.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import losses, optim, rng
from .checks import check_int, check_positive
from .history import History
from .net import Net
from .optim import lr_scheduler
from .optim.lr_scheduler import check_interval
from .zipio import FileError, NpzReader, json_entry, number_entries, text_entry, write_npz

FORMAT = "tinynn-checkpoint-5"
_VERSIONS = {FORMAT: 5, "tinynn-checkpoint-4": 4, "tinynn-checkpoint-3": 3}  # the formats read
_REQUIRED = ("tinynn_format", "net_config", "loss_config", "optim_config", "sched_config", "training", "rng_state",
             "params")  # fmt: skip
_GROUPS = ("optim_state/", "sched_state/")
_BUFFERS = ("net_buffers/", "net_state/")  # the net's buffers: one of them, by format (_buffers_group)
_TRAINING = ("epoch", "gradient_clip", "history")  # and the interval, by format (_interval_key)
_SCALAR = 64  # bytes of a number entry


def _buffers_group(version: int) -> str:
    """Where a file of format ``version`` keeps the net's buffers (formats 3 and 4: ``net_state/``)."""
    return "net_buffers/" if version >= 5 else "net_state/"


def _interval_key(version: int) -> str:
    """The training record's key for the scheduler's interval (formats 3 and 4: ``"scheduler_step"``)."""
    return "scheduler_interval" if version >= 5 else "scheduler_step"


@dataclass
class Checkpoint:
    """Everything needed to predict with a model or to continue its training."""

    net: Net
    loss: losses.Loss
    optimizer: Any
    scheduler: Any = None
    epoch: int = 0  # epochs completed
    scheduler_interval: str = "epoch"
    gradient_clip: float | None = None
    history: History = field(default_factory=History)
    rng_state: dict | None = None  # tinynn.rng.get_state() when saved; restoring it is the caller's choice
    run_id: str | None = None  # the run of tinynn train this checkpoint belongs to (None: no run)


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` to ``path`` exactly (no ``.npz`` suffix appended), atomically."""
    net, opt, sched = ckpt.net, ckpt.optimizer, ckpt.scheduler
    get_config = getattr(opt, "get_config", None)
    has_mask = getattr(opt, "decay_mask", None) is not None
    training = {
        "epoch": int(ckpt.epoch),
        "scheduler_interval": ckpt.scheduler_interval,
        "gradient_clip": ckpt.gradient_clip,
        "history": ckpt.history.to_dict(),
        **({} if ckpt.run_id is None else {"run_id": ckpt.run_id}),
    }
    entries: dict[str, np.ndarray] = {
        "tinynn_format": text_entry(FORMAT),
        "net_config": json_entry(net.get_config()),
        "params": net.params,
        "loss_config": json_entry({"type": type(ckpt.loss).__name__, "config": ckpt.loss.get_config()}),
        "optim_config": json_entry({"type": type(opt).__name__,
                                    "config": get_config() if callable(get_config) else None, "decay_mask": has_mask}),
        "sched_config": json_entry(None if sched is None else {"type": type(sched).__name__,
                                                               "config": sched.get_config()}),
        "training": json_entry(training),
        "rng_state": json_entry(ckpt.rng_state if ckpt.rng_state is not None else rng.get_state()),
        **{f"net_buffers/{k}": v for k, v in net.buffers().items()},
    }  # fmt: skip
    if callable(getattr(opt, "state_dict", None)):
        entries.update(number_entries("optim_state/", opt.state_dict(), "optimizer"))
    if has_mask:
        entries["optim_decay_mask"] = opt.decay_mask
    if sched is not None:
        entries.update(number_entries("sched_state/", sched.state_dict(), "scheduler"))
    return write_npz(path, entries)


def load_checkpoint(path: str | os.PathLike, optimizer: Any = None) -> Checkpoint:
    """Read a :class:`Checkpoint` written by :func:`save_checkpoint`, strictly (see the module docstring).

    Building the net draws initial weights (then overwritten); tinynn's random generator is put
    back afterwards, so loading never changes it (``Checkpoint.rng_state`` holds the saved one).
    ``optimizer``: use this one as given (see ``Model.load`` for the rule) instead of rebuilding
    the saved one.
    """
    try:
        r = NpzReader(Path(path), "checkpoint")
        marker = r.check_layout("tinynn_format", tuple(_VERSIONS), _REQUIRED, ("optim_decay_mask",),
                                (*_GROUPS, *_BUFFERS))  # fmt: skip
        with r:
            return _load(r, _VERSIONS[marker], optimizer)
    except FileError as e:
        raise ValueError(str(e)) from None


def _load(r: NpzReader, version: int, optimizer: Any) -> Checkpoint:
    if other := [k for k in r.names if k.startswith(_BUFFERS) and not k.startswith(_buffers_group(version))]:
        raise r.error(f"unknown entries {other[:5]} (refused unread)")  # another format's name for the buffers
    net = _net(r, version)
    with r.reading("loss in 'loss_config'"):
        name, config, _ = r.typed("loss_config")
        loss = losses.from_config({"type": name, "config": config})
    epoch, interval, clip, history, run_id = _training(r, version)
    given = optimizer is not None
    optimizer = _optimizer(r, optimizer, net)
    scheduler = _scheduler(r, optimizer, interval, set_lr=not given)
    rng_state = r.json("rng_state")
    with r.reading("'rng_state'"):
        rng.check_state(rng_state)
    return Checkpoint(net, loss, optimizer, scheduler, epoch, interval, clip, history, rng_state, run_id)


def _net(r: NpzReader, version: int) -> Net:
    """The net, its size checked against ``params`` before it is built."""
    config = r.json("net_config")
    with r.reading("architecture in 'net_config'"):
        named, dtype = Net.config_params(config)
    params = r.exact_array("params", (sum(math.prod(shape) for _, shape in named),), dtype, "the architecture needs")
    rng_state = rng.get_state()
    try:
        with r.reading("architecture in 'net_config'"):
            net = Net.from_config(config)
    finally:
        rng.set_state(rng_state)
    if net.named_params() != named:  # a layer's param_shapes disagrees with what it builds: its bug
        raise r.error(f"the layers built {net.named_params()}, but their param_shapes said {named}")
    net.params[...] = params
    own, group = net.buffers(), _buffers_group(version)
    rename = (lambda n: _v3_buffer_name(n, net)) if version == 3 else (lambda n: n)
    names = {rename(k.removeprefix(group)) for k in r.names if k.startswith(group)}
    if names != set(own):
        raise r.error(f"layer buffers do not match the net: expected {sorted(own)}, got {sorted(names)}")
    with r.reading("layer buffers"):
        buffers = r.group(group, max_bytes=max((a.nbytes for a in own.values()), default=0))
        net.load_buffers({rename(k): v for k, v in buffers.items()})
    return net


def _v3_buffer_name(name: str, net: Net) -> str:
    """Format 3's ``"1.running_var"`` as later formats name it, ``"1.BatchNorm1d.running_var"`` (its nets are flat)."""
    i, _, rest = name.partition(".")
    if not (i.isdigit() and int(i) < len(net.layers)):
        return name  # not a buffer name of this net: refused by the name check
    return f"{i}.{type(net.layers[int(i)]).__name__}.{rest}"


def _training(r: NpzReader, version: int) -> tuple[int, str, float | None, History, str | None]:
    training, key = r.json("training"), _interval_key(version)
    if set(training) - {"run_id"} != {*_TRAINING, key}:
        raise r.error(f"entry 'training' should have exactly the keys {sorted({*_TRAINING, key})} (and 'run_id'), "
                      f"got {sorted(training)}")  # fmt: skip
    run_id = training.get("run_id")
    if run_id is not None and not (isinstance(run_id, str) and 0 < len(run_id) <= 64):
        raise r.error(f"entry 'training' has a bad 'run_id' {str(run_id)[:80]!r} (a string of 1 to 64 characters)")
    clip = training["gradient_clip"]
    with r.reading("'training' entry"):
        epoch = check_int(training["epoch"], "epoch", 0)
        interval = check_interval(training[key], key, "training")
        clip = None if clip is None else check_positive(clip, "gradient_clip (or null)")
        history = History.from_dict(training["history"])
    return epoch, interval, clip, history, run_id


def _optimizer(r: NpzReader, given: Any, net: Net) -> Any:
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


def _load_optim_state(r: NpzReader, opt: Any, state: dict[str, Any], net: Net) -> None:
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


def _scheduler(r: NpzReader, optimizer: Any, interval: str, set_lr: bool) -> Any:
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
            f"scheduler class {name!r} is not a registered scheduler (register it: "
            "@tn.optim.lr_scheduler.register_scheduler)"
        )
    lr = getattr(optimizer, "lr", None)
    with r.reading("scheduler in 'sched_config'/'sched_state'"):
        if not isinstance(config, dict):
            raise ValueError(f"expected a JSON object, got {type(config).__name__}")
        sched = cls.from_config(config, optimizer)
        sched.load_state_dict(state, set_lr=set_lr)
        check_interval(interval, "scheduler_interval", "training", scheduler=sched)  # a plateau steps per epoch
    if not set_lr:
        optimizer.lr = lr  # building the scheduler applied its first lr: undo it
    return sched
