"""The grid of a sweep: the options it may vary, and its points, each checked by the ``tinynn train`` parser."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .. import runs

GRID_OPTIONS = ("model", "hidden", "dropout", "optimizer", "lr", "weight_decay", "scheduler", "epochs",
                "batch_size", "seed")  # fmt: skip
"""Options a sweep may vary (lists of values); each is a ``tinynn train`` option."""

FIXED_OPTIONS = ("val_size", "limit", "data")
"""Options shared by all runs of a sweep (one value)."""


def fmt(value: Any) -> str:
    """A grid value as it appears in run names and tables: ``[256, 128]`` -> ``"256-128"``, ``0.001`` -> ``"0.001"``."""
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def normal(value: Any) -> Any:
    """Options compared as JSON sees them (tuples are lists, 1e-3 == 0.001)."""
    return json.loads(json.dumps(value))


def _check_grids(grids: list, fixed: Mapping[str, Any]) -> list[str]:
    """The options the grids vary, in order; ValueError for unknown options and empty lists."""
    if not grids:
        raise ValueError("sweep: the grid is empty (no options to vary)")
    unknown = sorted(set(fixed) - set(FIXED_OPTIONS))
    if unknown:
        raise ValueError(f"sweep: unknown fixed option(s) {unknown}; fixed options are {list(FIXED_OPTIONS)}")
    keys: list[str] = []
    for g in grids:
        if not isinstance(g, Mapping):
            raise ValueError(f"sweep: a grid is a dict of option -> list of values, got {g!r}")
        unknown = sorted(set(g) - set(GRID_OPTIONS))
        if unknown:
            raise ValueError(f"sweep: unknown option(s) {unknown}; a sweep varies {list(GRID_OPTIONS)}")
        for key, values in g.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
                raise ValueError(f"sweep: {key} needs a non-empty list of values, got {values!r}")
            if key not in keys:
                keys.append(key)
    return keys


def expand(grid: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]], **fixed: Any) -> list[dict]:
    """The points of ``grid``: one dict of ``tinynn train`` options per point, checked by the train parser.

    ``grid`` maps option names (``GRID_OPTIONS``, with ``_`` as in Python: ``batch_size``) to lists of
    values, or is a list of such dicts (the runs of each, in order: e.g. one learning-rate list per
    optimizer). ``fixed`` sets ``FIXED_OPTIONS``. Each run gets a ``name`` from its grid values.
    Raises ValueError for unknown options, empty lists and values ``tinynn train`` refuses.
    """
    grids = [grid] if isinstance(grid, Mapping) else list(grid)
    keys = _check_grids(grids, fixed)
    points, names = [], set()
    for g in grids:
        for point in itertools.product(*g.values()):
            options = dict(zip(g, point, strict=True))
            try:
                args = runs.parse_run_options(runs.to_argv({**options, **fixed}))
            except ValueError as e:
                raise ValueError(f"sweep: run {options} is invalid: {e}") from None
            run = {k: getattr(args, k) for k in runs.RUN_OPTIONS}
            run["data"] = args.data
            run["name"] = "_".join(f"{k.replace('_', '-')}={fmt(run[k])}" for k in keys)
            if run["name"] not in names:  # a point listed twice is run once
                names.add(run["name"])
                points.append(run)
    return points
