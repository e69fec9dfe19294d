"""BatchLoader: deterministic order/augmentation, resume, background prefetching, clean shutdown."""

from __future__ import annotations

import threading
import time
import traceback

import numpy as np
import pytest

from minialexnet.data.loader import BatchLoader

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


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WORKER_NAME and t.is_alive()]


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
        _run(BatchLoader(data, 5, _noisy, shuffle=True, seed=3, epoch=2, prefetch=p))
        for p in (0, 1, 4)
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


@pytest.mark.parametrize("prefetch", [1, 2, 3])
def test_prefetch_runs_ahead_in_a_background_thread(prefetch):
    calls: list[int] = []
    lock = threading.Lock()

    def recording(images, rng):
        with lock:
            calls.append(threading.get_ident())
        return _plain(images, rng)

    loader = BatchLoader(_Data(40), 4, recording, shuffle=False, prefetch=prefetch)
    it = iter(loader)
    next(it)  # batch 0 taken: the worker now fills `prefetch` more while we "compute"
    deadline = time.monotonic() + 5.0
    while len(calls) < 1 + prefetch and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.15)  # give it a chance to (wrongly) run further ahead
    assert len(calls) == 1 + prefetch, "prepares exactly `prefetch` batches ahead"
    assert threading.get_ident() not in calls, "batches are built in another thread"
    assert len(set(calls)) == 1
    assert len(_workers()) == 1
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
        for _, y in BatchLoader(_Data(40), 4, failing_transform, shuffle=False, prefetch=2):
            received.append(y)
    assert len(received) == 2, "the batches before the failure are delivered first"
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "failing_transform" in names, names
    assert _no_workers()


def test_exception_also_surfaces_without_prefetch():
    def broken(images, rng):
        raise RuntimeError("nope")

    with pytest.raises(RuntimeError, match="nope"):
        next(iter(BatchLoader(_Data(8), 4, broken, shuffle=False, prefetch=0)))


def test_breaking_early_stops_the_worker():
    gate = threading.Event()

    def slowish(images, rng):
        gate.wait(0.01)
        return _plain(images, rng)

    loader = BatchLoader(_Data(400), 4, slowish, shuffle=True, prefetch=3)
    for i, _ in enumerate(loader):
        if i == 2:
            assert len(_workers()) == 1
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


def test_an_error_in_the_consumer_loop_stops_the_worker():
    loader = BatchLoader(_Data(400), 4, _plain, shuffle=False, prefetch=2)

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
