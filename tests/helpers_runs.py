"""In-process ``tinynn train`` runs for the tests, and a Ctrl-C after a chosen checkpoint write."""

from __future__ import annotations

import itertools

import pytest

import tinynn as tn
from tinynn import cli

SMALL = ["--limit", "600", "--hidden", "16", "--batch-size", "50", "--quiet"]
"""A small MNIST run: 600 training images, 16 hidden units, batches of 50, no progress output."""


def train(*args: str) -> int:
    """``tinynn train ARGS`` in this process; its exit code."""
    return cli.main(["train", *args])


def interrupt_after(monkeypatch: pytest.MonkeyPatch, saves: int) -> None:
    """Make the ``saves``-th checkpoint write be followed by Ctrl-C (as if pressed during the next epoch)."""
    original, count = tn.Model.save, itertools.count(1)

    def save(self, path):
        result = original(self, path)
        if next(count) == saves:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(tn.Model, "save", save)
