"""data-parallel training steps on 1, 2, ... MPI ranks: images/s, efficiency, allreduce share

``python -m minialexnet.bench scaling`` launches ``mpiexec -n R`` for every R of ``--ranks``
(default 1,2), each rank one thread (``OMP_NUM_THREADS=1``, ``MINIALEXNET_TOWER_THREADS=0``:
BLAS and the towers on one thread); every rank times whole
training steps of ``--model`` on its shard of a global batch of ``--batch`` random images::

    parent:  for R in ranks:  mpiexec -n R python -m minialexnet.bench.scaling --worker ...
    worker:  shard -> forward -> backward -> allreduce (timed) -> SGD step, --steps times
             rank 0 prints one JSON line: images/s, seconds per step, share in the allreduce
    parent:  table: ranks, images/s, speed-up, efficiency (speed-up / R), allreduce share

The allreduce share counts the time a rank waits in the allreduce, the transfer and the
wait for a slower rank together. Needs ``pip install 'minialexnet[mpi]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m minialexnet.bench scaling``."""
    parser.add_argument("--model", default="alexnet-cifar", choices=["alexnet-cifar", "cnn4"])
    parser.add_argument("--batch", type=int, default=128, help="global batch (all ranks)")
    parser.add_argument("--ranks", default="1,2", help="rank counts to time, e.g. 1,2")
    parser.add_argument("--steps", type=int, default=8, help="timed steps (after 2 warm-up)")
    parser.add_argument(
        "--overlap",
        default="on",
        choices=["on", "off", "both"],
        help="send the fc layers' gradients during the backward pass (on), after it (off), "
        "or time both",
    )
    parser.add_argument("--json", help="also write the results here")
    parser.set_defaults(run=run)


def _mpiexec() -> str | None:
    return shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")


def run(args: argparse.Namespace) -> int:
    """Time every rank count in turn; print the table (and write ``--json``)."""
    mpiexec = _mpiexec()
    if mpiexec is None:
        print(
            "minialexnet.bench scaling: no mpiexec found; pip install 'minialexnet[mpi]'",
            file=sys.stderr,
        )
        return 2
    ranks = [int(r) for r in str(args.ranks).split(",") if r.strip()]
    one_thread = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    # one thread: the towers one after the other too (concurrency.py runs them on 2 threads)
    env = {**os.environ, **one_thread, "MINIALEXNET_TOWER_THREADS": "0"}
    rows: list[dict[str, Any]] = []
    overlaps = {"on": ["on"], "off": ["off"], "both": ["off", "on"]}[args.overlap]
    for n in ranks:
        for overlap in overlaps if n > 1 else ["off"]:
            cmd = [mpiexec, "-n", str(n), sys.executable, "-m", "minialexnet.bench.scaling",
                   "--worker", "--model", args.model, "--batch", str(args.batch),
                   "--steps", str(args.steps), "--overlap", overlap]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(done.stdout + done.stderr, file=sys.stderr)
                return 1
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = rows[0]["images_per_s"] / rows[0]["ranks"]
    print(f"{args.model}, global batch {args.batch}, one thread per rank, {args.steps} steps")
    print("ranks  overlap  images/s  speed-up  efficiency  allreduce share  MB per step")
    for r in rows:
        r["speedup"] = r["images_per_s"] / base
        r["efficiency"] = r["speedup"] / r["ranks"]
        print(
            f"{r['ranks']:>5}  {r['overlap'] if r['ranks'] > 1 else '-':>7}  "
            f"{r['images_per_s']:8.1f}  {r['speedup']:8.2f}x  "
            f"{100 * r['efficiency']:9.0f}%  {100 * r['allreduce_share']:14.1f}%  "
            f"{r['allreduce_bytes'] / 1e6:11.1f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "rows": rows}, indent=2))
    return 0


def worker(model_name: str, batch: int, steps: int, overlap: bool = True) -> dict[str, Any]:
    """One rank's timing (run under mpiexec): the JSON row that rank 0 prints."""
    from .. import functional as F
    from ..distributed import DataParallel, FlatGrads, init_distributed
    from ..models import model_from_config
    from ..optim import SGD

    dist = init_distributed("mpi")
    model = model_from_config({"arch": model_name, "num_classes": 10}, seed=0)
    model.input_grad = False
    optimizer = SGD(model.parameters(), lr=0.001)
    dp = DataParallel(dist, model, batch, overlap=overlap)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, model.input_size, model.input_size), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    xs, ys = dp.shard(x, y)
    start = time.perf_counter()
    for i in range(steps + 2):
        if i == 2:  # two warm-up steps
            dp.comm_seconds, start = 0.0, time.perf_counter()
        dp.reseed(model, i)
        loss, dlogits = F.softmax_cross_entropy(model.forward(xs, train=True), ys)
        dp.backward(model, dlogits)
        dp.sync(float(loss), 0, 0.0)
        optimizer.step()
    seconds = time.perf_counter() - start
    nbytes = dp.nbytes if dp.flat else FlatGrads(model.parameters(), extras=3).nbytes
    return {
        "ranks": dist.size,
        "overlap": "on" if dp.early is not None else "off",
        "images_per_s": steps * batch / seconds,
        "seconds_per_step": seconds / steps,
        "allreduce_share": dp.comm_seconds / seconds,
        "allreduce_bytes": nbytes,
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--worker", action="store_true")
    p.add_argument("--model", default="alexnet-cifar")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--overlap", default="on", choices=["on", "off"])
    a = p.parse_args()
    row = worker(a.model, a.batch, a.steps, a.overlap == "on")
    from ..distributed import current

    dist = current()
    if dist is None or dist.is_root:
        print(json.dumps(row))
