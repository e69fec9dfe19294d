"""``python -m minialexnet.bench SUBCOMMAND``: measure, never assume.

layers   forward+backward of each of the paper's layers at their real shapes
train    whole training steps: images/s, TFLOP/s, peak memory per tower, PyTorch side by side
loader   images/s the training input pipeline delivers (memmap cache, crops), by threads
scaling  data-parallel steps on 1, 2, ... MPI ranks: images/s, efficiency, allreduce share
"""

from __future__ import annotations

import argparse
import sys

from ..backend import Device, reuse_freed_memory
from . import layers, loader, scaling, train


def build_parser() -> argparse.ArgumentParser:
    """The command line of every subcommand (parsing runs nothing)."""
    parser = argparse.ArgumentParser(
        prog="python -m minialexnet.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    layers.add_arguments(sub.add_parser("layers", help=layers.__doc__.splitlines()[0]))
    train.add_arguments(sub.add_parser("train", help=train.__doc__.splitlines()[0]))
    loader.add_arguments(sub.add_parser("loader", help=loader.__doc__.splitlines()[0]))
    scaling.add_arguments(sub.add_parser("scaling", help=scaling.__doc__.splitlines()[0]))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark; its exit status (2 for bad input, with the message alone)."""
    args = build_parser().parse_args(argv)
    if args.command == "layers":  # (train and loader check their own options)
        try:
            Device(args.device)
        except (RuntimeError, ValueError) as exc:  # an unknown --device, or no GPU for it
            return _bad_input(args, exc)
    if reuse_freed_memory():  # as the training command does: see backend.py
        print("host allocator: freed memory reused (glibc mallopt), as in training")
    try:
        return args.run(args)
    except FileNotFoundError as exc:  # e.g. loader --dataset cifar10 where there is none
        return _bad_input(args, exc)


def _bad_input(args: argparse.Namespace, problem: Exception) -> int:
    print(f"minialexnet.bench {args.command}: {problem}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
