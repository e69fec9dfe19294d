"""Peak memory (MemoryMeter), the paper's 3 GB per GPU, and the TF32 switch.

The paper's two GTX 580s had 3 GB each: the model at batch 128 must train within
3 GiB per tower. The same array code allocates the same buffers with NumPy and
CuPy, so the CPU measures it too (tracemalloc sees NumPy's buffers); on a GPU the
meter counts the bytes of CuPy's pool in use with a memory hook. (A limit on the
pool proves nothing: the pool releases its cached blocks rather than pass it, so
what it holds never exceeds the limit.) The hook's bookkeeping is checked on the
CPU with a stand-in CuPy.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import needs_gpu

from minialexnet import functional as F
from minialexnet.backend import Device, MemoryMeter, set_tf32, tf32_enabled
from minialexnet.functional import conv
from minialexnet.models import model_from_config
from minialexnet.optim import SGD

GiB = 2**30


def _train_steps(devices: list[Device], batch: int, steps: int = 2) -> None:
    model = model_from_config(
        {"arch": "alexnet", "num_classes": 1000, "init": "scaled"}, devices=devices, seed=0
    )
    optimizer = SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    home = devices[0]
    with home:
        x = home.rng(0).standard_normal((batch, 3, 227, 227), dtype=np.float32) * 60
    y = np.arange(batch) % 1000
    for _ in range(steps):
        _, dlogits = F.softmax_cross_entropy(model.forward(x, train=True), y)
        model.backward(dlogits)
        optimizer.step()
    for d in devices:
        d.synchronize()


def test_meter_sees_the_largest_array_alive_at_once_on_the_cpu():
    with MemoryMeter(["cpu"]) as meter:
        a = np.ones(2**20)  # 8 MiB
        del a
        b = [np.ones(2**18) for _ in range(3)]  # 3 x 2 MiB alive together
        del b
    assert 8 * 2**20 <= meter.peak["cpu"] < 9 * 2**20
    with MemoryMeter(["cpu"]) as small:
        c = np.ones(2**10)
    assert small.peak["cpu"] < 2**20, "a fresh meter starts from zero"
    del c


def test_im2col_chunking_bounds_the_convolution_memory():
    """conv2d_forward's col_bytes is what keeps the im2col buffer (and the peak) small."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3, 67, 67)).astype(np.float32)
    w = rng.standard_normal((8, 3, 11, 11)).astype(np.float32)
    col_bytes = 3 * 121 * 15 * 15 * 16 * 4  # the whole batch's columns: 5.2 MB
    peaks = {}
    for bound in (col_bytes, col_bytes // 8):
        with MemoryMeter(["cpu"]) as meter:
            out, cache = conv.conv2d_forward(x, w, None, 4, 0, 1, col_bytes=bound)
            conv.conv2d_backward(np.ones_like(out), cache)
            del out, cache
        peaks[bound] = meter.peak["cpu"]
    assert peaks[col_bytes // 8] < peaks[col_bytes] - col_bytes // 2


def test_paper_model_at_batch_128_needs_under_3_gib_per_tower_on_the_cpu():
    """Both towers on one device: the process's NumPy peak over two steps <= 2 x 3 GiB.

    Measured 2026-11-27: 3.66 GiB for both towers (parameters, gradients and momentum
    0.73 GiB of it), so 1.83 GiB per tower. The towers are the same size; the head
    (fc8, the loss) is 1% of it.
    """
    with MemoryMeter(["cpu"]) as meter:
        _train_steps([Device("cpu")], batch=128)
    assert meter.peak["cpu"] <= 2 * 3 * GiB, f"{meter.peak['cpu'] / GiB:.2f} GiB"


def test_tf32_switch_is_refused_quietly_without_cupy(monkeypatch):
    from minialexnet import backend

    monkeypatch.setattr(backend, "_import_cupy", lambda: None)
    assert set_tf32(True) is False
    assert tf32_enabled() is False


@needs_gpu
def test_meter_counts_a_gpu_array_freed_before_the_end():
    dev = Device("gpu:0")
    with MemoryMeter([dev]) as meter:
        with dev:
            a = dev.xp.ones(2**24, dtype=np.float32)  # 64 MiB
            del a
            dev.xp.get_default_memory_pool().free_all_blocks()  # gone from the pool too
    added = meter.peak["gpu:0"] - meter.start["gpu:0"]
    assert 64 * 2**20 <= added < 80 * 2**20
    assert meter.held["gpu:0"] - meter.start["gpu:0"] < 64 * 2**20, "the pool kept no trace"


@needs_gpu
def test_tf32_changes_float32_products_only_when_switched_on():
    dev = Device("gpu:0")
    xp = dev.xp
    major = int(xp.cuda.Device(0).compute_capability[:-1] or 0)
    if major < 8:
        pytest.skip("TF32 needs an Ampere or later GPU (compute capability 8.0+)")
    a = xp.full((1024, 1024), 1.0001, dtype=xp.float32)  # 1.0001 is not a TF32 number
    b = xp.ones((1024, 1024), dtype=xp.float32)
    try:
        set_tf32(False)
        exact = float((a @ b)[0, 0])
        set_tf32(True)
        assert tf32_enabled()
        rounded = float((a @ b)[0, 0])
    finally:
        set_tf32(False)
    assert abs(exact - 1024 * 1.0001) < 0.03  # float32: 1024.1024 up to rounding
    assert abs(rounded - 1024.0) < 0.01, "TF32 keeps 10 bits of mantissa: 1.0001 becomes 1"
    assert not tf32_enabled()


@needs_gpu
def test_paper_model_at_batch_128_trains_within_3_gib_per_tower_on_the_gpu():
    """The most bytes of CuPy's pool in use at once over two steps, per tower, <= 3 GiB:
    both towers on GPU 0 (6 GiB there), or 3 GiB on each of two GPUs. What the pool
    holds at the end (its cache included) is printed too."""
    import cupy

    count = cupy.cuda.runtime.getDeviceCount()
    devices = [Device("gpu:0"), Device("gpu:1")] if count >= 2 else [Device("gpu:0")]
    towers_per_device = 2 // len(devices)
    with MemoryMeter(devices) as meter:
        _train_steps(devices, batch=128)
    assert set(meter.peak) == {d.name for d in devices}
    for name, peak in meter.peak.items():
        per_tower = peak / towers_per_device
        print(
            f"{name}: {peak / GiB:.2f} GiB in use at most ({meter.held[name] / GiB:.2f} GiB "
            f"held by the pool), {per_tower / GiB:.2f} GiB per tower"
        )
        assert per_tower <= 3 * GiB, f"{name}: {per_tower / GiB:.2f} GiB per tower"


class _FakePool:
    """CuPy's MemoryPool as the backend uses it: per current device, blocks in use and
    blocks cached for reuse; ``malloc`` and ``free`` call the registered memory hooks
    with the block's device, as CuPy's pool does."""

    def __init__(self, current: list[int], hooks: dict) -> None:
        self.current, self.hooks = current, hooks
        self.in_use, self.cached = {0: 100, 1: 300}, {0: 400, 1: 400}

    def free_all_blocks(self) -> None:
        self.cached[self.current[0]] = 0

    def total_bytes(self) -> int:
        return self.in_use[self.current[0]] + self.cached[self.current[0]]

    def used_bytes(self) -> int:
        return self.in_use[self.current[0]]

    def malloc(self, size: int) -> tuple[int, int]:
        device = self.current[0]
        self.cached[device] -= min(self.cached[device], size)
        self.in_use[device] += size
        for hook in list(self.hooks.values()):
            hook.malloc_postprocess(
                device_id=device, size=size, mem_size=size, mem_ptr=1, pmem_id=1
            )
        return device, size

    def free(self, block: tuple[int, int]) -> None:
        device, size = block
        self.in_use[device] -= size
        self.cached[device] += size
        for hook in list(self.hooks.values()):
            hook.free_postprocess(device_id=device, mem_size=size, mem_ptr=1, pmem_id=1)


class _MemoryHook:
    """``cupy.cuda.memory_hook.MemoryHook``: registered by name while inside ``with``."""

    hooks: dict = {}

    def __enter__(self):
        if self.name in self.hooks:
            raise KeyError(f"memory hook {self.name} already exists")
        self.hooks[self.name] = self
        return self

    def __exit__(self, *exc):
        del self.hooks[self.name]

    def malloc_postprocess(self, **kwargs):
        pass

    def free_postprocess(self, **kwargs):
        pass


def _fake_cupy(monkeypatch):
    """A stand-in CuPy with two GPUs, to check the backend's bookkeeping on the CPU."""
    import types

    from minialexnet import backend

    current = [0]

    class CudaDevice:
        def __init__(self, index: int) -> None:
            self.index = index

        def __enter__(self):
            self.saved, current[0] = current[0], self.index
            return self

        def __exit__(self, *exc):
            current[0] = self.saved

        def synchronize(self) -> None:
            pass

    linalg = types.SimpleNamespace(COMPUTE_TYPE_DEFAULT=1, COMPUTE_TYPE_TF32=7, modes={})
    linalg.set_compute_type = lambda dtype, mode: linalg.modes.__setitem__(np.dtype(dtype), mode)
    linalg.get_compute_type = lambda dtype: linalg.modes.get(np.dtype(dtype), 0)
    hook_base = type("MemoryHook", (_MemoryHook,), {"hooks": {}})
    pool = _FakePool(current, hook_base.hooks)
    cupy = types.SimpleNamespace(
        ndarray=type("ndarray", (), {}),
        cuda=types.SimpleNamespace(
            Device=CudaDevice,
            runtime=types.SimpleNamespace(getDeviceCount=lambda: 2),
            memory_hook=types.SimpleNamespace(MemoryHook=hook_base),
        ),
        get_default_memory_pool=lambda: pool,
    )
    core = types.SimpleNamespace(_routines_linalg=linalg)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupy._core", core)
    monkeypatch.setitem(sys.modules, "cupy._core._routines_linalg", linalg)
    monkeypatch.setattr(backend, "_cupy", cupy)
    monkeypatch.setattr(backend, "_cupy_import_error", None)
    return pool, linalg


def test_meter_reads_each_gpus_pool_inside_that_device(monkeypatch):
    pool, _ = _fake_cupy(monkeypatch)
    with MemoryMeter([Device("gpu:0"), Device("gpu:1")]) as meter:
        assert pool.cached == {0: 0, 1: 0}, "unused blocks released on each device"
    assert meter.start == meter.peak == meter.held == {"gpu:0": 100, "gpu:1": 300}


def test_meter_reports_a_gpu_peak_that_was_freed_before_the_end(monkeypatch):
    """The peak in use, per GPU, even when the pool kept no trace of it: here its cache is
    released, as CuPy's pool does under a limit rather than grow past it."""
    pool, _ = _fake_cupy(monkeypatch)
    gpu = sys.modules["cupy"].cuda.Device
    with MemoryMeter([Device("gpu:0"), Device("gpu:1")]) as meter:
        with gpu(1):
            big, small = pool.malloc(600), pool.malloc(50)
        pool.free(big)  # GPU 0 is current: still GPU 1's block
        with gpu(1):
            pool.free_all_blocks()
        kept = pool.malloc(20)
    assert meter.start == {"gpu:0": 100, "gpu:1": 300}
    assert meter.peak == {"gpu:0": 120, "gpu:1": 950}
    assert meter.held == {"gpu:0": 120, "gpu:1": 350}
    assert pool.hooks == {}, "the hook is removed on exit"
    del small, kept


def test_meter_removes_its_hook_when_the_work_raises(monkeypatch):
    pool, _ = _fake_cupy(monkeypatch)
    with pytest.raises(ZeroDivisionError), MemoryMeter([Device("gpu:1")]):
        assert len(pool.hooks) == 1
        1 / 0  # noqa: B018
    assert pool.hooks == {}
    with MemoryMeter([Device("gpu:1")]), MemoryMeter([Device("gpu:1")]):
        assert len(pool.hooks) == 2, "two meters at once: two hooks"


def test_tf32_sets_cupys_float32_compute_type(monkeypatch):
    _, linalg = _fake_cupy(monkeypatch)
    assert set_tf32(True) and tf32_enabled()
    assert linalg.modes[np.dtype(np.float32)] == linalg.COMPUTE_TYPE_TF32
    assert set_tf32(False) and not tf32_enabled()
    assert linalg.modes[np.dtype(np.float32)] == linalg.COMPUTE_TYPE_DEFAULT
