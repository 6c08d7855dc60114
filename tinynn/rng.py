"""One seed for everything random in tinynn: initializers, dropout masks, shuffling, data augmentation.

``tn.seed(0)`` replaces the shared generator; code that needs randomness calls
``get_rng()`` at the moment it draws, so a later ``seed`` call takes effect everywhere.
"""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng()


def seed(value: int) -> None:
    """Reset tinynn's random generator: same seed, bit-identical runs."""
    global _rng
    _rng = np.random.default_rng(value)


def get_rng() -> np.random.Generator:
    """The shared generator (a numpy ``Generator``, PCG64)."""
    return _rng


def get_state() -> dict:
    """The generator's state as plain JSON-able data (for checkpoints)."""
    return _rng.bit_generator.state


def check_state(state: dict) -> None:
    """A ValueError unless ``state`` is one :func:`get_state` could have returned (the generator is untouched)."""
    try:
        np.random.PCG64().state = state
    except (TypeError, KeyError, ValueError, OverflowError, AttributeError) as e:
        raise ValueError(f"not a PCG64 generator state ({type(e).__name__}: {e})") from None


def set_state(state: dict) -> None:
    """Restore a state from :func:`get_state`."""
    _rng.bit_generator.state = state
