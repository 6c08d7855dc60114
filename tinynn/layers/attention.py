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

    The optimised version of :func:`tinynn.textbook.attention.multi_head_attention` (heads as strided
    views, batched products over (N, H), the softmax in place over a keys-first layout, scratch
    arrays); ``fast=False`` runs that function instead.
    """

    cache = ("_x", "_qkv", "_st", "_a")
    _drop: np.ndarray | None = None  # the fast forward's scaled dropout keep-mask (None: no dropout)

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

    @property
    def batch_independent(self) -> bool:  # type: ignore[override]
        """Rows may be split over threads unless random draws (dropout) or a mask sized to the whole
        batch (``key_padding_mask``) tie them together."""
        return self.dropout == 0 and self.key_padding_mask is None

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
        if not self.fast:
            return self._textbook_keep(*tb.multi_head_attention(
                x, w, self.params.get("in_proj_bias"), self.params["out_proj_weight"],
                self.params.get("out_proj_bias"), self.num_heads, mask, drop,
            ))
        return self._fast_forward(x, mask, drop)

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        if not self.fast:
            dx, dw_in, db_in, dw_out, db_out = tb.multi_head_attention_backward(grad, self._textbook_cache(grad))
            self._set_grads(dw_in, db_in, dw_out, db_out)
            return dx if self.input_grad else None
        return self._fast_backward(grad)

    # The fast path. Rows are the N*T positions. q, k and v stay where the input projection wrote
    # them, in one (N*T, 3E) array: each head's (T, D) block is a strided view that a batched
    # np.matmul hands to BLAS as it is (rows 3E apart), so splitting and merging heads copies
    # nothing. The 1/sqrt(D) is folded into q once (N*T*E multiplies instead of N*H*T*T).
    # The attention weights are kept KEYS FIRST, as (T_keys, N, H, T_queries): the softmax sums
    # and maxima over the keys then run over the outermost axis, whole rows of N*H*T numbers at a
    # time, instead of N*H*T separate reductions over T keys each (numpy pays per reduced row).

    def _heads(self, qkv: np.ndarray, n: int, t: int) -> list[np.ndarray]:
        """q, k, v as (N, H, T, D) views into the (N*T, 3E) projection (or its gradient)."""
        h = self.num_heads
        parts = qkv.reshape(n, t, 3, h, self.embed_dim // h)
        return [parts[:, :, i].transpose(0, 2, 1, 3) for i in range(3)]

    def _fast_forward(self, x: np.ndarray, mask: np.ndarray | None, drop: np.ndarray | None) -> np.ndarray:
        n, t, e = x.shape
        h, rows, dtype = self.num_heads, n * t, x.dtype
        self._x = x2 = x.reshape(rows, e)
        qkv = self._qkv = self.scratch_exact("qkv", (rows, 3 * e), dtype)
        np.matmul(x2, self.params["in_proj_weight"].T, out=qkv)
        if self.bias:
            qkv += self.params["in_proj_bias"]
        qkv[:, :e] *= dtype.type(1.0 / math.sqrt(e // h))  # q's columns (faster than through the head views)
        q, k, v = self._heads(qkv, n, t)
        st = self._st = self.scratch_exact("st", (t, n, h, t), dtype)  # S^T: st[j, n, h, i] = q_i . k_j
        np.matmul(k, q.swapaxes(-1, -2), out=st.transpose(1, 2, 0, 3))
        if mask is not None and self.key_padding_mask is None:  # causal alone: a slice per key
            for j in range(1, t):
                st[j, ..., :j] = -np.inf  # key j lies in the future of queries 0 .. j-1
        elif mask is not None:  # mask is (N or 1, 1, T_q, T_k): keys first too
            np.copyto(st, -np.inf, where=mask.transpose(3, 0, 1, 2))
        st -= st.max(axis=0)  # softmax over the keys, in place (the max keeps exp finite)
        np.exp(st, out=st)
        st /= st.sum(axis=0)
        self._drop = drop
        p = st.transpose(1, 2, 3, 0)  # P as (N, H, T_q, T_k): a view
        pd = p if drop is None else np.multiply(p, drop, out=self.scratch_exact("pd", p.shape, dtype))
        a = self._a = self.scratch_exact("a", (rows, e), dtype)
        np.matmul(pd, v, out=self._heads_out(a, n, t))  # each head's output lands beside the others
        y = self.scratch_exact("y", (rows, e), dtype)
        np.matmul(a, self.params["out_proj_weight"].T, out=y)
        if self.bias:
            y += self.params["out_proj_bias"]
        return y.reshape(n, t, e)

    def _heads_out(self, a: np.ndarray, n: int, t: int) -> np.ndarray:
        """The (N, T, E) heads-side-by-side array ``a`` as an (N, H, T, D) view."""
        h = self.num_heads
        return a.reshape(n, t, h, self.embed_dim // h).transpose(0, 2, 1, 3)

    def _fast_backward(self, grad: np.ndarray) -> np.ndarray | None:
        x2, qkv, st, a = self.cached()
        t, n, h, _ = st.shape
        rows, e = x2.shape
        dtype, drop = x2.dtype, self._drop
        if grad.shape != (n, t, e):
            raise ValueError(f"{self!r}: backward got gradient of shape {grad.shape}; expected {(n, t, e)}")
        dy = grad.reshape(rows, e)
        ones = self.scratch_exact("ones", (rows,), dtype)
        ones.fill(1)  # sums over the rows as products with a row of ones (BLAS, faster than np.sum)
        np.matmul(dy.T, a, out=self.grads["out_proj_weight"])  # y = a W^T + b: dW = dy^T a
        if self.bias:
            np.matmul(ones, dy, out=self.grads["out_proj_bias"])
        da = self.scratch_exact("da", (rows, e), dtype)
        np.matmul(dy, self.params["out_proj_weight"], out=da)
        do = self._heads_out(da, n, t)
        q, k, v = self._heads(qkv, n, t)  # q already scaled by 1/sqrt(d)
        dqkv = self.scratch_exact("dqkv", (rows, 3 * e), dtype)
        dq, dk, dv = self._heads(dqkv, n, t)
        p = st.transpose(1, 2, 3, 0)
        pd = p if drop is None else self._scratch["pd"]
        np.matmul(pd.swapaxes(-1, -2), do, out=dv)  # dv = Pd^T do
        dst = self.scratch_exact("dst", st.shape, dtype)  # dPd, keys first like st
        np.matmul(v, do.swapaxes(-1, -2), out=dst.transpose(1, 2, 0, 3))
        if drop is not None:
            dst *= drop.transpose(3, 0, 1, 2)
        tmp = self.scratch_exact("tmp", st.shape, dtype)  # softmax backward in place: dS = P (dP - sum_k dP P)
        np.multiply(dst, st, out=tmp)
        dst -= tmp.sum(axis=0)
        dst *= st
        ds = dst.transpose(1, 2, 3, 0)  # (N, H, T_q, T_k)
        np.matmul(ds, k, out=dq)  # for S = q_s k^T with q_s = q / sqrt(d): dq_s = dS k, dk = dS^T q_s
        np.matmul(ds.swapaxes(-1, -2), q, out=dk)
        dqkv[:, :e] *= dtype.type(1.0 / math.sqrt(e // h))  # dq = dq_s / sqrt(d)
        np.matmul(dqkv.T, x2, out=self.grads["in_proj_weight"])
        if self.bias:
            np.matmul(ones, dqkv, out=self.grads["in_proj_bias"])
        if not self.input_grad:
            return None
        dx = self.scratch_exact("dx", (rows, e), dtype)
        np.matmul(dqkv, self.params["in_proj_weight"], out=dx)
        return dx.reshape(n, t, e)

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
        if pad is not None:  # (causal alone never blinds a query: each sees its own key)
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
