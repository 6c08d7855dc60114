"""Layers: each maps ``x -> y`` in ``forward`` and ``dL/dy -> dL/dx`` in ``backward``.

One module per family, from simple to complex: ``base`` (the Layer class and the registry),
``dense``, ``activations``, ``dropout``, ``shape``, ``normalization``.
"""

from .activations import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import LAYERS, Layer, Shape, from_config, param_shapes, register_layer
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm1d
from .shape import Flatten, Reshape

__all__ = [
    "LAYERS",
    "BatchNorm1d",
    "Dense",
    "Dropout",
    "Flatten",
    "GELU",
    "Layer",
    "LeakyReLU",
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
