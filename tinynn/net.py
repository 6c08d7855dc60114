"""Net: a chain of layers sharing one flat parameter vector and one flat gradient vector."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from .checks import check_int
from .layers import Layer, from_config, param_shapes
from .parallel import BatchSplit

_owners: weakref.WeakKeyDictionary[Layer, weakref.ref] = weakref.WeakKeyDictionary()
"""The Net each layer's parameters live in: a layer belongs to one net (a second would silently share it)."""


class Net:
    """Layers applied in order: ``forward`` left to right, ``backward`` right to left.

    ``net.params`` is ONE contiguous 1-D array holding every trainable parameter, and
    ``net.grads`` one array of the same shape; each ``layer.params[name]`` and
    ``layer.grads[name]`` is a reshaped view into them. An optimizer therefore updates the
    whole network with a few vectorised in-place operations on two arrays.

    ``dtype`` (float32 by default) is the dtype of parameters, activations and gradients;
    inputs are cast to it. Use ``np.float64`` for gradient checking.

    ``workers`` > 1 splits every batch's rows over that many threads (BLAS on one thread each) and
    the optimizer step over as many slices of the vector: see :mod:`tinynn.parallel`. Results equal
    ``workers=1`` up to float rounding in the sum of the chunks' weight gradients.
    """

    def __init__(self, layers: Sequence[Layer], dtype: Any = np.float32, workers: int = 1) -> None:
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

        size = sum(p.size for layer in layers for p in layer.params.values())
        self.params = np.empty(size, dtype=self.dtype)
        self.grads = np.zeros(size, dtype=self.dtype)
        self._slices: list[tuple[str, slice, tuple[int, ...]]] = []
        offset = 0
        for i, layer in enumerate(layers):
            for name, value in layer.params.items():
                where = slice(offset, offset + value.size)
                layer.params[name] = self.params[where].reshape(value.shape)
                layer.params[name][...] = value
                layer.grads[name] = self.grads[where].reshape(value.shape)
                self._slices.append((f"{i}.{type(layer).__name__}.{name}", where, value.shape))
                offset += value.size
            for name, value in layer.state.items():
                layer.state[name] = value.astype(self.dtype)
            layer.free_scratch()
        for layer in layers:
            _owners[layer] = weakref.ref(self)
        self.workers = check_int(workers, "workers", where="Net")
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
        return x.copy()  # layers reuse their output arrays; the caller gets its own

    def backward(self, grad: np.ndarray, input_grad: bool = False) -> np.ndarray | None:
        """Backpropagate ``dL/d(output)``; fills ``self.grads``. Returns ``dL/d(input)`` if asked.

        Without ``input_grad``, the backward pass stops at the first layer with parameters: the
        input gradient of that layer, and of any parameter-free layers in front of it (a
        ``Reshape`` feeding an LSTM), would be thrown away.
        """
        first = 0 if input_grad else next((i for i, layer in enumerate(self.layers) if layer.params), 0)
        for i, layer in enumerate(self.layers):
            layer.input_grad = input_grad or i > first
        if self._split is not None and self._split.rows == len(grad):
            return self._split.backward(grad, input_grad, first)
        for layer in reversed(self.layers[first:]):
            grad = layer.backward(grad)
        return grad if input_grad else None

    __call__ = forward

    def train(self) -> Net:
        """Training mode: dropout drops, batch norm uses batch statistics."""
        for layer in self.layers:
            layer.training = True
        return self

    def eval(self) -> Net:
        """Evaluation mode: dropout is the identity, batch norm uses running statistics."""
        for layer in self.layers:
            layer.training = False
        return self

    @property
    def training(self) -> bool:
        return self.layers[0].training

    def free_scratch(self) -> None:
        """Release every layer's scratch arrays and forward cache (e.g. after a large inference batch)."""
        for layer in self.layers:
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
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        # Exact, and about twice as fast as testing np.isfinite(x.sum()) (measured, float32).
        if not np.isfinite(x).all():
            raise ValueError(f"Net got input containing NaN or Inf (shape {x.shape})")
        return x

    # --- inspection ----------------------------------------------------------------------

    def named_params(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of every parameter tensor, in the order they sit in ``params``."""
        return [(name, shape) for name, _, shape in self._slices]

    @property
    def num_params(self) -> int:
        return self.params.size

    def summary(self, input_shape: tuple[int, ...] | None = None) -> str:
        """A table of layers, output shapes and parameter counts.

        ``input_shape`` excludes the batch axis; by default it is taken from a first ``Dense``
        (``(features,)``) or recurrent layer (``(time, features)``, any number of steps).
        """
        if input_shape is None:
            first = self.layers[0]
            shape: tuple = (None, first.in_features) if hasattr(first, "in_features") else None
            if hasattr(first, "input_size"):
                shape = (None, None, first.input_size)
        else:
            shape = (None, *input_shape)
        rows = [("Layer", "Output shape", "Params")]
        for i, layer in enumerate(self.layers):
            shape = layer.output_shape(shape) if shape is not None else None
            count = sum(p.size for p in layer.params.values())
            # N: the batch; ?: a size known only at run time (a recurrent layer's number of steps)
            dims = ("N" if k == 0 else "?" if d is None else str(d) for k, d in enumerate(shape or ()))
            shown = "?" if shape is None else "(" + ", ".join(dims) + ")"
            rows.append((f"{i}: {layer!r}", shown, f"{count:,}"))
        widths = [max(len(r[k]) for r in rows) for k in range(3)]
        line = "-" * (sum(widths) + 4)
        fmt = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}"  # noqa: E731
        out = [fmt(rows[0]), line, *(fmt(r) for r in rows[1:]), line]
        out.append(f"Total params: {self.num_params:,} ({self.dtype}, {self.params.nbytes / 2**20:.2f} MiB)")
        return "\n".join(out)

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Net([{inner}], dtype={self.dtype})"

    # --- saving --------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The architecture as JSON-able data (see ``Net.from_config``); ``workers`` only when > 1."""
        config = {
            "dtype": str(self.dtype),
            "layers": [{"type": type(layer).__name__, "config": layer.get_config()} for layer in self.layers],
        }
        if self.workers > 1:  # a resumed run must split its batches the same way to stay bit-identical
            config["workers"] = self.workers
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Net:
        """A new net with the architecture of ``config`` (parameters freshly initialised)."""
        layers, dtype = _parse_config(config)
        workers = check_int(config.get("workers", 1), "workers", where="Net config")
        if workers > 8:  # a thread per worker: a crafted file must not start thousands
            raise ValueError(f"Net config: workers must be at most 8, got {workers}")
        return cls([from_config(c) for c in layers], dtype=dtype, workers=workers)

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

    def state(self) -> dict[str, np.ndarray]:
        """Every layer's ``state`` (saved, not trained: batch-norm running statistics), by ``"<layer>.<name>"``."""
        return {f"{i}.{name}": arr for i, layer in enumerate(self.layers) for name, arr in layer.state.items()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Copy saved ``state()`` arrays in place, checked as parameters are: every name, shape and dtype
        (the net's, no cast), finite values, and each layer's own rules (``Layer.check_state``)."""
        own = self.state()
        if set(own) != set(state):
            raise ValueError(f"layer state does not match the net: expected {sorted(own)}, got {sorted(state)}")
        for name, value in state.items():
            if not isinstance(value, np.ndarray) or value.shape != own[name].shape or value.dtype != own[name].dtype:
                got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
                raise ValueError(f"layer state {name}: expected a {own[name].dtype} array of shape "
                                 f"{own[name].shape}, got {got}")  # fmt: skip
            if not np.isfinite(value).all():
                raise ValueError(f"layer state {name} holds NaN or Inf")
        for i, layer in enumerate(self.layers):
            if layer.state:
                layer.check_state({k: state[f"{i}.{k}"] for k in layer.state})
        for name, value in state.items():
            own[name][...] = value



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
