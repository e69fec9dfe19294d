"""Max pooling, overlapping or not.

Paper section 3.4: AlexNet pools with windows of size z = 3 every s = 2 pixels,
so neighbouring windows overlap by one pixel (against z = s = 2 this cut top-1
error by 0.4%). Pooling follows LRN in layers 1 and 2 and conv5.

    out[n, c, oh, ow] = max_{0 <= i < KH, 0 <= j < KW} x[n, c, sh*oh + i, sw*ow + j]

with OH = floor((H - KH) / sh) + 1 (likewise OW); no padding. The backward pass
sends each window's gradient to the position of its maximum -- the first one in
row-major order when several entries tie, as PyTorch does -- and where windows
overlap, a pixel that is the maximum of several windows receives the sum.

The max of a 2-D window is taken in two 1-D passes (a max is separable): first
along W, over each row segment of the window, then along H over those row
maxima. Each pass is a loop over the KW (or KH) offsets, comparing whole strided
views of the batch, so nothing loops over pixels. Remembering which offset won
in each pass (``argj`` per row segment, ``argi`` per window) locates the
window's first maximum: the first row holding the window's max, and in that
row its first occurrence. A window holding a NaN gives NaN, as in PyTorch; its
gradient goes to the window's first largest number (PyTorch picks the NaN).
"""

from __future__ import annotations

from typing import Any

from ..backend import get_array_module
from . import _checks

__all__ = ["maxpool2d_forward", "maxpool2d_backward"]


def _take(a: Any, axis: int, start: int, stride: int, count: int) -> Any:
    """The view a[..., start : start + stride*count : stride, ...] along ``axis``."""
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, start + stride * (count - 1) + 1, stride)
    return a[tuple(index)]


def _max_1d(a: Any, axis: int, size: int, stride: int, count: int) -> tuple[Any, Any]:
    """Sliding-window max along one axis: (maxima, offset of the first maximum), int8 offsets."""
    xp = get_array_module(a)
    best = _take(a, axis, 0, stride, count).copy()
    arg = xp.zeros(best.shape, dtype=xp.int8)
    for d in range(1, size):
        v = _take(a, axis, d, stride, count)
        # arg <- d where v beats the best so far (strictly: on ties the earlier offset
        # stays). Written as arithmetic: a masked assignment is ~10x slower on random masks.
        xp.maximum(arg, (v > best).view(xp.int8) * xp.int8(d), out=arg)
        xp.maximum(best, v, out=best)  # maximum propagates NaNs
    return best, arg


def _unmax_1d(dout: Any, arg: Any, axis: int, size: int, stride: int, in_len: int) -> Any:
    """Adjoint of :func:`_max_1d`: route dout to the winning offset, summing overlaps."""
    xp = get_array_module(dout)
    shape = list(dout.shape)
    shape[axis] = in_len
    din = xp.zeros(shape, dtype=dout.dtype)
    count = dout.shape[axis]
    routed = xp.empty_like(dout)  # one buffer reused for every offset
    for d in range(size):
        xp.multiply(dout, arg == d, out=routed)  # dout where offset d won, else 0
        _take(din, axis, d, stride, count)[...] += routed
    return din


def maxpool2d_forward(x: Any, size: Any = 3, stride: Any = 2) -> tuple[Any, tuple]:
    """Max pooling forward.

    Args:
        x: input (N, C, H, W).
        size: window (KH, KW), an int or a pair; the paper uses 3.
        stride: step (sh, sw), an int or a pair; the paper uses 2 (overlapping windows).

    Returns:
        out (N, C, OH, OW), OH = floor((H - KH)/sh) + 1, and the cache for
        :func:`maxpool2d_backward`.
    """
    fn = "maxpool2d_forward"
    _checks.floating(x, fn, "x")
    _checks.ndim(x, 4, fn, "x", "(N, C, H, W)")
    kh, kw = _checks.pair(size, fn, "size", 1)
    sh, sw = _checks.pair(stride, fn, "stride", 1)
    h, w = x.shape[2:]
    if kh > h or kw > w:
        raise ValueError(
            f"{fn}: window {kh}x{kw} (size={size!r}) is larger than the input {h}x{w}; "
            "use a smaller size or a larger input"
        )
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    rows, argj = _max_1d(x, 3, kw, sw, ow)  # (N, C, H, OW): max over each row segment
    out, argi = _max_1d(rows, 2, kh, sh, oh)  # (N, C, OH, OW): max over those rows
    cache = (x.shape, x.dtype, (kh, kw), (sh, sw), argi, argj)
    return out, cache


def maxpool2d_backward(dout: Any, cache: tuple) -> Any:
    """Max pooling backward: dx[n, c, p, q] = sum of dout over windows whose first max is (p, q).

    Args:
        dout: upstream gradient (N, C, OH, OW).
        cache: from :func:`maxpool2d_forward`.

    Returns:
        dx shaped like x.
    """
    x_shape, x_dtype, (kh, kw), (sh, sw), argi, argj = cache
    _checks.dout_shape(dout, argi.shape, "maxpool2d_backward")
    dout = dout.astype(x_dtype, copy=False)
    drows = _unmax_1d(dout, argi, 2, kh, sh, x_shape[2])  # (N, C, H, OW)
    return _unmax_1d(drows, argj, 3, kw, sw, x_shape[3])  # (N, C, H, W)
