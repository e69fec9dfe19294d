"""Max pooling, overlapping or not.

Paper section 3.4: AlexNet pools with windows of size z = 3 every s = 2 pixels,
so neighbouring windows overlap by one pixel (against z = s = 2 this cut top-1
error by 0.4%). Pooling follows LRN in layers 1 and 2 and conv5.

    out[n, c, oh, ow] = max_{0 <= i < KH, 0 <= j < KW} x[n, c, sh*oh + i, sw*ow + j]

with OH = floor((H - KH) / sh) + 1 (likewise OW); no padding. The backward pass
sends each window's gradient to the position of its maximum -- the first one in
row-major order when several entries tie, as PyTorch does -- and where windows
overlap, a pixel that is the maximum of several windows receives the sum:

    dx[n, c, sh*oh + i, sw*ow + j] += dout[n, c, oh, ow]   where (i, j) = argmax of window (oh, ow)

How it is computed, with no loop over pixels:
- A 2-D max is two 1-D maxes: along W over each row segment of a window
  (``rows``, remembering the winning column ``argj``), then along H over those
  row maxima. Each is a loop over the window offsets comparing whole arrays.
- Comparing strictly (``>``) keeps the earlier offset on ties, so the H pass
  finds the first row that holds the window's max, and ``argj`` its first
  column there: the first maximum in row-major order. Its offset in the
  window, ``code = i*KW + j``, is all the backward pass needs.
- The backward pass loops over the KH*KW offsets: for each, the windows whose
  code is that offset add their gradient onto the strided view of dx at it.

A window holding a NaN gives NaN, as in PyTorch. Its code is what the two
passes had found when a NaN took over: the first maximum of the rows above the
first row that holds a NaN or, when that is the window's first row, of the
entries left of its first NaN (offset 0 if there are none). So the gradient goes
to a number, though not always the window's largest (for [[1, 2], [3, nan]] it
goes to the 2), or to a NaN in the window's first entry; PyTorch sends it to the NaN.

Ceil mode (``ceil_mode=True``; Caffe's pooling always rounds this way, PyTorch and
ONNX have it as an option) rounds the output size up instead, keeping one more window
where the last one would hang over the edge:

    OH = ceil((H - KH) / sh) + 1,   minus 1 if that last window would start at or past H:
                                    (OH - 1) * sh >= H  (PyTorch's rule, no padding)

(:func:`pooled_size`). A window that runs past the end sees only the pixels that are
there. It is computed as the floor-mode code on x padded at the end of H and W with
-inf up to ((OH - 1) * sh + KH) x ((OW - 1) * sw + KW): -inf never beats an entry
(``>`` is false, ``maximum`` keeps the entry, a NaN included), so values, codes and the
NaN rule above are those of the truncated window, and no code points into the padding
(each window starts inside the image). The cache holds x's own shape; the backward pass
sees from the codes' shape that windows hang over and drops the padding's rows and
columns from dx. Nothing is padded when the windows fit.

On a GPU the forward and the backward pass are one CUDA kernel each
(:mod:`.cuda_kernels`), with the same results and caches; ``MINIALEXNET_KERNELS=0``
runs this code there too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import get_array_module
from . import _checks

try:  # the GPU kernels; absent from student copies (instructor-only, like conv's)
    from . import cuda_kernels
except ImportError:  # pragma: no cover - only in a released student copy
    cuda_kernels = None  # type: ignore[assignment]

__all__ = ["maxpool2d_forward", "maxpool2d_backward", "pooled_size"]


def pooled_size(size: int, window: int, stride: int, ceil_mode: bool = False) -> int:
    """The output length of pooling ``size`` pixels with ``window`` every ``stride``, no padding.

    Floor mode: ``(size - window) // stride + 1``. Ceil mode: ``ceil((size - window) /
    stride) + 1``, less one where that last window would start at or past the end,
    ``(out - 1) * stride >= size`` (PyTorch's rule). That can only happen when
    ``stride > window``; Caffe, without padding, would keep such an empty window.
    No checks: a window larger than ``size`` gives what the formula gives.
    """
    if not ceil_mode:
        return (size - window) // stride + 1
    out = -(-(size - window) // stride) + 1  # ceil division
    if (out - 1) * stride >= size:
        out -= 1
    return out


def _check_ceil_mode(ceil_mode: Any, fn: str) -> bool:
    if not isinstance(ceil_mode, (bool, np.bool_)):
        got = f"{ceil_mode!r} ({type(ceil_mode).__name__})"
        raise TypeError(f"{fn}: ceil_mode must be True or False, got {got}")
    return bool(ceil_mode)


def _pad_end(x: Any, hw: tuple[int, int]) -> Any:
    """x grown at the end of H and W to ``hw`` with -inf, which no entry (nor NaN) loses to."""
    h, w = x.shape[2:]
    if (h, w) == hw:
        return x
    xp = get_array_module(x)
    padded = xp.full_like(x, -xp.inf, shape=(*x.shape[:2], *hw))
    padded[:, :, :h, :w] = x
    return padded


def _covered(x_shape: tuple, size: tuple[int, int], stride: tuple[int, int], out_hw: Any) -> tuple:
    """x_shape grown to the pixels the windows cover: more than x in ceil mode, else x_shape."""
    grown = [max(x_shape[2 + a], (out_hw[a] - 1) * stride[a] + size[a]) for a in (0, 1)]
    return (*x_shape[:2], *grown)


def _offset_dtype(xp: Any, count: int) -> Any:
    """The smallest signed integer type that holds 0 .. count-1 (int8 for AlexNet's 3x3)."""
    for dtype in (xp.int8, xp.int16, xp.int32):
        if count - 1 <= xp.iinfo(dtype).max:
            return dtype
    return xp.int64


def _window(a: Any, i: int, j: int, stride: tuple[int, int], out_hw: tuple[int, int]) -> Any:
    """The view a[..., i + sh*oh, j + sw*ow] for all (oh, ow): offset (i, j) of every window."""
    (sh, sw), (oh, ow) = stride, out_hw
    return a[..., i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]


def _keep_first_max(best: Any, arg: Any, v: Any, candidate: Any) -> None:
    """In place: ``arg <- candidate`` where ``v > best`` (strictly), then ``best <- max(best, v)``.

    Candidates grow with the offset, so ``max(arg, [v > best] * candidate)`` is that
    update written as arithmetic: a masked assignment is ~10x slower on random masks.
    """
    xp = get_array_module(best)
    xp.maximum(arg, (v > best).astype(arg.dtype) * candidate, out=arg)
    xp.maximum(best, v, out=best)  # maximum propagates NaNs


def maxpool2d_forward(
    x: Any, size: Any = 3, stride: Any = 2, ceil_mode: bool = False
) -> tuple[Any, tuple]:
    """Max pooling forward.

    Args:
        x: input (N, C, H, W).
        size: window (KH, KW), an int or a pair; the paper uses 3.
        stride: step (sh, sw), an int or a pair; the paper uses 2 (overlapping windows).
        ceil_mode: round the output size up (Caffe, and PyTorch's/ONNX's option): a last
            window that hangs over the edge pools the pixels that are there.

    Returns:
        out (N, C, OH, OW), OH = floor((H - KH)/sh) + 1 (ceil mode: ceil(...) + 1, less
        one if (OH - 1)*sh >= H; :func:`pooled_size`), and the cache for
        :func:`maxpool2d_backward`.

    On a GPU: one CUDA kernel (:mod:`.cuda_kernels`; ``MINIALEXNET_KERNELS=0``: this code).
    """
    fn = "maxpool2d_forward"
    _checks.floating(x, fn, "x")
    _checks.ndim(x, 4, fn, "x", "(N, C, H, W)")
    kh, kw = _checks.pair(size, fn, "size", 1)
    sh, sw = _checks.pair(stride, fn, "stride", 1)
    ceil_mode = _check_ceil_mode(ceil_mode, fn)
    x_shape = tuple(x.shape)
    h, w = x_shape[2:]
    if kh > h or kw > w:
        raise ValueError(
            f"{fn}: window {kh}x{kw} (size={size!r}) is larger than the input {h}x{w}; "
            "use a smaller size or a larger input"
        )
    oh, ow = pooled_size(h, kh, sh, ceil_mode), pooled_size(w, kw, sw, ceil_mode)
    # ceil mode: -inf at the end where the last windows hang over (see the module docstring)
    x = _pad_end(x, _covered(x_shape, (kh, kw), (sh, sw), (oh, ow))[2:])
    h, w = x.shape[2:]
    if cuda_kernels is not None and cuda_kernels.enabled(x):
        if kh * kw <= cuda_kernels.POOL_WINDOW_MAX:  # int8 codes; larger windows: this code
            out, cache = cuda_kernels.maxpool2d_forward(x, (kh, kw), (sh, sw))
            return out, (x_shape, *cache[1:])
    xp = get_array_module(x)
    code_dtype = _offset_dtype(xp, kh * kw)

    ### BEGIN SOLUTION
    # Along W: rows[n, c, r, ow] = max_j x[n, c, r, sw*ow + j]; argj = the first such j.
    rows = _window(x, 0, 0, (1, sw), (h, ow)).copy()
    argj = xp.zeros(rows.shape, dtype=code_dtype)
    for j in range(1, kw):
        _keep_first_max(rows, argj, _window(x, 0, j, (1, sw), (h, ow)), code_dtype(j))

    # Along H: out = max_i rows[n, c, sh*oh + i, ow]; code = i*KW + argj of the first such row.
    out = _window(rows, 0, 0, (sh, 1), (oh, ow)).copy()
    code = argj[:, :, 0 : sh * (oh - 1) + 1 : sh].copy()
    for i in range(1, kh):
        row_codes = _window(argj, i, 0, (sh, 1), (oh, ow)) + code_dtype(i * kw)
        _keep_first_max(out, code, _window(rows, i, 0, (sh, 1), (oh, ow)), row_codes)
    ### END SOLUTION

    cache = (x_shape, x.dtype, (kh, kw), (sh, sw), code)
    return out, cache


def maxpool2d_backward(dout: Any, cache: tuple) -> Any:
    """Max pooling backward: dx[n, c, p, q] = sum of dout over windows whose first max is (p, q).

    Args:
        dout: upstream gradient (N, C, OH, OW).
        cache: from :func:`maxpool2d_forward`.

    Returns:
        dx shaped like x.

    On a GPU: one CUDA gather (:mod:`.cuda_kernels`; ``MINIALEXNET_KERNELS=0``: this code).
    """
    x_shape, x_dtype, (kh, kw), stride, code = cache
    _checks.dout_shape(dout, code.shape, "maxpool2d_backward")
    covered = _covered(x_shape, (kh, kw), stride, code.shape[2:])
    if covered != tuple(x_shape):  # ceil mode: the gradient of the padded x, cut back to x
        dx = maxpool2d_backward(dout, (covered, x_dtype, (kh, kw), stride, code))
        return get_array_module(dx).ascontiguousarray(dx[:, :, : x_shape[2], : x_shape[3]])
    if cuda_kernels is not None and cuda_kernels.enabled(dout, x_dtype):  # dx has x's dtype
        if kh * kw <= cuda_kernels.POOL_WINDOW_MAX:  # int8 codes; larger windows: this code
            return cuda_kernels.maxpool2d_backward(dout, cache)
    ### BEGIN SOLUTION
    xp = get_array_module(code)
    dout = dout.astype(x_dtype, copy=False)
    dx = xp.zeros_like(dout, shape=x_shape)
    routed = xp.empty_like(dout)  # one buffer, reused for every offset
    for i in range(kh):
        for j in range(kw):
            xp.multiply(dout, code == i * kw + j, out=routed)  # dout where (i, j) won, else 0
            _window(dx, i, j, stride, code.shape[2:])[...] += routed
    return dx
    ### END SOLUTION
