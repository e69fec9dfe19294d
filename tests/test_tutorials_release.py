"""The student edition of the tutorials, as ``python -m minialexnet.exercises release`` writes it.

In the repository (the instructor's edition) chapters 01-08 hold "your turn" cells whose
bodies are solution regions; a student copy must hold a stub in each of them, in both the
``.py`` twin and the ``.ipynb``, whatever exercises it hands out, and no solution line and
no marker line anywhere in ``tutorials/``. The chapters' questions have their answers in
the instructors' page, which a copy leaves out.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from minialexnet.exercises.catalogue import repo_root
from minialexnet.exercises.regions import BEGIN, END, find_regions
from minialexnet.exercises.release import release

ROOT = repo_root()
TUTORIALS = ROOT / "tutorials"
TWINS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
STUB = 'raise NotImplementedError("your turn: '


def _your_turn_regions(path: Path) -> list:
    return find_regions(path.read_text(encoding="utf-8"), str(path))


MARKED = [p for p in TWINS if _your_turn_regions(p)]


def _chapter(path: Path) -> int:
    return int(path.name[:2])


def _code_cells(path: Path) -> list[str]:
    """The code of every code cell of a notebook, or the whole text of a ``.py`` twin."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        cells = json.loads(text)["cells"]
        return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return [text]


def _solution_lines(path: Path) -> set[str]:
    """Stripped lines inside the regions of a twin that appear nowhere else in it."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    inside: set[int] = set()
    for region in find_regions(text, str(path)):
        inside.update(range(region.begin + 1, region.end))
    secret = {lines[i].strip() for i in inside}
    public = {line.strip() for i, line in enumerate(lines) if i not in inside}
    return {s for s in secret - public if s and not s.startswith("#")}


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    """A student copy with every exercise handed out."""
    return release(None, tmp_path_factory.mktemp("tutorials") / "copy")


@pytest.fixture(scope="module")
def partial(tmp_path_factory) -> Path:
    """A student copy with one library exercise handed out: the tutorials are stubbed anyway."""
    return release(["sgd_momentum"], tmp_path_factory.mktemp("tutorials") / "one")


def test_chapters_01_to_08_have_one_or_two_your_turn_functions():
    counts = {_chapter(p): len(_your_turn_regions(p)) for p in TWINS if _chapter(p) <= 9}
    assert all(1 <= counts[c] <= 2 for c in range(1, 9)), counts
    assert counts[0] == counts[9] == 0, counts
    for path in MARKED:
        for region in _your_turn_regions(path):
            assert region.qualname, f"{path.name}: a region outside a function"
            # the hint: a comment line right above the region
            above = path.read_text(encoding="utf-8").splitlines()[region.begin - 1].strip()
            assert above.startswith("# Hint:"), f"{path.name}::{region.qualname} has no hint"


@pytest.mark.parametrize("copy", ["student", "partial"])
@pytest.mark.parametrize("path", MARKED, ids=lambda p: p.stem)
def test_released_chapters_hold_stubs_and_no_solution(path: Path, copy: str, request):
    out = request.getfixturevalue(copy)
    regions = _your_turn_regions(path)
    secret = _solution_lines(path)
    assert secret, f"{path.name}: no solution line to look for"
    for twin in (path, path.with_suffix(".ipynb")):
        released = out / twin.relative_to(ROOT)
        cells = _code_cells(released)
        lines = [line for cell in cells for line in cell.splitlines()]
        stripped = [line.strip() for line in lines]
        assert BEGIN not in stripped and END not in stripped, f"marker line left in {released}"
        assert not secret.intersection(stripped), (
            f"{released} holds solution lines: {sorted(secret.intersection(stripped))[:3]}"
        )
        stubs = [line for line in lines if STUB in line]
        assert len(stubs) == len(regions), (released, stubs)
        for region, stub in zip(regions, stubs, strict=True):
            assert stub.startswith(region.indent + STUB), stub
            assert f"write the body of {region.qualname}" in stub


def test_released_stubs_end_in_a_raise_that_says_what_to_write(student: Path):
    """Each released "your turn" function ends in the stub; called, it raises with its message."""
    for path in MARKED:
        tree = ast.parse((student / path.relative_to(ROOT)).read_text(encoding="utf-8"))
        names = {r.qualname for r in _your_turn_regions(path)}
        found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
        assert {f.name for f in found} == names, path.name
        for node in found:
            last = node.body[-1]
            assert isinstance(last, ast.Raise) and isinstance(last.exc, ast.Call), node.name
            assert ast.literal_eval(last.exc.args[0]).startswith("your turn: "), node.name
            if len(node.body) == 2:  # the docstring and the stub: call it
                namespace: dict = {}
                exec(compile(ast.Module([node], []), path.name, "exec"), namespace)
                required = len(node.args.args) - len(node.args.defaults)
                with pytest.raises(NotImplementedError, match=rf"^your turn: .*{node.name}"):
                    namespace[node.name](*[None] * required)


def test_released_notebooks_match_their_twins_and_have_no_outputs(student: Path):
    jupytext = pytest.importorskip("jupytext", reason="needs jupytext: pip install -e '.[test]'")
    for path in TWINS:
        released = student / path.relative_to(ROOT)
        nb = json.loads(released.with_suffix(".ipynb").read_text(encoding="utf-8"))
        twin = jupytext.read(released)

        def cells(cs):
            return [(c["cell_type"], "".join(c["source"]).strip()) for c in cs]

        assert cells(nb["cells"]) == cells(twin.cells), released.name
        assert all(c.get("outputs", []) == [] for c in nb["cells"]), released.name


def test_exercises_md_lists_the_tutorial_cells(student: Path):
    text = (student / "EXERCISES.md").read_text(encoding="utf-8")
    assert "## In the tutorials" in text
    for path in MARKED:
        row = next(line for line in text.splitlines() if f"`tutorials/{path.stem}`" in line)
        for region in _your_turn_regions(path):
            assert f"`{region.qualname}`" in row, (path.stem, row)


def _questions(path: Path) -> int:
    """How many numbered questions the chapter's last "## Questions" section asks."""
    text = path.read_text(encoding="utf-8")
    assert "# ## Summary" in text, f"{path.name} has no summary"
    tail = text[text.rindex("# ## Questions") :]
    return len(re.findall(r"^# (\d)\. ", tail, flags=re.MULTILINE))


@pytest.mark.parametrize("path", [p for p in TWINS if _chapter(p) <= 9], ids=lambda p: p.stem)
def test_each_chapter_ends_with_questions_answered_for_instructors_only(path: Path, student):
    asked = _questions(path)
    assert 2 <= asked <= 3, f"{path.name} asks {asked} questions"
    answers = (ROOT / "docs" / "instructors.md").read_text(encoding="utf-8")
    section = re.search(
        rf"^### Chapter {path.name[:2]}:.*?(?=^### |\Z)", answers, flags=re.MULTILINE | re.DOTALL
    )
    assert section, f"docs/instructors.md has no answers for chapter {path.name[:2]}"
    answered = len(re.findall(r"^\d\. ", section.group(0), flags=re.MULTILINE))
    assert answered == asked, f"chapter {path.name[:2]}: {asked} questions, {answered} answers"
    assert not (student / "docs" / "instructors.md").exists()
