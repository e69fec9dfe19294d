"""Write a student copy: the repository with the chosen exercises' solutions taken out.

``release(["conv2d_backward", "lrn_forward"], Path("handout"))`` copies what a
student needs to install the package and run the shipped tests (``pyproject.toml``,
``README.md``, ``Makefile``, ``mkdocs.yml``, ``minialexnet/``, ``docs/``,
``tutorials/`` and the grading tests in ``tests/exercises/``) and, on the way:

* replaces every marked region of a chosen exercise in the library by
  ``raise NotImplementedError("<exercise>: <what to implement>")`` at the
  region's indentation; docstrings and the code around the region stay;
* replaces every marked region of the tutorials (the chapters' "your turn"
  cells, in both the ``.py`` twin and the ``.ipynb``), whatever exercises are
  chosen, by ``raise NotImplementedError("your turn: ...")``: the tutorials of a
  student copy are always the student edition (the hint above each region and
  the check cell after it stay);
* keeps the code of every other region and removes all marker lines, so the
  student can run the whole network around their piece;
* leaves out the hidden tests and the instructors' material (``[catalogue]
  instructor_only``), and writes the catalogue with a ``[release]`` table naming
  the exercises handed out (that is how ``check`` knows it runs in a student copy);
* replaces the loop versions of the operations handed out (the exercises'
  ``loop_reference``, in ``minialexnet/functional/reference.py``) by stubs that say
  why they are gone, unless the exercise sets ``allow_loop_reference``: calling
  ``lrn_backward_loops`` would otherwise pass the vectorised ``lrn_backward``
  (:mod:`minialexnet.exercises.loop_reference`);
* records, on the instructor's package, every reference call (``ref.*``) that the
  shipped tests of the exercises handed out make, into
  ``tests/exercises/fixtures/reference_calls.npz`` (:mod:`minialexnet.exercises.fixtures`):
  in the copy ``check lrn_backward`` takes its cache from that file, so it runs before
  ``lrn_forward`` is written, and ``check lrn_forward`` compares with the recorded loop
  version, which the copy leaves out;
* checks that the instructor's package passes every test of the exercises handed out
  (shipped and hidden) with the random inputs grading draws for this release (its
  *grading salt*, from the manifest's digest: :func:`minialexnet.exercises.grade.release_salt`),
  which are not the recorded ones; a test unlucky with them fails the release;
* adds ``EXERCISES.md``: what to implement, and how to check it;
* writes the release manifest (:mod:`minialexnet.exercises.manifest`) twice: into the
  copy (``release.json``) and, for the instructor, beside it (``OUT.release.json``):
  ``grade --release OUT.release.json`` grades exactly the exercises handed out.

The copy is built in a temporary folder beside ``out`` and moved into place at
the end, so a failed release leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from .catalogue import (
    CATALOGUE_FILE,
    Catalogue,
    CatalogueError,
    Exercise,
    dumps_catalogue,
    read_catalogue,
    repo_root,
    select,
    split_spec,
)
from .fixtures import FIXTURE_FILE, run_checkout_tests, write_check_fixtures
from .loop_reference import left_out_by_file, stub_functions
from .manifest import (
    MANIFEST_NAME,
    Manifest,
    beside,
    build_manifest,
    grading_salt,
    write_manifest,
)
from .regions import BEGIN, END, Region, replace_notebook_regions, replace_regions
from .sandbox import GRADE_SALT_ENV

__all__ = [
    "SHIPPED",
    "FIXTURES",
    "ReleaseError",
    "release",
    "manifest_path",
    "marker_lines",
]

_TUTORIALS = "tutorials/"

SHIPPED = (
    "pyproject.toml",
    "README.md",
    "Makefile",
    "mkdocs.yml",
    ".gitignore",
    "LICENSE",
    "minialexnet",
    "docs",
    "tutorials",
)
"""What a student copy holds from the repository root (besides the shipped tests), if present."""

FIXTURES = "tests/exercises/fixtures"
"""Where a student copy holds the recorded reference calls of its shipped tests (beside
``tests/exercises/conftest.py``, which replays them)."""

_SKIP_NAMES = {"__pycache__", ".ipynb_checkpoints", ".DS_Store", ".pytest_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")


class ReleaseError(ValueError):
    """The release cannot be written (bad names, an occupied folder, a region left over)."""


def _walk(path: Path) -> Iterator[Path]:
    """Every file under ``path`` (or ``path`` itself), skipping caches, in sorted order."""
    if path.is_file():
        yield path
        return
    for child in sorted(path.iterdir()):
        if child.name in _SKIP_NAMES or child.name.endswith(_SKIP_SUFFIXES):
            continue
        if child.is_dir():
            yield from _walk(child)
        elif child.is_file():
            yield child


def _files_to_ship(catalogue: Catalogue) -> list[str]:
    """Repository-relative paths of every file of the student copy (before changes)."""
    root = catalogue.root
    excluded = {p.rstrip("/") for p in catalogue.instructor_only}

    def left_out(rel: str) -> bool:
        return any(rel == e or rel.startswith(e + "/") for e in excluded)

    files = []
    for top in SHIPPED:
        if (root / top).exists():
            files += [p.relative_to(root).as_posix() for p in _walk(root / top)]
    tests = list(catalogue.support)
    for ex in catalogue.exercises:
        tests += ex.tests
    files += list(dict.fromkeys(tests))
    return [f for f in files if not left_out(f)]


class _Stubs:
    """Which library region gets which stub message, and which were used (to catch misses).

    The tutorials' regions are not here: every one of them is stubbed (:func:`_your_turn`).
    """

    def __init__(self, chosen: Sequence[Exercise]) -> None:
        self.messages: dict[tuple[str, str | None], str] = {}
        for ex in chosen:
            for spec in ex.regions:
                self.messages[split_spec(spec)] = ex.message
        self.used: set[tuple[str, str | None]] = set()

    def for_file(self, rel: str):
        def message_for(region: Region) -> str | None:
            for key in ((rel, region.qualname), (rel, None)):
                if key in self.messages:
                    self.used.add(key)
                    return self.messages[key]
            return None

        return message_for

    def unused(self) -> list[str]:
        return sorted(f"{p}::{q}" if q else p for p, q in set(self.messages) - self.used)


def _your_turn(region: Region) -> str:
    """The stub's message for a region of a tutorial: what to write, and how to know it works."""
    what = f"the body of {region.qualname}" if region.qualname else "the code of this cell"
    return f"your turn: write {what} (the hint above says how); the next cell checks it"


class _YourTurn:
    """Stubs every region of the tutorials and remembers them, chapter by chapter."""

    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}

    def for_file(self, rel: str):
        chapter = rel.rsplit(".", 1)[0]

        def message_for(region: Region) -> str:
            names = self.found.setdefault(chapter, [])
            name = region.qualname or "a cell"
            if name not in names:
                names.append(name)
            return _your_turn(region)

        return message_for


def _drop_from_nav(text: str, pages: Iterable[str]) -> str:
    """mkdocs.yml without the nav lines naming ``pages`` (paths relative to docs/)."""
    pages = list(pages)
    return "".join(
        line
        for line in text.splitlines(keepends=True)
        if not any(line.strip().startswith("- ") and line.rstrip().endswith(p) for p in pages)
    )


def _exercises_md(
    chosen: Sequence[Exercise], catalogue: Catalogue, your_turn: dict[str, list[str]]
) -> str:
    lines = [
        "# Exercises",
        "",
        "This copy of minialexnet has some functions left for you to write. Each one raises",
        "`NotImplementedError` with a message saying what to implement; everything else is",
        "the full library, so you can run the whole network around your piece.",
        "",
        "Install it (once): `pip install -e '.[test]'`. Check an exercise with",
        "`python -m minialexnet.exercises check NAME`: it runs that exercise's tests and",
        "explains what is wrong (shapes, which gradient, how far off). The grader runs the",
        "same tests and a few more, on its own copy of them.",
        "",
        "The reference values and caches those tests compare with come from",
        f"`{FIXTURES}/{FIXTURE_FILE}` (the reference's results, recorded for the",
        "tests' own inputs), not from your code: you can check a backward before you have",
        "written its forward.",
        "",
        "| exercise | points | what to implement | where |",
        "|---|---|---|---|",
    ]
    for ex in chosen:
        where = ", ".join(f"`{spec.replace('::', ' ')}`" for spec in ex.regions)
        todo = ex.todo.replace("|", "\\|")
        lines.append(f"| `{ex.name}` | {ex.points} | {todo} | {where} |")
    total = sum(ex.points for ex in chosen)
    others = [ex.name for ex in catalogue.exercises if ex not in chosen]
    lines += ["", f"Total: {total} points."]
    if others:
        lines += ["", "Already implemented for you (reference code): " + ", ".join(others) + "."]
    left_out = [split_spec(spec)[1] for ex in chosen for spec in ex.left_out]
    if left_out:
        names = ", ".join(f"`{name}`" for name in left_out)
        lines += [
            "",
            f"Left out of this copy: {names} in `minialexnet/functional/reference.py`, the",
            "slow loop versions of the operations you write (calling one raises and says why;",
            "so do the tutorials' cells that compare with them). `check` compares with their",
            "recorded results instead; the grader has its own copy.",
        ]
    if your_turn:
        lines += [
            "",
            "## In the tutorials",
            "",
            "Some cells of the chapters in `tutorials/` are yours to write too: each is a",
            "function with its signature, its docstring and a one-line hint, whose body raises",
            '`NotImplementedError("your turn: ...")`. The cell after it checks your code and',
            "prints the relative error it found against what it expects (a finite-difference",
            "gradient, the slow loop version, the paper's formula). These are not graded.",
            "",
            "| chapter | write |",
            "|---|---|",
        ]
        for chapter, names in sorted(your_turn.items()):
            lines.append(f"| `{chapter}` | {', '.join(f'`{n}`' for n in names)} |")
    return "\n".join(lines) + "\n"


def marker_lines(text: str) -> list[int]:
    """1-based numbers of the lines of ``text`` that are a solution marker and nothing else."""
    return [i + 1 for i, line in enumerate(text.splitlines()) if line.strip() in (BEGIN, END)]


def _check_out(out: Path, root: Path, force: bool) -> None:
    out_r, root_r = out.resolve(), root.resolve()
    if out_r == root_r or root_r.is_relative_to(out_r):
        raise ReleaseError(f"--out {out} would hold or replace the repository itself; pick another")
    for top in (*SHIPPED, "tests"):
        if out_r.is_relative_to(root_r / top):
            raise ReleaseError(f"--out {out} lies inside {top}/ of the repository; pick another")
    if beside(out).exists() and not force:
        raise ReleaseError(
            f"{beside(out)} (the release manifest of --out {out}) exists; choose a new folder "
            "or pass --force to replace both"
        )
    if out.exists():
        if not out.is_dir():
            raise ReleaseError(f"--out {out} exists and is not a folder")
        if any(out.iterdir()) and not force:
            raise ReleaseError(
                f"--out {out} exists and is not empty; choose a new folder or pass --force to "
                "replace it"
            )


def release(
    names: Sequence[str] | None,
    out: str | Path,
    root: str | Path | None = None,
    *,
    force: bool = False,
) -> Path:
    """Write a student copy of the checkout ``root`` with the exercises ``names`` handed out.

    Args:
        names: exercises to hand out (None: all of them). Unknown names raise
            :class:`ReleaseError` listing the known ones.
        out: the folder to write; it must not exist or be empty (``force``: replaced).
        root: the instructor's checkout (default: the one this package lives in).
        force: replace a non-empty ``out``.

    Returns:
        ``out`` as an absolute path. The release manifest is in ``out/release.json``
        and, the instructor's copy, beside the folder: :func:`manifest_path` ``(out)``.
    """
    root = repo_root() if root is None else Path(root).resolve()
    out = Path(out).absolute()
    try:
        catalogue = read_catalogue(root=root)
        chosen = select(catalogue.exercises, names)
    except CatalogueError as exc:
        raise ReleaseError(str(exc)) from None
    if catalogue.released is not None:
        raise ReleaseError(
            f"{root} is a student copy (its catalogue has a [release] table); release from "
            "the instructor's checkout"
        )
    _check_out(out, root, force)

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest = _write_copy(catalogue, chosen, work)
        work.chmod(0o755)  # mkdtemp made it private
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    write_manifest(manifest, beside(out))
    return out


def manifest_path(out: str | Path) -> Path:
    """The instructor's manifest of the copy ``out``: ``out.release.json`` beside the folder."""
    return beside(Path(out).absolute())


def _write_copy(catalogue: Catalogue, chosen: Sequence[Exercise], work: Path) -> Manifest:
    root = catalogue.root
    stubs = _Stubs(chosen)
    loops = left_out_by_file(chosen)
    your_turn = _YourTurn()
    left_over: list[str] = []
    docs_dropped = [p[len("docs/") :] for p in catalogue.instructor_only if p.startswith("docs/")]
    for rel in _files_to_ship(catalogue):
        source, target = root / rel, work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel == CATALOGUE_FILE:
            continue  # written below
        message_for = (your_turn if rel.startswith(_TUTORIALS) else stubs).for_file(rel)
        if rel.endswith(".py"):
            text = source.read_text(encoding="utf-8")
            text = replace_regions(text, message_for, rel)
            if rel in loops:
                try:
                    text = stub_functions(text, loops.pop(rel), rel)
                except (ValueError, SyntaxError) as exc:
                    raise ReleaseError(f"cannot leave out the loop versions: {exc}") from None
            target.write_text(text, encoding="utf-8")
        elif rel.endswith(".ipynb"):
            text = source.read_text(encoding="utf-8")
            text = replace_notebook_regions(text, message_for, rel)
            target.write_text(text, encoding="utf-8")
        elif rel == "mkdocs.yml" and docs_dropped:
            text = _drop_from_nav(source.read_text(encoding="utf-8"), docs_dropped)
            target.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(source, target)
        shutil.copymode(source, target)
        if rel.endswith((".py", ".ipynb")) and marker_lines(target.read_text(encoding="utf-8")):
            left_over.append(rel)
    if left_over:
        raise ReleaseError(
            f"marker lines left in {', '.join(left_over)} (a marker the release could not pair "
            "or attribute; see `python -m minialexnet.exercises list`)"
        )
    unused = stubs.unused()
    if unused:
        raise ReleaseError(f"no marked region found for {', '.join(unused)}")
    if loops:
        raise ReleaseError(
            f"loop_reference names {', '.join(loops)}, which the student copy does not hold"
        )

    released = Catalogue(
        exercises=tuple(replace(ex, hidden=()) for ex in catalogue.exercises),
        support=catalogue.support,
        instructor_only=(),
        released=tuple(ex.name for ex in chosen),
        root=work,
    )
    header = (
        "The exercise catalogue of this student copy (written by `python -m minialexnet.exercises\n"
        "release`). [release] names the exercises handed out; `python -m minialexnet.exercises\n"
        "check NAME` runs an exercise's tests."
    )
    (work / CATALOGUE_FILE).parent.mkdir(parents=True, exist_ok=True)
    (work / CATALOGUE_FILE).write_text(dumps_catalogue(released, header), encoding="utf-8")
    exercises_md = _exercises_md(chosen, catalogue, your_turn.found)
    (work / "EXERCISES.md").write_text(exercises_md, encoding="utf-8")
    _record_fixtures(catalogue, chosen, work)
    manifest = build_manifest(catalogue, chosen)
    _check_salted(catalogue, chosen, grading_salt(manifest.digest))
    write_manifest(manifest, work / MANIFEST_NAME)
    return manifest


def _check_salted(
    catalogue: Catalogue, chosen: Sequence[Exercise], salt: int, timeout: float = 600.0
) -> None:
    """The instructor's package passes every test (shipped and hidden) of ``chosen`` with
    the random inputs that grading draws under the release's ``salt``.

    Grading mixes ``salt`` into the tests' generators (``exercise_support.generator``); a
    test unlucky with those inputs (a finite difference across a kink, a tie) would fail
    every student. The tests run in one pytest process on ``catalogue.root`` (the same
    tests and inputs as the judge's, without a worker: the package is the instructor's).

    Raises:
        ReleaseError: a test fails under the salt, naming it; no copy is written.
    """
    tests = list(dict.fromkeys(t for ex in chosen for t in ex.all_tests))
    if not tests:
        return
    try:
        done = run_checkout_tests(
            catalogue.root, tests, {GRADE_SALT_ENV: str(salt)}, ["-rfE"], timeout
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ReleaseError(
            f"running the grading tests under the grading salt failed: {exc}"
        ) from None
    if done.returncode != 0:
        failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        tail = "\n".join(failed) or (done.stdout + done.stderr).strip()[-2000:]
        raise ReleaseError(
            f"the grading tests fail on your own package with the inputs that grading draws "
            f"for this release ({GRADE_SALT_ENV}={salt}, from the manifest's digest): a test "
            "is unlucky with them (a finite difference across a kink or a tie?). Make it "
            "robust to its inputs (or change the tests, which changes the salt), then "
            f"release again. Reproduce with `{GRADE_SALT_ENV}={salt} pytest TESTS`.\n{tail}"
        )


def _record_fixtures(catalogue: Catalogue, chosen: Sequence[Exercise], work: Path) -> None:
    """Record the reference calls of the shipped tests of ``chosen`` into the copy ``work``.

    The tests run on the instructor's package (``catalogue.root``), never on the copy's;
    hidden tests are not run (their inputs and expected values stay with the instructor).
    """
    tests = list(dict.fromkeys(t for ex in chosen for t in ex.tests))
    if not tests:
        return
    try:
        write_check_fixtures(catalogue.root, tests, work / FIXTURES)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        raise ReleaseError(
            f"recording the reference calls of the shipped tests (for `check` in the copy) "
            f"failed; do the exercises' tests pass on your checkout?\n{exc}"
        ) from None
    if not (work / FIXTURES / FIXTURE_FILE).is_file():  # pragma: no cover - written above
        raise ReleaseError(f"no {FIXTURES}/{FIXTURE_FILE} was written")
