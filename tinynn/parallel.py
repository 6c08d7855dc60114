"""Several cores for one training step: the batch split over threads, the optimizer step over slices.

numpy releases the GIL inside its loops and BLAS calls, so plain Python threads run numpy work
truly in parallel. ``Net(layers, workers=2)`` uses that twice per step:

1. **Batch split** (:class:`BatchSplit`, driven by ``Net.forward`` / ``Net.backward``). The rows of
   the batch are cut into ``workers`` contiguous chunks; chunk k runs through replica k of the layer
   list (replica 0 is the net's own layers)::

       x[ 0: 64] -> layers    -> out[ 0: 64]      backward: dW_0 = x[ 0:64].T @ g[ 0:64] -> net.grads
       x[64:128] -> replica 1 -> out[64:128]                dW_1 = x[64:128].T @ g[64:128] -> grads_1
                                                  then net.grads += grads_1   (= x.T @ g, the full sum)

   A replica is each layer's ``Layer.replica()``: a copy sharing the parameter arrays (so it needs
   no syncing) with its own scratch arrays; ``bind_flat`` (the function that binds the net's)
   binds its gradients into its own flat vector. While the chunks run, BLAS is
   set to one thread: each Python thread already has its core, and a two-thread GEMM started
   from both would fight over the same two cores.
2. **Sharded optimizer step** (:func:`optimizer_step`, called by ``Model.apply_grads``). Only for
   an optimizer that declares itself elementwise (``optimizer.is_elementwise()``: every coordinate
   updated from its own values; every tinynn optimizer, not a subclass that changes the math
   without declaring it again). The flat parameter vector is cut into ``workers`` slices and each
   thread steps its slice with ``optimizer.shard(params, part)``, a copy whose state arrays are views of
   that slice; ``optimizer.join(shards)`` takes back the scalars. The result is bit-identical to
   one step. Any other optimizer steps the whole vector at once.

What a layer must do to run under the batch split (``batch_independent = True``, the default):
rows of the batch never interact (batch on axis 0; no batch statistics, no random draws), it reads
its parameters from ``self.params`` and writes (overwrites) its gradients into the arrays of
``self.grads`` in ``backward``, and everything it keeps between ``forward`` and ``backward`` lives on
the layer instance (its ``replica()`` copies it; the default suits most layers). ``Dropout``
(random masks: the order of draws between threads would not be deterministic) and ``BatchNorm1d``
(batch statistics) set ``batch_independent = False``. Blocks are walked through ``sublayers()``:
every layer at any depth must qualify.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .blas import blas_thread_count, blas_threads
from .layers.base import bind_flat, named_layers

__all__ = ["AUTO_HELD_PER_PARAM", "AUTO_MAX_WORKERS", "AUTO_MIN_HELD", "AUTO_MIN_ROWS", "BatchSplit",
           "auto_workers", "blas_thread_count", "blas_threads", "chunks", "optimizer_step", "run", "usable_cores"]

# --- running callables on several threads ----------------------------------------------------

_pool: ThreadPoolExecutor | None = None  # created on first use, grown when more threads are asked
_pool_size = 0
_pool_lock = threading.Lock()


def run(tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Call every task, the first on this thread and the others on worker threads; their results.

    Waits for all of them even if one raises, then re-raises the first error.
    """
    global _pool, _pool_size
    if len(tasks) == 1:
        return [tasks[0]()]
    with _pool_lock:
        if _pool_size < len(tasks) - 1:
            _pool, _pool_size = ThreadPoolExecutor(len(tasks) - 1, thread_name_prefix="tinynn"), len(tasks) - 1
    futures = [_pool.submit(task) for task in tasks[1:]]
    try:
        first = tasks[0]()
    finally:
        rest = [f.exception() for f in futures]  # wait for every worker before anything else
    for error in rest:
        if error is not None:
            raise error
    return [first, *(f.result() for f in futures)]


def chunks(n: int, parts: int, align: int = 1) -> list[slice]:
    """``parts`` contiguous slices covering ``range(n)``, sizes as equal as ``align`` allows."""
    cuts = [0, *(n * k // parts // align * align for k in range(1, parts)), n]
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it, else the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# --- the automatic choice --------------------------------------------------------------------

AUTO_MAX_WORKERS = 2
"""Most threads the automatic split uses (the count measured to pay: 2 cores; more is unmeasured)."""

AUTO_MIN_ROWS = 16
"""Fewest rows each thread gets from the automatic split: a smaller batch runs whole."""

AUTO_HELD_PER_PARAM = 0.05
"""The split pays when the activations the layers keep per row are at least this many per parameter."""

AUTO_MIN_HELD = 2**18
"""... and when the batch's kept activations are at least this many numbers (1 MiB in float32): below
that, a thread's start and the gradient sum cost more than the work they share out."""


def auto_workers(layers: Sequence[Any], num_params: int, rows: int) -> int:
    """How many threads ``Net(workers=None)`` splits its batches over, decided once from its first
    training batch of ``rows >= 2 * AUTO_MIN_ROWS`` rows (the layers' scratch arrays filled by that
    batch's forward; a smaller batch, a shape check say, decides nothing).

    Why the split pays on some nets and not others. Unsplit, numpy runs the matrix products on
    every BLAS thread but everything else (im2col, pooling, activations, a recurrent layer's gates)
    on one; split, each thread runs all of its chunk's work, and the chunks' weight gradients
    must then be added (``num_params`` numbers per extra thread). A dense net keeps about one
    number per row per weight-matrix column, a few thousand, against ~10^5 parameters: its step is
    the products, and splitting buys nothing but the sum. A convolution or a recurrent layer reuses
    each weight at every pixel or step, and keeps tens of thousands of numbers per row for ~10^5
    parameters: most of its step is the elementwise work, which the split doubles up. So::

        workers = min(BLAS threads, usable cores, AUTO_MAX_WORKERS)   if
            every layer is batch_independent (no Dropout, no BatchNorm1d, ...), and
            scratch numbers held per row >= AUTO_HELD_PER_PARAM * num_params, and
            scratch numbers held >= AUTO_MIN_HELD, and rows >= 2 * AUTO_MIN_ROWS
        else 1

    Every input is fixed for a given machine, environment and net (no timing), so the choice is
    the same on every run; ``Net.get_config`` records it once it is more than 1, so a checkpoint
    resumes with the same split.
    """
    workers = min(blas_thread_count(), usable_cores(), AUTO_MAX_WORKERS)
    if workers < 2 or rows < 2 * AUTO_MIN_ROWS:
        return 1
    if not all(layer.batch_independent for _, layer in named_layers(layers)):
        return 1
    held = sum(layer.scratch_size() for _, layer in named_layers(layers))
    return workers if held >= max(AUTO_HELD_PER_PARAM * num_params * rows, AUTO_MIN_HELD) else 1


# --- the batch split -------------------------------------------------------------------------


class BatchSplit:
    """Forward and backward of a layer list with the batch's rows split over ``workers`` threads."""

    def __init__(self, layers: Sequence[Any], grads: np.ndarray, workers: int) -> None:
        mixing = [(path, layer) for path, layer in named_layers(layers) if not layer.batch_independent]
        if mixing:  # name the innermost such layer (a block is batch-dependent through its layers)
            path, layer = max(mixing, key=lambda item: item[0].count("."))
            raise ValueError(
                f"workers={workers}: layer {path} {layer!r} mixes the rows of a batch (batch statistics or "
                "random draws), so the batch cannot be split over threads; use workers=1"
            )
        self.layers, self.grads = list(layers), grads
        self.replicas = [self.replicate() for _ in range(workers - 1)]
        self.rows = 0  # rows of the last split forward (0: the last forward was not split)
        self._parts: list[slice] = []

    def replicate(self) -> tuple[list[Any], np.ndarray]:
        """Replicas of the layers sharing their parameters, with gradients in a new flat vector."""
        layers, own = [layer.replica() for layer in self.layers], np.zeros_like(self.grads)
        bind_flat(layers, None, own)
        return layers, own

    def chains(self) -> list[list[Any]]:
        return [self.layers, *(layers for layers, _ in self.replicas)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        chains = self.chains()  # replicas follow the net's flags (training, ...) through Net.set_flags
        self._parts = rows = chunks(len(x), len(chains))
        self.rows = len(x)

        def forward(layers: list[Any], part: slice) -> np.ndarray:
            h = x[part]
            for layer in layers:
                h = layer.forward(h)
            return h

        with blas_threads(1):
            outs = run([lambda c=c, r=r: forward(c, r) for c, r in zip(chains, rows, strict=True)])
        return np.concatenate(outs)

    def backward(self, grad: np.ndarray, input_grad: bool, first: int = 0) -> np.ndarray | None:
        """As ``Net.backward``: stop at layer ``first``; each replica copies the net's ``input_grad`` flags."""
        if len(grad) != self.rows:
            raise ValueError(f"backward got a gradient for {len(grad)} rows; the last forward had {self.rows}")

        def backward(layers: list[Any], part: slice) -> np.ndarray | None:
            for mine, theirs in zip(layers, self.layers, strict=True):
                mine.input_grad = theirs.input_grad
            g = grad[part]
            for layer in reversed(layers[first:]):
                g = layer.backward(g)
            return g

        with blas_threads(1):
            dxs = run([lambda c=c, r=r: backward(c, r) for c, r in zip(self.chains(), self._parts, strict=True)])
        for _, own in self.replicas:  # dL/dW is a sum over rows: add the chunks' sums
            self.grads += own
        return np.concatenate(dxs) if input_grad else None

    def free_scratch(self) -> None:
        for layers, _ in self.replicas:
            for layer in layers:
                layer.free_scratch()


# --- the sharded optimizer step --------------------------------------------------------------


def optimizer_step(optimizer: Any, params: np.ndarray, grads: np.ndarray, workers: int) -> None:
    """``optimizer.step(params, grads)``, with the vector cut into ``workers`` slices stepped in
    parallel if the optimizer declares itself elementwise (``optimizer.is_elementwise()``).

    The protocol (:class:`tinynn.optim.Optimizer` implements it): ``is_elementwise()``;
    ``shard(params, part)``, an optimizer stepping ``params[part]`` alone whose state arrays are
    views of that slice; ``join(shards)``, which takes back what the shards' steps moved outside
    the arrays (the step count, scalar state). Anything else is stepped whole.
    """
    claims = getattr(optimizer, "is_elementwise", None)
    if workers == 1 or claims is None or not claims():
        optimizer.step(params, grads)
        return
    shards = [(optimizer.shard(params, part), part) for part in chunks(len(params), workers, align=16)]
    run([lambda s=s, p=p: s.step(params[p], grads[p]) for s, p in shards])  # 16: 64-byte boundaries (float32)
    optimizer.join([s for s, _ in shards])
