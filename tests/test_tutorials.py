"""The tutorials: each notebook runs top to bottom in fast mode, carries no outputs, and
matches its text twin (``tutorials/NN_name.py``, jupytext's py:percent format)."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))
_MISSING = "needs nbclient, nbformat and ipykernel: pip install -e '.[test]'"


def test_every_chapter_has_a_notebook_and_a_text_twin():
    twins = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
    assert NOTEBOOKS, "no notebooks in tutorials/"
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in twins]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path: Path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: cell {i} has outputs; clear them"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} was executed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_matches_its_text_twin(path: Path):
    jupytext = pytest.importorskip("jupytext", reason="needs jupytext: pip install -e '.[test]'")
    twin = jupytext.read(path.with_suffix(".py"))
    nb = json.loads(path.read_text())

    def cells(cs):
        return [(c["cell_type"], "".join(c["source"]).strip()) for c in cs]

    assert cells(nb["cells"]) == cells(twin.cells), (
        f"{path.name} and {path.with_suffix('.py').name} differ: run "
        f"`jupytext --sync {path.with_suffix('.py')}` (or make notebooks)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_in_fast_mode(path: Path, tmp_path: Path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason=_MISSING)
    nbclient = pytest.importorskip("nbclient", reason=_MISSING)
    pytest.importorskip("ipykernel", reason=_MISSING)
    monkeypatch.setenv("MINIALEXNET_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed in fast mode (cwd {tmp_path}):\n{exc}", pytrace=False)
    assert os.environ["MINIALEXNET_FAST"] == "1"
    printed = _marker_lines_printed(nb)
    assert not printed, f"{path.name} prints solution markers (use show_source): {printed[:3]}"


def _marker_lines_printed(nb) -> list[str]:
    """The output lines of an executed notebook that are a solution marker and nothing else."""
    from minialexnet.exercises.regions import BEGIN, END

    found = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")]
            texts += [output.get("data", {}).get("text/plain", "")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                found += [
                    f"cell {i}: {s.strip()}" for s in text.splitlines() if s.strip() in (BEGIN, END)
                ]
    return found


def test_show_source_leaves_the_markers_out(capsys):
    from minialexnet.exercises.regions import BEGIN, END
    from minialexnet.functional import lrn_forward
    from minialexnet.optim import SGD
    from minialexnet.tutorial import show_source

    for obj in (lrn_forward, SGD.step):  # both hold a marked region in the reference
        raw = inspect.getsource(obj)
        assert BEGIN in raw and END in raw
        show_source(obj)
        shown = capsys.readouterr().out.splitlines()
        assert BEGIN not in [s.strip() for s in shown] and END not in [s.strip() for s in shown]
        kept = [line for line in raw.splitlines() if line.strip() not in (BEGIN, END)]
        assert shown == kept
    show_source(lrn_forward, start="    fn = ")
    assert capsys.readouterr().out.startswith('    fn = "lrn_forward"')
    with pytest.raises(ValueError, match="no line of lrn_forward contains"):
        show_source(lrn_forward, start="not in there")


def test_trained_model_skips_what_it_cannot_use_then_trains_once(tmp_path, monkeypatch, capsys):
    from minialexnet import train, tutorial

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tutorial, "FAST", True)
    damaged = tmp_path / "runs" / "alexnet-cifar-shapes" / "best.npz"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not a checkpoint")
    found = tutorial.trained_model(tmp_path / "out")
    assert found == tmp_path / "out" / "ch10-run" / "best.npz" and found.exists()
    printed = capsys.readouterr().out
    assert f"{Path('runs/alexnet-cifar-shapes/best.npz')}: cannot be used" in printed

    monkeypatch.setattr(train, "main", lambda argv: pytest.fail("trained a second time"))
    assert tutorial.trained_model(tmp_path / "out") == found
