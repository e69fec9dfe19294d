"""What both benchmarks share: interleaved timing, the reference matmul, optional PyTorch.

The machine's speed drifts (a shared 2-core VM moves between about 150 and 300
GFLOP/s within a minute), so every benchmark times its candidates in turns --
ours, PyTorch's where installed, and a 2048^3 float32 matrix product -- and
compares medians taken over the same stretch of time.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import Device

MATMUL_SIZE = 2048

Step = tuple[Callable[[], Any], Callable[[], Any]]  # (work, synchronize)


def reference_matmul(device: Device) -> Step:
    """A 2048^3 float32 product on ``device``; its rate is ``matmul_gflops(seconds)``."""
    rng = device.rng(0)
    a = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE), dtype=np.float32)
    b = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE), dtype=np.float32)
    return (lambda: a @ b), device.synchronize


def matmul_gflops(seconds: float) -> float:
    return 2 * MATMUL_SIZE**3 / seconds / 1e9


def torch_on(device: Device) -> tuple[Any, Any, Callable[[], Any]] | None:
    """(torch, torch.device, synchronize) matching ``device``, or None where PyTorch can't run.

    PyTorch is never a dependency: it is used only where it happens to be installed.
    On a GPU, TF32 is switched off so that float32 is compared with float32.
    """
    if importlib.util.find_spec("torch") is None:
        return None
    import torch  # noqa: PLC0415 -- optional, only for the comparison

    if not device.is_gpu:
        return torch, torch.device("cpu"), lambda: None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch, torch.device("cuda", device.index), torch.cuda.synchronize


def interleaved_medians(steps: dict[str, Step], repeat: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each step, timed in turns (a round of every step, ``repeat`` times)."""

    def timed(work: Callable[[], Any], sync: Callable[[], Any]) -> float:
        start = time.perf_counter()
        work()
        sync()
        return time.perf_counter() - start

    for _ in range(warmup):
        for work, sync in steps.values():
            timed(work, sync)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeat):
        for name, (work, sync) in steps.items():
            times[name].append(timed(work, sync))
    return {name: statistics.median(t) for name, t in times.items()}
