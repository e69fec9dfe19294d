"""What the tutorial notebooks share: the fast mode and checks that print what they compare.

``MINIALEXNET_FAST=1`` in the environment (CI sets it) makes every notebook
shrink its data and epochs so that it runs top to bottom in seconds; the
numbers it prints are then smaller but every check still holds.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, TypeVar

from .gradcheck import relative_error

__all__ = [
    "FAST",
    "pick",
    "check_close",
    "show_source",
    "real_cifar10",
    "chapter10_args",
    "trained_model",
    "IMAGENET_WEIGHTS",
    "ZOO_FILE",
    "ZOO_URL",
    "imagenet_alexnet",
]

T = TypeVar("T")

FAST: bool = os.environ.get("MINIALEXNET_FAST", "").strip().lower() not in ("", "0", "false", "no")
"""True when ``MINIALEXNET_FAST`` is set (to anything but 0/false/no)."""


def pick(fast: T, full: T) -> T:
    """``fast`` in fast mode (``MINIALEXNET_FAST=1``), else ``full``: sizes and epochs."""
    return fast if FAST else full


def check_close(name: str, got: Any, want: Any, tol: float = 1e-6) -> float:
    """Print the norm-wise relative error between ``got`` and ``want``; assert it is below ``tol``.

    Returns the error. The message of a failure says which quantity was off and by
    how much, so a reader who changed the code sees where to look.
    """
    err = relative_error(got, want)
    verdict = "ok" if err < tol else "TOO LARGE"
    print(f"{name}: relative error {err:.1e} (tolerance {tol:.0e}) {verdict}")
    assert err < tol, f"{name}: relative error {err:.2e} is above the tolerance {tol:.0e}"
    return err


def show_source(obj: Any, start: str | None = None) -> None:
    """Print the source code of ``obj`` (a function, method or class) as a student reads it.

    The instructors' solution markers (comment lines ``### BEGIN SOLUTION`` and
    ``### END SOLUTION``, see ``docs/instructors.md``) are left out; in a student
    copy the code between them is already a stub. ``start``: print from the first
    line that contains this text (to skip a docstring, say).
    """
    from .exercises.regions import BEGIN, END, RegionError, strip_markers  # noqa: PLC0415

    source = inspect.getsource(obj)
    try:
        source = strip_markers(source)
    except RegionError:  # unpaired markers: drop the marker lines all the same
        source = "".join(
            line for line in source.splitlines(keepends=True) if line.strip() not in (BEGIN, END)
        )
    if start is not None:
        lines = source.splitlines(keepends=True)
        first = next((i for i, line in enumerate(lines) if start in line), None)
        if first is None:
            raise ValueError(f"show_source: no line of {obj.__qualname__} contains {start!r}")
        source = "".join(lines[first:])
    print(source.rstrip("\n"))


CH10_SHAPES = {"train": 8000, "val": 500, "epochs": 5}
"""Chapter 10's run on the built-in shapes in full mode: images and epochs."""
CH10_CIFAR10 = {"train": 50000, "val": 2000, "epochs": 2}
"""Chapter 10's run on real CIFAR-10 in full mode (the 30-minute recipe of docs/training.md, cut
to two epochs: batch 64, lr 0.01 decaying linearly, the "scaled" init)."""


def real_cifar10() -> Path | None:
    """Where real CIFAR-10 is installed, or None: chapters 10-12 use it when it is there.

    Looks where :mod:`minialexnet.data.cifar10` looks (``$MINIALEXNET_DATA``, else ``data``
    in the current folder), then in ``../data`` (the notebooks run in ``tutorials/``;
    ``python -m minialexnet.data.cifar10 download`` from the repository root puts it in
    ``data/``). Returns the archive or extracted folder that ``--data-dir`` takes.
    """
    from .data.cifar10 import find_cifar10  # noqa: PLC0415

    for data_dir in (None, "../data"):
        try:
            path, _ = find_cifar10(data_dir)
        except (FileNotFoundError, ValueError):  # not there, or not a CIFAR-10 archive
            continue
        return path
    return None


def chapter10_args(out_dir: str | Path) -> list[str]:
    """Chapter 10's training run, as ``python -m minialexnet.train`` arguments.

    alexnet-cifar, seed 0, no final ten-crop (chapter 10 does it by hand), output in
    ``out_dir``. On the built-in shapes: the default recipe (``--init balanced``, the
    learning rate decaying linearly to 0, lr 0.0035) with batches of 32, twice the
    updates of the default's 64 for the same images, and :data:`CH10_SHAPES` images and
    epochs (40,000 images in all, seed 0: 21.6% top-1 error in 175 s on two cores).
    Where real CIFAR-10 is installed (:func:`real_cifar10`): that, with
    :data:`CH10_CIFAR10`. Fast mode (``MINIALEXNET_FAST=1``): 256 training and 64
    validation images, 1 epoch.
    """
    cifar = real_cifar10()
    sizes = CH10_SHAPES if cifar is None else CH10_CIFAR10
    data = ["--batch-size", "32", "--lr", "0.0035"] if cifar is None else [
        "--dataset", "cifar10", "--data-dir", str(cifar),
        "--batch-size", "64", "--schedule", "linear",
    ]  # fmt: skip
    return [
        *data,
        "--train-size", str(pick(256, sizes["train"])), "--val-size", str(pick(64, sizes["val"])),
        "--epochs", str(pick(1, sizes["epochs"])), "--seed", "0",
        "--no-ten-crop", "--quiet", "--out", str(out_dir),
    ]  # fmt: skip


def _same_run(meta: dict[str, Any], args: Any) -> bool:
    """Whether a checkpoint's metadata records the run that ``args`` (parsed) describes."""
    run, config = meta.get("run", {}), meta.get("config", {})
    wanted = {
        "dataset": args.dataset, "train_size": args.train_size, "val_size": args.val_size,
        "seed": args.seed, "batch_size": args.batch_size, "epochs": args.epochs,
        "augment": not args.no_augment,
    }  # fmt: skip
    return (
        all(run.get(k) == v for k, v in wanted.items())
        and config.get("arch") == args.model
        and config.get("init") == args.init
        and meta.get("schedule", {}).get("lr_start", args.lr) == args.lr
    )


def trained_model(out: str | Path) -> Path:
    """The ``best.npz`` of chapter 10's run, for chapters 11 and 12: found, or trained now.

    Chapter 10's run in ``out/ch10-run`` is used when it finished (its ``final.json``
    is there) and is the run :func:`chapter10_args` describes now (the same data, sizes,
    epochs, seed and recipe: a fast-mode run does not stand in for a full one, nor a
    shapes run for a CIFAR-10 one). Else the run is trained now into ``out/ch10-run``.
    Every run is a pure function of its seed, so the fresh run is chapter 10's model,
    weight for weight. A checkpoint that cannot be read is reported and passed over.
    """
    from . import train  # noqa: PLC0415 -- the training script only when needed
    from .evaluate import load_model  # noqa: PLC0415

    run_dir = Path(out) / "ch10-run"
    args = chapter10_args(run_dir)
    parsed = train.parse_args(args)
    if parsed.epochs is None:
        parsed.epochs = train.DEFAULT_EPOCHS.get(parsed.dataset, 90)
    path = run_dir / "best.npz"
    if path.exists():
        try:
            _, _, meta = load_model(path)
        except Exception as exc:  # damaged, or from an incompatible version: say so, go on
            print(f"{path}: cannot be used ({exc}); training chapter 10's run again")
        else:
            if _same_run(meta, parsed) and (run_dir / "final.json").exists():
                return path
            print(f"{path}: not the finished run of chapter 10's arguments; training it again")
    status = train.main(args)
    if status != 0:
        raise RuntimeError(f"training chapter 10's model into {run_dir} ended with {status}")
    return path


IMAGENET_WEIGHTS = Path(
    os.environ.get("MINIALEXNET_IMAGENET") or "~/.cache/minialexnet/bvlc_alexnet.npz"
).expanduser()
"""Where chapters 11 and 12 look for the converted BVLC AlexNet (``$MINIALEXNET_IMAGENET``)."""
ZOO_FILE = "bvlcalexnet-8.onnx"
ZOO_URL = (
    "https://github.com/onnx/models/raw/main/validated/vision/classification/alexnet/model/"
    + ZOO_FILE
)
"""The ONNX model zoo's copy of Caffe's bvlc_alexnet (docs/onnx.md gives its checksum)."""


def imagenet_alexnet(fast: bool = FAST) -> tuple[Any, Any, dict[str, Any], bool] | None:
    """``(model, stats, meta, real)``: the converted BVLC AlexNet at :data:`IMAGENET_WEIGHTS`;
    without it, in fast mode, a random-weight stand-in in the zoo file's layout
    (:mod:`minialexnet.onnx_zoo`) converted in a temporary folder, ``real`` False, and a
    banner saying so; None otherwise (full mode without the file, or no ``onnx`` for the
    stand-in). Prints how to get the real file when it is missing."""
    import tempfile

    from .evaluate import load_model

    if IMAGENET_WEIGHTS.exists():
        net, stats, meta = load_model(IMAGENET_WEIGHTS)
        source = meta.get("source", {})
        real = "random weights" not in source.get("producer", "")  # onnx_zoo's say so
        print(
            f"ImageNet weights: {IMAGENET_WEIGHTS} (from {source.get('file')}, sha256 "
            f"{str(source.get('sha256', '?'))[:16]}...)"
            + ("" if real else ": a converted RANDOM stand-in, not trained weights")
        )
        return net, stats, meta, real
    print(
        f"No converted ImageNet weights at {IMAGENET_WEIGHTS}. To get the real ones "
        f"(244 MB, once; checksum in docs/onnx.md):\n  curl -L -o {ZOO_FILE} {ZOO_URL}\n"
        f"  mkdir -p {IMAGENET_WEIGHTS.parent} && python -m minialexnet.convert {ZOO_FILE} "
        f"{IMAGENET_WEIGHTS}"
    )
    if not fast:
        print("Skipping it here (fast mode, MINIALEXNET_FAST=1, runs it on random weights).")
        return None
    try:
        import onnx
    except ImportError:
        print("The random stand-in needs the onnx package: `pip install onnx`. Skipping it.")
        return None
    from .convert import convert
    from .onnx_zoo import bvlc_alexnet

    with tempfile.TemporaryDirectory() as tmp:  # 2 x 244 MB, gone once the model is loaded
        onnx.save(bvlc_alexnet(seed=0), f"{tmp}/bvlcalexnet-random.onnx")
        convert(f"{tmp}/bvlcalexnet-random.onnx", f"{tmp}/bvlc_alexnet-random.npz")
        net, stats, meta = load_model(f"{tmp}/bvlc_alexnet-random.npz")
    print(
        "\n" + "!" * 88 + "\nRANDOM WEIGHTS. Fast mode without the real file: a stand-in with "
        "the zoo file's exact\nlayout and random weights, converted like the real one. What "
        "follows shows noise,\nNOT what the paper's network learned.\n" + "!" * 88
    )
    return net, stats, meta, False
