"""``python -m minialexnet.exercises list | release | grade | check``.

    list                                  the catalogue: exercises, points, tests
    release [--only a,b] --out DIR [--force]
                                          write a student copy with those exercises taken out
    grade DIR [...]                       grade a student copy (see ``grade --help``)
    check NAME [...]                      inside a student copy: run an exercise's tests

``grade`` and ``check`` hand everything after their name to
:func:`minialexnet.exercises.grade.grade_main` / ``check_main`` (a list of strings),
which parse it and return the exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .catalogue import CatalogueError, format_table, read_catalogue

_EPILOG = """\
examples:
  python -m minialexnet.exercises list
  python -m minialexnet.exercises release --only conv2d_backward,lrn --out handout
  python -m minialexnet.exercises grade submissions/alice --json results.json
  python -m minialexnet.exercises check lrn_forward      (inside a student copy)
"""


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minialexnet.exercises",
        description="Instructors' exercises: list the catalogue, release a student copy, "
        "grade it; students: check an exercise.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_list = sub.add_parser("list", help="print the exercise catalogue")
    p_list.add_argument(
        "-v", "--verbose", action="store_true", help="also each exercise's regions, tests, stub"
    )
    p_list.add_argument(
        "--catalogue", type=Path, help="a catalogue file (default: this checkout's)"
    )

    p_rel = sub.add_parser("release", help="write a student copy with exercises taken out")
    p_rel.add_argument(
        "--only",
        type=_names,
        metavar="A,B",
        help="comma-separated exercises to hand out (default: all of them)",
    )
    p_rel.add_argument("--out", type=Path, required=True, metavar="DIR", help="the folder to write")
    p_rel.add_argument("--force", action="store_true", help="replace DIR if it is not empty")
    p_rel.add_argument("--root", type=Path, help="the instructor's checkout (default: this one)")

    for name, text in (
        ("grade", "grade a student copy (grade DIR --help for the options)"),
        ("check", "inside a student copy: run an exercise's tests and explain failures"),
    ):
        p = sub.add_parser(name, help=text, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _list(args: argparse.Namespace) -> int:
    catalogue = read_catalogue(args.catalogue)
    print(format_table(catalogue, verbose=args.verbose))
    return 0


def _release(args: argparse.Namespace) -> int:
    from .release import ReleaseError, release

    try:
        out = release(args.only, args.out, args.root, force=args.force)
    except ReleaseError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 2
    catalogue = read_catalogue(root=out)
    released = catalogue.released or ()
    kept = [n for n in catalogue.names() if n not in released]
    points = sum(catalogue.get(n).points for n in released)
    print(f"wrote a student copy to {out}")
    print(f"  handed out ({points} points): {', '.join(released)}")
    if kept:
        print(f"  reference code kept: {', '.join(kept)}")
    print(f"  students: pip install -e {out}, then python -m minialexnet.exercises check NAME")
    print("  grade a returned copy: python -m minialexnet.exercises grade DIR")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("grade", "check"):
        # their own parsers take the rest (argparse's REMAINDER would refuse a leading --help)
        from .grade import check_main, grade_main  # lazily: only these need the grader

        try:
            return int((grade_main if argv[0] == "grade" else check_main)(argv[1:]) or 0)
        except CatalogueError as exc:
            print(f"{argv[0]}: {exc}", file=sys.stderr)
            return 2
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return _list(args)
        return _release(args)  # grade and check never get here: see above
    except CatalogueError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
