"""Layers: each maps ``x -> y`` in ``forward`` and ``dL/dy -> dL/dx`` in ``backward``.

One module per family, from simple to complex: ``base`` (the Layer class and the registry),
``dense``, ``activations``, ``dropout``, ``shape``, ``normalization``, ``conv``, ``pooling``
(both built on the private ``_im2col`` helpers), ``recurrent``, ``embedding``, ``attention``,
``blocks`` (layers made of layers: ``Sequential``, ``Residual``) and ``transformer``
(``TransformerBlock``). The math of ``embedding``, ``attention`` and ``LayerNorm`` is in
:mod:`tinynn.textbook.attention`.
"""

from .activations import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .attention import MultiHeadAttention
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
from .embedding import ContextWindow, Embedding, PositionalEmbedding
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from .pooling import AvgPool2D, MaxPool2D, TokenMean
from .recurrent import GRU, LSTM, RNN
from .shape import Flatten, PatchesToTokens, Reshape
from .transformer import TransformerBlock

__all__ = [
    "LAYERS",
    "AvgPool2D",
    "BatchNorm1d",
    "BatchNorm2d",
    "ContextWindow",
    "Conv2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GELU",
    "GRU",
    "Layer",
    "LSTM",
    "LayerNorm",
    "LeakyReLU",
    "MaxPool2D",
    "MultiHeadAttention",
    "PatchesToTokens",
    "PositionalEmbedding",
    "RNN",
    "ReLU",
    "Reshape",
    "Residual",
    "Sequential",
    "Shape",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "TokenMean",
    "TransformerBlock",
    "bind_flat",
    "from_config",
    "has_params",
    "layer_config",
    "named_layers",
    "param_shapes",
    "register_layer",
]
