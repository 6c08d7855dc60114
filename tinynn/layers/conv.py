"""2-D convolution (cross-correlation, as torch.nn.Conv2d) by im2col and one matrix product."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import init as initializers
from ..checks import check_int
from ..textbook import conv as textbook
from . import _im2col as im
from .base import Layer, Shape, register_layer


def conv_padding(padding: object, kernel: tuple[int, int], stride: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for an int, a pair, ``"valid"`` or ``"same"`` (stride 1 only).

    ``"same"`` pads ``k - 1`` in total per axis, the odd one at the bottom/right, as torch does.
    """
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        if stride != (1, 1):
            raise ValueError(f"Conv2D: padding='same' needs stride 1, got stride={stride}")
        (kh, kw) = kernel
        return (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2
    if isinstance(padding, str):
        raise ValueError(f"Conv2D: padding must be an integer, a pair, 'valid' or 'same', got {padding!r}")
    ph, pw = im.pair(padding, "Conv2D: padding", minimum=0)
    return ph, ph, pw, pw


@register_layer
class Conv2D(Layer):
    """2-D cross-correlation of NCHW images, as ``torch.nn.Conv2d`` (no dilation or groups).

    ``y[n, o, r, c] = b[o] + sum_{ch, i, j} w[o, ch, i, j] * xp[n, ch, r*sh + i, c*sw + j]``, with
    ``xp`` the zero-padded input; ``w`` is (out_channels, in_channels, kh, kw) and ``b`` is
    (out_channels,), torch's layouts. Output size per axis: ``(H + pads - kh) // sh + 1``.

    im2col turns this into one matrix product. Column (r, c, n) of ``cols`` is the receptive field of
    output pixel (r, c) of image n, unrolled in the same (ch, i, j) order as a row of ``w``::

                       cols: (C*kh*kw) x (Ho*Wo*N)                 y: O x (Ho*Wo*N)
        w: O x (C*kh*kw)  [ xp[0, 0+0, 0+0]  xp[0, 0+0, 1+0] ... ]
        [ w[0,0,0,0] ...]  [ xp[0, 0+0, 0+1]  xp[0, 0+0, 1+1] ... ]   =  [ y[0, 0, 0]  y[0, 0, 1] ... ]
        [ w[1,0,0,0] ...]  [      ...              ...            ]      [ y[1, 0, 0]  ...          ]
                           [ xp[C-1, 0+kh-1, 0+kw-1]          ... ]

    so ``y = w.reshape(O, -1) @ cols + b``. Backward, for ``g = dL/dy`` as an O x (Ho*Wo*N) matrix:
    ``dL/dw = g @ cols.T``, ``dL/db = g`` summed over its columns, ``dL/dcols = w.T @ g``, and col2im
    adds every column of ``dL/dcols`` back onto the pixels it was copied from: ``dL/dx``.

    The optimised version of :func:`tinynn.textbook.conv.conv2d` (and of the loops of
    ``conv2d_naive``); ``fast=False`` runs ``conv2d`` instead.

    Inside, arrays are (C, H, W, N) (batch innermost; see ``_im2col``); the output is an NCHW view.
    In eval mode ``cols`` is built in bands of output rows, at most ``INFERENCE_COLS`` numbers at once.
    Default init as Dense: ``w_init="he_uniform"``, ``b_init="zeros"``; initializers get the fans
    ``(in_channels*kh*kw, out_channels*kh*kw)``, torch's.
    """

    INFERENCE_COLS = 2**21
    """Most numbers of the im2col matrix held at once in eval mode (8 MiB in float32)."""

    cache = ("_in_shape", "_xc")  # (and _cols, None when the forward built its columns in bands)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        bias: bool = True,
        w_init: str | initializers.Initializer = "he_uniform",
        b_init: str | initializers.Initializer = "zeros",
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", where="Conv2D")
        self.out_channels = check_int(out_channels, "out_channels", where="Conv2D")
        self.kernel_size = im.pair(kernel_size, "Conv2D: kernel_size")
        self.stride = im.pair(stride, "Conv2D: stride")
        self.pads = conv_padding(padding, self.kernel_size, self.stride)
        self.padding = padding if isinstance(padding, str) else (self.pads[0], self.pads[2])
        self.bias = bool(bias)
        try:
            w_init, b_init = initializers.get(w_init), initializers.get(b_init)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from None
        # torch's rule for w (out, in, kh, kw): each output sees in*kh*kw inputs, each input feeds out*kh*kw
        receptive = self.kernel_size[0] * self.kernel_size[1]
        fans = (self.in_channels * receptive, self.out_channels * receptive)
        self.params["w"] = w_init((self.out_channels, self.in_channels, *self.kernel_size), np.float32, fans)
        if self.bias:
            self.params["b"] = b_init((self.out_channels,), np.float32, fans)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    @classmethod
    def param_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        c_in = check_int(config.get("in_channels"), "in_channels", where="Conv2D")
        c_out = check_int(config.get("out_channels"), "out_channels", where="Conv2D")
        kh, kw = im.pair(config.get("kernel_size"), "Conv2D: kernel_size")
        w = (c_out, c_in, kh, kw)
        return {"w": w, "b": (c_out,)} if config.get("bias", True) else {"w": w}

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (t, b, left, r) = self.kernel_size, self.stride, self.pads
        return im.out_size(h, kh, sh, t, b), im.out_size(w, kw, sw, left, r)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self!r} got input of shape {x.shape}; expected (batch, {self.in_channels}, height, width)"
            )
        im.check_fits(self, x.shape, x.shape[2:], self.kernel_size, self.pads)
        w = self.params["w"]
        if not self.fast:
            x = x if x.dtype == w.dtype else x.astype(w.dtype)
            return self._textbook_keep(*textbook.conv2d(x, w, self.params.get("b"), self.stride, self.pads))
        n, c, h, wd = x.shape
        ho, wo = self._out_hw(h, wd)
        (kh, kw), (t, b, left, r) = self.kernel_size, self.pads
        xc = im.to_chwn(x if x.dtype == w.dtype else x.astype(w.dtype))
        self._in_shape = (c, h, wd, n)
        if any(self.pads):
            xc = im.pad(xc, self.pads, 0, self.scratch_exact("xp", (c, h + t + b, wd + left + r, n), w.dtype))
        else:  # e.g. the net's NCHW input: one copy now beats kh*kw strided reads
            xc = im.contiguous(self, "xc", xc)
        out = self.scratch_exact("out", (self.out_channels, ho, wo, n), w.dtype)
        w2 = w.reshape(self.out_channels, -1)
        # Training keeps all of cols for backward. Inference needs none of it afterwards, so it goes
        # in bands of output rows: a 1024-image batch would otherwise build an 80 MB cols for LeNet.
        band = ho if self.training else max(1, min(ho, self.INFERENCE_COLS // (c * kh * kw * wo * n)))
        sh = self.stride[0]
        for r0 in range(0, ho, band):
            rows = min(band, ho - r0)
            cols = self.scratch_exact("cols" if rows == band else "cols_tail", (c, kh, kw, rows, wo, n), w.dtype)
            im.im2col(xc[:, sh * r0 : sh * (r0 + rows - 1) + kh], self.kernel_size, self.stride, (rows, wo), cols)
            np.matmul(w2, cols.reshape(c * kh * kw, -1), out=out[:, r0 : r0 + rows].reshape(self.out_channels, -1))
        self._xc, self._cols = xc, (cols.reshape(c * kh * kw, -1) if band == ho else None)
        if self.bias:
            out.reshape(self.out_channels, -1)[...] += self.params["b"][:, None]
        return im.to_nchw(out)

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        if not self.fast:
            dx, dw, db = textbook.conv2d_backward(grad, self._textbook_cache(grad))
            self._set_grads(dw, db)
            return dx if self.input_grad else None
        self.cached()  # an error naming the layer if forward has not run
        cols, w = self._cols, self.params["w"]
        c, h, wd, n = self._in_shape
        ho, wo = self._out_hw(h, wd)
        (kh, kw), (t, b, left, r) = self.kernel_size, self.pads
        if cols is None:  # the forward ran in eval mode, in bands: build the whole matrix now
            full = self.scratch_exact("cols", (c, kh, kw, ho, wo, n), w.dtype)
            cols = im.im2col(self._xc, self.kernel_size, self.stride, (ho, wo), full).reshape(c * kh * kw, -1)
        if grad.shape != (n, self.out_channels, ho, wo):
            raise ValueError(
                f"{self!r}: backward got gradient of shape {grad.shape}; expected {(n, self.out_channels, ho, wo)}"
            )
        g = im.contiguous(self, "g", im.to_chwn(grad)).reshape(self.out_channels, -1)
        # dL/dw as (cols @ g.T).T: OpenBLAS handles this tall-thin shape far better than g @ cols.T.
        dw_t = self.scratch_exact("dw_t", (cols.shape[0], self.out_channels), w.dtype)
        np.matmul(cols, g.T, out=dw_t)
        self.grads["w"].reshape(self.out_channels, -1)[...] = dw_t.T
        if self.bias:
            # The sum over columns as a product with a vector of ones: BLAS beats np.sum here.
            ones = self.scratch_exact("ones", (g.shape[1],), w.dtype)
            ones.fill(1)
            np.matmul(g, ones, out=self.grads["b"])
        if not self.input_grad:
            return None
        dcols = self.scratch_exact("dcols", (c, kh, kw, ho, wo, n), w.dtype)
        np.matmul(w.reshape(self.out_channels, -1).T, g, out=dcols.reshape(c * kh * kw, -1))
        dxp = self.scratch_exact("dxp", (c, h + t + b, wd + left + r, n), w.dtype)
        dxp = im.col2im(dcols, self.kernel_size, self.stride, dxp)
        return im.to_nchw(dxp[:, t : t + h, left : left + wd])

    def output_shape(self, input_shape: Shape) -> Shape:
        n, _, h, w = input_shape
        if h is None or w is None:
            return (n, self.out_channels, None, None)
        return (n, self.out_channels, *self._out_hw(h, w))

    def get_config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
            "bias": self.bias,
        }

    def __repr__(self) -> str:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        extra = "" if (sh, sw) == (1, 1) else f", stride={sh if sh == sw else (sh, sw)}"
        p = self.padding
        if p != (0, 0) and p != "valid":
            extra += f", padding={p[0] if not isinstance(p, str) and p[0] == p[1] else p!r}"
        if not self.bias:
            extra += ", bias=False"
        return f"Conv2D({self.in_channels} -> {self.out_channels}, {kh}x{kw}{extra})"
