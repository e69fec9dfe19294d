"""2-D convolution (cross-correlation, as in every framework) by im2col + matrix products.

Paper section 3.5: AlexNet's five convolutional layers; conv2, conv4 and conv5
see only the maps of their own GPU, which is a convolution with ``groups=2``.

The idea. Gather every KH x KW window of the (padded) input into one column of a
matrix ("im2col"); then a convolution is one matrix product per group:

    col[(c, i, j), (n, oh, ow)] = x_pad[n, c, i + sh*oh, j + sw*ow]
    out[n, o, oh, ow]           = sum_{c, i, j} w[o, c, i, j] * col[(c, i, j), (n, oh, ow)] + b[o]

and its backward is two more products and the adjoint of im2col ("col2im"),
which adds every column entry back onto the input pixel it was copied from:

    dw   = dout_mat @ col.T          db = sum of dout over n, oh, ow
    dcol = w_mat.T @ dout_mat        dx = col2im(dcol)

Shapes: x (N, C, H, W); w (C_out, C/groups, KH, KW); b (C_out,) or None;
out (N, C_out, OH, OW) with OH = floor((H + 2*ph - KH) / sh) + 1 (likewise OW).

im2col copies x once per kernel offset (i, j): a Python loop of KH*KW steps,
each a block copy of the whole batch, so nothing loops over pixels, channels
or batch items. The products are plain 2-D products, one per group (a loop of 1 or
2 steps), with transposes passed as views: BLAS and cuBLAS read a transposed
operand in place, where a batched (3-D) ``matmul`` would first copy it, and CuPy
applies its compute type (TensorFloat-32 with ``backend.set_tf32(True)``) to 2-D
products only. The input is first rearranged "space to depth" so that, even
with a stride, each of those copies reads contiguous rows.

Memory: the column buffer has C*KH*KW rows and N*OH*OW columns (conv1 at batch
128: 363 x 387,200 floats, 0.56 GB). To keep it under ``col_bytes`` (default
256 MiB for NumPy arrays, 1 GiB for CuPy arrays) the batch is processed in
chunks. When the whole batch fits in one buffer, the forward pass keeps the
columns in the cache for the backward pass; otherwise the backward pass
rebuilds them chunk by chunk.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

from ..backend import get_array_module
from . import _checks

try:  # the GPU gathers; absent from student copies (instructor-only: they solve im2col)
    from . import cuda_kernels
except ImportError:  # pragma: no cover - only in a released student copy
    cuda_kernels = None  # type: ignore[assignment]

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "im2col",
    "col2im",
    "space_to_depth",
    "depth_to_space",
    "DEFAULT_COL_BYTES",
    "DEFAULT_GPU_COL_BYTES",
]

DEFAULT_COL_BYTES = 256 * 2**20
"""Default bound on the im2col buffer of NumPy arrays, in bytes (256 MiB). Pass ``col_bytes``
to change it."""

DEFAULT_GPU_COL_BYTES = 2**30
"""Default bound on the im2col buffer of CuPy arrays (1 GiB): the paper model's conv1 and
conv2 columns at batch 128 (0.56 and 0.90 GB with both towers in one network) fit in one
buffer, so backward reuses the forward's columns instead of rebuilding them chunk by chunk,
and the model still trains within the paper's 3 GB per tower (``tests/test_memory.py``)."""


def space_to_depth(x: Any, pad: tuple[int, int], stride: tuple[int, int]) -> Any:
    """Zero-pad x (N, C, H, W) and split each spatial axis by the stride.

    Returns ``xs`` of shape (C, N, sh, sw, Hs, Ws), Hs = ceil((H + 2*ph) / sh), with
    ``xs[c, n, r, q, a, b] = x_pad[n, c, sh*a + r, sw*b + q]``. A window offset
    (i, j) then reads the contiguous block ``xs[:, :, i % sh, j % sw, i//sh:, j//sw:]``
    instead of every sh-th pixel, which is what makes im2col and col2im fast for
    strided convolutions (conv1). With stride 1 it is only the padding.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (ph, pw), (sh, sw) = pad, stride
    hs, ws = -(-(h + 2 * ph) // sh), -(-(w + 2 * pw) // sw)  # ceil division
    canvas = xp.zeros_like(x, shape=(c, n, hs * sh, ws * sw))
    canvas[:, :, ph : ph + h, pw : pw + w] = x.transpose(1, 0, 2, 3)
    xs = canvas.reshape(c, n, hs, sh, ws, sw).transpose(0, 1, 3, 5, 2, 4)
    return xs if sh == sw == 1 else xs.copy()  # (.copy keeps the array's type and device)


def depth_to_space(xs: Any, pad: tuple[int, int], hw: tuple[int, int]) -> Any:
    """The inverse of :func:`space_to_depth`: (C, N, sh, sw, Hs, Ws) -> (N, C, H, W), unpadded."""
    c, n, sh, sw, hs, ws = xs.shape
    (ph, pw), (h, w) = pad, hw
    canvas = xs.transpose(0, 1, 4, 2, 5, 3).reshape(c, n, hs * sh, ws * sw)
    return canvas[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3).copy()


def im2col(xs: Any, kernel: tuple[int, int], out_hw: tuple[int, int]) -> Any:
    """Gather the sliding windows of the input into columns.

    ``xs`` is the padded input in the (C, N, sh, sw, Hs, Ws) layout of
    :func:`space_to_depth`. Returns ``col`` of shape (C, KH, KW, N, OH, OW), a
    (C*KH*KW, N*OH*OW) matrix once reshaped, with

        col[c, i, j, n, oh, ow] = x_pad[n, c, i + sh*oh, j + sw*ow].

    One copy per kernel offset (i, j): KH*KW Python steps, each moving the whole batch.
    On a GPU: one CUDA gather (:mod:`.cuda_kernels`; ``MINIALEXNET_KERNELS=0``: this code).
    """
    if cuda_kernels is not None and cuda_kernels.enabled(xs):
        return cuda_kernels.im2col(xs, kernel, out_hw)
    ### BEGIN SOLUTION
    xp = get_array_module(xs)
    c, n, sh, sw = xs.shape[:4]
    (kh, kw), (oh, ow) = kernel, out_hw
    col = xp.empty_like(xs, shape=(c, kh, kw, n, oh, ow))
    for i in range(kh):
        for j in range(kw):
            a, r, bb, q = i // sh, i % sh, j // sw, j % sw
            col[:, i, j] = xs[:, :, r, q, a : a + oh, bb : bb + ow]
    return col
    ### END SOLUTION


def col2im(col: Any, dxs: Any) -> Any:
    """The adjoint of :func:`im2col`: add each column entry back where it was copied from.

    ``col`` has shape (C, KH, KW, N, OH, OW); ``dxs`` is an array in the
    space-to-depth layout (C, N, sh, sw, Hs, Ws), usually zeros, into which the
    columns are added in place (and which is returned). Where windows overlap
    the contributions add up. Within one kernel offset every output pixel maps
    to a distinct input pixel, so a plain ``+=`` per offset is exact: no
    scatter-add (``np.add.at``) is needed. On a GPU: one CUDA gather per input
    entry (:mod:`.cuda_kernels`; ``MINIALEXNET_KERNELS=0``: this code), deterministic.
    """
    if cuda_kernels is not None and cuda_kernels.enabled(dxs):
        return cuda_kernels.col2im(col, dxs)
    ### BEGIN SOLUTION
    c, kh, kw, n, oh, ow = col.shape
    sh, sw = dxs.shape[2:4]
    for i in range(kh):
        for j in range(kw):
            a, r, bb, q = i // sh, i % sh, j // sw, j % sw
            dxs[:, :, r, q, a : a + oh, bb : bb + ow] += col[:, i, j]
    return dxs
    ### END SOLUTION


def _batch_chunks(n: int, per_item_bytes: int, col_bytes: int | None, xp: Any) -> list[slice]:
    """Split range(n) into slices whose column buffers stay under col_bytes (>= 1 item each).

    Default bound: ``DEFAULT_COL_BYTES`` for NumPy, ``DEFAULT_GPU_COL_BYTES`` for CuPy.
    """
    if col_bytes is None:
        col_bytes = DEFAULT_COL_BYTES if xp.__name__ == "numpy" else DEFAULT_GPU_COL_BYTES
    step = max(1, col_bytes // max(per_item_bytes, 1))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def conv2d_forward(
    x: Any,
    w: Any,
    b: Any,
    stride: Any = 1,
    pad: Any = 0,
    groups: int = 1,
    *,
    col_bytes: int | None = None,
) -> tuple[Any, tuple]:
    """Convolution forward.

        out[n, o, oh, ow] = b[o]
            + sum_{c, i, j} w[o, c, i, j] * x_pad[n, g*Cg + c, sh*oh + i, sw*ow + j]

    where g = o // (C_out/groups) is the group of output channel o and Cg = C/groups.

    Args:
        x: input (N, C, H, W), float32 or float64.
        w: weights (C_out, C/groups, KH, KW).
        b: bias (C_out,), or None for no bias.
        stride, pad: an int or an (h, w) pair; pad adds zeros on every side.
        groups: input and output channels split into this many independent groups
            (output channel o sees input group o // (C_out/groups)). AlexNet uses 2.
        col_bytes: bound on the im2col buffer in bytes (default ``DEFAULT_COL_BYTES``).

    Returns:
        out (N, C_out, OH, OW) with OH = floor((H + 2*ph - KH)/sh) + 1, in x's dtype,
        and the cache for :func:`conv2d_backward`.
    """
    fn = "conv2d_forward"
    _checks.floating(x, fn, "x")
    _checks.floating(w, fn, "w")
    _checks.ndim(x, 4, fn, "x", "(N, C, H, W)")
    _checks.ndim(w, 4, fn, "w", "(C_out, C_in/groups, KH, KW)")
    if not isinstance(groups, Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{fn}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    sh, sw = _checks.pair(stride, fn, "stride", 1)
    ph, pw = _checks.pair(pad, fn, "pad", 0)
    n, c, h, wid = x.shape
    c_out, c_per_group, kh, kw = w.shape
    if c % groups or c_out % groups:
        raise ValueError(
            f"{fn}: with groups={groups} the input channels ({c}) and output channels ({c_out}, "
            f"w.shape[0]) must both be divisible by groups"
        )
    if c_per_group * groups != c:
        raise ValueError(
            f"{fn}: x has {c} channels but w expects {c_per_group} per group x {groups} groups "
            f"= {c_per_group * groups} (w.shape[1] must be C_in/groups = {c // groups})"
        )
    if kh > h + 2 * ph or kw > wid + 2 * pw:
        raise ValueError(
            f"{fn}: kernel {kh}x{kw} is larger than the padded input {h + 2 * ph}x{wid + 2 * pw} "
            f"(x {h}x{wid}, pad {ph},{pw}); use a smaller kernel or more padding"
        )
    if b is not None:
        _checks.floating(b, fn, "b")
        if tuple(b.shape) != (c_out,):
            raise ValueError(f"{fn}: b must have shape ({c_out},), got {tuple(b.shape)}")

    xp = get_array_module(x)
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wid + 2 * pw - kw) // sw + 1
    ### BEGIN SOLUTION
    w_mat = w.astype(x.dtype, copy=False).reshape(groups, c_out // groups, -1)  # (G, Cog, Cg*KH*KW)
    bias = 0 if b is None else b.astype(x.dtype, copy=False).reshape(1, c_out, 1, 1)
    xs = space_to_depth(x, (ph, pw), (sh, sw))
    chunks = _batch_chunks(n, c * kh * kw * oh * ow * x.dtype.itemsize, col_bytes, xp)
    out = xp.empty_like(x, shape=(n, c_out, oh, ow))
    for chunk in chunks:
        col6 = im2col(xs[:, chunk], (kh, kw), (oh, ow))  # (C, KH, KW, Nc, OH, OW)
        col = col6.reshape(groups, -1, col6.shape[3] * oh * ow)  # (G, Cg*KH*KW, Nc*OH*OW)
        y = xp.empty_like(x, shape=(groups, c_out // groups, col.shape[2]))
        for g in range(groups):  # one product per group: y[g] = w_mat[g] @ col[g]
            xp.matmul(w_mat[g], col[g], out=y[g])
        xp.add(y.reshape(c_out, -1, oh, ow).transpose(1, 0, 2, 3), bias, out=out[chunk])
    # Keep the columns for backward when the whole batch fit in one buffer (a
    # one-item list, so that backward can take them out); else backward rebuilds them.
    kept_col = [col6] if len(chunks) == 1 else []
    ### END SOLUTION
    cache = (xs, x.shape, w, b, (sh, sw), (ph, pw), groups, col_bytes, kept_col)
    return out, cache


def conv2d_backward(dout: Any, cache: tuple, need_dx: bool = True) -> tuple[Any, Any, Any]:
    """Convolution backward: gradients of the loss with respect to x, w and b.

    With ``col`` and ``dout_mat`` (per group: C_out/groups x N*OH*OW) as in the module docstring:

        dw = dout_mat @ col.T
        db[o] = sum_{n, oh, ow} dout[n, o, oh, ow]
        dx = col2im(w_mat.T @ dout_mat)

    Args:
        dout: upstream gradient (N, C_out, OH, OW).
        cache: from :func:`conv2d_forward`.
        need_dx: False skips dx (returned as None): a network's first layer, whose
            input (the images) needs no gradient, saves a product and a col2im.

    Returns:
        (dx, dw, db) shaped like x, w, b (db is None when b was None).
    """
    xs, (n, c, h, wid), w, b, (sh, sw), (ph, pw), groups, col_bytes, kept_col = cache
    xp = get_array_module(xs)
    c_out, _, kh, kw = w.shape
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wid + 2 * pw - kw) // sw + 1
    _checks.dout_shape(dout, (n, c_out, oh, ow), "conv2d_backward")

    ### BEGIN SOLUTION
    dout = dout.astype(xs.dtype, copy=False)
    w_mat = w.astype(xs.dtype, copy=False).reshape(groups, c_out // groups, -1)
    dxs = xp.zeros_like(xs) if need_dx else None
    dw_t = xp.zeros_like(w_mat, shape=(groups, w_mat.shape[2], w_mat.shape[1]))  # dw_mat.T
    chunks = _batch_chunks(n, c * kh * kw * oh * ow * xs.dtype.itemsize, col_bytes, xp)
    for chunk in chunks:
        # The kept columns are taken out of the cache (a second backward rebuilds them),
        # so that dcol can be written over them: one large buffer less to allocate.
        col = kept_col.pop() if kept_col else im2col(xs[:, chunk], (kh, kw), (oh, ow))
        nc = col.shape[3]
        col = col.reshape(groups, -1, nc * oh * ow)  # (G, Cg*KH*KW, Nc*OH*OW)
        dout_mat = dout[chunk].transpose(1, 0, 2, 3).reshape(groups, c_out // groups, -1)
        for g in range(groups):  # one product per group, each a plain 2-D product
            # dw_mat = dout_mat @ col.T, computed as (col @ dout_mat.T).T: the same numbers,
            # and the product BLAS does faster for these shapes (~10-20% here).
            if len(chunks) == 1:
                xp.matmul(col[g], dout_mat[g].T, out=dw_t[g])
            else:
                dw_t[g] += xp.matmul(col[g], dout_mat[g].T)
            if need_dx:  # dcol = w_mat.T @ dout_mat, written over the columns of group g
                xp.matmul(w_mat[g].T, dout_mat[g], out=col[g])  # (Cg*KH*KW, Nc*OH*OW)
        if need_dx:
            col2im(col.reshape(c, kh, kw, nc, oh, ow), dxs[:, chunk])
    dx = depth_to_space(dxs, (ph, pw), (h, wid)) if need_dx else None
    dw = dw_t.transpose(0, 2, 1).reshape(w.shape).astype(w.dtype, copy=False)
    db = None if b is None else dout.sum(axis=(0, 2, 3)).astype(b.dtype, copy=False)
    return dx, dw, db
    ### END SOLUTION
