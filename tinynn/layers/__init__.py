"""Layers: each maps ``x -> y`` in ``forward`` and ``dL/dy -> dL/dx`` in ``backward``.

One module per family, from simple to complex: ``base`` (the Layer class and the registry),
``dense``, ``activations``, ``dropout``, ``shape``, ``normalization``, ``conv``, ``pooling``
(both built on the private ``_im2col`` helpers), ``recurrent``, and ``blocks`` (layers made of
layers: ``Sequential``, ``Residual``).
"""

from .activations import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import (
    LAYERS,
    Layer,
    Shape,
    bind_flat,
    from_config,
    has_params,
    layer_config,
    named_layers,
    param_shapes,
    register_layer,
)
from .blocks import Residual, Sequential
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm1d, BatchNorm2d
from .pooling import AvgPool2D, MaxPool2D
from .recurrent import GRU, LSTM, RNN
from .shape import Flatten, Reshape

__all__ = [
    "LAYERS",
    "AvgPool2D",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GELU",
    "GRU",
    "Layer",
    "LSTM",
    "LeakyReLU",
    "MaxPool2D",
    "RNN",
    "ReLU",
    "Reshape",
    "Residual",
    "Sequential",
    "Shape",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "bind_flat",
    "from_config",
    "has_params",
    "layer_config",
    "named_layers",
    "param_shapes",
    "register_layer",
]
