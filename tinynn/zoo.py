"""Ready-made nets, by name: what ``tinynn train --model NAME`` builds.

MNIST (``NETS``): each builder takes the CLI's options it needs and returns a :class:`tinynn.Net`
whose first layer accepts a batch of flat 784-pixel images (uint8 or float), so the data feeds
every net the same way.

Names (``NAMES_NETS``, ``tinynn train --data names``): character-level language models reading
(N, T) character indices and giving (N, T, 27) next-character logits at every position, each
position seeing only itself and the positions before it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from . import init
from .layers import (
    GRU,
    LSTM,
    ContextWindow,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Layer,
    LayerNorm,
    MaxPool2D,
    PatchesToTokens,
    PositionalEmbedding,
    ReLU,
    Reshape,
    Tanh,
    TokenMean,
    TransformerBlock,
)
from .net import Net

IMAGE_SHAPE, NUM_CLASSES = (28, 28), 10
IMAGE_SIZE = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]  # the nets take flat rows of 784 pixels


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


def lenet5(workers: int | None = None) -> Net:
    """LeNet-5 (LeCun et al. 1998), ReLU variant, for flat 784-pixel rows:

    reshape to 1x28x28 -> conv 5x5 1->6 padding 2 -> max-pool 2 -> conv 5x5 6->16 -> max-pool 2
    -> 400 -> 120 -> 84 -> 10. Max-pool comes before ReLU: ``max`` and ``ReLU`` commute, so the net is
    the same function as conv-ReLU-pool, with ReLU working on a 4x smaller array.

    ``workers`` as ``Net``'s: by default the net decides, and on two or more cores splits each
    batch over two threads (docs/benchmarks.md).
    """
    return Net([
        Reshape((1, 28, 28)),
        Conv2D(1, 6, 5, padding=2), MaxPool2D(2), ReLU(),  # 6x28x28 -> 6x14x14
        Conv2D(6, 16, 5), MaxPool2D(2), ReLU(),  # 16x10x10 -> 16x5x5
        Flatten(),
        Dense(400, 120), ReLU(),
        Dense(120, 84), ReLU(),
        Dense(84, NUM_CLASSES),
    ], workers=workers)  # fmt: skip


def lstm(hidden_size: int = 128, workers: int | None = None) -> Net:
    """Each image read as 28 time steps of 28 pixels (one row per step): LSTM -> last hidden state -> Dense 10.

    ``workers`` as ``Net``'s: by default the net decides, and on two or more cores splits each
    batch over two threads (docs/benchmarks.md).
    """
    return Net([Reshape((28, 28)), LSTM(28, hidden_size), Dense(hidden_size, NUM_CLASSES)], workers=workers)


def vit(dim: int = 64, depth: int = 4, num_heads: int = 4, patch_size: int = 7, mlp_ratio: int = 4) -> Net:
    """A vision transformer (Dosovitskiy et al., 2021) for 28x28 digits, made small:

    reshape to 1x28x28 -> ``Conv2D(1, dim, patch_size, stride=patch_size)`` embeds each 7x7 patch
    as a ``dim``-vector -> ``PatchesToTokens``: 16 tokens -> learned positions -> ``depth`` pre-norm
    ``TransformerBlock``s -> LayerNorm -> ``TokenMean`` (the mean over the tokens; no class token)
    -> ``Dense(dim, 10)``. Positions start from N(0, 0.02) as in ViT and GPT-2, so that at first
    they barely perturb the patch embeddings (``PositionalEmbedding``'s own N(0, 1) would drown them).
    """
    side = IMAGE_SHAPE[0] // patch_size
    if side < 1 or IMAGE_SHAPE[0] % patch_size:
        raise ValueError(f"vit: patch_size must divide {IMAGE_SHAPE[0]}, got {patch_size}")
    positions = PositionalEmbedding(side * side, dim)
    positions.params["weight"][...] = init.normal(0.0, 0.02)(positions.params["weight"].shape, np.float32)
    return Net([
        Reshape((1, *IMAGE_SHAPE)),
        Conv2D(1, dim, patch_size, stride=patch_size), PatchesToTokens(),  # (N, 16, dim)
        positions,
        *(TransformerBlock(dim, num_heads, mlp_ratio) for _ in range(depth)),
        LayerNorm(dim), TokenMean(),  # (N, dim)
        Dense(dim, NUM_CLASSES),
    ])  # fmt: skip


NETS: dict[str, Callable[..., Net]] = {"mlp": mlp, "cnn": lenet5, "lstm": lstm, "vit": vit}
"""Builders by the name ``--model`` takes."""

TRAIN_DEFAULTS: dict[str, dict[str, float | str]] = {
    # Random shifts of up to 1 pixel: LeNet fits its 55k training images within a few epochs;
    # shifted copies keep it learning digits instead (docs/convolution.md).
    "cnn": {"lr": 2e-3, "epochs": 10, "random_shift": 1},
    # A recurrent net tolerates a larger step, and clipping the gradient norm guards it against
    # the rare exploding batch (see docs/recurrent.md).
    "lstm": {"lr": 2e-3, "epochs": 8, "gradient_clip": 1.0},
    # A transformer's usual recipe: AdamW with decoupled weight decay, and a linear warmup before
    # the cosine decay (Adam's early steps, from noisy moment estimates, would otherwise be full size).
    # Without shifts it fits the training set (99.95% after 10 epochs, seed 0) at 98.2% on the test
    # set; a ViT has no convolution's translation invariance built in, so shifted copies teach it.
    "vit": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05, "scheduler": "warmup-cosine", "epochs": 10,
            "random_shift": 1},
}
"""Training options whose default differs from the CLI's (MLP) one, per net."""


# --- names: character-level language models (tinynn train --data names) -----------------------

VOCAB_SIZE, CONTEXT = 27, 16  # a..z and the start/stop token; the longest name + 1 (tinynn.data.names)


def _torch_linear(n_in: int, n_out: int) -> Dense:
    """A Dense with torch's nn.Linear weight init, U(-1/sqrt(in), 1/sqrt(in)) (no ReLU after it)."""
    return Dense(n_in, n_out, w_init=init.he_uniform(gain=1 / math.sqrt(3)))


def bigram() -> Net:
    """The bigram model as a net: one ``Embedding(27, 27)`` whose row for a character IS the logits
    of the next one. Trained, it learns the same table that counting bigrams gives in closed form."""
    return Net([Embedding(VOCAB_SIZE, VOCAB_SIZE)])


def names_mlp(context: int = 8, embed: int = 24, hidden: int = 256) -> Net:
    """Bengio et al. 2003 (makemore's MLP): the previous ``context`` characters (start tokens before
    the name), each embedded in ``embed`` numbers, concatenated, a tanh hidden layer, logits.

    ``ContextWindow`` gives each position its window of indices, so the whole name is scored in one
    pass: (N, T) -> (N, T, context) -> (N, T, context, embed) -> (N, T, context*embed) -> ... -> (N, T, 27).
    """
    return Net([
        ContextWindow(context), Embedding(VOCAB_SIZE, embed), Reshape((-1, context * embed)),
        _torch_linear(context * embed, hidden), Tanh(), _torch_linear(hidden, VOCAB_SIZE),
    ])  # fmt: skip


def _names_recurrent(cell: type, embed: int, hidden: int) -> Net:
    return Net([Embedding(VOCAB_SIZE, embed), cell(embed, hidden, return_sequences=True),
                _torch_linear(hidden, VOCAB_SIZE)])  # fmt: skip


def names_lstm(embed: int = 32, hidden: int = 128) -> Net:
    """Embedding -> LSTM (the hidden state after every character, (N, T, H)) -> logits at every position."""
    return _names_recurrent(LSTM, embed, hidden)


def names_gru(embed: int = 32, hidden: int = 128) -> Net:
    """Embedding -> GRU (the hidden state after every character, (N, T, H)) -> logits at every position."""
    return _names_recurrent(GRU, embed, hidden)


def transformer(dim: int = 64, num_heads: int = 4, num_blocks: int = 4, context: int = CONTEXT,
                dropout: float = 0.0, workers: int | None = None) -> Net:
    """A GPT-style decoder (makemore's Transformer): character embedding + learned positions,
    ``num_blocks`` pre-norm causal blocks (``x + attn(ln(x))``, ``x + mlp(ln(x))``), a final
    LayerNorm, and a Dense head giving the logits of the next character at every position.
    ``workers`` as ``Net``'s."""
    blocks = [TransformerBlock(dim, num_heads, dropout=dropout, causal=True) for _ in range(num_blocks)]
    return Net([Embedding(VOCAB_SIZE, dim), PositionalEmbedding(context, dim), *blocks, LayerNorm(dim),
                _torch_linear(dim, VOCAB_SIZE)], workers=workers)  # fmt: skip


NAMES_NETS: dict[str, Callable[..., Net]] = {
    "bigram": bigram, "mlp": names_mlp, "lstm": names_lstm, "gru": names_gru, "transformer": transformer,
}  # fmt: skip
"""Language models of ``tinynn train --data names``, by the name ``--model`` takes."""

NAMES_TRAIN_DEFAULTS: dict[str, dict] = {
    # makemore's recipe (AdamW, betas (0.9, 0.99), weight decay 0.01, 32 names a batch) for every model;
    # "cosine" warms the lr up linearly over `warmup` steps, then decays it to 0 (per batch).
    "bigram": {"optimizer": "adam", "lr": 0.05, "epochs": 3, "weight_decay": 0.0, "dropout": 0.0},
    "mlp": {"lr": 2e-3, "epochs": 10},
    "lstm": {"lr": 5e-3, "epochs": 6, "gradient_clip": 1.0},
    "gru": {"lr": 5e-3, "epochs": 6, "gradient_clip": 1.0},
    # 20 epochs of 970 steps with dropout 0.1 beat 10 without (examples/names_transformer.py prints both)
    "transformer": {"lr": 1e-3, "epochs": 20, "dropout": 0.1},
}
"""Per-model training options of names runs, over ``NAMES_COMMON_DEFAULTS``."""

NAMES_COMMON_DEFAULTS: dict = {
    "optimizer": "adamw", "lr": 5e-4, "betas": (0.9, 0.99), "weight_decay": 0.01, "batch_size": 32,
    "scheduler": "cosine", "warmup": 200, "epochs": 10, "dropout": 0.0, "gradient_clip": None,
}  # fmt: skip
"""Training options shared by the names models unless ``NAMES_TRAIN_DEFAULTS`` says otherwise."""
