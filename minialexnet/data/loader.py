"""Mini-batches prepared in background threads while the model computes.

    loader = BatchLoader(train_set, 128, transform, shuffle=True, seed=0, epoch=3, workers=4)
    for x, y in loader:          # x: float32 NCHW from ``transform``, y: int64 (B,)
        ...

**Determinism.** The order and the augmentation are a pure function of
``(seed, epoch, batch index)``, independent of timing, ``prefetch`` and ``workers``:

* order: ``perm = np.random.default_rng([seed, epoch]).permutation(N)`` when ``shuffle``,
  else ``arange(N)``; batch ``b`` holds the examples ``perm[b*B : (b+1)*B]``;
* augmentation: batch ``b`` is ``transform(images[perm[b*B : (b+1)*B]], rng_b)`` with
  ``rng_b = np.random.default_rng([seed, epoch, b])``.

So a run interrupted after ``k`` batches of an epoch resumes exactly with
``BatchLoader(..., epoch=e, start_batch=k)``: it yields the batches ``k, k+1, ...`` of the
full run, bit for bit.

**Prefetching.** ``workers`` threads (no multiprocessing: NumPy releases the GIL in its copy
and arithmetic loops, so threads build batches in parallel) prepare up to ``prefetch`` batches
ahead of the consumer. They share one work list: a worker first takes a free slot (a semaphore
of ``prefetch`` slots; the consumer frees one with every batch it takes), then the lowest
batch index nobody has started, builds it, and files it under its index; the consumer yields
the batches strictly in index order. So at most ``prefetch`` batches are built or being built
and not yet taken (memory stays bounded), and since the slots are claimed in index order the
batch the consumer waits for is always being built (no deadlock). Which thread builds a batch
does not change it: batches are bit for bit the same for any ``workers`` and ``prefetch``.

An exception in a worker is re-raised in the consumer, with its original traceback, when the
consumer reaches that batch (the batches before it are delivered first); no new batch is
started after it. Breaking out of the ``for`` loop (the iterator is dropped), calling
``close()``, or leaving a ``with`` block stops the workers and joins them; no thread outlives
its iterator. ``BatchIterator.wait_seconds`` is the time the consumer spent blocked in
``next()``: near zero when the workers keep up, most of the epoch when data starves the model.

Gathering a batch reads the examples in sorted index order into their places in the batch (one
copy), which keeps reads from an ``np.memmap`` sequential on disk.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["BatchLoader", "BatchIterator", "default_workers"]

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]

# How often (seconds) a blocked worker or consumer looks at the stop flag / the workers' health.
_POLL_S = 0.05

_MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """Loader threads when none are asked for: ``min(4, cores this process may use)``.

    Measured with ``python -m minialexnet.bench loader`` (docs/training.md): one thread built
    2,200-2,500 of the 227x227 training images per second on the project's 2-core machine,
    two 4,200-4,600; the paper's model trains at 2,200-4,700 images/s on one GPU, so four
    threads keep up with room to spare.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(_MAX_DEFAULT_WORKERS, cores))


class BatchLoader:
    """Deterministic, prefetching mini-batch loader over a dataset of uint8 images.

    Args:
        dataset: any object with ``images`` (uint8 ``(N, H, W, 3)``, may be an ``np.memmap``)
            and ``labels`` (``(N,)`` integers), e.g. ``minialexnet.data.Dataset``.
        batch_size: examples per batch ``B``.
        transform: ``transform(images_uint8_NHWC, rng) -> float32 NCHW``, e.g.
            ``functools.partial(train_transform, stats=stats, crop=32, pad=4)`` or
            ``lambda im, rng: eval_transform(im, stats=stats, crop=32)``. With ``workers > 1``
            it is called from several threads at once, so it must not change shared state
            (the library's transforms are pure functions of their arguments).
        shuffle: a fresh permutation per ``(seed, epoch)``; ``False`` keeps dataset order.
        seed: base seed of the order and the augmentation.
        epoch: the epoch; with ``seed`` it fixes the permutation and every batch's rng.
        start_batch: index of the first batch to yield (resume in mid-epoch); ``0`` to
            ``num_batches``.
        drop_last: drop a final batch smaller than ``B``.
        prefetch: batches prepared ahead by the background threads (``>= 1``), the most that
            are built or being built and not yet taken; ``0`` builds every batch in the
            consumer's thread (no thread at all; same batches). Default: ``workers + 1``, at
            least 2 (the batches being built plus one ready).
        workers: threads building batches (``>= 1``; default :func:`default_workers`). At
            most ``prefetch`` of them work at once, so no more than ``prefetch`` threads start.

    ``len(loader)`` is the number of batches one iteration yields, ``num_batches - start_batch``;
    ``num_batches`` is the number in the whole epoch. ``seed``, ``epoch`` and ``start_batch``
    are plain attributes read when iteration starts, so one loader can serve every epoch::

        for epoch in range(E):
            loader.epoch = epoch
            for x, y in loader: ...

    Iterating yields ``(x, y)``: ``x = transform(images, rng_b)`` and ``y`` int64 ``(B,)``.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        transform: Transform,
        *,
        shuffle: bool,
        seed: int = 0,
        epoch: int = 0,
        start_batch: int = 0,
        drop_last: bool = False,
        prefetch: int | None = None,
        workers: int | None = None,
    ) -> None:
        images = getattr(dataset, "images", None)
        labels = getattr(dataset, "labels", None)
        if images is None or labels is None:
            raise ValueError(
                "BatchLoader: dataset must have .images (N, H, W, 3) and .labels (N,), "
                f"got {type(dataset).__name__}"
            )
        if len(images) != len(labels):
            raise ValueError(
                f"BatchLoader: dataset has {len(images)} images but {len(labels)} labels"
            )
        if int(batch_size) < 1:
            raise ValueError(f"BatchLoader: batch_size must be >= 1, got {batch_size}")
        if workers is None:
            workers = default_workers()
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(
                f"BatchLoader: workers must be an integer >= 1 (threads building batches; "
                f"prefetch=0 for none), got {workers!r}"
            )
        if prefetch is None:
            prefetch = max(2, int(workers) + 1)
        if isinstance(prefetch, bool) or not isinstance(prefetch, (int, np.integer)):
            raise ValueError(f"BatchLoader: prefetch must be an integer >= 0, got {prefetch!r}")
        if int(prefetch) < 0:
            raise ValueError(
                f"BatchLoader: prefetch must be >= 0 (0: no thread, batches built on demand), "
                f"got {prefetch}"
            )
        if not callable(transform):
            raise ValueError(
                f"BatchLoader: transform must be callable, got {type(transform).__name__}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.transform = transform
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.drop_last = bool(drop_last)
        self.prefetch = int(prefetch)
        self.workers = int(workers)
        self.start_batch = int(start_batch)
        self._check_start_batch()

    @property
    def num_examples(self) -> int:
        """``N``, the examples in the dataset."""
        return len(self.dataset.labels)

    @property
    def num_batches(self) -> int:
        """Batches in a whole epoch: ``N // B`` with ``drop_last``, else ``ceil(N / B)``."""
        n, b = self.num_examples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __len__(self) -> int:
        return max(0, self.num_batches - self.start_batch)

    def _check_start_batch(self) -> None:
        if not 0 <= self.start_batch <= self.num_batches:
            raise ValueError(
                f"BatchLoader: start_batch must be in [0, {self.num_batches}] "
                f"(the batches of an epoch), got {self.start_batch}"
            )

    def order(self) -> np.ndarray:
        """The example order of this ``(seed, epoch)``: a permutation of ``arange(N)``."""
        n = self.num_examples
        if self.shuffle:
            return np.random.default_rng([self.seed, self.epoch]).permutation(n)
        return np.arange(n)

    def batch_rng(self, index: int) -> np.random.Generator:
        """The generator handed to ``transform`` for batch ``index`` of this epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def get_batch(self, index: int, order: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """Build batch ``index`` of this ``(seed, epoch)`` synchronously (what iteration yields)."""
        if order is None:
            order = self.order()
        return _build_batch(self._plan(order), index)

    def _plan(self, order: np.ndarray) -> _Plan:
        return _Plan(
            images=self.dataset.images,
            labels=self.dataset.labels,
            order=order,
            batch_size=self.batch_size,
            transform=self.transform,
            seed=self.seed,
            epoch=self.epoch,
        )

    def __iter__(self) -> BatchIterator:
        self._check_start_batch()
        plan = self._plan(self.order())
        return BatchIterator(
            plan, range(self.start_batch, self.num_batches), self.prefetch, self.workers
        )


class _Plan:
    """Everything the worker needs (and nothing that refers back to the iterator)."""

    __slots__ = ("images", "labels", "order", "batch_size", "transform", "seed", "epoch")

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)


def _build_batch(plan: _Plan, index: int) -> tuple[np.ndarray, Any]:
    """Gather and transform batch ``index`` (sorted reads, one copy)."""
    b = plan.batch_size
    idx = plan.order[index * b : (index + 1) * b]
    source = np.asarray(plan.images)  # a memmap's plain-array view: no subclass per row
    images = np.empty((len(idx), *source.shape[1:]), dtype=source.dtype)
    for j in np.argsort(idx, kind="stable"):  # in file order, each into its place
        images[j] = source[idx[j]]
    labels = np.asarray(plan.labels[idx], dtype=np.int64)
    rng = np.random.default_rng([plan.seed, plan.epoch, int(index)])
    return plan.transform(images, rng), labels


_BATCH = "batch"
_ERROR = "error"


class _Work:
    """What the worker threads and the consumer share (nothing that refers to the iterator).

    ``started`` counts the positions in ``indices`` that a worker has claimed (always a
    prefix); ``ready`` maps a claimed position to ``(_BATCH, batch)`` or ``(_ERROR, exc)``
    once built. ``slots`` has ``prefetch`` permits: a worker takes one before it claims a
    position, the consumer gives one back with each batch it takes.
    """

    def __init__(self, plan: _Plan, indices: range, prefetch: int) -> None:
        self.plan = plan
        self.indices = indices
        self.slots = threading.Semaphore(prefetch)
        self.stop = threading.Event()
        self.lock = threading.Condition()
        self.started = 0
        self.failed = False
        self.ready: dict[int, tuple[str, Any]] = {}


def _worker(work: _Work) -> None:
    """Claim the next batch (a free slot first), build it, file it; until none is left."""
    while True:
        while not work.slots.acquire(timeout=_POLL_S):
            if work.stop.is_set():
                return
        with work.lock:
            if work.stop.is_set() or work.failed or work.started >= len(work.indices):
                work.slots.release()
                return
            position = work.started
            work.started += 1
        try:
            item: tuple[str, Any] = (_BATCH, _build_batch(work.plan, work.indices[position]))
        except BaseException as exc:  # handed to the consumer, re-raised there
            item = (_ERROR, exc)
        with work.lock:
            work.ready[position] = item
            if item[0] == _ERROR:
                work.failed = True  # start nothing more: the consumer stops at this batch
            work.lock.notify_all()
        if item[0] == _ERROR:
            return


class BatchIterator(Iterator[tuple[np.ndarray, Any]]):
    """One pass over the batches of a :class:`BatchLoader` (what ``iter(loader)`` returns).

    The worker threads start at construction, so prefetching begins before the first
    ``next()``. ``close()`` (also called by ``__del__`` and ``__exit__``) stops and joins them.
    ``wait_seconds``: the total time spent in ``next()`` waiting for (or, with
    ``prefetch=0``, building) batches.
    """

    def __init__(self, plan: _Plan, indices: range, prefetch: int, workers: int = 1) -> None:
        self._plan: _Plan | None = plan
        self._indices = indices
        self._position = 0  # the next position of `indices` to yield
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.wait_seconds = 0.0
        if prefetch > 0 and len(indices) > 0:
            self._work: _Work | None = _Work(plan, indices, prefetch)
            # The threads must not hold a reference to self, or dropping the iterator after a
            # `break` would not collect it (and so would not stop them).
            for k in range(min(workers, prefetch, len(indices))):
                thread = threading.Thread(
                    target=_worker,
                    args=(self._work,),
                    name=f"minialexnet-batch-loader-{k}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
        else:
            self._work = None

    def __len__(self) -> int:
        return len(self._indices) - self._position

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> tuple[np.ndarray, Any]:
        if self._closed or self._position >= len(self._indices):
            self.close()
            raise StopIteration
        start = time.perf_counter()
        try:
            return self._next()
        finally:
            self.wait_seconds += time.perf_counter() - start

    def _next(self) -> tuple[np.ndarray, Any]:
        position = self._position
        work = self._work
        if work is None:  # prefetch == 0: build in this thread
            assert self._plan is not None
            self._position += 1
            return _build_batch(self._plan, self._indices[position])
        with work.lock:
            while position not in work.ready:
                work.lock.wait(timeout=_POLL_S)
                if position not in work.ready and not any(t.is_alive() for t in self._threads):
                    break
            item = work.ready.pop(position, None)
        if item is None:
            self.close()
            raise RuntimeError("BatchLoader: the worker threads ended unexpectedly")
        kind, payload = item
        if kind == _ERROR:
            self.close()
            raise payload  # keeps the worker's traceback (payload.__traceback__)
        work.slots.release()
        self._position += 1
        return payload

    def close(self) -> None:
        """Stop the worker threads (if any), drop prepared batches, and wait for them to end."""
        if self._closed:
            return
        self._closed = True
        self._plan = None
        work, self._work = self._work, None
        threads, self._threads = self._threads, []
        if work is None:
            return
        work.stop.set()
        current = threading.current_thread()
        for thread in threads:
            if thread is not current:
                thread.join()
        with work.lock:
            work.ready.clear()  # free the prefetched batches now

    def __enter__(self) -> BatchIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # never raise from a finalizer
            pass
