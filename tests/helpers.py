"""Shared hypothesis strategies and assertions for the tests of minialexnet.functional.

Hypothesis draws shapes and hyper-parameters (and a seed); the array contents
come from a seeded NumPy generator, which is much faster than drawing every
entry through hypothesis and still reproducible from the printed example.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from minialexnet.backend import gpu_available, to_numpy

# --------------------------------------------------------------------------- GPU tests
GPU_REASON = "needs CuPy and a CUDA GPU (none here); install with pip install 'minialexnet[gpu]'"


def needs_gpu(test: Any) -> Any:
    """Mark ``test`` as a GPU test: ``pytest -m gpu`` selects it, and it skips (saying
    why) where CuPy or a CUDA device is missing."""
    return pytest.mark.gpu(pytest.mark.skipif(not gpu_available(), reason=GPU_REASON)(test))


def record_outputs(model: Any) -> dict[str, Any]:
    """Make every layer of ``model`` keep its last forward output in the returned dict,
    under the layer's name (``"a.conv1"``, ``"fc8"``, ...)."""
    outputs: dict[str, Any] = {}
    for name, layer, _ in model.named_layers():

        def spy(x: Any, train: bool = True, _f: Any = layer.forward, _n: str = name) -> Any:
            outputs[_n] = _f(x, train=train)
            return outputs[_n]

        layer.forward = spy
    return outputs


class FakeCompileError(Exception):
    """Stands for ``cupy.cuda.compiler.CompileException``: its message is NVRTC's log."""


class FakeCupy:
    """A stand-in for CuPy with ``gpus`` GPUs, run on the CPU: which GPU was current when.

    CuPy makes new arrays and runs kernels on the CURRENT GPU, whatever GPU their
    inputs are on; this records that, so CPU tests can check the library enters the
    right device. ``fake.ndarray`` is a NumPy subclass whose arrays remember their GPU
    (``a.device.id``, ``a.device`` a context manager as CuPy's); ``fake.on(i, host)``
    puts a host array on GPU ``i``; ``fake.cuda.Device(i)`` makes GPU ``i`` current
    (``fake.current``). Every other name (``fake.asarray``, ``fake.arange``,
    ``fake.exp``, ...) is NumPy's function, which records ``(name, current GPU)`` in
    ``fake.calls`` and puts its result on the current GPU. ``fake.RawModule(code=...)``
    stands for CuPy's: ``get_function(symbol)`` fails for a symbol the code does not
    instantiate, and with :class:`FakeCompileError` (the ``#error`` line as the log) for
    code holding ``#error``; its kernels record ``(symbol, current GPU)`` in
    ``fake.launches`` when called and in ``fake.loads`` when loaded (``.kernel``).
    They compute nothing. ``fake.install(monkeypatch)`` makes it the CuPy the library sees.
    """

    def __init__(self, gpus: int = 2) -> None:
        self.__name__ = "cupy"
        self.current = 0
        self.calls: list[tuple[str, int]] = []
        self.launches: list[tuple[str, int]] = []
        self.loads: list[tuple[str, int]] = []
        fake = self

        class ndarray(np.ndarray):  # noqa: N801 -- CuPy's name
            gpu = 0

            def __array_finalize__(self, obj: Any) -> None:
                self.gpu = getattr(obj, "gpu", fake.current)

            @property
            def device(self) -> Any:
                return fake.cuda.Device(self.gpu)

        class Device:
            def __init__(self, index: int | None = None) -> None:
                self.id = fake.current if index is None else int(index)
                self.saved: list[int] = []

            def __enter__(self) -> Device:
                self.saved.append(fake.current)
                fake.current = self.id
                return self

            def __exit__(self, *exc: object) -> None:
                fake.current = self.saved.pop()

            def synchronize(self) -> None:
                pass

        class RawKernel:
            def __init__(self, symbol: str) -> None:
                self.symbol = symbol

            @property
            def kernel(self) -> RawKernel:
                fake.loads.append((self.symbol, fake.current))
                return self

            def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
                fake.launches.append((self.symbol, fake.current))

        class RawModule:
            def __init__(self, *, code: str) -> None:
                self.code = code

            def compile(self) -> None:
                errors = [line for line in self.code.splitlines() if line.startswith("#error")]
                if errors:
                    raise FakeCompileError("\n".join(errors))

            def get_function(self, symbol: str) -> RawKernel:
                self.compile()
                if f"({symbol}, " not in self.code:
                    raise RuntimeError(f"CUDA_ERROR_NOT_FOUND: named symbol not found: {symbol}")
                return RawKernel(symbol)

        self.ndarray, self.RawModule = ndarray, RawModule
        self.cuda = SimpleNamespace(
            Device=Device,
            runtime=SimpleNamespace(getDeviceCount=lambda: gpus, getDevice=lambda: fake.current),
        )

    def __getattr__(self, name: str) -> Any:
        value = getattr(np, name)
        if not callable(value) or isinstance(value, type):  # dtypes, constants
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, self.current))
            result = value(*args, **kwargs)
            return result if any(result is a for a in args) else self._here(result)

        return call

    def _here(self, result: Any) -> Any:
        """``result`` (NumPy's) as arrays on the current GPU."""
        if isinstance(result, tuple):
            return tuple(self._here(r) for r in result)
        if isinstance(result, np.ndarray):
            result = result.view(self.ndarray)
            result.gpu = self.current
        return result

    def asnumpy(self, a: Any) -> np.ndarray:
        """A host copy, as ``cupy.asnumpy``."""
        return np.array(a).view(np.ndarray)

    def on(self, gpu: int, host: Any) -> Any:
        """A copy of ``host`` on GPU ``gpu`` (the current GPU is left as it was)."""
        with self.cuda.Device(gpu):
            return self._here(np.array(host))

    def install(self, monkeypatch: Any) -> FakeCupy:
        """Make this the CuPy that minialexnet imports and recognises (undone after the test)."""
        from minialexnet import backend  # noqa: PLC0415

        monkeypatch.setitem(sys.modules, "cupy", self)
        monkeypatch.setattr(backend, "_cupy", self)
        monkeypatch.setattr(backend, "_cupy_import_error", None)
        return self


# --------------------------------------------------------------------------- settings
# Hypothesis combined with the function-scoped ``device`` fixture is fine here: every
# example builds its own arrays, so nothing leaks between examples.
FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


# The suite runs 4x the base counts (~20 s); deeper: MINIALEXNET_EXAMPLES_SCALE=20 pytest tests/...
EXAMPLES_SCALE = max(1, int(os.environ.get("MINIALEXNET_EXAMPLES_SCALE", "4")))


def fast(max_examples: int = 30) -> settings:
    """Settings for the suite: few examples, no deadline, fixtures allowed."""
    return settings(
        max_examples=max_examples * EXAMPLES_SCALE,
        deadline=None,
        suppress_health_check=FIXTURE_OK,
    )


GRAD_TOL = 1e-6  # relative error the suite asserts against finite differences (float64)

DTYPES = [np.float32, np.float64]
dtypes = st.sampled_from(DTYPES)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


# --------------------------------------------------------------------------- arrays
def rand(seed: int, shape: tuple[int, ...], dtype: Any = np.float64, scale: float = 1.0):
    """Standard-normal array (times ``scale``) from ``seed``."""
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal(shape)).astype(dtype)


def distinct(seed: int, shape: tuple[int, ...], dtype: Any = np.float64, gap: float = 0.1):
    """All entries distinct, at least ``gap`` apart: a shuffled, scaled ``arange``.

    Keeps every pooling window free of ties, so finite differences with eps=1e-6
    never step across a change of the arg-max.
    """
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    vals = (rng.permutation(size) - size / 2.0) * gap
    return vals.reshape(shape).astype(dtype)


def away_from_zero(seed: int, shape: tuple[int, ...], dtype: Any = np.float64, lo: float = 1e-2):
    """Random signs times magnitudes in [lo, 2): no entry near ReLU's kink."""
    rng = np.random.default_rng(seed)
    mag = rng.uniform(lo, 2.0, size=shape)
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return (sign * mag).astype(dtype)


def on(device: Any, *arrays: Any) -> Any:
    """``arrays`` moved to ``device`` (one array -> that array, several -> a tuple)."""
    moved = tuple(None if a is None else device.asarray(a) for a in arrays)
    return moved[0] if len(moved) == 1 else moved


def npy(a: Any) -> Any:
    """A NumPy array of any (numpy/cupy/scalar) array; None stays None."""
    return None if a is None else np.asarray(to_numpy(a))


# --------------------------------------------------------------------------- assertions
def tol(dtype: Any) -> dict[str, float]:
    """rtol/atol for comparing an op in ``dtype`` with a float64 reference."""
    if np.dtype(dtype) == np.float64:
        return {"rtol": 1e-10, "atol": 1e-12}
    return {"rtol": 1e-4, "atol": 1e-5}


def assert_close(actual: Any, expected: Any, dtype: Any = np.float64, scale: float = 1.0) -> None:
    """``actual`` (any device) matches ``expected``, with tolerance for ``dtype``.

    ``scale`` multiplies atol, for results whose magnitude grows with the sum length.
    """
    t = tol(dtype)
    a, e = npy(actual), npy(expected)
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape}"
    np.testing.assert_allclose(
        a.astype(np.float64), e.astype(np.float64), rtol=t["rtol"], atol=t["atol"] * scale
    )


def assert_dtype(a: Any, dtype: Any, what: str = "output") -> None:
    got = npy(a).dtype
    assert got == np.dtype(dtype), f"{what} has dtype {got}, expected {np.dtype(dtype)}"


class Snapshot:
    """Copies of arrays taken now; ``check()`` asserts they have not changed since.

    >>> snap = Snapshot(x=x, w=w)
    >>> conv2d_forward(x, w, None)
    >>> snap.check()
    """

    def __init__(self, **arrays: Any) -> None:
        self.arrays = {k: v for k, v in arrays.items() if v is not None}
        self.copies = {k: npy(v).copy() for k, v in self.arrays.items()}

    def check(self, when: str = "") -> None:
        for k, v in self.arrays.items():
            now = npy(v)
            assert now.dtype == self.copies[k].dtype, f"{k} changed dtype {when}"
            assert np.array_equal(now, self.copies[k], equal_nan=True), f"{k} was modified {when}"


# --------------------------------------------------------------------------- geometry
def pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def out_size(n: int, k: int, stride: int, pad: int = 0) -> int:
    return (n + 2 * pad - k) // stride + 1


def maybe_pair(values: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    """An int, or an (h, w) tuple of two (possibly different) ints."""
    return st.one_of(values, st.tuples(values, values))


@dataclass(frozen=True)
class ConvCase:
    n: int
    c_in: int
    c_out: int
    h: int
    w: int
    kh: int
    kw: int
    stride: Any
    pad: Any
    groups: int
    bias: bool

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c_in, self.h, self.w)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.c_out, self.c_in // self.groups, self.kh, self.kw)

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        (sh, sw), (ph, pw) = pair(self.stride), pair(self.pad)
        return (
            self.n,
            self.c_out,
            out_size(self.h, self.kh, sh, ph),
            out_size(self.w, self.kw, sw, pw),
        )


@st.composite
def conv_cases(
    draw: Any,
    max_n: int = 3,
    max_cpg: int = 3,
    max_groups: int = 3,
    max_k: int = 4,
    max_extra: int = 6,
    max_stride: int = 3,
    max_pad: int = 2,
    bias: bool | None = None,
) -> ConvCase:
    """A valid conv2d configuration: groups, strides, pads (ints or pairs), any bias."""
    groups = draw(st.integers(1, max_groups))
    cin_g = draw(st.integers(1, max_cpg))
    cout_g = draw(st.integers(1, max_cpg))
    kh, kw = draw(st.integers(1, max_k)), draw(st.integers(1, max_k))
    stride = draw(maybe_pair(st.integers(1, max_stride)))
    pad = draw(maybe_pair(st.integers(0, max_pad)))
    (ph, pw) = pair(pad)
    h = draw(st.integers(max(1, kh - 2 * ph), kh + max_extra))
    w = draw(st.integers(max(1, kw - 2 * pw), kw + max_extra))
    has_bias = draw(st.booleans()) if bias is None else bias
    return ConvCase(
        draw(st.integers(1, max_n)),
        cin_g * groups,
        cout_g * groups,
        h,
        w,
        kh,
        kw,
        stride,
        pad,
        groups,
        has_bias,
    )


@dataclass(frozen=True)
class PoolCase:
    n: int
    c: int
    h: int
    w: int
    size: Any
    stride: Any

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h, self.w)

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        (kh, kw), (sh, sw) = pair(self.size), pair(self.stride)
        return (self.n, self.c, out_size(self.h, kh, sh), out_size(self.w, kw, sw))

    @property
    def overlapping(self) -> bool:
        (kh, kw), (sh, sw) = pair(self.size), pair(self.stride)
        return sh < kh or sw < kw


@st.composite
def pool_cases(
    draw: Any,
    max_n: int = 2,
    max_c: int = 3,
    max_size: int = 4,
    max_stride: int = 3,
    max_extra: int = 6,
) -> PoolCase:
    """Max-pool configurations, overlapping (stride < size) and not, square or not."""
    size = draw(maybe_pair(st.integers(1, max_size)))
    stride = draw(maybe_pair(st.integers(1, max_stride)))
    kh, kw = pair(size)
    h = draw(st.integers(kh, kh + max_extra))
    w = draw(st.integers(kw, kw + max_extra))
    return PoolCase(draw(st.integers(1, max_n)), draw(st.integers(1, max_c)), h, w, size, stride)


# LRN hyper-parameters. Large alpha (0.1 - 1) makes the normaliser depend strongly on
# every channel of the window, so a window shifted by one channel is caught.
lrn_n = st.integers(1, 7)
lrn_k = st.sampled_from([0.5, 1.0, 2.0]) | st.floats(0.5, 3.0)
lrn_alpha = st.sampled_from([1e-4, 1e-2, 0.1, 0.5, 1.0]) | st.floats(1e-4, 1.0)
lrn_beta = st.sampled_from([0.75, 0.5, 1.0]) | st.floats(0.25, 1.5)


def process_gone(pid: int, within: float = 5.0) -> bool:
    """The process ``pid`` is gone (or a zombie nobody reaps) within ``within`` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False
