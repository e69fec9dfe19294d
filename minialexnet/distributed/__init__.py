"""Data-parallel training over MPI (and NCCL): one model, N processes, one allreduce a step.

``mpiexec -n N python -m minialexnet.train ...`` runs N copies of the training
script (ranks). Each rank holds the whole model, takes its own rows of every
global batch, runs forward and backward on them, and the gradients are averaged
over the ranks before the paper's SGD update, so every rank holds the same
parameters after every step::

    global batch of B rows (the same on every rank: same seed, epoch, batch)
        |  augmented whole on every rank, then sliced (shard.py)
        v
    rank 0: rows [0, B/N)      rank 1: rows [B/N, 2B/N)   ...
        | forward, backward        | forward, backward
        v                          v
    grads -> flat buffer       grads -> flat buffer       (flatgrad.py)
        \\__________ allreduce, / N (comm.py) ________/
        v                          v
    flat buffer -> grads       flat buffer -> grads
    SGD step                   SGD step                   (identical parameters)

Modules: :mod:`.comm` (who am I, allreduce; MPI, NCCL or a single process),
:mod:`.flatgrad` (one contiguous gradient buffer per device), :mod:`.shard`
(which rows a rank takes; dropout masks drawn for the whole batch),
:mod:`.check` (start-up consistency check between ranks), :mod:`.devices` (which GPU a
rank takes).
"""

from .check import ConsistencyError, check_consistent, fingerprint
from .comm import (
    BACKENDS,
    Dist,
    MPIDist,
    NcclDist,
    SingleProcess,
    current,
    init_distributed,
    launched_size,
)
from .data_parallel import DataParallel
from .devices import rank_device_names
from .flatgrad import FlatGrads
from .shard import ShardedRng, shard_bounds, shard_dropout, split_range

__all__ = [
    "BACKENDS",
    "ConsistencyError",
    "DataParallel",
    "Dist",
    "FlatGrads",
    "MPIDist",
    "NcclDist",
    "ShardedRng",
    "SingleProcess",
    "check_consistent",
    "current",
    "fingerprint",
    "init_distributed",
    "launched_size",
    "rank_device_names",
    "shard_bounds",
    "shard_dropout",
    "split_range",
]
