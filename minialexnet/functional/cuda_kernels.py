"""CUDA kernels for the functional ops' GPU dispatch (CuPy ``RawKernel``), and nothing else.

The array-generic code in ``conv.py``, ``pool.py`` and ``lrn.py`` is the readable
reference; it runs as a few whole-array passes per window offset (121 launches for
conv1's ``im2col``, 9 comparison passes each way for a 3x3 pool). Here each op is ONE
launch, one thread per output element (grid-stride loop), a gather with no atomics,
shared memory or warp intrinsics, so every result is the same on every run:

    im2col       per column entry:  col[c, i, j, n, oh, ow] =
                     xs[c, n, i % sh, j % sw, i // sh + oh, j // sw + ow]
    col2im       per entry of the space-to-depth layout:  dxs[c, n, r, q, a, b] +=
                     sum over i = r, r + sh, ... < KH and j = q, q + sw, ... < KW with
                     0 <= a - i//sh < OH, 0 <= b - j//sw < OW
                     of col[c, i, j, n, a - i//sh, b - j//sw]
    maxpool_fwd  per output:  out[n, c, oh, ow] = max_{i,j} x[n, c, sh*oh + i, sw*ow + j],
                     code = i*KW + j of its first maximum (int8; KH*KW <= 128)
    maxpool_bwd  per input pixel:  dx[n, c, p, q] = sum over windows (oh, ow) holding (p, q)
                     with code[n, c, oh, ow] == (p - sh*oh)*KW + (q - sw*ow) of dout[n, c, oh, ow]
    lrn_fwd      per output:  D = k + alpha * sum_{c' in W(c)} x[n, c', ...]^2,
                     scale = D^-beta, out = x * scale
    lrn_bwd      per input:  dx = g * scale - 2 alpha beta x * sum_{i: c in W(i)} g_i out_i / D_i

Each kernel repeats the generic code's arithmetic in the generic code's order, so
the results are the same bit for bit, except ``D^-beta``, which comes from CUDA's
``pow``/``powf`` instead of NumPy's or CuPy's (a few ulp apart):
- The pool codes follow the generic code's two passes exactly: a row's maximum
  and first arg-max first (strict ``>``, so ties keep the earlier offset), then
  the rows' maxima compared strictly, with NumPy's NaN-propagating ``maximum``.
  A window holding a NaN gives NaN, and its code is the generic code's (pool.py
  says where that is).
- The pool backward adds each pixel's windows in the generic code's order
  (window offset (i, j) in row-major order), starting from zero.
- LRN sums the n squares of each window directly, in channel order, rather than
  keeping a running sum along the channels (adding the channel that enters,
  subtracting the one that leaves): a running sum in float32 keeps the rounding
  error of every large square it has passed, so a small window after a large one
  would come out wrong by far more than an ulp; n (5) reads per output, mostly
  from cache, buy the generic code's exact sums. Products are ``__fmul_rn`` /
  ``__dmul_rn`` so that no multiply-add is fused: they round as NumPy's do.

The pool and LRN kernels take and give the generic code's caches, so a kernel
forward can be followed by the generic backward and the other way round.
Layouts are those of :func:`minialexnet.functional.conv.space_to_depth` and
:func:`~minialexnet.functional.conv.im2col`. They are used for every CuPy
array; ``MINIALEXNET_KERNELS=0`` switches them off (the generic code then runs on
the GPU too). Each wrapper runs on the GPU its input lives on (CuPy allocates and
launches on the current GPU, which need not be the input's).

The kernels come in three families (:data:`FAMILIES`: im2col/col2im, maxpool, lrn),
each its own NVRTC module compiled on first use, so that an error in one family
takes only its own kernels down; :func:`compile_all` compiles them all at once and
names the family that fails, with NVRTC's log. The tests compile :data:`SOURCE`
(every family) with ``g++`` as plain C++ (one thread runs every element of the
grid-stride loop) to run every wrapper on NumPy arrays against the generic code,
with ``nvcc`` where it exists, and compare the kernels with the generic code on a
GPU where there is one.

Measured on an H200 (2026-11-27, ``python -m minialexnet.bench layers --device gpu``,
batch 16, forward+backward): conv1 6.9 -> 1.2 ms (7.2x -> 1.5x PyTorch's time),
conv2 2.3 -> 1.7 ms; the paper model's training step at batch 128 2072 -> 2180
images/s (0.44x -> 0.47x PyTorch in the same run). The pool and LRN kernels have
not been timed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import get_array_module, on_device_of

__all__ = [
    "FAMILIES",
    "KERNELS",
    "SOURCE",
    "POOL_WINDOW_MAX",
    "compile_all",
    "enabled",
    "im2col",
    "col2im",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "lrn_forward",
    "lrn_backward",
]

_IM2COL = r"""
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

_MAXPOOL = r"""
// NumPy's maximum: NaN if either is NaN (the first one), else the larger, b on a tie.
__device__ float max_nan(float a, float b) { return (a > b || a != a) ? a : b; }
__device__ double max_nan(double a, double b) { return (a > b || a != a) ? a : b; }

#define MAXPOOL_FWD(NAME, T)                                                         \
extern "C" __global__ void NAME(const T* x, T* out, signed char* code, long long total, \
        int H, int W, int KH, int KW, int SH, int SW, int OH, int OW) {             \
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;   \
         e += (long long)blockDim.x * gridDim.x) {                                    \
        long long t = e;                                                              \
        int ow = t % OW; t /= OW;                                                     \
        int oh = t % OH; long long nc = t / OH;                                       \
        const T* win = x + (nc * H + (long long)SH * oh) * W + (long long)SW * ow;    \
        T best = win[0];                                                              \
        int arg = 0;                                                                  \
        for (int i = 0; i < KH; ++i) {                                                \
            const T* row = win + (long long)i * W;                                    \
            T row_best = row[0];                                                      \
            int row_arg = 0;                                                          \
            for (int j = 1; j < KW; ++j) {                                            \
                if (row[j] > row_best) row_arg = j;                                   \
                row_best = max_nan(row_best, row[j]);                                 \
            }                                                                         \
            if (i == 0) {                                                             \
                best = row_best; arg = row_arg;                                       \
            } else {                                                                  \
                if (row_best > best) arg = i * KW + row_arg;                          \
                best = max_nan(best, row_best);                                       \
            }                                                                         \
        }                                                                             \
        out[e] = best;                                                                \
        code[e] = (signed char)arg;                                                   \
    }                                                                                 \
}

#define MAXPOOL_BWD(NAME, T)                                                         \
extern "C" __global__ void NAME(const T* dout, const signed char* code, T* dx,       \
        long long total, int H, int W, int KH, int KW, int SH, int SW, int OH, int OW) { \
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;   \
         e += (long long)blockDim.x * gridDim.x) {                                    \
        long long t = e;                                                              \
        int q = t % W; t /= W;                                                        \
        int p = t % H; long long nc = t / H;                                          \
        int oh_hi = p / SH < OH - 1 ? p / SH : OH - 1;                                \
        int oh_lo = p < KH ? 0 : (p - KH) / SH + 1;                                   \
        int ow_hi = q / SW < OW - 1 ? q / SW : OW - 1;                                \
        int ow_lo = q < KW ? 0 : (q - KW) / SW + 1;                                   \
        T acc = 0;                                                                    \
        for (int oh = oh_hi; oh >= oh_lo; --oh) {                                     \
            int i = p - SH * oh;                                                      \
            for (int ow = ow_hi; ow >= ow_lo; --ow) {                                 \
                int j = q - SW * ow;                                                  \
                long long o = (nc * OH + oh) * OW + ow;                               \
                if (code[o] == i * KW + j) acc += dout[o];                            \
            }                                                                         \
        }                                                                             \
        dx[e] = acc;                                                                  \
    }                                                                                 \
}

MAXPOOL_FWD(maxpool_fwd_f32, float)
MAXPOOL_FWD(maxpool_fwd_f64, double)
MAXPOOL_BWD(maxpool_bwd_f32, float)
MAXPOOL_BWD(maxpool_bwd_f64, double)
"""

_LRN = r"""
// Overloads for float and double. mul_rn is a product rounded on its own: never
// contracted into a fused multiply-add, so each result rounds as NumPy's does.
__device__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ float pow_t(float a, float b) { return powf(a, b); }
__device__ double pow_t(double a, double b) { return pow(a, b); }

#define LRN_FWD(NAME, T)                                                             \
extern "C" __global__ void NAME(const T* x, T* out, T* denom, T* scale, long long total, \
        int C, int before, int after, long long R, T k, T alpha, T minus_beta) {    \
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;   \
         e += (long long)blockDim.x * gridDim.x) {                                    \
        long long r = e % R;                                                          \
        int c = (e / R) % C;                                                          \
        const T* column = x + (e / R - c) * R + r;                                    \
        int lo = c - before < 0 ? 0 : c - before;                                     \
        int hi = c + after > C - 1 ? C - 1 : c + after;                               \
        T s = 0;                                                                      \
        for (int d = lo; d <= hi; ++d) {                                              \
            T a = column[d * R];                                                      \
            s += mul_rn(a, a);                                                        \
        }                                                                             \
        T den = mul_rn(s, alpha) + k;                                                 \
        T sc = pow_t(den, minus_beta);                                                \
        denom[e] = den;                                                               \
        scale[e] = sc;                                                                \
        out[e] = mul_rn(x[e], sc);                                                    \
    }                                                                                 \
}

#define LRN_BWD(NAME, T)                                                             \
extern "C" __global__ void NAME(const T* x, const T* out, const T* denom,             \
        const T* scale, const T* dout, T* dx, long long total,                        \
        int C, int before, int after, long long R, T coef) {                          \
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;   \
         e += (long long)blockDim.x * gridDim.x) {                                    \
        long long r = e % R;                                                          \
        int c = (e / R) % C;                                                          \
        long long first = (e / R - c) * R + r;                                        \
        int lo = c - before < 0 ? 0 : c - before;                                     \
        int hi = c + after > C - 1 ? C - 1 : c + after;                               \
        T s = 0;                                                                      \
        for (int d = lo; d <= hi; ++d) {                                              \
            long long o = first + d * R;                                              \
            s += mul_rn(dout[o], out[o]) / denom[o];                                  \
        }                                                                             \
        dx[e] = mul_rn(mul_rn(s, x[e]), coef) + mul_rn(dout[e], scale[e]);            \
    }                                                                                 \
}

LRN_FWD(lrn_fwd_f32, float)
LRN_FWD(lrn_fwd_f64, double)
LRN_BWD(lrn_bwd_f32, float)
LRN_BWD(lrn_bwd_f64, double)
"""

FAMILIES: dict[str, str] = {"im2col": _IM2COL, "maxpool": _MAXPOOL, "lrn": _LRN}
"""The CUDA source of each family of kernels, compiled on its own (NVRTC, one CuPy
``RawModule`` per family, on first use): a family that does not compile takes only its
own kernels down. No family uses another's helpers, so they also compile together."""

KERNELS: dict[str, tuple[str, ...]] = {
    "im2col": ("im2col", "col2im"),
    "maxpool": ("maxpool_fwd", "maxpool_bwd"),
    "lrn": ("lrn_fwd", "lrn_bwd"),
}
"""The kernels of each family, each compiled for float32 (``<name>_f32``) and float64
(``<name>_f64``)."""

SOURCE = "".join(FAMILIES.values())
"""Every family's source in one text (the tests compile it with ``nvcc`` and ``g++``)."""

_FAMILY_OF = {kernel: family for family, names in KERNELS.items() for kernel in names}
_modules: dict[str, Any] = {}  # family -> its cupy.RawModule, made on first use
_functions: dict[str, Any] = {}  # "<kernel>_f32" -> its cupy.RawKernel
_THREADS = 256

POOL_WINDOW_MAX = 128
"""The largest window (KH*KW) the pooling kernels take: their codes are int8, as the
generic code's are up to this size; larger windows run the generic code."""


def enabled(x: Any, dtype: Any = None) -> bool:
    """True when ``x`` is a CuPy array and ``dtype`` (default: x's) float32 or float64,
    unless ``MINIALEXNET_KERNELS=0`` turns the kernels off."""
    if os.environ.get("MINIALEXNET_KERNELS", "1").strip() == "0":
        return False
    dtype = x.dtype if dtype is None else np.dtype(dtype)
    return get_array_module(x).__name__ == "cupy" and dtype.char in "fd"


def _compile_error(family: str, exc: Exception) -> RuntimeError:
    names = ", ".join(KERNELS[family])
    return RuntimeError(
        f"CUDA kernels: family {family!r} ({names}) does not compile or load; the other "
        f"families are not affected, and MINIALEXNET_KERNELS=0 runs the generic code instead. "
        f"{type(exc).__name__} (for a compile error, NVRTC's log):\n{exc}"
    )


def _function(family: str, symbol: str, load: bool = False) -> Any:
    """The ``cupy.RawKernel`` ``symbol`` of ``family``'s module, compiled on first use.

    CuPy loads a module once per GPU: a ``RawKernel`` loads its module (compiled once,
    cached on disk) for whichever GPU is current when it is called and keeps a function
    per GPU, so one object serves every GPU if it is launched on its arrays' device.
    ``load`` loads it for the current GPU now. A failure names the family.
    """
    if family not in _modules:
        import cupy  # noqa: PLC0415 -- only reached with CuPy arrays

        _modules[family] = cupy.RawModule(code=FAMILIES[family])
    try:
        if symbol not in _functions:
            _functions[symbol] = _modules[family].get_function(symbol)
        if load:
            _ = _functions[symbol].kernel  # CuPy compiles and loads it for the current GPU
    except Exception as exc:  # cupy.cuda.compiler.CompileException, CUDADriverError, ...
        raise _compile_error(family, exc) from exc
    return _functions[symbol]


def _kernel(name: str, dtype: Any) -> Any:
    if dtype.char not in "fd":
        raise TypeError(f"CUDA kernel {name}: float32 or float64 only, got {dtype}")
    return _function(_FAMILY_OF[name], f"{name}_{'f32' if dtype.char == 'f' else 'f64'}")


def compile_all() -> dict[str, list[str]]:
    """Compile and load every family of kernels on the current GPU now: ``{family: kernels}``.

    Kernels are otherwise compiled on first use, one family (one NVRTC module) at a
    time. This tries every family and raises one ``RuntimeError`` naming each family
    that failed, with NVRTC's log. The GPU check runs it first (``.ci/gpu-check``,
    stage ``compile``), so that a compile error is reported as one, not as the failure
    of every test that happens to reach that family.
    """
    done: dict[str, list[str]] = {}
    errors = []
    for family, names in KERNELS.items():
        symbols = [f"{name}_{suffix}" for name in names for suffix in ("f32", "f64")]
        try:
            for symbol in symbols:
                _function(family, symbol, load=True)
        except RuntimeError as exc:
            errors.append(str(exc))
            continue
        done[family] = symbols
    if errors:
        raise RuntimeError("\n\n".join(errors))
    return done


def _on_device_of_first(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` on the GPU its first argument lives on (CuPy allocates and launches on
    the CURRENT device, which need not be the arrays')."""

    @functools.wraps(fn)
    def run(x: Any, *args: Any, **kwargs: Any) -> Any:
        with on_device_of(x):
            return fn(x, *args, **kwargs)

    return run


def _launch(
    name: str, dtype: Any, arrays: tuple, total: int, ints: tuple, extra: tuple = ()
) -> None:
    """Run kernel ``name`` for ``dtype`` over ``total`` elements, on the arrays' GPU.

    Its arguments, in this order: ``arrays`` (C-contiguous, all on one GPU), ``total``
    as a long long, ``ints`` as ints, then ``extra`` (NumPy scalars of the kernel's types).
    """
    if total == 0:
        return
    blocks = max(1, min((total + _THREADS - 1) // _THREADS, 65535 * 8))
    args = (*arrays, np.int64(total), *(np.int32(d) for d in ints), *extra)
    if get_array_module(arrays[0]) is not np:
        gpus = [a.device.id for a in arrays]
        if len(set(gpus)) > 1:
            raise ValueError(f"CUDA kernel {name}: its arrays are on GPUs {gpus}, not on one")
    with on_device_of(arrays[0]):
        _kernel(name, dtype)((blocks,), (_THREADS,), args)


@_on_device_of_first
def im2col(xs: Any, kernel: tuple[int, int], out_hw: tuple[int, int]) -> Any:
    """``conv.im2col`` in one launch: (C, N, sh, sw, Hs, Ws) -> (C, KH, KW, N, OH, OW)."""
    xp = get_array_module(xs)
    xs = xp.ascontiguousarray(xs)
    c, n, sh, sw, hs, ws = xs.shape
    (kh, kw), (oh, ow) = kernel, out_hw
    col = xp.empty((c, kh, kw, n, oh, ow), dtype=xs.dtype)
    dims = (c, n, sh, sw, hs, ws, kh, kw, oh, ow)
    _launch("im2col", col.dtype, (xs, col), col.size, dims)
    return col


@_on_device_of_first
def col2im(col: Any, dxs: Any) -> Any:
    """``conv.col2im`` in one launch: adds ``col`` into ``dxs`` (in place) and returns it."""
    xp = get_array_module(dxs)
    c, kh, kw, n, oh, ow = col.shape
    _, _, sh, sw, hs, ws = dxs.shape
    col = xp.ascontiguousarray(col, dtype=dxs.dtype)
    target = dxs if dxs.flags.c_contiguous else xp.ascontiguousarray(dxs)
    dims = (c, n, sh, sw, hs, ws, kh, kw, oh, ow)
    _launch("col2im", target.dtype, (col, target), target.size, dims)
    if target is not dxs:
        dxs[...] = target
    return dxs


@_on_device_of_first
def maxpool2d_forward(x: Any, size: tuple[int, int], stride: tuple[int, int]) -> tuple[Any, tuple]:
    """``pool.maxpool2d_forward`` in one launch, the same out and cache (KH*KW <= 128)."""
    xp = get_array_module(x)
    (kh, kw), (sh, sw) = size, stride
    if kh * kw > POOL_WINDOW_MAX:
        raise ValueError(f"maxpool kernel: a {kh}x{kw} window has more than 128 offsets")
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = xp.empty_like(x, shape=(n, c, oh, ow), order="C")
    code = xp.empty_like(x, shape=(n, c, oh, ow), dtype=xp.int8, order="C")
    dims = (h, w, kh, kw, sh, sw, oh, ow)
    _launch("maxpool_fwd", x.dtype, (xp.ascontiguousarray(x), out, code), out.size, dims)
    return out, (x.shape, x.dtype, (kh, kw), (sh, sw), code)


@_on_device_of_first
def maxpool2d_backward(dout: Any, cache: tuple) -> Any:
    """``pool.maxpool2d_backward`` in one launch, a gather per pixel; either forward's cache."""
    x_shape, x_dtype, (kh, kw), (sh, sw), code = cache
    xp = get_array_module(code)
    if code.dtype != xp.int8:
        raise ValueError(f"maxpool kernel: codes must be int8 (KH*KW <= 128), got {code.dtype}")
    _, _, h, w = x_shape
    oh, ow = code.shape[2:]
    dout = xp.ascontiguousarray(dout, dtype=x_dtype)
    dx = xp.empty_like(dout, shape=x_shape, order="C")
    dims = (h, w, kh, kw, sh, sw, oh, ow)
    _launch("maxpool_bwd", dx.dtype, (dout, xp.ascontiguousarray(code), dx), dx.size, dims)
    return dx


@_on_device_of_first
def lrn_forward(x: Any, n: int, k: float, alpha: float, beta: float) -> tuple[Any, tuple]:
    """``lrn.lrn_forward`` in one launch, the same out and cache (channels on axis 1, any ndim)."""
    xp = get_array_module(x)
    dtype = x.dtype
    xc = xp.ascontiguousarray(x)
    out, denom, scale = (xp.empty_like(x, order="C") for _ in range(3))
    channels, rest = x.shape[1], x.size // max(1, x.shape[0] * x.shape[1])
    scalars = (np.int64(rest), dtype.type(k), dtype.type(alpha), dtype.type(-beta))
    ints = (channels, n // 2, (n - 1) // 2)
    _launch("lrn_fwd", dtype, (xc, out, denom, scale), x.size, ints, scalars)
    return out, (x, out, denom, scale, n, alpha, beta)


@_on_device_of_first
def lrn_backward(dout: Any, cache: tuple) -> Any:
    """``lrn.lrn_backward`` in one launch; takes either forward's cache."""
    x, out, denom, scale, n, alpha, beta = cache
    xp = get_array_module(x)
    dtype = x.dtype
    arrays = tuple(xp.ascontiguousarray(a, dtype=dtype) for a in (x, out, denom, scale, dout))
    dx = xp.empty_like(x, order="C")
    channels, rest = x.shape[1], x.size // max(1, x.shape[0] * x.shape[1])
    scalars = (np.int64(rest), dtype.type(-2.0 * alpha * beta))
    ints = (channels, (n - 1) // 2, n // 2)  # the mirrored window
    _launch("lrn_bwd", dtype, (*arrays, dx), x.size, ints, scalars)
    return dx
