"""The optimizer base class: one `step` shared by every optimizer.

An optimizer sees the model as two flat 1-D numpy arrays, `params` and `grads`.
`step` updates `params` in place:

    g      = grads + weight_decay * params      (L2 weight decay, like torch)
    params = params - compute_step(g)

and each subclass only writes `compute_step`, the math of one paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_hyper(name: str, value: float, ok: bool, rule: str) -> None:
    """Raise a ValueError naming the hyperparameter when `ok` is False."""
    if not ok:
        raise ValueError(f"invalid {name}={value!r}: {rule}")


class Optimizer:
    """Base class of all optimizers.

    Hyperparameters are plain public attributes: a scheduler may change `self.lr`
    between steps, so `compute_step` must read it on every call.

    State (moment buffers) is allocated on the first `step`, with the dtype and
    shape of `params`, and reused afterwards: a float32 model gets float32 state
    and no step allocates memory.

    Subclasses set `hyperparams` (names saved by `state_dict`) and `buffers`
    (names of the state arrays that `init_state` creates for the current
    hyperparameters), and write `compute_step`.
    """

    hyperparams: tuple[str, ...] = ("lr", "weight_decay", "maximize")
    # Every coordinate is updated from its own values only, so a step may run on slices of the
    # vector in parallel (tinynn.parallel.optimizer_step). A subclass using norms must say False.
    elementwise: bool = True
    buffers: tuple[str, ...] = ()
    decoupled_weight_decay: bool = False

    def __init__(self, lr: float, weight_decay: float = 0.0, maximize: bool = False) -> None:
        check_hyper("lr", lr, lr >= 0, "must be >= 0")
        check_hyper("weight_decay", weight_decay, weight_decay >= 0, "must be >= 0")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.maximize = bool(maximize)
        self.t = 0  # number of steps taken
        self._g: np.ndarray | None = None  # work buffer: the gradient after weight decay / maximize
        self._step: np.ndarray | None = None  # work buffer: the decrement returned by compute_step

    # -- the part a subclass writes --------------------------------------------------------

    def init_state(self, params: np.ndarray) -> None:
        """Allocate the moment buffers named in `buffers` (like `params`)."""

    def compute_step(self, grads: np.ndarray) -> np.ndarray:
        """Return the decrement for this step (params -= decrement). Must not modify grads."""
        raise NotImplementedError

    # -- the shared machinery --------------------------------------------------------------

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        """Update `params` in place from `grads` (1-D float arrays of equal shape and dtype)."""
        self._check(params, grads)
        if self._step is None:
            self._allocate(params)
        self.t += 1
        if self.weight_decay and self.decoupled_weight_decay:
            params *= 1 - self.lr * self.weight_decay  # shrink the weights, outside the moments
        params -= self.compute_step(self._gradient(params, grads))

    def _gradient(self, params: np.ndarray, grads: np.ndarray) -> np.ndarray:
        # Like torch: negate for maximize first, then add the L2 term. The caller's
        # grads are never written; the result lands in the preallocated self._g.
        wd = 0.0 if self.decoupled_weight_decay else self.weight_decay
        if not wd and not self.maximize:
            return grads
        g = self._g
        if wd:
            np.multiply(params, wd, out=g)
            if self.maximize:
                g -= grads
            else:
                g += grads
        else:
            np.negative(grads, out=g)
        return g

    def _allocate(self, params: np.ndarray) -> None:
        self._g = np.empty_like(params)
        self._step = np.empty_like(params)
        self.init_state(params)

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
        if self._step is not None and (self._step.shape != params.shape or self._step.dtype != params.dtype):
            raise ValueError(
                f"{name}.step: state was built for {self._step.shape} {self._step.dtype} params, "
                f"got {params.shape} {params.dtype}; use a new optimizer for a different model"
            )

    # -- saving and resuming ---------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """A flat dict {name: number | bool | tuple | np.ndarray}: hyperparameters, `t`, buffers.

        It can be saved without pickle: `np.savez(path, **opt.state_dict())`, and loaded back
        with `opt.load_state_dict(dict(np.load(path)))`.
        """
        d: dict[str, Any] = {name: getattr(self, name) for name in self.hyperparams}
        d["t"] = self.t
        if self._step is not None:
            for name in self.buffers:
                d[name] = getattr(self, name).copy()
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore a `state_dict`, so a resumed run continues bit-identically."""
        for name in self.hyperparams:
            if name in d:  # npz turns numbers into 0-d arrays: cast back to the attribute's type
                kind = type(getattr(self, name))
                value = d[name]
                setattr(self, name, tuple(float(x) for x in value) if kind is tuple else kind(value))
        unknown = set(d) - set(self.hyperparams) - set(self.buffers) - {"t"}
        if unknown:
            raise ValueError(f"{type(self).__name__}.load_state_dict: unknown keys {sorted(unknown)}")
        self.t = int(d.get("t", 0))
        if self.buffers and self.buffers[0] in d:
            first = np.asarray(d[self.buffers[0]])
            self._allocate(first)
            for name in self.buffers:
                np.copyto(getattr(self, name), d[name])
        else:
            self._g = self._step = None

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.hyperparams)
        return f"{type(self).__name__}({args})"
