"""Multi-head self-attention over (N, T, E) sequences."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import init as initializers
from ..checks import check_int
from ..rng import get_rng
from ..textbook import attention as tb
from .base import Layer, register_layer


@register_layer
class MultiHeadAttention(Layer):
    """Multi-head self-attention (Vaswani et al., 2017), as ``torch.nn.MultiheadAttention(batch_first=True)``
    called with query = key = value = x.

    ``[q, k, v] = x @ in_proj_weight.T + in_proj_bias``; each is cut into ``num_heads`` heads of
    ``d = embed_dim / num_heads`` features; per head ``softmax(q k^T / sqrt(d)) v``; the heads side
    by side go through ``out_proj``: ``y = a @ out_proj_weight.T + out_proj_bias``. The backward
    (softmax Jacobian, ``q k^T / sqrt(d)``) is derived in :mod:`tinynn.textbook.attention`.

    Parameters, named and shaped as torch's state dict (``out_proj.weight`` -> ``out_proj_weight``):
    ``in_proj_weight`` (3E, E), ``in_proj_bias`` (3E,), ``out_proj_weight`` (E, E),
    ``out_proj_bias`` (E,); ``bias=False`` drops both biases. Init as torch: ``in_proj_weight``
    Xavier-uniform over the (3E, E) matrix, ``out_proj_weight`` U(-1/sqrt(E), 1/sqrt(E)), biases 0.

    ``causal=True``: query t ignores the keys after t (a language model must not see the future).
    Padding: ``set_key_padding_mask(mask)`` with a boolean (N, T) array, True = ignore that key
    (torch's convention), applies to every forward until it is set again or cleared with None; its
    batch size must match the input's (so not with ``Net(workers > 1)``, which splits the batch).
    A query left with no key to attend to (all masked) is a ValueError, not a row of NaN.

    ``dropout``: in training, each attention weight is zeroed with that probability (and the rest
    scaled by 1/(1-p)) with tinynn's seeded generator; such a layer refuses ``workers > 1``, like
    :class:`~tinynn.layers.Dropout`.
    """

    cache = ("_cache",)

    def __init__(self, embed_dim: int, num_heads: int, causal: bool = False, bias: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.embed_dim = check_int(embed_dim, "embed_dim", where="MultiHeadAttention")
        self.num_heads = check_int(num_heads, "num_heads", where="MultiHeadAttention")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"MultiHeadAttention: embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})"
            )
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"MultiHeadAttention: dropout must be a probability in [0, 1), got {dropout!r}")
        self.causal, self.bias, self.dropout = bool(causal), bool(bias), float(dropout)
        self.batch_independent = self.dropout == 0  # random draws cannot be split over threads reproducibly
        self.key_padding_mask: np.ndarray | None = None
        e = self.embed_dim
        self.params["in_proj_weight"] = initializers.xavier_uniform()((3 * e, e), np.float32)
        if self.bias:
            self.params["in_proj_bias"] = np.zeros(3 * e, np.float32)
        bound = 1.0 / math.sqrt(e)
        self.params["out_proj_weight"] = initializers.uniform(-bound, bound)((e, e), np.float32)
        if self.bias:
            self.params["out_proj_bias"] = np.zeros(e, np.float32)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    @classmethod
    def param_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        e = check_int(config.get("embed_dim"), "embed_dim", where="MultiHeadAttention")
        if config.get("bias", True):
            return {"in_proj_weight": (3 * e, e), "in_proj_bias": (3 * e,), "out_proj_weight": (e, e),
                    "out_proj_bias": (e,)}
        return {"in_proj_weight": (3 * e, e), "out_proj_weight": (e, e)}

    def set_key_padding_mask(self, mask: np.ndarray | None) -> None:
        """Keys to ignore from now on: boolean (N, T), True = padding (torch's convention); None clears it."""
        if mask is not None:
            mask = np.asarray(mask)
            if mask.dtype != bool or mask.ndim != 2:
                raise ValueError(
                    f"{self!r}: key_padding_mask must be a boolean (batch, time) array, got dtype {mask.dtype} "
                    f"and shape {mask.shape}"
                )
        self.key_padding_mask = mask

    def forward(self, x: np.ndarray) -> np.ndarray:
        w = self.params["in_proj_weight"]
        if x.ndim != 3 or x.shape[2] != self.embed_dim or x.shape[1] == 0:
            raise ValueError(
                f"{self!r} got input of shape {x.shape}; expected (batch, time, {self.embed_dim}) with time >= 1"
            )
        if x.dtype != w.dtype:
            x = x.astype(w.dtype)
        n, t, _ = x.shape
        mask = self._mask(n, t)
        drop = None
        if self.training and self.dropout > 0:
            drop = get_rng().random((n, self.num_heads, t, t), dtype=x.dtype)
            drop = (drop >= self.dropout).astype(x.dtype) / x.dtype.type(1 - self.dropout)
        y, self._cache = tb.multi_head_attention(
            x, w, self.params.get("in_proj_bias"), self.params["out_proj_weight"], self.params.get("out_proj_bias"),
            self.num_heads, mask, drop,
        )
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        (cache,) = self.cached()
        if grad.shape != cache[0].shape:
            raise ValueError(f"{self!r}: backward got gradient of shape {grad.shape}; expected {cache[0].shape}")
        dx, dw_in, db_in, dw_out, db_out = tb.multi_head_attention_backward(grad, cache)
        self.grads["in_proj_weight"][...] = dw_in
        self.grads["out_proj_weight"][...] = dw_out
        if self.bias:
            self.grads["in_proj_bias"][...] = db_in
            self.grads["out_proj_bias"][...] = db_out
        return dx if self.input_grad else None

    def _mask(self, n: int, t: int) -> np.ndarray | None:
        """The (N or 1, 1, T, T) boolean mask, True = ignore, from ``causal`` and the key padding mask."""
        mask = tb.causal_mask(t)[None, None] if self.causal else None
        pad = self.key_padding_mask
        if pad is not None:
            if pad.shape != (n, t):
                raise ValueError(
                    f"{self!r}: key_padding_mask has shape {pad.shape} but the input has batch {n} and {t} steps "
                    "(set a mask for each batch; a Net with workers > 1 splits the batch, the mask cannot follow)"
                )
            pad = pad[:, None, None, :]
            mask = pad if mask is None else mask | pad
        if mask is not None:
            blind = np.broadcast_to(mask, (mask.shape[0], 1, t, t)).all(axis=-1)
            if blind.any():
                where = np.argwhere(blind)[0]
                raise ValueError(
                    f"{self!r}: query {where[2]} of sequence {where[0] if mask.shape[0] > 1 else 0} has every key "
                    "masked (causal and/or key_padding_mask): its attention weights would be undefined"
                )
        return mask

    def get_config(self) -> dict[str, Any]:
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "causal": self.causal, "bias": self.bias,
                "dropout": self.dropout}
