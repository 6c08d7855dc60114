"""Weight initializers.

Each initializer is a function ``init(shape, dtype, fans) -> array`` drawing from tinynn's shared
generator (see :func:`tinynn.seed`). ``fans = (fan_in, fan_out)`` is given by the layer, which knows
its weight's layout: how many inputs feed one output unit, and how many outputs one input feeds.

- ``Dense``, ``w`` (in, out), used as ``x @ w``: fans ``(in, out)``.
- ``Conv2D``, ``w`` (out, in, kh, kw), torch's layout: fans ``(in*kh*kw, out*kh*kw)``, torch's rule
  (size(1) and size(0) times the receptive field).
- ``RNN``/``LSTM``/``GRU`` take no initializer: every weight and bias is drawn as torch draws
  them, from U(-1/sqrt(hidden), 1/sqrt(hidden)) (see :mod:`tinynn.layers.recurrent`).

A layer hands its biases the same fans as its weight. Called without ``fans``, a 2-D shape is read in
the ``x @ w`` layout, ``(fan_in, fan_out)``, and a 1-D shape ``(n,)`` as fans ``(n, n)``; other shapes
need ``fans``, since their layout cannot be read from the shape alone. With these fans:

- Xavier/Glorot (Glorot & Bengio, 2010): ``std = gain * sqrt(2 / (fan_in + fan_out))``. For units
  linear near 0 (tanh, identity), variance 1/fan_in would preserve the forward signal and
  1/fan_out the backward gradient; Xavier takes their harmonic mean, a compromise exact for
  neither unless fan_in == fan_out.
- He/Kaiming (He et al., 2015): ``std = gain / sqrt(fan_in)`` with ``gain = sqrt(2)`` for ReLU,
  which halves the second moment E[x^2] the next layer sees; forward condition only.

A uniform distribution on ``[-a, a]`` has std ``a / sqrt(3)``, which gives the uniform variants.
``Dense`` defaults to ``he_uniform`` for weights and ``zeros`` for biases (see ``Dense``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .rng import get_rng

Shape = tuple[int, ...]
Fans = tuple[int, int]
Initializer = Callable[[Shape, np.dtype, Fans | None], np.ndarray]
"""``init(shape, dtype, fans) -> array``; see the module docstring for ``fans``."""


def _fans(shape: Shape, fans: Fans | None) -> Fans:
    """``fans`` if the layer gave them, else those of a vector ``(n,)`` or an ``x @ w`` weight (in, out)."""
    if fans is not None:
        fan_in, fan_out = fans
        if not (fan_in > 0 and fan_out > 0):
            raise ValueError(f"initializers need positive fans, got {fans}")
        return int(fan_in), int(fan_out)
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    raise ValueError(
        f"initializer: pass fans=(fan_in, fan_out) for a weight of shape {shape}; only a 1-D or 2-D "
        "(in, out) shape says its fans"
    )


def zeros(shape: Shape, dtype=np.float32, fans: Fans | None = None) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def ones(shape: Shape, dtype=np.float32, fans: Fans | None = None) -> np.ndarray:
    return np.ones(shape, dtype=dtype)


def constant(value: float) -> Initializer:
    """Every entry equal to ``value``."""

    def init(shape: Shape, dtype=np.float32, fans: Fans | None = None) -> np.ndarray:
        return np.full(shape, value, dtype=dtype)

    return init


def normal(mean: float = 0.0, std: float = 0.01) -> Initializer:
    """Entries drawn from N(mean, std^2)."""
    if std < 0:
        raise ValueError(f"normal initializer: std must be >= 0, got {std}")

    def init(shape: Shape, dtype=np.float32, fans: Fans | None = None) -> np.ndarray:
        return get_rng().normal(mean, std, size=shape).astype(dtype)

    return init


def uniform(low: float = -0.05, high: float = 0.05) -> Initializer:
    """Entries drawn from U(low, high)."""
    if high < low:
        raise ValueError(f"uniform initializer: need low <= high, got low={low}, high={high}")

    def init(shape: Shape, dtype=np.float32, fans: Fans | None = None) -> np.ndarray:
        return get_rng().uniform(low, high, size=shape).astype(dtype)

    return init


def xavier_uniform(gain: float = 1.0) -> Initializer:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""

    def init(shape: Shape, dtype=np.float32, fans: Fans | None = None) -> np.ndarray:
        fan_in, fan_out = _fans(shape, fans)
        a = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return get_rng().uniform(-a, a, size=shape).astype(dtype)

    return init


def xavier_normal(gain: float = 1.0) -> Initializer:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""

    def init(shape: Shape, dtype=np.float32, fans: Fans | None = None) -> np.ndarray:
        fan_in, fan_out = _fans(shape, fans)
        std = gain * math.sqrt(2.0 / (fan_in + fan_out))
        return get_rng().normal(0.0, std, size=shape).astype(dtype)

    return init


def he_uniform(gain: float = math.sqrt(2.0)) -> Initializer:
    """U(-a, a) with a = gain * sqrt(3 / fan_in); the default gain sqrt(2) suits ReLU."""

    def init(shape: Shape, dtype=np.float32, fans: Fans | None = None) -> np.ndarray:
        fan_in, _ = _fans(shape, fans)
        a = gain * math.sqrt(3.0 / fan_in)
        return get_rng().uniform(-a, a, size=shape).astype(dtype)

    return init


def he_normal(gain: float = math.sqrt(2.0)) -> Initializer:
    """N(0, std^2) with std = gain / sqrt(fan_in); the default gain sqrt(2) suits ReLU."""

    def init(shape: Shape, dtype=np.float32, fans: Fans | None = None) -> np.ndarray:
        fan_in, _ = _fans(shape, fans)
        return get_rng().normal(0.0, gain / math.sqrt(fan_in), size=shape).astype(dtype)

    return init


# Names accepted wherever an initializer is expected; factories are called with their defaults.
_BY_NAME: dict[str, Callable[[], Initializer]] = {
    "zeros": lambda: zeros,
    "ones": lambda: ones,
    "normal": normal,
    "uniform": uniform,
    "xavier_uniform": xavier_uniform,
    "glorot_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "glorot_normal": xavier_normal,
    "he_uniform": he_uniform,
    "kaiming_uniform": he_uniform,
    "he_normal": he_normal,
    "kaiming_normal": he_normal,
}


def get(init: str | Initializer) -> Initializer:
    """An initializer from its name (``"he_uniform"``, ``"zeros"``, ...) or the callable itself."""
    if callable(init):
        return init
    if isinstance(init, str) and init.lower() in _BY_NAME:
        return _BY_NAME[init.lower()]()
    raise ValueError(f"unknown initializer {init!r}; known: {', '.join(sorted(_BY_NAME))}")
