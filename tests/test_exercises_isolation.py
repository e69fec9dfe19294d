"""Attacks on the grader: a student copy whose code tries to cheat, one test per kind of attack.

Each test copies the instructor's package as the "student's", replaces its ``lrn_forward``
by one that gives WRONG answers and also attempts an attack (import the reference,
patch NumPy or pytest, forge results, leak the hidden tests, outlive the time limit,
flood the channel), grades the exercise ``lrn_forward`` (shipped and hidden tests) with
:func:`minialexnet.exercises.sandbox.run_tests`, and checks that the exercise fails as a
wrong answer would, within the time limit, that no hidden test's text reaches the result,
and that nothing the student's code started is alive afterwards.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import process_gone

from minialexnet.exercises import read_catalogue, repo_root
from minialexnet.exercises.sandbox import SandboxResult, confinement, run_tests

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the grader's limits are Linux's"
)

ROOT = repo_root()
TIMEOUT = 20.0
HIDDEN = ROOT / "tests" / "exercises" / "hidden" / "test_lrn_forward_hidden.py"
# lines of the hidden tests that must never reach what the grader reports
SECRETS = [
    "PyTorch's local_response_norm divides alpha by n",
    "torch_like = x / (k + alpha_torch * mean) ** beta",
]
CONFINED = pytest.mark.skipif(
    not confinement(),
    reason="neither Landlock nor an unprivileged user is available here: the worker could "
    "read any file this user can",
)

WRONG = '''

_right_lrn_forward = lrn_forward


def lrn_forward(x, n=5, k=2.0, alpha=1e-4, beta=0.75):
    """The student's attempt: wrong by half, plus an attack."""
    out, cache = _right_lrn_forward(x, n, k, alpha, beta)
    result = _attack(x, n, k, alpha, beta, out, cache)
    if result is not None:
        return result
    return out * 1.5, cache
'''


def _student(tmp_path: Path, attack: str, at_import: str = "") -> Path:
    """A copy of the instructor's package whose lrn_forward is wrong and runs ``attack``."""
    student = tmp_path / "student"
    shutil.copytree(
        ROOT / "minialexnet",
        student / "minialexnet",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    lrn = student / "minialexnet" / "functional" / "lrn.py"
    code = textwrap.dedent(attack).replace("@ROOT@", str(ROOT)).replace("@TMP@", str(tmp_path))
    lrn.write_text(lrn.read_text() + WRONG + "\n\n" + code, encoding="utf-8")
    if at_import:
        init = student / "minialexnet" / "__init__.py"
        init.write_text(init.read_text() + "\n" + textwrap.dedent(at_import), encoding="utf-8")
    return student


def _grade(student: Path, timeout: float = TIMEOUT) -> tuple[SandboxResult, float]:
    catalogue = read_catalogue(root=ROOT)
    exercise = catalogue.get("lrn_forward")
    start = time.monotonic()
    result = run_tests(
        student, exercise.all_tests, ROOT, support=catalogue.support, timeout=timeout
    )
    return result, time.monotonic() - start


def _reported(result: SandboxResult) -> str:
    """Everything of a result the grader may show (the worker's own output excluded)."""
    parts = [result.output, result.problem or ""]
    for t in result.tests:
        parts += [t.nodeid, t.message, t.details]
    return "\n".join(parts)


def _assert_wrong_answer(result: SandboxResult, seconds: float, timeout: float = TIMEOUT) -> None:
    assert not result.passed, "the attack made a wrong lrn_forward pass"
    forward = [t for t in result.tests if "test_forward_matches_the_loop_version" in t.nodeid]
    assert not forward or all(not t.ok for t in forward), [t.message for t in forward]
    assert seconds < timeout + 8, f"grading took {seconds:.1f} s with a {timeout:g} s limit"
    reported = _reported(result)
    for secret in SECRETS:
        assert secret not in reported, f"hidden test text reached the report: {secret!r}"


def _gone(pid: int, within: float = 3.0) -> bool:
    return process_gone(pid, within)


def test_a_wrong_answer_fails_and_the_right_one_passes(tmp_path):
    """The baseline the attacks are measured against."""
    result, seconds = _grade(_student(tmp_path, "def _attack(*args):\n    return None\n"))
    _assert_wrong_answer(result, seconds)
    right = _student(
        tmp_path / "right", "def _attack(x, n, k, a, b, out, cache):\n    return out, cache\n"
    )
    assert _grade(right)[0].passed


def test_importing_the_reference_solution_fails(tmp_path):
    attack = """
    def _attack(x, n, k, alpha, beta, out, cache):
        import importlib, sys
        for name in ("minialexnet_reference", "__editable___minialexnet_0_1_0_finder"):
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            if hasattr(module, "install"):  # the editable install's finder: the instructor's
                for key in [m for m in sys.modules if m.startswith("minialexnet")]:
                    del sys.modules[key]
                module.install()
                module = importlib.import_module("minialexnet")
            return module.functional.lrn_forward(x, n, k, alpha, beta)
        try:
            from importlib.metadata import distribution
            where = distribution("minialexnet").locate_file("minialexnet")
            raise RuntimeError(f"found the installed package at {where}")
        except ImportError:
            return None
    """
    result, seconds = _grade(_student(tmp_path, attack))
    _assert_wrong_answer(result, seconds)


@CONFINED
def test_reading_the_instructors_files_fails(tmp_path):
    attack = """
    def _attack(x, n, k, alpha, beta, out, cache):
        import glob

        for path in ["@ROOT@/minialexnet/functional/lrn.py",
                     *glob.glob("/tmp/minialexnet-judge-*/tests/exercises/test_lrn_forward.py")]:
            try:
                source = open(path).read()
            except OSError:
                continue
            raise RuntimeError(f"read the instructor's file {path}: {len(source)} characters")
        return None
    """
    result, seconds = _grade(_student(tmp_path, attack))
    _assert_wrong_answer(result, seconds)
    assert "read the instructor's file" not in _reported(result)


def test_aliasing_the_reference_to_the_students_own_changes_nothing(tmp_path):
    at_import = """
    import sys as _sys
    _sys.modules["minialexnet_reference"] = _sys.modules[__name__]
    """
    attack = """
    def _attack(x, n, k, alpha, beta, out, cache):
        import sys
        from minialexnet.functional import reference
        # the loop version (the expected values) made to agree with this wrong forward
        reference.lrn_loops = lambda x, n=5, k=2.0, alpha=1e-4, beta=0.75: lrn_forward(
            x, n, k, alpha, beta)[0]
        sys.modules["minialexnet_reference"] = sys.modules["minialexnet"]
        return None
    """
    result, seconds = _grade(_student(tmp_path, attack, at_import))
    _assert_wrong_answer(result, seconds)


def test_patching_numpy_comparisons_changes_nothing(tmp_path):
    attack = """
    import numpy as _np
    import numpy.testing as _npt

    _np.allclose = lambda *a, **k: True
    _np.isclose = lambda a, b, *r, **k: _np.zeros(_np.shape(a), dtype=bool)
    _np.array_equal = lambda *a, **k: True
    _np.linalg.norm = lambda *a, **k: 0.0
    _npt.assert_allclose = lambda *a, **k: None


    def _attack(*args):
        return None
    """
    result, seconds = _grade(_student(tmp_path, attack))
    _assert_wrong_answer(result, seconds)


def test_patching_pytests_reports_changes_nothing(tmp_path):
    attack = """
    def _attack(x, n, k, alpha, beta, out, cache):
        import gc, os, sys
        import numpy
        site = os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__)))
        sys.path.append(site)
        try:
            import _pytest.reports as reports
        except Exception:
            reports = None
        if reports is not None:
            reports.TestReport.passed = property(lambda self: True)
            reports.TestReport.failed = property(lambda self: False)
        for obj in gc.get_objects():  # any report object in this process
            if type(obj).__name__ == "TestReport":
                obj.outcome = "passed"
        return None
    """
    result, seconds = _grade(_student(tmp_path, attack))
    _assert_wrong_answer(result, seconds)


def test_forging_the_results_file_then_exiting_fails(tmp_path):
    attack = """
    FAKE = '<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="1">' \\
        '<testcase classname="x" name="test_x" file="tests/exercises/test_lrn_forward.py"/>' \\
        '</testsuite></testsuites>'


    def _attack(*args):
        import glob, os
        for folder in glob.glob("/tmp/minialexnet-judge-*"):
            for name in ("results.xml", "status.txt"):
                try:
                    with open(os.path.join(folder, name), "w") as f:
                        f.write(FAKE if name.endswith("xml") else "ok")
                except OSError:
                    pass
        os._exit(0)
    """
    result, seconds = _grade(_student(tmp_path, attack))
    _assert_wrong_answer(result, seconds)
    assert len(result.tests) > 5  # the judge's real results, not the forged one


@CONFINED
def test_leaking_the_hidden_tests_fails(tmp_path):
    attack = """
    def _attack(*args):
        import glob, sys
        found = []
        for pattern in ["@ROOT@/tests/exercises/hidden/*.py",
                        "/tmp/minialexnet-judge-*/tests/exercises/hidden/*.py"]:
            for path in glob.glob(pattern):
                try:
                    found.append(open(path).read())
                except OSError:
                    pass
        text = "\\n".join(found)
        print(text)
        print(text, file=sys.stderr)
        if text:
            raise AssertionError(text)
        return None
    """
    result, seconds = _grade(_student(tmp_path, attack))
    _assert_wrong_answer(result, seconds)
    for secret in SECRETS:
        assert secret not in result.worker_output


def test_a_daemon_that_outlives_the_time_limit_is_killed(tmp_path):
    """A double fork into a new session that sleeps past the limit, then would write."""
    attack = """
    DAEMON = '''
    import os, sys, time
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    sys.stderr.write("DAEMON %d\\\\n" % os.getpid())
    sys.stderr.flush()
    time.sleep(40)
    for target in ["@TMP@/late.txt", "results.xml"]:
        try:
            open(target, "w").write("changed after the grade")
        except OSError:
            pass
    '''


    def _attack(*args):
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", DAEMON], start_new_session=True).wait()
        time.sleep(1000)
    """
    timeout = 6.0
    result, seconds = _grade(_student(tmp_path, attack), timeout=timeout)
    _assert_wrong_answer(result, seconds, timeout)
    assert result.timed_out and "time limit" in (result.problem or "")
    pids = [int(p) for p in re.findall(r"DAEMON (\d+)", result.worker_output)]
    assert pids, result.worker_output
    assert all(_gone(pid, within=0.5) for pid in pids), "the daemon outlived the grade"
    before = result.tests
    time.sleep(1)
    assert not (tmp_path / "late.txt").exists() and result.tests == before


def test_many_processes_are_all_killed(tmp_path):
    attack = """
    def _attack(*args):
        import os, sys, time
        for _ in range(40):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                sys.stderr.write("CHILD %d\\n" % os.getpid())
                sys.stderr.flush()
                time.sleep(120)
                os._exit(0)
        while True:
            pass
    """
    timeout = 6.0
    result, seconds = _grade(_student(tmp_path, attack), timeout=timeout)
    _assert_wrong_answer(result, seconds, timeout)
    pids = [int(p) for p in re.findall(r"CHILD (\d+)", result.worker_output)]
    assert len(pids) >= 10, result.worker_output[-500:]
    assert all(_gone(pid, within=0.5) for pid in pids)


def test_a_flood_of_output_does_not_reach_the_report(tmp_path):
    attack = """
    def _attack(*args):
        import sys
        for _ in range(400):
            sys.stdout.write("flood " * 10_000 + "\\n")
        return None
    """
    result, seconds = _grade(_student(tmp_path, attack))
    _assert_wrong_answer(result, seconds)
    assert "flood flood" not in result.output
    assert result.worker_output_bytes > 20_000_000 and len(result.worker_output) <= 64 * 1024


def test_a_huge_returned_array_is_refused(tmp_path):
    attack = """
    def _attack(x, n, k, alpha, beta, out, cache):
        import numpy as np
        return np.zeros(9_000_000), cache  # 72 MB: more than a reply may hold
    """
    result, seconds = _grade(_student(tmp_path, attack))
    _assert_wrong_answer(result, seconds)
    assert any("at most 64 MiB" in t.message for t in result.failures), result.failures[0]


@pytest.mark.parametrize("how", ["plain", "patched-worker", "array-interface"])
def test_object_arrays_and_array_lookalikes_are_refused(tmp_path, how):
    attack = """
    class _LooksLikeAnArray:
        shape = (2, 12, 4, 4)
        dtype = "float64"
        __array_interface__ = {"shape": (4,), "typestr": "<f8", "data": (8, False), "version": 3}


    def _attack(x, n, k, alpha, beta, out, cache):
        import sys
        import numpy as np
        how = "@HOW@"
        if how == "patched-worker":  # the worker's own checks switched off
            sys.modules["_minialexnet_wire"]._KINDS = "biufcO"
        if how == "array-interface":
            return _LooksLikeAnArray(), cache
        return np.array([object()] * out.size, dtype=object).reshape(out.shape), cache
    """.replace("@HOW@", how)
    result, seconds = _grade(_student(tmp_path, attack))
    _assert_wrong_answer(result, seconds)
    assert result.problem is None  # the judge survived: each test failed on its own


def test_changing_the_tests_inputs_in_place_is_refused(tmp_path):
    """Zeroing x would make the expected values (computed from x after the call) zero too."""
    attack = """
    def _attack(x, n, k, alpha, beta, out, cache):
        x[...] = 0.0
        zero = x * 0.0
        return zero, (x, zero, zero + k, zero + 1, n, alpha, beta)
    """
    result, seconds = _grade(_student(tmp_path, attack))
    _assert_wrong_answer(result, seconds)
    assert any("changed its input in place" in t.message for t in result.failures)
