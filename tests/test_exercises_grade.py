"""Grading student copies: the sandboxed runner (on a toy package) and the grader (on releases).

The first part runs :func:`minialexnet.exercises.sandbox.run_tests` on a toy ``minialexnet``
built in ``tmp_path`` (each run about a second): per-test results, the judge's own
(instructor's) package, a package that is not the student's, an exception or an endless
loop at import, a hang (everything the worker started is killed), a flood of output, a
crash. The attacks on the grader are in ``tests/test_exercises_isolation.py``.
The second part releases the real package and grades it, with the planted mistakes of
the issue.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import textwrap
import time
from pathlib import Path

import pytest
from helpers import process_gone

from minialexnet.exercises import CatalogueError, read_catalogue, release, repo_root
from minialexnet.exercises.__main__ import main as exercises_main
from minialexnet.exercises.grade import (
    ExerciseGrade,
    GradeReport,
    check,
    explain,
    find_package_root,
    grade,
    to_gradescope,
)
from minialexnet.exercises.sandbox import copy_reference_package, run_tests
from minialexnet.exercises.scoring import GradedTest, score

# -------------------------------------------------------------------------- the toy package

TOY_TESTS = """
import importlib
import sys

from helpers import FIVE


def student():
    # what tests/exercises/exercise_support.student_module does: the worker's proxy
    client = getattr(sys.modules.get("_minialexnet_sandbox_plugin"), "CLIENT", None)
    return client.module("minialexnet") if client else importlib.import_module("minialexnet")


def test_add(offset):
    assert student().add(2, 3 + offset) == FIVE, "add(2, 3) should be 5"


class TestReference:
    def test_reference_is_the_instructors(self):
        import minialexnet  # in the judge: the instructor's package, never the student's

        assert "student" not in minialexnet.__file__
        assert minialexnet.add(2, 3) == 5
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def toy(tmp_path: Path) -> dict[str, Path]:
    """An instructor checkout (root), its reference copy, and a student folder to fill."""
    root = tmp_path / "instructor"
    _write(root / "minialexnet" / "__init__.py", "def add(a, b):\n    return a + b\n")
    _write(root / "tests" / "helpers.py", "FIVE = 5\n")
    _write(root / "tests" / "conftest.py", "")  # puts tests/ on sys.path (for helpers)
    _write(
        root / "tests" / "exercises" / "conftest.py",
        "import pytest\n\n\n@pytest.fixture\ndef offset():\n    return 0\n",
    )
    _write(root / "tests" / "exercises" / "test_add.py", TOY_TESTS)
    reference = tmp_path / "reference"
    copy_reference_package(root, reference)
    student = tmp_path / "student"
    student.mkdir()
    return {"root": root, "reference": reference, "student": student}


def _student(toy: dict[str, Path], init: str) -> Path:
    _write(toy["student"] / "minialexnet" / "__init__.py", init)
    return toy["student"]


def _run(toy: dict[str, Path], timeout: float = 30.0, **kwargs):
    return run_tests(
        toy["student"],
        ["tests/exercises/test_add.py"],
        toy["root"],
        reference=toy["reference"],
        timeout=timeout,
        **kwargs,
    )


def test_sandbox_reports_each_test(toy):
    _student(toy, "def add(a, b):\n    return a - b\n")
    result = _run(toy)
    assert result.problem is None and not result.timed_out and result.returncode == 1
    outcomes = {t.nodeid: t for t in result.tests}
    assert sorted(outcomes) == [
        "tests/exercises/test_add.py::TestReference::test_reference_is_the_instructors",
        "tests/exercises/test_add.py::test_add",
    ]
    failed = outcomes["tests/exercises/test_add.py::test_add"]
    assert failed.outcome == "failed" and "add(2, 3) should be 5" in failed.message
    assert "assert -1 == 5" in failed.details
    assert not result.passed
    assert result.reason().startswith("tests/exercises/test_add.py::test_add: AssertionError")

    _student(toy, "def add(a, b):\n    return b + a\n")
    result = _run(toy)
    assert result.passed and result.reason() == "" and result.returncode == 0


def test_sandbox_uses_the_instructors_tests_and_reference_not_the_students(toy):
    student = _student(toy, "def add(a, b):\n    return 0\n")
    # the student's own copies of the tests, the helpers and the reference all say "pass"
    _write(student / "tests" / "exercises" / "test_add.py", "def test_add():\n    pass\n")
    _write(student / "tests" / "helpers.py", "FIVE = 0\n")
    _write(student / "minialexnet_reference" / "__init__.py", "def add(a, b):\n    return 5\n")
    # a stray module beside the package shadows nothing: only the package is on the path
    _write(student / "random.py", "raise RuntimeError('a scratch file called random.py')\n")
    result = _run(toy)
    assert [t.outcome for t in result.tests] == ["failed", "passed"]
    assert not (student / "minialexnet" / "__pycache__").exists()  # the run used a copy


def test_sandbox_refuses_a_package_that_is_not_the_students(toy):
    # the student's folder has no minialexnet: the installed one must not be graded instead
    result = _run(toy)
    assert result.problem is not None and "no minialexnet package" in result.problem
    assert not result.passed and all(t.outcome == "error" for t in result.tests)


def test_sandbox_exception_at_import(toy):
    _student(toy, "raise RuntimeError('boom at import')\n")
    result = _run(toy)
    assert not result.passed and not result.timed_out
    assert "RuntimeError: boom at import" in result.problem
    assert "importing the student's minialexnet failed" in result.problem


def _gone(pid: int, within: float = 5.0) -> bool:
    return process_gone(pid, within)


@pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")
def test_sandbox_time_limit_kills_everything_the_worker_started(toy, tmp_path):
    _student(
        toy,
        """
        import subprocess, sys


        def add(a, b):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            sys.stderr.write(f"CHILD {child.pid}\\n")
            sys.stderr.flush()
            while True:
                pass
        """,
    )
    start = time.monotonic()
    result = _run(toy, timeout=3)
    assert time.monotonic() - start < 3 + 10
    assert result.timed_out and result.returncode is None and not result.passed
    assert "time limit of 3 s reached in tests/exercises/test_add.py::test_add" in result.problem
    pid = int(result.worker_output.split("CHILD ")[1].split()[0])
    assert _gone(pid), "the student's own child process survived the kill"


def test_sandbox_endless_loop_at_import(toy):
    _student(toy, "while True:\n    pass\n")
    result = _run(toy, timeout=2)
    assert result.timed_out and "while importing minialexnet" in result.problem


def test_sandbox_keeps_only_the_head_of_a_flood_of_output(toy):
    _student(
        toy,
        """
        import sys


        def add(a, b):
            for _ in range(200):
                sys.stdout.write("x" * 50_000 + "\\n")
            return a + b
        """,
    )
    result = _run(toy, output_limit=4096)
    assert result.passed
    # the worker's output is kept apart from the judge's (and never shown in a grade)
    assert result.worker_output_bytes > 10_000_000 and "x" * 100 not in result.output
    assert len(result.worker_output) <= 4096


def test_sandbox_crash_is_a_problem(toy):
    _student(toy, "import os\n\n\ndef add(a, b):\n    os._exit(3)\n")
    result = _run(toy)
    # the worker died: the test that was running fails, the judge reports it
    assert not result.passed and result.problem is None
    failed = {t.nodeid.rpartition("::")[2]: t for t in result.failures}
    assert "the process running the student's code ended" in failed["test_add"].message


def test_sandbox_checks_its_arguments(toy):
    with pytest.raises(FileNotFoundError, match="not found"):
        run_tests(toy["student"], ["tests/exercises/test_missing.py"], toy["root"])
    with pytest.raises(FileNotFoundError, match="not found"):
        run_tests(toy["student"], ["../outside.py"], toy["root"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_tests(toy["root"] / "nope", ["tests/exercises/test_add.py"], toy["root"])
    with pytest.raises(FileNotFoundError, match="no minialexnet package"):
        copy_reference_package(toy["student"], toy["student"])


def test_sandbox_runs_a_single_node(toy):
    _student(toy, "def add(a, b):\n    return a - b\n")
    result = run_tests(
        toy["student"],
        ["tests/exercises/test_add.py::TestReference"],
        toy["root"],
        reference=toy["reference"],
    )
    assert result.passed and len(result.tests) == 1


# -------------------------------------------------------------------------- grading releases

HANDED_OUT = [
    "conv2d_backward",
    "lrn_forward",
    "maxpool2d_backward",
    "sgd_momentum",
    "tower_exchange",
]
LOOP_TIMEOUT = 6.0  # seconds: the limit in the tests of endless loops (a run takes ~2 s)


@pytest.fixture(scope="module")
def root() -> Path:
    return repo_root()


@pytest.fixture(scope="module")
def handout(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh release of HANDED_OUT (read-only for the tests: copy it to change it)."""
    return release(HANDED_OUT, tmp_path_factory.mktemp("handout") / "copy", root)


@pytest.fixture(scope="module")
def solved(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release of dropout only: every other exercise keeps its reference code (copy it)."""
    return release(["dropout"], tmp_path_factory.mktemp("solved") / "copy", root)


def _copy(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _plant(student: Path, rel: str, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in the student's ``rel`` by ``new``."""
    path = student / rel
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not exactly once in {rel}"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.slow
def test_the_reference_scores_full_marks(root):
    names = [ex.name for ex in read_catalogue(root=root).exercises]
    report = grade(root, root=root)
    assert [e.name for e in report.exercises] == names
    assert report.score == report.max_score == sum(e.max_score for e in report.exercises)
    for e in report.exercises:
        assert e.score == e.max_score and e.failed == 0 and e.passed > 0 and e.reason == "", e
    assert "total" in report.table() and f"{report.score}/{report.max_score}" in report.table()


def _student_facing(text: str) -> None:
    """``text`` shows the student's own exceptions and no folder of the grader's."""
    assert "StudentError" not in text, text[:2000]
    for internal in ("minialexnet-worker-", "minialexnet-graded-", "minialexnet-judge-"):
        assert internal not in text, text[:2000]
    assert "minialexnet/exercises/remote.py" not in text, text[:2000]


@pytest.mark.slow
def test_a_fresh_release_scores_zero_for_the_handed_out_exercises_only(root, handout):
    report = grade(handout, root=root)  # no manifest: every exercise of the catalogue
    assert len(report.exercises) == len(read_catalogue(root=root).exercises)
    for e in report.exercises:
        if e.name in HANDED_OUT:
            assert e.score == 0 and e.passed == 0 and e.failed > 0, e
            # the student's own exception, without the grader's wrapper around it
            assert f"NotImplementedError: {e.name}:" in e.output, e.output
            assert e.reason.startswith(f"NotImplementedError: {e.name}:"), e.reason
            assert all(t.message.startswith("NotImplementedError: ") for t in e.tests), e
            _student_facing(e.output + e.reason + "".join(t.details for t in e.tests))
        else:
            assert e.score == e.max_score and e.failed == 0, e.output
    assert report.score == report.max_score - sum(report[n].max_score for n in HANDED_OUT)
    table = report.table()
    row = next(line for line in table.splitlines() if line.startswith("lrn_forward "))
    assert row.split()[1:4] == ["0/10", "NotImplementedError:", "lrn_forward:"], row
    _student_facing(table)
    results = to_gradescope(report)
    _student_facing(json.dumps(results))


@pytest.mark.slow
def test_a_blank_handout_graded_as_release_says_scores_zero_of_the_points_handed_out(
    root, tmp_path, capsys
):
    """The issue's 50/100: `release` prints the grade command; it grades what was handed out."""
    only = ["lrn_forward", "maxpool2d_backward", "sgd_momentum"]
    out = tmp_path / "handout"
    assert exercises_main(["release", "--only", ",".join(only), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    handed_out = sum(read_catalogue(root=root).get(n).points for n in only)
    assert f"handed out ({handed_out} points)" in printed
    line = next(x for x in printed.splitlines() if "minialexnet.exercises grade DIR" in x)
    command = shlex.split(line.replace("DIR", shlex.quote(str(out))))
    assert command[:3] == ["python", "-m", "minialexnet.exercises"]
    results = tmp_path / "results.json"
    assert exercises_main([*command[3:], "--json", str(results)]) == 0
    captured = capsys.readouterr()
    assert captured.out.rstrip().splitlines()[-1].split() == ["total", f"0/{handed_out}"]
    assert [row.split()[0] for row in captured.out.splitlines()[1:-1]] == only
    data = json.loads(results.read_text())
    assert (data["score"], data["max_score"]) == (0, handed_out)
    assert data["extra_data"]["release"]["exercises"] == only
    assert sum(t["max_score"] for t in data["tests"]) == handed_out
    assert all(t["score"] == 0 and t["status"] == "failed" for t in data["tests"])
    _student_facing(json.dumps(data) + captured.out)


PLANTED = [
    pytest.param(
        "minialexnet/functional/lrn.py",
        "_zero_padded(x, n // 2, (n - 1) // 2)",
        "_zero_padded(x, n // 2, (n - 1) // 2 + 1)",
        "lrn_forward",
        ["lrn_backward"],
        id="lrn-window-off-by-one",
    ),
    pytest.param(
        "minialexnet/functional/conv.py",
        "bb : bb + ow] += col[:, i, j]",
        "bb : bb + ow] = col[:, i, j]",
        "conv2d_backward",
        ["conv2d_forward"],
        id="col2im-overwrites",
    ),
    pytest.param(
        "minialexnet/functional/pool.py",
        "xp.multiply(dout, code == i * kw + j, out=routed)",
        "routed[...] = dout",
        "maxpool2d_backward",
        ["maxpool2d_forward"],
        id="maxpool-backward-to-the-whole-window",
    ),
    pytest.param(
        "minialexnet/optim.py",
        "v -= lr * grad",
        "v += lr * grad",
        "sgd_momentum",
        ["tower_exchange"],
        id="momentum-update-gradient-sign",
    ),
    pytest.param(
        "minialexnet/optim.py",
        "v *= momentum",
        "v *= -momentum",
        "sgd_momentum",
        ["softmax_cross_entropy"],
        id="momentum-update-momentum-sign",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("rel, old, new, broken, intact", PLANTED)
def test_a_planted_mistake_loses_exactly_that_exercises_points(
    root, solved, tmp_path, rel, old, new, broken, intact
):
    student = _copy(solved / "minialexnet", tmp_path / "student" / "minialexnet").parent
    _plant(student, rel, old, new)
    report = grade(student, [broken, *intact], root=root)
    lost = report[broken]
    # proportional scoring (the default): a real mistake fails most of the exercise's
    # tests, so it keeps less than half of the points; all-or-nothing would give it 0
    assert lost.scoring == "proportional" and lost.failed > 0, report.table()
    assert lost.score < lost.max_score / 2, report.table()
    assert lost.score == round(lost.max_score * lost.passed / (lost.passed + lost.failed), 2)
    assert score(lost.max_score, "all", lost.tests, lost.problem) == 0
    assert "NotImplementedError" not in lost.output
    if lost.passed:
        assert f"{lost.passed} of {lost.passed + lost.failed} passed; " in report.table()
    # every failing test is named in the feedback, hidden ones by number only
    for test in lost.tests:
        if test.failed:
            assert f"  {test.name}: " in lost.output, test.name
    for name in intact:
        assert report[name].score == report[name].max_score, report[name].output
    assert report.score == report.max_score - (lost.max_score - lost.score)


def test_an_endless_loop_fails_with_a_reason_within_the_time_limit(root, solved, tmp_path):
    student = _copy(solved / "minialexnet", tmp_path / "student" / "minialexnet").parent
    old = "    padded, middle = _zero_padded(x, n // 2, (n - 1) // 2)"
    _plant(student, "minialexnet/functional/lrn.py", old, "    while True:\n        pass\n" + old)
    start = time.monotonic()
    report = grade(student, ["lrn_forward", "lrn_backward"], timeout=LOOP_TIMEOUT, root=root)
    loop = report["lrn_forward"]
    assert loop.score == 0 and loop.seconds < LOOP_TIMEOUT + 2
    assert f"time limit of {LOOP_TIMEOUT:g} s reached in tests/exercises/" in loop.reason
    assert "test_lrn_forward" in loop.reason
    # the grader carries on with the next exercise (whose tests take the reference's cache)
    assert report["lrn_backward"].score == report["lrn_backward"].max_score
    assert time.monotonic() - start < 2 * LOOP_TIMEOUT + 30


def test_an_exception_at_import_fails_with_a_reason_and_the_json_says_so(
    root, solved, tmp_path, capsys
):
    student = _copy(solved / "minialexnet", tmp_path / "student" / "minialexnet").parent
    pool = student / "minialexnet" / "functional" / "pool.py"
    pool.write_text(pool.read_text() + "\nraise RuntimeError('planted at import')\n")
    results = tmp_path / "results" / "results.json"
    command = ["grade", str(student), "--only", "maxpool2d_forward,dropout"]
    status = exercises_main([*command, "--json", str(results), "--root", str(root)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "maxpool2d_forward" in printed and "0/20" in printed
    data = json.loads(results.read_text())
    assert data["score"] == 0 and data["max_score"] == 20
    for test in data["tests"]:
        assert test["score"] == 0 and test["status"] == "failed"
        assert "RuntimeError: planted at import" in test["output"]
        assert "minialexnet/functional/pool.py:" in test["output"]  # where it was raised
        _student_facing(test["output"])
    # raised while the package itself imports: the path is in the student's folder, not
    # in the grader's copy of it
    init = student / "minialexnet" / "__init__.py"
    init.write_text(init.read_text() + "\nraise RuntimeError('planted in __init__')\n")
    broken = grade(student, ["dropout"], root=root)["dropout"]
    assert broken.score == 0 and broken.problem is not None, broken
    assert "importing the student's minialexnet failed: RuntimeError: planted in" in broken.reason
    assert f"(at {student}/minialexnet/__init__.py:" in broken.reason, broken.reason
    _student_facing(broken.output + broken.reason)


FORCE_PASS = """
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"
"""


def test_editing_the_student_copy_s_tests_does_not_change_the_grade(root, handout, tmp_path):
    student = _copy(handout, tmp_path / "student")
    tests = student / "tests" / "exercises"
    (tests / "test_lrn_forward.py").write_text("def test_lrn_forward():\n    pass\n")
    (tests / "exercise_support.py").write_text("def assert_close(*args, **kwargs):\n    pass\n")
    (tests / "conftest.py").write_text(FORCE_PASS)
    (student / "conftest.py").write_text(FORCE_PASS)
    (student / "pytest.ini").write_text("[pytest]\naddopts = --co\n")
    # the student's own tests now pass ...
    assert check("lrn_forward", student, timeout=60)[1].passed
    # ... but the grade is the same as for the untouched handout
    edited = grade(student, ["lrn_forward"], root=root)["lrn_forward"]
    fresh = grade(handout, ["lrn_forward"], root=root)["lrn_forward"]
    assert edited.score == fresh.score == 0
    assert (edited.passed, edited.failed) == (fresh.passed, fresh.failed) and edited.failed > 5
    assert "NotImplementedError: lrn_forward:" in edited.output


def test_check_explains_a_stub_and_a_planted_mistake(root, handout, solved, tmp_path, capsys):
    status = exercises_main(["check", "lrn_forward", "--root", str(handout)])
    printed = capsys.readouterr().out
    assert status == 1
    todo = read_catalogue(root=root).get("lrn_forward").todo
    assert f"Not implemented yet. To do: {todo}" in printed
    assert "raised in lrn_forward, minialexnet/functional/lrn.py:" in printed

    student = _copy(solved, tmp_path / "student")
    _plant(student, "minialexnet/functional/conv.py", PLANTED[1].values[1], PLANTED[1].values[2])
    exercise, result = check("conv2d_backward", student, timeout=60)
    text = explain(exercise, result)
    assert not result.passed and text.startswith("conv2d_backward: ")
    assert "dx (gradient of the input): relative error" in text
    assert "Not implemented yet" not in text
    # this copy hands out dropout only, so it holds no recorded reference calls of the
    # conv2d tests: a self-check takes their caches from the copy's own (planted) code,
    # and conv2d_forward's cache test would fail here too; an unrelated exercise passes
    exercise, result = check("maxpool2d_forward", student, timeout=60)
    assert result.passed and explain(exercise, result).startswith("maxpool2d_forward: all ")


def test_gradescope_results_format():
    failing = GradedTest("test_dx[3x3]", False, "failed", "AssertionError: dx", "E  dx", "t::x")
    hidden = GradedTest("a hidden test 1", True, "failed", "AssertionError: dw", "", "h::y")
    b_tests = (GradedTest("test_db", False, "passed"), failing, hidden)
    report = GradeReport(
        Path("alice"),
        (
            ExerciseGrade("a", "Exercise A", 10, 10, 5, 0, "", "A: 5 passed", 1.25),
            ExerciseGrade(
                "b",
                "Exercise B",
                15,
                5,
                1,
                2,
                "AssertionError: dx [test_dx[3x3]]",
                "B: FAILED",
                0.5,
                tests=b_tests,
                scoring="proportional",
            ),  # fmt: skip
            ExerciseGrade("c", "Exercise C", 5, 0, 0, 3, "NotImplementedError: c", "C", 0.25),
        ),
        seconds=2.04,
    )
    data = json.loads(json.dumps(to_gradescope(report)))
    assert (data["score"], data["max_score"]) == (15, 30)
    assert data["execution_time"] == 2.0 and data["output"].startswith("15/30 points")
    assert data["visibility"] == "visible" and data["stdout_visibility"] == "hidden"
    assert data["extra_data"] == {"max_score": 30}  # no manifest, no notes
    keys = {"name", "number", "score", "max_score", "status", "output", "tags", "visibility"}
    assert all(set(t) == keys for t in data["tests"]), data["tests"]
    by_number = {t["number"]: t for t in data["tests"]}
    assert sorted(by_number) == ["1.1", "2.1", "2.2", "3.1"]
    a, b, b_hidden, c = (by_number[n] for n in ("1.1", "2.1", "2.2", "3.1"))
    assert (a["name"], a["score"], a["max_score"], a["status"]) == (
        "a: Exercise A",
        10,
        10,
        "passed",
    )
    assert a["output"] == "A: 5 passed\n\nScoring: all tests must pass."  # an old-style grade
    assert (a["tags"], a["visibility"]) == (["a"], "visible")
    assert (b["score"], b["max_score"], b["status"], b["tags"]) == (5, 15, "failed", ["b"])
    assert (
        "test_dx[3x3]: AssertionError: dx" in b["output"]
        and "AssertionError: dw" not in b["output"]
    )
    assert "Hidden tests: 0 of 1 passed" in b["output"]
    assert b["output"].endswith("Scoring: share of tests passed.")
    assert (b_hidden["name"], b_hidden["score"], b_hidden["max_score"]) == ("b: hidden tests", 0, 0)
    assert (b_hidden["tags"], b_hidden["visibility"]) == (["b", "hidden"], "after_published")
    assert "a hidden test 1: AssertionError: dw" in b_hidden["output"]
    assert (c["score"], c["max_score"], c["status"]) == (0, 5, "failed")
    visible = to_gradescope(report, hidden_visibility="visible")["tests"]
    assert [t["visibility"] for t in visible] == ["visible"] * 4
    table = report.table()
    assert table.splitlines()[0].split() == ["exercise", "points", "first", "failure"]
    assert "\na           10/10  ok: 5 tests passed (1.2 s)\n" in table
    assert "\nb            5/15  1 of 3 passed; AssertionError: dx [test_dx[3x3]]\n" in table
    assert "\nc             0/5  NotImplementedError: c\n" in table
    assert table.endswith("\ntotal       15/30")


def test_bad_arguments_are_refused_clearly(root, handout, tmp_path, capsys):
    with pytest.raises(CatalogueError, match="unknown exercise nope; the catalogue has: conv2d"):
        grade(handout, ["lrn_forward", "nope"], root=root)
    with pytest.raises(CatalogueError, match="student copy"):
        grade(handout, ["lrn_forward"], root=handout)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        grade(tmp_path / "missing", root=root)
    assert exercises_main(["grade", str(handout), "--only", "nope", "--root", str(root)]) == 2
    assert "unknown exercise nope" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        exercises_main(["grade", str(handout), "--timeout", "0"])


def test_a_submission_without_the_package_scores_zero(root, solved, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    report = grade(empty, ["dropout", "lrn_forward"], root=root)
    assert report.score == 0
    assert all("no minialexnet/__init__.py" in e.reason for e in report.exercises)
    # an archive that unpacks to one folder holding the copy is found
    nested = tmp_path / "submission"
    _copy(solved / "minialexnet", nested / "alice-handout" / "minialexnet")
    assert find_package_root(nested) == nested / "alice-handout"
    assert find_package_root(nested / "alice-handout") == nested / "alice-handout"
