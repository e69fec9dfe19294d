"""What the training loop does differently on N ranks, in one object.

::

    for each global batch (x, y) of B rows, identical on every rank:
        x, y = dp.shard(x, y)                  rows [r*B/N, (r+1)*B/N)
        dp.reseed(model, seed(epoch, batch))   dropout masks drawn for all B rows, sliced
        forward, loss, backward                on the shard (the loss is the shard's mean)
        loss, correct, t = dp.sync(...)        ONE allreduce: gradients + loss + correct + clock
        optimizer.step()                       the same update on every rank

With one process (``dist.size == 1``) every method is the identity or the plain call, so
the single-process run is unchanged bit for bit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .comm import Dist
from .flatgrad import FlatGrads
from .shard import shard_bounds, shard_dropout, split_range


class DataParallel:
    """Sharding, dropout and gradient averaging of one rank, for a global batch of ``global_batch``.

    Raises ValueError (from :func:`shard_bounds`) when ``global_batch`` is not divisible by
    the number of ranks.
    """

    def __init__(self, dist: Dist, model: Any, global_batch: int) -> None:
        self.dist, self.global_batch = dist, global_batch
        self.lo, self.hi = shard_bounds(global_batch, dist.rank, dist.size)
        self.flat = FlatGrads(model.parameters(), extras=3) if dist.size > 1 else None
        self.comm_seconds = 0.0  # time spent in the allreduces (for the benchmark)
        self.steps = 0  # the syncs so far: the step a timed-out allreduce names

    @property
    def active(self) -> bool:
        """More than one rank."""
        return self.dist.size > 1

    def shard(self, x: Any, y: Any) -> tuple[Any, Any]:
        """This rank's rows of a global batch (a full batch as given when alone)."""
        if not self.active:
            return x, y
        if len(y) != self.global_batch:
            raise ValueError(f"DataParallel: expected {self.global_batch} rows, got {len(y)}")
        return x[self.lo : self.hi], y[self.lo : self.hi]

    def reseed(self, model: Any, seed: int) -> None:
        """``model.reseed(seed)``, with the dropout masks drawn for the whole global batch."""
        model.reseed(seed)
        if self.active:
            shard_dropout(model, self.global_batch, self.lo, self.hi)

    def sync(self, loss: float, correct: int, seconds: float) -> tuple[float, int, float]:
        """Average the gradients over the ranks (in place); the global batch's loss, its count
        of correct top-1 answers, and the ranks' mean elapsed ``seconds`` (one clock for all)."""
        if self.flat is None:
            return loss, correct, seconds
        import time

        self.steps += 1
        self.dist.step = self.steps
        start = time.perf_counter()
        mean_loss, mean_correct, mean_seconds = self.flat.allreduce_mean_(
            self.dist, [loss, float(correct), seconds]
        )
        self.comm_seconds += time.perf_counter() - start
        return mean_loss, round(mean_correct * self.dist.size), mean_seconds

    def evaluate(self, evaluate: Callable[[Any], dict[str, Any]], dataset: Any) -> dict[str, Any]:
        """``evaluate(dataset)`` on this rank's part of ``dataset``, combined over the ranks.

        ``evaluate`` returns ``loss``, ``top1_err``, ``top5_err`` (means over its examples);
        the result holds the same over the whole dataset.
        """
        if not self.active:
            return evaluate(dataset)
        lo, hi = split_range(len(dataset), self.dist.rank, self.dist.size)
        part = dataclasses.replace(
            dataset, images=dataset.images[lo:hi], labels=dataset.labels[lo:hi]
        )
        n = hi - lo
        result = evaluate(part) if n else {"loss": 0.0, "top1_err": 0.0, "top5_err": 0.0}
        sums = self.dist.sum_host(
            [result["loss"] * n, result["top1_err"] * n, result["top5_err"] * n, float(n)]
        )
        total = max(sums[3], 1.0)
        return {"loss": sums[0] / total, "top1_err": sums[1] / total, "top5_err": sums[2] / total}
