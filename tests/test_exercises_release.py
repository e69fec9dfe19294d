"""The exercises' source side: markers, the catalogue, ``list`` and ``release``.

Grading (``grade``, ``check``) is tested in ``test_exercises_grade.py``; the
grading tests themselves run on the reference package in ``tests/exercises/``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from minialexnet.exercises import regions
from minialexnet.exercises.__main__ import main
from minialexnet.exercises.catalogue import (
    CATALOGUE_FILE,
    CatalogueError,
    Exercise,
    read_catalogue,
    repo_root,
    select,
    split_spec,
)
from minialexnet.exercises.loop_reference import stubbed_names
from minialexnet.exercises.manifest import MANIFEST_NAME, read_manifest
from minialexnet.exercises.regions import (
    BEGIN,
    END,
    RegionError,
    find_regions,
    replace_notebook_regions,
    replace_regions,
    strip_markers,
)
from minialexnet.exercises.release import ReleaseError, manifest_path, release

ROOT = repo_root()
CATALOGUE = read_catalogue()
LOOPS = "minialexnet/functional/reference.py"
NAMES = CATALOGUE.names()


# ------------------------------------------------------------------------------ regions


SOURCE = '''\
def f(x):
    """Doc of f; a docstring line that reads like a marker is not one:
    ### BEGIN SOLUTION
    """
    y = x + 1
    ### BEGIN SOLUTION
    z = y * 2
    ### END SOLUTION
    return z


class K:
    def m(self):
        if True:
            ### BEGIN SOLUTION
            return 3
            ### END SOLUTION
'''


def test_regions_are_found_with_their_function_and_indentation():
    found = find_regions(SOURCE)
    assert [(r.qualname, r.indent, r.begin, r.end) for r in found] == [
        ("f", "    ", 5, 7),
        ("K.m", " " * 12, 14, 16),
    ]
    assert found[0].body(SOURCE.splitlines()) == ["    z = y * 2"]


def test_replace_and_strip_keep_everything_around_the_regions():
    stubbed = replace_regions(SOURCE, lambda r: f"ex: do {r.qualname}")
    assert stubbed.splitlines()[5] == '    raise NotImplementedError("ex: do f")'
    assert '            raise NotImplementedError("ex: do K.m")' in stubbed.splitlines()
    assert "z = y * 2" not in stubbed and "return 3" not in stubbed
    assert '"""Doc of f' in stubbed  # docstrings stay
    kept = strip_markers(SOURCE)
    lines = SOURCE.splitlines(keepends=True)
    assert kept == "".join(line for i, line in enumerate(lines) if i not in (5, 7, 14, 16))
    compile(stubbed, "<stubbed>", "exec")


@pytest.mark.parametrize(
    "text, match",
    [
        ("def f():\n    ### BEGIN SOLUTION\n    pass\n", r"<text>:2: ### BEGIN SOLUTION without"),
        ("def f():\n    pass\n    ### END SOLUTION\n", r"<text>:3: ### END SOLUTION without"),
        (
            "def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    pass\n",
            r"<text>:3: .*cannot nest",
        ),
        (
            "def f():\n    ### BEGIN SOLUTION\n    pass\n\n\nx = 1\n### END SOLUTION\n",
            r"<text>:7: .*outside f",
        ),
    ],
)
def test_markers_that_do_not_pair_up_are_errors_naming_the_line(text, match):
    with pytest.raises(RegionError, match=match):
        find_regions(text)


def test_notebook_cells_are_replaced_and_written_like_jupytext():
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["### BEGIN SOLUTION"]},
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": [
                    "def g():\n",
                    "    ### BEGIN SOLUTION\n",
                    "    return 1\n",
                    "    ### END SOLUTION",
                ],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    text = json.dumps(nb, indent=1) + "\n"
    out = json.loads(replace_notebook_regions(text, lambda r: f"ex: {r.qualname}"))
    assert out["cells"][1]["source"] == ["def g():\n", '    raise NotImplementedError("ex: g")\n']
    assert out["cells"][0] == nb["cells"][0]  # markdown is never a region
    assert replace_notebook_regions(json.dumps({"cells": []}), lambda r: "x") == '{"cells": []}'


def _marked_files() -> list[Path]:
    files = {ROOT / split_spec(spec)[0] for ex in CATALOGUE.exercises for spec in ex.regions}
    for ex in CATALOGUE.exercises:
        for spec in ex.tutorials:
            files.add(ROOT / (split_spec(spec)[0] + ".py"))
    return sorted(files)


@pytest.mark.parametrize("path", _marked_files(), ids=lambda p: p.name)
def test_markers_change_nothing_in_the_reference_code(path):
    """Markers are comments: the file's syntax tree is the same with and without them."""
    text = path.read_text(encoding="utf-8")
    assert find_regions(text, str(path)), f"{path} holds no marked region"
    assert ast.dump(ast.parse(text)) == ast.dump(ast.parse(strip_markers(text)))


# ------------------------------------------------------------------------------ catalogue


def test_the_catalogue_covers_the_issues_exercises():
    assert NAMES == [
        "conv2d_forward",
        "conv2d_backward",
        "lrn_forward",
        "lrn_backward",
        "maxpool2d_forward",
        "maxpool2d_backward",
        "dropout",
        "softmax_cross_entropy",
        "sgd_momentum",
        "tower_exchange",
    ]
    assert all(ex.points == 10 and ex.tests for ex in CATALOGUE.exercises)
    assert sum(bool(ex.hidden) for ex in CATALOGUE.exercises) >= 3
    assert CATALOGUE.released is None
    for ex in CATALOGUE.exercises:
        assert all(t.startswith("tests/exercises/test_") for t in ex.tests)
        assert all(t.startswith("tests/exercises/hidden/") for t in ex.hidden)


def _mini_repo(tmp_path: Path, catalogue: str, source: str = SOURCE) -> Path:
    root = tmp_path / "repo"
    (root / "minialexnet" / "exercises").mkdir(parents=True)
    (root / "minialexnet" / "mod.py").write_text(source)
    (root / "tests" / "exercises").mkdir(parents=True)
    (root / "tests" / "exercises" / "test_a.py").write_text("def test_a():\n    pass\n")
    (root / CATALOGUE_FILE).write_text(textwrap.dedent(catalogue))
    return root


GOOD = """
    [[exercise]]
    name = "a"
    title = "A"
    points = 5
    regions = ["minialexnet/mod.py::f", "minialexnet/mod.py::K.m"]
    todo = "do it"
    tests = ["tests/exercises/test_a.py"]
"""


def test_a_small_catalogue_reads_back(tmp_path):
    root = _mini_repo(tmp_path, GOOD)
    catalogue = read_catalogue(root=root)
    assert catalogue.exercises == (
        Exercise(
            "a",
            "A",
            5,
            ("minialexnet/mod.py::f", "minialexnet/mod.py::K.m"),
            (),
            "do it",
            ("tests/exercises/test_a.py",),
            (),
        ),
    )
    assert catalogue.exercises[0].message == "a: do it"


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda c: c + c, r"repeated: \['a'\]"),
        (lambda c: c.replace("test_a.py", "test_b.py"), r"test_b.py does not exist"),
        (
            lambda c: c.replace("mod.py::f", "mod.py::g"),
            r"no marked region in g in minialexnet/mod",
        ),
        (
            lambda c: c.replace(', "minialexnet/mod.py::K.m"', ""),
            r"K.m holds a marked solution "
            r"region that no exercise names",
        ),
        (lambda c: c.replace("points = 5", "points = -1"), r"points must be an int >= 0"),
        (lambda c: c.replace('name = "a"', 'name = "a b"'), r"name must be"),
        (lambda c: c + "\n[other]\n", r"unknown top-level key"),
        (lambda c: c.replace("todo =", "todoo ="), r"unknown field.*todoo"),
        (lambda c: c.replace("mod.py::f", "nowhere.py::f"), r"nowhere.py does not exist"),
    ],
)
def test_catalogue_problems_are_reported_clearly(tmp_path, change, match):
    root = _mini_repo(tmp_path, change(GOOD))
    with pytest.raises(CatalogueError, match=match):
        read_catalogue(root=root)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(CatalogueError, match=r"unknown exercise lrm; the catalogue has: conv2d_fo"):
        select(CATALOGUE.exercises, ["lrm"])
    assert [ex.name for ex in select(CATALOGUE.exercises, ["dropout", "lrn_forward"])] == [
        "lrn_forward",
        "dropout",
    ]


def test_list_prints_every_exercise_and_the_total(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for ex in CATALOGUE.exercises:
        assert ex.name in out and ex.title in out
    assert f"{len(NAMES)} exercises, {sum(e.points for e in CATALOGUE.exercises)} points" in out
    assert main(["list", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "minialexnet/optim.py::SGD.step" in out and "tests/exercises/hidden/" in out


# ------------------------------------------------------------------------------ release


@pytest.fixture(scope="module")
def full_release(tmp_path_factory) -> Path:
    """Every exercise handed out."""
    return release(None, tmp_path_factory.mktemp("release") / "all")


@pytest.fixture(scope="module")
def partial_release(tmp_path_factory) -> Path:
    return release(["conv2d_backward", "lrn_forward"], tmp_path_factory.mktemp("rel") / "two")


def _student_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file())


def _lines(path: Path) -> list[str]:
    """The stripped lines of a file; for a notebook, of its cells' sources."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":
        cells = json.loads(text)["cells"]
        text = "\n".join("".join(c["source"]) for c in cells)
    return [line.strip() for line in text.splitlines()]


def _region_lines_and_the_rest(root: Path, files: list[str]) -> tuple[set[str], set[str]]:
    """Stripped lines inside every marked region, and every stripped line outside them."""
    inside, outside = set(), set()
    for rel in files:
        path = root / rel
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":
            cells = [c for c in json.loads(text)["cells"]]
            texts = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
            outside |= {s.strip() for c in cells if c["cell_type"] != "code" for s in c["source"]}
        else:
            texts = [text]
        for t in texts:
            lines = t.splitlines()
            found = find_regions(t, rel) if path.suffix in (".py", ".ipynb") else []
            covered = {i for r in found for i in range(r.begin, r.end + 1)}
            inside |= {lines[i].strip() for i in covered}
            outside |= {line.strip() for i, line in enumerate(lines) if i not in covered}
    return inside - {"", BEGIN, END}, outside


def test_a_full_release_holds_no_solution_text(full_release):
    """No marker line, and no line of any solution region that is not also public elsewhere."""
    shipped_rel = [p.relative_to(full_release).as_posix() for p in _student_files(full_release)]
    from_root = [rel for rel in shipped_rel if (ROOT / rel).is_file()]
    inside, outside = _region_lines_and_the_rest(ROOT, from_root)
    secret = inside - outside
    assert len(secret) > 100, f"only {len(secret)} solution lines to look for: {sorted(secret)}"
    long_secrets = [s for s in secret if len(s) >= 25]
    for path in _student_files(full_release):
        rel = path.relative_to(full_release).as_posix()
        lines = _lines(path)
        assert BEGIN not in lines and END not in lines, f"marker line left in {rel}"
        leaked = secret.intersection(lines)
        assert not leaked, f"{rel} holds solution lines: {sorted(leaked)[:5]}"
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":
            text = "\n".join(_lines(path))
        inline = [s for s in long_secrets if s in text]
        assert not inline, f"{rel} quotes solution lines: {inline[:3]}"


def test_every_region_becomes_a_stub_with_its_indentation_and_docstring(full_release):
    for ex in CATALOGUE.exercises:
        for spec in ex.regions:
            rel, qualname = split_spec(spec)
            original = (ROOT / rel).read_text(encoding="utf-8")
            student = (full_release / rel).read_text(encoding="utf-8")
            n_regions = sum(r.qualname == qualname for r in find_regions(original))
            stub = f'raise NotImplementedError("{ex.name}: {ex.todo}")'
            fn_orig, fn_student = _function(original, qualname), _function(student, qualname)
            assert ast.get_docstring(fn_student) == ast.get_docstring(fn_orig), spec
            body = ast.get_source_segment(student, fn_student)
            assert body.count(stub) == n_regions, f"{spec}: expected {n_regions} stub(s)"
            indents = {r.indent for r in find_regions(original) if r.qualname == qualname}
            for line in body.splitlines():
                if stub in line:
                    assert line[: len(line) - len(line.lstrip())] in indents, (spec, line)


def _function(text: str, qualname: str) -> ast.AST:
    node: ast.AST = ast.parse(text)
    for part in qualname.split("."):
        node = next(
            n
            for n in ast.iter_child_nodes(node)
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part
        )
    return node


def test_a_release_is_complete_and_leaves_out_the_instructors_material(full_release):
    for rel in ("pyproject.toml", "README.md", "Makefile", "mkdocs.yml", "EXERCISES.md"):
        assert (full_release / rel).is_file(), rel
    for rel in ("minialexnet/__init__.py", "minialexnet/exercises/catalogue.toml", "docs/index.md"):
        assert (full_release / rel).is_file(), rel
    assert sorted(p.name for p in (full_release / "tutorials").glob("*.ipynb")) == sorted(
        p.name for p in (ROOT / "tutorials").glob("*.ipynb")
    )
    shipped_tests = sorted(
        p.relative_to(full_release).as_posix() for p in (full_release / "tests").rglob("*.py")
    )
    expected = sorted(
        {t for ex in CATALOGUE.exercises for t in ex.tests}
        | set(CATALOGUE.support)
        | {"tests/exercises/exercise_support.py"}
    )
    assert shipped_tests == expected
    assert not (full_release / "tests" / "exercises" / "hidden").exists()
    assert not (full_release / "docs" / "instructors.md").exists()
    assert "instructors.md" not in (full_release / "mkdocs.yml").read_text()
    # the CUDA gathers solve im2col/col2im too: left out, and conv runs without them
    assert not (full_release / "minialexnet" / "functional" / "cuda_kernels.py").exists()
    probe = "import minialexnet.functional.conv as c; print(c.__file__, c.cuda_kernels)"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=full_release, env={**os.environ, "PYTHONPATH": str(full_release)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(full_release / "minialexnet/functional/conv.py"), "None"]
    for path in _student_files(full_release):
        assert "__pycache__" not in path.parts and path.suffix != ".pyc"
        if path.suffix == ".py":
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
    student = read_catalogue(root=full_release)
    assert student.released == tuple(NAMES)
    assert all(not ex.hidden for ex in student.exercises)
    assert [ex.tests for ex in student.exercises] == [ex.tests for ex in CATALOGUE.exercises]


def test_released_notebooks_still_match_their_text_twins(full_release):
    jupytext = pytest.importorskip("jupytext", reason="needs jupytext: pip install -e '.[test]'")
    for ex in CATALOGUE.exercises:
        for spec in ex.tutorials:
            base = split_spec(spec)[0]
            nb = json.loads((full_release / f"{base}.ipynb").read_text(encoding="utf-8"))
            twin = jupytext.read(full_release / f"{base}.py")

            def cells(cs):
                return [(c["cell_type"], "".join(c["source"]).strip()) for c in cs]

            assert cells(nb["cells"]) == cells(twin.cells), base
            # a tutorial's regions get the "your turn" stub, not the library exercise's
            text = (full_release / f"{base}.py").read_text()
            assert 'NotImplementedError("your turn: ' in text, base
            assert f"{ex.name}: {ex.todo}" not in text, base


def test_a_partial_release_keeps_the_other_exercises_reference_code(partial_release):
    student = read_catalogue(root=partial_release)
    assert student.released == ("conv2d_backward", "lrn_forward")
    chosen = {"conv2d_backward", "lrn_forward"}
    for ex in CATALOGUE.exercises:
        for rel in ex.region_files():
            text = (partial_release / rel).read_text(encoding="utf-8")
            has_stub = f'NotImplementedError("{ex.name}: ' in text
            assert has_stub == (ex.name in chosen), (ex.name, rel)
    # files without a chosen region are the reference minus its marker lines
    for rel in ("minialexnet/optim.py", "minialexnet/functional/pool.py"):
        original = (ROOT / rel).read_text(encoding="utf-8")
        assert (partial_release / rel).read_text(encoding="utf-8") == strip_markers(original)


def test_the_student_package_runs_around_the_missing_pieces(partial_release):
    """lrn_forward raises with its message; the reference code kept (max pooling) still works."""
    code = textwrap.dedent(
        """
        import numpy as np, minialexnet
        from minialexnet.functional import lrn_forward, maxpool2d_forward
        assert minialexnet.__file__.startswith(r"{out}"), minialexnet.__file__
        out, _ = maxpool2d_forward(np.ones((1, 1, 5, 5)))
        assert out.shape == (1, 1, 2, 2)
        try:
            lrn_forward(np.ones((1, 3, 2, 2)))
        except NotImplementedError as exc:
            print("raised:", exc)
        """
    ).format(out=str(partial_release))
    env = {**os.environ, "PYTHONPATH": str(partial_release), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=partial_release,
    )
    assert done.returncode == 0, done.stderr
    assert "raised: lrn_forward: compute the denominator" in done.stdout


def test_a_release_writes_its_manifest_into_the_copy_and_beside_it(partial_release):
    inside = read_manifest(partial_release / MANIFEST_NAME)
    mine = read_manifest(manifest_path(partial_release))
    assert manifest_path(partial_release) == partial_release.with_name("two.release.json")
    assert inside == mine and mine.names == ["conv2d_backward", "lrn_forward"]
    assert mine.total == 20 and [ex.points for ex in mine.exercises] == [10, 10]
    assert "tests/exercises/hidden/test_conv2d_backward_hidden.py" in mine.files
    assert (
        mine.files[CATALOGUE_FILE]
        == hashlib.sha256((ROOT / CATALOGUE_FILE).read_bytes()).hexdigest()
    )


def test_a_release_leaves_out_the_loop_versions_of_the_operations_handed_out(partial_release):
    text = (partial_release / LOOPS).read_text(encoding="utf-8")
    assert stubbed_names(text) == ["conv2d_backward_loops", "lrn_loops"]
    original = (ROOT / LOOPS).read_text(encoding="utf-8")
    for kept in (
        "conv2d_loops",
        "maxpool2d_loops",
        "maxpool2d_backward_loops",
        "lrn_backward_loops",
    ):
        assert ast.get_source_segment(text, _function(text, kept)) == ast.get_source_segment(
            original, _function(original, kept)
        ), kept
    assert "conv2d_backward_loops" in (partial_release / "EXERCISES.md").read_text()
    # the package and what imports the loop versions (the tutorials) still import;
    # calling one that is left out says why
    code = textwrap.dedent(
        """
        import numpy as np
        from minialexnet.functional.reference import *
        from minialexnet.functional.reference import conv2d_backward_loops, lrn_loops
        assert maxpool2d_loops(np.ones((1, 1, 3, 3)), 2, 1).shape == (1, 1, 2, 2)
        try:
            lrn_loops(np.ones((1, 3, 2, 2)))
        except NotImplementedError as exc:
            print("raised:", exc)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(partial_release), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
        cwd=partial_release,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "raised: lrn_loops is left out of this student copy" in done.stdout


def test_release_refuses_bad_names_and_occupied_folders(tmp_path, capsys):
    with pytest.raises(ReleaseError, match=r"unknown exercise lrm; the catalogue has: conv2d"):
        release(["lrm"], tmp_path / "x")
    assert not (tmp_path / "x").exists()
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(ReleaseError, match="not empty; choose a new folder or pass --force"):
        release(["dropout"], occupied)
    assert (occupied / "notes.txt").read_text() == "mine"
    with pytest.raises(ReleaseError, match="the repository itself"):
        release(["dropout"], ROOT, force=True)
    with pytest.raises(ReleaseError, match="inside minialexnet/"):
        release(["dropout"], ROOT / "minialexnet" / "handout")
    assert main(["release", "--only", "dropout,nope", "--out", str(tmp_path / "y")]) == 2
    assert "unknown exercise nope" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".y", ".occupied"))]


def test_release_command_with_force_replaces_the_folder(tmp_path, capsys):
    out = tmp_path / "handout"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert main(["release", "--only", "sgd_momentum", "--out", str(out), "--force"]) == 0
    printed = capsys.readouterr().out
    assert "handed out (10 points): sgd_momentum" in printed
    manifest = manifest_path(out)
    assert f"grade DIR --release {manifest}" in printed
    assert f"autograder --release {manifest} --out autograder.zip" in printed
    assert read_manifest(manifest).names == ["sgd_momentum"]
    # the manifest beside the folder is replaced with it, and only with --force
    assert main(["release", "--only", "dropout", "--out", str(out), "--force"]) == 0
    assert read_manifest(manifest).names == ["dropout"]
    shutil.rmtree(out)
    assert main(["release", "--only", "dropout", "--out", str(out)]) == 2
    assert "release manifest of --out" in capsys.readouterr().err
    assert main(["release", "--only", "sgd_momentum", "--out", str(out), "--force"]) == 0
    assert not (out / "old.txt").exists()
    assert 'NotImplementedError("sgd_momentum: ' in (out / "minialexnet/optim.py").read_text()
    assert main(["list", "--catalogue", str(out / CATALOGUE_FILE)]) == 0
    assert "sgd_momentum*" in capsys.readouterr().out
    with pytest.raises(ReleaseError, match="is a student copy"):
        release(None, tmp_path / "again", root=out)


def test_regions_module_holds_no_marker_line():
    """The tools that find markers must not carry one themselves (a release would refuse)."""
    for path in (ROOT / "minialexnet" / "exercises").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not [
            i for i, line in enumerate(text.splitlines()) if line.strip() in (BEGIN, END)
        ], path
    assert regions.BEGIN == "### BEGIN SOLUTION" and regions.END == "### END SOLUTION"


def test_a_group_name_stands_for_its_exercises_as_in_the_issues_example():
    from minialexnet.exercises.catalogue import CatalogueError, load_catalogue, select

    exercises = load_catalogue()
    chosen = [e.name for e in select(exercises, ["conv2d_backward", "lrn"])]
    assert chosen == ["conv2d_backward", "lrn_forward", "lrn_backward"]
    assert [e.name for e in select(exercises, ["maxpool2d"])] == [
        "maxpool2d_forward",
        "maxpool2d_backward",
    ]
    with pytest.raises(CatalogueError, match="or a group: conv2d, lrn, maxpool2d"):
        select(exercises, ["lrm"])


@pytest.mark.parametrize("command", ["list", "release", "grade", "check"])
def test_every_command_answers_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert f"python -m minialexnet.exercises {command}" in capsys.readouterr().out
