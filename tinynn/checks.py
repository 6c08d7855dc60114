"""The validators for integer arguments (sizes, counts, epochs) and positive numbers: a ValueError or the value."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_int(value: Any, name: str, minimum: int = 1, where: str = "") -> int:
    """``value`` as an ``int`` if it is an integer (not a bool, not a float) ``>= minimum`` and ``< 2**63``.

    Otherwise a ValueError such as ``"Dense: in_features must be a positive integer, got True"``.
    The upper bound is numpy's: a larger count could never index an array (and a 4000-digit
    number from a crafted file would overflow wherever it is used).
    """
    where = where + ": " if where else ""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        rule = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{where}{name} must be {rule}, got {value!r}")
    if value >= 2**63:
        raise ValueError(f"{where}{name} must be below 2**63, got an integer of {int(value).bit_length()} bits")
    return int(value)


def check_positive(value: Any, name: str, where: str = "") -> float:
    """``value`` as a ``float`` if it is a number (not a bool) ``> 0``; NaN is refused. Else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value > 0:
        raise ValueError(f"{where + ': ' if where else ''}{name} must be a number > 0, got {value!r}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{where + ': ' if where else ''}{name} is too large for a float") from None
