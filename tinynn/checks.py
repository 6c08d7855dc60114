"""The validators for arguments, one rule per kind: integers (sizes, counts, epochs), numbers, flags; a ValueError
(TypeError for a wrong type) or the value."""

from __future__ import annotations

import math
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


def check_float(
    value: Any, name: str, minimum: float | None = None, maximum: float | None = None, where: str = "",
    *, min_open: bool = False, max_open: bool = False,
) -> float:  # fmt: skip
    """``value`` as a finite ``float`` if it is a real number (int, float or numpy's; not a bool) within its bounds.

    ``minimum``/``maximum`` bound it (None: no bound), excluded with ``min_open``/``max_open``. A value
    of another type is a TypeError (``SGD: lr must be a number, got '0.1' (str)``); NaN, an infinity or
    a value out of range a ValueError (``StepLR: gamma must be a finite number >= 0, got nan``).
    """
    where = where + ": " if where else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}{name} must be a number, got {value!r} ({type(value).__name__})")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    low = minimum is None or (number > minimum if min_open else number >= minimum)
    high = maximum is None or (number < maximum if max_open else number <= maximum)
    if not (math.isfinite(number) and low and high):
        if minimum is not None and maximum is not None:
            rule = f"in {'(' if min_open else '['}{minimum:g}, {maximum:g}{')' if max_open else ']'}"
        elif minimum is not None:
            rule = f"{'>' if min_open else '>='} {minimum:g}"
        elif maximum is not None:
            rule = f"{'<' if max_open else '<='} {maximum:g}"
        else:
            rule = ""
        raise ValueError(f"{where}{name} must be a finite number {rule}".rstrip() + f", got {value!r}")
    return number


def check_bool(value: Any, name: str, where: str = "") -> bool:
    """``value`` if it is a real bool (Python's or numpy's), else a TypeError: ``"false"`` or 0 is not one."""
    if not isinstance(value, (bool, np.bool_)):
        where = where + ": " if where else ""
        raise TypeError(f"{where}{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)
