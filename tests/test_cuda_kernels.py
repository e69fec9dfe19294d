"""The CUDA kernels of minialexnet.functional.cuda_kernels against the generic array code.

Everywhere (no GPU needed):
- the source compiles with nvcc (where nvcc exists);
- no kernel but lrn_fwd (whose pow has its own) contains a fused multiply-add;
- each family of kernels (im2col/col2im, maxpool, lrn: one NVRTC module each on a GPU)
  compiles on its own with g++ and defines exactly its own kernels;
- the source also compiles as plain C++ with g++ (where g++ exists), after a prelude that
  makes blockIdx, threadIdx, blockDim and gridDim globals: the emulator runs a grid of
  2 x 3 "threads" one after another (see :class:`Emulator`). ``cuda_kernels._kernel`` is
  then swapped for those C functions (ctypes), so every wrapper runs end to end on NumPy
  arrays through the real kernel text, and is compared with the generic NumPy code:
  forward and backward, float32 and float64, hypothesis-drawn shapes, caches crossed
  between the two; and once more built with AddressSanitizer (no access out of bounds);
- NumPy arrays never reach the kernels through the public functions.
On a GPU: the same comparisons with CuPy arrays (generic = ``MINIALEXNET_KERNELS=0``).

What is exact: every kernel repeats the generic code's operations in its order, so
im2col, the pool (values, codes, gradients), LRN's denominator and LRN's backward given
the same cache are equal bit for bit (col2im too when it adds into zeros, as
conv2d_backward does). LRN's scale = D^-beta comes from a different ``pow`` (glibc's
here, CUDA's on a GPU, NumPy's or CuPy's in the generic code): a few ulp, so scale and
out are compared to 8 ulp.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
from helpers import (
    dtypes,
    fast,
    lrn_alpha,
    lrn_beta,
    lrn_k,
    lrn_n,
    needs_gpu,
    pair,
    pool_cases,
    rand,
    seeds,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from minialexnet.backend import Device
from minialexnet.functional import conv, cuda_kernels, lrn, pool

KERNELS = ("im2col", "col2im", "maxpool_fwd", "maxpool_bwd", "lrn_fwd", "lrn_bwd")


def test_source_compiles_with_nvcc(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH (the CUDA toolkit is not installed here)")
    source = tmp_path / "kernels.cu"
    source.write_text(cuda_kernels.SOURCE)
    done = subprocess.run(
        [nvcc, "--ptx", "-o", str(tmp_path / "kernels.ptx"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ptx = (tmp_path / "kernels.ptx").read_text()
    for name in KERNELS:
        for suffix in ("f32", "f64"):
            assert f".entry {name}_{suffix}(" in ptx
            body = ptx.split(f".entry {name}_{suffix}(")[1].split("\n}")[0]
            if name != "lrn_fwd":  # (whose pow has its own): no fused multiply-add anywhere
                assert "fma." not in body, f"{name}_{suffix} fuses a multiply-add"


# ------------------------------------------------------------------- the CPU emulation
PRELUDE = r"""
#include <cmath>
// Set from Python before each call: the emulator runs the grid's threads one at a time.
struct emulated_dim3 { unsigned x, y, z; };
extern "C" {
emulated_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
emulated_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
}
#define __global__
#define __device__ static inline
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
#line 1 "cuda_kernels.SOURCE"
"""

_C_SCALARS = {
    np.int32: ctypes.c_int,
    np.int64: ctypes.c_longlong,
    np.float32: ctypes.c_float,
    np.float64: ctypes.c_double,
}


class Dim3(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint), ("y", ctypes.c_uint), ("z", ctypes.c_uint)]


class Emulator:
    """``cuda_kernels.SOURCE`` built as a C++ shared library, called as CuPy would call it.

    Whatever grid the wrapper asks for, a launch runs a small grid of ``GRID`` blocks of
    ``BLOCK`` threads, one thread after the other: so each thread's grid-stride loop
    takes its own share of the elements, and together they must cover every one. (The
    kernels have no shared memory, atomics or synchronisation, and each thread writes
    only its own elements, so the order the threads run in cannot matter.)
    """

    GRID, BLOCK = 2, 3

    def __init__(self, library: ctypes.CDLL) -> None:
        self.library = library
        self.calls: list[str] = []
        self.dims = {k: Dim3.in_dll(library, k) for k in ("blockIdx", "threadIdx", "blockDim")}
        self.dims["gridDim"] = Dim3.in_dll(library, "gridDim")
        self.dims["gridDim"].x, self.dims["blockDim"].x = self.GRID, self.BLOCK

    def kernel(self, name: str, dtype: np.dtype):
        """Stands in for ``cuda_kernels._kernel``: a callable ``(grid, block, args)``."""
        if dtype.char not in "fd":
            raise TypeError(f"CUDA kernel {name}: float32 or float64 only, got {dtype}")
        symbol = f"{name}_{'f32' if dtype.char == 'f' else 'f64'}"
        function = getattr(self.library, symbol)
        function.restype = None

        def launch(grid, block, args):
            assert isinstance(grid, tuple) and isinstance(block, tuple), (grid, block)
            assert all(isinstance(v, int) and 1 <= v < 2**31 for v in grid + block)
            self.calls.append(symbol)
            c_args = [self._c(a) for a in args]
            for b in range(self.GRID):
                for t in range(self.BLOCK):
                    self.dims["blockIdx"].x, self.dims["threadIdx"].x = b, t
                    function(*c_args)

        return launch

    @staticmethod
    def _c(a):
        if isinstance(a, np.ndarray):
            assert a.flags.c_contiguous, "the kernels index arrays as C-contiguous"
            return a.ctypes.data_as(ctypes.c_void_p)
        if type(a) in _C_SCALARS:
            return _C_SCALARS[type(a)](a)
        raise TypeError(f"a kernel argument must be an array or a NumPy scalar, got {a!r}")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Emulator:
    """The kernels compiled with g++ (skipped where there is none)."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not on PATH: the CUDA source cannot be emulated on the CPU")
    folder = tmp_path_factory.mktemp("cuda_emulation")
    (folder / "kernels.cpp").write_text(PRELUDE + cuda_kernels.SOURCE)
    command = [gxx, "-O1", "-shared", "-fPIC", "-x", "c++", "-ffp-contract=off"]
    command += ["-Wall", "-Werror", "-o", str(folder / "kernels.so"), str(folder / "kernels.cpp")]
    if (
        os.environ.get("MINIALEXNET_EMULATION_ASAN") == "1"
    ):  # see test_kernels_stay_in_bounds_under_asan
        command += ["-fsanitize=address", "-fno-omit-frame-pointer"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return Emulator(ctypes.CDLL(str(folder / "kernels.so")))


@pytest.mark.parametrize("family", list(cuda_kernels.FAMILIES))
def test_each_family_compiles_on_its_own(family, tmp_path):
    """On a GPU each family is its own NVRTC module: it must not lean on another family's
    helpers, and it must define its own kernels (SOURCE, all of them, is emulated below)."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not on PATH: the CUDA source cannot be compiled on the CPU")
    assert sorted(k for names in cuda_kernels.KERNELS.values() for k in names) == sorted(KERNELS)
    assert cuda_kernels.SOURCE == "".join(cuda_kernels.FAMILIES.values())
    (tmp_path / "family.cpp").write_text(PRELUDE + cuda_kernels.FAMILIES[family])
    command = [gxx, "-O0", "-shared", "-fPIC", "-x", "c++", "-Wall", "-Werror"]
    command += ["-o", str(tmp_path / "family.so"), str(tmp_path / "family.cpp")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    library = ctypes.CDLL(str(tmp_path / "family.so"))
    for other, names in cuda_kernels.KERNELS.items():
        for symbol in (f"{name}_{suffix}" for name in names for suffix in ("f32", "f64")):
            assert hasattr(library, symbol) == (other == family), symbol


@pytest.fixture
def emulated(emulator, monkeypatch) -> Emulator:
    """``cuda_kernels`` with its kernels run on the CPU: the wrappers take NumPy arrays."""
    monkeypatch.setattr(cuda_kernels, "_kernel", emulator.kernel)
    emulator.calls.clear()
    return emulator


def enabled_for_numpy(x, dtype=None) -> bool:
    """``cuda_kernels.enabled`` as if NumPy arrays were CuPy's: float32 and float64 only."""
    return (x.dtype if dtype is None else np.dtype(dtype)).char in "fd"


@contextlib.contextmanager
def generic_code():
    """The array code, also for CuPy arrays."""
    with mock.patch.dict(os.environ, {"MINIALEXNET_KERNELS": "0"}):
        yield


def np_of(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def assert_same_bits(actual, expected):
    """Equal values, NaN where NaN, and the same bits elsewhere (the sign of zero too)."""
    actual, expected = np_of(actual), np_of(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)
    numbers = ~np.isnan(expected)
    unsigned = np.uint32 if expected.dtype == np.float32 else np.uint64
    np.testing.assert_array_equal(actual.view(unsigned)[numbers], expected.view(unsigned)[numbers])


def assert_ulps(actual, expected, ulps: float):
    actual, expected = np_of(actual), np_of(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    bound = ulps * np.finfo(expected.dtype).eps * np.abs(expected)
    err = np.abs(actual.astype(np.float64) - expected)
    assert (err <= bound).all(), f"worst {float((err / np.maximum(bound, 1e-300)).max()):.3g}x"


@pytest.mark.slow
def test_kernels_stay_in_bounds_under_asan():
    """The emulated tests again, the kernels built with AddressSanitizer: no read or write
    outside an array (on a GPU such an access need not fail, only give wrong numbers)."""
    gxx = shutil.which("g++")
    if gxx is None or os.environ.get("MINIALEXNET_EMULATION_ASAN") == "1":
        pytest.skip("needs g++ (and is not run inside its own run)")
    runtime = subprocess.run([gxx, "-print-file-name=libasan.so"], capture_output=True, text=True)
    env = dict(os.environ, LD_PRELOAD=runtime.stdout.strip(), ASAN_OPTIONS="detect_leaks=0")
    probe = subprocess.run([sys.executable, "-c", "pass"], env=env, capture_output=True)
    if runtime.returncode or not os.path.isabs(runtime.stdout.strip()) or probe.returncode:
        pytest.skip("AddressSanitizer's runtime cannot be preloaded into Python here")
    env.update(MINIALEXNET_EMULATION_ASAN="1", MINIALEXNET_EXAMPLES_SCALE="1")
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-x", "-p", "no:cacheprovider"]
    command += [__file__, "-k", "emulated"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600,
                          cwd=os.path.dirname(os.path.dirname(__file__)))  # fmt: skip
    report = done.stdout + done.stderr
    assert done.returncode == 0 and "AddressSanitizer" not in report, report[-6000:]
    assert " passed" in report


# ------------------------------------------------------------------------ conv gathers
conv_shapes = st.tuples(
    st.integers(1, 3),  # n
    st.integers(1, 4),  # c
    st.integers(3, 12),  # h
    st.integers(3, 12),  # w
    st.integers(1, 5),  # kh
    st.integers(1, 5),  # kw
    st.integers(1, 4),  # stride
    st.integers(0, 2),  # pad
    st.sampled_from(["float32", "float64"]),
)


def check_gathers(xp, case, bitwise: bool):
    n, c, h, w, kh, kw, s, p, dtype = case
    if kh > h + 2 * p or kw > w + 2 * p:
        return
    rng = np.random.default_rng(0)
    x = xp.asarray(rng.standard_normal((n, c, h, w)).astype(dtype))
    oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    xs = conv.space_to_depth(x, (p, p), (s, s))
    ours = cuda_kernels.im2col(xs, (kh, kw), (oh, ow))
    with generic_code():
        generic = conv.im2col(xs, (kh, kw), (oh, ow))
    assert_same_bits(ours, generic)
    col = xp.asarray(rng.standard_normal(generic.shape).astype(dtype))
    zeros = xp.zeros_like(xs)
    with generic_code():  # into zeros, as conv2d_backward: the same sums in the same order
        want = conv.col2im(col, zeros.copy())
    got = cuda_kernels.col2im(col, zeros.copy())
    if bitwise:
        assert_same_bits(got, want)
    else:
        assert float(xp.abs(got - want).max()) == 0.0
    base = xp.asarray(rng.standard_normal(xs.shape).astype(dtype))
    part = max(1, n - 1)
    with generic_code():  # into numbers: one rounding per offset there, one per sum here
        want = conv.col2im(col, base.copy())
        ref = conv.col2im(col[:, :, :, :part], base.copy()[:, :part])
    got = cuda_kernels.col2im(col, base.copy())
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert float(xp.abs(got - want).max()) <= tol * max(1.0, float(xp.abs(want).max()))
    sliced = base.copy()  # a non-contiguous target: a batch slice, as conv2d_backward passes
    cuda_kernels.col2im(col[:, :, :, :part], sliced[:, :part])
    assert float(xp.abs(sliced[:, :part] - ref).max()) <= tol * 10
    assert bool((sliced[:, part:] == base[:, part:]).all())


@settings(max_examples=60, deadline=None)
@given(conv_shapes)
def test_gathers_equal_the_generic_code_emulated(emulator, case):
    with mock.patch.object(cuda_kernels, "_kernel", emulator.kernel):
        check_gathers(np, case, bitwise=True)


@needs_gpu
@settings(max_examples=40, deadline=None)
@given(conv_shapes)
def test_gathers_equal_the_generic_code_on_the_gpu(case):
    check_gathers(Device("gpu:0").xp, case, bitwise=False)


# --------------------------------------------------------------------------- max pool
pool_values = st.sampled_from(["normal", "ties", "special"])


def pool_input(kind: str, shape, dtype, seed: int, p_nan: float, p_ninf: float):
    """Normal values; or few distinct ones (ties); or those with NaN, +-inf and +-0."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal(shape).astype(dtype)
    x = rng.integers(-1, 3 if kind == "ties" else 2, shape).astype(dtype)
    if kind == "special":  # many windows whose maximum is 0: -0 and +0 tie
        x[x == 0] = np.where(rng.random(int((x == 0).sum())) < 0.5, -0.0, 0.0)
        x[rng.random(shape) < 0.1] = np.inf
        x[rng.random(shape) < p_ninf] = -np.inf
        x[rng.random(shape) < p_nan] = np.nan
    return x


def check_pool(xp, x_np, size, stride, dout_dtype, seed: int, bitwise: bool):
    """Kernel and generic code: out, code and cache; dx from each cache by each backward."""
    x = xp.asarray(x_np)
    kh, kw = pair(size)
    with generic_code():
        out_g, cache_g = pool.maxpool2d_forward(x, size, stride)
    out_k, cache_k = cuda_kernels.maxpool2d_forward(x, (kh, kw), pair(stride))
    assert cache_k[:4] == cache_g[:4]  # x.shape, x.dtype, (kh, kw), (sh, sw)
    assert cache_k[4].dtype == cache_g[4].dtype == np.int8
    np.testing.assert_array_equal(np_of(cache_k[4]), np_of(cache_g[4]))
    if bitwise:
        assert_same_bits(out_k, out_g)
    else:
        np.testing.assert_array_equal(np_of(out_k), np_of(out_g))
    # the code points at the output in every window without a NaN
    code, o = np_of(cache_k[4]), np_of(out_k)
    (sh, sw), (oh, ow) = pair(stride), o.shape[2:]
    rows = np.arange(oh)[:, None] * sh + code // kw
    cols = np.arange(ow)[None, :] * sw + code % kw
    batch = np.arange(x_np.shape[0])[:, None, None, None]
    channels = np.arange(x_np.shape[1])[None, :, None, None]
    picked = x_np[batch, channels, rows, cols]
    clean = ~np.isnan(o)
    np.testing.assert_array_equal(picked[clean], o[clean])

    dout = xp.asarray(rand(seed, o.shape, dout_dtype))
    dx_k = cuda_kernels.maxpool2d_backward(dout, cache_k)
    dx_k_from_g = cuda_kernels.maxpool2d_backward(dout, cache_g)
    with generic_code():
        dx_g = pool.maxpool2d_backward(dout, cache_g)
        dx_g_from_k = pool.maxpool2d_backward(dout, cache_k)
    assert dx_k.dtype == x.dtype
    for got in (dx_k, dx_k_from_g, dx_g_from_k):
        if bitwise:
            assert_same_bits(got, dx_g)
        else:
            np.testing.assert_array_equal(np_of(got), np_of(dx_g))


pool_case_args = dict(max_n=2, max_c=3, max_size=5, max_stride=6, max_extra=8)


@fast(40)
@given(
    case=pool_cases(**pool_case_args),
    dtype=dtypes,
    seed=seeds,
    kind=pool_values,
    p_nan=st.sampled_from([0.0, 0.05, 0.3, 0.9]),
    p_ninf=st.sampled_from([0.0, 0.3, 0.9]),
    dout_dtype=st.sampled_from(["same", "float64"]),
)
def test_maxpool_equals_the_generic_code_emulated(
    emulated, case, dtype, seed, kind, p_nan, p_ninf, dout_dtype
):
    emulated.calls.clear()  # (the fixture lives across hypothesis' examples)
    x = pool_input(kind, case.x_shape, dtype, seed, p_nan, p_ninf)
    dd = dtype if dout_dtype == "same" else np.float64
    check_pool(np, x, case.size, case.stride, dd, seed + 1, bitwise=True)
    suffix = "f32" if dtype == np.float32 else "f64"
    assert emulated.calls == [f"maxpool_fwd_{suffix}"] + [f"maxpool_bwd_{suffix}"] * 2


NAN, INF = np.nan, np.inf
WINDOWS = [  # one window each, as in pool.py's docstring; the generic code says the rest
    [[0.0, 1.0], [1.0, 0.0]],  # a tie: the first row's 1
    [[0.0, 0.0], [1.0, 1.0]],  # a tie in a row: its first column
    [[NAN, 5.0], [1.0, 2.0]],  # NaN first: offset 0, the NaN
    [[1.0, NAN, 5.0], [7.0, 8.0, 9.0]],  # the first row's numbers before its NaN
    [[1.0, 2.0], [3.0, NAN]],  # rows above the first row with a NaN: the 2
    [[1.0, 2.0, 3.0], [NAN, 9.0, 9.0]],
    [[NAN, NAN], [NAN, NAN]],
    [[-INF, -INF], [-INF, -INF]],
    [[-INF, NAN], [-INF, 7.0]],
    [[-0.0, 0.0], [0.0, -0.0]],  # equal zeros: the value is NumPy's maximum's, -0 or +0
    [[0.0, -0.0], [-1.0, -1.0]],
    [[-0.0, -1.0], [0.0, -1.0]],
    [[INF, INF], [1.0, INF]],
]


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: str(w).replace(" ", ""))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_special_windows_emulated(emulated, window, dtype):
    x = np.array(window, dtype=dtype)[None, None]
    check_pool(np, x, x.shape[2:], 1, dtype, 0, bitwise=True)
    # the same window tiled, overlapping: (2h-1) x (2w-1) with stride 1
    tiled = np.tile(x, (2, 3, 2, 2))[:, :, 1:, :-1]
    check_pool(np, tiled, x.shape[2:], 1, dtype, 1, bitwise=True)


def test_maxpool_windows_over_128_take_the_generic_code(emulated, monkeypatch):
    """A 12x12 window has 144 offsets, more than an int8 code holds: no kernel."""
    monkeypatch.setattr(cuda_kernels, "enabled", enabled_for_numpy)
    rng = np.random.default_rng(0)
    x = rng.permutation(2 * 3 * 26 * 27).reshape(2, 3, 26, 27).astype(np.float64)
    out, cache = pool.maxpool2d_forward(x, 12, 7)
    dx = pool.maxpool2d_backward(np.ones_like(out), cache)
    assert cache[4].dtype == np.int16 and emulated.calls == []
    monkeypatch.undo()
    want, want_cache = pool.maxpool2d_forward(x, 12, 7)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(dx, pool.maxpool2d_backward(np.ones_like(out), want_cache))
    with pytest.raises(ValueError, match="128"):
        cuda_kernels.maxpool2d_forward(x, (12, 12), (7, 7))
    with pytest.raises(ValueError, match="int8"):
        cuda_kernels.maxpool2d_backward(np.ones_like(out), cache)


# -------------------------------------------------------------------------------- LRN
lrn_shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).flatmap(
    lambda rest: st.tuples(st.integers(1, 3), st.integers(1, 9)).map(lambda nc: nc + tuple(rest))
)


def check_lrn(xp, x_np, n, k, alpha, beta, dout_np):
    """Kernel and generic code: the cache layout, exact D, scale and out to 8 ulp, and each
    backward on each cache exactly (the backward has no pow)."""
    x = xp.asarray(x_np)
    with generic_code():
        out_g, cache_g = lrn.lrn_forward(x, n, k, alpha, beta)
    out_k, cache_k = cuda_kernels.lrn_forward(x, n, k, alpha, beta)
    assert len(cache_k) == 7 and cache_k[0] is x and cache_k[1] is out_k
    assert cache_k[4:] == cache_g[4:] == (n, alpha, beta)
    for a, b in zip(cache_k[1:4], cache_g[1:4], strict=True):
        assert a.shape == b.shape == x.shape and a.dtype == b.dtype == x.dtype
    assert_same_bits(cache_k[2], cache_g[2])  # D = k + alpha * (the same sum, same order)
    assert_ulps(cache_k[3], cache_g[3], 8)  # D^-beta: two pow implementations
    assert_ulps(out_k, out_g, 8)

    dout = xp.asarray(dout_np)
    dx_k = cuda_kernels.lrn_backward(dout, cache_k)
    dx_k_from_g = cuda_kernels.lrn_backward(dout, cache_g)
    with generic_code():
        dx_g = lrn.lrn_backward(dout, cache_g)
        dx_g_from_k = lrn.lrn_backward(dout, cache_k)
    assert dx_k.dtype == x.dtype
    assert_same_bits(dx_k, dx_g_from_k)
    assert_same_bits(dx_k_from_g, dx_g)
    # the two caches differ by the pow's ulps: so do the gradients, relative to their terms
    terms = np.abs(np_of(dout)) * np_of(cache_g[3]) + np.abs(np_of(dx_g))
    err = np.abs(np_of(dx_k).astype(np.float64) - np_of(dx_g))
    assert (err <= 64 * np.finfo(x_np.dtype).eps * (terms + terms.max())).all()


@fast(40)
@given(
    shape=lrn_shapes,
    n=lrn_n,
    k=lrn_k,
    alpha=lrn_alpha,
    beta=lrn_beta,
    dtype=dtypes,
    seed=seeds,
    scale=st.sampled_from([0.01, 2.0, 100.0]),
    dout_dtype=st.sampled_from(["same", "float64"]),
)
def test_lrn_equals_the_generic_code_emulated(
    emulated, shape, n, k, alpha, beta, dtype, seed, scale, dout_dtype
):
    emulated.calls.clear()  # (the fixture lives across hypothesis' examples)
    x = rand(seed, shape, dtype, scale=scale)
    x[np.random.default_rng(seed).random(shape) < 0.1] = 0.0
    dout = rand(seed + 1, shape, dtype if dout_dtype == "same" else np.float64)
    check_lrn(np, x, n, k, alpha, beta, dout)
    suffix = "f32" if dtype == np.float32 else "f64"
    assert emulated.calls == [f"lrn_fwd_{suffix}", f"lrn_bwd_{suffix}", f"lrn_bwd_{suffix}"]


def test_lrn_non_contiguous_input_emulated(emulated):
    x = rand(0, (3, 7, 5, 4)).transpose(0, 1, 3, 2)[:, ::-1]
    check_lrn(np, x, 5, 2.0, 1e-1, 0.75, rand(1, x.shape))
    x = rand(0, (4, 6, 3), np.float32)[::2, 1:]
    check_lrn(np, x, 4, 1.0, 0.5, 0.5, rand(1, x.shape, np.float32)[:, ::-1])


def test_maxpool_non_contiguous_input_emulated(emulated):
    x = rand(0, (2, 3, 7, 8)).transpose(0, 1, 3, 2)[:, ::-1]
    check_pool(np, x, 3, 2, np.float64, 1, bitwise=True)


# ------------------------------------------------------------------------- dispatching
def test_kernels_never_take_numpy_arrays(monkeypatch):
    x = np.zeros((1, 1, 1, 1, 2, 2), np.float32)
    monkeypatch.setenv("MINIALEXNET_KERNELS", "1")
    assert not cuda_kernels.enabled(x) and not cuda_kernels.enabled(x, np.float64)
    monkeypatch.delenv("MINIALEXNET_KERNELS")
    assert not cuda_kernels.enabled(x)


def test_kernel_lookup_refuses_other_dtypes():
    with pytest.raises(TypeError, match="float32 or float64"):
        cuda_kernels._kernel("maxpool_bwd", np.dtype(np.float16))


@pytest.mark.parametrize("flag", [None, "1"])
def test_public_functions_never_call_kernels_with_numpy(monkeypatch, flag):
    if flag is None:
        monkeypatch.delenv("MINIALEXNET_KERNELS", raising=False)
    else:
        monkeypatch.setenv("MINIALEXNET_KERNELS", flag)

    def refuse(*args, **kwargs):
        raise AssertionError("a CUDA kernel was called with NumPy arrays")

    monkeypatch.setattr(cuda_kernels, "_kernel", refuse)
    for name in ("im2col", "col2im", "maxpool2d_forward", "maxpool2d_backward"):
        monkeypatch.setattr(cuda_kernels, name, refuse)
    monkeypatch.setattr(cuda_kernels, "lrn_forward", refuse)
    monkeypatch.setattr(cuda_kernels, "lrn_backward", refuse)
    for dtype in (np.float32, np.float64):
        x = rand(0, (2, 4, 9, 9), dtype)
        out, cache = pool.maxpool2d_forward(x, 3, 2)
        pool.maxpool2d_backward(np.ones_like(out), cache)
        out, cache = lrn.lrn_forward(x, 5, 2.0, 1e-4, 0.75)
        lrn.lrn_backward(np.ones_like(out), cache)
        out, cache = conv.conv2d_forward(x, rand(1, (3, 4, 3, 3), dtype), None, 2, 1)
        conv.conv2d_backward(np.ones_like(out), cache)


def test_public_functions_dispatch_to_the_kernels_emulated(emulated, monkeypatch):
    """``enabled`` forced true for NumPy: conv, pool and LRN run on the emulated kernels
    through their public functions, and a small network's passes agree with the array code."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 3, 19, 19)).astype(dtype)
        w = (rng.standard_normal((8, 3, 5, 5)) * 0.2).astype(dtype)
        b = rng.standard_normal(8).astype(dtype)

        def net(x=x, w=w, b=b):
            h, c1 = conv.conv2d_forward(x, w, b, 2, 1)
            h, c2 = lrn.lrn_forward(h, 5, 2.0, 1e-2, 0.75)
            h, c3 = pool.maxpool2d_forward(h, 3, 2)
            g = np.cos(h)
            g = pool.maxpool2d_backward(g, c3)
            g = lrn.lrn_backward(g, c2)
            return (h, *conv.conv2d_backward(g, c1))

        want = net()
        assert emulated.calls == []
        with monkeypatch.context() as m:
            m.setattr(cuda_kernels, "enabled", enabled_for_numpy)
            got = net()
        suffix = "f32" if dtype == np.float32 else "f64"
        assert sorted(set(emulated.calls)) == sorted(f"{k}_{suffix}" for k in KERNELS)
        emulated.calls.clear()
        tol = 1e-5 if dtype == np.float32 else 1e-12
        for a, b_ in zip(got, want, strict=True):
            assert a.dtype == b_.dtype and a.shape == b_.shape
            assert float(np.abs(a - b_).max()) <= tol * max(1.0, float(np.abs(b_).max()))


def test_float16_never_reaches_the_kernels_emulated(emulated, monkeypatch):
    """float16 runs the generic code, also a pool backward given a float32 gradient."""
    monkeypatch.setattr(cuda_kernels, "enabled", enabled_for_numpy)
    x = rand(0, (2, 3, 9, 9), np.float16)
    out, cache = pool.maxpool2d_forward(x, 3, 2)
    dx = pool.maxpool2d_backward(rand(1, out.shape, np.float32), cache)
    out2, cache2 = lrn.lrn_forward(x, 5, 2.0, 1e-4, 0.75)
    dx2 = lrn.lrn_backward(rand(1, x.shape, np.float32), cache2)
    assert emulated.calls == [] and dx.dtype == dx2.dtype == np.float16


# ------------------------------------------------------------------------------- GPU
@needs_gpu
def test_kernels_are_on_for_cupy_unless_switched_off(monkeypatch):
    x = Device("gpu:0").xp.zeros((1, 1, 1, 1, 2, 2), "float32")
    monkeypatch.delenv("MINIALEXNET_KERNELS", raising=False)
    assert cuda_kernels.enabled(x) and cuda_kernels.enabled(x, "float64")
    assert not cuda_kernels.enabled(x, "float16") and not cuda_kernels.enabled(x.astype("f2"))
    monkeypatch.setenv("MINIALEXNET_KERNELS", "0")
    assert not cuda_kernels.enabled(x)


@needs_gpu
@fast(20)
@given(
    case=pool_cases(**pool_case_args),
    dtype=dtypes,
    seed=seeds,
    kind=pool_values,
    p_nan=st.sampled_from([0.0, 0.05, 0.3, 0.9]),
    p_ninf=st.sampled_from([0.0, 0.3, 0.9]),
)
def test_maxpool_equals_the_generic_code_on_the_gpu(case, dtype, seed, kind, p_nan, p_ninf):
    x = pool_input(kind, case.x_shape, dtype, seed, p_nan, p_ninf)
    # sign of zero not compared: CuPy's maximum may order -0 and +0 its own way
    check_pool(Device("gpu:0").xp, x, case.size, case.stride, dtype, seed + 1, bitwise=False)


@needs_gpu
@fast(20)
@given(shape=lrn_shapes, n=lrn_n, k=lrn_k, alpha=lrn_alpha, beta=lrn_beta, dtype=dtypes, seed=seeds)
def test_lrn_equals_the_generic_code_on_the_gpu(shape, n, k, alpha, beta, dtype, seed):
    x = rand(seed, shape, dtype, scale=2.0)
    check_lrn(Device("gpu:0").xp, x, n, k, alpha, beta, rand(seed + 1, shape, dtype))


@needs_gpu
def test_public_pool_and_lrn_use_the_kernels_on_the_gpu(monkeypatch):
    xp = Device("gpu:0").xp
    x = xp.asarray(rand(0, (2, 4, 13, 13), np.float32))
    calls = []
    real = cuda_kernels._kernel
    monkeypatch.setattr(cuda_kernels, "_kernel", lambda n, d: calls.append(n) or real(n, d))
    monkeypatch.delenv("MINIALEXNET_KERNELS", raising=False)
    out, cache = pool.maxpool2d_forward(x, 3, 2)
    pool.maxpool2d_backward(xp.ones_like(out), cache)
    out, cache = lrn.lrn_forward(x, 5, 2.0, 1e-4, 0.75)
    lrn.lrn_backward(xp.ones_like(out), cache)
    assert calls == ["maxpool_fwd", "maxpool_bwd", "lrn_fwd", "lrn_bwd"]
    calls.clear()
    big = xp.asarray(rand(0, (1, 1, 26, 27)))
    out, cache = pool.maxpool2d_forward(big, 12, 7)  # 144 offsets: the generic code
    pool.maxpool2d_backward(xp.ones_like(out), cache)
    assert calls == [] and cache[4].dtype == np.int16


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_alexnet_conv1_and_conv2_agree_with_kernels_on_and_off(dtype, monkeypatch):
    dev = Device("gpu:0")
    xp = dev.xp
    rng = np.random.default_rng(1)
    for n, c, h, k, s, p, g, co in [(4, 3, 227, 11, 4, 0, 1, 96), (4, 96, 27, 5, 1, 2, 2, 256)]:
        x = xp.asarray(rng.standard_normal((n, c, h, h)).astype(dtype))
        w = xp.asarray(rng.standard_normal((co, c // g, k, k)).astype(dtype) * 0.01)
        b = xp.asarray(rng.standard_normal(co).astype(dtype))
        results = []
        for flag in ("0", "1"):
            monkeypatch.setenv("MINIALEXNET_KERNELS", flag)
            out, cache = conv.conv2d_forward(x, w, b, s, p, g, col_bytes=2**22)  # chunked
            dout = xp.asarray(np.random.default_rng(2).standard_normal(out.shape).astype(dtype))
            results.append((out, *conv.conv2d_backward(dout, cache)))
        tol = 1e-4 if dtype == "float32" else 1e-10
        for a, b_ in zip(*results, strict=True):
            scale = max(1.0, float(xp.abs(a).max()))
            assert float(xp.abs(a - b_).max()) <= tol * scale
