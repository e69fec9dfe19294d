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


def _run_in_fast_mode(path: Path, cwd: Path, monkeypatch):
    """Execute notebook ``path`` in fast mode with ``cwd`` as its folder; the executed notebook."""
    nbformat = pytest.importorskip("nbformat", reason=_MISSING)
    nbclient = pytest.importorskip("nbclient", reason=_MISSING)
    pytest.importorskip("ipykernel", reason=_MISSING)
    monkeypatch.setenv("MINIALEXNET_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed in fast mode (cwd {cwd}):\n{exc}", pytrace=False)
    assert os.environ["MINIALEXNET_FAST"] == "1"
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_in_fast_mode(path: Path, tmp_path: Path, monkeypatch):
    nb = _run_in_fast_mode(path, tmp_path, monkeypatch)
    printed = _marker_lines_printed(nb)
    assert not printed, f"{path.name} prints solution markers (use show_source): {printed[:3]}"


def _write_fake_cifar10(folder: Path, per_batch: int = 60, test: int = 100) -> None:
    """A CIFAR-10 binary tree of random images (the official layout, small batches)."""
    import numpy as np

    out = folder / "cifar-10-batches-bin"
    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name, n in zip(names, [per_batch] * 5 + [test], strict=True):
        labels = (np.arange(n) % 10).astype(np.uint8)
        chw = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        (out / name).write_bytes(np.concatenate([labels[:, None], chw], axis=1).tobytes())


@pytest.mark.slow
def test_chapters_10_to_12_use_cifar10_where_it_is_installed(tmp_path: Path, monkeypatch):
    """With CIFAR-10 in ./data (where `python -m minialexnet.data.cifar10 download` puts it),
    chapter 10 trains on it and chapters 11 and 12 use that run."""
    from minialexnet.evaluate import load_model

    _write_fake_cifar10(tmp_path / "data")
    monkeypatch.delenv("MINIALEXNET_DATA", raising=False)
    for stem in ("10_training_and_evaluation", "11_what_the_network_learned",
                 "12_beyond_the_paper"):  # fmt: skip
        nb = _run_in_fast_mode(TUTORIALS / f"{stem}.ipynb", tmp_path, monkeypatch)
        if stem.startswith("10"):
            setup = "".join(o.get("text", "") for o in nb.cells[1].get("outputs", []))
            assert "data: cifar10" in setup, setup
    _, _, meta = load_model(tmp_path / "tutorial-out" / "ch10-run" / "best.npz")
    assert meta["run"]["dataset"] == "cifar10" and meta["config"]["init"] == "scaled"


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
    monkeypatch.setattr(tutorial, "real_cifar10", lambda: None)  # shapes, whatever is installed
    damaged = tmp_path / "out" / "ch10-run" / "best.npz"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not a checkpoint")
    found = tutorial.trained_model(tmp_path / "out")
    assert found == damaged and found.exists()
    assert f"{damaged}: cannot be used" in capsys.readouterr().out

    monkeypatch.setattr(train, "main", lambda argv: pytest.fail("trained a second time"))
    assert tutorial.trained_model(tmp_path / "out") == found

    # the fast run does not stand in for the full one: that is trained (here: asked for)
    asked = []
    monkeypatch.setattr(train, "main", lambda argv: asked.append(argv) or 0)
    monkeypatch.setattr(tutorial, "FAST", False)
    assert tutorial.trained_model(tmp_path / "out") == found
    assert "not the finished run of chapter 10's arguments" in capsys.readouterr().out
    assert asked == [tutorial.chapter10_args(tmp_path / "out" / "ch10-run")]
    assert "8000" in asked[0]


def test_chapter10_uses_cifar10_where_it_is_installed(tmp_path, monkeypatch):
    from minialexnet import train, tutorial

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINIALEXNET_DATA", raising=False)
    assert tutorial.real_cifar10() is None
    assert "--dataset" not in tutorial.chapter10_args("out")
    _write_fake_cifar10(tmp_path / "data", per_batch=2, test=2)
    assert tutorial.real_cifar10() == Path("data") / "cifar-10-batches-bin"
    args = train.parse_args(tutorial.chapter10_args("out"))
    assert (args.dataset, args.data_dir, args.init) == ("cifar10", str(tutorial.real_cifar10()),
                                                        "scaled")  # fmt: skip
    sub = tmp_path / "tutorials"  # a notebook's folder: ../data is found too
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert tutorial.real_cifar10() == Path("../data") / "cifar-10-batches-bin"
