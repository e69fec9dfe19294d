"""CUDA kernels for the functional ops' GPU dispatch (CuPy ``RawKernel``), and nothing else.

The array-generic code in ``conv.py`` is the readable reference: its ``im2col``
is KH*KW block copies, one kernel launch each (121 for conv1), and its
``col2im`` as many read-modify-writes. Here each is ONE launch of a gather:

    im2col  one thread per column entry:  col[c, i, j, n, oh, ow] =
                xs[c, n, i % sh, j % sw, i // sh + oh, j // sw + ow]
    col2im  one thread per input entry of the space-to-depth layout, summing the
            column entries copied from it (no atomics, so the result is the same
            on every run):  dxs[c, n, r, q, a, b] += sum over i = r, r + sh, ... < KH
            and j = q, q + sw, ... < KW with 0 <= a - i//sh < OH, 0 <= b - j//sw < OW
            of col[c, i, j, n, a - i//sh, b - j//sw]

Layouts are those of :func:`minialexnet.functional.conv.space_to_depth` and
:func:`~minialexnet.functional.conv.im2col`. They are used for every CuPy
array; ``MINIALEXNET_KERNELS=0`` switches them off (the generic code then runs on
the GPU too). The tests compare them with the generic code on the GPU, and
compile the source with ``nvcc`` where it exists.

Measured on an H200 (2026-11-27, ``python -m minialexnet.bench layers --device gpu``,
batch 16, forward+backward): conv1 6.9 -> 1.2 ms (7.2x -> 1.5x PyTorch's time),
conv2 2.3 -> 1.7 ms; the paper model's training step at batch 128 2072 -> 2180
images/s (0.44x -> 0.47x PyTorch in the same run).
"""

from __future__ import annotations

import os
from typing import Any

from ..backend import get_array_module

__all__ = ["SOURCE", "enabled", "im2col", "col2im"]

SOURCE = r"""
#define IM2COL(NAME, T)                                                              \
extern "C" __global__ void NAME(const T* xs, T* col, long long total,               \
        int C, int N, int SH, int SW, int HS, int WS, int KH, int KW, int OH, int OW) { \
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;   \
         e += (long long)blockDim.x * gridDim.x) {                                    \
        long long t = e;                                                              \
        int ow = t % OW; t /= OW;                                                     \
        int oh = t % OH; t /= OH;                                                     \
        int n = t % N; t /= N;                                                        \
        int j = t % KW; t /= KW;                                                      \
        int i = t % KH; int c = (int)(t / KH);                                        \
        long long src = ((((long long)c * N + n) * SH + i % SH) * SW + j % SW);       \
        src = (src * HS + i / SH + oh) * WS + j / SW + ow;                            \
        col[e] = xs[src];                                                             \
    }                                                                                 \
}

#define COL2IM(NAME, T)                                                              \
extern "C" __global__ void NAME(const T* col, T* dxs, long long total,              \
        int C, int N, int SH, int SW, int HS, int WS, int KH, int KW, int OH, int OW) { \
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;   \
         e += (long long)blockDim.x * gridDim.x) {                                    \
        long long t = e;                                                              \
        int b = t % WS; t /= WS;                                                      \
        int a = t % HS; t /= HS;                                                      \
        int q = t % SW; t /= SW;                                                      \
        int r = t % SH; t /= SH;                                                      \
        int n = t % N; int c = (int)(t / N);                                          \
        T acc = 0;                                                                    \
        for (int i = r; i < KH; i += SH) {                                            \
            int oh = a - i / SH;                                                      \
            if (oh < 0 || oh >= OH) continue;                                         \
            for (int j = q; j < KW; j += SW) {                                        \
                int ow = b - j / SW;                                                  \
                if (ow < 0 || ow >= OW) continue;                                     \
                acc += col[((((long long)c * KH + i) * KW + j) * N + n) * OH * OW     \
                           + (long long)oh * OW + ow];                                \
            }                                                                         \
        }                                                                             \
        dxs[e] += acc;                                                                \
    }                                                                                 \
}

IM2COL(im2col_f32, float)
IM2COL(im2col_f64, double)
COL2IM(col2im_f32, float)
COL2IM(col2im_f64, double)
"""

_module: Any = None
_THREADS = 256


def enabled(x: Any) -> bool:
    """True when ``x`` is a float CuPy array, unless ``MINIALEXNET_KERNELS=0`` turns them off."""
    if os.environ.get("MINIALEXNET_KERNELS", "1").strip() == "0":
        return False
    return get_array_module(x).__name__ == "cupy" and x.dtype.char in "fd"


def _kernel(name: str, dtype: Any) -> Any:
    global _module
    if _module is None:
        import cupy  # noqa: PLC0415 -- only reached with CuPy arrays

        _module = cupy.RawModule(code=SOURCE)
    return _module.get_function(f"{name}_{'f32' if dtype.char == 'f' else 'f64'}")


def _launch(name: str, src: Any, dst: Any, dims: tuple[int, ...]) -> None:
    import numpy as np  # noqa: PLC0415

    total = dst.size
    blocks = max(1, min((total + _THREADS - 1) // _THREADS, 65535 * 8))
    args = (src, dst, np.int64(total), *(np.int32(d) for d in dims))
    _kernel(name, dst.dtype)((blocks,), (_THREADS,), args)


def im2col(xs: Any, kernel: tuple[int, int], out_hw: tuple[int, int]) -> Any:
    """``conv.im2col`` in one launch: (C, N, sh, sw, Hs, Ws) -> (C, KH, KW, N, OH, OW)."""
    xp = get_array_module(xs)
    xs = xp.ascontiguousarray(xs)
    c, n, sh, sw, hs, ws = xs.shape
    (kh, kw), (oh, ow) = kernel, out_hw
    col = xp.empty((c, kh, kw, n, oh, ow), dtype=xs.dtype)
    _launch("im2col", xs, col, (c, n, sh, sw, hs, ws, kh, kw, oh, ow))
    return col


def col2im(col: Any, dxs: Any) -> Any:
    """``conv.col2im`` in one launch: adds ``col`` into ``dxs`` (in place) and returns it."""
    xp = get_array_module(dxs)
    c, kh, kw, n, oh, ow = col.shape
    _, _, sh, sw, hs, ws = dxs.shape
    col = xp.ascontiguousarray(col, dtype=dxs.dtype)
    target = dxs if dxs.flags.c_contiguous else xp.ascontiguousarray(dxs)
    _launch("col2im", col, target, (c, n, sh, sw, hs, ws, kh, kw, oh, ow))
    if target is not dxs:
        dxs[...] = target
    return dxs
