"""Which rows of a batch a rank takes, and dropout masks that do not depend on the split.

Rank ``r`` of ``N`` takes rows ``[r*B/N, (r+1)*B/N)`` of every global batch of ``B``
rows, so the shards' union is exactly the single-process batch::

    global batch  [ x0 x1 x2 x3 | x4 x5 x6 x7 ]    (B = 8, drawn and augmented on every rank)
                    rank 0          rank 1          (N = 2)

Dropout: each dropout layer's generator is seeded by (seed, epoch, batch) as on one
process; :class:`ShardedRng` draws the mask for all ``B`` rows and keeps the rank's, so
example ``i`` gets the same mask whatever ``N`` is.

Validation (any number of examples): :func:`split_range`, contiguous and as even as can be.
"""

from __future__ import annotations

from typing import Any


def shard_bounds(global_batch: int, rank: int, size: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of a global batch that ``rank`` of ``size`` trains on.

    Raises ValueError when ``global_batch`` is not divisible by ``size`` (the ranks' mean of
    means would no longer be the batch mean).
    """
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"shard_bounds: rank {rank} of {size} processes")
    if global_batch % size:
        raise ValueError(
            f"the global batch ({global_batch}, --batch-size) must be divisible by the number "
            f"of processes ({size}); choose a --batch-size that is a multiple of {size}"
        )
    per = global_batch // size
    return rank * per, (rank + 1) * per


def split_range(n: int, rank: int, size: int) -> tuple[int, int]:
    """Examples ``[lo, hi)`` of ``n`` for ``rank`` of ``size``: contiguous, sizes differ by <= 1."""
    return n * rank // size, n * (rank + 1) // size


class ShardedRng:
    """A generator that draws for ``global_rows`` rows and hands back rows ``[lo, hi)``.

    Wraps the dropout layers' generator: ``random((hi - lo, *rest))`` draws
    ``(global_rows, *rest)`` numbers (row by row, as one process would) and returns the slice.
    """

    def __init__(self, rng: Any, global_rows: int, lo: int, hi: int) -> None:
        self.rng, self.global_rows, self.lo, self.hi = rng, global_rows, lo, hi

    def random(self, shape: Any, *args: Any, **kwargs: Any) -> Any:
        shape = tuple(shape)
        if not shape or shape[0] != self.hi - self.lo:
            raise ValueError(
                f"ShardedRng: expected {self.hi - self.lo} rows (the shard), got shape {shape}"
            )
        full = self.rng.random((self.global_rows, *shape[1:]), *args, **kwargs)
        return full[self.lo : self.hi]


def shard_dropout(model: Any, global_rows: int, lo: int, hi: int) -> None:
    """Wrap every dropout layer's generator of ``model`` in a :class:`ShardedRng` (after reseed)."""
    from ..layers import Dropout

    for _, layer, _ in model.named_layers():
        if isinstance(layer, Dropout):
            layer.rng = ShardedRng(layer.rng, global_rows, lo, hi)
