"""Time forward+backward of each AlexNet layer at the paper's shapes.

Each layer runs on random float32 data at its real shape (conv1..conv5 with
their groups, LRN1, pool1, fc6), batch 16 by default: one warm-up call, then
the median of ``--repeat`` timed forward+backward passes (device-synchronised
on a GPU). Achieved GFLOP/s counts the multiply-adds of the forward pass and of
the two backward products (3x the forward for conv and fc). In the same run the
machine's own float32 matrix product (2048^3) is timed, so each conv/fc layer
can be read as a fraction of what this machine's BLAS can do.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import functional as F
from ..backend import Device


@dataclass
class Result:
    layer: str
    shape: str
    ms: float
    gflops: float | None  # None for layers that are not matrix products


def _time(fn: Callable[[], Any], device: Device, repeat: int) -> float:
    """Median seconds of fn() over `repeat` runs, after one warm-up run."""
    fn()
    device.synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        device.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(device: Device, size: int = 2048, repeat: int = 5) -> float:
    """This machine's float32 matrix-product rate, in GFLOP/s (2 n^3 flops per product)."""
    rng = device.rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    seconds = _time(lambda: a @ b, device, repeat)
    return 2 * size**3 / seconds / 1e9


# name, input shape (per batch item), weight shape, stride, pad, groups  (paper.md's table)
CONV_LAYERS = [
    ("conv1", (3, 227, 227), (96, 3, 11, 11), 4, 0, 1),
    ("conv2", (96, 27, 27), (256, 48, 5, 5), 1, 2, 2),
    ("conv3", (256, 13, 13), (384, 256, 3, 3), 1, 1, 1),
    ("conv4", (384, 13, 13), (384, 192, 3, 3), 1, 1, 2),
    ("conv5", (384, 13, 13), (256, 192, 3, 3), 1, 1, 2),
]


def run_layers(device: Device, batch: int = 16, repeat: int = 5) -> list[Result]:
    """Time every layer; returns one Result per layer."""
    rng = device.rng(0)
    f32 = np.float32

    def randn(*shape: int) -> Any:
        return rng.standard_normal(shape, dtype=f32)

    results = []
    for name, in_shape, w_shape, stride, pad, groups in CONV_LAYERS:
        x, w, b = randn(batch, *in_shape), randn(*w_shape), randn(w_shape[0])
        out, _ = F.conv2d_forward(x, w, b, stride, pad, groups)
        dout = randn(*out.shape)

        def step(x=x, w=w, b=b, stride=stride, pad=pad, groups=groups, dout=dout) -> None:
            _, cache = F.conv2d_forward(x, w, b, stride, pad, groups)
            F.conv2d_backward(dout, cache)

        seconds = _time(step, device, repeat)
        flops = 3 * 2 * out.size * w[0].size  # fwd + dx + dw: 2 * N*C_out*OH*OW * (C/g*KH*KW) each
        results.append(Result(name, f"{tuple(x.shape)} -> {tuple(out.shape)}", seconds * 1e3,
                              flops / seconds / 1e9))

    a = abs(randn(batch, 96, 55, 55)) * 50  # post-ReLU activations on the raw-pixel scale
    d = randn(*a.shape)
    seconds = _time(lambda: F.lrn_backward(d, F.lrn_forward(a)[1]), device, repeat)
    results.append(Result("lrn1", f"{tuple(a.shape)}", seconds * 1e3, None))

    out, _ = F.maxpool2d_forward(a, 3, 2)
    d = randn(*out.shape)
    seconds = _time(lambda: F.maxpool2d_backward(d, F.maxpool2d_forward(a, 3, 2)[1]), device,
                    repeat)
    results.append(Result("pool1", f"{tuple(a.shape)} -> {tuple(out.shape)}", seconds * 1e3,
                          None))

    x, w, b = randn(batch, 9216), randn(4096, 9216), randn(4096)
    d = randn(batch, 4096)
    seconds = _time(lambda: F.linear_backward(d, F.linear_forward(x, w, b)[1]), device, repeat)
    results.append(Result("fc6", f"{tuple(x.shape)} -> {tuple(d.shape)}", seconds * 1e3,
                          3 * 2 * x.shape[0] * w.size / seconds / 1e9))
    return results


def format_table(results: list[Result], matmul: float) -> str:
    lines = [
        f"{'layer':<6} {'shape':<40} {'fwd+bwd ms':>10} {'GFLOP/s':>8} {'of matmul':>9}",
        "-" * 77,
    ]
    for r in results:
        rate = f"{r.gflops:8.1f}" if r.gflops is not None else f"{'-':>8}"
        frac = f"{100 * r.gflops / matmul:8.0f}%" if r.gflops is not None else f"{'-':>9}"
        lines.append(f"{r.layer:<6} {r.shape:<40} {r.ms:10.1f} {rate} {frac}")
    lines.append(f"float32 matmul 2048^3 on this device: {matmul:.1f} GFLOP/s")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    device = Device(args.device)
    print(f"minialexnet layer benchmark: device {device.name}, batch {args.batch}, float32, "
          f"median of {args.repeat} ({platform.processor() or platform.machine()}, "
          f"numpy {np.__version__})", flush=True)
    with device:
        matmul = matmul_gflops(device)
        results = run_layers(device, args.batch, args.repeat)
    print(format_table(results, matmul))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device.name, "batch": args.batch, "matmul_gflops": matmul,
                       "layers": [asdict(r) for r in results]}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, gpu, gpu:N or auto (default cpu)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per layer (median)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.set_defaults(run=main)
