"""Gradescope's ``results.json`` for a :class:`~minialexnet.exercises.grade.GradeReport`.

The format is Gradescope's autograder specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/)::

    {"score": 17.2, "execution_time": 9.1, "output": "...", "visibility": "visible",
     "stdout_visibility": "hidden", "extra_data": {...},
     "tests": [{"score", "max_score", "status", "name", "number", "output", "tags",
                "visibility"}, ...]}

Per exercise, one entry named after the exercise, ``visible``, that carries its
``score`` and ``max_score`` (the points) and whose output covers the shipped tests:
the counts, every failing test's name and one-line message, the first tracebacks, and
how many hidden tests failed. Per exercise with hidden tests, a second entry,
``<name>: hidden tests``, with ``max_score`` 0 (its points are in the first), whose
output names each failing hidden test as ``a hidden test N`` with its one-line message
(never its code) and whose visibility is ``after_published`` by default: students do not
probe the hidden tests submission by submission, and see their messages once grades are
published. ``score`` is the total, so Gradescope uses it as it is; the top level also
has ``max_score`` (the points handed out) and, in ``extra_data``, the release graded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .grade import ExerciseGrade, GradeReport

__all__ = ["VISIBILITIES", "results_json"]

VISIBILITIES = ("visible", "after_published", "after_due_date", "hidden")
"""Gradescope's visibility settings for a test entry."""


def _exercise_entries(e: ExerciseGrade, number: int, hidden_visibility: str) -> list[dict]:
    from .grade import feedback

    status = "passed" if e.score == e.max_score and e.max_score else "failed"
    if e.max_score == 0:
        status = "passed" if e.failed == 0 and not e.problem else "failed"
    hidden = [t for t in e.tests if t.hidden]
    failures = [t for t in hidden if t.failed]
    if not e.tests:  # the run reported no test (a problem), or an old-style grade
        output = e.output
    else:
        output = feedback(e.title, e.tests, e.problem, e.seconds, hidden=False if hidden else None)
        if hidden:
            output += f"\n\nHidden tests: {len(hidden) - len(failures)} of {len(hidden)} passed"
        if failures:
            output += (
                f"; the messages of the {len(failures)} that failed are under "
                f"'{e.name}: hidden tests'"
            )
            if hidden_visibility != "visible":
                output += " once grades are published"
    scoring = "share of tests passed" if e.scoring == "proportional" else "all tests must pass"
    entries = [
        {
            "name": f"{e.name}: {e.title}",
            "number": f"{number}.1",
            "score": e.score,
            "max_score": e.max_score,
            "status": status,
            "output": f"{output}\n\nScoring: {scoring}.",
            "tags": [e.name],
            "visibility": "visible",
        }
    ]
    if hidden:
        lines = [f"{e.name} (hidden tests): {len(hidden) - len(failures)} of {len(hidden)} passed"]
        lines += [f"  {t.name}: {t.message or t.outcome}" for t in failures]
        entries.append(
            {
                "name": f"{e.name}: hidden tests",
                "number": f"{number}.2",
                "score": 0,
                "max_score": 0,
                "status": "failed" if failures else "passed",
                "output": "\n".join(lines),
                "tags": [e.name, "hidden"],
                "visibility": hidden_visibility,
            }
        )
    return entries


def _summary(report: GradeReport) -> str:
    """The top-level output: the total and each exercise's points and counts (no messages:
    a hidden test's would show before the hidden entries' visibility allows)."""
    width = max([len("total"), *(len(e.name) for e in report.exercises)])
    lines = [f"{report.score:g}/{report.max_score} points", ""]
    for e in report.exercises:
        points = f"{e.score:g}/{e.max_score}"
        if e.problem:
            how = "the run failed: see its entry"
        else:
            how = f"{e.passed} of {e.passed + e.failed} tests passed"
        lines.append(f"{e.name:<{width}}  {points:>8}  {how}")
    return "\n".join(lines)


def results_json(report: GradeReport, hidden_visibility: str = "after_published") -> dict[str, Any]:
    """The ``results.json`` dictionary for ``report`` (see the module's docstring).

    Args:
        report: the grade.
        hidden_visibility: the visibility of the hidden tests' entries (one of
            :data:`VISIBILITIES`).
    """
    if hidden_visibility not in VISIBILITIES:
        raise ValueError(
            f"hidden_visibility must be one of {list(VISIBILITIES)}, got {hidden_visibility!r}"
        )
    tests: list[dict] = []
    for number, e in enumerate(report.exercises, start=1):
        tests += _exercise_entries(e, number, hidden_visibility)
    extra: dict[str, Any] = {"max_score": report.max_score}
    if report.manifest is not None:
        extra["release"] = {
            "digest": report.manifest.digest,
            "created": report.manifest.created,
            "exercises": report.manifest.names,
        }
    if report.notes:
        extra["notes"] = list(report.notes)
    return {
        "score": report.score,
        "max_score": report.max_score,
        "execution_time": round(report.seconds, 1),
        "output": _summary(report),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": extra,
        "tests": tests,
    }
