"""Run the two towers at the same time, as the paper's two GPUs did [3.2].

In the paper each GPU computes its own tower while the other computes its own;
they only wait for each other at the cross-GPU connections. On the CPU the
same holds for cores: tower A on one core and tower B on another, each doing
all of its tower's work (the im2col copies, LRN, pooling and ReLU, which NumPy
runs on one core, as well as the matrix products). NumPy releases the Python
interpreter lock inside every large array operation, so two Python threads
really do run in parallel.

The matrix products are the one thing NumPy already spreads over the cores
(its BLAS has a thread pool). Two towers each asking BLAS for every core would
oversubscribe the machine, so while the towers run side by side each gets
``cores // towers`` BLAS threads (set with ``threadpoolctl``), and the usual
count is restored afterwards. Measured on the project's 2-core machine: a
training step of ``alexnet_cifar`` at batch 128 goes from 850 ms to 600 ms
(docs/performance.md).

On GPUs nothing needs threads: CuPy queues kernels asynchronously, so the jobs
simply run one after the other, each inside ``with device:``.

Set the environment variable ``MINIALEXNET_TOWER_THREADS=0`` to run the towers
one after the other on the CPU too (for comparisons and debugging); the results
are the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from .backend import Device

__all__ = ["cpu_cores", "run_per_device", "towers_in_parallel"]

_pool: ThreadPoolExecutor | None = None
_blas: Any = None  # threadpoolctl.ThreadpoolController, made on first use


def cpu_cores() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def towers_in_parallel() -> bool:
    """False when ``MINIALEXNET_TOWER_THREADS=0`` is set (towers then run one after the other)."""
    return os.environ.get("MINIALEXNET_TOWER_THREADS", "1").strip() != "0"


def _blas_limit(threads: int) -> Any:
    """A context manager that sets BLAS's thread count for its duration."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415

        _blas = ThreadpoolController()
    return _blas.limit(limits=threads, user_api="blas")


def _run_on(device: Device, job: Callable[[], Any]) -> Any:
    with device:
        return job()


def run_per_device(devices: Sequence[Device], jobs: Sequence[Callable[[], Any]]) -> list[Any]:
    """``[job() for each job]``, job ``t`` run inside ``with devices[t]:``; the results in order.

    When every device is a CPU device (``"cpu"`` or a simulated ``"cpu:N"``), there
    is more than one job and more than one core, the jobs run at the same time in
    worker threads, each with ``cores // len(jobs)`` BLAS threads. An exception
    in any job is raised here, after every job has finished (so no job is left
    writing into arrays while the caller handles it).
    """
    if len(devices) != len(jobs):
        raise ValueError(f"run_per_device: {len(jobs)} jobs for {len(devices)} devices")
    cores = cpu_cores()
    threaded = (
        len(jobs) > 1
        and cores > 1
        and towers_in_parallel()
        and not any(device.is_gpu for device in devices)
    )
    if not threaded:
        return [_run_on(device, job) for device, job in zip(devices, jobs, strict=True)]
    global _pool
    if _pool is None or _pool._max_workers < len(jobs):  # noqa: SLF001
        _pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="tower")
    with _blas_limit(max(1, cores // len(jobs))):
        futures = [
            _pool.submit(_run_on, device, job) for device, job in zip(devices, jobs, strict=True)
        ]
        try:
            wait(futures)
        except BaseException:  # Ctrl-C while waiting: let the running jobs finish first
            wait(futures)
            raise
    return [f.result() for f in futures]
