"""Time whole training steps: forward, backward and the SGD update of a full model.

``python -m minialexnet.bench train --device gpu`` times the paper's ``alexnet`` at
batch 128 (on the CPU the default is ``alexnet-cifar`` at 128 and ``alexnet`` at 16;
``--model`` / ``--batch`` to choose) on random data already on the device: warm-up
steps, then the median of ``--steps`` timed steps, device-synchronised. It prints
images/s, the achieved TFLOP/s (3 x the forward pass's convolution and linear
FLOPs per step, :meth:`~minialexnet.towers.TwoTowerNet.forward_flops`), the peak
memory in use per device and per tower (:class:`~minialexnet.backend.MemoryMeter`:
the most bytes of CuPy's pool in use at once, or NumPy's traced buffers, in a
separate pass, since measuring slows the CPU down), and the device's 2048^3
float32 matmul rate measured in the same run. On a GPU it also times our step with
TensorFloat-32 allowed (``--tf32`` in training). Where PyTorch is installed (never a
dependency) the same architecture in PyTorch (grouped convolutions for the towers,
LRN per tower, the same SGD settings) is timed in the same run, interleaved step by
step, in float32 with TF32 off and, on a GPU, with TF32 on; the ratios compare like
with like. ``--gpus 0,1`` puts the towers on two GPUs; ``--profile`` adds where one
step's time goes, layer by layer.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import functional as F
from ..backend import Device, MemoryMeter, set_tf32, tower_devices
from ..models import model_from_config
from ..optim import SGD
from .common import interleaved_medians, matmul_gflops, reference_matmul, torch_on

GiB = 2**30


@dataclass
class TrainResult:
    """One model's row of the benchmark. Rates in images/s; None where not measured."""

    model: str
    batch: int
    devices: list[str]
    ms_per_step: float
    images_per_s: float
    tflops: float  # achieved: 3 x forward FLOPs per step / seconds per step
    step_flops: int
    matmul_gflops: float
    peak_memory_bytes: dict[str, int] = field(default_factory=dict)  # per device
    peak_memory_per_tower_bytes: dict[str, float] = field(default_factory=dict)
    tf32_images_per_s: float | None = None
    torch_images_per_s: float | None = None  # float32, TF32 off
    torch_tf32_images_per_s: float | None = None
    torch_peak_memory_bytes: int | None = None  # torch.cuda.max_memory_reserved
    profile_ms: dict[str, float] = field(default_factory=dict)  # layer -> fwd+bwd ms

    @property
    def ratio(self) -> float | None:
        """Our images/s over PyTorch's, both float32 without TF32."""
        return self.images_per_s / self.torch_images_per_s if self.torch_images_per_s else None

    @property
    def tf32_ratio(self) -> float | None:
        """Our images/s over PyTorch's, both with TF32 allowed."""
        if self.tf32_images_per_s and self.torch_tf32_images_per_s:
            return self.tf32_images_per_s / self.torch_tf32_images_per_s
        return None


def _build(arch: str, batch: int, devices: list[Device], num_classes: int) -> tuple[Any, Any]:
    """(model, step) for a training step of ``arch`` on random raw-scale images."""
    model = model_from_config(
        {"arch": arch, "num_classes": num_classes, "init": "scaled"}, devices=devices, seed=0
    )
    model.input_grad = False  # as in training: the images need no gradient (PyTorch: the same)
    optimizer = SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    home = devices[0]
    with home:
        x = home.rng(0).standard_normal(
            (batch, 3, model.input_size, model.input_size), dtype=np.float32
        )
        x *= 60.0  # raw-pixel scale, as the data pipeline feeds it
    y = np.arange(batch) % num_classes

    def step() -> None:
        logits = model.forward(x, train=True)
        _, dlogits = F.softmax_cross_entropy(logits, y)
        model.backward(dlogits)
        optimizer.step()

    return model, step


def _synchronize_all(devices: list[Device]) -> Callable[[], None]:
    def sync() -> None:
        for d in dict.fromkeys(devices):
            d.synchronize()

    return sync


def _with_tf32(work: Callable[[], Any], enabled: bool) -> Callable[[], Any]:
    def run() -> None:
        set_tf32(enabled)
        try:
            work()
        finally:
            set_tf32(False)

    return run


def _torch_net(torch: Any, arch: str, num_classes: int) -> tuple[Any, int]:
    """The same network in PyTorch, and its input size."""
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
    )
    return net, size


def _torch_steps(
    arch: str, batch: int, device: Device, num_classes: int
) -> tuple[dict[str, tuple[Callable[[], Any], Callable[[], Any]]], Callable[[], int | None]]:
    """{"torch": (step, sync), "torch_tf32": ...} for PyTorch on ``device`` (empty where it
    cannot run), and a function measuring PyTorch's peak memory (None on the CPU)."""
    found = torch_on(device)
    if found is None:
        return {}, lambda: None
    torch, dev, sync = found
    net, size = _torch_net(torch, arch, num_classes)
    net = net.to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, size, size, device=dev) * 60.0
    y = torch.arange(batch, device=dev) % num_classes

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    def with_tf32(enabled: bool) -> Callable[[], None]:
        def run() -> None:
            torch.backends.cuda.matmul.allow_tf32 = enabled
            torch.backends.cudnn.allow_tf32 = enabled
            try:
                step()
            finally:
                torch.backends.cuda.matmul.allow_tf32 = False
                torch.backends.cudnn.allow_tf32 = False

        return run

    steps = {"torch": (with_tf32(False), sync)}
    if not device.is_gpu:
        return steps, lambda: None
    steps["torch_tf32"] = (with_tf32(True), sync)

    def peak_memory() -> int:
        sync()
        torch.cuda.reset_peak_memory_stats(dev)
        for _ in range(2):
            with_tf32(False)()
        sync()
        return int(torch.cuda.max_memory_reserved(dev))

    return steps, peak_memory


def profile_step(model: Any, step: Callable[[], Any], devices: list[Device]) -> dict[str, float]:
    """Milliseconds of each layer's forward + backward within one training step.

    Every layer's ``forward`` and ``backward`` is wrapped for one step to synchronise
    the devices before and after it (so the figures add up to about the step, plus
    the loss, the moves between towers and the SGD update, listed as ``"other"``);
    synchronising costs a little, so the total is a bit above the unprofiled step.
    Where the towers run at once (two GPUs, or threads on the CPU) the two towers'
    layers overlap in time, and their figures add up to more than the step.
    """
    sync = _synchronize_all(devices)
    spent: dict[str, float] = {}
    wrapped = []
    for name, layer, _ in model.named_layers():
        for method in ("forward", "backward"):
            original = getattr(layer, method)

            def timed(*args: Any, _f: Any = original, _n: str = name, **kwargs: Any) -> Any:
                sync()
                start = time.perf_counter()
                result = _f(*args, **kwargs)
                sync()
                spent[_n] = spent.get(_n, 0.0) + (time.perf_counter() - start) * 1e3
                return result

            setattr(layer, method, timed)
            wrapped.append((layer, method))
    try:
        sync()
        start = time.perf_counter()
        step()
        sync()
        total = (time.perf_counter() - start) * 1e3
    finally:
        for layer, method in wrapped:
            delattr(layer, method)  # the class's method again
    spent["other"] = max(0.0, total - sum(spent.values()))
    return spent


def run_train(
    devices: list[Device],
    arch: str,
    batch: int,
    steps_count: int,
    warmup: int = 2,
    compare_torch: bool = True,
    profile: bool = False,
) -> TrainResult:
    """Time one model's training step on ``devices`` (one device: both towers on it)."""
    devices = [Device(d) for d in devices]
    home = devices[0]
    num_classes = 1000 if arch == "alexnet" else 10
    model, ours = _build(arch, batch, devices, num_classes)
    sync = _synchronize_all(devices)
    steps = {"ours": (ours, sync)}
    if home.is_gpu:
        steps["ours_tf32"] = (_with_tf32(ours, True), sync)
    steps["matmul"] = reference_matmul(home)
    torch_peak: Callable[[], int | None] = lambda: None  # noqa: E731
    if compare_torch:
        theirs, torch_peak = _torch_steps(arch, batch, home, num_classes)
        steps.update(theirs)
    with home:
        seconds = interleaved_medians(steps, steps_count, warmup)  # drift hits all alike
    profile_ms = profile_step(model, ours, devices) if profile else {}
    flops = 3 * model.forward_flops(batch)
    torch_peak_bytes = torch_peak() if compare_torch else None

    # Memory in a pass of its own, from a fresh model: two steps of the same work.
    del model, ours, steps
    gc.collect()
    with MemoryMeter(devices) as meter:
        _, again = _build(arch, batch, devices, num_classes)
        again()
        again()
        sync()
    del again
    tower_devices = devices if len(devices) == 2 else devices * 2  # tower a, tower b
    towers_on = Counter(d.name for d in tower_devices)
    # "cpu" is process-wide: both towers
    per_tower = {name: peak / towers_on.get(name, 2) for name, peak in meter.peak.items()}
    rate = {name: batch / s for name, s in seconds.items()}
    return TrainResult(
        model=arch,
        batch=batch,
        devices=[d.name for d in devices],
        ms_per_step=seconds["ours"] * 1e3,
        images_per_s=rate["ours"],
        tflops=flops / seconds["ours"] / 1e12,
        step_flops=flops,
        matmul_gflops=matmul_gflops(seconds["matmul"]),
        peak_memory_bytes=dict(meter.peak),
        peak_memory_per_tower_bytes=per_tower,
        tf32_images_per_s=rate.get("ours_tf32"),
        torch_images_per_s=rate.get("torch"),
        torch_tf32_images_per_s=rate.get("torch_tf32"),
        torch_peak_memory_bytes=torch_peak_bytes,
        profile_ms=profile_ms,
    )


def format_result(r: TrainResult) -> str:
    """The printed table for one result."""
    towers = "both towers" if len(r.devices) == 1 else "one tower each"
    lines = [
        f"{r.model}, batch {r.batch}, on {' + '.join(r.devices)} ({towers}); "
        f"{r.step_flops / 1e9:.0f} GFLOP per step; 2048^3 matmul {r.matmul_gflops / 1e3:.2f} "
        "TFLOP/s",
        f"  {'':<24}{'ms/step':>9}{'images/s':>10}{'TFLOP/s':>9}",
    ]

    def row(label: str, rate: float | None) -> None:
        if rate:
            ms = r.batch / rate * 1e3
            lines.append(
                f"  {label:<24}{ms:9.1f}{rate:10.1f}{r.step_flops / (ms / 1e3) / 1e12:9.2f}"
            )

    row("minialexnet float32", r.images_per_s)
    row("minialexnet TF32", r.tf32_images_per_s)
    row("PyTorch float32", r.torch_images_per_s)
    row("PyTorch TF32", r.torch_tf32_images_per_s)
    if r.ratio:
        text = f"  ours/PyTorch: float32 {r.ratio:.2f}x"
        if r.tf32_ratio:
            text += f", TF32 {r.tf32_ratio:.2f}x"
        lines.append(text)
    memory = ", ".join(
        f"{name} {peak / GiB:.2f} GiB"
        + (
            f" ({r.peak_memory_per_tower_bytes[name] / GiB:.2f} GiB per tower)"
            if name != "cpu"
            else " (NumPy arrays, both towers)"
        )
        for name, peak in r.peak_memory_bytes.items()
    )
    lines.append(f"  peak memory in use: {memory}")
    if r.torch_peak_memory_bytes:
        lines.append(f"  PyTorch peak memory (reserved): {r.torch_peak_memory_bytes / GiB:.2f} GiB")
    if r.profile_ms:
        by_layer: dict[str, float] = {}  # both towers' a.conv1 and b.conv1 as conv1
        for name, ms in r.profile_ms.items():
            layer = name.split(".", 1)[-1]
            by_layer[layer] = by_layer.get(layer, 0.0) + ms
        total = sum(by_layer.values())
        lines.append(f"  one profiled step: {total:.1f} ms, both towers, synchronised per layer")
        for name, ms in sorted(by_layer.items(), key=lambda kv: -kv[1]):
            if ms >= 0.01 * total:
                lines.append(f"    {name:<10}{ms:9.2f} ms {100 * ms / total:5.1f}%")
        lines.append("    (layers under 1% of the step not shown; all of them in --json)")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    try:
        devices = tower_devices(args.gpus, args.device)
    except (RuntimeError, ValueError) as exc:  # no GPU (what to install), or a bad --gpus
        print(f"minialexnet.bench train: {exc}")
        return 2
    if args.batch is not None and args.batch < 1:
        print(f"minialexnet.bench train: --batch must be >= 1, got {args.batch}")
        return 2
    if args.model:
        plan = [(args.model, args.batch or 128)]
    elif devices[0].is_gpu:
        plan = [("alexnet", args.batch or 128)]
    else:
        plan = [("alexnet-cifar", 128), ("alexnet", 16)]
    print(
        f"minialexnet training-step benchmark: {', '.join(d.name for d in devices)}, float32, "
        f"median of {args.steps} steps after {args.warmup} warm-up "
        f"({platform.processor() or platform.machine()}, numpy {np.__version__})",
        flush=True,
    )
    results = []
    for arch, batch in plan:
        r = run_train(
            devices,
            arch,
            batch,
            args.steps,
            warmup=args.warmup,
            compare_torch=not args.no_torch,
            profile=args.profile,
        )
        results.append(r)
        print(format_result(r), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "devices": [d.name for d in devices],
                    "date": time.strftime("%Y-%m-%d"),
                    "results": [asdict(r) | {"ratio": r.ratio, "tf32_ratio": r.tf32_ratio}
                                for r in results],
                },
                f,
                indent=2,
            )  # fmt: skip
        print(f"wrote {args.json}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, gpu, gpu:N or auto (default cpu)")
    parser.add_argument(
        "--gpus", help="GPU numbers, e.g. 0,1: a tower on each (overrides --device)"
    )
    parser.add_argument(
        "--model",
        choices=["alexnet", "alexnet-cifar"],
        help="one model (default: alexnet at 128 on a GPU; alexnet-cifar at 128 and alexnet "
        "at 16 on the CPU)",
    )
    parser.add_argument("--batch", type=int, help="batch size (default 128)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--profile", action="store_true", help="also time each layer in a step")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.set_defaults(run=main)
