"""What a device is: the CPU (NumPy) or one CUDA GPU (CuPy).

Everything else in the library is written once against an "array module"
``xp`` -- ``numpy`` or ``cupy``, which share one API -- and asks this module
which one to use. This is the only file that imports CuPy.

    >>> dev = Device("cpu")            # or Device("gpu:0"), Device("auto")
    >>> x = dev.xp.zeros((2, 3), dtype=dev.xp.float32)
    >>> with dev:                      # makes the device current (GPU: cupy.cuda.Device)
    ...     y = dev.asarray([1.0, 2.0])
    >>> rng = dev.rng(seed=0)          # seeded generator whose arrays live on dev
    >>> get_array_module(y) is dev.xp
    True
"""

from __future__ import annotations

import contextlib
import gc
import sys
import tracemalloc
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "Device",
    "MemoryMeter",
    "SimulatedDeviceArray",
    "get_array_module",
    "gpu_available",
    "memory_held",
    "on_device_of",
    "reuse_freed_memory",
    "set_tf32",
    "tf32_enabled",
    "to_numpy",
    "tower_devices",
]

GPU_INSTALL_HINT = (
    "Install CuPy for your CUDA version, e.g. `pip install 'minialexnet[gpu]'` "
    "(cupy-cuda12x), or use Device('cpu')."
)

_cupy: ModuleType | None = None
_cupy_import_error: str | None = None


def _import_cupy() -> ModuleType | None:
    """Import CuPy once; remember why it failed so errors can say it."""
    global _cupy, _cupy_import_error
    if _cupy is None and _cupy_import_error is None:
        try:
            import cupy  # noqa: PLC0415 -- the only cupy import in the library

            _cupy = cupy
        except Exception as exc:  # ImportError, or a broken CUDA install
            _cupy_import_error = f"{type(exc).__name__}: {exc}"
    return _cupy


def _gpu_count() -> int:
    cupy = _import_cupy()
    if cupy is None:
        return 0
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


def gpu_available() -> bool:
    """True when CuPy imports and at least one CUDA device answers."""
    return _gpu_count() > 0


def reuse_freed_memory() -> bool:
    """Ask the C library to keep freed host memory for reuse (glibc on Linux only).

    glibc gives every allocation above 32 MB fresh pages from the kernel and
    returns them when freed, so each large temporary (an im2col buffer is
    70-112 MB for AlexNet's conv1/conv2) pays a page fault per page when first
    written: 5-15% of a CPU training step on the project's machine. With mmap
    disabled, trimming off and one arena for all threads (a worker thread's
    79 MB batch otherwise came from fresh pages every time: 18 ms against 11 ms
    to allocate and fill), freed blocks are reused instead. The training
    and benchmark commands call this once at start; a library import never
    does, since it changes the whole process. Returns True when it applied.
    """
    if sys.platform != "linux":
        return False
    try:
        import ctypes  # noqa: PLC0415

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # from glibc's malloc.h
        # One arena: each thread (the loader's workers, the towers) would otherwise get an
        # arena of its own that hands out fresh pages for every large batch it builds.
        libc.mallopt(m_arena_max, 1)
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to do
        return False


def _linalg_settings() -> Any:
    """CuPy's matmul settings module (``set_compute_type``), or None without CuPy."""
    if _import_cupy() is None:
        return None
    from cupy._core import _routines_linalg  # noqa: PLC0415 -- where CuPy keeps the switch

    return _routines_linalg


def set_tf32(enabled: bool) -> bool:
    """Let CuPy's float32 matrix products use TensorFloat-32 (``True``) or not (``False``).

    TF32 (NVIDIA Ampere and later: A100, H100, ...) rounds the inputs of a float32
    product to 10 bits of mantissa on the tensor cores and accumulates in float32:
    several times faster, but results differ from float32 in the fourth digit. The
    library leaves it off unless asked (``python -m minialexnet.train --tf32``); this
    switch is process-wide, and it also overrides a ``CUPY_TF32`` environment
    variable. Cards older than Ampere ignore it (CuPy warns). Returns True when it
    applied, False where CuPy is not importable (the CPU has no TF32).
    """
    linalg = _linalg_settings()
    if linalg is None:
        return False
    mode = linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT
    linalg.set_compute_type(np.float32, mode)
    return True


def tf32_enabled() -> bool:
    """True when CuPy's float32 matrix products may use TF32 (see :func:`set_tf32`)."""
    linalg = _linalg_settings()
    return linalg is not None and linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32


def get_array_module(*arrays: Any) -> ModuleType:
    """``cupy`` if any argument is a CuPy array, else ``numpy``.

    Only checks CuPy when it is already imported, so it costs nothing on the CPU.
    """
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy (GPU) or view (CPU) of any array, for printing and saving."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy.asnumpy(x)
    return np.asarray(x)


def on_device_of(x: Any) -> contextlib.AbstractContextManager[Any]:
    """``with on_device_of(x):`` makes the GPU that array ``x`` lives on current.

    CuPy makes new arrays and runs kernels on the CURRENT device, whatever device
    their inputs live on; code handed arrays (a loss given logits, a kernel launch)
    enters their device so that its work happens where they are. For a CuPy array
    this is ``x.device``; for anything else (NumPy, simulated ``cpu:N`` devices, a
    scalar) it does nothing.
    """
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return x.device
    return contextlib.nullcontext()


def _device_name_of(x: Any) -> str | None:
    """``"gpu:N"`` for a CuPy array, ``"cpu:N"`` for a simulated device's, else None (host)."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return f"gpu:{x.device.id}"
    return getattr(x, "device_name", None)


class Device:
    """The CPU or one GPU.

    ``Device("cpu")``, ``Device("gpu")`` (= ``"gpu:0"``), ``Device("gpu:N")``, or
    ``Device("auto")``: a GPU when CuPy and a CUDA device are usable, else the
    CPU with a one-line notice on stderr. ``Device("cpu:N")`` is a simulated
    CPU device for testing model parallelism without GPUs: its arrays are NumPy
    arrays that remember their device (:class:`SimulatedDeviceArray`), and an
    operation that mixes arrays of two such devices raises.

    Attributes: ``kind`` ("cpu" or "gpu"), ``index`` (GPU number, or ``None``),
    ``xp`` (the array module). A device is a context manager: on a GPU,
    ``with dev:`` makes it current (``cupy.cuda.Device(index)``); on the CPU it
    does nothing. Devices compare equal by name.
    """

    def __init__(self, spec: str | Device = "cpu") -> None:
        if isinstance(spec, Device):
            self.kind, self.index = spec.kind, spec.index
            self._cuda = spec._cuda
            return
        if not isinstance(spec, str):
            raise TypeError(
                f"Device: expected a string like 'cpu', 'gpu:0' or 'auto', got {spec!r}"
            )
        name = spec.strip().lower()
        if name == "auto":
            if gpu_available():
                name = "gpu:0"
            else:
                why = _cupy_import_error or "no CUDA device found"
                print(f"minialexnet: no usable GPU ({why}); running on the CPU.", file=sys.stderr)
                name = "cpu"
        if name == "cpu":
            self.kind, self.index, self._cuda = "cpu", None, None
            return
        if name in ("gpu", "cuda"):
            name = "gpu:0"
        kind, _, idx = name.partition(":")
        if kind not in ("gpu", "cuda", "cpu") or not idx.isdigit():
            raise ValueError(
                f"Device: unknown device {spec!r}; expected 'cpu', 'gpu', 'gpu:N' or 'auto' "
                "(or 'cpu:N', a simulated device for testing)"
            )
        index = int(idx)
        if kind == "cpu":
            self.kind, self.index, self._cuda = "cpu", index, None
            return
        cupy = _import_cupy()
        if cupy is None:
            raise RuntimeError(
                f"Device({spec!r}): CuPy is not importable ({_cupy_import_error}). "
                + GPU_INSTALL_HINT
            )
        count = _gpu_count()
        if index >= count:
            raise RuntimeError(
                f"Device({spec!r}): this machine has {count} usable CUDA device(s); "
                f"GPU {index} does not exist. "
                + (f"Pick gpu:0 .. gpu:{count - 1}." if count else GPU_INSTALL_HINT)
            )
        self.kind, self.index, self._cuda = "gpu", index, cupy.cuda.Device(index)

    # -- identity -----------------------------------------------------------
    @property
    def name(self) -> str:
        """The device's name: ``"cpu"``, ``"cpu:N"`` or ``"gpu:N"``."""
        if self.kind == "cpu":
            return "cpu" if self.index is None else f"cpu:{self.index}"
        return f"gpu:{self.index}"

    def __repr__(self) -> str:
        return f"Device({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def is_gpu(self) -> bool:
        """True for a CUDA device (arrays are CuPy arrays)."""
        return self.kind == "gpu"

    @property
    def xp(self) -> ModuleType:
        """``numpy`` on the CPU, ``cupy`` on a GPU."""
        return _cupy if self.kind == "gpu" else np  # type: ignore[return-value]

    # -- making it current --------------------------------------------------
    def __enter__(self) -> Device:
        if self._cuda is not None:
            self._cuda.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cuda is not None:
            self._cuda.__exit__(*exc)

    # -- arrays -------------------------------------------------------------
    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """``x`` as an array on this device (a copy only when it has to move).

        An array of ANOTHER device is first made contiguous on its own device, then
        copied: CuPy copies only contiguous arrays from one GPU to another (a strided
        view, such as a slice along axis 1, raises ``NotImplementedError``), and the
        simulated ``cpu:N`` devices refuse what CuPy refuses.
        """
        x = _contiguous_to_move(x, self)
        if self.kind == "cpu":
            if self.index is None:
                return np.asarray(to_numpy(x), dtype=dtype)  # the host: a plain NumPy array
            if getattr(x, "device_name", None) == self.name:
                return x if dtype is None else x.astype(dtype, copy=False)  # already here
            return _copy_to_simulated(x, self.name, dtype)
        with self:
            return self.xp.asarray(x, dtype=dtype)

    def holds(self, x: Any) -> bool:
        """True when array ``x`` lives on this device."""
        if self.kind == "cpu":
            return isinstance(x, np.ndarray) and getattr(x, "device_name", None) == (
                None if self.index is None else self.name
            )
        return isinstance(x, _cupy.ndarray) and x.device.id == self.index  # type: ignore[union-attr]

    def rng(self, seed: int | None = None) -> Any:
        """A seeded random generator that makes arrays on this device.

        NumPy's ``Generator`` (PCG64) on the CPU, CuPy's ``Generator`` on a GPU.
        Both have ``random(shape, dtype=...)``, ``standard_normal(shape, dtype=...)``
        and ``integers(...)``. The same seed on the CPU gives the same numbers,
        bit for bit.
        """
        if self.kind == "cpu":
            return np.random.default_rng(seed)
        with self:
            return self.xp.random.default_rng(seed)

    def synchronize(self) -> None:
        """Wait for queued GPU work to finish (for timing); no-op on the CPU."""
        if self._cuda is not None:
            self._cuda.synchronize()


def tower_devices(gpus: str | None, device: str = "cpu") -> list[Device]:
    """The devices the two towers go on, from the command line's ``--gpus`` and ``--device``.

    ``gpus="0,1"``: tower a on GPU 0, tower b on GPU 1; ``gpus="0"``: both on GPU 0;
    ``gpus=None`` (or empty): both on ``device`` ("cpu", "gpu:N", "auto"). Raises
    ValueError for a malformed ``gpus`` and RuntimeError for a GPU that is not there.
    """
    if not gpus:
        return [Device(device)]
    try:
        ids = [int(s) for s in gpus.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--gpus: expected numbers like 0 or 0,1, got {gpus!r}") from None
    if not 1 <= len(ids) <= 2:
        raise ValueError(f"--gpus: give one or two GPUs (one per tower), got {gpus!r}")
    return [Device(f"gpu:{i}") for i in ids]


def _simulated(host: np.ndarray, name: str) -> SimulatedDeviceArray:
    arr = host.view(SimulatedDeviceArray)
    arr.device_name = name
    return arr


def _contiguous_to_move(x: Any, target: Device) -> Any:
    """``x``, or a C-contiguous copy of it made on ITS device when it must move to another.

    CuPy's copy between two GPUs takes only contiguous arrays; the copy here runs
    inside ``with`` x's device, so it is x's GPU that makes it. Arrays that stay
    where they are, host arrays, and moves to the host (which copy any layout) are
    left as they are.
    """
    source = _device_name_of(x)
    if source is None or source == target.name or target.name == "cpu" or x.flags.c_contiguous:
        return x
    with on_device_of(x):
        return x.copy()  # C order, on x's device (a simulated device's copy keeps its tag)


def _copy_to_simulated(x: Any, name: str, dtype: Any = None) -> SimulatedDeviceArray:
    """A copy of ``x`` on simulated device ``name``: stands for CuPy's copy between devices.

    Like CuPy's (``cupy.asarray`` of an array on another GPU: ``ndarray.copy``,
    which raises for an array that is neither C- nor F-contiguous), it refuses an
    array of another simulated device that is not contiguous, so that CPU tests
    catch a strided view sent across. Host arrays of any layout are copied.
    """
    source = getattr(x, "device_name", None)
    if source not in (None, name) and not (x.flags.c_contiguous or x.flags.f_contiguous):
        raise NotImplementedError(
            f"CuPy cannot copy non-contiguous array between devices (simulated: {source} -> "
            f"{name}, shape {tuple(x.shape)}, strides {x.strides}); make it contiguous on its "
            "own device first, as Device.asarray does"
        )
    return _simulated(np.array(to_numpy(x), dtype=dtype, order="C"), name)


def _device_names(values: Any) -> set[str]:
    """The simulated-device names of every array in (nested lists/tuples of) values."""
    names: set[str] = set()
    for v in values:
        if isinstance(v, (list, tuple)):
            names |= _device_names(v)
        elif getattr(v, "device_name", None) is not None:
            names.add(v.device_name)
    return names


class SimulatedDeviceArray(np.ndarray):
    """A NumPy array on a simulated CPU device ``Device("cpu:N")``, for tests.

    It stands in for an array on one of two GPUs: results of NumPy operations
    on it stay on its device, and an operation that combines arrays of two
    different simulated devices raises ``ValueError``, as CuPy does for arrays
    on two GPUs. So a CPU test of the two-tower model proves that only the
    explicit transfers (``Device.asarray``) cross between towers.
    """

    device_name: str | None = None

    def __array_finalize__(self, obj: Any) -> None:
        self.device_name = getattr(obj, "device_name", None)

    def _check(self, what: str, values: Any) -> str | None:
        names = _device_names(values)
        if len(names) > 1:
            raise ValueError(
                f"{what}: arrays on different devices {sorted(names)} were combined; move one "
                "with Device.asarray first"
            )
        return names.pop() if names else None

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out", ())
        name = self._check(ufunc.__name__, inputs + tuple(out))
        plain = [x.view(np.ndarray) if isinstance(x, np.ndarray) else x for x in inputs]
        if out:
            kwargs["out"] = tuple(
                o.view(np.ndarray) if isinstance(o, np.ndarray) else o for o in out
            )
        result = getattr(ufunc, method)(*plain, **kwargs)
        return out[0] if len(out) == 1 else out if out else _tag(result, name)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        name = self._check(func.__name__, tuple(args) + tuple(kwargs.values()))
        return _tag(super().__array_function__(func, types, args, kwargs), name)


def _tag(result: Any, name: str | None) -> Any:
    """Results of NumPy functions on a simulated device's arrays stay on that device."""
    if isinstance(result, tuple):
        return tuple(_tag(r, name) for r in result)
    if isinstance(result, np.ndarray) and name is not None:
        return _simulated(result.view(np.ndarray), name)
    return result


# -- memory ---------------------------------------------------------------------------------


def memory_held(device: Device) -> int | None:
    """Bytes that CuPy's memory pool holds on GPU ``device`` now; None for the CPU.

    The pool keeps the blocks it allocated (freed arrays return their block to it
    for reuse), so after some work this is about the most that work needed at once,
    plus fragmentation: the figure that must fit in the card's memory. Not so under
    a limit (``set_limit``), where the pool releases its cached blocks rather than
    grow: :class:`MemoryMeter` measures the peak in use itself. The CUDA context and
    cuBLAS's workspace (a few hundred MB) are not included.
    """
    if not device.is_gpu:
        return None
    with device:
        return int(_cupy.get_default_memory_pool().total_bytes())  # type: ignore[union-attr]


def _in_use_hook(start: dict[int, int], name: str) -> Any:
    """A CuPy memory hook counting, per GPU number, the pool's bytes in use and their peak.

    CuPy calls ``malloc_postprocess`` after its pool hands out a block (``mem_size``
    bytes, rounded as the pool rounds) and ``free_postprocess`` after a block comes
    back, with the GPU's number (``device_id``); ``start`` is what was in use at entry.
    """

    class InUse(_cupy.cuda.memory_hook.MemoryHook):  # type: ignore[union-attr]
        def __init__(self) -> None:
            self.name = name  # CuPy keys registered hooks by name: one per meter
            self.in_use = {i: int(n) for i, n in start.items()}
            self.peak = dict(self.in_use)

        def malloc_postprocess(self, **kw: Any) -> None:
            i = kw["device_id"]
            if kw["mem_ptr"] and i in self.in_use:  # mem_ptr 0: the allocation failed
                self.in_use[i] += kw["mem_size"]
                self.peak[i] = max(self.peak[i], self.in_use[i])

        def free_postprocess(self, **kw: Any) -> None:
            if kw["device_id"] in self.in_use:
                self.in_use[kw["device_id"]] -= kw["mem_size"]

    return InUse()


class MemoryMeter:
    """The peak memory of a stretch of work, per device::

        with MemoryMeter(devices) as meter:
            model = build(); step(); step()
        meter.peak     # {"gpu:0": bytes, "gpu:1": bytes} or {"cpu": bytes}
        meter.start    # the same at entry: peak - start is what the work itself added
        meter.held     # GPU only: what CuPy's pool holds at exit (see memory_held)

    On a GPU: the most bytes of CuPy's memory pool IN USE at once during the work
    (arrays alive at entry included), counted by a CuPy memory hook
    (``cupy.cuda.memory_hook.MemoryHook``) that adds every block the pool hands out
    and subtracts every block given back, per device. What the pool HOLDS is no
    measure of that: it keeps freed blocks for reuse (more), and under a limit
    (``set_limit``) it releases them rather than grow, so a peak long freed leaves
    no trace in it. CuPy calls memory hooks only in the thread that registered them,
    so allocations of other threads are not counted (the towers of a GPU model run
    in the caller's thread); the CUDA context and cuBLAS's workspace are not
    included. On entry the pool's unused blocks are released. On the CPU: the peak
    of memory traced by ``tracemalloc`` during the work (NumPy reports its array
    buffers to it), arrays allocated before entry not included, for the whole
    process (simulated ``cpu:N`` devices are not told apart, key ``"cpu"``). Both
    slow Python down: measure memory apart from timing.
    """

    def __init__(self, devices: Iterable[Device]) -> None:
        self.devices = list(dict.fromkeys(Device(d) for d in devices))
        self.peak: dict[str, int] = {}
        self.start: dict[str, int] = {}
        self.held: dict[str, int] = {}
        self._started_tracing = False
        self._hook: Any = None

    def __enter__(self) -> MemoryMeter:
        gc.collect()
        gpus = [d for d in self.devices if d.is_gpu]
        for device in gpus:
            device.synchronize()
            with device:
                pool = _cupy.get_default_memory_pool()  # type: ignore[union-attr]
                pool.free_all_blocks()
                self.start[device.name] = int(pool.used_bytes())
        if gpus:
            start = {d.index: self.start[d.name] for d in gpus}
            hook = _in_use_hook(start, f"minialexnet.MemoryMeter.{id(self)}")
            hook.__enter__()
            self._hook = hook
        if any(not d.is_gpu for d in self.devices):
            self._started_tracing = not tracemalloc.is_tracing()
            if self._started_tracing:
                tracemalloc.start()
            tracemalloc.reset_peak()
            self.start["cpu"] = tracemalloc.get_traced_memory()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._hook is not None:
            self._hook.__exit__(*exc)
            for device in self.devices:
                if device.is_gpu:
                    device.synchronize()
                    self.peak[device.name] = self._hook.peak[device.index]
                    self.held[device.name] = memory_held(device) or 0
            self._hook = None
        if any(not d.is_gpu for d in self.devices):
            self.peak["cpu"] = tracemalloc.get_traced_memory()[1]
            if self._started_tracing:
                tracemalloc.stop()
