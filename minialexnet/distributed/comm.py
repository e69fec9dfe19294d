"""Who am I, how many are we, and the allreduce: MPI, NCCL, or one process alone.

:func:`init_distributed` returns a :class:`Dist`::

    SingleProcess   size 1: every reduction is the identity (no mpi4py needed)
    MPIDist         mpi4py's COMM_WORLD: Allreduce on a NumPy buffer, in place
    NcclDist        MPIDist for start-up and host numbers, plus a NCCL communicator
                    (cupy.cuda.nccl) for CuPy buffers, on the current stream

    rank r:  flat (device buffer) --allreduce_mean_--> sum over ranks / size, in place
             values (host floats) --sum_host---------> sum over ranks (validation counts)

``backend="auto"``: MPI when launched by mpiexec (or srun) with more than one
process, NCCL instead when the arrays are CuPy's; else a single process.
``local_rank`` is the rank among the processes of the same machine (MPI's
shared-memory split), the number that picks a GPU.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np

BACKENDS = ("auto", "mpi", "nccl", "none")
MPI_HINT = "pip install 'minialexnet[mpi]'"
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS")
_current: Dist | None = None


def launched_size() -> int:
    """How many processes the launcher (mpiexec, srun) started, from its environment; 1 if none.

    Read without importing mpi4py, so a plain ``python -m minialexnet.train`` never starts MPI.
    """
    for var in _SIZE_VARS:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return 1


def _import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise RuntimeError(
            f"distributed training needs mpi4py and an MPI library ({exc}); install them with "
            f"{MPI_HINT} and launch with mpiexec -n N python -m minialexnet.train ..."
        ) from exc
    return MPI


class Dist:
    """One process of a data-parallel run: ``rank`` of ``size``, ``local_rank`` on its machine."""

    backend = "none"
    rank = 0
    size = 1
    local_rank = 0
    timeout: float | None = None  # seconds a step's allreduce waits for the others
    step = 0  # the step being reduced (this process's count), for the timeout's message

    @property
    def is_root(self) -> bool:
        """Rank 0: the one that prints and writes files."""
        return self.rank == 0

    def allreduce_mean_(self, flat: Any) -> Any:
        """Replace ``flat`` (one contiguous 1-D buffer) by its mean over the ranks; returns it."""
        raise NotImplementedError

    def start_allreduce_(self, flat: Any) -> Any:
        """Begin :meth:`allreduce_mean_` of ``flat`` without waiting for it; a handle for
        :meth:`progress` and :meth:`finish_allreduce_`. ``flat`` must not change meanwhile."""
        return self.allreduce_mean_(flat)  # backends that cannot overlap: done at once

    def progress(self, handle: Any) -> None:
        """Let a started allreduce move on (MPI moves only inside MPI calls)."""

    def finish_allreduce_(self, handle: Any) -> Any:
        """Wait for a started allreduce; returns its buffer, now the mean over the ranks."""
        return handle

    def sum_host(self, values: list[float]) -> list[float]:
        """The sums over the ranks of a few host numbers (float64)."""
        raise NotImplementedError

    def allgather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (a small picklable object), in rank order."""
        raise NotImplementedError

    def abort(self, message: str, code: int = 1) -> None:
        """Print ``rank R: message`` to stderr and end every rank (never returns when size > 1)."""
        print(f"rank {self.rank}: {message}", file=sys.stderr, flush=True)

    def _wait_until(self, done: Any, what: str = "", pause: float = 0.0) -> None:
        """Poll ``done()`` until true; past ``timeout`` seconds, abort every rank with a message.

        A rank that hangs (a deadlock, a stuck file system, a stopped process) would otherwise
        keep the others in the allreduce forever; neither MPI nor NCCL has a timeout.
        """
        timeout = float(self.timeout or 0.0)
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                self.abort(
                    f"no progress from the other ranks for {timeout:g} s at step {self.step} "
                    f"({what}a rank hangs or died); aborting"
                )
                return  # abort returns only in tests, with a stand-in
            if pause:
                time.sleep(pause)


class SingleProcess(Dist):
    """Size 1: the reductions are the identity; nothing is imported."""

    def allreduce_mean_(self, flat: Any) -> Any:
        return flat

    def sum_host(self, values: list[float]) -> list[float]:
        return [float(v) for v in values]

    def allgather(self, obj: Any) -> list[Any]:
        return [obj]


class MPIDist(Dist):
    """MPI through mpi4py: ``Allreduce(IN_PLACE, flat, SUM)`` then ``/ size``."""

    backend = "mpi"

    def __init__(self, mpi: Any = None) -> None:
        self.MPI = mpi if mpi is not None else _import_mpi()
        self.comm = self.MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank = node.Get_rank()
        node.Free()

    @staticmethod
    def _check_buffer(flat: Any) -> None:
        if not (isinstance(flat, np.ndarray) and flat.ndim == 1 and flat.flags.c_contiguous):
            raise TypeError(
                "MPIDist.allreduce_mean_: expected one contiguous 1-D NumPy buffer, got "
                f"{type(flat).__name__} {getattr(flat, 'shape', '')}; CuPy arrays: "
                "--dist-backend nccl"
            )

    def allreduce_mean_(self, flat: Any) -> Any:
        if self.timeout is not None:  # started and finished, so that the wait can be timed
            return self.finish_allreduce_(self.start_allreduce_(flat))
        self._sum_(flat)
        flat /= self.size
        return flat

    def _sum_(self, flat: Any) -> None:
        """The blocking sum over the ranks, in place."""
        self._check_buffer(flat)
        self.comm.Allreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM)

    def start_allreduce_(self, flat: Any) -> Any:
        self._check_buffer(flat)
        return self.comm.Iallreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM), flat

    def progress(self, handle: Any) -> None:
        handle[0].Test()

    def finish_allreduce_(self, handle: Any) -> Any:
        request, flat = handle
        if self.timeout is None:
            request.Wait()
        else:
            self._wait(request)
        flat /= self.size
        return flat

    def _wait(self, request: Any) -> None:
        """Wait for ``request`` at most ``timeout`` seconds (:meth:`Dist._wait_until`)."""
        self._wait_until(request.Test)  # Test also lets MPI move the transfer on

    def sum_host(self, values: list[float]) -> list[float]:
        buf = np.asarray(values, dtype=np.float64).copy()
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
        return buf.tolist()

    def allgather(self, obj: Any) -> list[Any]:
        return self.comm.allgather(obj)

    def abort(self, message: str, code: int = 1) -> None:
        super().abort(message, code)
        sys.stdout.flush()
        time.sleep(0.5)  # let mpiexec forward the line: Abort kills its I/O forwarding too
        self.comm.Abort(code)


_NCCL_DTYPES = {"float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64", "float16": "NCCL_FLOAT16"}


class NcclDist(MPIDist):
    """NCCL for CuPy buffers (``cupy.cuda.nccl``); MPI for start-up, host numbers and abort.

    The communicator is made from a unique id that rank 0 draws and broadcasts over MPI.
    :meth:`allreduce_mean_` runs on the current CUDA stream, in place, then ``/ size``.
    :meth:`start_allreduce_` runs it on a side stream that first waits for the work queued
    so far (an event), so the kernels queued after it (the convolutions' backward) run at
    the same time; :meth:`finish_allreduce_` makes the current stream wait for it. With a
    ``timeout``, finishing polls the side stream's event and aborts every rank past it.

    UNTESTED on real GPUs here (no multi-GPU machine): tests/test_distributed.py checks the
    calls it makes against recording stand-ins for ``cupy.cuda.nccl`` and ``cupy.cuda``.
    """

    backend = "nccl"

    def __init__(
        self, mpi: Any = None, nccl: Any = None, stream: Any = None, cuda: Any = None
    ) -> None:
        super().__init__(mpi)
        if nccl is None:
            try:
                from cupy.cuda import nccl
            except ImportError as exc:
                raise RuntimeError(
                    f"--dist-backend nccl needs CuPy built with NCCL ({exc}); on the CPU use "
                    "--dist-backend mpi"
                ) from exc
        self.nccl = nccl
        self._stream = stream  # () -> the stream's pointer; default CuPy's current stream
        self._cuda_module = cuda  # cupy.cuda (Event, Stream, get_current_stream), or a stand-in
        self._side: Any = None  # the side stream of start_allreduce_, made on first use
        uid = self.nccl.get_unique_id() if self.rank == 0 else None
        uid = self.comm.bcast(uid, root=0)
        self.nccl_comm = self.nccl.NcclCommunicator(self.size, uid, self.rank)

    def _cuda(self) -> Any:
        if self._cuda_module is None:
            import cupy

            self._cuda_module = cupy.cuda
        return self._cuda_module

    def _stream_ptr(self) -> int:
        if self._stream is not None:
            return int(self._stream())
        return int(self._cuda().get_current_stream().ptr)

    def _allreduce_sum(self, flat: Any, stream_ptr: int) -> None:
        dtype = _NCCL_DTYPES.get(str(flat.dtype))
        if dtype is None or flat.ndim != 1:
            raise TypeError(
                f"NcclDist.allreduce_mean_: expected a 1-D float buffer, got {flat.dtype} "
                f"{flat.shape}"
            )
        ptr = flat.data.ptr
        self.nccl_comm.allReduce(
            ptr, ptr, flat.size, getattr(self.nccl, dtype), self.nccl.NCCL_SUM, stream_ptr
        )

    def _sum_(self, flat: Any) -> None:
        self._allreduce_sum(flat, self._stream_ptr())

    def start_allreduce_(self, flat: Any) -> Any:
        cuda = self._cuda()
        if self._side is None:
            self._side = cuda.Stream(non_blocking=True)
        ready = cuda.Event()
        ready.record(cuda.get_current_stream())  # the gradients in ``flat`` are written
        self._side.wait_event(ready)
        self._allreduce_sum(flat, int(self._side.ptr))
        done = cuda.Event()
        done.record(self._side)
        return done, flat

    def finish_allreduce_(self, handle: Any) -> Any:
        done, flat = handle
        if self.timeout is not None:  # CuPy's Event.done: cudaEventQuery
            self._wait_until(lambda: done.done, "NCCL allreduce; ", pause=0.0005)
        self._cuda().get_current_stream().wait_event(done)
        flat /= self.size
        return flat


def init_distributed(backend: str = "auto", on_gpu: bool = False) -> Dist:
    """This process's :class:`Dist` (also kept for :func:`current`).

    ``backend``: ``"auto"`` (MPI when the launcher started more than one process, NCCL
    instead when ``on_gpu``; else a single process), ``"mpi"``, ``"nccl"`` or ``"none"``
    (a single process even under mpiexec: every rank trains alone).
    Raises RuntimeError naming ``pip install 'minialexnet[mpi]'`` when mpi4py is missing.
    """
    global _current
    if backend not in BACKENDS:
        raise ValueError(f"init_distributed: backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = "none" if launched_size() <= 1 else ("nccl" if on_gpu else "mpi")
    dist: Dist
    if backend == "none":
        dist = SingleProcess()
    elif backend == "mpi":
        dist = MPIDist()
    else:
        dist = NcclDist()
    _current = dist
    return dist


def current() -> Dist | None:
    """The :class:`Dist` of the last :func:`init_distributed`, or None before it."""
    return _current
