"""What a release hands out, and how grading uses it: the manifest, scores, feedback.

The release manifest (``release.json``) decides which exercises ``grade`` grades; a
checkout whose tests changed since the release is refused; the loop versions of the
operations handed out become stubs; scores follow the catalogue's ``scoring``; the
Gradescope feedback names every failing test (a hidden one by number, never its code).
These tests need no sandboxed run; ``test_exercises_autograder.py`` runs the whole chain.
"""

from __future__ import annotations

import json
import shutil
import types
from dataclasses import replace
from pathlib import Path

import pytest

from minialexnet.exercises.__main__ import main
from minialexnet.exercises.catalogue import (
    CATALOGUE_FILE,
    CatalogueError,
    read_catalogue,
    repo_root,
)
from minialexnet.exercises.grade import (
    ExerciseGrade,
    GradeReport,
    check_passed,
    explain,
    needs_left_out,
    resolve_manifest,
    to_gradescope,
)
from minialexnet.exercises.loop_reference import (
    LEFT_OUT,
    left_out_by_file,
    stub_functions,
    stubbed_names,
)
from minialexnet.exercises.manifest import (
    MANIFEST_NAME,
    ManifestError,
    beside,
    build_manifest,
    changes,
    read_manifest,
    write_manifest,
)
from minialexnet.exercises.sandbox import SandboxResult, TestOutcome
from minialexnet.exercises.scoring import GradedTest, score

ROOT = repo_root()
CATALOGUE = read_catalogue()
LOOPS = "minialexnet/functional/reference.py"


# ------------------------------------------------------------------------------ the catalogue


def test_every_loop_version_belongs_to_the_exercise_it_would_solve():
    owners = {
        spec.partition("::")[2]: ex.name for ex in CATALOGUE.exercises for spec in ex.loop_reference
    }
    assert owners == {
        "conv2d_loops": "conv2d_forward",
        "conv2d_backward_loops": "conv2d_backward",
        "lrn_loops": "lrn_forward",
        "lrn_backward_loops": "lrn_backward",
        "maxpool2d_loops": "maxpool2d_forward",
        "maxpool2d_backward_loops": "maxpool2d_backward",
    }
    assert all(not ex.allow_loop_reference for ex in CATALOGUE.exercises)
    assert {ex.scoring for ex in CATALOGUE.exercises} == {"proportional"}


@pytest.mark.parametrize(
    "field, match",
    [
        ('scoring = "most"', "scoring must be one of"),
        ('loop_reference = ["reference.py"]', "must be 'path.py::function'"),
        ('loop_reference = ["minialexnet/functional/reference.py::nope"]', "no function nope"),
        ('allow_loop_reference = "yes"', "must be true or false"),
    ],
)
def test_bad_scoring_and_loop_fields_are_reported(tmp_path, field, match):
    text = (ROOT / CATALOGUE_FILE).read_text(encoding="utf-8")
    text = text.replace('name = "dropout"\n', f'name = "dropout"\n{field}\n', 1)
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError, match=match):
        read_catalogue(path, root=ROOT)


# ------------------------------------------------------------------------------ loop versions


def _module(text: str) -> types.ModuleType:
    """``text`` run as a module of ``minialexnet.functional`` (its relative imports work)."""
    module = types.ModuleType("minialexnet.functional._stubbed")
    module.__package__ = "minialexnet.functional"
    exec(compile(text, "stubbed.py", "exec"), module.__dict__)
    return module


def test_stubbed_loop_versions_keep_their_signature_and_say_why_they_are_gone():
    chosen = [CATALOGUE.get("lrn_backward"), CATALOGUE.get("conv2d_forward")]
    messages = left_out_by_file(chosen)
    assert list(messages) == [LOOPS]
    original = (ROOT / LOOPS).read_text(encoding="utf-8")
    text = stub_functions(original, messages[LOOPS], LOOPS)
    assert stubbed_names(text) == ["conv2d_loops", "lrn_backward_loops"]
    module = _module(text)
    assert set(module.__all__) == set(_module(original).__all__)
    with pytest.raises(NotImplementedError, match=f"lrn_backward_loops {LEFT_OUT}.*lrn_backward"):
        module.lrn_backward_loops(None, None, n=3)
    x = __import__("numpy").ones((1, 2, 3, 3))
    assert module.maxpool2d_loops(x, 2, 1).shape == (1, 2, 2, 2)  # not handed out: intact
    with pytest.raises(ValueError, match="no top-level function nope"):
        stub_functions(original, {"nope": "gone"}, LOOPS)


def test_an_exercise_may_allow_its_loop_version():
    allowed = replace(CATALOGUE.get("lrn_forward"), allow_loop_reference=True)
    assert allowed.left_out == () and left_out_by_file([allowed]) == {}


def test_check_counts_a_test_that_needs_a_left_out_loop_version_as_not_checked():
    gone = f"NotImplementedError: lrn_loops {LEFT_OUT}: it computes what"
    via_test = TestOutcome(
        "tests/exercises/test_lrn_forward.py::test_a",
        "failed",
        gone,
        "tests/exercises/test_lrn_forward.py:30: in test_a\n"
        "student/minialexnet/functional/reference.py:288: in lrn_loops\n",
    )
    via_student = replace(
        via_test,
        nodeid="tests/exercises/test_lrn_forward.py::test_b",
        details="student/minialexnet/functional/lrn.py:80: in lrn_forward\n"
        "student/minialexnet/functional/reference.py:288: in lrn_loops\n",
    )
    passed = TestOutcome("tests/exercises/test_lrn_forward.py::test_c", "passed")
    assert needs_left_out(via_test) and not needs_left_out(via_student)
    exercise = CATALOGUE.get("lrn_forward")
    only_left_out = SandboxResult((passed, via_test), 1, False, 1.0, "", 0)
    assert check_passed(only_left_out)
    assert explain(exercise, only_left_out).startswith("lrn_forward: all 1 tests pass")
    assert "1 not checked here" in explain(exercise, only_left_out)
    cheating = SandboxResult((passed, via_test, via_student), 1, False, 1.0, "", 0)
    assert not check_passed(cheating)
    assert "FAILED tests/exercises/test_lrn_forward.py::test_b" in explain(exercise, cheating)


# ------------------------------------------------------------------------------ the manifest


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The catalogue and the grading tests of the instructor's checkout, copied."""
    root = tmp_path / "checkout"
    (root / CATALOGUE_FILE).parent.mkdir(parents=True)
    shutil.copy(ROOT / CATALOGUE_FILE, root / CATALOGUE_FILE)
    shutil.copy(ROOT / "minialexnet" / "__init__.py", root / "minialexnet" / "__init__.py")
    shutil.copytree(ROOT / "tests" / "exercises", root / "tests" / "exercises")
    return root


def _catalogue(root: Path):
    return read_catalogue(root / CATALOGUE_FILE, root=root, validate=False)


def test_a_manifest_reads_back_and_records_what_was_handed_out(checkout, tmp_path):
    catalogue = _catalogue(checkout)
    chosen = [catalogue.get("lrn_forward"), catalogue.get("sgd_momentum")]
    manifest = build_manifest(catalogue, chosen)
    path = write_manifest(manifest, tmp_path / "handout.release.json")
    back = read_manifest(path)
    assert back == manifest and back.path == path.resolve()
    assert back.names == ["lrn_forward", "sgd_momentum"] and back.total == 20
    assert back.exercises[0].left_out == (f"{LOOPS}::lrn_loops",)
    assert back.exercises[1].scoring == "proportional"
    assert back.package_version == __import__("minialexnet").__version__
    assert set(back.files) == {
        CATALOGUE_FILE,
        *catalogue.support,
        "tests/exercises/test_lrn_forward.py",
        "tests/exercises/hidden/test_lrn_forward_hidden.py",
        "tests/exercises/test_sgd_momentum.py",
        "tests/exercises/hidden/test_sgd_momentum_hidden.py",
    }
    data = json.loads(path.read_text())
    assert data["format"] == "minialexnet-release/1" and data["total_points"] == 20
    assert data["created"].endswith("+00:00")
    assert beside(tmp_path / "handout") == tmp_path / "handout.release.json"
    assert changes(back, catalogue) == ([], [])
    # a folder holding release.json reads too
    write_manifest(manifest, tmp_path / MANIFEST_NAME)
    assert read_manifest(tmp_path) == manifest


def test_changes_since_the_release_are_named(checkout):
    catalogue = _catalogue(checkout)
    manifest = build_manifest(catalogue, [catalogue.get("lrn_forward")])
    # a title changed in the catalogue: a note, not a reason to refuse
    path = checkout / CATALOGUE_FILE
    text = path.read_text()
    path.write_text(text.replace("Dropout forward and backward", "Dropout, both ways"))
    blocking, notes = changes(manifest, _catalogue(checkout))
    assert blocking == [] and notes and "catalogue.toml changed" in notes[0]
    # a hidden test edited, and the points changed: grading would differ
    hidden = checkout / "tests/exercises/hidden/test_lrn_forward_hidden.py"
    hidden.write_text(hidden.read_text() + "\n# edited\n")
    text = path.read_text()
    start = text.index('name = "lrn_forward"')
    path.write_text(text[:start] + text[start:].replace("points = 10", "points = 20", 1))
    blocking, _ = changes(manifest, _catalogue(checkout))
    assert "lrn_forward: 10 points at release, now 20" in blocking
    assert "tests/exercises/hidden/test_lrn_forward_hidden.py changed since the release" in blocking


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.update(exercises=d["exercises"][:1]), "edited after `release` wrote it"),
        (lambda d: d.update(format="other/2"), "format 'other/2'"),
        (lambda d: d.pop("files"), "a field is missing"),
    ],
)
def test_an_edited_or_foreign_manifest_is_refused(checkout, tmp_path, edit, match):
    catalogue = _catalogue(checkout)
    chosen = [catalogue.get("lrn_forward"), catalogue.get("dropout")]
    data = json.loads(build_manifest(catalogue, chosen).to_json())
    edit(data)
    path = tmp_path / "release.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=match):
        read_manifest(path)


def test_grade_says_which_manifest_it_grades_with(checkout, tmp_path, capsys):
    catalogue = _catalogue(checkout)
    manifest = build_manifest(catalogue, [catalogue.get("dropout")])
    copy = tmp_path / "copy"
    copy.mkdir()
    assert resolve_manifest(copy, None)[0] is None  # no manifest anywhere: every exercise
    write_manifest(manifest, copy / MANIFEST_NAME)
    own, notes = resolve_manifest(copy, None)
    assert own == manifest and "the student could have edited" in notes[0]
    mine = write_manifest(build_manifest(catalogue, [catalogue.get("lrn_forward")]), tmp_path / "m")
    used, notes = resolve_manifest(copy, mine)
    assert used.names == ["lrn_forward"] and "differs from" in notes[0]
    # missing or invalid manifests end the command with exit 2 and one line, no traceback
    assert main(["grade", str(copy), "--release", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "no release manifest at" in err and "Traceback" not in err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["grade", str(copy), "--release", str(tmp_path / "bad.json")]) == 2
    assert "is not a release manifest (not JSON" in capsys.readouterr().err
    (copy / MANIFEST_NAME).write_text('{"format": "minialexnet-release/1"}')
    assert main(["grade", str(copy)]) == 2
    assert "student copy's own manifest; pass --release" in capsys.readouterr().err


# ------------------------------------------------------------------------------ scores


def _tests(passed: int, failed: int) -> list[GradedTest]:
    return [GradedTest(f"t{i}", False, "passed") for i in range(passed)] + [
        GradedTest(f"f{i}", False, "failed", "AssertionError: x") for i in range(failed)
    ]


def test_scoring_is_proportional_or_all_or_nothing():
    assert score(10, "proportional", _tests(18, 7), None) == 7.2
    assert score(10, "proportional", _tests(2, 1), None) == 6.67
    assert score(10, "proportional", _tests(4, 0), None) == 10
    assert score(10, "all", _tests(18, 7), None) == 0
    assert score(10, "all", _tests(3, 0), None) == 10
    assert score(10, "proportional", _tests(3, 1), "time limit of 60 s reached") == 0
    assert score(10, "proportional", _tests(0, 0), None) == 0
    assert score(10, "proportional", [*_tests(1, 0), GradedTest("s", False, "skipped")], None) == 10


def _report() -> GradeReport:
    shipped = [
        GradedTest(f"test_shape[{i}]", False, "failed", f"AssertionError: dx {i}", f"trace {i}")
        for i in range(5)
    ]
    hidden = [
        GradedTest("a hidden test 1", True, "passed", nodeid="tests/x/hidden/test_h.py::a"),
        GradedTest(
            "a hidden test 2",
            True,
            "failed",
            "AssertionError: db",
            "",
            "tests/x/hidden/test_h.py::b",
        ),
    ]
    tests = (*_tests(18, 0), *shipped, *hidden)
    a = ExerciseGrade("a", "Exercise A", 10, 7.6, 19, 6, "AssertionError: dx 0", "", 2.0, tests,
                      "proportional")  # fmt: skip
    b = ExerciseGrade("b", "Exercise B", 10, 10, 3, 0, "", "", 1.0, tuple(_tests(3, 0)), "all")
    return GradeReport(Path("alice"), (a, b), seconds=3.04)


def test_gradescope_results_list_every_failing_test_and_keep_hidden_ones_for_later():
    data = json.loads(json.dumps(to_gradescope(_report())))
    assert data["score"] == 17.6 and data["max_score"] == 20
    assert data["execution_time"] == 3.0 and data["output"].startswith("17.6/20 points")
    assert "AssertionError" not in data["output"]  # no hidden test's message before its time
    required = {"score", "max_score", "name", "number", "output", "visibility", "tags", "status"}
    assert all(required <= set(test) for test in data["tests"])
    a, a_hidden, b = data["tests"]
    assert (a["score"], a["max_score"], a["visibility"]) == (7.6, 10, "visible")
    for i in range(5):  # every failing shipped test by name, with its message
        assert f"  test_shape[{i}]: AssertionError: dx {i}" in a["output"]
    assert a["output"].count("--- ") == 3  # at most three tracebacks
    assert "Hidden tests: 1 of 2 passed" in a["output"] and "hidden test 2" not in a["output"]
    assert (a_hidden["max_score"], a_hidden["visibility"]) == (0, "after_published")
    assert "  a hidden test 2: AssertionError: db" in a_hidden["output"]
    assert "test_h.py" not in a_hidden["output"]  # neither its file nor its code
    assert (b["score"], b["status"], b["number"]) == (10, "passed", "2.1")
    assert sum(t["max_score"] for t in data["tests"]) == data["max_score"]
    shown = to_gradescope(_report(), hidden_visibility="visible")
    assert shown["tests"][1]["visibility"] == "visible"
    with pytest.raises(ValueError, match="hidden_visibility must be one of"):
        to_gradescope(_report(), hidden_visibility="sometimes")
