"""Data-parallel training (minialexnet.distributed): sharding, the flat gradient buffer and the
communicators in one process, and real ``mpiexec -n 2`` runs of ``minialexnet.train``.

The multi-process tests need mpi4py and an ``mpiexec`` (``pip install 'minialexnet[mpi]'``,
which ``make test`` installs); they skip, saying so, where either is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from helpers import needs_gpu

from minialexnet.checkpoint import load_checkpoint, unpack
from minialexnet.data import Dataset
from minialexnet.distributed import (
    ConsistencyError,
    DataParallel,
    Dist,
    FlatGrads,
    NcclDist,
    ShardedRng,
    SingleProcess,
    check_consistent,
    fingerprint,
    init_distributed,
    launched_size,
    shard_bounds,
    shard_dropout,
    split_range,
)
from minialexnet.layers import Dropout
from minialexnet.models import model_from_config

# ------------------------------------------------------------------------------- one process


def test_shard_bounds_cover_the_batch_in_order() -> None:
    assert [shard_bounds(8, r, 2) for r in range(2)] == [(0, 4), (4, 8)]
    assert [shard_bounds(12, r, 3) for r in range(3)] == [(0, 4), (4, 8), (8, 12)]
    assert shard_bounds(5, 0, 1) == (0, 5)


def test_shard_bounds_refuse_a_batch_not_divisible_by_the_ranks() -> None:
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        shard_bounds(33, 0, 2)


def test_split_range_covers_any_size() -> None:
    for n, size in [(64, 2), (65, 2), (7, 3), (2, 4)]:
        parts = [split_range(n, r, size) for r in range(size)]
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
        assert max(hi - lo for lo, hi in parts) - min(hi - lo for lo, hi in parts) <= 1


def test_sharded_rng_gives_each_rank_its_rows_of_the_whole_draw() -> None:
    full = np.random.default_rng(5).random((8, 3))
    halves = [ShardedRng(np.random.default_rng(5), 8, lo, hi).random((4, 3)) for lo, hi in
              [(0, 4), (4, 8)]]  # fmt: skip
    np.testing.assert_array_equal(np.concatenate(halves), full)
    with pytest.raises(ValueError, match="expected 4 rows"):
        ShardedRng(np.random.default_rng(5), 8, 0, 4).random((8, 3))


def test_dropout_masks_of_the_shards_are_those_of_the_whole_batch() -> None:
    x = np.ones((8, 6), np.float32)
    whole = Dropout(0.5, rng=np.random.default_rng(3)).forward(x)
    parts = []
    for lo, hi in [(0, 4), (4, 8)]:
        layer = Dropout(0.5, rng=ShardedRng(np.random.default_rng(3), 8, lo, hi))
        parts.append(layer.forward(x[lo:hi]))
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def _tiny_model() -> Any:
    return model_from_config({"arch": "cnn4", "num_classes": 10}, seed=0)


def test_shard_dropout_wraps_every_dropout_layer() -> None:
    model = model_from_config({"arch": "alexnet-cifar", "num_classes": 10}, seed=0)
    model.reseed(7)
    shard_dropout(model, 8, 4, 8)
    rngs = [layer.rng for _, layer, _ in model.named_layers() if isinstance(layer, Dropout)]
    assert rngs and all(isinstance(r, ShardedRng) and (r.lo, r.hi) == (4, 8) for r in rngs)


class Doubling(Dist):
    """A stand-in for 2 ranks whose gradients are equal: the sum doubles, the mean keeps."""

    def __init__(self, rank: int = 0, size: int = 2) -> None:
        self.rank, self.size, self.calls = rank, size, 0

    def allreduce_mean_(self, flat: Any) -> Any:
        self.calls += 1
        flat *= 2
        flat /= 2
        return flat

    def sum_host(self, values: list[float]) -> list[float]:
        return [2 * v for v in values]

    def allgather(self, obj: Any) -> list[Any]:
        return [obj] * self.size


def test_flat_grads_one_allreduce_per_device_and_grads_unchanged_by_a_mean_of_equals() -> None:
    model = _tiny_model()
    rng = np.random.default_rng(0)
    grads = [g for _, _, g in model.parameters()]
    for g in grads:
        g[...] = rng.standard_normal(g.shape)
    before = [g.copy() for g in grads]
    flat = FlatGrads(model.parameters(), extras=2)
    assert flat.nbytes == 4 * (sum(g.size for g in grads) + 2)
    dist = Doubling()
    extras = flat.allreduce_mean_(dist, [1.5, 3.0])
    assert dist.calls == 1  # one buffer on the CPU: one allreduce for every parameter
    assert extras == [1.5, 3.0]
    for a, b in zip(grads, before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_flat_grads_copy_out_writes_the_averaged_values_into_the_models_grads() -> None:
    model = _tiny_model()
    flat = FlatGrads(model.parameters())
    buffer = flat.groups[0][0]
    flat.copy_in()
    buffer[:] = np.arange(buffer.size, dtype=buffer.dtype)
    flat.copy_out()
    together = np.concatenate([g.reshape(-1) for _, _, g in model.parameters()])
    np.testing.assert_array_equal(together, np.arange(buffer.size, dtype=np.float32))


def test_data_parallel_shards_and_combines_validation() -> None:
    model = _tiny_model()
    dp = DataParallel(Doubling(rank=1), model, 8)
    x, y = np.arange(8 * 2).reshape(8, 2), np.arange(8)
    xs, ys = dp.shard(x, y)
    np.testing.assert_array_equal(ys, [4, 5, 6, 7])
    np.testing.assert_array_equal(xs, x[4:])
    data = Dataset(np.zeros((10, 4, 4, 3), np.uint8), np.arange(10), ["c"] * 10, "tiny")
    result = dp.evaluate(lambda d: {"loss": 1.0, "top1_err": 0.5, "top5_err": 0.25}, data)
    assert result == {"loss": 1.0, "top1_err": 0.5, "top5_err": 0.25}
    with pytest.raises(ValueError, match="divisible"):
        DataParallel(Doubling(), model, 7)


def test_single_process_is_the_identity_and_needs_no_mpi(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # importing it would fail
    assert launched_size() == 1
    dist = init_distributed("auto")
    assert isinstance(dist, SingleProcess) and (dist.rank, dist.size) == (0, 1)
    flat = np.arange(4.0, dtype=np.float32)
    assert dist.allreduce_mean_(flat) is flat
    np.testing.assert_array_equal(flat, np.arange(4.0))


def test_mpi_backend_without_mpi4py_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(RuntimeError, match=r"pip install 'minialexnet\[mpi\]'"):
        init_distributed("mpi")
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(RuntimeError, match=r"pip install 'minialexnet\[mpi\]'"):
        init_distributed("auto")
    with pytest.raises(ValueError, match="backend must be one of"):
        init_distributed("gloo")


def test_consistency_check_names_the_rank_and_the_option() -> None:
    mine = fingerprint({"lr": 0.01, "seed": 0}, [("w", (2, 3))])

    class Other(Doubling):
        def allgather(self, obj: Any) -> list[Any]:
            other = fingerprint({"lr": 0.02, "seed": 0}, [("w", (2, 3))])
            return [obj, other]

    with pytest.raises(ConsistencyError, match=r"rank 1 .*--lr 0.02 \(rank 0: 0.01\)"):
        check_consistent(Other(), mine)
    check_consistent(Doubling(), mine)  # the same everywhere: nothing raised

    class Shapes(Doubling):
        def allgather(self, obj: Any) -> list[Any]:
            return [obj, fingerprint({"lr": 0.01, "seed": 0}, [("w", (3, 3))])]

    with pytest.raises(ConsistencyError, match="rank 1 built a model with different"):
        check_consistent(Shapes(), mine)


# --- NCCL, with recording stand-ins for mpi4py's MPI and cupy.cuda.nccl (no GPU here)


class FakeComm:
    def __init__(self, rank: int, size: int, log: list) -> None:
        self.rank, self.size, self.log = rank, size, log

    def Get_rank(self) -> int:
        return self.rank

    def Get_size(self) -> int:
        return self.size

    def Split_type(self, kind: Any, key: int = 0) -> Any:
        return SimpleNamespace(Get_rank=lambda: self.rank, Free=lambda: None)

    def bcast(self, obj: Any, root: int = 0) -> Any:
        self.log.append(("bcast", obj, root))
        return "uid-from-rank-0"


class FakeNccl:
    NCCL_FLOAT32, NCCL_FLOAT64, NCCL_FLOAT16, NCCL_SUM = 7, 8, 6, 0

    def __init__(self, log: list) -> None:
        self.log = log

    def get_unique_id(self) -> str:
        self.log.append(("get_unique_id",))
        return "uid-from-rank-0"

    def NcclCommunicator(self, size: int, uid: Any, rank: int) -> Any:  # noqa: N802 - CuPy's
        self.log.append(("communicator", size, uid, rank))
        log = self.log

        class Comm:
            def allReduce(self, *args: Any) -> None:  # noqa: N802 - CuPy's name
                log.append(("allReduce", *args))

        return Comm()


class DeviceBuffer(np.ndarray):
    """A NumPy array with CuPy's ``.data.ptr`` (the device pointer NCCL is given)."""

    @property
    def data(self) -> Any:  # type: ignore[override]
        return SimpleNamespace(ptr=1234)


@pytest.mark.parametrize("rank", [0, 1])
def test_nccl_backend_calls_with_a_fake(rank: int) -> None:
    log: list = []
    mpi = SimpleNamespace(COMM_WORLD=FakeComm(rank, 2, log), COMM_TYPE_SHARED=1)
    dist = NcclDist(mpi=mpi, nccl=FakeNccl(log), stream=lambda: 99)
    assert (dist.rank, dist.size, dist.backend) == (rank, 2, "nccl")
    assert (("get_unique_id",) in log) == (rank == 0)  # rank 0 draws the id, MPI broadcasts it
    assert ("communicator", 2, "uid-from-rank-0", rank) in log
    flat = np.full(5, 4.0, np.float32).view(DeviceBuffer)
    dist.allreduce_mean_(flat)
    assert log[-1] == ("allReduce", 1234, 1234, 5, FakeNccl.NCCL_FLOAT32, FakeNccl.NCCL_SUM, 99)
    np.testing.assert_array_equal(np.asarray(flat), 2.0)  # the fake summed nothing: 4 / 2


class Recording(Doubling):
    """Doubling, recording when each allreduce starts, progresses and ends."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, int]] = []

    def allreduce_mean_(self, flat: Any) -> Any:
        self.log.append(("blocking", flat.size))
        return super().allreduce_mean_(flat)

    def start_allreduce_(self, flat: Any) -> Any:
        self.log.append(("start", flat.size))
        return flat.copy(), flat  # the value at the start: later writes must not change it

    def progress(self, handle: Any) -> None:
        self.log.append(("progress", handle[1].size))

    def finish_allreduce_(self, handle: Any) -> Any:
        sent, flat = handle
        self.log.append(("finish", flat.size))
        np.testing.assert_array_equal(flat, sent)  # nobody wrote into it meanwhile
        return flat


def test_overlap_sends_the_fc_gradients_when_their_backward_ends() -> None:
    """The fc layers' buffer starts before conv3-5's backward, progresses during it, and
    finishes after the conv buffer; the gradients are those of a plain backward."""
    from minialexnet import functional as F

    model = model_from_config({"arch": "alexnet-cifar", "num_classes": 10}, seed=0)
    dist = Recording()
    dp = DataParallel(dist, model, 8)
    assert dp.after == "to_fc6"
    for _, stage in model.stages:  # log each stage's backward in the same list
        original = stage.backward

        def logged(dout: Any, original: Any = original, name: str = type(stage).__name__) -> Any:
            dist.log.append(("backward " + name, 0))
            return original(dout)

        stage.backward = logged
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32) * 50
    _, dlogits = F.softmax_cross_entropy(model.forward(x, train=False), np.arange(4))
    model.zero_grad()
    model.backward(dlogits)
    want = {n: g.copy() for n, _, g in model.parameters()}
    dist.log.clear()
    model.zero_grad()
    dp.backward(model, dlogits)
    dp.sync(1.0, 2, 3.0)
    fc_size = sum(g.size for n, _, g in model.parameters() if "fc" in n)
    kinds = [k for k, _ in dist.log]
    start = kinds.index("start")
    assert dist.log[start] == ("start", fc_size)
    assert kinds[start - 1] == "backward Exchange"  # to_fc6: fc6, fc7, fc8 are done
    assert "backward Towers" in kinds[start:]  # conv3-5 and conv1-2 run after it
    assert kinds[start + 1 :].count("progress") >= 2
    assert kinds[-2:] == ["blocking", "finish"]  # the conv buffer, then wait for the fc one
    assert fc_size / (fc_size + dist.log[-2][1]) > 0.75  # most of the bytes leave early
    for n, _, g in model.parameters():
        np.testing.assert_array_equal(g, want[n], err_msg=n)
    assert dp.nbytes == 4 * (sum(g.size for g in want.values()) + 3)


def test_without_overlap_one_buffer_after_the_backward() -> None:
    model = _tiny_model()
    dist = Recording()
    dp = DataParallel(dist, model, 8, overlap=False)
    assert dp.early is None
    dp.sync(1.0, 2, 3.0)
    assert [k for k, _ in dist.log] == ["blocking"]


def test_sync_before_backward_with_overlap_is_a_clear_error() -> None:
    model = model_from_config({"arch": "alexnet-cifar", "num_classes": 10}, seed=0)
    dp = DataParallel(Recording(), model, 8)
    with pytest.raises(RuntimeError, match="dp.backward"):
        dp.sync(1.0, 2, 3.0)


class FakeCuda:
    """A recording stand-in for ``cupy.cuda``: streams, events and the current stream."""

    def __init__(self, log: list, ready_after: float = 0.0) -> None:
        self.log, self.ready_after = log, ready_after
        fake = self

        class Stream:
            def __init__(self, non_blocking: bool = False, ptr: int = 55) -> None:
                self.ptr = ptr
                fake.log.append(("Stream", non_blocking))

            def wait_event(self, event: Any) -> None:
                fake.log.append(("wait_event", self.ptr, event.name))

        class Event:
            count = 0

            def __init__(self) -> None:
                Event.count += 1
                self.name = f"event{Event.count}"
                self.born = time.monotonic()

            def record(self, stream: Any = None) -> None:
                fake.log.append(("record", self.name, None if stream is None else stream.ptr))

            @property
            def done(self) -> bool:  # CuPy's name (cudaEventQuery)
                return time.monotonic() - self.born >= fake.ready_after

        self.Stream, self.Event = Stream, Event
        self.current = Stream(ptr=99)
        log.clear()

    def get_current_stream(self) -> Any:
        return self.current


def _nccl(log: list, cuda: Any) -> NcclDist:
    mpi = SimpleNamespace(COMM_WORLD=FakeComm(0, 2, log), COMM_TYPE_SHARED=1)
    return NcclDist(mpi=mpi, nccl=FakeNccl(log), cuda=cuda)


def test_nccl_overlap_runs_on_a_side_stream_ordered_by_events() -> None:
    log: list = []
    cuda = FakeCuda(log)
    dist = _nccl(log, cuda)
    flat = np.full(5, 4.0, np.float32).view(DeviceBuffer)
    log.clear()
    handle = dist.start_allreduce_(flat)
    ready, done = log[1][1], log[-1][1]
    assert log[0] == ("Stream", True)  # made once, non-blocking
    assert log[1] == ("record", ready, 99)  # on the current stream: the gradients are in
    assert log[2] == ("wait_event", 55, ready)  # the side stream waits for them
    assert log[3] == ("allReduce", 1234, 1234, 5, FakeNccl.NCCL_FLOAT32, FakeNccl.NCCL_SUM, 55)
    assert log[4] == ("record", done, 55)
    dist.finish_allreduce_(handle)
    assert log[-1] == ("wait_event", 99, done)  # the current stream waits for the sum
    np.testing.assert_array_equal(np.asarray(flat), 2.0)
    log.clear()
    dist.start_allreduce_(flat)
    assert ("Stream", True) not in log  # the side stream is reused


def test_nccl_timeout_aborts_when_the_sum_never_arrives() -> None:
    log: list = []
    dist = _nccl(log, FakeCuda(log, ready_after=3600))
    messages: list[str] = []
    dist.abort = lambda message, code=1: messages.append(message)  # type: ignore[method-assign]
    dist.timeout, dist.step = 0.05, 7
    flat = np.ones(3, np.float32).view(DeviceBuffer)
    start = time.monotonic()
    dist.allreduce_mean_(flat)  # with a timeout even the blocking call is timed
    assert time.monotonic() - start < 5
    assert messages and "0.05 s at step 7 (NCCL allreduce" in messages[0]


class EchoComm(FakeComm):
    """A one-rank MPI stand-in whose broadcast returns what it was given (the real NCCL id)."""

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj


@needs_gpu
def test_nccl_with_one_rank_on_a_real_gpu() -> None:
    """Real cupy.cuda.nccl, streams and events, one rank (MPI stood in: the device image has
    no mpi4py): the blocking, overlapped and timed allreduces each give the buffer back."""
    import cupy

    nccl = pytest.importorskip("cupy.cuda.nccl", reason="needs CuPy built with NCCL")
    if not getattr(nccl, "available", True):
        pytest.skip("CuPy has no NCCL here")
    mpi = SimpleNamespace(COMM_WORLD=EchoComm(0, 1, []), COMM_TYPE_SHARED=1)
    dist = NcclDist(mpi=mpi)
    want = cupy.arange(1000, dtype=cupy.float32) / 7
    flat = want.copy()
    dist.allreduce_mean_(flat)
    cupy.testing.assert_array_equal(flat, want)
    handle = dist.start_allreduce_(flat)
    busy = cupy.ones((512, 512), cupy.float32) @ cupy.ones((512, 512), cupy.float32)  # meanwhile
    cupy.testing.assert_array_equal(dist.finish_allreduce_(handle), want)
    dist.timeout = 10.0
    cupy.testing.assert_array_equal(dist.allreduce_mean_(flat), want)
    assert float(busy[0, 0]) == 512


# ------------------------------------------------------------------- real mpiexec -n 2 runs

MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
MPI_MISSING = (
    "needs mpi4py"
    if importlib.util.find_spec("mpi4py") is None
    else "needs an mpiexec on PATH or next to python"
    if MPIEXEC is None
    else None
)
needs_mpi = pytest.mark.skipif(
    MPI_MISSING is not None, reason=f"{MPI_MISSING}: pip install 'minialexnet[mpi]'"
)
# 320 images in batches of 16: 20 steps; alexnet-cifar (dropout in fc6, fc7), one thread a rank
TINY = ["--dataset", "shapes", "--epochs", "1", "--train-size", "320", "--val-size", "32",
        "--batch-size", "16", "--no-ten-crop", "--quiet", "--workers", "1"]  # fmt: skip
TRAIN = [sys.executable, "-m", "minialexnet.train"]


def _run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _params(out: Path) -> dict[str, np.ndarray]:
    return unpack(load_checkpoint(out / "checkpoint.npz")[0], "model")


@needs_mpi
@pytest.mark.slow
def test_two_ranks_train_as_one_process_and_repeat_bit_for_bit(tmp_path: Path) -> None:
    one = _run([*TRAIN, *TINY, "--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr
    runs = []
    for name, extra in (("two", []), ("again", []), ("after", ["--no-overlap"])):
        out = tmp_path / name
        done = _run([MPIEXEC, "-n", "2", *TRAIN, *TINY, *extra, "--out", str(out)])
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.count("epoch 1: train loss") == 1  # rank 0 alone prints
        assert "global batch 16 = 2 x 8" in done.stdout
        runs.append(_params(out))
    a, b = _params(tmp_path / "one"), runs[0]
    assert a.keys() == b.keys()
    diff = sum(float(np.sum((a[k].astype(np.float64) - b[k]) ** 2)) for k in a)
    norm = sum(float(np.sum(a[k].astype(np.float64) ** 2)) for k in a)
    assert (diff / norm) ** 0.5 < 1e-4  # measured 2.6e-6 after 20 steps: float32 rounding
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-4
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in a)  # two N=2 runs: bit-identical
    # the fc gradients sent during the backward pass, or all after it: the same sums
    assert all(np.array_equal(runs[0][k], runs[2][k]) for k in a)
    one_m = (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()
    two_m = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(one_m) == len(two_m) == 1  # one set of outputs


@needs_mpi
@pytest.mark.slow
def test_two_ranks_resumed_mid_epoch_end_as_an_uninterrupted_run(tmp_path: Path) -> None:
    steady = [*TINY, "--schedule", "step"]  # linear with --max-minutes follows the clock
    runs = {}
    for name, cuts in [("whole", [[]]), ("cut", [["--max-minutes", "0.01"], ["--resume"]])]:
        for extra in cuts:
            cmd = [MPIEXEC, "-n", "2", *TRAIN, *steady, "--out", str(tmp_path / name), *extra]
            done = _run(cmd)
            assert done.returncode == 0, done.stdout + done.stderr
        runs[name] = _params(tmp_path / name)
    assert all(np.array_equal(runs["whole"][k], runs["cut"][k]) for k in runs["whole"])


@needs_mpi
@pytest.mark.slow
def test_ranks_started_with_different_options_stop_with_the_difference(tmp_path: Path) -> None:
    out = str(tmp_path / "run")
    done = _run(
        [MPIEXEC, "-n", "1", *TRAIN, *TINY, "--out", out, ":",
         "-n", "1", *TRAIN, *TINY, "--lr", "0.02", "--out", out]
    )  # fmt: skip
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert "rank 1 was started with different options than rank 0: --lr 0.02" in text


@needs_mpi
@pytest.mark.slow
def test_a_batch_not_divisible_by_the_ranks_is_refused(tmp_path: Path) -> None:
    done = _run([MPIEXEC, "-n", "2", *TRAIN, *TINY, "--batch-size", "15", "--out",
                 str(tmp_path / "r")])  # fmt: skip
    assert done.returncode != 0
    assert "must be divisible by the number of processes (2)" in done.stderr


FAULT = """
    import os, signal, sys, time
    from minialexnet import optim, train

    calls = 0
    step = optim.SGD.step

    def failing_step(self):
        global calls
        calls += 1
        if os.environ.get("PMI_RANK") == "1" and calls == 3:
            if sys.argv[1] == "hang":
                time.sleep(3600)  # in step 3's update: rank 0 waits in step 4's allreduce
            if sys.argv[1] == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("injected failure")
        step(self)

    optim.SGD.step = failing_step
    sys.exit(train.cli(sys.argv[2:]))
"""


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_ends_the_whole_run_with_a_message(tmp_path: Path, how: str) -> None:
    script = tmp_path / "fault.py"
    script.write_text(textwrap.dedent(FAULT))
    start = time.monotonic()
    done = _run(
        [MPIEXEC, "-n", "2", sys.executable, str(script), how, *TINY, "--out",
         str(tmp_path / "r")],
        timeout=90,
    )  # fmt: skip
    assert time.monotonic() - start < 60
    assert done.returncode != 0
    text = done.stdout + done.stderr
    if how == "raise":
        assert "rank 1: RuntimeError: injected failure" in text
    else:  # the launcher names the killed process's pid; the run's header maps it to rank 1
        header = next(line for line in done.stdout.splitlines() if "process ids by rank" in line)
        pid = header.split("rank 1 pid ")[1].split()[0].strip(",")
        assert pid in text.replace(header, "")  # MPICH: "BAD TERMINATION ... PID <pid>"
    assert not (tmp_path / "r" / "checkpoint.npz").exists()  # killed before the first save


@needs_mpi
@pytest.mark.slow
def test_bench_scaling_reports_every_rank_count(tmp_path: Path, capsys: Any) -> None:
    from minialexnet.bench.__main__ import main

    out = tmp_path / "scaling.json"
    argv = ["scaling", "--model", "cnn4", "--batch", "16", "--steps", "1", "--json", str(out)]
    assert main(argv) == 0
    assert "allreduce share" in capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert [r["ranks"] for r in rows] == [1, 2]
    assert all(r["images_per_s"] > 0 and 0 <= r["allreduce_share"] < 1 for r in rows)
    assert rows[0]["allreduce_share"] == 0  # one rank: no allreduce at all


@needs_mpi
@pytest.mark.slow
def test_a_hanging_rank_ends_the_whole_run_after_the_timeout(tmp_path: Path) -> None:
    script = tmp_path / "fault.py"
    script.write_text(textwrap.dedent(FAULT))
    start = time.monotonic()
    done = _run(
        [MPIEXEC, "-n", "2", sys.executable, str(script), "hang", *TINY, "--dist-timeout", "5",
         "--out", str(tmp_path / "r")],
        timeout=90,
    )  # fmt: skip
    assert time.monotonic() - start < 60
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert re.search(
        r"rank 0: no progress from the other ranks for 5 s at step \d+ \(a rank hangs or "
        r"died\); aborting",
        text,
    ), text[-2000:]


# ------------------------------------------------------------------ watchdog, GPUs per rank


class _NeverDone:
    def __init__(self) -> None:
        self.tests = 0

    def Test(self) -> bool:  # noqa: N802 -- mpi4py's name
        self.tests += 1
        return False


def test_an_allreduce_that_never_completes_aborts_with_the_step(monkeypatch: Any) -> None:
    from minialexnet.distributed import MPIDist

    dist = MPIDist.__new__(MPIDist)  # no MPI: only the waiting loop
    dist.rank, dist.size, dist.timeout, dist.step = 1, 2, 0.05, 7
    aborted: list[str] = []
    monkeypatch.setattr(dist, "abort", lambda message, code=1: aborted.append(message))
    request = _NeverDone()
    start = time.monotonic()
    dist._wait(request)
    assert 0.05 <= time.monotonic() - start < 5 and request.tests > 1
    assert aborted == [
        "no progress from the other ranks for 0.05 s at step 7 (a rank hangs or died); aborting"
    ]


def test_each_local_rank_takes_its_own_gpu() -> None:
    from minialexnet.distributed.devices import rank_device_names as names

    assert [names(r, 4, "gpu") for r in range(4)] == [["gpu:0"], ["gpu:1"], ["gpu:2"], ["gpu:3"]]
    assert [names(r, 2, "auto") for r in range(4)] == [["gpu:0"], ["gpu:1"], ["gpu:0"], ["gpu:1"]]
    assert names(3, 0, "auto") == ["cpu"] and names(3, 8, "cpu") == ["cpu"]
    assert names(3, 8, "gpu:5") == ["gpu:5"]  # an explicit GPU: every rank on it, as asked
    assert names(1, 8, "auto", gpus="2,3") == ["gpu:2", "gpu:3"]  # the towers' GPUs, unchanged
    assert [names(r, 8, "auto", rank_gpus="4,5,6") for r in range(3)] == [
        ["gpu:4"], ["gpu:5"], ["gpu:6"]
    ]  # fmt: skip
    assert names(0, 1, "cpu", rank_gpus="0") == ["gpu:0"]  # --rank-gpus asks for GPUs


@pytest.mark.parametrize(
    ("local_rank", "visible", "device", "gpus", "rank_gpus", "error", "match"),
    [
        (
            2,
            4,
            "auto",
            None,
            "0,1",
            ValueError,
            "names 2 GPU\\(s\\) but this process is local rank 2",
        ),
        (0, 4, "auto", None, "0,x", ValueError, "--rank-gpus: expected numbers"),
        (1, 2, "auto", None, "0,3", ValueError, "would take gpu:3, but this process sees 2"),
        (0, 4, "auto", "0,1", "0,1", ValueError, "not both"),
        (0, 0, "auto", None, "0,1", RuntimeError, "no GPU is visible"),
        (1, 0, "gpu", None, None, RuntimeError, "--device gpu: no GPU is visible"),
    ],
)
def test_a_gpu_that_cannot_be_had_is_refused_clearly(
    local_rank: int, visible: int, device: str, gpus: Any, rank_gpus: Any, error: Any, match: str
) -> None:
    from minialexnet.distributed.devices import rank_device_names

    with pytest.raises(error, match=match):
        rank_device_names(local_rank, visible, device, gpus, rank_gpus)


def test_rank_gpus_without_cupy_is_a_clear_error(monkeypatch: Any) -> None:
    from minialexnet import backend, train

    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_import_error", "ModuleNotFoundError: no module 'cupy'")
    args = train.parse_args(["--rank-gpus", "0,1", "--dist-timeout", "5"])
    assert args.rank_gpus == "0,1" and args.dist_timeout == 5
    with pytest.raises(RuntimeError, match="--rank-gpus 0,1: no GPU is visible"):
        train.choose_devices(args.gpus, args.device, args.rank_gpus, local_rank=1)
    with pytest.raises(RuntimeError, match="--device gpu: no GPU is visible"):
        train.choose_devices(None, "gpu", None, local_rank=1)
    devices, where = train.choose_devices(None, "cpu", None, local_rank=1)  # the CPU path
    assert [d.name for d in devices] == [
        "cpu"
    ] and where == "training on the CPU (as asked: --device cpu)"


def test_a_negative_dist_timeout_is_refused(capsys: Any) -> None:
    from minialexnet import train

    with pytest.raises(SystemExit):
        train.parse_args(["--dist-timeout", "-1"])
    assert "--dist-timeout must be >= 0" in capsys.readouterr().err
    assert train.parse_args([]).dist_timeout == 300
