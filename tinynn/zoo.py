"""Ready-made nets for MNIST, by name: what ``tinynn train --model NAME`` builds.

Each builder takes the CLI's options it needs and returns a :class:`tinynn.Net` whose first layer
accepts a batch of flat 784-pixel images (uint8 or float), so the data feeds every net the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .layers import LSTM, Dense, Dropout, Layer, ReLU, Reshape
from .net import Net

IMAGE_SIZE, NUM_CLASSES = 784, 10


def mlp(hidden: Sequence[int] = (256, 128), dropout: float = 0.1) -> Net:
    """784 -> hidden... -> 10, ReLU, with dropout after each hidden layer (0 = none)."""
    layers: list[Layer] = []
    width = IMAGE_SIZE
    for h in hidden:
        layers += [Dense(width, h), ReLU()]
        if dropout:
            layers.append(Dropout(dropout))
        width = h
    layers.append(Dense(width, NUM_CLASSES))
    return Net(layers)


def lstm(hidden_size: int = 128) -> Net:
    """Each image read as 28 time steps of 28 pixels (one row per step): LSTM -> last state -> Dense 10."""
    return Net([Reshape((28, 28)), LSTM(28, hidden_size), Dense(hidden_size, NUM_CLASSES)])


NETS: dict[str, Callable[..., Net]] = {"mlp": mlp, "lstm": lstm}
"""Builders by the name ``--model`` takes."""
