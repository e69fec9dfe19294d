"""Time forward+backward of each AlexNet layer at the paper's shapes.

Each layer runs on random float32 data at its real shape (conv1..conv5 with
their groups, LRN1, pool1, fc6), batch 16 by default: one warm-up call, then
the median of ``--repeat`` timed forward+backward passes (device-synchronised
on a GPU). Achieved GFLOP/s counts the multiply-adds of the forward pass and of
the two backward products (3x the forward for conv and fc).

Each timed pass alternates with a timed float32 matrix product (2048^3), and
the "of matmul" column divides the layer's rate by the median matmul rate of
the same stretch of time: on a shared or thermally throttled machine the BLAS
rate drifts by tens of percent over a minute, and interleaving keeps the ratio
honest.
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
    matmul_gflops: float  # the device's 2048^3 float32 matmul rate, measured alongside


class Timer:
    """Times a function alternately with a reference float32 matmul on the same device."""

    MATMUL_SIZE = 2048

    def __init__(self, device: Device, repeat: int) -> None:
        self.device, self.repeat = device, repeat
        rng = device.rng(0)
        n = self.MATMUL_SIZE
        self.a = rng.standard_normal((n, n), dtype=np.float32)
        self.b = rng.standard_normal((n, n), dtype=np.float32)

    def _once(self, fn: Callable[[], Any]) -> float:
        start = time.perf_counter()
        fn()
        self.device.synchronize()
        return time.perf_counter() - start

    def __call__(self, fn: Callable[[], Any]) -> tuple[float, float]:
        """(median seconds of fn, median matmul GFLOP/s), after one warm-up of each."""
        matmul = lambda: self.a @ self.b  # noqa: E731
        self._once(fn)
        self._once(matmul)
        times, ref = [], []
        for _ in range(self.repeat):
            times.append(self._once(fn))
            ref.append(self._once(matmul))
        return statistics.median(times), 2 * self.MATMUL_SIZE**3 / statistics.median(ref) / 1e9


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
    timer = Timer(device, repeat)
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

        seconds, matmul = timer(step)
        flops = 3 * 2 * out.size * w[0].size  # fwd + dx + dw: 2 * N*C_out*OH*OW * (C/g*KH*KW) each
        results.append(Result(name, f"{tuple(x.shape)} -> {tuple(out.shape)}", seconds * 1e3,
                              flops / seconds / 1e9, matmul))

    a = abs(randn(batch, 96, 55, 55)) * 50  # post-ReLU activations on the raw-pixel scale
    d = randn(*a.shape)
    seconds, matmul = timer(lambda: F.lrn_backward(d, F.lrn_forward(a)[1]))
    results.append(Result("lrn1", f"{tuple(a.shape)}", seconds * 1e3, None, matmul))

    out, _ = F.maxpool2d_forward(a, 3, 2)
    d = randn(*out.shape)
    seconds, matmul = timer(lambda: F.maxpool2d_backward(d, F.maxpool2d_forward(a, 3, 2)[1]))
    results.append(Result("pool1", f"{tuple(a.shape)} -> {tuple(out.shape)}", seconds * 1e3,
                          None, matmul))

    x, w, b = randn(batch, 9216), randn(4096, 9216), randn(4096)
    d = randn(batch, 4096)
    seconds, matmul = timer(lambda: F.linear_backward(d, F.linear_forward(x, w, b)[1]))
    results.append(Result("fc6", f"{tuple(x.shape)} -> {tuple(d.shape)}", seconds * 1e3,
                          3 * 2 * x.shape[0] * w.size / seconds / 1e9, matmul))
    return results


def format_table(results: list[Result]) -> str:
    lines = [
        f"{'layer':<6} {'shape':<40} {'fwd+bwd ms':>10} {'GFLOP/s':>8} {'matmul':>7} "
        f"{'of matmul':>9}",
        "-" * 85,
    ]
    for r in results:
        rate = f"{r.gflops:8.1f}" if r.gflops is not None else f"{'-':>8}"
        frac = f"{100 * r.gflops / r.matmul_gflops:8.0f}%" if r.gflops is not None else f"{'-':>9}"
        matmul = f"{r.matmul_gflops:7.0f}"
        lines.append(f"{r.layer:<6} {r.shape:<40} {r.ms:10.1f} {rate} {matmul} {frac}")
    lines.append("matmul: GFLOP/s of a 2048^3 float32 product, timed alternately with the layer")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    device = Device(args.device)
    print(f"minialexnet layer benchmark: device {device.name}, batch {args.batch}, float32, "
          f"median of {args.repeat} ({platform.processor() or platform.machine()}, "
          f"numpy {np.__version__})", flush=True)
    with device:
        results = run_layers(device, args.batch, args.repeat)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device.name, "batch": args.batch,
                       "layers": [asdict(r) for r in results]}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, gpu, gpu:N or auto (default cpu)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per layer (median)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.set_defaults(run=main)
