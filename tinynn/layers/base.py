"""Layers: each maps ``x -> y`` in ``forward`` and ``dL/dy -> dL/dx`` in ``backward``.

A layer with trainable tensors keeps them in ``layer.params`` (name -> array) and writes
their gradients into ``layer.grads`` during ``backward``. Once the layer joins a
:class:`tinynn.Net`, both dicts hold views into the net's one flat parameter and gradient
vector, so an optimizer updates every layer at once. Arrays that are saved but not trained
(batch norm's running statistics) are its ``buffers``.

Speed notes that shape the code:

- ``backward`` *overwrites* ``layer.grads`` (no accumulation), so no zeroing pass is needed.
- Outputs and input gradients go into *scratch arrays* the layer owns and reuses while the batch
  shape repeats (``scratch_array``). A layer's output is therefore only valid until its next
  ``forward``; :class:`tinynn.Net` copies the final output before handing it to the caller.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from ..registry import Configurable, Registry

Shape = tuple[int | None, ...]


class Layer(Configurable):
    """Base class. Subclasses implement ``forward`` and ``backward``.

    ``cache`` names the attributes ``forward`` keeps for ``backward``; they are None until the
    first ``forward`` (and again after ``free_scratch``), and ``backward`` reads them with
    ``self.cached()``, which names the layer if ``forward`` has not run.

    ``integer_input``: the layer takes integer indices (an ``Embedding``); a :class:`tinynn.Net`
    whose first layer says so passes integer input to it as it is, instead of casting it to floats.

    ``min_train_batch``: the fewest samples a training batch may have (batch norm needs 2);
    ``Model.fit`` checks it before the first update.

    ``param_shapes(config)`` (a classmethod): the shape of every parameter a layer built from
    ``config`` would have, computed WITHOUT building it, so that loading a checkpoint can check
    the stored arrays before allocating anything. A layer whose parameter (or buffer) sizes come
    from its config (Dense, BatchNorm1d, convolutions, recurrent layers) MUST override it,
    validating the sizes with ``check_int`` as its constructor does; the default builds the layer,
    which is right only for layers whose constructor allocates nothing sized by the config
    (activations, dropout, reshapes).

    **Layers made of layers** (``Sequential``, ``Residual``, a transformer block): a composite
    layer keeps its children in a list and returns it from ``sublayers()``; that is the whole
    protocol. Everything that visits layers goes through it (:func:`named_layers`): ``Net``
    binds every parameter of every layer at any depth into its flat vectors, sets the
    ``training`` flag (and any other per-layer flag) on each, names parameters and buffers by
    their path, and makes ``workers`` replicas (``replica``). A composite's own ``forward`` and
    ``backward`` call its children's; it sets each child's ``input_grad`` before calling its
    ``backward`` (see :class:`tinynn.layers.Sequential`). Its ``get_config`` nests its children's
    ``{"type", "config"}`` and its ``param_shapes`` returns their shapes under the same path names
    (``"0.Dense.w"``), so nested nets save, load and load strictly like flat ones.
    """

    cache: tuple[str, ...] = ()
    min_train_batch = 1

    # Takes integer indices (Embedding): a Net hands such a first layer its input uncast.
    integer_input = False

    # Rows of a batch never interact, so a Net may split the batch over threads (tinynn.parallel).
    batch_independent = True

    # Net sets it (``Net(..., fast=False)``). False: forward and backward run the textbook functions
    # (tinynn.textbook) that the layer is the optimised version of; a layer with one path ignores it.
    fast = True
    _textbook: tuple[Any, tuple[int, ...]] | None = None  # the textbook forward's cache and output shape

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}  # saved but not trained (batch norm's running statistics)
        self.training = True
        # Net switches this off for its first layer: nobody needs dL/d(input images).
        self.input_grad = True
        self._scratch: dict[str, np.ndarray] = {}
        for name in self.cache:
            setattr(self, name, None)

    def check_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        """Raise ValueError if loaded ``buffers`` break this layer's rules (the net checks dtype, shape, finiteness)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def output_shape(self, input_shape: Shape) -> Shape:
        """Shape of the output for an input of ``input_shape`` (``None`` = any batch size)."""
        return input_shape

    def input_shape(self) -> Shape | None:
        """The input shape this layer's sizes imply (``(None, in_features)`` for Dense), or None if any.

        ``Net.summary`` starts from the first layer's answer when no input shape is given.
        """
        return None

    def sublayers(self) -> list[Layer]:
        """The layers this layer is made of, in order (none for an ordinary layer): see the class docstring."""
        return []

    def replica(self) -> Layer:
        """A copy for another thread of ``Net(workers=...)``: it shares this layer's ``params`` dict (the
        same arrays) but owns its ``grads`` arrays (Net rebinds them into the replica's gradient
        vector), its scratch arrays and its forward cache.

        The default deep-copies everything else (children through their own ``replica``); override
        it if a layer holds something that must be shared or must not be copied.
        """
        memo: dict[int, Any] = {id(self.params): self.params, id(self._scratch): {}}
        for name in self.cache:  # the arrays the last forward cached stay behind
            if isinstance(value := getattr(self, name), np.ndarray):
                memo[id(value)] = None
        for child in self.sublayers():
            memo[id(child)] = child.replica()
        return copy.deepcopy(self, memo)

    @classmethod
    def param_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        """``{name: shape}`` of the parameters of ``cls.from_config(config)``, in ``params`` order.

        Override it in any layer with parameters (see the class docstring); this default builds the layer.
        """
        return {name: p.shape for name, p in cls.from_config(config).params.items()}

    def cached(self) -> tuple[Any, ...]:
        """The values ``forward`` kept for ``backward`` (in ``cache`` order); an error before any forward."""
        values = tuple(getattr(self, name) for name in self.cache)
        if any(v is None for v in values):
            raise RuntimeError(f"{self!r}: backward called before forward (nothing cached to differentiate)")
        return values

    def scratch_array(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A reusable scratch array. A smaller batch gets a leading slice of the big one."""
        buf = self._scratch.get(name)
        if (
            buf is None
            or buf.dtype != dtype
            or buf.shape[1:] != shape[1:]
            or buf.shape[0] < shape[0]
        ):
            buf = np.empty(shape, dtype=dtype)
            self._scratch[name] = buf
        return buf[: shape[0]]

    def scratch_exact(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A reusable scratch array of exactly ``shape`` (re-made when the shape changes).

        For layouts whose batch axis is not first (conv's (C, H, W, N), recurrent (T, N, H)),
        where a leading slice of a bigger array would not be a smaller batch.
        """
        buf = self._scratch.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._scratch[name] = np.empty(shape, dtype=dtype)
        return buf

    def scratch_size(self) -> int:
        """How many numbers this layer's scratch arrays hold (not its sub-layers'): after a forward, the
        activations it keeps. ``Net``'s automatic batch split weighs it against the parameter count."""
        return sum(a.size for a in self._scratch.values())

    def free_scratch(self) -> None:
        """Drop scratch arrays and the forward cache (both are re-created on the next forward)."""
        self._scratch.clear()
        self._textbook = None
        for name in self.cache:
            setattr(self, name, None)

    def _textbook_keep(self, y: np.ndarray, cache: Any) -> np.ndarray:
        """Keep a textbook forward's ``cache`` for backward; returns its output ``y``."""
        self._textbook = (cache, y.shape)
        return y

    def _textbook_cache(self, grad: np.ndarray) -> Any:
        """The kept textbook cache; an error naming the layer before any forward or for a wrongly shaped ``grad``."""
        if self._textbook is None:
            raise RuntimeError(f"{self!r}: backward called before forward (nothing cached to differentiate)")
        cache, shape = self._textbook
        if grad.shape != shape:
            raise ValueError(f"{self!r}: backward got gradient of shape {grad.shape}; expected {shape}")
        return cache

    def _set_grads(self, *grads: np.ndarray | None) -> None:
        """Write gradients into ``self.grads``, in ``params`` order (a missing bias's None is skipped)."""
        for name, g in zip(self.params, (g for g in grads if g is not None), strict=True):
            self.grads[name][...] = g

    def expect_2d(self, x: np.ndarray, width: int | None = None) -> None:
        if x.ndim != 2 or (width is not None and x.shape[1] != width):
            want = f"(batch, {width})" if width is not None else "(batch, features)"
            raise ValueError(f"{self!r} got input of shape {x.shape}; expected {want}")


LAYERS: Registry = Registry("layer", Layer, "tn.layers.register_layer")
"""Every layer type a checkpoint may name: class name -> class. Fill it with ``register_layer``."""

L = TypeVar("L", bound=type[Layer])


def register_layer(cls: L) -> L:
    """Class decorator: make ``cls`` loadable by name from a saved net (``Net.from_config``).

    Built-in layers are registered where they are defined; register your own layer the same way
    before loading a checkpoint that uses it.
    """
    return LAYERS.register(cls)


def named_layers(layers: Sequence[Layer], prefix: str = "") -> Iterator[tuple[str, Layer]]:
    """Every layer of a layer list and, depth first, of their ``sublayers()``, with its path.

    The path of item ``i`` is ``"<prefix><i>.<Type>"``; a sub-layer's path continues its parent's:
    ``"2.Residual.0.Dense"``. Parameters and buffers are named ``"<path>.<name>"``.
    """
    for i, layer in enumerate(layers):
        path = f"{prefix}{i}.{type(layer).__name__}"
        yield path, layer
        yield from named_layers(layer.sublayers(), path + ".")


def has_params(layer: Layer) -> bool:
    """True if ``layer`` or any of its sub-layers has trainable parameters."""
    return any(sub.params for _, sub in named_layers([layer]))


def bind_flat(
    layers: Sequence[Layer], params: np.ndarray | None, grads: np.ndarray
) -> list[tuple[str, slice, tuple[int, ...]]]:
    """Make every parameter and gradient of ``layers`` (at any depth) a view into flat vectors.

    Tensors are laid out in :func:`named_layers` order, each layer's in ``params`` order. With
    ``params`` given, each tensor's current values are copied in and ``layer.params[name]``
    becomes a view; with ``params=None`` only the gradients are rebound (a replica sharing the
    parameters). Returns ``(name, slice, shape)`` of every tensor.
    """
    layout, offset = [], 0
    for path, layer in named_layers(layers):
        for name, value in layer.params.items():
            where = slice(offset, offset + value.size)
            if params is not None:
                params[where] = value.reshape(-1)
                layer.params[name] = params[where].reshape(value.shape)
            layer.grads[name] = grads[where].reshape(value.shape)
            layout.append((f"{path}.{name}", where, value.shape))
            offset += value.size
    return layout


def layer_config(layer: Layer) -> dict[str, Any]:
    """``{"type": class name, "config": layer.get_config()}``: what ``from_config`` rebuilds."""
    return {"type": type(layer).__name__, "config": layer.get_config()}


def _layer_class(config: Any) -> tuple[type[Layer], dict[str, Any]]:
    """The registered class and the constructor config of ``{"type": name, "config": {...}}``."""
    if not isinstance(config, dict):
        raise ValueError(f"a layer config must be a dict {{'type': ..., 'config': ...}}, got {type(config).__name__}")
    name, args = config.get("type"), config.get("config", {})
    cls = LAYERS.lookup(name)
    if not isinstance(args, dict):
        raise ValueError(f"bad config for layer {name}: expected a dict of arguments, got {type(args).__name__}")
    return cls, args


def from_config(config: dict[str, Any]) -> Layer:
    """Rebuild a layer from ``{"type": name, "config": {...}}`` (as written by ``Net.get_config``)."""
    cls, args = _layer_class(config)
    try:
        return cls.from_config(args)
    except TypeError as e:
        raise ValueError(f"bad config for layer {cls.__name__}: {args!r} ({e})") from None


def param_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """``Layer.param_shapes`` of the layer ``{"type": name, "config": {...}}`` describes, nothing built."""
    cls, args = _layer_class(config)
    try:
        shapes = cls.param_shapes(args)
    except TypeError as e:
        raise ValueError(f"bad config for layer {cls.__name__}: {args!r} ({e})") from None
    return {name: tuple(int(d) for d in shape) for name, shape in shapes.items()}
