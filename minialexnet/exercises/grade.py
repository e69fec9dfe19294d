"""Grade a student copy against the catalogue; check one exercise inside a student copy.

``grade(student)`` runs, for each exercise of the instructor's catalogue, that exercise's
grading tests (shipped and hidden, fresh copies from the instructor's checkout: never the
student's) on the student's code, each exercise in its own sandboxed pytest process with
its own time limit (:mod:`minialexnet.exercises.sandbox`). An exercise scores its points
when all its tests pass and nothing otherwise; the report says, for each, the first
failure. ``to_gradescope(report)`` is Gradescope's ``results.json``.

``check(name)`` is the student's self-check: inside a student copy it runs the exercise's
shipped tests on the copy's own code and explains each failure (the test's assertion
message: which output or gradient, shapes, relative error).

The command line (``python -m minialexnet.exercises grade DIR`` and ``check NAME``) calls
:func:`grade_main` and :func:`check_main`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalogue import Catalogue, CatalogueError, Exercise, read_catalogue, repo_root, select
from .sandbox import (
    DEFAULT_OUTPUT_LIMIT,
    PACKAGE,
    SandboxResult,
    TestOutcome,
    copy_reference_package,
    run_tests,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "CHECK_TIMEOUT",
    "ExerciseGrade",
    "GradeReport",
    "grade",
    "grade_exercise",
    "to_gradescope",
    "find_package_root",
    "check",
    "explain",
    "grade_parser",
    "check_parser",
    "grade_main",
    "check_main",
]

DEFAULT_TIMEOUT = 120.0
"""Seconds each exercise's tests may run before they are stopped and the exercise scores 0."""

CHECK_TIMEOUT = 300.0
"""Seconds a self-check (``check NAME``) may run."""

_RAISED_IN = re.compile(rf"(?:^|/)({PACKAGE}/[\w/]+\.py):(\d+): in (\w+)", re.MULTILINE)
_FAILURES_SHOWN = 3  # failures whose traceback goes into an exercise's Gradescope output
_CHECK_SHOWN = 5  # failures that ``check`` explains in full (the rest: one line each)
_OUTPUT_SHOWN = 3000  # characters of a broken run's output shown with its problem


@dataclass(frozen=True)
class ExerciseGrade:
    """How one exercise was graded.

    Attributes:
        name, title: the catalogue's.
        max_score: the exercise's points.
        score: ``max_score`` when every test passed, else 0.
        passed, failed: counts of tests (errors count as failed; skipped ones in neither).
        reason: the first failure, one line ('' with full marks).
        output: what Gradescope shows the student: the tests' summary and failures.
        seconds: how long the tests ran.
    """

    name: str
    title: str
    max_score: int
    score: int
    passed: int
    failed: int
    reason: str
    output: str
    seconds: float


@dataclass(frozen=True)
class GradeReport:
    """A student copy's grade: one :class:`ExerciseGrade` per exercise graded."""

    student: Path
    exercises: tuple[ExerciseGrade, ...]
    seconds: float = 0.0

    @property
    def score(self) -> int:
        """Points earned."""
        return sum(e.score for e in self.exercises)

    @property
    def max_score(self) -> int:
        """Points possible."""
        return sum(e.max_score for e in self.exercises)

    def __getitem__(self, name: str) -> ExerciseGrade:
        for e in self.exercises:
            if e.name == name:
                return e
        raise KeyError(f"{name!r} was not graded; graded: {[e.name for e in self.exercises]}")

    def table(self, width: int = 120) -> str:
        """The report as text: exercise, points, first failure (or the number of tests)."""
        name_w = max([len("exercise"), *(len(e.name) for e in self.exercises)])
        rows = [f"{'exercise':<{name_w}}  {'points':>7}  first failure"]
        for e in self.exercises:
            if e.score == e.max_score and not e.reason:
                note = f"ok: {e.passed} tests passed ({e.seconds:.1f} s)"
            else:
                note = e.reason
            room = max(20, width - name_w - 11)
            note = note if len(note) <= room else note[: room - 3] + "..."
            rows.append(f"{e.name:<{name_w}}  {f'{e.score}/{e.max_score}':>7}  {note}")
        rows.append(f"{'total':<{name_w}}  {f'{self.score}/{self.max_score}':>7}")
        return "\n".join(rows)


# ---------------------------------------------------------------- grading


def find_package_root(student: Path, package: str = PACKAGE) -> Path:
    """The folder holding ``package/__init__.py``: ``student`` or one folder below it.

    An upload is often the student copy's folder itself, or an archive that unpacks to
    one folder holding it; both are found. Otherwise ``student`` is returned unchanged
    (grading then fails every exercise with the reason).
    """
    student = Path(student)
    if (student / package / "__init__.py").is_file():
        return student
    below = [p for p in sorted(student.iterdir()) if (p / package / "__init__.py").is_file()]
    return below[0] if len(below) == 1 else student


def _summary(result: SandboxResult) -> tuple[int, int]:
    passed = sum(t.outcome == "passed" for t in result.tests)
    return passed, len(result.failures)


def _is_hidden(exercise: Exercise, test: TestOutcome) -> bool:
    """The test comes from one of the exercise's hidden files (its code is not shown)."""
    path = test.nodeid.partition("::")[0]
    dotted = path.removesuffix(".py").replace("/", ".")
    for hidden in exercise.hidden:
        rel = hidden.partition("::")[0]
        if path == rel or dotted == rel.removesuffix(".py").replace("/", "."):
            return True
    return False


def _label(exercise: Exercise, test: TestOutcome) -> str:
    """A test's name for the student: ``test_x[case]``, or ``a hidden test``."""
    if _is_hidden(exercise, test):
        return "a hidden test"
    return test.nodeid.rpartition("::")[2] or test.nodeid


def _reason(exercise: Exercise, result: SandboxResult) -> str:
    """One line: the run's problem, else the first failure's message and test ('' if none)."""
    if result.problem or not result.failures:
        return result.reason()
    first = result.failures[0]
    return f"{first.message or first.outcome} [{_label(exercise, first)}]"


def _gradescope_output(exercise: Exercise, result: SandboxResult) -> str:
    """What the student sees for one exercise: counts, then the reason and failures.

    A hidden test's failure shows its message only, not its code.
    """
    passed, failed = _summary(result)
    lines = [f"{exercise.title}: {passed} passed, {failed} failed ({result.seconds:.1f} s)"]
    if result.passed:
        return lines[0]
    lines += ["", f"FAILED: {_reason(exercise, result)}"]
    for test in result.failures[:_FAILURES_SHOWN]:
        if _is_hidden(exercise, test):
            lines += ["", f"--- a hidden test ({test.outcome})", test.message]
        else:
            lines += ["", f"--- {test.nodeid} ({test.outcome})", test.details or test.message]
    if len(result.failures) > _FAILURES_SHOWN:
        lines += ["", f"... and {len(result.failures) - _FAILURES_SHOWN} more failures"]
    if result.problem and result.output.strip():
        head = result.output.strip()
        if len(head) > _OUTPUT_SHOWN:
            head = head[:_OUTPUT_SHOWN] + "\n[... cut]"
        lines += ["", "--- output of the run", head]
    return "\n".join(lines)


def grade_exercise(
    student: Path,
    exercise: Exercise,
    root: Path,
    *,
    reference: Path | None,
    support: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    env: dict[str, str] | None = None,
) -> ExerciseGrade:
    """Run one exercise's tests (shipped and hidden) from ``root`` on ``student``'s code."""
    result = run_tests(
        student,
        exercise.all_tests,
        root,
        support=support,
        reference=reference,
        timeout=timeout,
        output_limit=output_limit,
        env=env,
    )
    passed, failed = _summary(result)
    return ExerciseGrade(
        name=exercise.name,
        title=exercise.title,
        max_score=exercise.points,
        score=exercise.points if result.passed else 0,
        passed=passed,
        failed=failed,
        reason=_reason(exercise, result),
        output=_gradescope_output(exercise, result),
        seconds=result.seconds,
    )


def _missing_package(exercise: Exercise, student: Path) -> ExerciseGrade:
    reason = (
        f"no {PACKAGE}/__init__.py in {student} (nor in a folder just below it): "
        "hand in the whole student copy"
    )
    return ExerciseGrade(
        exercise.name, exercise.title, exercise.points, 0, 0, 0, reason, reason, 0.0
    )


def _instructor_catalogue(root: Path) -> Catalogue:
    catalogue = read_catalogue(root=root)
    if catalogue.released is not None:
        raise CatalogueError(
            f"{root} is a student copy (its catalogue has a [release] table): grading needs "
            "the instructor's checkout, whose tests (hidden ones included) are the reference; "
            "inside a student copy use `python -m minialexnet.exercises check NAME`"
        )
    return catalogue


def grade(
    student: Path,
    names: Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    root: Path | None = None,
    *,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    env: dict[str, str] | None = None,
    progress: Callable[[ExerciseGrade], None] | None = None,
) -> GradeReport:
    """Grade the student copy ``student`` on the exercises ``names`` (default: all).

    Args:
        student: the student's copy (the folder holding ``minialexnet/``, or the folder
            just above it).
        names: exercises to grade, in any order (graded in catalogue order); None for all.
        timeout: seconds each exercise's tests may run.
        root: the instructor's checkout (default: the one this package lives in).
        output_limit: bytes of each run's output kept.
        env: extra environment variables for the test processes.
        progress: called with each :class:`ExerciseGrade` as it is done (or None).

    Returns:
        The :class:`GradeReport`.

    Raises:
        FileNotFoundError: ``student`` is not a folder.
        ValueError: ``timeout`` is not positive.
        CatalogueError: unknown exercise names (the message lists the known ones), or
            ``root`` is not an instructor's checkout.
    """
    student = Path(student)
    if not student.is_dir():
        raise FileNotFoundError(f"grade: {student} is not a folder (the student's copy)")
    if timeout <= 0:
        raise ValueError(f"grade: timeout must be > 0 seconds, got {timeout!r}")
    root = repo_root() if root is None else Path(root).resolve()
    catalogue = _instructor_catalogue(root)
    exercises = select(catalogue.exercises, None if names is None else list(names))
    student = find_package_root(student).resolve()
    has_package = (student / PACKAGE / "__init__.py").is_file()
    start = time.monotonic()
    grades = []
    with tempfile.TemporaryDirectory(prefix="minialexnet-reference-") as reference:
        if has_package:
            copy_reference_package(root, Path(reference))
        for exercise in exercises:
            if not has_package:
                done = _missing_package(exercise, student)
            else:
                done = grade_exercise(
                    student,
                    exercise,
                    root,
                    reference=Path(reference),
                    support=catalogue.support,
                    timeout=timeout,
                    output_limit=output_limit,
                    env=env,
                )
            grades.append(done)
            if progress is not None:
                progress(done)
    return GradeReport(student, tuple(grades), time.monotonic() - start)


def to_gradescope(report: GradeReport) -> dict[str, Any]:
    """Gradescope's ``results.json`` for ``report``: score, max_score and one test per exercise.

    ``{"score", "max_score", "execution_time", "output", "tests": [{"name", "score",
    "max_score", "status", "output"}]}``; ``status`` is ``passed`` or ``failed``.
    """
    return {
        "score": report.score,
        "max_score": report.max_score,
        "execution_time": round(report.seconds, 1),
        "output": f"{report.score}/{report.max_score} points\n\n{report.table()}",
        "tests": [
            {
                "name": f"{e.name}: {e.title}",
                "score": e.score,
                "max_score": e.max_score,
                "status": "passed" if e.score == e.max_score else "failed",
                "output": e.output,
            }
            for e in report.exercises
        ],
    }


# ---------------------------------------------------------------- self-check


def check(
    name: str, root: Path | None = None, timeout: float = CHECK_TIMEOUT
) -> tuple[Exercise, SandboxResult]:
    """Run exercise ``name``'s shipped tests on the copy ``root`` (default: this package's).

    Without the instructor's reference package the tests fall back to the copy's own
    forward passes for a backward's cache (their failure messages say so).
    """
    root = repo_root() if root is None else Path(root).resolve()
    catalogue = read_catalogue(root=root)
    exercise = select(catalogue.exercises, [name])[0]
    tests = [t for t in exercise.tests if (root / t.partition("::")[0]).is_file()]
    if not tests:
        raise CatalogueError(f"{name}: none of its test files is in {root}: {exercise.tests}")
    support = [s for s in catalogue.support if (root / s).is_file()]
    result = run_tests(root, tests, root, support=support, reference=None, timeout=timeout)
    return exercise, result


def _assertion_lines(details: str, limit: int = 15) -> list[str]:
    """The ``E`` lines of a pytest traceback (the assertion's message), without the prefix."""
    lines = [line[1:].strip() for line in details.splitlines() if line.startswith("E ")]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    return lines


def explain(exercise: Exercise, result: SandboxResult) -> str:
    """The self-check's report: a verdict, then each failing test with its assertion message."""
    passed, failed = _summary(result)
    if result.passed:
        return f"{exercise.name}: all {passed} tests pass ({result.seconds:.1f} s)"
    lines = [f"{exercise.name}: {failed} of {passed + failed} tests fail ({result.seconds:.1f} s)"]
    if result.problem:
        lines += ["", result.problem]
    stub = f"NotImplementedError: {exercise.name}:"
    if any(stub in t.details or stub in t.message for t in result.failures):
        lines += ["", f"Not implemented yet. To do: {exercise.todo}"]
    for test in result.failures[:_CHECK_SHOWN]:
        lines += ["", f"FAILED {test.nodeid}"]
        body = _assertion_lines(test.details) or [test.message or test.outcome]
        lines += ["    " + line for line in body]
        where = _RAISED_IN.findall(test.details)
        if where:
            path, line, function = where[-1]
            lines.append(f"    (raised in {function}, {path}:{line})")
    rest = result.failures[_CHECK_SHOWN:]
    if rest:
        lines += ["", f"{len(rest)} more failing tests:"]
        for test in rest:
            short = test.nodeid.rpartition("::")[2] or test.nodeid
            lines.append(f"    {short}: {test.message or test.outcome}"[:160])
    if result.problem and result.output.strip() and not result.tests:
        lines += ["", "output of the run:", result.output.strip()[-_OUTPUT_SHOWN:]]
    return "\n".join(lines)


# ---------------------------------------------------------------- command line


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


def _seconds(value: str) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {value}")
    return seconds


def grade_parser() -> argparse.ArgumentParser:
    """The options of ``python -m minialexnet.exercises grade``."""
    parser = argparse.ArgumentParser(
        prog="python -m minialexnet.exercises grade",
        description="Grade a student copy: each exercise's tests (fresh copies of the "
        "instructor's, hidden ones included) run on the student's code in a separate "
        "process with a time limit; an exercise scores its points when all its tests pass.",
    )
    parser.add_argument("student", type=Path, metavar="DIR", help="the student's copy")
    parser.add_argument("--only", type=_names, metavar="A,B", help="grade only these exercises")
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write Gradescope's results.json here"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds each exercise's tests may run (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--root", type=Path, help="the instructor's checkout (default: this one)")
    return parser


def check_parser() -> argparse.ArgumentParser:
    """The options of ``python -m minialexnet.exercises check``."""
    parser = argparse.ArgumentParser(
        prog="python -m minialexnet.exercises check",
        description="Inside a student copy: run an exercise's shipped tests on this copy's "
        "code and explain each failure.",
    )
    parser.add_argument("name", help="the exercise (python -m minialexnet.exercises list)")
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=CHECK_TIMEOUT,
        metavar="S",
        help=f"seconds the tests may run (default {CHECK_TIMEOUT:g})",
    )
    parser.add_argument("--root", type=Path, help="the student copy (default: this one)")
    return parser


def grade_main(args: Sequence[str] | argparse.Namespace) -> int:
    """``grade DIR [--only A,B] [--json FILE] [--timeout S] [--root ROOT]``; the exit status.

    Prints each exercise's score as it is done (stderr) and the table (stdout); 0 once
    graded, whatever the score; 2 for bad arguments.
    """
    if not isinstance(args, argparse.Namespace):
        args = grade_parser().parse_args(list(args))

    def progress(done: ExerciseGrade) -> None:
        print(f"  {done.name}: {done.score}/{done.max_score}", file=sys.stderr, flush=True)

    try:
        report = grade(
            getattr(args, "student", None) or args.dir,
            getattr(args, "only", None),
            getattr(args, "timeout", None) or DEFAULT_TIMEOUT,
            getattr(args, "root", None),
            progress=progress,
        )
    except (CatalogueError, FileNotFoundError, ValueError) as exc:
        print(f"grade: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    json_file = getattr(args, "json", None)
    if json_file:
        path = Path(json_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(to_gradescope(report), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0


def check_main(args: Sequence[str] | argparse.Namespace) -> int:
    """``check NAME [--timeout S] [--root COPY]``: 0 when the exercise's tests pass, else 1."""
    if not isinstance(args, argparse.Namespace):
        args = check_parser().parse_args(list(args))
    root = getattr(args, "root", None)
    timeout = getattr(args, "timeout", None) or CHECK_TIMEOUT
    try:  # a group name (``lrn``) checks each of its exercises in turn
        copy = repo_root() if root is None else Path(root).resolve()
        names = [ex.name for ex in select(read_catalogue(root=copy).exercises, [args.name])]
        results = [check(name, root, timeout) for name in names]
    except (CatalogueError, FileNotFoundError, ValueError) as exc:
        print(f"check: {exc}", file=sys.stderr)
        return 2
    print("\n\n".join(explain(exercise, result) for exercise, result in results))
    return 0 if all(result.passed for _, result in results) else 1
