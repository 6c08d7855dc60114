"""Embeddings, layer norm and multi-head attention as pure functions (sequences are (N, T, C)).

Each forward returns ``(y, cache)``; its ``<name>_backward(dy, cache)`` returns the gradient with
respect to each float array argument of the forward, in order (None for an absent bias). Integer
indices and boolean masks are not differentiable and get no entry: ``embedding_backward`` returns
``dweight`` alone.
Weights keep torch's layouts: an embedding table is (num_embeddings, C); attention's projections are
``in_proj_weight`` (3E, E) and ``out_proj_weight`` (E, E), applied as ``x @ w.T + b`` like
``torch.nn.MultiheadAttention``.

Masks are boolean with True = *ignore* (as torch's ``key_padding_mask``; note that the boolean
``attn_mask`` of ``torch.nn.functional.scaled_dot_product_attention`` means the opposite).
"""

from __future__ import annotations

import math

import numpy as np

# --- embeddings -------------------------------------------------------------------------------


def embedding(idx: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``y[..., :] = weight[idx[...]]``: one row of the table per integer index (any shape of ``idx``)."""
    return weight[idx], (idx, weight.shape)


def embedding_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """``dweight[i] = sum of dy over every position whose index is i`` (a scatter-add).

    An index that occurs k times receives the sum of its k upstream gradients; ``np.add.at``
    accumulates repeated indices (``dweight[idx] += dy`` would keep only one of them).
    """
    idx, shape = cache
    dweight = np.zeros(shape, dtype=dy.dtype)
    np.add.at(dweight, idx.reshape(-1), dy.reshape(-1, shape[1]))
    return dweight


def positional_embedding(x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``y[n, t] = x[n, t] + weight[t]`` for x (N, T, C) and a learned table weight (max_len, C)."""
    steps = x.shape[1]
    return x + weight[:steps], (steps, weight.shape)


def positional_embedding_backward(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """``dx = dy``; ``dweight[t] = sum_n dy[n, t]`` for the first T rows, 0 for the rest."""
    steps, shape = cache
    dweight = np.zeros(shape, dtype=dy.dtype)
    dweight[:steps] = dy.sum(axis=0)
    return dy, dweight


# --- layer norm -------------------------------------------------------------------------------


def layer_norm(
    x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, normalized_shape: tuple[int, ...],
    eps: float = 1e-5,
) -> tuple[np.ndarray, tuple]:
    """Normalise each sample over its last ``len(normalized_shape)`` axes (Ba, Kiros & Hinton, 2016).

    ``mu = mean(x)``, ``var = mean((x - mu)^2)`` (biased), ``xhat = (x - mu) / sqrt(var + eps)``,
    ``y = xhat * weight + bias`` (weight and bias shaped ``normalized_shape``; None = no affine).
    """
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    xc = x - x.mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)
    xhat = xc * inv_std
    y = xhat if weight is None else xhat * weight
    if bias is not None:
        y = y + bias
    return y, (xhat, inv_std, weight, bias is not None, axes)


def layer_norm_backward(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """With ``g = dy * weight`` and means over the normalised axes (one sample's D entries):

    ``dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)``: xhat depends on x directly,
    through the mean (whose shift moves every entry alike: ``-mean(g)``) and through the variance
    (``-xhat * mean(g * xhat)``). ``dweight = sum(dy * xhat)``, ``dbias = sum(dy)`` over the
    leading (batch, time) axes. BatchNorm's formula is the same with the roles of the axes swapped:
    there the means run over the batch, here over the features of one sample.
    """
    xhat, inv_std, weight, has_bias, axes = cache
    lead = tuple(range(dy.ndim - len(axes)))
    g = dy if weight is None else dy * weight
    dx = inv_std * (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    dweight = None if weight is None else (dy * xhat).sum(axis=lead)
    dbias = dy.sum(axis=lead) if has_bias else None
    return dx, dweight, dbias


# --- attention --------------------------------------------------------------------------------


def softmax(x: np.ndarray) -> np.ndarray:
    """``s_i = exp(x_i - max x) / sum_j exp(x_j - max x)`` over the last axis (the max keeps exp finite)."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(ds: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The softmax Jacobian ``ds_i/dx_j = s_i (delta_ij - s_j)`` applied to ``ds``: ``s * (ds - sum(ds * s))``."""
    return s * (ds - (ds * s).sum(axis=-1, keepdims=True))


def causal_mask(steps: int) -> np.ndarray:
    """(T, T) boolean, True above the diagonal: query t must ignore the keys after it."""
    return np.triu(np.ones((steps, steps), dtype=bool), k=1)


def attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None,
    dropout_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple]:
    """Scaled dot-product attention (Vaswani et al., 2017) on (..., T, d) queries, keys and values.

    ``S = q k^T / sqrt(d)``; entries where ``mask`` (broadcast to (..., T, T)) is True become -inf;
    ``P = softmax(S)`` over the keys; ``y = (P * dropout_mask) v``. ``dropout_mask`` is the already
    scaled keep mask (entries 0 or 1/(1-p)), None for no dropout. Every query must keep at least one
    key (a row of -inf has no softmax).

    Why sqrt(d): for q and k with independent unit-variance entries, ``q . k`` has variance d; the
    scale brings it back to 1 so the softmax does not saturate as d grows.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = (q @ k.swapaxes(-1, -2)) * scale
    if mask is not None:
        scores = np.where(mask, -np.inf, scores)
    p = softmax(scores)
    pd = p if dropout_mask is None else p * dropout_mask
    return pd @ v, (q, k, v, p, pd, dropout_mask, scale)


def attention_backward(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``dv = Pd^T dy``; ``dPd = dy v^T``; ``dP = dPd * dropout_mask``; ``dS = softmax_backward(dP, P)``
    (zero wherever the mask removed a key, since P is 0 there); ``dq = dS k / sqrt(d)``, ``dk = dS^T q / sqrt(d)``.
    """
    q, k, v, p, pd, dropout_mask, scale = cache
    dv = pd.swapaxes(-1, -2) @ dy
    dp = dy @ v.swapaxes(-1, -2)
    if dropout_mask is not None:
        dp = dp * dropout_mask
    ds = softmax_backward(dp, p) * scale
    return ds @ k, ds.swapaxes(-1, -2) @ q, dv


def _split_heads(x: np.ndarray, num_heads: int) -> np.ndarray:
    """(N, T, E) -> (N, H, T, E/H): head h sees the h-th slice of E/H features."""
    n, t, e = x.shape
    return x.reshape(n, t, num_heads, e // num_heads).transpose(0, 2, 1, 3)


def _merge_heads(x: np.ndarray) -> np.ndarray:
    """(N, H, T, D) -> (N, T, H*D): the heads' outputs side by side."""
    n, h, t, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(n, t, h * d)


def multi_head_attention(
    x: np.ndarray, in_proj_weight: np.ndarray, in_proj_bias: np.ndarray | None, out_proj_weight: np.ndarray,
    out_proj_bias: np.ndarray | None, num_heads: int, mask: np.ndarray | None = None,
    dropout_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple]:
    """Self-attention of x (N, T, E) with ``num_heads`` heads of ``d = E / num_heads`` features.

    ``[q, k, v] = x @ in_proj_weight.T + in_proj_bias`` (rows 0:E of the weight make q, E:2E k,
    2E:3E v); each is split into heads, ``a = attention(q, k, v, mask, dropout_mask)`` per head, the
    heads are put side by side again and ``y = a @ out_proj_weight.T + out_proj_bias``.
    ``mask`` broadcasts to (N, H, T, T), True = ignore; ``dropout_mask`` is (N, H, T, T) or None.
    """
    qkv = x @ in_proj_weight.T
    if in_proj_bias is not None:
        qkv = qkv + in_proj_bias
    q, k, v = (_split_heads(part, num_heads) for part in np.split(qkv, 3, axis=-1))
    heads, att_cache = attention(q, k, v, mask, dropout_mask)
    a = _merge_heads(heads)
    y = a @ out_proj_weight.T
    if out_proj_bias is not None:
        y = y + out_proj_bias
    return y, (x, in_proj_weight, in_proj_bias is not None, out_proj_weight, out_proj_bias is not None, a,
               att_cache, num_heads)


def multi_head_attention_backward(dy: np.ndarray, cache: tuple) -> tuple:
    """``(dx, din_proj_weight, din_proj_bias, dout_proj_weight, dout_proj_bias)``; for ``y = a W^T + b``
    summed over the (N, T) positions: ``dW = dy^T a``, ``db = sum dy``, ``da = dy W``; the heads'
    gradients come from :func:`attention_backward` and are stacked back into ``dqkv`` (N, T, 3E).
    """
    x, w_in, has_b_in, w_out, has_b_out, a, att_cache, num_heads = cache
    e = x.shape[-1]
    dy2 = dy.reshape(-1, e)
    dw_out = dy2.T @ a.reshape(-1, e)
    db_out = dy2.sum(axis=0) if has_b_out else None
    dq, dk, dv = attention_backward(_split_heads(dy @ w_out, num_heads), att_cache)
    dqkv = np.concatenate([_merge_heads(dq), _merge_heads(dk), _merge_heads(dv)], axis=-1)
    dqkv2 = dqkv.reshape(-1, 3 * e)
    dw_in = dqkv2.T @ x.reshape(-1, e)
    db_in = dqkv2.sum(axis=0) if has_b_in else None
    return dqkv @ w_in, dw_in, db_in, dw_out, db_out
