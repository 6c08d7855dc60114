"""The one validator for integer arguments (sizes, counts, epochs): a clear ValueError or the int."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_int(value: Any, name: str, minimum: int = 1, where: str = "") -> int:
    """``value`` as an ``int`` if it is an integer (not a bool, not a float) ``>= minimum``.

    Otherwise a ValueError such as ``"Dense: in_features must be an integer >= 1, got True"``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        rule = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{where + ': ' if where else ''}{name} must be {rule}, got {value!r}")
    return int(value)
