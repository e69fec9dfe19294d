"""Mini-batches prepared in a background thread while the model computes.

    loader = BatchLoader(train_set, 128, transform, shuffle=True, seed=0, epoch=3)
    for x, y in loader:          # x: float32 NCHW from ``transform``, y: int64 (B,)
        ...

**Determinism.** The order and the augmentation are a pure function of
``(seed, epoch, batch index)``, independent of timing and of ``prefetch``:

* order: ``perm = np.random.default_rng([seed, epoch]).permutation(N)`` when ``shuffle``,
  else ``arange(N)``; batch ``b`` holds the examples ``perm[b*B : (b+1)*B]``;
* augmentation: batch ``b`` is ``transform(images[perm[b*B : (b+1)*B]], rng_b)`` with
  ``rng_b = np.random.default_rng([seed, epoch, b])``.

So a run interrupted after ``k`` batches of an epoch resumes exactly with
``BatchLoader(..., epoch=e, start_batch=k)``: it yields the batches ``k, k+1, ...`` of the
full run, bit for bit.

**Prefetching.** One ``threading.Thread`` (no multiprocessing: NumPy releases the GIL in its
copy and arithmetic loops) prepares up to ``prefetch`` batches ahead of the consumer, bounded
by a semaphore (at most ``prefetch`` batches built or being built and not yet taken). An
exception in the worker is re-raised in the consumer with its original traceback. Breaking
out of the ``for`` loop (the iterator is dropped), calling ``close()``, or leaving a ``with``
block stops the worker and joins it; no thread outlives its iterator.

Gathering a batch reads the examples in sorted index order and then reorders them in memory,
which keeps reads from an ``np.memmap`` sequential on disk.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["BatchLoader", "BatchIterator"]

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]

# How often (seconds) a blocked worker or consumer looks at the stop flag / the worker's health.
_POLL_S = 0.05


class BatchLoader:
    """Deterministic, prefetching mini-batch loader over a dataset of uint8 images.

    Args:
        dataset: any object with ``images`` (uint8 ``(N, H, W, 3)``, may be an ``np.memmap``)
            and ``labels`` (``(N,)`` integers), e.g. ``minialexnet.data.Dataset``.
        batch_size: examples per batch ``B``.
        transform: ``transform(images_uint8_NHWC, rng) -> float32 NCHW``, e.g.
            ``functools.partial(train_transform, stats=stats, crop=32, pad=4)`` or
            ``lambda im, rng: eval_transform(im, stats=stats, crop=32)``.
        shuffle: a fresh permutation per ``(seed, epoch)``; ``False`` keeps dataset order.
        seed: base seed of the order and the augmentation.
        epoch: the epoch; with ``seed`` it fixes the permutation and every batch's rng.
        start_batch: index of the first batch to yield (resume in mid-epoch); ``0`` to
            ``num_batches``.
        drop_last: drop a final batch smaller than ``B``.
        prefetch: batches prepared ahead in the background thread (``>= 1``); ``0`` builds
            every batch in the consumer's thread (no thread at all; same batches).

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
        prefetch: int = 2,
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
        if int(prefetch) < 0:
            raise ValueError(f"BatchLoader: prefetch must be >= 0, got {prefetch}")
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
        return BatchIterator(plan, range(self.start_batch, self.num_batches), self.prefetch)


class _Plan:
    """Everything the worker needs (and nothing that refers back to the iterator)."""

    __slots__ = ("images", "labels", "order", "batch_size", "transform", "seed", "epoch")

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)


def _build_batch(plan: _Plan, index: int) -> tuple[np.ndarray, Any]:
    """Gather and transform batch ``index`` (sorted reads, then reorder)."""
    b = plan.batch_size
    idx = plan.order[index * b : (index + 1) * b]
    sort = np.argsort(idx, kind="stable")
    unsort = np.empty_like(sort)
    unsort[sort] = np.arange(len(sort))
    images = np.asarray(plan.images[idx[sort]])[unsort]
    labels = np.asarray(plan.labels[idx], dtype=np.int64)
    rng = np.random.default_rng([plan.seed, plan.epoch, int(index)])
    return plan.transform(images, rng), labels


_DONE = "done"
_ERROR = "error"
_BATCH = "batch"


def _worker(
    plan: _Plan,
    indices: range,
    out: queue.Queue,
    slots: threading.Semaphore,
    stop: threading.Event,
) -> None:
    """Build the batches in order; a free slot is needed before each one is started."""
    try:
        for index in indices:
            while not slots.acquire(timeout=_POLL_S):
                if stop.is_set():
                    return
            if stop.is_set():
                return
            out.put((_BATCH, _build_batch(plan, index)))
    except BaseException as exc:  # handed to the consumer, re-raised there
        out.put((_ERROR, exc))
        return
    out.put((_DONE, None))


class BatchIterator(Iterator[tuple[np.ndarray, Any]]):
    """One pass over the batches of a :class:`BatchLoader` (what ``iter(loader)`` returns).

    The worker thread starts at construction, so prefetching begins before the first
    ``next()``. ``close()`` (also called by ``__del__`` and ``__exit__``) stops and joins it.
    """

    def __init__(self, plan: _Plan, indices: range, prefetch: int) -> None:
        self._plan: _Plan | None = plan
        self._indices = iter(indices)
        self._remaining = len(indices)
        self._thread: threading.Thread | None = None
        self._closed = False
        if prefetch > 0 and len(indices) > 0:
            self._queue: queue.Queue = queue.Queue(maxsize=prefetch + 1)
            self._slots = threading.Semaphore(prefetch)
            self._stop = threading.Event()
            # The thread must not hold a reference to self, or dropping the iterator after a
            # `break` would not collect it (and so would not stop the thread).
            self._thread = threading.Thread(
                target=_worker,
                args=(plan, indices, self._queue, self._slots, self._stop),
                name="minialexnet-batch-loader",
                daemon=True,
            )
            self._thread.start()

    def __len__(self) -> int:
        return self._remaining

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> tuple[np.ndarray, Any]:
        if self._closed:
            raise StopIteration
        if self._thread is None:  # prefetch == 0: build in this thread
            try:
                index = next(self._indices)
            except StopIteration:
                self.close()
                raise
            assert self._plan is not None
            self._remaining -= 1
            return _build_batch(self._plan, index)
        while True:
            try:
                kind, payload = self._queue.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self.close()
                    raise RuntimeError(
                        "BatchLoader: the worker thread ended unexpectedly"
                    ) from None
        if kind == _BATCH:
            self._slots.release()
            self._remaining -= 1
            return payload
        self.close()
        if kind == _ERROR:
            raise payload  # keeps the worker's traceback (payload.__traceback__)
        raise StopIteration

    def close(self) -> None:
        """Stop the worker thread (if any), drop prepared batches, and wait for it to end."""
        if self._closed:
            return
        self._closed = True
        self._plan = None
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        if thread is not threading.current_thread():
            thread.join()
        while True:  # free the prefetched batches now
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    def __enter__(self) -> BatchIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # never raise from a finalizer
            pass
