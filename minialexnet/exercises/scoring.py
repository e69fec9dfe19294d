"""Scores and what each graded test shows the student.

An exercise is scored from its tests' outcomes by the catalogue's ``scoring``:

* ``"proportional"``: ``points x passed / (passed + failed)``, rounded to 2 decimals
  (skipped tests count in neither);
* ``"all"``: ``points`` when every test passed, else 0.

Either way a run that failed as a whole (time limit, a crash, a package that does not
import: :attr:`SandboxResult.problem`) or in which no test passed scores 0.

A :class:`GradedTest` is one test as the student may see it: its name, or ``a hidden
test N`` for the exercise's N-th hidden test (its message is shown, never its code).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .catalogue import Exercise
from .sandbox import SandboxResult, TestOutcome

__all__ = ["GradedTest", "graded_tests", "is_hidden", "score"]


@dataclass(frozen=True)
class GradedTest:
    """One test of an exercise's run, labelled for the student.

    Attributes:
        name: ``test_x[case]`` (the test's name, without its file), or ``a hidden test N``.
        hidden: the test comes from one of the exercise's hidden files.
        outcome: ``passed``, ``failed``, ``error`` or ``skipped``.
        message: the failure's one-line message ('' when passed).
        details: the traceback ('' for a hidden test: its code is not shown).
        nodeid: pytest's id (for the instructor; it names a hidden test's file).
    """

    name: str
    hidden: bool
    outcome: str
    message: str = ""
    details: str = ""
    nodeid: str = ""

    @property
    def failed(self) -> bool:
        """The test failed or errored."""
        return self.outcome in ("failed", "error")


def is_hidden(exercise: Exercise, test: TestOutcome) -> bool:
    """The test comes from one of the exercise's hidden files (its code is not shown)."""
    path = test.nodeid.partition("::")[0]
    dotted = path.removesuffix(".py").replace("/", ".")
    for hidden in exercise.hidden:
        rel = hidden.partition("::")[0]
        if path == rel or dotted == rel.removesuffix(".py").replace("/", "."):
            return True
    return False


def graded_tests(exercise: Exercise, result: SandboxResult) -> tuple[GradedTest, ...]:
    """The run's tests in order, hidden ones numbered ``a hidden test 1, 2, ...``."""
    tests, hidden = [], 0
    for test in result.tests:
        if is_hidden(exercise, test):
            hidden += 1
            label = f"a hidden test {hidden}"
            tests.append(GradedTest(label, True, test.outcome, test.message, "", test.nodeid))
        else:
            name = test.nodeid.rpartition("::")[2] or test.nodeid
            tests.append(
                GradedTest(name, False, test.outcome, test.message, test.details, test.nodeid)
            )
    return tuple(tests)


def score(points: int, scoring: str, tests: Sequence[GradedTest], problem: str | None) -> float:
    """The exercise's score from its tests' outcomes (see the module's docstring)."""
    passed = sum(t.outcome == "passed" for t in tests)
    failed = sum(t.failed for t in tests)
    if problem or passed == 0:
        return 0
    if scoring == "all":
        return points if failed == 0 else 0
    if scoring != "proportional":
        raise ValueError(f"unknown scoring {scoring!r}; expected 'proportional' or 'all'")
    return rounded(points * passed / (passed + failed))


def rounded(value: float) -> float:
    """``value`` to 2 decimals, an ``int`` when whole (``10``, not ``10.0``)."""
    value = round(value, 2)
    return int(value) if value == int(value) else value
