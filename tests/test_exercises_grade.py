"""Grading student copies: the sandboxed runner (on a toy package) and the grader (on releases).

The first part runs :func:`minialexnet.exercises.sandbox.run_tests` on a toy ``minialexnet``
built in ``tmp_path`` (no NumPy, each run well under a second): per-test results, the
pristine reference copy, a package that is not the student's, an exception or an endless
loop at import, a hang (the whole process group is killed), a flood of output, a crash.
The second part releases the real package and grades it, with the planted mistakes of
the issue.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from minialexnet.exercises.sandbox import copy_reference_package, run_tests

# -------------------------------------------------------------------------- the toy package

TOY_TESTS = """
import minialexnet
from helpers import FIVE


def test_add(offset):
    assert minialexnet.add(2, 3 + offset) == FIVE, "add(2, 3) should be 5"


class TestReference:
    def test_reference_is_the_instructors(self):
        import minialexnet_reference

        assert "student" not in minialexnet_reference.__file__
        assert minialexnet_reference.add(2, 3) == 5
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
    result = _run(toy)
    assert [t.outcome for t in result.tests] == ["failed", "passed"]


def test_sandbox_refuses_a_package_that_is_not_the_students(toy):
    # the student's folder has no minialexnet: the installed one must not be graded instead
    result = _run(toy)
    assert result.problem is not None and "not from the student's copy" in result.problem
    assert not result.passed and all(t.outcome == "error" for t in result.tests)


def test_sandbox_exception_at_import(toy):
    _student(toy, "raise RuntimeError('boom at import')\n")
    result = _run(toy)
    assert not result.passed and not result.timed_out
    assert "RuntimeError: boom at import" in result.problem
    assert "importing the student's minialexnet failed" in result.problem


def _gone(pid: int, within: float = 5.0) -> bool:
    """The process is gone (or a zombie nobody reaps) within ``within`` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")
def test_sandbox_time_limit_kills_the_whole_process_group(toy, tmp_path):
    pid_file = tmp_path / "child.pid"
    _student(
        toy,
        f"""
        import subprocess, sys


        def add(a, b):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            open({str(pid_file)!r}, "w").write(str(child.pid))
            while True:
                pass
        """,
    )
    start = time.monotonic()
    result = _run(toy, timeout=3)
    assert time.monotonic() - start < 3 + 10
    assert result.timed_out and result.returncode is None and not result.passed
    assert "time limit of 3 s reached in tests/exercises/test_add.py::test_add" in result.problem
    assert _gone(int(pid_file.read_text())), "the tests' own child process survived the kill"


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
    assert result.output_bytes > 10_000_000
    assert len(result.output) < 4096 + 200 and "output cut" in result.output


def test_sandbox_crash_is_a_problem(toy):
    _student(toy, "import os\n\n\ndef add(a, b):\n    os._exit(3)\n")
    result = _run(toy)
    assert not result.passed and result.returncode == 3
    assert "pytest exited with status 3" in result.problem


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
