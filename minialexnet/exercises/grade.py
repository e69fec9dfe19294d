"""Grade a student copy against the catalogue; check one exercise inside a student copy.

``grade(student, manifest=read_manifest("handout.release.json"))`` runs, for each
exercise the release handed out (:mod:`minialexnet.exercises.manifest`; every exercise
of the catalogue without one), that exercise's grading tests (shipped and hidden, fresh
copies from the instructor's checkout: never the student's) on the student's code, each
exercise in its own sandboxed pytest process with its own time limit
(:mod:`minialexnet.exercises.sandbox`). The graded code is a copy of the student's
package in which the loop versions of the released operations are stubs
(:mod:`minialexnet.exercises.loop_reference`), whatever the submission holds. The
tests draw their random inputs with the release's grading salt (:func:`release_salt`),
not the shipped inputs whose reference results the student copy holds. Each
exercise is scored by the catalogue's ``scoring`` (:mod:`minialexnet.exercises.scoring`);
its feedback names every failing test with its message. ``to_gradescope(report)`` is
Gradescope's ``results.json`` (:mod:`minialexnet.exercises.gradescope`).

``check(name)`` is the student's self-check: inside a student copy it runs the exercise's
shipped tests on the copy's own code and explains each failure (the test's assertion
message: which output or gradient, shapes, relative error).

The command line (``python -m minialexnet.exercises grade DIR --release MANIFEST`` and
``check NAME``) calls :func:`grade_main` and :func:`check_main`.
"""

from __future__ import annotations

import argparse
import csv
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
from .gradescope import VISIBILITIES
from .loop_reference import LEFT_OUT, stub_functions
from .manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    build_manifest,
    changes,
    grading_salt,
    read_manifest,
)
from .regions import strip_markers
from .sandbox import (
    DEFAULT_OUTPUT_LIMIT,
    PACKAGE,
    SandboxResult,
    TestOutcome,
    _copy_package,
    run_tests,
)
from .scoring import GradedTest, graded_tests, rounded, score

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
    "check_passed",
    "explain",
    "needs_left_out",
    "resolve_manifest",
    "release_salt",
    "find_manifest",
    "feedback",
    "grade_parser",
    "check_parser",
    "grade_main",
    "append_csv",
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
        score: by ``scoring``: ``max_score`` x the share of tests passed (rounded to 2
            decimals), or ``max_score`` when every test passed (else 0); 0 for a run
            that failed as a whole.
        passed, failed: counts of tests (errors count as failed; skipped ones in neither).
        reason: the first failure, one line ('' when every test passed).
        output: the feedback: counts, every failing test's name and message (hidden
            ones as ``a hidden test N``, never their code), the first tracebacks.
        seconds: how long the tests ran.
        tests: each test, labelled for the student (:class:`GradedTest`).
        scoring: ``proportional`` or ``all``.
        problem: why the run failed as a whole, when it did.
    """

    name: str
    title: str
    max_score: int
    score: float
    passed: int
    failed: int
    reason: str
    output: str
    seconds: float
    tests: tuple[GradedTest, ...] = ()
    scoring: str = "all"
    problem: str | None = None


def _points(value: float) -> str:
    """``10``, ``7.2``, ``6.67``: a score as people write it."""
    return f"{round(value, 2):g}"


@dataclass(frozen=True)
class GradeReport:
    """A student copy's grade: one :class:`ExerciseGrade` per exercise graded.

    ``manifest`` is the release graded (None: every exercise of the catalogue), and
    ``notes`` what the instructor should know about how it was graded (the copy's own
    manifest used, the catalogue changed since the release).
    """

    student: Path
    exercises: tuple[ExerciseGrade, ...]
    seconds: float = 0.0
    manifest: Manifest | None = None
    notes: tuple[str, ...] = ()

    @property
    def score(self) -> float:
        """Points earned."""
        return rounded(sum(e.score for e in self.exercises))

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
            if e.failed == 0 and not e.reason:
                note = f"ok: {e.passed} tests passed ({e.seconds:.1f} s)"
            elif e.passed and e.failed:
                note = f"{e.passed} of {e.passed + e.failed} passed; {e.reason}"
            else:
                note = e.reason
            room = max(20, width - name_w - 11)
            note = note if len(note) <= room else note[: room - 3] + "..."
            points = f"{_points(e.score)}/{e.max_score}"
            rows.append(f"{e.name:<{name_w}}  {points:>7}  {note}")
        rows.append(f"{'total':<{name_w}}  {f'{_points(self.score)}/{self.max_score}':>7}")
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


def _reason(tests: Sequence[GradedTest], result: SandboxResult) -> str:
    """One line: the run's problem, else the first failure's message and test ('' if none)."""
    failures = [t for t in tests if t.failed]
    if result.problem or not failures:
        return result.reason()
    first = failures[0]
    return f"{first.message or first.outcome} [{first.name}]"


def feedback(
    title: str,
    tests: Sequence[GradedTest],
    result_problem: str | None,
    seconds: float,
    *,
    output: str = "",
    hidden: bool | None = None,
    tracebacks: int = _FAILURES_SHOWN,
) -> str:
    """What the student sees for (part of) one exercise.

    The counts; the run's problem, if any; every failing test's name and one-line
    message (a hidden test's message only, as ``a hidden test N``); then the full
    tracebacks of the first ``tracebacks`` failing shipped tests. ``hidden``: only
    the hidden (True) or shipped (False) tests; None for all.
    """
    chosen = [t for t in tests if hidden is None or t.hidden == hidden]
    passed = sum(t.outcome == "passed" for t in chosen)
    failures = [t for t in chosen if t.failed]
    what = {None: "", True: " (hidden tests)", False: " (shipped tests)"}[hidden]
    lines = [f"{title}{what}: {passed} passed, {len(failures)} failed ({seconds:.1f} s)"]
    if result_problem:
        lines += ["", f"PROBLEM: {result_problem}"]
        if output.strip():
            head = output.strip()
            if len(head) > _OUTPUT_SHOWN:
                head = head[:_OUTPUT_SHOWN] + "\n[... cut]"
            lines += ["", "--- output of the run", head]
    if failures:
        lines += ["", "Failing tests:"]
        lines += [f"  {t.name}: {t.message or t.outcome}" for t in failures]
    shown = [t for t in failures if not t.hidden and t.details][:tracebacks]
    for test in shown:
        lines += ["", f"--- {test.nodeid} ({test.outcome})", test.details]
    rest = len([t for t in failures if not t.hidden]) - len(shown)
    if shown and rest > 0:
        lines += ["", f"(the tracebacks of {len(shown)} failing tests; {rest} more listed above)"]
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
    shown: Path | None = None,
    salt: int | None = None,
) -> ExerciseGrade:
    """Run one exercise's tests (shipped and hidden) from ``root`` on ``student``'s code.

    The tests run in the judge, the student's code in the confined worker
    (``isolate=True``). ``shown``: the folder that messages name as the student's
    (default ``student``; :func:`grade` passes the submission's folder, not its copy).
    ``salt``: the grading salt (:func:`release_salt`) the judge's tests draw their
    random inputs with (None: the shipped inputs).
    """
    result = run_tests(
        student,
        exercise.all_tests,
        root,
        support=support,
        reference=reference,
        timeout=timeout,
        output_limit=output_limit,
        env=env,
        isolate=True,
        shown=shown,
        salt=salt,
    )
    tests = graded_tests(exercise, result)
    passed, failed = _summary(result)
    return ExerciseGrade(
        name=exercise.name,
        title=exercise.title,
        max_score=exercise.points,
        score=score(exercise.points, exercise.scoring, tests, result.problem),
        passed=passed,
        failed=failed,
        reason=_reason(tests, result),
        output=feedback(
            exercise.title, tests, result.problem, result.seconds, output=result.output
        ),
        seconds=result.seconds,
        tests=tests,
        scoring=exercise.scoring,
        problem=result.problem,
    )


def _missing_package(exercise: Exercise, student: Path) -> ExerciseGrade:
    reason = (
        f"no {PACKAGE}/__init__.py in {student} (nor in a folder just below it): "
        "hand in the whole student copy"
    )
    return ExerciseGrade(
        exercise.name,
        exercise.title,
        exercise.points,
        0,
        0,
        0,
        reason,
        reason,
        0.0,
        scoring=exercise.scoring,
        problem=reason,
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


def _released_exercises(
    catalogue: Catalogue, manifest: Manifest, accept_changes: bool
) -> tuple[list[Exercise], list[str]]:
    """The catalogue's exercises that ``manifest`` handed out, and notes on changes.

    Raises :class:`ManifestError` when the checkout no longer grades what was released
    (tests, points or scoring changed) unless ``accept_changes``.
    """
    blocking, notes = changes(manifest, catalogue)
    where = f" ({manifest.path})" if manifest.path else ""
    gone = [n for n in manifest.names if n not in catalogue.names()]
    if gone:
        raise ManifestError(
            f"the release manifest{where} hands out {', '.join(gone)}, which the catalogue of "
            f"{catalogue.root} does not have: grade with the checkout the release came from"
        )
    if blocking and not accept_changes:
        raise ManifestError(
            f"the instructor's checkout {catalogue.root} no longer grades what the release"
            f"{where} handed out: {'; '.join(blocking)}. Grade with the checkout (the commit) "
            "the release came from, or pass --accept-changes to grade with the current "
            "tests, points and scoring anyway (after fixing a broken test, say)"
        )
    if blocking:
        notes = [f"graded with tests changed since the release: {'; '.join(blocking)}", *notes]
    released = set(manifest.names)
    return [ex for ex in catalogue.exercises if ex.name in released], notes


def release_salt(catalogue: Catalogue, manifest: Manifest | None) -> int:
    """The grading salt: from ``manifest``'s digest, else from the whole catalogue's.

    Grading draws the tests' random inputs with it (``exercise_support.generator``), so
    they are not the shipped tests' inputs, whose reference results a student copy holds
    (``tests/exercises/fixtures/reference_calls.npz``, for its self-check): a submission
    that looks its inputs up there fails. The same release always gets the same salt.
    Without a manifest: the digest a release of every exercise of the catalogue would have.
    """
    if manifest is None:
        manifest = build_manifest(catalogue, catalogue.exercises, created="")
    return grading_salt(manifest.digest)


def _without_loops(student: Path, root: Path, left_out: Sequence[str], work: Path) -> Path:
    """A copy of ``student``'s package whose loop versions ``left_out`` are stubs.

    The stubbed files are the instructor's (``root``), stubbed as ``release`` stubs them:
    a submission that pasted the loops back gains nothing. Returns the copy's folder.
    """
    target = work / "student"
    _copy_package(student, target)
    by_file: dict[str, dict[str, str]] = {}
    for spec in left_out:
        path, _, function = spec.partition("::")
        by_file.setdefault(path, {})[function] = (
            f"{function} {LEFT_OUT}: the exercise that asks for what it computes is graded "
            "on your own code"
        )
    for rel, messages in by_file.items():
        text = strip_markers((root / rel).read_text(encoding="utf-8"), rel)
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_text(stub_functions(text, messages, rel), encoding="utf-8")
    return target


def grade(
    student: Path,
    names: Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    root: Path | None = None,
    *,
    manifest: Manifest | None = None,
    accept_changes: bool = False,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    env: dict[str, str] | None = None,
    progress: Callable[[ExerciseGrade], None] | None = None,
    notes: Sequence[str] = (),
) -> GradeReport:
    """Grade the student copy ``student`` on the exercises a release handed out.

    Args:
        student: the student's copy (the folder holding ``minialexnet/``, or the folder
            just above it).
        names: exercises to grade, in any order (graded in catalogue order); None for
            all of the manifest's (all of the catalogue's without a manifest).
        timeout: seconds each exercise's tests may run.
        root: the instructor's checkout (default: the one this package lives in).
        manifest: the release to grade (:func:`~minialexnet.exercises.manifest.read_manifest`):
            its exercises, checked against the checkout's catalogue and tests.
        accept_changes: grade even when the checkout's tests, points or scoring changed
            since the manifest's release (a note in the report says so).
        output_limit: bytes of each run's output kept.
        env: extra environment variables for the test processes.
        progress: called with each :class:`ExerciseGrade` as it is done (or None).
        notes: more notes for the report (how the manifest was chosen).

    Returns:
        The :class:`GradeReport`.

    Raises:
        FileNotFoundError: ``student`` is not a folder.
        ValueError: ``timeout`` is not positive.
        CatalogueError: unknown exercise names (the message lists the known ones), or
            ``root`` is not an instructor's checkout.
        ManifestError: the checkout no longer grades what ``manifest`` released.
    """
    student = Path(student)
    if not student.is_dir():
        raise FileNotFoundError(f"grade: {student} is not a folder (the student's copy)")
    if timeout <= 0:
        raise ValueError(f"grade: timeout must be > 0 seconds, got {timeout!r}")
    root = repo_root() if root is None else Path(root).resolve()
    catalogue = _instructor_catalogue(root)
    notes = list(notes)
    if manifest is not None:
        pool, more = _released_exercises(catalogue, manifest, accept_changes)
        notes += more
    else:
        pool = list(catalogue.exercises)
    try:
        exercises = select(pool, None if names is None else list(names))
    except CatalogueError as exc:
        if manifest is None:
            raise
        raise CatalogueError(f"{exc}: the release hands out only those") from None
    if manifest is not None:
        chosen = {ex.name for ex in exercises}
        left_out = [s for r in manifest.exercises if r.name in chosen for s in r.left_out]
    else:
        left_out = [s for ex in exercises for s in ex.left_out]
    student = find_package_root(student).resolve()
    has_package = (student / PACKAGE / "__init__.py").is_file()
    salt = release_salt(catalogue, manifest)
    start = time.monotonic()
    grades = []
    # the judge imports the instructor's package from ``root`` itself (``ref``): no
    # reference copy is needed any more
    with tempfile.TemporaryDirectory(prefix="minialexnet-graded-") as graded_copy:
        graded = student
        if has_package and left_out:
            graded = _without_loops(student, root, left_out, Path(graded_copy))
        for exercise in exercises:
            if not has_package:
                done = _missing_package(exercise, student)
            else:
                done = grade_exercise(
                    graded,
                    exercise,
                    root,
                    reference=None,
                    support=catalogue.support,
                    timeout=timeout,
                    output_limit=output_limit,
                    env=env,
                    shown=student,
                    salt=salt,
                )
            grades.append(done)
            if progress is not None:
                progress(done)
    return GradeReport(student, tuple(grades), time.monotonic() - start, manifest, tuple(notes))


def to_gradescope(
    report: GradeReport, hidden_visibility: str = "after_published"
) -> dict[str, Any]:
    """Gradescope's ``results.json`` for ``report`` (:mod:`minialexnet.exercises.gradescope`)."""
    from .gradescope import results_json

    return results_json(report, hidden_visibility=hidden_visibility)


def find_manifest(student: Path) -> Path | None:
    """The student copy's own ``release.json`` (in ``student`` or the copy found below it)."""
    for folder in (find_package_root(Path(student)), Path(student)):
        if (folder / MANIFEST_NAME).is_file():
            return folder / MANIFEST_NAME
    return None


# ---------------------------------------------------------------- self-check


def check(
    name: str, root: Path | None = None, timeout: float = CHECK_TIMEOUT
) -> tuple[Exercise, SandboxResult]:
    """Run exercise ``name``'s shipped tests on the copy ``root`` (default: this package's).

    A self-check, not a grade: the tests and the copy's package run in one process
    (``isolate=False``). Reference values and caches are the ones ``release`` recorded
    into the copy (``tests/exercises/fixtures``, :mod:`minialexnet.exercises.fixtures`),
    so a backward is checked before its forward works; a call that was not recorded
    runs the copy's own code (the failure message says so).
    """
    root = repo_root() if root is None else Path(root).resolve()
    catalogue = read_catalogue(root=root)
    exercise = select(catalogue.exercises, [name])[0]
    tests = [t for t in exercise.tests if (root / t.partition("::")[0]).is_file()]
    if not tests:
        raise CatalogueError(f"{name}: none of its test files is in {root}: {exercise.tests}")
    support = [s for s in catalogue.support if (root / s).is_file()]
    result = run_tests(
        root, tests, root, support=support, reference=None, timeout=timeout, isolate=False
    )
    return exercise, result


def _assertion_lines(details: str, limit: int = 15) -> list[str]:
    """The ``E`` lines of a pytest traceback (the assertion's message), without the prefix."""
    lines = [line[1:].strip() for line in details.splitlines() if line.startswith("E ")]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    return lines


def needs_left_out(test: TestOutcome) -> bool:
    """The test failed only because it compares with a loop version this copy leaves out.

    Its failure raised a left-out stub's message, and no frame of the package other than
    ``functional/reference.py`` is in the traceback (so the test called the loop
    version itself: code of the student's that calls one is a real failure).
    """
    if test.ok or LEFT_OUT not in test.message + test.details:
        return False
    frames = [path for path, _, _ in _RAISED_IN.findall(test.details)]
    return all(path.endswith("functional/reference.py") for path in frames)


def check_passed(result: SandboxResult) -> bool:
    """No problem, a test passed, and every failure is one that :func:`needs_left_out`."""
    if result.passed:
        return True
    passed, _ = _summary(result)
    return not result.problem and passed > 0 and all(needs_left_out(t) for t in result.failures)


def explain(exercise: Exercise, result: SandboxResult) -> str:
    """The self-check's report: a verdict, then each failing test with its assertion message.

    Tests that need a loop version this copy leaves out (:func:`needs_left_out`) are not
    failures here: they are counted as not checked, and the grader runs them.
    """
    passed, _ = _summary(result)
    unchecked = [t for t in result.failures if needs_left_out(t)]
    failures = [t for t in result.failures if not needs_left_out(t)]
    note = ""
    if unchecked:
        note = (
            f"; {len(unchecked)} not checked here: they compare with a loop version left "
            "out of this copy, and the grader runs them with its own"
        )
    if result.passed or check_passed(result):
        return f"{exercise.name}: all {passed} tests pass ({result.seconds:.1f} s){note}"
    if unchecked and not failures and not passed and not result.problem:
        return (
            f"{exercise.name}: none of its {len(unchecked)} tests can run in this copy: they "
            "compare with loop versions left out of it, and only the grader, which has its "
            "own, runs them"
        )
    total = passed + len(failures)
    lines = [
        f"{exercise.name}: {len(failures)} of {total} tests fail ({result.seconds:.1f} s){note}"
    ]
    if result.problem:
        lines += ["", result.problem]
    stub = f"NotImplementedError: {exercise.name}:"
    if any(stub in t.details or stub in t.message for t in failures):
        lines += ["", f"Not implemented yet. To do: {exercise.todo}"]
    for test in failures[:_CHECK_SHOWN]:
        lines += ["", f"FAILED {test.nodeid}"]
        body = _assertion_lines(test.details) or [test.message or test.outcome]
        lines += ["    " + line for line in body]
        where = _RAISED_IN.findall(test.details)
        if where:
            path, line, function = where[-1]
            lines.append(f"    (raised in {function}, {path}:{line})")
    rest = failures[_CHECK_SHOWN:]
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
        description="Grade a student copy on the exercises its release handed out: each "
        "exercise's tests (fresh copies of the instructor's, hidden ones included) run on "
        "the student's code in a separate process with a time limit, and score its points "
        "by the catalogue's scoring (proportional: the share of tests passed; all: all or "
        "nothing).",
    )
    parser.add_argument("student", type=Path, metavar="DIR", help="the student's copy")
    parser.add_argument(
        "--release",
        type=Path,
        metavar="MANIFEST",
        help="the release manifest that `release` wrote beside the copy (OUT.release.json): "
        "grade exactly its exercises. Without it: the copy's own release.json (a student "
        "can edit it; the grade says so), else every exercise of the catalogue",
    )
    parser.add_argument(
        "--accept-changes",
        action="store_true",
        help="grade even when the checkout's tests, points or scoring changed since the release",
    )
    parser.add_argument("--only", type=_names, metavar="A,B", help="grade only these exercises")
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write Gradescope's results.json here"
    )
    parser.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="append a row (the submission, its score, each exercise's) to this CSV file, "
        "writing its header first when the file is new: one file for a class",
    )
    parser.add_argument(
        "--hidden-visibility",
        choices=VISIBILITIES,
        default="after_published",
        help="Gradescope visibility of the hidden tests' messages (default after_published)",
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


def resolve_manifest(student: Path, release: Path | None) -> tuple[Manifest | None, list[str]]:
    """The manifest to grade ``student`` with, and notes on where it came from.

    ``release`` (the instructor's file) when given; else the copy's own ``release.json``
    (with a note: the student could have edited it); else None (every exercise).

    Raises:
        ManifestError: ``release`` or the copy's manifest is missing or invalid.
    """
    own = find_manifest(student) if Path(student).is_dir() else None
    if release is not None:
        manifest = read_manifest(release)
        notes = []
        if own is not None:
            try:
                theirs = read_manifest(own)
            except ManifestError:
                theirs = None
            if theirs is None or theirs.digest != manifest.digest:
                notes.append(
                    f"the copy's own {own} differs from {release} (another release, or "
                    "edited): graded with yours"
                )
        return manifest, notes
    if own is not None:
        try:
            manifest = read_manifest(own)
        except ManifestError as exc:
            raise ManifestError(
                f"{exc} (this is the student copy's own manifest; pass --release with yours)"
            ) from None
        return manifest, [
            f"graded with the student copy's own manifest {own}, which the student could "
            "have edited; pass --release DIR.release.json (written beside the copy by "
            "`release`) to grade with yours"
        ]
    return None, [
        "no release manifest (no --release, no release.json in the copy): graded every "
        "exercise of the catalogue; pass --release DIR.release.json to grade what was "
        "handed out"
    ]


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


def append_csv(report: GradeReport, path: Path, submission: Path) -> None:
    """Append ``report`` as one row of the CSV file ``path`` (header first when it is new).

    Columns: ``submission`` (the folder's name), ``score``, ``max_score``, one per
    exercise graded (its score), and ``notes``. A file whose header names other
    exercises is refused (``ValueError``): grade one release into one file.
    """
    header = ["submission", "score", "max_score", *(e.name for e in report.exercises), "notes"]
    row = [
        Path(submission).name or str(submission),
        _points(report.score),
        str(report.max_score),
        *(_points(e.score) for e in report.exercises),
        " | ".join(report.notes),
    ]
    exists = path.is_file() and path.stat().st_size > 0
    if exists:
        with path.open(newline="", encoding="utf-8") as handle:
            first = next(csv.reader(handle), [])
        if first != header:
            raise ValueError(
                f"{path} has the columns {first}, not {header}: grade another release "
                "into another file"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if not exists:
            writer.writerow(header)
        writer.writerow(row)


def grade_main(args: Sequence[str] | argparse.Namespace) -> int:
    """``grade DIR [--release MANIFEST] [--only A,B] [--json FILE] ...``; the exit status.

    Prints each exercise's score as it is done and the notes (stderr), then the table
    (stdout); 0 once graded, whatever the score; 2 for bad arguments, a missing or
    invalid manifest, or a checkout that no longer grades what was released.
    """
    if not isinstance(args, argparse.Namespace):
        args = grade_parser().parse_args(list(args))

    def progress(done: ExerciseGrade) -> None:
        print(f"  {done.name}: {_points(done.score)}/{done.max_score}", file=sys.stderr, flush=True)

    student = getattr(args, "student", None) or args.dir
    try:
        manifest, notes = resolve_manifest(student, getattr(args, "release", None))
        for note in notes:
            print(f"grade: note: {note}", file=sys.stderr)
        report = grade(
            student,
            getattr(args, "only", None),
            getattr(args, "timeout", None) or DEFAULT_TIMEOUT,
            getattr(args, "root", None),
            manifest=manifest,
            accept_changes=bool(getattr(args, "accept_changes", False)),
            progress=progress,
            notes=notes,
        )
    except (CatalogueError, FileNotFoundError, ValueError) as exc:
        print(f"grade: {exc}", file=sys.stderr)
        return 2
    for note in report.notes[len(notes) :]:
        print(f"grade: note: {note}", file=sys.stderr)
    print(report.table())
    csv_file = getattr(args, "csv", None)
    if csv_file:
        try:
            append_csv(report, Path(csv_file), Path(student))
        except (OSError, ValueError) as exc:
            print(f"grade: {exc}", file=sys.stderr)
            return 2
        print(f"added {student} to {csv_file}", file=sys.stderr)
    json_file = getattr(args, "json", None)
    if json_file:
        path = Path(json_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        visibility = getattr(args, "hidden_visibility", None) or "after_published"
        data = to_gradescope(report, hidden_visibility=visibility)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
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
    return 0 if all(check_passed(result) for _, result in results) else 1
