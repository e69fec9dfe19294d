"""What the training loop does differently on N ranks, in one object.

::

    for each global batch (x, y) of B rows, identical on every rank:
        x, y = dp.shard(x, y)                  rows [r*B/N, (r+1)*B/N)
        dp.reseed(model, seed(epoch, batch))   dropout masks drawn for all B rows, sliced
        forward, loss                          on the shard (the loss is the shard's mean)
        dp.backward(model, dlogits)            the fc layers' gradients leave as soon as
                                               they are final, while conv5..conv1 run
        loss, correct, t = dp.sync(...)        the rest: conv gradients + loss + correct + clock
        optimizer.step()                       the same update on every rank

Overlap: the backward pass finishes the fully connected layers first, and they hold most
of the gradient (alexnet-cifar 79%, the paper's model 96% of the bytes). So the gradients
are two buffers: the fc layers' one starts its allreduce (non-blocking) when the backward
leaves fc6, and the convolutional backward runs while it travels; ``sync`` then reduces
the conv layers' buffer and waits for the first. ``overlap=False``: one buffer, reduced
after the backward. Either way every rank gets the same sums (the summation order per
element does not depend on the split).

With one process (``dist.size == 1``) every method is the identity or the plain call, so
the single-process run is unchanged bit for bit.
"""

from __future__ import annotations

import dataclasses
import time
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

    def __init__(self, dist: Dist, model: Any, global_batch: int, overlap: bool = True) -> None:
        self.dist, self.global_batch = dist, global_batch
        self.lo, self.hi = shard_bounds(global_batch, dist.rank, dist.size)
        self.comm_seconds = 0.0  # time spent in the allreduces (for the benchmark)
        self.steps = 0  # the syncs so far: the step a timed-out allreduce names
        self.early: FlatGrads | None = None  # the fc layers' gradients, sent during backward
        self.after: str | None = None  # the stage whose backward completes them
        self._pending: list[Any] = []
        params = list(model.parameters())
        if dist.size > 1 and overlap:
            self.after, early = _fc_part(model)
            if early and len(early) < len(params):
                self.early = FlatGrads(early)
                sent_early = {name for name, _, _ in early}
                params = [p for p in params if p[0] not in sent_early]
        self.flat = FlatGrads(params, extras=3) if dist.size > 1 else None

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

    def backward(self, model: Any, dlogits: Any) -> Any:
        """``model.backward(dlogits)``; with overlap, the fc layers' gradient allreduce starts
        as their backward ends, and every later stage lets it progress."""
        if self.early is None:
            return model.backward(dlogits)
        early = self.early

        def after_stage(name: str) -> None:
            start = time.perf_counter()
            if name == self.after:
                early.copy_in()
                self._pending = [self.dist.start_allreduce_(buf) for buf, _ in early.groups]
            for handle in self._pending:
                self.dist.progress(handle)
            self.comm_seconds += time.perf_counter() - start

        return model.backward(dlogits, after_stage=after_stage)

    def sync(self, loss: float, correct: int, seconds: float) -> tuple[float, int, float]:
        """Average the gradients over the ranks (in place); the global batch's loss, its count
        of correct top-1 answers, and the ranks' mean elapsed ``seconds`` (one clock for all)."""
        if self.flat is None:
            return loss, correct, seconds
        self.steps += 1
        self.dist.step = self.steps
        start = time.perf_counter()
        if self.early is not None and not self._pending:
            raise RuntimeError("DataParallel.sync: call dp.backward(model, dlogits) first")
        mean_loss, mean_correct, mean_seconds = self.flat.allreduce_mean_(
            self.dist, [loss, float(correct), seconds]
        )
        if self.early is not None:
            for handle in self._pending:
                self.dist.finish_allreduce_(handle)
            self._pending = []
            self.early.copy_out()
        self.comm_seconds += time.perf_counter() - start
        return mean_loss, round(mean_correct * self.dist.size), mean_seconds

    @property
    def nbytes(self) -> int:
        """The gradient bytes one step's allreduces move per rank."""
        return sum(f.nbytes for f in (self.early, self.flat) if f is not None)

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


def _fc_part(model: Any) -> tuple[str | None, list[tuple[str, Any, Any]]]:
    """The stage after whose backward the fully connected layers' gradients are final, and
    those parameters: every stage after the last one with a convolution."""
    from ..layers import Conv2d

    last_conv = max(
        (i for i, (_, stage) in enumerate(model.stages)
         if any(isinstance(layer, Conv2d) for _, layer, _ in stage.named_layers())),
        default=None,
    )  # fmt: skip
    if last_conv is None or last_conv + 1 >= len(model.stages):
        return None, []
    tail = model.stages[last_conv + 1 :]
    return tail[0][0], [p for _, stage in tail for p in stage.parameters()]
