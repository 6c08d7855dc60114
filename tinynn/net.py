"""Net: a chain of layers sharing one flat parameter vector and one flat gradient vector."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from .checks import check_int
from .layers import Layer, bind_flat, from_config, has_params, layer_config, named_layers, param_shapes
from .parallel import AUTO_MIN_ROWS, BatchSplit, auto_workers

_owners: weakref.WeakKeyDictionary[Layer, weakref.ref] = weakref.WeakKeyDictionary()
"""The Net each layer's parameters live in: a layer belongs to one net (a second would silently share it)."""


class Net:
    """Layers applied in order: ``forward`` left to right, ``backward`` right to left.

    ``net.params`` is ONE contiguous 1-D array holding every trainable parameter, and
    ``net.grads`` one array of the same shape; each ``layer.params[name]`` and
    ``layer.grads[name]`` is a reshaped view into them. An optimizer therefore updates the
    whole network with a few vectorised in-place operations on two arrays.

    ``dtype`` (float32 by default) is the dtype of parameters, activations and gradients;
    inputs are cast to it, except for a first layer that takes integer indices
    (``layer.integer_input``, an ``Embedding``), which gets them as they are. Use ``np.float64``
    for gradient checking.

    Layers may be made of layers (``Sequential``, ``Residual``): every parameter at any depth is a
    view into the same two vectors, named by its path (``"2.Residual.0.Dense.w"``, see
    ``named_params``), and ``train``/``eval`` reach every layer through ``named_layers()``.

    ``workers`` > 1 splits every batch's rows over that many threads (BLAS on one thread each) and
    the optimizer step over as many slices of the vector: see :mod:`tinynn.parallel`. Results equal
    ``workers=1`` up to float rounding in the sum of the chunks' weight gradients. ``workers=1``
    never splits. ``workers=None`` (the default) lets the net decide once, after the forward of its
    first training batch of at least 32 rows, with :func:`tinynn.parallel.auto_workers`: convolutional and recurrent
    nets split over the cores BLAS may use, dense nets and nets with ``Dropout`` or ``BatchNorm1d``
    (which mix the rows of a batch) and ``fast=False`` nets do not. Until then, and if it decides 1,
    ``net.workers`` is 1; a choice above 1 is saved with the architecture (``get_config``).

    ``fast=False`` runs every layer on its textbook path (the plain functions of
    :mod:`tinynn.textbook` it is the optimised version of): slower, equal up to float rounding, and
    readable line by line in a debugger. It is saved with the architecture.
    """

    def __init__(
        self, layers: Sequence[Layer], dtype: Any = np.float32, workers: int | None = None, fast: bool = True
    ) -> None:
        layers = list(layers)
        if not layers:
            raise ValueError("Net needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Net: item {i} is {layer!r}, not a tinynn Layer")
            first = next(j for j, other in enumerate(layers) if other is layer)
            if first != i:
                raise ValueError(f"Net: items {first} and {i} are the same {type(layer).__name__} object; each "
                                 "position needs its own layer (weight sharing is not supported)")
            owner = _owners.get(layer)
            if owner is not None and owner() is not None:
                raise ValueError(f"Net: item {i} ({type(layer).__name__}) already belongs to another Net, whose "
                                 "parameters it holds; build a new layer (or copy the config: from_config)")
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"Net: dtype must be a floating-point type, got {self.dtype}")
        self.layers = layers
        if not isinstance(fast, (bool, np.bool_)):
            raise TypeError(f"Net: fast must be True or False, got {fast!r}")
        self.fast = bool(fast)
        for _, layer in named_layers(layers):  # at any depth, before the workers' replicas are made
            layer.fast = self.fast

        size = sum(p.size for _, layer in named_layers(layers) for p in layer.params.values())
        self.params = np.empty(size, dtype=self.dtype)
        self.grads = np.zeros(size, dtype=self.dtype)
        self._layout = bind_flat(layers, self.params, self.grads)
        for _, layer in self.named_layers():
            for name, value in layer.buffers.items():
                layer.buffers[name] = value.astype(self.dtype)
            layer.free_scratch()
        for layer in layers:
            _owners[layer] = weakref.ref(self)
        # None: decided by the first training batch (_decide); the textbook path stays on one thread.
        self._undecided = workers is None and self.fast
        self.workers = 1 if workers is None else check_int(workers, "workers", where="Net")
        self._split = BatchSplit(layers, self.grads, self.workers) if self.workers > 1 else None

    # --- running -------------------------------------------------------------------------

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Output of the last layer for a batch ``x`` (a fresh array, safe to keep)."""
        x = self._check_input(x)
        if self._split is not None and len(x) >= 2 * self.workers:
            return self._split.forward(x)  # a new array already
        if self._split is not None:
            self._split.rows = 0  # this batch was not split: neither is its backward
        for layer in self.layers:
            x = layer.forward(x)
        if self._undecided and self.training and len(x) >= 2 * AUTO_MIN_ROWS:
            self._decide(len(x))
        return x.copy()  # layers reuse their output arrays; the caller gets its own

    def _decide(self, rows: int) -> None:
        """The automatic split (``workers=None``): choose once, from this training batch's forward."""
        self._undecided = False
        workers = auto_workers(self.layers, self.num_params, rows)
        if workers > 1:  # this batch's backward stays whole (rows == 0); the next batch is split
            self.workers, self._split = workers, BatchSplit(self.layers, self.grads, workers)

    def backward(self, grad: np.ndarray, input_grad: bool = False) -> np.ndarray | None:
        """Backpropagate ``dL/d(output)``; fills ``self.grads``. Returns ``dL/d(input)`` if asked.

        Without ``input_grad``, the backward pass stops at the first layer with parameters: the
        input gradient of that layer, and of any parameter-free layers in front of it (a
        ``Reshape`` feeding an LSTM), would be thrown away.
        """
        first = 0 if input_grad else next((i for i, layer in enumerate(self.layers) if has_params(layer)), 0)
        for i, layer in enumerate(self.layers):
            layer.input_grad = input_grad or i > first
        if self._split is not None and self._split.rows == len(grad):
            return self._split.backward(grad, input_grad, first)
        for layer in reversed(self.layers[first:]):
            grad = layer.backward(grad)
        return grad if input_grad else None

    __call__ = forward

    def train(self) -> Net:
        """Training mode: dropout drops, batch norm uses batch statistics (every layer, at any depth)."""
        return self.set_flags(training=True)

    def eval(self) -> Net:
        """Evaluation mode: dropout is the identity, batch norm uses running statistics."""
        return self.set_flags(training=False)

    def set_flags(self, **flags: Any) -> Net:
        """Set each ``flag=value`` as an attribute of every layer at any depth, and of the workers' replicas.

        The one way a per-layer switch reaches all layers (``train``/``eval`` set ``training``).
        """
        chains = [self.layers, *(self._split.chains()[1:] if self._split is not None else [])]
        for chain in chains:
            for _, layer in named_layers(chain):
                for name, value in flags.items():
                    setattr(layer, name, value)
        return self

    @property
    def training(self) -> bool:
        return self.layers[0].training

    def free_scratch(self) -> None:
        """Release every layer's scratch arrays and forward cache (e.g. after a large inference batch)."""
        for layer in self.layers:  # a block frees its layers'
            layer.free_scratch()
        if self._split is not None:
            self._split.free_scratch()

    def _check_input(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"Net got input of dtype {x.dtype}; expected numbers")
        if x.ndim < 2:
            raise ValueError(f"Net got input of shape {x.shape}; expected a batch (batch, features...)")
        if x.shape[0] == 0:
            raise ValueError(f"Net got an empty batch (input of shape {x.shape})")
        if self.layers[0].integer_input:  # indices (an Embedding first): handed over uncast, it checks them
            return x
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        # Exact, and about twice as fast as testing np.isfinite(x.sum()) (measured, float32).
        if not np.isfinite(x).all():
            raise ValueError(f"Net got input containing NaN or Inf (shape {x.shape})")
        return x

    # --- inspection ----------------------------------------------------------------------

    def named_layers(self) -> list[tuple[str, Layer]]:
        """``(path, layer)`` of every layer, sub-layers after their parent: ``("2.Residual.0.Dense", ...)``."""
        return list(named_layers(self.layers))

    def named_params(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of every parameter tensor, in the order they sit in ``params``.

        A name is the layer's path and the parameter's name: ``"0.Dense.w"``, ``"2.Residual.1.Dense.b"``.
        """
        return [(name, shape) for name, _, shape in self._layout]

    def param_slices(self) -> list[tuple[str, slice]]:
        """(name, slice of ``params``) of every parameter tensor, in ``named_params`` order."""
        return [(name, where) for name, where, _ in self._layout]

    @property
    def num_params(self) -> int:
        return self.params.size

    def summary(self, input_shape: tuple[int, ...] | None = None) -> str:
        """A table of layers, output shapes and parameter counts; a block's layers indented below it.

        ``input_shape`` excludes the batch axis; by default it is the first layer's
        ``Layer.input_shape()`` (``(features,)`` for a ``Dense``, ``(time, features)`` for a
        recurrent layer, any number of steps). A block's row counts all its parameters.
        """
        shape = self.layers[0].input_shape() if input_shape is None else (None, *input_shape)
        rows = [("Layer", "Output shape", "Params")]
        _summary_rows(self.layers, shape, "", rows)
        widths = [max(len(r[k]) for r in rows) for k in range(3)]
        line = "-" * (sum(widths) + 4)
        fmt = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}"  # noqa: E731
        out = [fmt(rows[0]), line, *(fmt(r) for r in rows[1:]), line]
        out.append(f"Total params: {self.num_params:,} ({self.dtype}, {self.params.nbytes / 2**20:.2f} MiB)")
        return "\n".join(out)

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Net([{inner}], dtype={self.dtype}{'' if self.fast else ', fast=False'})"

    # --- saving --------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The architecture as JSON-able data (see ``Net.from_config``); ``workers`` only when > 1 (chosen
        or decided), ``fast`` only when False."""
        config = {
            "dtype": str(self.dtype),
            "layers": [layer_config(layer) for layer in self.layers],
        }
        if self.workers > 1:  # a resumed run must split its batches the same way to stay bit-identical
            config["workers"] = self.workers
        if not self.fast:  # only when off, so configs of fast nets stay as they were
            config["fast"] = False
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Net:
        """A new net with the architecture of ``config`` (parameters freshly initialised)."""
        layers, dtype = _parse_config(config)
        workers = config.get("workers")  # absent: the automatic choice, made again
        # a thread per worker: a crafted file must not start thousands
        if workers is not None and check_int(workers, "workers", where="Net config") > 8:
            raise ValueError(f"Net config: workers must be at most 8, got {workers}")
        fast = config.get("fast", True)
        if not isinstance(fast, bool):
            raise ValueError(f"Net config: fast must be true or false, got {fast!r}")
        return cls([from_config(c) for c in layers], dtype=dtype, workers=workers, fast=fast)

    @staticmethod
    def config_params(config: dict[str, Any]) -> tuple[list[tuple[str, tuple[int, ...]]], np.dtype]:
        """``named_params()`` and ``dtype`` of ``Net.from_config(config)``, computed without building it.

        Each layer answers with ``Layer.param_shapes``, so a checkpoint's stored arrays can be
        checked against its architecture before anything is allocated.
        """
        layers, dtype = _parse_config(config)
        named = []
        for i, c in enumerate(layers):
            named += [(f"{i}.{c['type']}.{name}", shape) for name, shape in param_shapes(c).items()]
        return named, dtype

    def buffers(self) -> dict[str, np.ndarray]:
        """Every layer's ``buffers`` (saved, not trained: batch-norm running statistics), named as parameters
        are (``"1.BatchNorm1d.running_var"``)."""
        return {f"{path}.{name}": arr for path, layer in self.named_layers() for name, arr in layer.buffers.items()}

    def load_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        """Copy saved ``buffers()`` arrays in place, checked as parameters are: every name, shape and dtype
        (the net's, no cast), finite values, and each layer's own rules (``Layer.check_buffers``)."""
        own = self.buffers()
        if set(own) != set(buffers):
            raise ValueError(f"layer buffers do not match the net: expected {sorted(own)}, got {sorted(buffers)}")
        for name, value in buffers.items():
            if not isinstance(value, np.ndarray) or value.shape != own[name].shape or value.dtype != own[name].dtype:
                got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
                raise ValueError(f"layer buffer {name}: expected a {own[name].dtype} array of shape "
                                 f"{own[name].shape}, got {got}")  # fmt: skip
            if not np.isfinite(value).all():
                raise ValueError(f"layer buffer {name} holds NaN or Inf")
        for path, layer in self.named_layers():  # names as buffers() gives them ("1.BatchNorm1d.running_var")
            if layer.buffers:
                layer.check_buffers({k: buffers[f"{path}.{k}"] for k in layer.buffers})
        for name, value in buffers.items():
            own[name][...] = value



def _summary_rows(layers: Sequence[Layer], shape: Any, indent: str, rows: list[tuple[str, str, str]]) -> None:
    """Append a row per layer (a block's layers below it, indented)."""
    for i, layer in enumerate(layers):
        out = layer.output_shape(shape) if shape is not None else None
        count = sum(p.size for _, sub in named_layers([layer]) for p in sub.params.values())
        # N: the batch; ?: a size known only at run time (a recurrent layer's number of steps)
        dims = ("N" if k == 0 else "?" if d is None else str(d) for k, d in enumerate(out or ()))
        shown = "?" if out is None else "(" + ", ".join(dims) + ")"
        children = layer.sublayers()
        rows.append((f"{indent}{i}: {type(layer).__name__ if children else repr(layer)}", shown, f"{count:,}"))
        if children:  # a block's layers run in order on its input (true of Sequential and Residual)
            _summary_rows(children, shape, indent + "  ", rows)
        shape = out


def _parse_config(config: Any) -> tuple[list[Any], np.dtype]:
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list) or not config["layers"]:
        raise ValueError("Net config must be a dict with a non-empty 'layers' list")
    dtype = config.get("dtype", "float32")
    try:
        ok = isinstance(dtype, str) and np.dtype(dtype).kind == "f"
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"Net config: dtype must name a floating-point type such as 'float32', got {dtype!r}")
    return config["layers"], np.dtype(dtype)
