"""Layers: each maps ``x -> y`` in ``forward`` and ``dL/dy -> dL/dx`` in ``backward``.

One module per family, from simple to complex: ``base`` (the Layer class and the registry),
``dense``, ``activations``, ``dropout``, ``shape``, ``normalization``, ``conv``, ``pooling``
(both built on the private ``_im2col`` helpers), ``recurrent``.
"""

from .activations import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import LAYERS, Layer, Shape, from_config, param_shapes, register_layer
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
    "Shape",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "from_config",
    "param_shapes",
    "register_layer",
]
