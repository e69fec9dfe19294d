"""Time whole training steps: forward, backward and the SGD update of a full model.

``python -m minialexnet.bench train`` times ``alexnet-cifar`` at batch 128 and the
paper's ``alexnet`` at batch 16 (``--model`` / ``--batch`` to choose) on random
data already on the device: a few warm-up steps, then the median of
``--steps`` timed steps (device-synchronised). It prints images/s and achieved
GFLOP/s, and the device's 2048^3 float32 matmul rate measured in the same run.
Where PyTorch is installed (never a dependency), the same architecture in
PyTorch (grouped convolutions for the towers, LRN per tower, the same SGD
settings) is timed in the same run, interleaved step by step.
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
from ..models import model_from_config
from ..optim import SGD
from .common import interleaved_medians, matmul_gflops, reference_matmul, torch_on


@dataclass
class TrainResult:
    model: str
    batch: int
    ms_per_step: float
    images_per_s: float
    matmul_gflops: float
    torch_images_per_s: float | None = None


def _our_step(arch: str, batch: int, device: Device, num_classes: int) -> Callable[[], Any]:
    model = model_from_config(
        {"arch": arch, "num_classes": num_classes, "init": "scaled"}, devices=[device], seed=0
    )
    optimizer = SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    rng = device.rng(0)
    x = rng.standard_normal((batch, 3, model.input_size, model.input_size), dtype=np.float32)
    x *= 60.0  # raw-pixel scale, as the data pipeline feeds it
    y = np.arange(batch) % num_classes

    def step() -> None:
        logits = model.forward(x, train=True)
        _, dlogits = F.softmax_cross_entropy(logits, y)
        model.backward(dlogits)
        optimizer.step()

    return step


def _torch_step(
    arch: str, batch: int, device: Device, num_classes: int
) -> tuple[Callable[[], Any], Callable[[], Any]] | None:
    """(step, synchronize) for the same network in PyTorch, or None where it cannot run."""
    found = torch_on(device)
    if found is None:
        return None
    torch, dev, sync = found
    from torch import nn  # noqa: PLC0415 -- optional, only for the comparison

    class TowerLRN(nn.Module):  # LRN within each tower: on each half of the channels
        def forward(self, x: Any) -> Any:
            halves = x.chunk(2, dim=1)
            return torch.cat(
                [nn.functional.local_response_norm(h, 5, 5e-4, 0.75, 2.0) for h in halves], dim=1
            )

    if arch == "alexnet":
        c, fc, size, k1, s1, p1, k2, flat = (96, 256, 384, 384, 256), 4096, 227, 11, 4, 0, 5, 9216
    else:
        c, fc, size, k1, s1, p1, k2, flat = (64, 128, 192, 192, 128), 1024, 32, 5, 1, 2, 5, 1152
    net = nn.Sequential(
        nn.Conv2d(3, c[0], k1, s1, p1),
        nn.ReLU(),
        TowerLRN(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(c[0], c[1], k2, 1, 2, groups=2),
        nn.ReLU(),
        TowerLRN(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(c[1], c[2], 3, 1, 1),
        nn.ReLU(),
        nn.Conv2d(c[2], c[3], 3, 1, 1, groups=2),
        nn.ReLU(),
        nn.Conv2d(c[3], c[4], 3, 1, 1, groups=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Linear(flat, fc),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(fc, fc),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(fc, num_classes),
    ).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, size, size, device=dev) * 60.0
    y = torch.arange(batch, device=dev) % num_classes

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    return step, sync


def run_train(
    device: Device,
    arch: str,
    batch: int,
    steps_count: int,
    warmup: int = 2,
    compare_torch: bool = True,
) -> TrainResult:
    num_classes = 1000 if arch == "alexnet" else 10
    ours = _our_step(arch, batch, device, num_classes)
    theirs = _torch_step(arch, batch, device, num_classes) if compare_torch else None
    steps = {"ours": (ours, device.synchronize), "matmul": reference_matmul(device)}
    if theirs:
        steps["torch"] = theirs
    seconds = interleaved_medians(steps, steps_count, warmup)  # interleaved: drift hits all alike
    return TrainResult(
        arch,
        batch,
        seconds["ours"] * 1e3,
        batch / seconds["ours"],
        matmul_gflops(seconds["matmul"]),
        batch / seconds["torch"] if "torch" in seconds else None,
    )


def main(args: argparse.Namespace) -> int:
    device = Device(args.device)
    plan = [(args.model, args.batch)] if args.model else [("alexnet-cifar", 128), ("alexnet", 16)]
    print(
        f"minialexnet training-step benchmark: device {device.name}, float32, median of "
        f"{args.steps} steps ({platform.processor() or platform.machine()}, "
        f"numpy {np.__version__})",
        flush=True,
    )
    results = []
    with device:
        for arch, batch in plan:
            r = run_train(
                device,
                arch,
                batch or (128 if arch == "alexnet-cifar" else 16),
                args.steps,
                compare_torch=not args.no_torch,
            )
            results.append(r)
            line = (
                f"{r.model:<14} batch {r.batch:4d}: {r.ms_per_step:8.1f} ms/step "
                f"{r.images_per_s:8.1f} images/s   (matmul {r.matmul_gflops:.0f} GFLOP/s)"
            )
            if r.torch_images_per_s:
                line += (
                    f"   PyTorch {r.torch_images_per_s:.1f} images/s, "
                    f"ours/torch speed {r.images_per_s / r.torch_images_per_s:.2f}x"
                )
            print(line, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device.name, "results": [asdict(r) for r in results]}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, gpu, gpu:N or auto (default cpu)")
    parser.add_argument(
        "--model",
        choices=["alexnet", "alexnet-cifar"],
        help="one model (default: alexnet-cifar at 128 and alexnet at 16)",
    )
    parser.add_argument("--batch", type=int, help="batch size for --model")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.set_defaults(run=main)
