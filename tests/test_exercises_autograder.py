"""The Gradescope autograder zip, built and run as Gradescope runs it (without its pip install).

``python -m minialexnet.exercises autograder --release MANIFEST --out autograder.zip``
writes ``setup.sh``, ``run_autograder``, the manifest and the instructor's checkout.
Here the zip is unpacked into a folder laid out as Gradescope's ``/autograder``
(``source/`` the zip, ``submission/`` a student copy one folder down with one of the two
exercises solved, ``results/``), and its ``run_autograder`` writes ``results.json``. The
test environment already has the package's dependencies, so ``setup.sh`` (which only
installs) is checked for syntax, not run.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from minialexnet.exercises.__main__ import main
from minialexnet.exercises.autograder import AutograderError, build_autograder, unpack
from minialexnet.exercises.catalogue import repo_root
from minialexnet.exercises.manifest import MANIFEST_NAME, read_manifest
from minialexnet.exercises.release import manifest_path, release

ROOT = repo_root()
HANDED_OUT = ["lrn_forward", "sgd_momentum"]  # both with hidden tests; lrn_forward solved
SOLVED = "minialexnet/functional/lrn.py"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A release of HANDED_OUT, its autograder zip, and the zip unpacked as Gradescope does."""
    tmp = tmp_path_factory.mktemp("autograder")
    handout = release(HANDED_OUT, tmp / "handout")
    zip_path = tmp / "autograder.zip"
    assert main(["autograder", "--release", str(manifest_path(handout)), "--out", str(zip_path),
                 "--timeout", "60"]) == 0  # fmt: skip
    gradescope = tmp / "gradescope"
    unpack(zip_path, gradescope / "source")
    # the upload: the student copy one folder down, lrn_forward solved, sgd_momentum not,
    # with a release.json edited to hand out only what the student solved
    submission = gradescope / "submission" / "alice-handout"
    shutil.copytree(handout, submission)
    shutil.copy(ROOT / SOLVED, submission / SOLVED)
    forged = json.loads((handout / MANIFEST_NAME).read_text())
    forged["exercises"] = forged["exercises"][:1]
    (submission / MANIFEST_NAME).write_text(json.dumps(forged))
    (gradescope / "results").mkdir()
    return {"handout": handout, "zip": zip_path, "gradescope": gradescope}


def test_the_zip_holds_what_gradescope_runs_at_its_root(built):
    with zipfile.ZipFile(built["zip"]) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        manifest = archive.read("release.json").decode()
    for script in ("setup.sh", "run_autograder"):
        assert (infos[script].external_attr >> 16) & stat.S_IXUSR, script
    assert manifest == manifest_path(built["handout"]).read_text()
    names = set(infos)
    for rel in (
        "checkout/pyproject.toml",
        "checkout/minialexnet/exercises/catalogue.toml",
        "checkout/minialexnet/functional/reference.py",  # the reference, loops and all
        "checkout/tests/exercises/conftest.py",
        "checkout/tests/exercises/hidden/test_lrn_forward_hidden.py",
        "checkout/tests/conftest.py",
    ):
        assert rel in names, rel
    assert not [n for n in names if n.startswith("checkout/docs/") or "__pycache__" in n]
    source = built["gradescope"] / "source"
    for script in ("setup.sh", "run_autograder"):
        assert os.access(source / script, os.X_OK)
        done = subprocess.run(["bash", "-n", str(source / script)], capture_output=True)
        assert done.returncode == 0, done.stderr
    setup = (source / "setup.sh").read_text()
    assert "pip install" in setup and '"$SOURCE/checkout"' in setup and "git " not in setup


def test_run_autograder_grades_the_handed_out_exercises_into_results_json(built):
    gradescope = built["gradescope"]
    env = {
        **os.environ,
        "AUTOGRADER": str(gradescope),
        "AUTOGRADER_PYTHON": sys.executable,
        "OPENBLAS_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [str(gradescope / "source" / "run_autograder")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=gradescope,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((gradescope / "results" / "results.json").read_text())
    # the zip's manifest, not the submission's edited one: both exercises count
    assert results["score"] == 10 and results["max_score"] == 20
    assert sum(t["max_score"] for t in results["tests"]) == 20
    assert results["extra_data"]["release"]["exercises"] == HANDED_OUT
    assert any("differs from" in note for note in results["extra_data"]["notes"])
    assert isinstance(results["execution_time"], float) and results["output"]
    for test in results["tests"]:
        assert {"score", "max_score", "name", "number", "output", "visibility", "tags"} <= set(
            test
        ), test
        assert test["visibility"] in ("visible", "after_published")
    by_name = {t["name"].split(":")[0] + (" hidden" if "hidden" in t["tags"] else ""): t
               for t in results["tests"]}  # fmt: skip
    assert by_name["lrn_forward"]["score"] == 10 and by_name["sgd_momentum"]["score"] == 0
    assert "NotImplementedError: sgd_momentum:" in by_name["sgd_momentum"]["output"]
    hidden = by_name["sgd_momentum hidden"]
    assert hidden["visibility"] == "after_published" and hidden["max_score"] == 0
    assert "a hidden test 1: " in hidden["output"] and "NotImplementedError" in hidden["output"]
    assert "def test_" not in hidden["output"] and "hidden/test_" not in hidden["output"]


def test_the_autograder_refuses_a_checkout_whose_tests_changed(built, tmp_path, capsys):
    checkout = tmp_path / "checkout"
    shutil.copytree(built["gradescope"] / "source" / "checkout", checkout)
    hidden = checkout / "tests/exercises/hidden/test_sgd_momentum_hidden.py"
    hidden.write_text(hidden.read_text() + "\n# edited after the release\n")
    manifest = manifest_path(built["handout"])
    with pytest.raises(AutograderError, match="test_sgd_momentum_hidden.py changed since"):
        build_autograder(manifest, tmp_path / "a.zip", checkout)
    zip_path = build_autograder(manifest, tmp_path / "b.zip", checkout, accept_changes=True)
    with zipfile.ZipFile(zip_path) as archive:
        assert "--accept-changes" in archive.read("run_autograder").decode()
    assert read_manifest(manifest).names == HANDED_OUT
    assert main(["autograder", "--release", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autograder: no release manifest at") and "Traceback" not in err


def test_a_blank_handout_scores_zero_of_the_points_handed_out(built, tmp_path, capsys):
    """Graded as `release` says to grade it: the manifest's exercises only, into a CSV row."""
    grades = tmp_path / "grades.csv"
    manifest = str(manifest_path(built["handout"]))
    command = ["grade", str(built["handout"]), "--release", manifest, "--csv", str(grades)]
    assert main([*command, "--json", str(tmp_path / "r.json")]) == 0
    assert capsys.readouterr().out.rstrip().split("\n")[-1].split() == ["total", "0/20"]
    results = json.loads((tmp_path / "r.json").read_text())
    assert (results["score"], results["max_score"]) == (0, 20)
    assert grades.read_text().splitlines() == [
        "submission,score,max_score,lrn_forward,sgd_momentum,notes",
        "handout,0,20,0,0,",
    ]
