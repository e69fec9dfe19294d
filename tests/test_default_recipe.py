"""The default training recipe on the built-in shapes (issue 13, item 1).

What the default is and that docs/training.md says the same; the paper's recipe behind
``--recipe paper``; the "balanced" init that makes the default run learn (its scale per
layer and conv1's blindness to an image's mean colour); and the warning a run ends with
when its best validation error is still near chance.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import record_outputs

from minialexnet import train
from minialexnet.data import dataset_statistics, eval_transform, load_dataset
from minialexnet.layers import Conv2d, Linear
from minialexnet.models import CONV1_GAIN, RAW_PIXEL_STD, alexnet_cifar, cnn4

TRAINING_MD = Path(__file__).resolve().parent.parent / "docs" / "training.md"

TINY = ["--dataset", "shapes", "--train-size", "128", "--val-size", "64", "--batch-size", "64",
        "--device", "cpu", "--quiet", "--no-ten-crop", "--epochs", "1"]  # fmt: skip


# ------------------------------------------------------------------------------ the recipe
def test_the_default_run_on_shapes_uses_the_balanced_init_a_lower_rate_and_linear_decay():
    args = train.parse_args([])
    assert (args.dataset, args.model, args.recipe) == ("shapes", "alexnet-cifar", "default")
    assert (args.init, args.lr, args.schedule) == ("balanced", 0.0035, "linear")
    assert (args.batch_size, args.momentum, args.weight_decay) == (64, 0.9, 5e-4)
    assert train.DEFAULT_EPOCHS["shapes"] == 8


def test_elsewhere_the_default_is_unchanged_and_the_papers_recipe_is_one_flag():
    cifar = train.parse_args(["--dataset", "cifar10"])
    assert (cifar.init, cifar.lr, cifar.schedule, cifar.batch_size) == (
        "scaled", 0.01, "plateau", 128)  # fmt: skip
    paper = train.parse_args(["--recipe", "paper"])
    assert (paper.init, paper.lr, paper.schedule) == ("paper", 0.01, "plateau")
    assert (paper.batch_size, paper.momentum, paper.weight_decay) == (128, 0.9, 5e-4)


def test_flags_given_override_the_recipe_and_the_rate_follows_the_init():
    args = train.parse_args(["--recipe", "paper", "--lr", "0.02", "--schedule", "step"])
    assert (args.init, args.lr, args.schedule) == ("paper", 0.02, "step")
    assert train.parse_args(["--init", "scaled"]).lr == 0.01  # on shapes too
    assert train.parse_args(["--dataset", "cifar10", "--init", "balanced"]).lr == 0.0035
    assert train.parse_args(["--batch-size", "32"]).batch_size == 32
    with pytest.raises(SystemExit):
        train.parse_args(["--batch-size", "0"])


def test_the_docs_give_the_default_recipe_the_code_uses():
    """docs/training.md's table of the default against the paper matches parse_args."""
    text = TRAINING_MD.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(--[a-z-]+)` \| ([^|]+?) \|", text, flags=re.MULTILINE))
    default, paper = train.parse_args([]), train.parse_args(["--recipe", "paper"])
    assert rows["--init"] == f"`{default.init}`"
    assert rows["--lr"] == f"{default.lr:g}"
    assert rows["--schedule"] == f"`{default.schedule}`"
    assert rows["--batch-size"] == str(default.batch_size)
    assert rows["--epochs"] == str(train.DEFAULT_EPOCHS["shapes"])
    papers = dict(re.findall(r"^\| `(--[a-z-]+)` \| [^|]+ \| ([^|]+?) \|", text, re.MULTILINE))
    assert papers["--init"] == f"`{paper.init}`" and papers["--lr"] == f"{paper.lr:g}"
    assert papers["--schedule"] == f"`{paper.schedule}`"
    assert papers["--batch-size"] == str(paper.batch_size)


# ------------------------------------------------------------------------------ the init
def test_balanced_init_is_he_scaled_by_the_pixel_scale_spread_over_eight_layers():
    model = alexnet_cifar(seed=0, init="balanced")
    q = RAW_PIXEL_STD ** (-1 / 8)
    assert 0.59 < q < 0.6
    for name, layer, _ in model.named_layers():
        if not isinstance(layer, (Conv2d, Linear)):
            continue
        w, b = layer.params["w"], layer.params["b"]
        fan_in = int(np.prod(w.shape[1:]))
        expected = q * (0.01 if name == "fc8" else math.sqrt(2 / fan_in))
        expected *= CONV1_GAIN if name.endswith("conv1") else 1.0  # a small start
        assert abs(w.std() / expected - 1) < 0.06, (name, w.std(), expected)
        assert np.all(b == 0), name
    one = cnn4(seed=0, init="balanced")  # four weight layers: q = 64^(-1/4)
    fc = dict((name, layer) for name, layer, _ in one.named_layers())["fc"]
    assert abs(fc.params["w"].std() / (0.01 * RAW_PIXEL_STD**-0.25) - 1) < 0.06


def test_balanced_init_starts_conv1_blind_to_the_mean_colour():
    """Each conv1 kernel sums to zero in each input channel: a uniform colour gives 0."""
    model = alexnet_cifar(seed=1, init="balanced")
    conv1 = [layer for name, layer, _ in model.named_layers() if name.endswith("conv1")]
    assert len(conv1) == 2
    for layer in conv1:
        sums = layer.params["w"].sum(axis=(2, 3))
        assert np.abs(sums).max() < 1e-5 and np.abs(layer.params["w"]).max() > 0.02
    outputs = record_outputs(model)
    flat = np.zeros((2, 3, 32, 32), np.float32) + np.array([90.0, -40.0, 10.0])[:, None, None]
    model.forward(flat, train=False)
    inside = outputs["a.conv1"][:, :, 2:-2, 2:-2]  # away from the zero padding
    assert np.abs(inside).max() < 1e-3


def test_balanced_init_keeps_the_signal_where_scaled_lets_it_fade():
    """On shapes (raw pixels minus the mean image), the activations' scale from conv1 to fc7
    falls 15-fold with "balanced" and over 200-fold with "scaled" (docs/training.md)."""
    images = load_dataset("shapes", "train", size=256, seed=0).images
    x = eval_transform(images[:64], stats=dataset_statistics(images), crop=32)

    def fall(init: str) -> float:
        model = alexnet_cifar(seed=0, init=init)
        outputs = record_outputs(model)
        model.forward(x, train=False)
        rms = {k: float(np.sqrt(np.mean(np.square(outputs[k])))) for k in ("a.conv1", "a.fc7")}
        return rms["a.conv1"] / rms["a.fc7"]

    assert fall("balanced") < 40
    assert fall("scaled") > 100


# ------------------------------------------------------------------------------ the warning
def test_the_warning_says_near_chance_and_what_to_try():
    args = train.parse_args(["--init", "paper", "--lr", "0.05"])
    message = train.chance_warning(0.885, 10, args)
    assert message.startswith("warning: the best validation top-1 error, 88.5%, is still near ")
    assert "chance (90.0% for 10 classes)" in message
    assert "--init balanced" in message and "a lower --lr" in message
    assert "Try: " in message and "docs/training.md" in message
    assert train.chance_warning(0.30, 10, args) is None
    assert train.chance_warning(0.80, 10, args) is None  # 80% < 0.9 * 90%: it learned a little
    assert train.chance_warning(0.45, 2, args) is not None  # two classes: chance is 50%
    assert "the default recipe" in message
    # a run on the default recipe is not told to use it
    assert "the default recipe" not in train.chance_warning(0.885, 10, train.parse_args([]))
    tiny = train.parse_args(["--epochs", "1", "--train-size", "64"])
    assert "more --epochs" in train.chance_warning(0.9, 10, tiny)


def test_a_run_that_cannot_learn_ends_with_the_warning(tmp_path, capsys):
    """A learning rate of 1e-7 leaves the network where it started: at chance."""
    code = train.main([*TINY, "--lr", "1e-7", "--out", str(tmp_path / "still")])
    assert code == 0
    final = json.loads((tmp_path / "still" / "final.json").read_text())
    assert final["centre"]["top1_err"] >= 0.81
    captured = capsys.readouterr()
    assert "recipe: init balanced, lr 1e-07 (linear schedule), batch 64" in captured.out
    assert "is still near chance" in captured.err and "Try: " in captured.err


def test_a_run_that_learned_ends_without_it(tmp_path, capsys, monkeypatch):
    """The same kind of run, its evaluations reporting 25% error: no warning."""
    real = train.evaluate_model

    def learned(*args, **kwargs):
        return {**real(*args, **kwargs), "top1_err": 0.25}

    monkeypatch.setattr(train, "evaluate_model", learned)
    out = str(tmp_path / "learned")
    assert train.main([*TINY, "--recipe", "paper", "--lr", "1e-7", "--out", out]) == 0
    captured = capsys.readouterr()
    assert "recipe: init paper, lr 1e-07 (plateau schedule), batch 64" in captured.out
    assert "near chance" not in captured.err
