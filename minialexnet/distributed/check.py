"""Start-up check that every rank runs the same code, options and model.

::

    rank r: fingerprint = {code: sha256 of minialexnet/**/*.py, options: {...}, shapes: sha256}
            allgather -> [fp_0, fp_1, ...]   every rank compares each with rank 0's
            a difference -> ConsistencyError naming the rank and what differs (on every rank)

Ranks that differ would otherwise deadlock (different parameter counts in the allreduce)
or, worse, train silently different models.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .comm import Dist


class ConsistencyError(RuntimeError):
    """The ranks of a run differ in code, options or parameter shapes."""


def code_hash() -> str:
    """sha256 of the package's Python sources (names and contents), in sorted order."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def fingerprint(options: dict[str, Any], shapes: list[tuple[str, tuple[int, ...]]]) -> dict:
    """What must agree between ranks: the code, the options (as text), the parameter shapes."""
    shape_text = ";".join(f"{name}:{tuple(shape)}" for name, shape in shapes)
    return {
        "code": code_hash(),
        "options": {k: repr(v) for k, v in sorted(options.items())},
        "shapes": hashlib.sha256(shape_text.encode()).hexdigest(),
    }


def check_consistent(dist: Dist, mine: dict) -> None:
    """Allgather every rank's :func:`fingerprint`; raise ConsistencyError on any difference."""
    everyone = dist.allgather(mine)
    root = everyone[0]
    for rank, fp in enumerate(everyone[1:], start=1):
        if fp["code"] != root["code"]:
            raise ConsistencyError(
                f"rank {rank} runs different minialexnet code than rank 0 (source hash "
                f"{fp['code'][:12]} vs {root['code'][:12]}): install the same version everywhere"
            )
        keys = sorted(set(fp["options"]) | set(root["options"]))
        diff = [k for k in keys if fp["options"].get(k) != root["options"].get(k)]
        if diff:
            what = ", ".join(
                f"--{k.replace('_', '-')} {fp['options'].get(k)} (rank 0: {root['options'].get(k)})"
                for k in diff
            )
            raise ConsistencyError(
                f"rank {rank} was started with different options than rank 0: {what}; give "
                "every rank the same command line"
            )
        if fp["shapes"] != root["shapes"]:
            raise ConsistencyError(
                f"rank {rank} built a model with different parameter shapes than rank 0"
            )
