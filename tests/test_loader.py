"""BatchLoader: deterministic order/augmentation, resume, background prefetching by one or
several threads, clean shutdown; the unpadded training transform the loader runs."""

from __future__ import annotations

import os
import threading
import time
import traceback

import numpy as np
import pytest

from minialexnet.data.loader import BatchLoader, default_workers
from minialexnet.data.transforms import dataset_statistics, train_transform

WORKER_NAME = "minialexnet-batch-loader"


class _Data:
    """Stand-in dataset: image i is filled with (i % 256) plus a per-pixel pattern; label i = i."""

    def __init__(self, n: int, h: int = 3, w: int = 2) -> None:
        base = np.arange(n)[:, None, None, None] + np.arange(h * w * 3).reshape(1, h, w, 3)
        self.images = (base % 256).astype(np.uint8)
        self.labels = np.arange(n, dtype=np.int64)
        self.classes = [str(i) for i in range(n)]


def _plain(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return images.astype(np.float32).transpose(0, 3, 1, 2)


def _noisy(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uses the rng, so the output reveals which generator the loader passed."""
    return _plain(images, rng) + rng.random((len(images), 1, 1, 1), dtype=np.float32)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(WORKER_NAME) and t.is_alive()]


def _no_workers(timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = _workers()
        if not live:
            return True
        for t in live:
            t.join(timeout=0.05)
    return not _workers()


def _run(loader: BatchLoader) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.copy(), y.copy()) for x, y in loader]


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    yield
    assert _no_workers(), "a loader worker thread outlived its test"


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_every_example_once_per_epoch(shuffle, prefetch):
    data = _Data(103)
    loader = BatchLoader(data, 10, _plain, shuffle=shuffle, seed=4, prefetch=prefetch)
    batches = _run(loader)
    assert len(loader) == loader.num_batches == len(batches) == 11
    assert [len(y) for _, y in batches] == [10] * 10 + [3]
    ys = np.concatenate([y for _, y in batches])
    assert np.array_equal(np.sort(ys), np.arange(103))
    if shuffle:
        assert np.array_equal(ys, np.random.default_rng([4, 0]).permutation(103))
    else:
        assert np.array_equal(ys, np.arange(103))
    for x, y in batches:  # the images belong to their labels (sorted gather, then reorder)
        assert x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(x, _plain(data.images[y], None))


def test_new_permutation_each_epoch_and_reproducible():
    data = _Data(50)
    orders = []
    for epoch in range(3):
        loader = BatchLoader(data, 8, _plain, shuffle=True, seed=1, epoch=epoch)
        orders.append(np.concatenate([y for _, y in loader]))
        assert np.array_equal(orders[-1], np.random.default_rng([1, epoch]).permutation(50))
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[1], orders[2])
    other_seed = np.concatenate([y for _, y in BatchLoader(data, 8, _plain, shuffle=True, seed=2)])
    assert not np.array_equal(orders[0], other_seed)


def test_same_seed_and_epoch_give_identical_batches_whatever_prefetch():
    data = _Data(37)
    runs = [
        _run(BatchLoader(data, 5, _noisy, shuffle=True, seed=3, epoch=2, prefetch=p, workers=w))
        for p, w in ((0, 1), (1, 1), (4, 1), (2, 2), (4, 3), (8, 8))
    ]
    for run in runs[1:]:
        assert len(run) == len(runs[0]) == 8
        for (xa, ya), (xb, yb) in zip(runs[0], run, strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    # batch b got np.random.default_rng([seed, epoch, b])
    for b, (x, y) in enumerate(runs[0]):
        noise = np.random.default_rng([3, 2, b]).random((len(y), 1, 1, 1), dtype=np.float32)
        np.testing.assert_array_equal(x, _plain(data.images[y], None) + noise)
    other_epoch = _run(BatchLoader(data, 5, _noisy, shuffle=True, seed=3, epoch=3))
    assert not np.array_equal(other_epoch[0][0], runs[0][0][0])


@pytest.mark.parametrize("k", [0, 1, 4, 7, 8])
def test_start_batch_resumes_exactly(k):
    data = _Data(37)
    full = _run(BatchLoader(data, 5, _noisy, shuffle=True, seed=9, epoch=1))
    loader = BatchLoader(data, 5, _noisy, shuffle=True, seed=9, epoch=1, start_batch=k)
    assert loader.num_batches == 8 and len(loader) == 8 - k
    resumed = _run(loader)
    assert len(resumed) == 8 - k
    for (xa, ya), (xb, yb) in zip(full[k:], resumed, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    with pytest.raises(ValueError, match="start_batch"):
        BatchLoader(data, 5, _noisy, shuffle=True, start_batch=9)


def test_drop_last_and_len():
    data = _Data(23)
    loader = BatchLoader(data, 5, _plain, shuffle=True, drop_last=True)
    batches = _run(loader)
    assert len(loader) == loader.num_batches == len(batches) == 4
    assert all(len(y) == 5 for _, y in batches)
    ys = np.concatenate([y for _, y in batches])
    assert len(np.unique(ys)) == 20
    assert len(BatchLoader(data, 5, _plain, shuffle=False)) == 5
    assert len(BatchLoader(_Data(20), 5, _plain, shuffle=False, drop_last=True)) == 4
    assert len(BatchLoader(_Data(20), 5, _plain, shuffle=False)) == 4
    assert len(BatchLoader(_Data(3), 5, _plain, shuffle=False, drop_last=True)) == 0
    assert _run(BatchLoader(_Data(3), 5, _plain, shuffle=False, drop_last=True)) == []


def test_loader_can_be_iterated_again_and_epoch_attribute_is_read_at_iter():
    data = _Data(30)
    loader = BatchLoader(data, 7, _noisy, shuffle=True, seed=5)
    a, b = _run(loader), _run(loader)
    for (xa, _), (xb, _) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
    loader.epoch = 1
    c = _run(loader)
    assert np.array_equal(np.concatenate([y for _, y in c]), loader.order())
    assert not np.array_equal(np.concatenate([y for _, y in a]), loader.order())


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("prefetch", [1, 2, 3])
def test_prefetch_runs_ahead_in_background_threads(prefetch, workers):
    calls: list[int] = []
    lock = threading.Lock()

    def recording(images, rng):
        with lock:
            calls.append(threading.get_ident())
        return _plain(images, rng)

    loader = BatchLoader(_Data(40), 4, recording, shuffle=False, prefetch=prefetch, workers=workers)
    with iter(loader) as it:
        next(it)  # batch 0 taken: the workers now fill `prefetch` more while we "compute"
        deadline = time.monotonic() + 5.0
        while len(calls) < 1 + prefetch and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.15)  # give them a chance to (wrongly) run further ahead
        assert len(calls) == 1 + prefetch, "prepares exactly `prefetch` batches ahead"
        assert threading.get_ident() not in calls, "batches are built in other threads"
        assert len(_workers()) == min(workers, prefetch), "no more threads than slots"
        if workers == 1:
            assert len(set(calls)) == 1
        rest = list(it)
    assert len(rest) == 9 and len(calls) == 10
    assert _no_workers()


def test_prefetch_zero_builds_in_the_consumer_thread():
    calls: list[int] = []

    def recording(images, rng):
        calls.append(threading.get_ident())
        return _plain(images, rng)

    it = iter(BatchLoader(_Data(12), 4, recording, shuffle=False, prefetch=0))
    assert calls == [] and not _workers()
    next(it)
    assert calls == [threading.get_ident()]
    assert len(list(it)) == 2


def test_worker_exception_surfaces_in_the_consumer_with_its_traceback():
    count = {"n": 0}

    def failing_transform(images, rng):
        count["n"] += 1
        if count["n"] == 3:
            raise KeyError("bad image in batch 2")
        return _plain(images, rng)

    received = []
    with pytest.raises(KeyError, match="bad image in batch 2") as info:
        for _, y in BatchLoader(
            _Data(40), 4, failing_transform, shuffle=False, prefetch=2, workers=1
        ):
            received.append(y)
    assert len(received) == 2, "the batches before the failure are delivered first"
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "failing_transform" in names, names
    assert _no_workers()


@pytest.mark.parametrize("workers", [2, 4])
def test_a_failing_batch_surfaces_in_order_with_several_workers(workers):
    """Batch 5 fails (whichever thread builds it): batches 0-4 arrive first, then its error
    with its traceback; the later batches are not delivered and no thread is left."""

    def failing_transform(images, rng):
        if 20 in images[:, 0, 0, 0]:  # image 20 (value 20 + pattern) is in batch 5
            raise KeyError("bad image 20")
        time.sleep(0.002 * rng.random())  # batches finish out of order
        return _plain(images, rng)

    received = []
    loader = BatchLoader(
        _Data(40), 4, failing_transform, shuffle=False, prefetch=4, workers=workers
    )
    with pytest.raises(KeyError, match="bad image 20") as info:
        for _, y in loader:
            received.append(y)
    assert [int(y[0]) for y in received] == [0, 4, 8, 12, 16]
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "failing_transform" in names, names
    assert _no_workers()


def test_exception_also_surfaces_without_prefetch():
    def broken(images, rng):
        raise RuntimeError("nope")

    with pytest.raises(RuntimeError, match="nope"):
        next(iter(BatchLoader(_Data(8), 4, broken, shuffle=False, prefetch=0)))


@pytest.mark.parametrize("workers", [1, 3])
def test_breaking_early_stops_the_workers(workers):
    gate = threading.Event()

    def slowish(images, rng):
        gate.wait(0.01)
        return _plain(images, rng)

    loader = BatchLoader(_Data(400), 4, slowish, shuffle=True, prefetch=3, workers=workers)
    for i, _ in enumerate(loader):
        if i == 2:
            assert len(_workers()) == workers
            break
    assert _no_workers(), "break (iterator dropped) must stop the worker"

    it = iter(loader)
    next(it)
    it.close()
    assert not _workers(), "close() joins the worker"
    with pytest.raises(StopIteration):
        next(it)

    with iter(loader) as it2:
        next(it2)
    assert not _workers(), "leaving the with-block joins the worker"

    it3 = iter(loader)  # never consumed, just dropped
    del it3
    assert _no_workers()


@pytest.mark.parametrize("workers", [1, 3])
def test_an_error_in_the_consumer_loop_stops_the_workers(workers):
    loader = BatchLoader(_Data(400), 4, _plain, shuffle=False, prefetch=4, workers=workers)

    def train_step_that_fails():
        for _x, _y in loader:
            raise ArithmeticError("loss is NaN")

    with pytest.raises(ArithmeticError):
        train_step_that_fails()
    assert _no_workers()


def test_memmap_dataset(tmp_path):
    data = _Data(60, 4, 4)
    path = tmp_path / "images.u8"
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=data.images.shape)
    mm[:] = data.images
    mm.flush()
    mapped = _Data(60, 4, 4)
    mapped.images = np.memmap(path, dtype=np.uint8, mode="r", shape=data.images.shape)
    a = _run(BatchLoader(data, 16, _noisy, shuffle=True, seed=2))
    b = _run(BatchLoader(mapped, 16, _noisy, shuffle=True, seed=2))
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert type(xb) is np.ndarray
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_get_batch_matches_iteration():
    loader = BatchLoader(_Data(30), 7, _noisy, shuffle=True, seed=8, epoch=4)
    batches = _run(loader)
    for b in (0, 3, 4):
        x, y = loader.get_batch(b)
        np.testing.assert_array_equal(x, batches[b][0])
        np.testing.assert_array_equal(y, batches[b][1])


def test_bad_arguments():
    data = _Data(10)
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(data, 0, _plain, shuffle=False)
    with pytest.raises(ValueError, match="prefetch"):
        BatchLoader(data, 2, _plain, shuffle=False, prefetch=-1)
    with pytest.raises(ValueError, match="images"):
        BatchLoader(object(), 2, _plain, shuffle=False)
    with pytest.raises(ValueError, match="callable"):
        BatchLoader(data, 2, None, shuffle=False)
    bad = _Data(10)
    bad.labels = bad.labels[:5]
    with pytest.raises(ValueError, match="labels"):
        BatchLoader(bad, 2, _plain, shuffle=False)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        BatchLoader(data, 2, _plain, shuffle=False, workers=0)
    for bad_workers in (1.5, "2", True):
        with pytest.raises(ValueError, match="workers"):
            BatchLoader(data, 2, _plain, shuffle=False, workers=bad_workers)
    with pytest.raises(ValueError, match="prefetch must be an integer"):
        BatchLoader(data, 2, _plain, shuffle=False, prefetch=1.5)


# --------------------------------------------------------------------------------------------
# Several worker threads


def test_defaults_and_prefetch_zero_means_no_thread_whatever_workers():
    loader = BatchLoader(_Data(10), 2, _plain, shuffle=False)
    assert loader.workers == default_workers() == min(4, os.cpu_count() or 1, _cores())
    assert loader.prefetch == max(2, loader.workers + 1)
    assert BatchLoader(_Data(10), 2, _plain, shuffle=False, workers=6).prefetch == 7
    assert BatchLoader(_Data(10), 2, _plain, shuffle=False, workers=1).prefetch == 2
    it = iter(BatchLoader(_Data(10), 2, _plain, shuffle=False, workers=4, prefetch=0))
    assert not _workers()
    assert len(list(it)) == 5 and not _workers()


@pytest.mark.parametrize("workers", [2, 4])
def test_batches_are_yielded_in_order_when_later_ones_finish_first(workers):
    """Batch b sleeps longer the smaller b is: the workers finish them in reverse order,
    and the consumer still receives 0, 1, 2, ... with the batches of prefetch=0."""
    data = _Data(48)

    def slow_first(images, rng):
        time.sleep(0.004 * (12 - int(images[0, 0, 0, 0]) // 4))  # unshuffled: batch = image//4
        return _noisy(images, rng)

    loader = BatchLoader(data, 4, slow_first, shuffle=False, seed=1, prefetch=8, workers=workers)
    got = _run(loader)
    want = _run(BatchLoader(data, 4, _noisy, shuffle=False, seed=1, prefetch=0))
    assert [int(y[0]) for _, y in got] == list(range(0, 48, 4))
    for (xa, ya), (xb, yb) in zip(got, want, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


@pytest.mark.parametrize("prefetch, workers", [(1, 4), (2, 2), (3, 4), (5, 4)])
def test_at_most_prefetch_batches_built_or_ready_and_not_yet_taken(prefetch, workers):
    lock = threading.Lock()
    state = {"started": 0, "taken": 0, "most": 0, "busy": 0, "most_busy": 0}

    def counting(images, rng):
        with lock:
            state["started"] += 1
            state["busy"] += 1
            state["most"] = max(state["most"], state["started"] - state["taken"])
            state["most_busy"] = max(state["most_busy"], state["busy"])
        time.sleep(0.003)
        with lock:
            state["busy"] -= 1
        return _plain(images, rng)

    loader = BatchLoader(_Data(120), 4, counting, shuffle=True, prefetch=prefetch, workers=workers)
    for _ in loader:
        time.sleep(0.004)  # a slow consumer: the workers run into the bound
        with lock:
            state["taken"] += 1
    assert state["taken"] == 30
    # + 1: a worker may start the next batch as soon as the consumer takes one, before the
    # consumer's own count moves; and the bound is reached (the workers do run ahead)
    assert prefetch <= state["most"] <= prefetch + 1
    assert state["most_busy"] <= min(prefetch, workers)


def test_wait_seconds_measures_the_time_blocked_in_next():
    def slow(images, rng):
        time.sleep(0.02)
        return _plain(images, rng)

    with iter(BatchLoader(_Data(40), 4, slow, shuffle=False, prefetch=1, workers=1)) as it:
        assert it.wait_seconds == 0.0
        for _ in it:
            pass
    assert 0.1 < it.wait_seconds < 5.0  # 10 batches of 20 ms, mostly waited for

    with iter(BatchLoader(_Data(40), 4, _plain, shuffle=False, prefetch=4, workers=2)) as it:
        next(it)
        time.sleep(0.3)  # the workers fill every slot meanwhile
        before = it.wait_seconds
        for _ in range(4):
            next(it)
    assert it.wait_seconds - before < 0.05, "ready batches are taken without waiting"


def test_get_batch_matches_iteration_with_several_workers():
    loader = BatchLoader(_Data(30), 7, _noisy, shuffle=True, seed=8, epoch=4, workers=3)
    batches = _run(loader)
    for b in range(len(batches)):
        x, y = loader.get_batch(b)
        np.testing.assert_array_equal(x, batches[b][0])
        np.testing.assert_array_equal(y, batches[b][1])


# --------------------------------------------------------------------------------------------
# The training transform as the loader runs it (the unpadded per-image path)


@pytest.mark.parametrize("size, crop", [(12, 9), (9, (7, 5)), (6, 6)])
def test_unpadded_train_transform_is_the_formula_image_by_image(size, crop):
    """Without padding ``train_transform`` walks the batch one image at a time (each window
    stays in cache, and every NumPy call releases the GIL): it must give exactly the numbers
    of the formula, with the random draws in the documented order."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, size, size, 3), dtype=np.uint8)
    stats = dataset_statistics(images)
    out = train_transform(images, np.random.default_rng(7), stats=stats, crop=crop)
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    draw = np.random.default_rng(7)
    alpha = draw.normal(0.0, 0.1, size=(40, 3))
    shift = ((alpha * stats.eigvals / 255) @ stats.eigvecs.T.astype(np.float64)).astype(np.float32)
    oy = draw.integers(0, size - ch + 1, size=40)
    ox = draw.integers(0, size - cw + 1, size=40)
    flipped = draw.random(40) < 0.5
    assert out.shape == (40, 3, ch, cw) and out.dtype == np.float32 and out.flags.c_contiguous
    for i in range(40):
        window = images[i, oy[i] : oy[i] + ch, ox[i] : ox[i] + cw].astype(np.float32)
        want = window - stats.mean[oy[i] : oy[i] + ch, ox[i] : ox[i] + cw]
        want = (want + shift[i]).transpose(2, 0, 1)
        if flipped[i]:
            want = want[:, :, ::-1]
        np.testing.assert_array_equal(out[i], want)
