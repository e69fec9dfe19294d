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

__all__ = ["FAST", "pick", "check_close", "show_source", "chapter10_args", "trained_model"]

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


def chapter10_args(out_dir: str | Path) -> list[str]:
    """Chapter 10's training run, as ``python -m minialexnet.train`` arguments.

    alexnet-cifar on the built-in shapes, seed 0, batches of 64 at lr 0.01 (more updates
    than batches of 128 for the same images), no final ten-crop (chapter 10 does it by
    hand), output in ``out_dir``; 4,000 images for 4 epochs (256 for 1 in fast mode).
    """
    return [
        "--train-size", str(pick(256, 4000)), "--val-size", str(pick(64, 500)),
        "--epochs", str(pick(1, 4)), "--batch-size", "64", "--lr", "0.01", "--seed", "0",
        "--no-ten-crop", "--quiet", "--out", str(out_dir),
    ]  # fmt: skip


def trained_model(out: str | Path) -> Path:
    """The ``best.npz`` of an alexnet-cifar trained on shapes, for chapters 11 and 12.

    The first place that has a usable one wins: ``make train``'s run (from the
    repository root or from ``tutorials/``), chapter 10's run in ``out/ch10-run``, else
    chapter 10's run, trained now into ``out/ch10-run``. Every run is a pure function of
    its seed, so the fresh run is chapter 10's model, weight for weight. A checkpoint
    that cannot be read, or of another model or dataset, is reported and passed over.
    """
    from . import train  # noqa: PLC0415 -- the training script only when needed
    from .evaluate import load_model  # noqa: PLC0415

    run_dir = Path(out) / "ch10-run"
    candidates = [
        Path("runs/alexnet-cifar-shapes/best.npz"),
        Path("../runs/alexnet-cifar-shapes/best.npz"),
        run_dir / "best.npz",
    ]
    for path in candidates:
        if not path.exists():
            continue
        try:
            _, _, meta = load_model(path)
        except Exception as exc:  # damaged, or from an incompatible version: say so, go on
            print(f"{path}: cannot be used ({exc})")
            continue
        if meta["config"]["arch"] == "alexnet-cifar" and meta["run"].get("dataset") == "shapes":
            return path
        print(f"{path}: not alexnet-cifar trained on shapes; skipped")
    status = train.main(chapter10_args(run_dir))
    if status != 0:
        raise RuntimeError(f"training chapter 10's model into {run_dir} ended with {status}")
    return run_dir / "best.npz"
