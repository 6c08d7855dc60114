"""Layers: each maps ``x -> y`` in ``forward`` and ``dL/dy -> dL/dx`` in ``backward``.

A layer with trainable tensors keeps them in ``layer.params`` (name -> array) and writes
their gradients into ``layer.grads`` during ``backward``. Once the layer joins a
:class:`tinynn.Net`, both dicts hold views into the net's one flat parameter and gradient
vector, so an optimizer updates every layer at once. Arrays that are saved but not trained
(batch norm's running statistics) are its ``state``.

Speed notes that shape the code:

- ``backward`` *overwrites* ``layer.grads`` (no accumulation), so no zeroing pass is needed.
- Outputs and input gradients go into *scratch arrays* the layer owns and reuses while the batch
  shape repeats (``_scratch_array``). A layer's output is therefore only valid until its next
  ``forward``; :class:`tinynn.Net` copies the final output before handing it to the caller.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

Shape = tuple[int | None, ...]


class Layer:
    """Base class. Subclasses implement ``forward`` and ``backward``.

    ``cache`` names the attributes ``forward`` keeps for ``backward``; they are None until the
    first ``forward`` (and again after ``free_scratch``), and ``backward`` reads them with
    ``self._cached()``, which names the layer if ``forward`` has not run.

    ``min_train_batch``: the fewest samples a training batch may have (batch norm needs 2);
    ``Model.fit`` checks it before the first update.

    ``param_shapes(config)`` (a classmethod): the shape of every parameter a layer built from
    ``config`` would have, computed WITHOUT building it, so that loading a checkpoint can check
    the stored arrays before allocating anything. A layer whose parameter (or state) sizes come
    from its config (Dense, BatchNorm1d, convolutions, recurrent layers) MUST override it,
    validating the sizes with ``check_int`` as its constructor does; the default builds the layer,
    which is right only for layers whose constructor allocates nothing sized by the config
    (activations, dropout, reshapes).
    """

    cache: tuple[str, ...] = ()
    min_train_batch = 1

    # Rows of a batch never interact, so a Net may split the batch over threads (tinynn.parallel).
    batch_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}  # saved but not trained (batch norm's running statistics)
        self.training = True
        # Net switches this off for its first layer: nobody needs dL/d(input images).
        self.input_grad = True
        self._scratch: dict[str, np.ndarray] = {}
        for name in self.cache:
            setattr(self, name, None)

    def check_state(self, state: dict[str, np.ndarray]) -> None:
        """Raise ValueError if loaded ``state`` breaks this layer's rules (the net checks dtype, shape, finiteness)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def output_shape(self, input_shape: Shape) -> Shape:
        """Shape of the output for an input of ``input_shape`` (``None`` = any batch size)."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON-able data, enough to rebuild the layer."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """A new layer built from ``get_config()``'s output (parameters freshly initialised)."""
        return cls(**config)

    @classmethod
    def param_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        """``{name: shape}`` of the parameters of ``cls.from_config(config)``, in ``params`` order.

        Override it in any layer with parameters (see the class docstring); this default builds the layer.
        """
        return {name: p.shape for name, p in cls.from_config(config).params.items()}

    def _cached(self) -> tuple[Any, ...]:
        """The values ``forward`` kept for ``backward`` (in ``cache`` order); an error before any forward."""
        values = tuple(getattr(self, name) for name in self.cache)
        if any(v is None for v in values):
            raise RuntimeError(f"{self!r}: backward called before forward (nothing cached to differentiate)")
        return values

    def _scratch_array(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
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

    def _scratch_exact(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A reusable scratch array of exactly ``shape`` (re-made when the shape changes).

        For layouts whose batch axis is not first (conv's (C, H, W, N), recurrent (T, N, H)),
        where a leading slice of a bigger array would not be a smaller batch.
        """
        buf = self._scratch.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._scratch[name] = np.empty(shape, dtype=dtype)
        return buf

    def free_scratch(self) -> None:
        """Drop scratch arrays and the forward cache (both are re-created on the next forward)."""
        self._scratch.clear()
        for name in self.cache:
            setattr(self, name, None)

    def _expect_2d(self, x: np.ndarray, width: int | None = None) -> None:
        if x.ndim != 2 or (width is not None and x.shape[1] != width):
            want = f"(batch, {width})" if width is not None else "(batch, features)"
            raise ValueError(f"{self!r} got input of shape {x.shape}; expected {want}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


LAYERS: dict[str, type[Layer]] = {}
"""Every layer type a checkpoint may name: class name -> class. Fill it with ``register_layer``."""

L = TypeVar("L", bound=type[Layer])


def register_layer(cls: L) -> L:
    """Class decorator: make ``cls`` loadable by name from a saved net (``Net.from_config``).

    Built-in layers are registered where they are defined; register your own layer the same way
    before loading a checkpoint that uses it.
    """
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer expects a Layer subclass, got {cls!r}")
    known = LAYERS.get(cls.__name__)
    if known is not None and known is not cls:
        raise ValueError(f"a different layer named {cls.__name__!r} is already registered ({known!r})")
    LAYERS[cls.__name__] = cls
    return cls


def _layer_class(config: Any) -> tuple[type[Layer], dict[str, Any]]:
    """The registered class and the constructor config of ``{"type": name, "config": {...}}``."""
    if not isinstance(config, dict):
        raise ValueError(f"a layer config must be a dict {{'type': ..., 'config': ...}}, got {type(config).__name__}")
    name, args = config.get("type"), config.get("config", {})
    if not isinstance(name, str) or name not in LAYERS:
        raise ValueError(f"unknown layer type {name!r}; known: {', '.join(sorted(LAYERS))}")
    if not isinstance(args, dict):
        raise ValueError(f"bad config for layer {name}: expected a dict of arguments, got {type(args).__name__}")
    return LAYERS[name], args


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
