"""Slow, obviously-correct loop versions of conv, max pooling and LRN.

FOR TESTS AND TEACHING ONLY. Nothing in the library calls these on a hot path:
they are plain nested Python loops (over the batch, the channels and every
output pixel) and are thousands of times slower than the vectorised ops in
``conv.py``, ``pool.py`` and ``lrn.py``. They exist so that

* a student can read each formula straight off the code, one loop per index;
* the test-suite can check the fast ops against an implementation that shares
  none of their tricks (no im2col, no strides, no scatter-adds, no cumulative
  sums), on small inputs.

What each one checks (as a reference for):

    conv2d_loops              conv2d_forward: cross-correlation, stride, zero
                              padding, bias, groups (AlexNet's two towers).
    conv2d_backward_loops     conv2d_backward: dx, dw, db.
    maxpool2d_loops           maxpool2d_forward (overlapping windows, no padding).
    maxpool2d_backward_loops  maxpool2d_backward: gradient to the FIRST maximum
                              of each window in row-major order (as PyTorch),
                              summed where windows overlap.
    lrn_loops                 lrn_forward: the paper's local response norm.
    lrn_backward_loops        lrn_backward.

All functions take NumPy or CuPy arrays (converted with ``to_numpy``), compute
in float64 and return NumPy arrays with the dtype of the input they are the
output / gradient of. They never modify their inputs. Argument checking is
minimal (these trust their caller): only a wrong ``ndim`` raises ValueError.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import to_numpy

__all__ = [
    "conv2d_loops",
    "conv2d_backward_loops",
    "maxpool2d_loops",
    "maxpool2d_backward_loops",
    "lrn_loops",
    "lrn_backward_loops",
]


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 2) -> (3, 2)``."""
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _check_ndim(func: str, name: str, a: np.ndarray, ndim: int) -> None:
    if a.ndim != ndim:
        raise ValueError(f"{func}: {name} must be {ndim}-D, got shape {a.shape}")


def _lrn_window(c: int, n: int, num_channels: int) -> range:
    """Channels summed for output channel ``c``: ``c - n//2 .. c + (n-1)//2``, clipped."""
    lo = max(0, c - n // 2)
    hi = min(num_channels - 1, c + (n - 1) // 2)
    return range(lo, hi + 1)


# ---------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------


def conv2d_loops(
    x: Any,
    w: Any,
    b: Any | None,
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
    groups: int = 1,
) -> np.ndarray:
    """2-D convolution (cross-correlation, no kernel flip), one output number at a time.

    Shapes:
        x    (N, C_in, H, W)
        w    (C_out, C_in/groups, KH, KW)
        b    (C_out,) or None
        out  (N, C_out, OH, OW),  OH = (H + 2*ph - KH) // sh + 1,  OW likewise.

    With ``xp`` = x zero-padded by ``ph`` rows and ``pw`` columns on each side,
    ``Cg = C_in / groups`` input channels and ``Og = C_out / groups`` output
    channels per group, output channel ``o`` belongs to group ``g = o // Og`` and
    sees only input channels ``g*Cg .. (g+1)*Cg - 1``:

        out[n, o, i, j] = b[o] + sum_{c < Cg, p < KH, q < KW}
                          w[o, c, p, q] * xp[n, g*Cg + c, i*sh + p, j*sw + q]
    """
    x = to_numpy(x)
    w = to_numpy(w)
    _check_ndim("conv2d_loops", "x", x, 4)
    _check_ndim("conv2d_loops", "w", w, 4)
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    N, C_in, H, W = x.shape
    C_out, Cg, KH, KW = w.shape
    Og = C_out // groups  # output channels per group
    OH = (H + 2 * ph - KH) // sh + 1
    OW = (W + 2 * pw - KW) // sw + 1

    xpad = np.zeros((N, C_in, H + 2 * ph, W + 2 * pw))
    xpad[:, :, ph : ph + H, pw : pw + W] = x
    w64 = w.astype(np.float64)
    b64 = None if b is None else to_numpy(b).astype(np.float64)

    out = np.zeros((N, C_out, OH, OW))
    for n in range(N):
        for o in range(C_out):
            g = o // Og
            first = g * Cg  # first input channel of this group
            for i in range(OH):
                for j in range(OW):
                    # the window this output pixel sees: (Cg, KH, KW)
                    window = xpad[n, first : first + Cg, i * sh : i * sh + KH, j * sw : j * sw + KW]
                    total = np.sum(window * w64[o])
                    if b64 is not None:
                        total += b64[o]
                    out[n, o, i, j] = total
    return out.astype(x.dtype)


def conv2d_backward_loops(
    dout: Any,
    x: Any,
    w: Any,
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
    groups: int = 1,
    has_bias: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv2d_loops`, by walking the same loops and adding up.

    Shapes: dout (N, C_out, OH, OW); returns dx like x, dw like w, db (C_out,)
    (or None when ``has_bias`` is False; db has w's dtype).

    Each output number ``out[n, o, i, j]`` was ``b[o] + sum(w[o] * window)``,
    so its upstream gradient ``d = dout[n, o, i, j]`` flows back as

        db[o]     += d
        dw[o]     += d * window                      (window of xp, shape (Cg, KH, KW))
        dxp[window position] += d * w[o]

    and dx is dxp with the padding cut off (padding is a constant, its gradient
    is dropped).
    """
    dout = to_numpy(dout)
    x = to_numpy(x)
    w = to_numpy(w)
    _check_ndim("conv2d_backward_loops", "dout", dout, 4)
    _check_ndim("conv2d_backward_loops", "x", x, 4)
    _check_ndim("conv2d_backward_loops", "w", w, 4)
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    N, C_in, H, W = x.shape
    C_out, Cg, KH, KW = w.shape
    Og = C_out // groups
    OH, OW = dout.shape[2], dout.shape[3]

    xpad = np.zeros((N, C_in, H + 2 * ph, W + 2 * pw))
    xpad[:, :, ph : ph + H, pw : pw + W] = x
    w64 = w.astype(np.float64)
    d64 = dout.astype(np.float64)

    dxpad = np.zeros_like(xpad)
    dw = np.zeros(w.shape)
    db = np.zeros(C_out)
    for n in range(N):
        for o in range(C_out):
            g = o // Og
            first = g * Cg
            for i in range(OH):
                for j in range(OW):
                    d = d64[n, o, i, j]
                    rows = slice(i * sh, i * sh + KH)
                    cols = slice(j * sw, j * sw + KW)
                    chans = slice(first, first + Cg)
                    db[o] += d
                    dw[o] += d * xpad[n, chans, rows, cols]
                    dxpad[n, chans, rows, cols] += d * w64[o]

    dx = dxpad[:, :, ph : ph + H, pw : pw + W]
    return (
        dx.astype(x.dtype),
        dw.astype(w.dtype),
        db.astype(w.dtype) if has_bias else None,
    )


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------


def maxpool2d_loops(
    x: Any, size: int | tuple[int, int] = 3, stride: int | tuple[int, int] = 2
) -> np.ndarray:
    """Max pooling without padding, one window at a time.

    Shapes: x (N, C, H, W) -> out (N, C, OH, OW), OH = (H - KH) // sh + 1, OW likewise.

        out[n, c, i, j] = max_{p < KH, q < KW} x[n, c, i*sh + p, j*sw + q]

    With stride < size (AlexNet: size 3, stride 2) neighbouring windows overlap.
    """
    x = to_numpy(x)
    _check_ndim("maxpool2d_loops", "x", x, 4)
    KH, KW = _pair(size)
    sh, sw = _pair(stride)
    N, C, H, W = x.shape
    OH = (H - KH) // sh + 1
    OW = (W - KW) // sw + 1

    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    window = x[n, c, i * sh : i * sh + KH, j * sw : j * sw + KW]
                    out[n, c, i, j] = window.max()
    return out


def maxpool2d_backward_loops(
    dout: Any, x: Any, size: int | tuple[int, int] = 3, stride: int | tuple[int, int] = 2
) -> np.ndarray:
    """Gradient of :func:`maxpool2d_loops` with respect to x.

    Shapes: dout (N, C, OH, OW), x (N, C, H, W) -> dx (N, C, H, W), x's dtype.

    The max of a window depends only on the entry that holds it, with slope 1,
    so each window's ``dout[n, c, i, j]`` goes, whole, to that entry:

        dx[n, c, i*sh + p*, j*sw + q*] += dout[n, c, i, j]

    where ``(p*, q*)`` is the FIRST maximum of the window scanning rows top to
    bottom, each row left to right (ties: the earlier one wins, as in PyTorch).
    Overlapping windows that pick the same entry add their gradients.
    """
    dout = to_numpy(dout)
    x = to_numpy(x)
    _check_ndim("maxpool2d_backward_loops", "dout", dout, 4)
    _check_ndim("maxpool2d_backward_loops", "x", x, 4)
    KH, KW = _pair(size)
    sh, sw = _pair(stride)
    N, C, H, W = x.shape
    OH, OW = dout.shape[2], dout.shape[3]

    dx = np.zeros((N, C, H, W))
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    # find the first maximum in row-major order: a strict ">"
                    # means a later equal value never replaces an earlier one
                    best_p, best_q = 0, 0
                    best = x[n, c, i * sh, j * sw]
                    for p in range(KH):
                        for q in range(KW):
                            value = x[n, c, i * sh + p, j * sw + q]
                            if value > best:
                                best, best_p, best_q = value, p, q
                    dx[n, c, i * sh + best_p, j * sw + best_q] += dout[n, c, i, j]
    return dx.astype(x.dtype)


# ---------------------------------------------------------------------------
# local response normalization
# ---------------------------------------------------------------------------


def lrn_loops(
    x: Any, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75
) -> np.ndarray:
    """Local response normalization across channels (paper, section 3.3).

    Shapes: x (N, C, ...) with ndim >= 2, channels on axis 1 -> out like x.

        D_c   = k + alpha * sum_{c' in window(c)} x_{c'}^2
        out_c = x_c / D_c^beta

    window(c) = c - n//2 .. c + (n-1)//2, clipped to 0 .. C-1 (odd n: the
    paper's c - n/2 .. c + n/2; even n: PyTorch's window). Everything happens
    at one position (n, h, w) at a time; here the loops are over the channel
    and its window, and the other axes are handled together by NumPy.
    alpha multiplies the plain SUM (PyTorch's ``alpha`` is ``n`` times this).
    """
    x = to_numpy(x)
    if x.ndim < 2:
        raise ValueError(f"lrn_loops: x must have ndim >= 2 (channels on axis 1), got {x.shape}")
    x64 = x.astype(np.float64)
    C = x.shape[1]

    out = np.zeros_like(x64)
    for c in range(C):
        sum_sq = np.zeros_like(x64[:, c])
        for c2 in _lrn_window(c, n, C):
            sum_sq += x64[:, c2] ** 2
        D = k + alpha * sum_sq
        out[:, c] = x64[:, c] / D**beta
    return out.astype(x.dtype)


def lrn_backward_loops(
    dout: Any, x: Any, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75
) -> np.ndarray:
    """Gradient of :func:`lrn_loops` with respect to x.

    Shapes: dout and x (N, C, ...) -> dx like x, x's dtype.

    Derivation. With ``D_i = k + alpha * sum_{c in window(i)} x_c^2`` and
    ``out_i = x_i * D_i^(-beta)``, output ``i`` depends on ``x_j`` directly when
    ``j == i`` and through ``D_i`` whenever ``j`` is in window(i), where
    ``dD_i/dx_j = 2 alpha x_j``. By the product and chain rules

        d out_i / d x_j = [i == j] * D_i^(-beta)
                          - beta * x_i * D_i^(-beta-1) * 2 alpha x_j * [j in window(i)]

    and summing over every output i weighted by its upstream gradient:

        dx_j = dout_j * D_j^(-beta)
               - 2 alpha beta x_j * sum_{i : j in window(i)} dout_i * x_i * D_i^(-beta-1)

    (For even n the windows are not symmetric, so "i such that j is in
    window(i)" is not window(j); the loop below walks i and then window(i),
    which needs no such inversion.)
    """
    dout = to_numpy(dout)
    x = to_numpy(x)
    if x.ndim < 2:
        raise ValueError(
            f"lrn_backward_loops: x must have ndim >= 2 (channels on axis 1), got {x.shape}"
        )
    if dout.ndim != x.ndim:
        raise ValueError(
            f"lrn_backward_loops: dout must have the ndim of x ({x.ndim}), got {dout.shape}"
        )
    x64 = x.astype(np.float64)
    d64 = dout.astype(np.float64)
    C = x.shape[1]

    # D_i for every channel, exactly as in the forward pass
    D = np.zeros_like(x64)
    for i in range(C):
        for c in _lrn_window(i, n, C):
            D[:, i] += x64[:, c] ** 2
    D = k + alpha * D

    dx = np.zeros_like(x64)
    for i in range(C):
        # direct term: out_i = x_i * D_i^-beta
        dx[:, i] += d64[:, i] * D[:, i] ** (-beta)
        # through D_i: every x_j in window(i) moved D_i
        common = d64[:, i] * x64[:, i] * D[:, i] ** (-beta - 1)
        for j in _lrn_window(i, n, C):
            dx[:, j] -= 2 * alpha * beta * x64[:, j] * common
    return dx.astype(x.dtype)
