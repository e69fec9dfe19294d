"""``python -m minialexnet.train``: train AlexNet with the paper's recipe.

With no arguments it trains the small two-tower model (``alexnet-cifar``) on
the built-in procedurally generated dataset (``shapes``, no download) on the
best device present, in under ten minutes on a 2-core CPU. ``--model alexnet``
is the paper's network (227x227 inputs), ``--model cnn4`` the paper's four-layer
CIFAR-10 net; ``--dataset cifar10`` or ``--dataset folder:PATH`` real data.
``--variant activation=tanh|lrn=off|pool=2/2|towers=1`` changes one thing of the
model (the paper's ablations, see ``minialexnet.experiments``), ``--no-augment``
trains on the plain images.

The recipe (paper section 5): SGD with momentum 0.9 and weight decay 5e-4
written as the paper's rule, batch 128, learning rate 0.01 divided by 10 when
the validation error stops improving (at most three times), dropout 0.5 in
fc6/fc7, random crops + flips + PCA colour augmentation, mean image
subtracted, top-1/top-5 error on validation after every epoch, ten-crop test
at the end. The default run on ``shapes`` changes four things, so that it learns
in minutes on every seed (docs/training.md, "Why the default run learns"):
``--init balanced`` (the raw pixels' scale spread over the layers, conv1 blind to
an image's mean colour and starting small), ``--lr 0.0035``, ``--batch-size 64`` and
``--schedule linear`` (lr down to 0 over the run: a 10-minute run never sees a
plateau); it runs 8 epochs.
``--recipe paper`` is the paper's recipe. A run whose best validation error is
still near chance ends with a warning saying what to try.

Every run is a pure function of ``--seed``: the order of the examples, each
batch's augmentation and each batch's dropout masks are drawn from generators
seeded by (seed, epoch, batch). So ``--resume`` after an interruption (Ctrl-C
saves first; a killed process loses at most the current epoch) continues to the
same result as an uninterrupted run, on the CPU bit for bit (except with
``--schedule linear --max-minutes``, whose learning rate follows the clock).

Data parallel: ``mpiexec -n N python -m minialexnet.train ...`` trains one model on N
processes (``pip install 'minialexnet[mpi]'``): each takes its 1/N of every global batch
(``--batch-size`` stays the global batch, ``--lr`` its meaning), the gradients are averaged
by one allreduce a step, rank 0 prints and writes the files (:mod:`minialexnet.distributed`).

Written to ``--out``: metrics.jsonl (one JSON object per epoch), checkpoint.npz
(latest), best.npz (lowest validation top-1 error), curves.png, final.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from . import _gpu_setup
from . import functional as F
from .backend import (
    Device,
    _gpu_count,
    gpu_available,
    memory_held,
    reuse_freed_memory,
    set_tf32,
    to_numpy,
    tower_devices,
)
from .checkpoint import (
    CheckpointError,
    check_config,
    load_checkpoint,
    pack,
    save_checkpoint,
    unpack,
)
from .data import BatchLoader, Stats, dataset_statistics, load_dataset, train_transform
from .distributed import BACKENDS, Dist, check_consistent, fingerprint, init_distributed
from .distributed import current as current_dist
from .distributed.data_parallel import DataParallel
from .distributed.devices import rank_device_names
from .evaluate import evaluate_model, load_model, topk_correct
from .models import Variant, model_from_config
from .optim import SGD, LinearSchedule, PlateauSchedule, StepSchedule
from .viz import plot_curves, read_metrics

DEFAULT_EPOCHS = {"shapes": 8, "cifar10": 30}  # folders: 90, the paper's number of passes
# shapes: 8 epochs of 10,000 images keep the default run under 10 minutes on 2 CPU cores
# (docs/training.md, "Why the default run learns": wall times and errors of seeds 0, 1, 2)
DEFAULT_SCHEDULE = {"shapes": "linear"}  # else "plateau", the paper's
# shapes: a 10-minute run never sees a plateau, and at a constant lr 0.01 it learned in
# epoch 2 and fell back to chance in epoch 3 (docs/training.md); linear decay fits the budget
DEFAULT_INIT = {"shapes": "balanced"}  # else "scaled"
# shapes: with "scaled" the run sat at ln 10 for 80-140 steps, then learned and fell back to
# chance (docs/training.md, "Why the default run learns"); "balanced" leaves chance in 30-50
DEFAULT_LR = {"balanced": 0.0035}  # by init; else 0.01, the paper's
# balanced: the raw pixels' scale spread over eight layers makes every step 2.8x (64^(1/4))
# what it would be on unit-scale inputs; at 0.01 it spiked back to chance; at 0.005 seed 1 learned
# and fell back to chance in epoch 2 (59.2% after 5 epochs); 0.0035 learned on seeds 0, 1, 2
DEFAULT_BATCH = {"shapes": 64}  # else 128, the paper's
# shapes: as many images/s as 128 on the CPU and twice the steps; the start is counted in steps
# (30-60), so batch 64 leaves chance in epoch 1 (77.5% against 86.3% with batch 128)
PAPER_RECIPE = {"init": "paper", "lr": 0.01, "schedule": "plateau", "batch_size": 128}
NEAR_CHANCE = 0.9
"""A run whose best validation top-1 error is at least this share of chance's (1 - 1/classes,
90% for 10 classes) has not learned: it ends with a warning (:func:`chance_warning`)."""


@dataclass
class Progress:
    """Where a run is: the next (epoch, batch) and the running sums of the current epoch."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches of the current epoch already done
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    best_val_top1: float = math.inf
    extra: dict[str, Any] = field(default_factory=dict)

    def start_epoch(self) -> None:
        """Reset the per-epoch position and running sums at the start of an epoch."""
        self.batch, self.loss_sum, self.correct, self.seen, self.seconds = 0, 0.0, 0, 0, 0.0


@dataclass
class Budget:
    """What a run may spend: ``epochs`` passes and, optionally, ``seconds`` of wall time."""

    epochs: int
    seconds: float | None = None
    start: float = field(default_factory=time.monotonic)
    synced: float | None = None  # data parallel: the ranks' mean elapsed seconds, one clock

    def clock(self) -> float:
        """Seconds since the start, by this process's clock."""
        return time.monotonic() - self.start

    def elapsed(self) -> float:
        """Seconds since the start (on N ranks, their mean as of the last step: they agree)."""
        return self.clock() if self.synced is None else self.synced

    def over(self) -> bool:
        """True once the time limit has passed."""
        return self.seconds is not None and self.elapsed() > self.seconds

    def done(self, epoch: int, batch: int, num_batches: int) -> float:
        """The share of the run done before (epoch, batch): of the batches, or of the time."""
        share = (epoch * num_batches + batch) / max(self.epochs * num_batches, 1)
        if self.seconds is not None:
            share = max(share, self.elapsed() / self.seconds)
        return min(share, 1.0)


class Stop(Exception):
    """Raised to end training early with a message (a NaN or infinite loss)."""


class TimeLimit(Stop):
    """Raised when --max-minutes is reached: the run saves and can be resumed.

    ``epoch_fraction``: the share of the current epoch's batches already trained.
    """

    def __init__(self, message: str, epoch_fraction: float) -> None:
        super().__init__(message)
        self.epoch_fraction = epoch_fraction


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, checked (``--variant`` items parsed into a dict)."""
    p = argparse.ArgumentParser(
        prog="python -m minialexnet.train",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--device", default="auto", help="auto | cpu | gpu | gpu:N")
    p.add_argument(
        "--gpus",
        help="GPU numbers, e.g. 0,1: tower A on the first, tower B on the "
        "second; one number puts both towers on that GPU (overrides --device)",
    )
    p.add_argument(
        "--rank-gpus",
        metavar="IDS",
        help="data parallel: one GPU per process of a machine, e.g. 0,1,2,3: local rank r "
        "takes the r-th (default with --device gpu or auto: local rank r on GPU r mod the GPUs "
        "visible); a flag of its own because --gpus names the two towers' GPUs",
    )
    p.add_argument(
        "--model",
        default="alexnet-cifar",
        choices=["alexnet", "alexnet-cifar", "cnn4"],
        help="alexnet: the paper's (227x227); alexnet-cifar: its topology for 32x32; cnn4: the "
        "paper's four-layer CIFAR-10 net (one device)",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one thing of the model, for the paper's ablations (repeatable): "
        "activation=tanh, lrn=off, pool=2/2 (window/stride), towers=1",
    )
    p.add_argument("--dataset", default="shapes", help="shapes | cifar10 | folder:PATH")
    p.add_argument("--data-dir", help="where CIFAR-10 is (archive or extracted folder)")
    p.add_argument(
        "--epochs",
        type=int,
        help="passes over the training set (default: 5 on shapes, 30 on cifar10, 90 on a folder)",
    )
    p.add_argument("--batch-size", type=int, help="default: 64 on shapes, else 128 (the paper's)")
    p.add_argument(
        "--recipe",
        default="default",
        choices=["default", "paper"],
        help="default: on shapes --init balanced --lr 0.0035 --schedule linear --batch-size 64 "
        "(a run that learns in minutes, see docs/training.md), elsewhere --init scaled --lr "
        "0.01 --schedule plateau --batch-size 128; paper: the paper's section 5, --init paper "
        "--lr 0.01 --schedule plateau --batch-size 128. Flags given override the recipe",
    )
    p.add_argument(
        "--lr", type=float, help="learning rate (default: 0.0035 with --init balanced, else 0.01)"
    )
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument(
        "--init",
        choices=["balanced", "scaled", "paper"],
        help="balanced: He's N(0, 2/fan_in) with the raw pixels' scale spread over the "
        "layers and conv1 blind to the mean colour (default on shapes); scaled: PyTorch's "
        "U(+-1/sqrt(fan_in)), which learns on CIFAR-10 (default elsewhere); paper: "
        "N(0, 0.01^2) with biases of 1, which stays at chance on small data (see docs)",
    )
    p.add_argument(
        "--schedule",
        choices=["plateau", "step", "linear"],
        help="plateau: the paper's lr /10 when the validation error stops improving; "
        "step: /10 every --step-every epochs; linear: down to 0 at the end of the epochs "
        "or of --max-minutes, whichever comes first (best for a fixed budget). "
        "Default: linear on shapes (a 10-minute run), plateau otherwise",
    )
    p.add_argument(
        "--patience", type=int, default=2, help="plateau: epochs without improvement before lr /10"
    )
    p.add_argument("--step-every", type=int, default=10, help="step: lr /10 every this many epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default runs/MODEL-DATASET)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--max-minutes", type=float, help="stop (saving a checkpoint) after this long")
    p.add_argument(
        "--train-size",
        type=int,
        help="use this many training images (shapes: generate this many; default 10000)",
    )
    p.add_argument("--val-size", type=int, help="validation images (shapes default 2000)")
    p.add_argument(
        "--image-size",
        type=int,
        help="stored image size (default: 32 for alexnet-cifar, 256 for alexnet)",
    )
    p.add_argument(
        "--on-error",
        default="skip",
        choices=["skip", "stop"],
        help="unreadable images in a folder: skip (and report) or stop",
    )
    p.add_argument(
        "--no-augment",
        action="store_true",
        help="train on the plain images (mean subtracted; no crops, flips or PCA colour)",
    )
    p.add_argument("--no-ten-crop", action="store_true", help="skip the final ten-crop test")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--workers", type=_loader_workers, help="threads preparing batches (default min(4, cores))"
    )
    p.add_argument(
        "--tf32",
        action="store_true",
        help="GPU: let float32 matrix products use TensorFloat-32 (faster on Ampere and later, "
        "about 3 significant digits in the products' inputs); off by default",
    )
    p.add_argument(
        "--dist-backend",
        default="auto",
        choices=list(BACKENDS),
        help="data parallel under mpiexec -n N: auto (MPI when launched with N > 1, NCCL for "
        "GPU arrays, else one process), mpi, nccl, or none (every rank trains alone)",
    )
    p.add_argument(
        "--dist-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="data parallel: abort every rank when a step's gradient allreduce waits longer "
        "than this for the other ranks (a rank hangs or died); 0 waits forever",
    )
    p.add_argument(
        "--no-overlap",
        action="store_true",
        help="data parallel: reduce all gradients after the backward pass, instead of sending "
        "the fc layers' while the convolutions' backward runs",
    )
    args = p.parse_args(argv)
    resolve_recipe(args)
    if args.batch_size < 1 or args.lr <= 0:
        p.error("--batch-size must be >= 1 and --lr > 0")
    if args.dist_timeout < 0:
        p.error("--dist-timeout must be >= 0 (0: wait forever)")
    try:
        args.variant = parse_variant(args.variant)
    except ValueError as exc:
        p.error(f"--variant: {exc}")
    return args


def resolve_recipe(args: argparse.Namespace) -> None:
    """Fill in ``--init``, ``--schedule``, ``--batch-size`` and ``--lr`` where the command
    line left them out.

    ``--recipe paper``: the paper's section 5 (:data:`PAPER_RECIPE`). Otherwise the
    dataset's defaults: on shapes ``balanced``, ``linear`` and 64, elsewhere ``scaled``,
    ``plateau`` and 128. The learning rate follows the init (:data:`DEFAULT_LR`).
    """
    if args.recipe == "paper":
        init, schedule = PAPER_RECIPE["init"], PAPER_RECIPE["schedule"]
        batch_size = PAPER_RECIPE["batch_size"]
    else:
        init = DEFAULT_INIT.get(args.dataset, "scaled")
        schedule = DEFAULT_SCHEDULE.get(args.dataset, "plateau")
        batch_size = DEFAULT_BATCH.get(args.dataset, PAPER_RECIPE["batch_size"])
    args.init = args.init or init
    args.schedule = args.schedule or schedule
    if args.batch_size is None:
        args.batch_size = batch_size
    if args.lr is None:
        args.lr = DEFAULT_LR.get(args.init, PAPER_RECIPE["lr"])


def parse_variant(items: list[str]) -> dict[str, Any]:
    """``["activation=tanh", "pool=2/2"]`` -> ``{"activation": "tanh", "pool": (2, 2)}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip().lower()
        if not sep or not value:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        if key == "activation":
            out[key] = value
        elif key == "lrn":
            if value not in ("on", "off", "true", "false", "yes", "no", "1", "0"):
                raise ValueError(f"lrn=on or lrn=off, got {item!r}")
            out[key] = value in ("on", "true", "yes", "1")
        elif key == "pool":
            parts = value.replace(",", "/").split("/")
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise ValueError(f"pool=WINDOW/STRIDE such as pool=2/2, got {item!r}")
            out[key] = (int(parts[0]), int(parts[1]))
        elif key == "towers":
            if not value.isdigit():
                raise ValueError(f"towers=1 or towers=2, got {item!r}")
            out[key] = int(value)
        else:
            raise ValueError(
                f"unknown key {key!r} in {item!r}; keys: activation, lrn, pool, towers"
            )
    Variant(**out)  # the same checks as the model's (e.g. activation=sigmoid is refused)
    return out


def default_out(args: argparse.Namespace) -> Path:
    """``runs/MODEL-DATASET`` (the dataset's folder name for ``folder:PATH``)."""
    name = args.dataset.replace("folder:", "").rstrip("/").split("/")[-1] or "folder"
    return Path("runs") / f"{args.model}-{name}"


def choose_devices(
    gpus: str | None,
    device: str,
    rank_gpus: str | None = None,
    local_rank: int | None = None,
) -> tuple[list[Device], str]:
    """The towers' devices from ``--gpus`` and ``--device``, and a line saying where training runs.

    ``"training on gpu:0 (NVIDIA H200)"``, or ``"training on the CPU (WHY)"``: ``--device
    auto`` is resolved here (a GPU when CuPy and a CUDA device answer) so that the line
    can say why it is the CPU (no NVIDIA driver; CuPy not installed, and which pip
    package this driver needs). Raises as :func:`tower_devices` does.

    Data parallel (``local_rank`` given, or ``rank_gpus``): the process of local rank r takes
    the GPU :func:`~minialexnet.distributed.devices.rank_device_names` picks (GPU r mod the
    GPUs visible, or the r-th of ``--rank-gpus``), and the line says which rule chose it.
    """
    if rank_gpus or (local_rank is not None and not gpus):
        return _rank_devices(gpus, device, rank_gpus, local_rank or 0)
    why = f"as asked: --device {device}"
    if not gpus and device.strip().lower() == "auto":
        device = "gpu:0" if gpu_available() else "cpu"
        if device == "cpu":
            why = _gpu_setup.why_cpu(_gpu_setup.detect())
    devices = tower_devices(gpus, device)
    on_gpus = [d for d in dict.fromkeys(devices) if d.is_gpu]
    if not on_gpus:
        return devices, f"training on the CPU ({why})"
    return devices, "training on " + " and ".join(f"{d.name} ({_gpu_name(d)})" for d in on_gpus)


def _rank_devices(
    gpus: str | None, device: str, rank_gpus: str | None, local_rank: int
) -> tuple[list[Device], str]:
    """:func:`choose_devices` for one process of a data-parallel run (see there)."""
    visible = _gpu_count()
    names = rank_device_names(local_rank, visible, device, gpus, rank_gpus)
    devices = [Device(name) for name in names]  # RuntimeError: CuPy missing, no such GPU
    if not devices[0].is_gpu:
        why = f"as asked: --device {device}"
        if device.strip().lower() == "auto":
            why = _gpu_setup.why_cpu(_gpu_setup.detect())
        return devices, f"training on the CPU ({why})"
    if rank_gpus:
        rule = f"local rank {local_rank} takes entry {local_rank} of --rank-gpus {rank_gpus}"
    elif device.strip().lower() in ("auto", "gpu", "cuda"):
        rule = f"local rank {local_rank} on GPU {local_rank} mod {visible} visible"
    else:
        rule = f"every rank on it, as asked: --device {device}"
    return devices, f"training on {devices[0].name} ({_gpu_name(devices[0])}; {rule})"


def _device_error(exc: Exception) -> int:
    """Report a device that cannot be had (and, for a missing GPU, what to install); 2."""
    print(f"minialexnet.train: {exc}", file=sys.stderr)
    if isinstance(exc, RuntimeError):  # which CuPy this machine's driver needs, if any
        hint = _gpu_setup.install_hint(_gpu_setup.detect())
        print(f"minialexnet.train: {hint}", file=sys.stderr)
    return 2


def _gpu_name(device: Device) -> str:
    """The GPU's product name as CUDA reports it (``"NVIDIA H200"``), or ``"CUDA GPU"``."""
    try:
        name = device.xp.cuda.runtime.getDeviceProperties(device.index)["name"]
    except Exception:  # a name is a nicety: never fail a run for it
        return "CUDA GPU"
    return name.decode(errors="replace") if isinstance(name, bytes) else str(name)


def main(argv: list[str] | None = None) -> int:
    """``python -m minialexnet.train``: train, validate each epoch, checkpoint; 0 on success."""
    args = parse_args(argv)
    reuse_freed_memory()  # large temporaries without page faults: see backend.py
    out = Path(args.out) if args.out else default_out(args)
    asked = args.device
    try:  # local rank 0's devices: the same on every rank (the consistency check compares them)
        devices, where = choose_devices(args.gpus, asked, args.rank_gpus)
    except (RuntimeError, ValueError) as exc:  # no GPU (what to install), or a bad --gpus
        return _device_error(exc)
    args.device = devices[0].name  # "auto" resolved: the final test runs where training did
    try:
        dist = start_distributed(args, on_gpu=any(d.is_gpu for d in devices))
    except RuntimeError as exc:  # mpi4py missing: what to install
        print(f"minialexnet.train: {exc}", file=sys.stderr)
        return 2
    if dist.size > 1 and any(d.is_gpu for d in devices):  # local rank r: its own GPU
        try:
            devices, where = choose_devices(args.gpus, asked, args.rank_gpus, dist.local_rank)
        except (RuntimeError, ValueError) as exc:
            return _device_error(exc)
    print(where)
    try:
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"{out} is a file")
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # --out names a file, or a folder we may not write in
        print(f"minialexnet.train: --out {out}: cannot make the output folder ({exc}); "
              "give another --out", file=sys.stderr)  # fmt: skip
        return 2
    input_size = 227 if args.model == "alexnet" else 32
    image_size = args.image_size or (256 if args.model == "alexnet" else 32)
    epochs = args.epochs or DEFAULT_EPOCHS.get(args.dataset, 90)
    run = {
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "image_size": image_size,
        "train_size": args.train_size,
        "val_size": args.val_size,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "epochs": epochs,
        "augment": not args.no_augment,
        "tf32": bool(args.tf32),
    }

    print(
        f"minialexnet.train: {args.model} on {args.dataset}, devices "
        f"{', '.join(d.name for d in devices)}, output {out}"
    )
    which = " (the paper's, section 5)" if args.recipe == "paper" else "; paper's: --recipe paper"
    print(
        f"recipe: init {args.init}, lr {args.lr:g} ({args.schedule} schedule), batch "
        f"{args.batch_size}, {epochs} epochs{which}"
    )
    sizes = {"train": args.train_size, "val": args.val_size}
    try:
        train_set, val_set = (
            load_dataset(args.dataset, split, data_dir=args.data_dir, image_size=image_size,
                         size=sizes[split], seed=args.seed, on_error=args.on_error,
                         progress=not args.quiet)
            for split in ("train", "val")
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as exc:  # no such data, an unknown --dataset, ...
        print(f"minialexnet.train: {exc}", file=sys.stderr)
        return 2
    print(
        f"data: {len(train_set)} training and {len(val_set)} validation images "
        f"{train_set.images.shape[1]}x{train_set.images.shape[2]}, "
        f"{len(train_set.classes)} classes"
    )

    if args.model == "cnn4" and "towers" in args.variant:
        print(
            "minialexnet.train: cnn4 has one tower; --variant towers=... is for alexnet",
            file=sys.stderr,
        )
        return 2
    try:
        model = model_from_config(
            {"arch": args.model, "num_classes": len(train_set.classes), "init": args.init,
             **Variant(**args.variant).changes()},
            devices=devices,
            seed=args.seed,
        )  # fmt: skip
    except ValueError as exc:  # e.g. cnn4 on two GPUs
        print(f"minialexnet.train: {exc}", file=sys.stderr)
        return 2
    model.input_grad = False  # the images need no gradient: conv1 skips it
    if args.tf32 and not any(d.is_gpu for d in devices):
        print("minialexnet.train: --tf32 applies to GPUs only; ignored on the CPU", file=sys.stderr)
    set_tf32(args.tf32 and any(d.is_gpu for d in devices))  # off unless asked, whatever CUPY_TF32
    optimizer = SGD(
        model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
    )
    try:
        dp = data_parallel(dist, model, args, devices=[d.name for d in devices])
    except ValueError as exc:  # a global batch not divisible by the number of ranks
        print(f"minialexnet.train: {exc}", file=sys.stderr)
        return 2
    schedules = {
        "plateau": lambda: PlateauSchedule(
            optimizer, patience=args.patience, chance_error=1 - 1 / len(train_set.classes)
        ),
        "step": lambda: StepSchedule(optimizer, every=args.step_every),
        "linear": lambda: LinearSchedule(optimizer),
    }
    schedule = schedules[args.schedule]()
    progress = Progress()
    ckpt_path = out / "checkpoint.npz"

    if args.resume:
        if not ckpt_path.exists():
            print(
                f"--resume: no checkpoint at {ckpt_path}; start without --resume", file=sys.stderr
            )
            return 2
        stats = resume(ckpt_path, model, optimizer, schedule, progress, train_set.classes)
        if dist.is_root:
            keep_metrics_up_to(out / "metrics.jsonl", progress.epoch)
        print(
            f"resumed from {ckpt_path}: epoch {progress.epoch + 1}, batch {progress.batch}, "
            f"lr {optimizer.lr:g}"
        )
        if isinstance(schedule, LinearSchedule) and schedule.done >= 1:
            print(
                "note: this run's linear schedule already reached lr 0 (its epochs or minutes "
                "were spent), so resuming changes nothing; start a new run (another --out) to "
                "train longer",
                file=sys.stderr,
            )
    else:
        stats = dataset_statistics(train_set.images)
        if dist.is_root:
            (out / "metrics.jsonl").write_text("")
        check_first_loss(model, train_set, stats, args)

    pad = 4 if input_size == 32 else 0  # 32 crops from 40 (padded); 227 from 256

    def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if args.no_augment:  # the centre (all of a 32x32 image), mean subtracted
            return train_transform(images, rng, stats=stats, crop=input_size, pad=0, flip=False,
                                   pca_std=0.0)  # fmt: skip
        return train_transform(images, rng, stats=stats, crop=input_size, pad=pad)

    def save(path: Path) -> None:
        if not dist.is_root:  # every rank holds the same parameters: rank 0 writes them
            return
        save_checkpoint(
            path,
            {
                **pack("model", model.state_dict()),
                **pack("optim/velocity", optimizer.state_dict()["velocity"]),
                **pack("data", stats.to_arrays()),
            },
            {
                "config": model.config,
                "run": run,
                "classes": train_set.classes,
                "epoch": progress.epoch,
                "batch": progress.batch,
                "progress": progress.__dict__,
                "schedule": schedule.state_dict(),
                "optim": {k: v for k, v in optimizer.state_dict().items() if k != "velocity"},
                "rng": {"scheme": "numpy default_rng([seed, epoch, batch])", "seed": args.seed},
            },
        )

    def keep_best_and_plot(record: dict[str, Any]) -> None:
        """After a validation: best.npz if this is the lowest error so far; refresh curves.png."""
        if record["val_top1_err"] < progress.best_val_top1:
            progress.best_val_top1 = record["val_top1_err"]
            save(out / "best.npz")
        if dist.is_root:
            plot_curves(
                read_metrics(out / "metrics.jsonl"),
                out / "curves.png",
                title=f"{args.model} on {args.dataset}",
            )

    budget = Budget(epochs, 60 * args.max_minutes if args.max_minutes else None)
    try:
        while progress.epoch < epochs:
            train_one_epoch(
                model, optimizer, schedule, train_set, augment, progress, args, budget, dp
            )
            record = validate_and_log(model, val_set, stats, progress, optimizer, args, out, dp=dp)
            reduced = schedule.step(record["val_top1_err"])
            progress.epoch += 1
            progress.start_epoch()
            keep_best_and_plot(record)
            save(ckpt_path)
            if reduced:
                print(f"{schedule.reason}: learning rate now {optimizer.lr:g}")
            if schedule.exhausted:
                print(
                    "learning rate reduced three times and the error stopped improving: done "
                    "(as the paper)"
                )
                break
    except KeyboardInterrupt:
        save(ckpt_path)
        print(
            f"\ninterrupted: saved {ckpt_path} at epoch {progress.epoch + 1}, batch "
            f"{progress.batch}; continue with the same command and --resume"
        )
        return 130
    except TimeLimit as stop:
        save(ckpt_path)
        print(f"stopped: {stop}")
        if progress.seen:  # what the time bought counts: validate the part-trained epoch too
            keep_best_and_plot(
                validate_and_log(
                    model, val_set, stats, progress, optimizer, args, out,
                    epoch_fraction=stop.epoch_fraction, dp=dp,
                )
            )  # fmt: skip
    except Stop as stop:  # the last good checkpoint stays as it was
        print(f"stopped: {stop}", file=sys.stderr)
        return 1

    if not dist.is_root or not (out / "best.npz").exists():
        return 0  # the other ranks are done; or stopped before the first epoch ended
    final = final_report(out, val_set, args)
    print(json.dumps(final, indent=2))
    warning = chance_warning(final["centre"]["top1_err"], len(train_set.classes), args)
    if warning:
        print(warning, file=sys.stderr)
    return 0


def chance_warning(best_top1_err: float, num_classes: int, args: argparse.Namespace) -> str | None:
    """The end-of-run warning when the best validation top-1 error is still near chance.

    Near chance: at least :data:`NEAR_CHANCE` of chance's error ``1 - 1/num_classes``.
    The message says so and what to try, for this run's recipe; None when the run learned.
    """
    chance = 1 - 1 / num_classes
    if not best_top1_err >= NEAR_CHANCE * chance:
        return None
    tries = []
    if args.init == "paper":
        tries.append(
            "--init balanced (the paper's N(0, 0.01^2) init stays at chance for many epochs "
            "on a 32x32 network)"
        )
    if args.lr > DEFAULT_LR.get(args.init, PAPER_RECIPE["lr"]):
        tries.append(f"a lower --lr (this run's {args.lr:g} is above its init's default)")
    default = argparse.Namespace(**vars(args))
    default.recipe, default.init, default.lr, default.schedule = "default", None, None, None
    resolve_recipe(default)
    if (args.init, args.lr, args.schedule) != (default.init, default.lr, default.schedule):
        tries.append("the default recipe (leave out --recipe, --init, --lr and --schedule)")
    tries += [
        "a lower --lr if the training loss fell and then went back to ln "
        f"{num_classes} = {math.log(num_classes):.3f} (too high a rate), a higher one or more "
        "--epochs if it never fell",
        "checking that images and labels match (python -m minialexnet.evaluate "
        "best.npz --confusion confusion.png)",
    ]
    return (
        f"warning: the best validation top-1 error, {100 * best_top1_err:.1f}%, is still near "
        f"chance ({100 * chance:.1f}% for {num_classes} classes): this network has not "
        "learned. Try: " + "; ".join(tries) + ". See docs/training.md, "
        '"Why the default run learns".'
    )


def resume(
    path: Path, model: Any, optimizer: SGD, schedule: Any, progress: Progress, classes: list[str]
) -> Stats:
    """Load a checkpoint into the model, optimizer, schedule and progress; its data statistics."""
    arrays, meta = load_checkpoint(path)
    check_config(meta, {"config": model.config}, path)
    if meta.get("classes") != classes:
        raise CheckpointError(
            path,
            f"trained on classes {meta.get('classes')}, but the dataset has {classes}: resume "
            "with the run's own --dataset, or start a new run (another --out)",
        )
    model.load_state_dict(unpack(arrays, "model"))
    optimizer.load_state_dict({**meta["optim"], "velocity": unpack(arrays, "optim/velocity")})
    schedule.load_state_dict(meta["schedule"])
    for key, value in meta["progress"].items():
        setattr(progress, key, value)
    return Stats.from_arrays(unpack(arrays, "data"))


def keep_metrics_up_to(path: Path, epoch: int) -> None:
    """Drop metrics lines of epochs after the checkpoint (written just before a kill)."""
    if path.exists():
        kept = [r for r in read_metrics(path) if r["epoch"] <= epoch]
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))


def check_first_loss(model: Any, train_set: Any, stats: Stats, args: argparse.Namespace) -> None:
    """Before training: the loss of an untrained net should be near ln(classes)."""
    n = min(len(train_set), args.batch_size)
    x = train_transform(
        train_set.images[:n],
        np.random.default_rng(0),
        stats=stats,
        crop=model.input_size,
        pad=0,
        flip=False,
        pca_std=0.0,
    )
    model.reseed(args.seed)
    loss, _ = F.softmax_cross_entropy(model.forward(x, train=True), train_set.labels[:n])
    loss, expected = float(loss), math.log(len(train_set.classes))
    verdict = "ok" if abs(loss - expected) < 0.5 * expected else "far from it: check the init/lr"
    print(f"first loss {loss:.3f} (ln {len(train_set.classes)} = {expected:.3f}): {verdict}")
    if not math.isfinite(loss):
        raise SystemExit("the first loss is not finite: the initialisation is broken")


def _loader_workers(text: str) -> int:
    """``--workers``: the loader's thread count, an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected the number of loader threads, an integer >= 1 (such as 4), got {text!r}"
        )
    return value


def train_one_epoch(
    model: Any,
    optimizer: SGD,
    schedule: Any,
    train_set: Any,
    augment: Any,
    progress: Progress,
    args: argparse.Namespace,
    budget: Budget,
    dp: DataParallel | None = None,
) -> None:
    """One pass over the training set from progress.batch on, updating progress as it goes.

    ``dp`` (data parallel, :mod:`minialexnet.distributed`): the loader yields the global
    batch on every rank, each trains on its shard, and the gradients, loss and correct count
    are averaged over the ranks before the step; ``progress`` counts the global batch.

    ``progress.extra["data_wait_seconds"]``: the time of this epoch spent waiting for the
    next batch (blocked in the loader), reported at the end of the epoch.
    """
    epoch = progress.epoch
    loader = BatchLoader(
        train_set,
        args.batch_size,
        augment,
        shuffle=True,
        seed=args.seed,
        epoch=epoch,
        start_batch=progress.batch,
        drop_last=True,
        workers=args.workers,
    )
    bar = tqdm(
        total=loader.num_batches,
        initial=progress.batch,
        desc=f"epoch {epoch + 1}",
        unit="batch",
        dynamic_ncols=True,
        **({"disable": True} if args.quiet else {}),  # else TQDM_DISABLE=1 may silence it
    )
    start = time.perf_counter() - progress.seconds
    waited = progress.extra.get("data_wait_seconds", 0.0) if progress.batch else 0.0
    progress.extra["data_wait_seconds"] = waited
    batches = iter(loader)
    try:
        for x_all, y_all in batches:
            progress.extra["data_wait_seconds"] = waited + batches.wait_seconds
            schedule.on_batch(budget.done(epoch, progress.batch, loader.num_batches))
            x, y = dp.shard(x_all, y_all) if dp else (x_all, y_all)
            seed = _batch_seed(args.seed, epoch, progress.batch)
            if dp:
                dp.reseed(model, seed)
            else:
                model.reseed(seed)
            logits = model.forward(x, train=True)
            loss, dlogits = F.softmax_cross_entropy(logits, y)
            loss = float(loss)
            correct = topk_correct(to_numpy(logits), y, 1)
            if dp and dp.active:  # fc gradients sent during backward; then the rest, loss, ...
                dp.backward(model, dlogits)
                loss, correct, budget.synced = dp.sync(loss, correct, budget.clock())
            if not math.isfinite(loss):
                raise Stop(
                    f"the loss became {loss} at epoch {epoch + 1}, batch {progress.batch}: "
                    f"lower --lr; the last good checkpoint is kept"
                )
            if not (dp and dp.active):
                model.backward(dlogits)
            optimizer.step()
            progress.batch += 1
            progress.loss_sum += loss * len(y_all)
            progress.correct += correct
            progress.seen += len(y_all)
            progress.seconds = time.perf_counter() - start
            bar.update(1)
            bar.set_postfix(
                loss=f"{progress.loss_sum / progress.seen:.3f}",
                lr=f"{optimizer.lr:g}",
                img_s=f"{progress.seen / max(progress.seconds, 1e-9):.0f}",
            )
            if budget.over():
                raise TimeLimit(
                    f"time limit (--max-minutes {args.max_minutes}) reached at epoch "
                    f"{epoch + 1}, batch {progress.batch}; continue with --resume",
                    epoch_fraction=progress.batch / loader.num_batches,
                )
    finally:
        batches.close()
        bar.close()


def _batch_seed(seed: int, epoch: int, batch: int) -> int:
    """The dropout seed of one batch: a pure function of (seed, epoch, batch)."""
    return int(np.random.SeedSequence([seed, epoch, batch]).generate_state(1)[0])


def validate_and_log(
    model: Any,
    val_set: Any,
    stats: Stats,
    progress: Progress,
    optimizer: SGD,
    args: argparse.Namespace,
    out: Path,
    epoch_fraction: float | None = None,
    dp: DataParallel | None = None,
) -> dict[str, Any]:
    """Validate, append the epoch's record to metrics.jsonl and print it.

    ``dp``: each rank validates its part of ``val_set``, the sums are combined, and
    rank 0 alone writes the record.

    ``epoch_fraction`` marks a record of an epoch cut short by ``--max-minutes``
    (``"epoch_fraction"`` in the record: the share of its batches trained); a
    later ``--resume`` replaces it with the whole epoch's record.
    """

    def evaluate(dataset: Any) -> dict[str, Any]:
        return evaluate_model(
            model, dataset, stats, batch_size=args.batch_size, progress=not args.quiet
        )

    result = dp.evaluate(evaluate, val_set) if dp else evaluate(val_set)
    seen = max(progress.seen, 1)
    record = {
        "epoch": progress.epoch + 1,
        "lr": optimizer.lr,
        "train_loss": progress.loss_sum / seen,
        "train_top1_err": 1 - progress.correct / seen,
        "val_loss": result["loss"],
        "val_top1_err": result["top1_err"],
        "val_top5_err": result["top5_err"],
        "images_per_s": progress.seen / max(progress.seconds, 1e-9),
        "seconds": progress.seconds,
        # the share of the epoch spent waiting for batches: high when data starves the model
        "data_wait_share": progress.extra.get("data_wait_seconds", 0.0)
        / max(progress.seconds, 1e-9),
    }
    gpu_memory = {d.name: memory_held(d) for d in dict.fromkeys(model.devices) if d.is_gpu}
    if gpu_memory:  # what CuPy's pool holds: the most training and validation needed at once
        record["gpu_memory_bytes"] = gpu_memory
    if epoch_fraction is not None:
        record["epoch_fraction"] = round(epoch_fraction, 4)
    if dp is None or dp.dist.is_root:
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    part = "" if epoch_fraction is None else f" ({100 * epoch_fraction:.0f}% of it)"
    print(
        f"epoch {record['epoch']}{part}: train loss {record['train_loss']:.3f}, "
        f"val top-1 error {100 * record['val_top1_err']:.1f}%, "
        f"top-5 {100 * record['val_top5_err']:.1f}%, {record['images_per_s']:.0f} images/s, "
        f"data wait {100 * record['data_wait_share']:.0f}% of the epoch"
        + "".join(f", {name} memory {held / 2**30:.2f} GiB" for name, held in gpu_memory.items())
    )
    return record


def final_report(out: Path, val_set: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate best.npz on the validation set (centre crop and ten-crop); write final.json."""
    best = out / "best.npz"
    model, stats, meta = load_model(best, tower_devices(args.gpus, args.device))
    report: dict[str, Any] = {"checkpoint": str(best), "epoch": meta["epoch"]}
    for name, ten in [("centre", False)] + ([] if args.no_ten_crop else [("ten_crop", True)]):
        result = evaluate_model(
            model,
            val_set,
            stats,
            batch_size=args.batch_size,
            ten_crops=ten,
            progress=not args.quiet,
        )
        report[name] = {"top1_err": result["top1_err"], "top5_err": result["top5_err"]}
    (out / "final.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def start_distributed(args: argparse.Namespace, on_gpu: bool) -> Dist:
    """:func:`~minialexnet.distributed.init_distributed` from ``--dist-backend``; on ranks
    other than 0, standard output goes nowhere (errors still show; :func:`data_parallel`
    turns their progress bars off)."""
    dist = init_distributed(args.dist_backend, on_gpu=on_gpu)
    if not dist.is_root:
        sys.stdout = open(os.devnull, "w")  # for the life of the process
    return dist


def data_parallel(
    dist: Dist, model: Any, args: argparse.Namespace, devices: list[str] | None = None
) -> DataParallel | None:
    """The training loop's :class:`DataParallel` (None alone), after checking that every rank
    runs the same code, options and parameter shapes (ConsistencyError otherwise).

    ``devices``: this rank's device names, shown per rank in the header line when on GPUs.
    The allreduces wait at most ``args.dist_timeout`` seconds (0: forever) before aborting.
    """
    if dist.size == 1:
        return None
    shapes = [(name, tuple(p.shape)) for name, p, _ in model.parameters()]
    check_consistent(dist, fingerprint(vars(args), shapes))
    if not dist.is_root:  # after the check, which compares --quiet as given
        args.quiet = True
    # ValueError: batch not divisible by N
    dp = DataParallel(dist, model, args.batch_size, overlap=not args.no_overlap)
    dist.timeout = args.dist_timeout or None
    on = "+".join(devices) if devices and devices[0] != "cpu" else ""
    ranks = enumerate(dist.allgather((os.getpid(), on)))  # launchers name a killed pid
    print(
        f"data parallel: {dist.size} processes ({dist.backend}), global batch {args.batch_size} "
        f"= {dist.size} x {args.batch_size // dist.size}; process ids by rank: "
        + ", ".join(f"rank {r} pid {pid}" + (f" on {d}" if d else "") for r, (pid, d) in ranks)
    )
    return dp


def cli(argv: list[str] | None = None) -> int:
    """The command line's entry point: :func:`main`, with its errors reported.

    Under mpiexec, a rank that raises or fails prints ``rank R: <error>`` and aborts every
    rank (``MPI.COMM_WORLD.Abort``), so the others do not wait for it forever.
    """
    try:
        code = main(argv)
    except CheckpointError as exc:  # --resume from a file that is not this run's checkpoint
        print(  # (main() raises it for callers in Python)
            f"minialexnet.train: {exc}\n--resume continues OUT/checkpoint.npz with the options "
            "it was trained with; to train anew, give another --out",
            file=sys.stderr,
        )
        code = 2
        _abort_others(f"minialexnet.train: {exc}", code)
    except BaseException as exc:
        _abort_others(f"{type(exc).__name__}: {exc}", 1)
        raise
    if code:
        _abort_others(f"minialexnet.train ended with exit status {code}", code)
    return code


def _abort_others(message: str, code: int) -> None:
    """On N > 1 ranks: print ``rank R: message`` and abort them all; alone, nothing."""
    dist = current_dist()
    if dist is not None and dist.size > 1:
        dist.abort(message, code)


if __name__ == "__main__":
    sys.exit(cli())
