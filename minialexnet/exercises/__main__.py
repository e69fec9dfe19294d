"""``python -m minialexnet.exercises list | release | grade | check``.

    list                                  the catalogue: exercises, points, tests
    release [--only a,b] --out DIR [--force]
                                          write a student copy with those exercises taken out,
                                          and its release manifest DIR.release.json beside it
    grade DIR --release MANIFEST [...]    grade a student copy (see ``grade --help``)
    autograder --release MANIFEST --out ZIP
                                          the Gradescope autograder zip for that release
    check NAME [...]                      inside a student copy: run an exercise's tests

``grade`` and ``check`` hand everything after their name to
:func:`minialexnet.exercises.grade.grade_main` / ``check_main`` (a list of strings),
which parse it and return the exit status.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .catalogue import CatalogueError, format_table, read_catalogue
from .gradescope import VISIBILITIES

_EPILOG = """\
examples:
  python -m minialexnet.exercises list
  python -m minialexnet.exercises release --only conv2d_backward,lrn --out handout
  python -m minialexnet.exercises grade submissions/alice --release handout.release.json
  python -m minialexnet.exercises autograder --release handout.release.json --out autograder.zip
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

    p_auto = sub.add_parser("autograder", help="build the Gradescope autograder zip for a release")
    p_auto.add_argument(
        "--release",
        type=Path,
        required=True,
        metavar="MANIFEST",
        help="the release manifest (OUT.release.json, written by release)",
    )
    p_auto.add_argument(
        "--out", type=Path, default=Path("autograder.zip"), metavar="ZIP", help="the zip to write"
    )
    p_auto.add_argument("--root", type=Path, help="the instructor's checkout (default: this one)")
    p_auto.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds each exercise's tests may run on Gradescope (default 120)",
    )
    p_auto.add_argument(
        "--hidden-visibility",
        choices=VISIBILITIES,
        default="after_published",
        help="Gradescope visibility of the hidden tests' messages (default after_published)",
    )
    p_auto.add_argument(
        "--accept-changes",
        action="store_true",
        help="build even when the checkout's tests changed since the release",
    )

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
    from .manifest import read_manifest
    from .release import ReleaseError, manifest_path, release

    try:
        out = release(args.only, args.out, args.root, force=args.force)
    except ReleaseError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 2
    catalogue = read_catalogue(root=out)
    manifest = read_manifest(manifest_path(out))
    kept = [n for n in catalogue.names() if n not in manifest.names]
    left_out = [spec.partition("::")[2] for ex in manifest.exercises for spec in ex.left_out]
    here = shlex.quote(str(manifest.path))
    print(f"wrote a student copy to {out}")
    print(f"  handed out ({manifest.total} points): {', '.join(manifest.names)}")
    if kept:
        print(f"  reference code kept: {', '.join(kept)}")
    if left_out:
        print(f"  loop versions left out: {', '.join(left_out)}")
    print(f"  the release manifest (keep it; the copy holds one too): {manifest.path}")
    print(f"  students: pip install -e {out}, then python -m minialexnet.exercises check NAME")
    print("  grade a returned copy DIR:")
    print(f"    python -m minialexnet.exercises grade DIR --release {here}")
    print("  the Gradescope autograder:")
    print(f"    python -m minialexnet.exercises autograder --release {here} --out autograder.zip")
    return 0


def _autograder(args: argparse.Namespace) -> int:
    from .autograder import AutograderError, build_autograder

    try:
        if not args.timeout > 0:
            raise AutograderError(f"--timeout must be > 0 seconds, got {args.timeout:g}")
        zip_path = build_autograder(
            args.release,
            args.out,
            args.root,
            timeout=args.timeout,
            hidden_visibility=args.hidden_visibility,
            accept_changes=args.accept_changes,
        )
    except AutograderError as exc:
        print(f"autograder: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {zip_path}: upload it as the assignment's autograder on Gradescope")
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
        if args.command == "autograder":
            return _autograder(args)
        return _release(args)  # grade and check never get here: see above
    except CatalogueError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
