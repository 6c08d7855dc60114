"""The optimizer base class: one `step` shared by every optimizer.

An optimizer sees the model as two flat 1-D numpy arrays, `params` and `grads`.
`step` updates `params` in place, with weight decay in one of two forms:

    L2 (default, like torch):     g = grads + weight_decay * mask * params
                                  params = params - compute_step(g)
    decoupled (AdamW; a class     params = params - lr * weight_decay * mask * params
    sets decoupled_weight_decay)  params = params - compute_step(grads)

(`maximize` negates grads first; `mask` is the optional decay mask, 1 everywhere by default.)
Each subclass only writes `init_state` (the state it keeps, declared up front) and
`compute_step` (the math of one paper).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from ..checks import check_bool, check_float, check_int
from ..registry import Registry

State = dict[str, Any]  # name -> np.ndarray shaped like params, or a float


def check_hyper(name: str, value: float, ok: bool, rule: str) -> None:
    """Raise a ValueError naming the hyperparameter when `ok` is False (rules tying two arguments)."""
    if not ok:
        raise ValueError(f"invalid {name}={value!r}: {rule}")


def check_lr(lr: Any, where: str = "") -> float:
    """The learning-rate rule (a finite number >= 0) shared by optimizers, schedulers and their saved state."""
    return check_float(lr, "lr", 0, where=where)


class Optimizer:
    """Base class of all optimizers.

    Hyperparameters are plain public attributes listed in `hyperparams` (`get_config` returns
    them): a scheduler may change `self.lr` between steps, so `compute_step` reads it every call.

    State is everything that changes from step to step: the step count `self.t` and the dict
    `self.state` that `init_state` declares (moment arrays shaped like `params`, and scalars such
    as a running product). It is built on the first `step`, with the dtype and shape of
    `params`, and reused afterwards: no step allocates memory. `state_dict` saves all of it.

    `decay_mask` (optional, a 1-D array like `params` of 0s and 1s) limits weight decay to the
    entries where it is 1: build it from a net's parameter names with :func:`decay_mask`.

    A class whose update reads each coordinate's own values only declares `elementwise = True`
    in its own body; then `Net(workers=...)` steps slices of the vector in parallel through
    `shard` and `join` (the state `init_state` declares, sliced). The claim is not inherited by a
    subclass that changes the math (`is_elementwise`); any other optimizer steps whole.
    """

    hyperparams: tuple[str, ...] = ("lr", "weight_decay", "maximize")
    # True: every coordinate is updated from its own values only (no norms, no sums over the
    # vector), so a step may run on slices of the vector in parallel (see is_elementwise).
    elementwise: bool = False
    decoupled_weight_decay: bool = False

    def __init__(
        self, lr: float, weight_decay: float = 0.0, maximize: bool = False, decay_mask: np.ndarray | None = None
    ) -> None:
        where = type(self).__name__
        self.lr = check_lr(lr, where)
        self.weight_decay = check_float(weight_decay, "weight_decay", 0, where=where)
        self.maximize = check_bool(maximize, "maximize", where)
        self.decay_mask = decay_mask
        self.t = 0  # number of steps taken
        self.state: State | None = None  # built by init_state on the first step (or load_state_dict)
        self._g: np.ndarray | None = None  # scratch: the gradient after weight decay / maximize
        self._out: np.ndarray | None = None  # scratch: the decrement compute_step writes

    # -- the part a subclass writes --------------------------------------------------------

    def init_state(self, params: np.ndarray) -> State:
        """The state this optimizer keeps for `params`: {name: array like params, or float}."""
        return {}

    def compute_step(self, g: np.ndarray, out: np.ndarray) -> None:
        """Write this step's decrement into `out` (then params -= out). Must not modify `g`."""
        raise NotImplementedError

    # -- the shared step -------------------------------------------------------------------

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        """Update `params` in place from `grads` (1-D float arrays of equal shape and dtype)."""
        self._check(params, grads)
        if self._out is None:
            self._start(params)
        self.t += 1
        if self.weight_decay and self.decoupled_weight_decay:
            self._shrink(params)  # p *= 1 - lr * wd, outside the moments
        self.compute_step(self._gradient(params, grads), self._out)
        params -= self._out

    def _gradient(self, params: np.ndarray, grads: np.ndarray) -> np.ndarray:
        # Like torch: negate for maximize first, then add the L2 term. The caller's
        # grads are never written; the result lands in the preallocated self._g.
        wd = 0.0 if self.decoupled_weight_decay else self.weight_decay
        if not wd and not self.maximize:
            return grads
        g = self._g
        if wd:
            np.multiply(params, wd, out=g)
            if self.decay_mask is not None:
                g *= self.decay_mask
            if self.maximize:
                g -= grads
            else:
                g += grads
        else:
            np.negative(grads, out=g)
        return g

    def _shrink(self, params: np.ndarray) -> None:
        if self.decay_mask is None:
            params *= 1 - self.lr * self.weight_decay
        else:  # the same product, written only where the mask is 1
            np.multiply(params, 1 - self.lr * self.weight_decay, out=self._g)
            np.copyto(params, self._g, where=self._decay_where)

    @property
    def decay_mask(self) -> np.ndarray | None:
        """1 where weight decay applies, 0 where it does not (None: everywhere)."""
        return self._decay_mask

    @decay_mask.setter
    def decay_mask(self, mask: Any) -> None:
        if mask is not None:
            mask = np.asarray(mask)
            if mask.ndim != 1 or not np.isin(mask, (0, 1)).all():
                raise ValueError(f"decay_mask must be a 1-D array of 0s and 1s, got {mask.dtype} shape {mask.shape}")
            self._decay_where = mask.astype(bool)
            mask = mask.astype(self._out.dtype if getattr(self, "_out", None) is not None else np.float32)
        self._decay_mask = mask

    def _start(self, params: np.ndarray) -> None:
        """Allocate the scratch arrays and (unless restored by load_state_dict) the state."""
        self._g = np.empty_like(params)
        self._out = np.empty_like(params)
        if self.state is None:
            self.state = self.init_state(params)
        if self.decay_mask is not None and self.decay_mask.dtype != params.dtype:
            self.decay_mask = self.decay_mask  # in the params' dtype: no casting in the step

    def _check(self, params: np.ndarray, grads: np.ndarray) -> None:
        name = type(self).__name__
        if not isinstance(params, np.ndarray) or not isinstance(grads, np.ndarray):
            raise TypeError(f"{name}.step expects numpy arrays, got {type(params)} and {type(grads)}")
        if params.ndim != 1 or grads.ndim != 1:
            raise ValueError(f"{name}.step expects 1-D arrays, got params {params.shape} and grads {grads.shape}")
        if params.shape != grads.shape:
            raise ValueError(f"{name}.step: params shape {params.shape} != grads shape {grads.shape}")
        if params.dtype != grads.dtype or params.dtype.kind != "f":
            raise ValueError(
                f"{name}.step expects params and grads of one float dtype, "
                f"got params {params.shape} {params.dtype} and grads {grads.shape} {grads.dtype}"
            )
        like = self._out if self._out is not None else next(_arrays(self.state or {}), None)
        if like is not None and (like.shape != params.shape or like.dtype != params.dtype):
            raise ValueError(
                f"{name}.step: state was built for {like.shape} {like.dtype} params, "
                f"got {params.shape} {params.dtype}; use a new optimizer for a different model"
            )
        if self.decay_mask is not None and self.decay_mask.shape != params.shape:
            raise ValueError(f"{name}.step: decay_mask has shape {self.decay_mask.shape}, params {params.shape}")

    # -- stepping slices in parallel (tinynn.parallel.optimizer_step) -------------------------

    @classmethod
    def is_elementwise(cls) -> bool:
        """True if ``cls`` declares ``elementwise = True`` below every override of the math.

        The claim is not inherited silently: a subclass that overrides ``compute_step``,
        ``init_state`` or ``step`` (a global-norm scaling, say) loses it unless it declares
        ``elementwise = True`` itself; a subclass that only changes defaults (AdamW) keeps it.
        """
        mro = cls.__mro__
        declarer = next(k for k in mro if "elementwise" in vars(k))
        if vars(declarer)["elementwise"] is not True:
            return False
        definers = (next(k for k in mro if m in vars(k)) for m in ("init_state", "compute_step", "step"))
        return all(mro.index(declarer) <= mro.index(k) for k in definers)

    def shard(self, params: np.ndarray, part: slice) -> Optimizer:
        """An optimizer that steps ``params[part]`` alone: a copy whose state arrays (those of
        ``init_state``), work arrays and decay mask are views of that slice. For elementwise
        optimizers only; ``join`` takes its scalars back after the step."""
        if not self.is_elementwise():
            raise TypeError(f"{type(self).__name__} is not elementwise (is_elementwise()): it cannot step a slice")
        if self._out is None:
            self._start(params)
        shard = copy.copy(self)
        shard.state = {k: v[part] if isinstance(v, np.ndarray) else v for k, v in self.state.items()}
        shard._g, shard._out = self._g[part], self._out[part]
        if self.decay_mask is not None:
            shard._decay_mask, shard._decay_where = self._decay_mask[part], self._decay_where[part]
        return shard

    def join(self, shards: Sequence[Optimizer]) -> None:
        """After every shard stepped its slice: take the step count and scalar state they moved alike."""
        first = shards[0]
        self.t = first.t
        for name, value in first.state.items():
            if not isinstance(value, np.ndarray):
                self.state[name] = value

    # -- saving and resuming ---------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The hyperparameters, as JSON-able data: `type(opt).from_config(opt.get_config())` rebuilds it."""
        return {name: list(v) if isinstance(v := getattr(self, name), tuple) else v for name in self.hyperparams}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        return cls(**config)

    def state_dict(self) -> dict[str, Any]:
        """A flat dict {"t": steps, name: array copy or float for each state entry}.

        It can be saved without pickle: `np.savez(path, **opt.state_dict())`, and loaded back
        with `opt.load_state_dict(dict(np.load(path)))`. Hyperparameters are in `get_config`.
        """
        d: dict[str, Any] = {"t": self.t}
        for name, value in (self.state or {}).items():
            d[name] = value.copy() if isinstance(value, np.ndarray) else float(value)
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore a `state_dict`, so a resumed run continues bit-identically."""
        d = dict(d)
        if "t" not in d:
            raise ValueError(f"{type(self).__name__}.load_state_dict: no step count 't'")
        t = d.pop("t")
        t = check_int(t.item() if isinstance(t, np.ndarray) and t.ndim == 0 else t, "t", 0, type(self).__name__)
        arrays = [np.asarray(v) for v in d.values() if np.ndim(v)]
        like = arrays[0] if arrays else np.zeros(0)
        expected = self.init_state(np.zeros(like.shape, like.dtype)) if d or t else {}
        if set(d) != set(expected):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: state names {sorted(d)}, expected {sorted(expected)}"
            )
        state = {}
        for name, want in expected.items():
            value = np.asarray(d[name])
            shape, dtype = (like.shape, like.dtype) if isinstance(want, np.ndarray) else ((), value.dtype)
            if value.shape != shape or value.dtype != dtype:
                raise ValueError(
                    f"{type(self).__name__}: state {name!r} is {value.dtype} {value.shape}, expected {dtype} {shape}"
                )
            state[name] = value.copy() if value.ndim else float(value)
        self.t = t
        self.state = state if d or t else None
        self._g = self._out = None  # rebuilt on the next step, next to the restored state

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.hyperparams)
        return f"{type(self).__name__}({args})"


OPTIMIZERS: Registry = Registry("optimizer", Optimizer, "tn.optim.register_optimizer")
"""Every optimizer class a checkpoint may name: class name -> class. Fill it with ``register_optimizer``."""

Opt = TypeVar("Opt", bound=type[Optimizer])


def register_optimizer(cls: Opt) -> Opt:
    """Class decorator: make ``cls`` rebuildable by name from a checkpoint and by ``tn.optim.get``."""
    return OPTIMIZERS.register(cls)


def _arrays(state: State):
    return (v for v in state.values() if isinstance(v, np.ndarray))


def decay_mask(
    named_params: Sequence[tuple[str, tuple[int, ...]]], decay: Callable[[str, tuple[int, ...]], bool] | None = None
) -> np.ndarray:
    """A float32 mask over the flat parameter vector: 1 for the tensors weight decay should shrink.

    ``named_params`` is ``net.named_params()`` (name and shape of each tensor, in order);
    ``decay(name, shape)`` says which tensors to decay. By default those with 2 or more
    dimensions (weight matrices and kernels), not biases or normalization scales and shifts
    (1-D): what torch users do with parameter groups and optax with masks. Pass it as
    ``decay_mask=`` to any optimizer.
    """
    decay = decay or (lambda name, shape: len(shape) >= 2)
    parts = [np.full(int(np.prod(shape)), float(decay(name, shape)), np.float32) for name, shape in named_params]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)
