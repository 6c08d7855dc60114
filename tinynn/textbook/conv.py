"""2-D convolution (naive loops and im2col) and max/avg pooling of (N, C, H, W) images.

Convolution here is cross-correlation, as in every deep-learning library (torch's ``conv2d``)::

    y[n, o, r, c] = b[o] + sum_{ch, i, j} w[o, ch, i, j] * xp[n, ch, r*sh + i, c*sw + j]

with ``xp`` the zero-padded input. Output size per axis: ``(H + pad_before + pad_after - k) // s + 1``.
``stride`` is an int or a pair (sh, sw); ``padding`` an int, a pair (ph, pw) or four numbers
(top, bottom, left, right).
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray
Pair = int | tuple[int, int]
Padding = int | tuple[int, ...]


def pair(v: Pair) -> tuple[int, int]:
    """``3 -> (3, 3)``; a pair stays a pair."""
    return (v, v) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def pads4(padding: Padding) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from an int, a pair (ph, pw) or four numbers."""
    if np.ndim(padding) == 0:
        return (padding,) * 4
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    return tuple(padding)


def pad(x: Array, padding: Padding, value: float = 0.0) -> Array:
    """``x`` with ``value`` added around its last two axes."""
    t, b, left, r = pads4(padding)
    return np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)), constant_values=value)


def unpad(xp: Array, padding: Padding) -> Array:
    """The inverse of ``pad``: the middle of ``xp``."""
    t, b, left, r = pads4(padding)
    return xp[:, :, t : xp.shape[2] - b, left : xp.shape[3] - r]


def out_size(h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int], padding: Padding) -> tuple[int, int]:
    """``(Ho, Wo)``: how many windows fit along each axis."""
    t, b, left, r = pads4(padding)
    return (h + t + b - kernel[0]) // stride[0] + 1, (w + left + r - kernel[1]) // stride[1] + 1


# --- convolution, the definition ---------------------------------------------------------------


def conv2d_naive(x: Array, w: Array, b: Array | None = None, stride: Pair = 1,
                 padding: Padding = 0) -> tuple[Array, tuple]:
    """The definition, loop by loop: x (N, C, H, W), w (O, C, kh, kw), b (O,) -> y (N, O, Ho, Wo).

    Slow (four Python loops): for reading and checking.
    """
    (sh, sw), (o, _, kh, kw) = pair(stride), w.shape
    xp = pad(x, padding)
    n = x.shape[0]
    ho, wo = out_size(x.shape[2], x.shape[3], (kh, kw), (sh, sw), padding)
    y = np.zeros((n, o, ho, wo), dtype=x.dtype)
    for i in range(n):
        for oc in range(o):
            for r in range(ho):
                for col in range(wo):
                    patch = xp[i, :, r * sh : r * sh + kh, col * sw : col * sw + kw]
                    y[i, oc, r, col] = (patch * w[oc]).sum() + (0 if b is None else b[oc])
    return y, (x, w, b, stride, padding)


def conv2d_naive_backward(dy: Array, cache: tuple) -> tuple[Array, Array, Array | None]:
    """Each output pixel sent ``dy`` back along the products that made it::

        dw[o] += dy[n, o, r, c] * patch     dpatch += dy[n, o, r, c] * w[o]     db[o] = sum dy[:, o]
    """
    x, w, b, stride, padding = cache
    (sh, sw), (o, _, kh, kw) = pair(stride), w.shape
    xp = pad(x, padding)
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    n, _, ho, wo = dy.shape
    for i in range(n):
        for oc in range(o):
            for r in range(ho):
                for col in range(wo):
                    window = (i, slice(None), slice(r * sh, r * sh + kh), slice(col * sw, col * sw + kw))
                    dw[oc] += dy[i, oc, r, col] * xp[window]
                    dxp[window] += dy[i, oc, r, col] * w[oc]
    return unpad(dxp, padding), dw, None if b is None else dy.sum(axis=(0, 2, 3))


# --- convolution as one matrix product -----------------------------------------------------------


def windows(xp: Array, kernel: tuple[int, int], stride: tuple[int, int]) -> Array:
    """Every window of padded ``xp`` (N, C, Hp, Wp): an (N, C, kh, kw, Ho, Wo) array.

    For a kernel offset (i, j), what it sees at every output position is one strided slice of
    ``xp``: kh*kw slice copies, no loop over output positions.
    """
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.empty((*xp.shape[:2], kh, kw, ho, wo), dtype=xp.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i, j] = xp[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
    return out


def add_windows(d: Array, stride: tuple[int, int], padded_shape: tuple[int, ...]) -> Array:
    """The adjoint of ``windows``: add each window of ``d`` (N, C, kh, kw, Ho, Wo) back where it was
    read, in a zero array of ``padded_shape``. Overlapping windows add up."""
    (sh, sw), (kh, kw, ho, wo) = stride, d.shape[2:]
    dxp = np.zeros(padded_shape, dtype=d.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += d[:, :, i, j]
    return dxp


def im2col(xp: Array, kernel: tuple[int, int], stride: tuple[int, int]) -> Array:
    """Padded (N, C, Hp, Wp) -> cols (C*kh*kw, N*Ho*Wo): column (n, r, c) is the receptive field of
    output pixel (r, c) of image n, unrolled in the (ch, i, j) order of a row of ``w.reshape(O, -1)``."""
    win = windows(xp, kernel, stride)
    n, c, kh, kw, ho, wo = win.shape
    return win.transpose(1, 2, 3, 0, 4, 5).reshape(c * kh * kw, n * ho * wo)


def col2im(dcols: Array, kernel: tuple[int, int], stride: tuple[int, int], padded_shape: tuple[int, ...],
           out_hw: tuple[int, int]) -> Array:
    """The adjoint of ``im2col``: every column of ``dcols`` added back onto the pixels it was copied from."""
    (n, c), (kh, kw), (ho, wo) = padded_shape[:2], kernel, out_hw
    d = dcols.reshape(c, kh, kw, n, ho, wo).transpose(3, 0, 1, 2, 4, 5)
    return add_windows(d, stride, padded_shape)


def conv2d(x: Array, w: Array, b: Array | None = None, stride: Pair = 1, padding: Padding = 0) -> tuple[Array, tuple]:
    """``conv2d_naive`` as one matrix product: ``y = w.reshape(O, -1) @ im2col(xp) + b``."""
    stride, (o, _, kh, kw) = pair(stride), w.shape
    xp = pad(x, padding)
    cols = im2col(xp, (kh, kw), stride)
    n, (ho, wo) = x.shape[0], out_size(x.shape[2], x.shape[3], (kh, kw), stride, padding)
    y = w.reshape(o, -1) @ cols  # (O, N*Ho*Wo)
    if b is not None:
        y = y + b[:, None]
    return y.reshape(o, n, ho, wo).transpose(1, 0, 2, 3), (cols, xp.shape, w, b, stride, padding)


def conv2d_backward(dy: Array, cache: tuple) -> tuple[Array, Array, Array | None]:
    """With ``g = dy`` as an (O, N*Ho*Wo) matrix and ``W = w.reshape(O, -1)``, as for Dense::

        dW = g @ cols.T      db = g summed over its columns      dcols = W.T @ g      dx = col2im(dcols)

    (``dx`` cropped to the unpadded input).
    """
    cols, padded_shape, w, b, stride, padding = cache
    n, o, ho, wo = dy.shape
    g = dy.transpose(1, 0, 2, 3).reshape(o, -1)
    dw = (g @ cols.T).reshape(w.shape)
    dcols = w.reshape(o, -1).T @ g
    dx = unpad(col2im(dcols, w.shape[2:], stride, padded_shape, (ho, wo)), padding)
    return dx, dw, None if b is None else g.sum(axis=1)


# --- pooling ---------------------------------------------------------------------------------------


def max_pool2d(x: Array, kernel_size: Pair, stride: Pair | None = None, padding: Padding = 0) -> tuple[Array, tuple]:
    """``y[n, c, r, s] = max`` of the window at output pixel (r, s); padding is -inf.

    ``stride`` defaults to ``kernel_size`` (torch's default).
    """
    kernel = pair(kernel_size)
    stride = kernel if stride is None else pair(stride)
    xp = pad(x, padding, -np.inf)
    win = windows(xp, kernel, stride)  # (N, C, kh, kw, Ho, Wo)
    flat = win.reshape(*win.shape[:2], -1, *win.shape[4:])  # (N, C, kh*kw, Ho, Wo)
    arg = flat.argmax(axis=2)  # the first max in row-major window order, as torch
    y = np.take_along_axis(flat, arg[:, :, None], axis=2)[:, :, 0]
    return y, (arg, win.shape, xp.shape, stride, padding)


def max_pool2d_backward(dy: Array, cache: tuple) -> Array:
    """Each output's gradient goes to the one input that was the max; overlapping windows add up."""
    arg, win_shape, padded_shape, stride, padding = cache
    d = np.zeros((*win_shape[:2], win_shape[2] * win_shape[3], *win_shape[4:]), dtype=dy.dtype)
    np.put_along_axis(d, arg[:, :, None], dy[:, :, None], axis=2)
    return unpad(add_windows(d.reshape(win_shape), stride, padded_shape), padding)


def avg_pool2d(x: Array, kernel_size: Pair, stride: Pair | None = None, padding: Padding = 0) -> tuple[Array, tuple]:
    """``y[n, c, r, s] = mean`` of the window at output pixel (r, s); the padding zeros count
    (torch's ``count_include_pad=True``)."""
    kernel = pair(kernel_size)
    stride = kernel if stride is None else pair(stride)
    xp = pad(x, padding)
    win = windows(xp, kernel, stride)
    return win.mean(axis=(2, 3)), (win.shape, xp.shape, stride, padding)


def avg_pool2d_backward(dy: Array, cache: tuple) -> Array:
    """Every input of a window gets ``dy / (kh*kw)``; overlapping windows add up."""
    win_shape, padded_shape, stride, padding = cache
    kh, kw = win_shape[2:4]
    d = np.broadcast_to(dy[:, :, None, None] / (kh * kw), win_shape)
    return unpad(add_windows(d, stride, padded_shape), padding)
