"""Max and average pooling over kh x kw windows of NCHW images (torch's max_pool2d, avg_pool2d)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..textbook import conv as textbook
from . import _im2col as im
from .base import Layer, Shape, register_layer


class _Pool2D(Layer):
    """Shared arguments, checks and shapes. ``stride`` defaults to ``kernel_size``; ``padding`` is
    added on every side and may be at most half the kernel (as torch requires)."""

    fill = 0.0  # value of the padding

    cache: tuple[str, ...] = ("_in_shape",)

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = im.pair(kernel_size, f"{name}: kernel_size")
        self.stride = self.kernel_size if stride is None else im.pair(stride, f"{name}: stride")
        self.padding = im.pair(padding, f"{name}: padding", minimum=0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(
                f"{name}: padding {self.padding} must be at most half of kernel_size {self.kernel_size}"
            )
        self.pads = (self.padding[0], self.padding[0], self.padding[1], self.padding[1])

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return im.out_size(h, kh, sh, ph, ph), im.out_size(w, kw, sw, pw, pw)

    def _check(self, x: np.ndarray) -> np.ndarray:
        """``x`` checked (4-D, larger than the kernel) and as floats."""
        if x.ndim != 4:
            raise ValueError(f"{self!r} got input of shape {x.shape}; expected (batch, channels, height, width)")
        im.check_fits(self, x.shape, x.shape[2:], self.kernel_size, self.pads)
        return x if x.dtype.kind == "f" else x.astype(np.float32)

    def _prepare(self, x: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """Check ``x``; return its padded (C, Hp, Wp, N) view or copy and the output size."""
        x = self._check(x)
        n, c, h, w = x.shape
        self._in_shape = (c, h, w, n)
        xc = im.to_chwn(x)
        if any(self.padding):
            (ph, pw) = self.padding
            xc = im.pad(xc, self.pads, self.fill, self.scratch_exact("xp", (c, h + 2 * ph, w + 2 * pw, n), x.dtype))
        return xc, self._out_hw(h, w)

    def _offsets(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.kernel_size[0]) for j in range(self.kernel_size[1])]

    def _tiles(self) -> bool:
        """Do the windows cover the input exactly once (stride = kernel, no padding, sizes divisible)?"""
        c, h, w, n = self._in_shape
        (kh, kw) = self.kernel_size
        return self.stride == self.kernel_size and not any(self.padding) and h % kh == 0 and w % kw == 0

    def _grad_chwn(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (C, Ho, Wo, N) gradient and a padded (C, Hp, Wp, N) array for dL/dx, zeroed unless
        the windows tile the input (then every entry is written once)."""
        self.cached()  # an error naming the layer if forward has not run
        c, h, w, n = self._in_shape
        ho, wo = self._out_hw(h, w)
        if grad.shape != (n, c, ho, wo):
            raise ValueError(f"{self!r}: backward got gradient of shape {grad.shape}; expected {(n, c, ho, wo)}")
        (ph, pw) = self.padding
        dxp = self.scratch_exact("dxp", (c, h + 2 * ph, w + 2 * pw, n), grad.dtype)
        if not self._tiles():
            dxp.fill(0)
        return im.to_chwn(grad), dxp

    def _crop(self, dxp: np.ndarray) -> np.ndarray:
        c, h, w, n = self._in_shape
        (ph, pw) = self.padding
        return im.to_nchw(dxp[:, ph : ph + h, pw : pw + w])

    def output_shape(self, input_shape: Shape) -> Shape:
        n, c, h, w = input_shape
        return (n, c, *((None, None) if h is None or w is None else self._out_hw(h, w)))

    def get_config(self) -> dict[str, Any]:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding)}

    def __repr__(self) -> str:
        (kh, kw), extra = self.kernel_size, ""
        if self.stride != self.kernel_size:
            extra += f", stride={self.stride[0] if self.stride[0] == self.stride[1] else self.stride}"
        if any(self.padding):
            extra += f", padding={self.padding[0] if self.padding[0] == self.padding[1] else self.padding}"
        return f"{type(self).__name__}({kh}x{kw}{extra})"


@register_layer
class MaxPool2D(_Pool2D):
    """``y[n, c, r, s] = max`` of the window of ``x`` at output pixel (r, s), padding = -inf.

    Backward: each output's gradient goes to the one input that was the max (the first one in
    row-major window order on a tie, as torch); overlapping windows add up.
    Forward is ``kh*kw - 1`` elementwise ``np.maximum`` of the window slices. Backward finds the
    winner by comparing each slice with ``y`` again, in order, skipping outputs already served.
    The optimised version of :func:`tinynn.textbook.conv.max_pool2d` (``fast=False`` runs it).
    """

    fill = -np.inf

    cache = ("_in_shape", "_xp", "_out")

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.fast:
            return self._textbook_keep(*textbook.max_pool2d(self._check(x), self.kernel_size, self.stride,
                                                             self.padding))
        xp, out_hw = self._prepare(x)
        c, _, _, n = self._in_shape
        out = self.scratch_exact("out", (c, *out_hw, n), xp.dtype)
        wins = [im.window(xp, i, j, self.stride, out_hw) for i, j in self._offsets()]
        if len(wins) == 1:
            out[...] = wins[0]
        else:
            np.maximum(wins[0], wins[1], out=out)
        for win in wins[2:]:
            np.maximum(out, win, out=out)
        self._xp, self._out = xp, out  # xp is the previous layer's output (or our padded copy): kept as is
        return im.to_nchw(out)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if not self.fast:
            return textbook.max_pool2d_backward(grad, self._textbook_cache(grad))
        g, dxp = self._grad_chwn(grad)
        out_hw = g.shape[1:3]
        hit = self.scratch_exact("hit", g.shape, np.bool_)
        free = self.scratch_exact("free", g.shape, np.bool_)  # outputs whose max is not found yet
        free.fill(True)
        share = self.scratch_exact("share", g.shape, g.dtype)
        offsets, tiles = self._offsets(), self._tiles()
        for k, (i, j) in enumerate(offsets):
            np.equal(im.window(self._xp, i, j, self.stride, out_hw), self._out, out=hit)
            hit &= free  # a tie: only the first max in the window gets the gradient
            if k < len(offsets) - 1:
                free ^= hit
            target = im.window(dxp, i, j, self.stride, out_hw)
            if tiles:  # each input pixel is in exactly one window: write, no zeroing, no add
                np.multiply(g, hit, out=target)
            else:
                np.multiply(g, hit, out=share)
                target += share
        return self._crop(dxp)


@register_layer
class AvgPool2D(_Pool2D):
    """``y[n, c, r, s] = mean`` of the window at output pixel (r, s); padding zeros count in the mean
    (torch's default ``count_include_pad=True``). Backward: every input in a window gets
    ``g / (kh*kw)``; overlapping windows add up. The optimised version of
    :func:`tinynn.textbook.conv.avg_pool2d` (``fast=False`` runs it)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.fast:
            return self._textbook_keep(*textbook.avg_pool2d(self._check(x), self.kernel_size, self.stride,
                                                             self.padding))
        xp, out_hw = self._prepare(x)
        c, _, _, n = self._in_shape
        out = self.scratch_exact("out", (c, *out_hw, n), xp.dtype)
        for k, (i, j) in enumerate(self._offsets()):
            win = im.window(xp, i, j, self.stride, out_hw)
            if k == 0:
                out[...] = win
            else:
                out += win
        out *= 1.0 / (self.kernel_size[0] * self.kernel_size[1])
        return im.to_nchw(out)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if not self.fast:
            return textbook.avg_pool2d_backward(grad, self._textbook_cache(grad))
        g, dxp = self._grad_chwn(grad)
        share = self.scratch_exact("share", g.shape, g.dtype)
        np.multiply(g, 1.0 / (self.kernel_size[0] * self.kernel_size[1]), out=share)
        tiles = self._tiles()
        for i, j in self._offsets():
            target = im.window(dxp, i, j, self.stride, g.shape[1:3])
            if tiles:
                target[...] = share
            else:
                target += share
        return self._crop(dxp)


@register_layer
class TokenMean(Layer):
    """The mean over the tokens of a sequence: (N, T, C) -> (N, C), ``y[n] = 1/T sum_t x[n, t]``.

    A vision transformer's global average pooling before its classifier head (the alternative to a
    class token). Backward spreads the gradient evenly: ``dL/dx[n, t] = g[n] / T`` for every t.
    """

    cache = ("_shape",)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 3 or x.shape[1] == 0:
            raise ValueError(f"{self!r} got input of shape {x.shape}; expected (batch, time, features) with time >= 1")
        self._shape = x.shape
        return x.mean(axis=1)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        (shape,) = self.cached()
        n, t, c = shape
        if grad.shape != (n, c):
            raise ValueError(f"{self!r}: backward got gradient of shape {grad.shape}; expected {(n, c)}")
        dx = self.scratch_array("dx", shape, grad.dtype)
        dx[...] = (grad / t)[:, None, :]
        return dx

    def output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], input_shape[2])
