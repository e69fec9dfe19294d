"""Recorded reference calls: a student copy checks a backward before its forward works.

``release`` records (:func:`minialexnet.exercises.fixtures.write_check_fixtures`), on the
instructor's package, every ``ref`` call of the shipped tests of the exercises handed out
into the copy's ``tests/exercises/fixtures``; the copy's ``ref`` replays them (see
``tests/exercises/conftest.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from minialexnet.exercises import read_catalogue, repo_root
from minialexnet.exercises.__main__ import main
from minialexnet.exercises.fixtures import FIXTURE_FILE, MISSING, Recorder, Replayer, call_key
from minialexnet.exercises.manifest import MANIFEST_NAME, read_manifest
from minialexnet.exercises.regions import replace_regions
from minialexnet.exercises.release import FIXTURES, manifest_path

LOOPS = "minialexnet/functional/reference.py"

ROOT = repo_root()


def test_a_recorded_call_replays_and_an_unknown_one_is_missing(tmp_path):
    x = np.arange(6.0).reshape(2, 3)
    recorder = Recorder()
    result = (x * 2, (x.shape, x.dtype, [x + 1], 3, None))
    recorder.record("functional.f", (x,), {"n": 3}, result)
    recorder.record("functional.g", (object(),), {}, 1)  # not hashable: skipped
    path = recorder.save(tmp_path / FIXTURE_FILE)
    replayer = Replayer(path)
    out, cache = replayer.lookup("functional.f", (x.copy(),), {"n": 3})
    np.testing.assert_array_equal(out, x * 2)
    assert cache[:2] == ((2, 3), np.dtype(np.float64)) and cache[3:] == (3, None)
    np.testing.assert_array_equal(cache[2][0], x + 1)
    assert replayer.lookup("functional.f", (x + 1,), {"n": 3}) is MISSING
    assert replayer.lookup("functional.f", (x,), {"n": 4}) is MISSING
    assert call_key("f", (x,), {}) != call_key("f", (x.astype(np.float32),), {})
    assert np.load(path, allow_pickle=False).files  # no pickles in the file


def _solve(copy: Path, rel: str, still_stubbed: dict[str, str]) -> None:
    """Put the instructor's solution regions of ``rel`` into ``copy``, except the regions of
    the functions in ``still_stubbed`` (qualname -> stub message), which stay stubs."""
    text = (ROOT / rel).read_text(encoding="utf-8")
    solved = replace_regions(text, lambda region: still_stubbed.get(region.qualname), rel)
    (copy / rel).write_text(solved, encoding="utf-8")


@pytest.mark.slow
def test_a_student_copy_checks_a_backward_before_its_forward_works(tmp_path, capsys):
    """As a student would: release through the command line, solve lrn_backward only, check."""
    copy = tmp_path / "handout"
    only = "lrn_forward,lrn_backward,conv2d_forward"
    assert main(["release", "--only", only, "--out", str(copy)]) == 0
    capsys.readouterr()
    recorded = copy / FIXTURES / FIXTURE_FILE
    assert recorded.is_file() and np.load(recorded, allow_pickle=False).files
    # the recording changes neither manifest: the copy's and the instructor's agree
    assert read_manifest(copy / MANIFEST_NAME) == read_manifest(manifest_path(copy))
    assert FIXTURES + "/" + FIXTURE_FILE not in read_manifest(manifest_path(copy)).files
    assert f"`{FIXTURES}/{FIXTURE_FILE}`" in (copy / "EXERCISES.md").read_text()

    def run_check(name: str) -> tuple[int, str]:
        status = main(["check", name, "--root", str(copy)])
        return status, capsys.readouterr().out

    status, printed = run_check("lrn_backward")
    assert status == 1 and "Not implemented yet. To do: return dx" in printed, printed

    lrn = "minialexnet/functional/lrn.py"
    forward = read_catalogue(root=ROOT).get("lrn_forward")
    _solve(copy, lrn, {"lrn_forward": forward.message})
    status, printed = run_check("lrn_backward")
    assert status == 0 and printed.startswith("lrn_backward: all "), printed
    assert "not checked" not in printed
    # lrn_forward is still the student's stub: the caches came from the recording
    status, printed = run_check("lrn_forward")
    assert status == 1 and "Not implemented yet" in printed, printed

    # the forwards compare with the loop versions left out of the copy, recorded
    assert "is left out of this student copy" in (copy / LOOPS).read_text()
    _solve(copy, lrn, {})
    _solve(copy, "minialexnet/functional/conv.py", {})
    for name in ("lrn_forward", "conv2d_forward"):
        status, printed = run_check(name)
        assert status == 0 and printed.startswith(f"{name}: all "), printed
        assert "not checked" not in printed, printed

    # without the recording a backward's cache would come from the copy's own forward
    _solve(copy, lrn, {"lrn_forward": forward.message})
    recorded.unlink()
    status, printed = run_check("lrn_backward")
    assert status == 1 and "NotImplementedError: lrn_forward:" in printed, printed
