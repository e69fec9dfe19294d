"""Time forward+backward of each AlexNet layer at the paper's shapes.

Each layer runs on random float32 data at its real shape (conv1..conv5 with
their groups, LRN1, pool1, fc6), batch 16 by default: one warm-up call, then
the median of ``--repeat`` timed forward+backward passes (device-synchronised
on a GPU). Achieved GFLOP/s counts the multiply-adds of the forward pass and of
the two backward products (3x the forward for conv and fc).

Each timed pass alternates with a timed float32 matrix product (2048^3), and
the "of matmul" column divides the layer's rate by the median matmul rate of
the same stretch of time: on a shared machine the BLAS rate drifts by tens of
percent over a minute, and interleaving keeps the ratio honest. Where PyTorch
happens to be installed (it is never a dependency), the same layer in
PyTorch, forward+backward through autograd, is timed in the same loop.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import functional as F
from ..backend import Device
from .common import interleaved_medians, matmul_gflops, reference_matmul, torch_on


@dataclass
class Result:
    layer: str
    shape: str
    ms: float
    gflops: float | None  # None for layers that are not matrix products
    matmul_gflops: float  # the device's 2048^3 float32 matmul rate, measured alongside
    torch_ms: float | None = None  # the same layer in PyTorch, where installed


@dataclass
class Case:
    """One layer: its inputs (host arrays), our forward/backward, PyTorch's, and its flops."""

    name: str
    inputs: dict[str, np.ndarray]
    ours: Callable[..., Any]  # (device arrays) -> None: one forward + backward
    theirs: Callable[..., Any]  # (torch module, tensors) -> None: the same in PyTorch
    flops: float | None


# name, input shape (per batch item), weight shape, stride, pad, groups  (paper.md's table)
CONV_LAYERS = [
    ("conv1", (3, 227, 227), (96, 3, 11, 11), 4, 0, 1),
    ("conv2", (96, 27, 27), (256, 48, 5, 5), 1, 2, 2),
    ("conv3", (256, 13, 13), (384, 256, 3, 3), 1, 1, 1),
    ("conv4", (384, 13, 13), (384, 192, 3, 3), 1, 1, 2),
    ("conv5", (384, 13, 13), (256, 192, 3, 3), 1, 1, 2),
]


def _conv_out(h: int, k: int, s: int, p: int) -> int:
    return (h + 2 * p - k) // s + 1


def paper_cases(batch: int, seed: int = 0) -> list[Case]:
    """The paper's layers at batch ``batch``, with seeded float32 inputs."""
    rng = np.random.default_rng(seed)

    def randn(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    cases = []
    for name, (c, h, w_), w_shape, s, p, g in CONV_LAYERS:
        oh, ow = _conv_out(h, w_shape[2], s, p), _conv_out(w_, w_shape[3], s, p)
        inputs = {
            "x": randn(batch, c, h, w_),
            "w": randn(*w_shape),
            "b": randn(w_shape[0]),
            "dout": randn(batch, w_shape[0], oh, ow),
        }

        def ours(x, w, b, dout, s=s, p=p, g=g):
            F.conv2d_backward(dout, F.conv2d_forward(x, w, b, s, p, g)[1])

        def theirs(torch, x, w, b, dout, s=s, p=p, g=g):
            torch.nn.functional.conv2d(x, w, b, s, p, 1, g).backward(dout)

        flops = 3 * 2 * batch * w_shape[0] * oh * ow * int(np.prod(w_shape[1:]))
        cases.append(Case(name, inputs, ours, theirs, flops))

    a = np.abs(randn(batch, 96, 55, 55)) * 50  # post-ReLU activations on the raw-pixel scale
    cases.append(
        Case(
            "lrn1",
            {"x": a, "dout": randn(*a.shape)},
            lambda x, dout: F.lrn_backward(dout, F.lrn_forward(x, 5, 2.0, 1e-4, 0.75)[1]),
            # PyTorch's alpha is n times ours (it averages the squares; see functional/lrn.py)
            lambda torch, x, dout: torch.nn.functional.local_response_norm(
                x, 5, alpha=5e-4, beta=0.75, k=2.0
            ).backward(dout),
            None,
        )
    )
    cases.append(
        Case(
            "pool1",
            {"x": a, "dout": randn(batch, 96, 27, 27)},
            lambda x, dout: F.maxpool2d_backward(dout, F.maxpool2d_forward(x, 3, 2)[1]),
            lambda torch, x, dout: torch.nn.functional.max_pool2d(x, 3, 2).backward(dout),
            None,
        )
    )
    cases.append(
        Case(
            "fc6",
            {
                "x": randn(batch, 9216),
                "w": randn(4096, 9216),
                "b": randn(4096),
                "dout": randn(batch, 4096),
            },
            lambda x, w, b, dout: F.linear_backward(dout, F.linear_forward(x, w, b)[1]),
            lambda torch, x, w, b, dout: torch.nn.functional.linear(x, w, b).backward(dout),
            3 * 2 * batch * 9216 * 4096,
        )
    )
    return cases


def _time_case(case: Case, device: Device, torch_dev: Any, repeat: int) -> Result:
    """Median times of our layer, PyTorch's (if any) and the reference matmul, interleaved."""
    arrays = {k: device.asarray(v) for k, v in case.inputs.items()}
    steps = {
        "ours": (lambda: case.ours(**arrays), device.synchronize),
        "matmul": reference_matmul(device),
    }
    if torch_dev is not None:
        torch, tdev, sync = torch_dev
        tensors = {
            k: torch.from_numpy(v).to(tdev).requires_grad_(k != "dout")
            for k, v in case.inputs.items()
        }
        steps["torch"] = (lambda: case.theirs(torch, **tensors), sync)
    seconds = interleaved_medians(steps, repeat)
    return Result(
        layer=case.name,
        shape=str(tuple(case.inputs["x"].shape)),
        ms=seconds["ours"] * 1e3,
        gflops=None if case.flops is None else case.flops / seconds["ours"] / 1e9,
        matmul_gflops=matmul_gflops(seconds["matmul"]),
        torch_ms=seconds["torch"] * 1e3 if "torch" in seconds else None,
    )


def run_layers(
    device: Device, batch: int = 16, repeat: int = 5, compare_torch: bool = True
) -> list[Result]:
    """Time every layer (and PyTorch's, where installed); one Result per layer."""
    torch_dev = torch_on(device) if compare_torch else None
    return [_time_case(case, device, torch_dev, repeat) for case in paper_cases(batch)]


def format_table(results: list[Result]) -> str:
    with_torch = any(r.torch_ms is not None for r in results)
    head = (
        f"{'layer':<6} {'input':<20} {'fwd+bwd ms':>10} {'GFLOP/s':>8} {'matmul':>7} "
        f"{'of matmul':>9}"
    )
    if with_torch:
        head += f" {'torch ms':>9} {'ours/torch':>10}"
    lines = [head, "-" * len(head)]
    for r in results:
        rate = f"{r.gflops:8.1f}" if r.gflops is not None else f"{'-':>8}"
        frac = f"{100 * r.gflops / r.matmul_gflops:8.0f}%" if r.gflops is not None else f"{'-':>9}"
        line = f"{r.layer:<6} {r.shape:<20} {r.ms:10.1f} {rate} {r.matmul_gflops:7.0f} {frac}"
        if with_torch and r.torch_ms is not None:
            line += f" {r.torch_ms:9.1f} {r.ms / r.torch_ms:9.2f}x"
        lines.append(line)
    lines.append("matmul: GFLOP/s of a 2048^3 float32 product, timed alternately with the layer")
    if with_torch:
        lines.append("ours/torch: our time over PyTorch's (same data, same run; >1 means slower)")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    device = Device(args.device)
    print(
        f"minialexnet layer benchmark: device {device.name}, batch {args.batch}, float32, "
        f"median of {args.repeat} ({platform.processor() or platform.machine()}, "
        f"numpy {np.__version__})",
        flush=True,
    )
    with device:
        results = run_layers(device, args.batch, args.repeat, compare_torch=not args.no_torch)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "device": device.name,
                    "batch": args.batch,
                    "layers": [asdict(r) for r in results],
                },
                f,
                indent=2,
            )
        print(f"wrote {args.json}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, gpu, gpu:N or auto (default cpu)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per layer (median)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--no-torch",
        action="store_true",
        help="skip the PyTorch comparison even where PyTorch is installed",
    )
    parser.set_defaults(run=main)
