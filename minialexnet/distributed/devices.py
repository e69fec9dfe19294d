"""Which GPU each process of a data-parallel run takes: local rank r on GPU r by default.

:func:`rank_device_names` is a pure function of the process's rank on its machine, the
number of GPUs it sees, and the command line::

    --device gpu (or auto with a GPU)   local rank r -> gpu:(r mod visible GPUs)
    --rank-gpus 0,1,2,3                 local rank r -> gpu:<r-th entry>
    --device gpu:N                      every rank on gpu:N (as asked)
    --gpus A[,B]                        the towers' GPUs, the same on every rank (unchanged)
    --device cpu                        the CPU

``--rank-gpus`` is a flag of its own rather than a second meaning of ``--gpus``: ``--gpus 0,1``
already means "tower A on GPU 0, tower B on GPU 1" in one process, and a run launched
under mpiexec must not silently read the same words as "rank 0 on GPU 0, rank 1 on GPU 1".
"""

from __future__ import annotations


def _gpu_ids(text: str, flag: str) -> list[int]:
    try:
        ids = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"{flag}: expected numbers like 0 or 0,1,2,3, got {text!r}") from None
    if not ids or min(ids) < 0:
        raise ValueError(f"{flag}: expected numbers like 0 or 0,1,2,3, got {text!r}")
    return ids


def rank_device_names(
    local_rank: int,
    visible: int,
    device: str = "auto",
    gpus: str | None = None,
    rank_gpus: str | None = None,
) -> list[str]:
    """The device names (one, or the towers' two) of the process of local rank ``local_rank``.

    ``visible``: how many GPUs this process sees (0 without CuPy or a driver). ``device``,
    ``gpus``, ``rank_gpus``: ``--device``, ``--gpus``, ``--rank-gpus`` as given. ``auto``
    means a GPU when one is visible, else the CPU. Raises ValueError for a malformed or
    too short ``--rank-gpus``, or one given with ``--gpus``; RuntimeError when a GPU is asked
    for and none is visible.
    """
    if rank_gpus:
        if gpus:
            raise ValueError(
                "give --gpus (the towers' GPUs, the same on every rank) or --rank-gpus "
                "(one GPU per process of a machine), not both"
            )
        ids = _gpu_ids(rank_gpus, "--rank-gpus")
        if local_rank >= len(ids):
            raise ValueError(
                f"--rank-gpus {rank_gpus} names {len(ids)} GPU(s) but this process is local "
                f"rank {local_rank}: give one GPU per process of the machine"
            )
        if visible < 1:
            raise RuntimeError(f"--rank-gpus {rank_gpus}: no GPU is visible to this process")
        if ids[local_rank] >= visible:
            raise ValueError(
                f"--rank-gpus {rank_gpus}: local rank {local_rank} would take gpu:"
                f"{ids[local_rank]}, but this process sees {visible} GPU(s)"
            )
        return [f"gpu:{ids[local_rank]}"]
    if gpus:
        return [f"gpu:{i}" for i in _gpu_ids(gpus, "--gpus")]
    name = device.strip().lower()
    if name == "auto":
        name = "gpu" if visible > 0 else "cpu"
    if name == "gpu":
        if visible < 1:
            raise RuntimeError(f"--device {device}: no GPU is visible to this process")
        return [f"gpu:{local_rank % visible}"]
    return ["cpu"] if name == "cpu" else [device]
