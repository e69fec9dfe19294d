"""``python -m minialexnet.experiments``: each experiment trains its matched pair and reports.

The real measurements (CIFAR-10, 20 minutes each) are in docs/experiments.md; here every
experiment runs end to end on a few built-in images, and the arithmetic of the report
(epochs to a training error, the speed-up) is checked by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minialexnet.experiments import EXPERIMENTS, epochs_to_reach, main, speedup, to_markdown
from minialexnet.models import model_from_config


def records(*errors: float, fraction: float | None = None) -> list[dict]:
    out = [{"epoch": i + 1, "train_top1_err": e} for i, e in enumerate(errors)]
    if fraction is not None:
        out[-1]["epoch_fraction"] = fraction
    return out


def test_epochs_to_reach_interpolates_between_epoch_ends():
    assert epochs_to_reach(records(0.6, 0.3, 0.2), 0.25) == pytest.approx(2.5)
    assert epochs_to_reach(records(0.6, 0.25), 0.25) == 2.0
    assert epochs_to_reach(records(0.2, 0.1), 0.25) == 1.0  # nothing known before epoch 1
    assert epochs_to_reach(records(0.6, 0.5, 0.4), 0.25) is None
    assert epochs_to_reach([], 0.25) is None
    # an epoch cut short by the time limit counts as its fraction
    assert epochs_to_reach(records(0.5, 0.3, 0.1, fraction=0.5), 0.2) == pytest.approx(2.25)


def reached(epochs: float, **levels: float | None) -> dict:
    return {"epochs": epochs, "epochs_to_train_err": {k.replace("p", "%"): v
                                                      for k, v in levels.items()}}  # fmt: skip


def test_speedup_at_the_papers_level_or_the_lowest_level_both_reached():
    both = {"runs": {"ReLU": reached(9, **{"50p": 1.0, "25p": 2.0}),
                     "tanh": reached(20, **{"50p": 4.0, "25p": 12.0})}}  # fmt: skip
    assert speedup(both, 0.25)["ratio"] == pytest.approx(6.0)
    only_a = {"runs": {"ReLU": reached(9, **{"50p": 1.0, "25p": 2.0}),
                       "tanh": reached(10, **{"50p": 3.0, "25p": None})}}  # fmt: skip
    s = speedup(only_a, 0.25)
    assert s["level"] == "50%" and s["ratio"] == pytest.approx(3.0)
    assert s["at_least"] == pytest.approx(5.0)  # tanh's 10 epochs over ReLU's 2, a lower bound
    assert "at least 5.0x" in s["note"]
    neither = {"runs": {"ReLU": reached(9, **{"50p": 2.0, "25p": None}),
                        "tanh": reached(9, **{"50p": None, "25p": None})}}  # fmt: skip
    assert speedup(neither, 0.25)["ratio"] is None
    assert "neither reached 25%" in speedup(neither, 0.25)["note"]


def test_list_names_every_experiment_and_its_paper_claim(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for name, e in EXPERIMENTS.items():
        assert name in text and e.paper in text


def test_options_the_experiment_sets_itself_are_refused(tmp_path, capsys):
    for flag in (["--model", "alexnet"], ["--variant", "lrn=off"], ["--max-minutes", "3"]):
        with pytest.raises(SystemExit):
            main(["lrn", "--dataset", "shapes", "--out", str(tmp_path), *flag])
        assert "set by the experiment itself" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["lrn", "--budget", "0"])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_trains_both_networks_and_writes_table_and_plot(name, tmp_path: Path):
    out = tmp_path / name
    tiny = ["--train-size", "96", "--val-size", "32", "--batch-size", "32", "--epochs", "2"]
    assert main([name, "--dataset", "shapes", "--budget", "3", "--out", str(out), "--quiet",
                 *tiny]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    experiment = EXPERIMENTS[name]
    assert list(results["runs"]) == [label for label, _ in experiment.runs]
    for (_, variant), run in zip(experiment.runs, results["runs"].values(), strict=True):
        metrics = out / run["command"].split("--out ")[1].split("/")[-1] / "metrics.jsonl"
        assert len(metrics.read_text().splitlines()) == 2  # both epochs, same for both networks
        assert run["epochs"] == 2.0
        assert 0 <= run["val_top1_err"] <= 1 and run["images_per_s"] > 0
        for v in variant:
            assert f"--variant {v}" in run["command"]
        assert "--max-minutes 1.35" in run["command"]  # 45% of the 3-minute budget each
        # the parameter count is that of the network the variant describes
        config = json.loads(json.dumps(model_from_config({"arch": experiment.model,
                                                          "num_classes": 10}).config))  # fmt: skip
        assert run["parameters"] > 0
        if not variant:
            assert run["parameters"] == model_from_config(config).num_parameters()
    if experiment.threshold is not None:
        assert "speedup" in results
    table = (out / "results.md").read_text()
    assert experiment.paper in table
    assert all(label in table for label, _ in experiment.runs)
    assert table == to_markdown(results)
    assert (out / f"{name}.png").stat().st_size > 1000
    # the report can be rebuilt from the runs alone, without training again
    (out / "results.md").unlink()
    assert main([name, "--out", str(out), "--budget", "3", "--report-only"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["runs"] == results["runs"]
    assert (out / "results.md").exists()
