"""The grading salt: grading draws other random inputs than the ones a student copy recorded.

A student copy ships the reference's results for its shipped tests' inputs
(``tests/exercises/fixtures/reference_calls.npz``, for ``check``). A submission that
answers by looking its inputs up there passes ``check``, but not ``grade``: the judge
mixes the release's grading salt into every generator of the tests
(``exercise_support.generator``, ``MINIALEXNET_GRADE_SALT``), so the inputs differ.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from minialexnet.exercises import read_catalogue, repo_root
from minialexnet.exercises.grade import check, check_passed, grade, release_salt
from minialexnet.exercises.manifest import grading_salt, read_manifest
from minialexnet.exercises.regions import replace_regions
from minialexnet.exercises.release import (
    FIXTURES,
    ReleaseError,
    _check_salted,
    manifest_path,
    release,
)
from minialexnet.exercises.sandbox import GRADE_SALT_ENV

ROOT = repo_root()
LRN = "minialexnet/functional/lrn.py"

# lrn_backward answered from the recorded reference calls: the loop version's recorded
# result for (dout, x, n, k, alpha, beta), or finite differences of the recorded forwards
CHEAT = """

def lrn_backward(dout, cache):
    import os
    from pathlib import Path

    import numpy as np

    from minialexnet.exercises.fixtures import MISSING, Replayer

    recorded = Replayer(Path(__file__).with_name("_answers.npz"))
    x, _out, _denom, _scale, n, alpha, beta = cache
    n, alpha, beta = int(n), float(alpha), float(beta)
    for k in (0.5, 1.0, 1.5, 2.0):  # not in the cache: the values the tests use
        for args, kwargs in (
            ((dout, x), {"n": n, "k": k, "alpha": alpha, "beta": beta}),
            ((dout, x, n, k, alpha, beta), {}),
        ):
            found = recorded.lookup("functional.reference.lrn_backward_loops", args, kwargs)
            if found is not MISSING:
                return found
        dx = np.zeros_like(x, dtype=np.float64)
        for i in range(x.size):  # the finite-difference test's recorded forwards
            sums = []
            for eps in (1e-6, -1e-6):
                v = np.array(x, dtype=np.float64)
                v.flat[i] = x.flat[i] + eps
                found = recorded.lookup("functional.lrn_forward", (v, n, k, alpha, beta), {})
                if found is MISSING:
                    break
                sums.append(float(np.sum(np.asarray(found[0]) * dout)))
            if len(sums) < 2:
                break
            dx.flat[i] = (sums[0] - sums[1]) / 2e-6
        else:
            return dx
    seen = os.environ.get("MINIALEXNET_GRADE_SALT")
    raise LookupError(f"inputs not recorded (the salt seen here: {seen})")
"""


def _solve(copy: Path, rel: str) -> None:
    """The instructor's code of every marked region of ``rel`` in ``copy``."""
    text = (ROOT / rel).read_text(encoding="utf-8")
    (copy / rel).write_text(replace_regions(text, lambda region: None, rel), encoding="utf-8")


@pytest.mark.slow
def test_looking_up_the_recorded_results_passes_check_but_not_grade(tmp_path):
    handout = release(["lrn_backward"], tmp_path / "handout")
    manifest = read_manifest(manifest_path(handout))
    salt = release_salt(read_catalogue(root=ROOT), manifest)
    assert salt == grading_salt(manifest.digest) and 0 <= salt < 2**64

    cheat = tmp_path / "cheat"
    shutil.copytree(handout, cheat)
    recorded = cheat / FIXTURES / "reference_calls.npz"
    shutil.copyfile(recorded, cheat / "minialexnet" / "functional" / "_answers.npz")
    with (cheat / LRN).open("a", encoding="utf-8") as handle:
        handle.write(CHEAT)
    # the hole, in a self-check: the recorded inputs are the tests' inputs
    exercise, result = check("lrn_backward", root=cheat)
    assert check_passed(result) and len(result.tests) == 13, result.reason()

    report = grade(cheat, manifest=manifest)
    graded = report["lrn_backward"]
    assert graded.score == 0 and graded.passed == 0 and graded.failed == 13, report.table()
    assert "inputs not recorded (the salt seen here: None)" in graded.reason, graded.reason

    _solve(handout, LRN)  # a correct copy: full marks under the salt
    report = grade(handout, manifest=manifest)
    assert report.score == report.max_score == exercise.points, report.table()


def _exercise_support():
    path = ROOT / "tests" / "exercises" / "exercise_support.py"
    spec = importlib.util.spec_from_file_location("_salted_exercise_support", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_salt_changes_the_inputs_and_only_when_set(monkeypatch):
    support = _exercise_support()
    monkeypatch.delenv(GRADE_SALT_ENV, raising=False)
    plain = support.rand(3, (4,))
    assert np.array_equal(plain, np.random.default_rng(3).standard_normal(4))
    monkeypatch.setenv(GRADE_SALT_ENV, "12345")
    salted = support.rand(3, (4,))
    assert not np.array_equal(plain, salted)
    assert np.array_equal(salted, support.rand(3, (4,)))  # reproducible
    assert np.array_equal(salted, np.random.default_rng([12345, 3]).standard_normal(4))


@pytest.mark.parametrize("salt", [1, 2**64 - 1])
def test_the_instructors_package_passes_under_a_salt(salt):
    """A few exercises' tests (finite differences, ties, random shapes) under a salt; the
    whole of tests/exercises passes under several, and ``release`` checks its own."""
    tests = [
        "tests/exercises/test_lrn_backward.py",
        "tests/exercises/test_maxpool2d_backward.py",
        "tests/exercises/hidden/test_maxpool2d_backward_hidden.py",
        "tests/exercises/test_dropout.py",
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env[GRADE_SALT_ENV] = str(salt)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_a_release_whose_tests_fail_under_its_salt_is_refused(tmp_path):
    """A test unlucky with the inputs grading draws would fail every student: no release."""
    test = tmp_path / "tests" / "exercises" / "test_unlucky.py"
    test.parent.mkdir(parents=True)
    test.write_text(
        f"import os\n\n\ndef test_unlucky():\n    assert os.environ['{GRADE_SALT_ENV}'] != '7'\n",
        encoding="utf-8",
    )
    catalogue = SimpleNamespace(root=tmp_path)
    chosen = [SimpleNamespace(all_tests=("tests/exercises/test_unlucky.py",))]
    _check_salted(catalogue, chosen, 8)  # type: ignore[arg-type]
    with pytest.raises(ReleaseError, match=f"{GRADE_SALT_ENV}=7") as failed:
        _check_salted(catalogue, chosen, 7)  # type: ignore[arg-type]
    assert "test_unlucky" in str(failed.value)
