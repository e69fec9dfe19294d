"""The training command end to end on a tiny built-in dataset: outputs, resume, NaN, CLIs."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PIL import Image

from minialexnet import evaluate, predict, train
from minialexnet.checkpoint import load_checkpoint, unpack
from minialexnet.optim import SGD

TINY = [
    "--dataset",
    "shapes",
    "--train-size",
    "192",
    "--val-size",
    "64",
    "--batch-size",
    "64",
    "--device",
    "cpu",
    "--quiet",
    "--no-ten-crop",
]


def run(tmp_path, name, *extra):
    out = tmp_path / name
    code = train.main([*TINY, "--out", str(out), *extra])
    return code, out


def model_arrays(path):
    arrays, meta = load_checkpoint(path)
    return unpack(arrays, "model"), meta


def test_a_run_writes_metrics_checkpoints_and_curves(tmp_path):
    code, out = run(tmp_path, "run", "--epochs", "2")
    assert code == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    keys = {
        "epoch",
        "lr",
        "train_loss",
        "train_top1_err",
        "val_top1_err",
        "val_top5_err",
        "images_per_s",
        "seconds",
    }
    for r in records:
        assert keys <= set(r)
        assert all(0 <= r[k] <= 1 for k in ("train_top1_err", "val_top1_err", "val_top5_err"))
        assert r["images_per_s"] > 0 and np.isfinite(r["train_loss"])
    for name in ("checkpoint.npz", "best.npz", "curves.png", "final.json"):
        assert (out / name).exists(), name
    _, meta = model_arrays(out / "checkpoint.npz")
    assert meta["epoch"] == 2 and meta["batch"] == 0
    assert meta["config"]["arch"] == "alexnet-cifar" and len(meta["classes"]) >= 10


def test_resume_after_an_epoch_gives_the_same_result(tmp_path):
    """A finished 1-epoch run extended to 2 with --resume equals a 2-epoch run (a schedule
    that does not depend on --epochs: the linear one plans its line over the epochs)."""
    plateau = ("--schedule", "plateau")
    assert run(tmp_path, "straight", "--epochs", "2", *plateau)[0] == 0
    assert run(tmp_path, "split", "--epochs", "1", *plateau)[0] == 0
    assert run(tmp_path, "split", "--epochs", "2", "--resume", *plateau)[0] == 0
    a, _ = model_arrays(tmp_path / "straight" / "checkpoint.npz")
    b, _ = model_arrays(tmp_path / "split" / "checkpoint.npz")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    lines_a = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    lines_b = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["val_top1_err"] for x in lines_a] == [
        json.loads(x)["val_top1_err"] for x in lines_b
    ]


def test_ctrl_c_mid_epoch_saves_and_resume_continues_exactly(tmp_path, monkeypatch):
    assert run(tmp_path, "straight", "--epochs", "1")[0] == 0
    calls = {"n": 0}
    real_step = SGD.step

    def interrupted_step(self):
        calls["n"] += 1
        if calls["n"] == 2:  # after one full batch, during the second
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(SGD, "step", interrupted_step)
    assert run(tmp_path, "split", "--epochs", "1")[0] == 130
    _, meta = model_arrays(tmp_path / "split" / "checkpoint.npz")
    assert (meta["epoch"], meta["batch"]) == (0, 1)
    monkeypatch.setattr(SGD, "step", real_step)
    assert run(tmp_path, "split", "--epochs", "1", "--resume")[0] == 0
    a, _ = model_arrays(tmp_path / "straight" / "checkpoint.npz")
    b, _ = model_arrays(tmp_path / "split" / "checkpoint.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_time_limit_validates_the_part_trained_epoch_and_resume_replaces_it(tmp_path):
    """--max-minutes stops after the first batch (3 per epoch here): that third of an epoch is
    validated, logged with its fraction and reported; --resume then completes the epoch."""
    plateau = ("--schedule", "plateau")  # linear would spend its whole line in the 1e-9 min
    code, out = run(tmp_path, "limited", "--epochs", "1", "--max-minutes", "1e-9", *plateau)
    assert code == 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["epoch"] == 1
    assert records[0]["epoch_fraction"] == pytest.approx(1 / 3, abs=1e-3)
    assert 0 <= records[0]["val_top1_err"] <= 1
    assert (out / "best.npz").exists() and (out / "final.json").exists()
    _, meta = model_arrays(out / "checkpoint.npz")
    assert (meta["epoch"], meta["batch"]) == (0, 1)

    assert run(tmp_path, "limited", "--epochs", "1", "--resume", *plateau)[0] == 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 1 and "epoch_fraction" not in records[0]
    assert run(tmp_path, "straight", "--epochs", "1", *plateau)[0] == 0
    a, _ = model_arrays(tmp_path / "straight" / "checkpoint.npz")
    b, _ = model_arrays(out / "checkpoint.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_linear_schedule_reaches_zero_at_the_end_of_the_epochs_and_resumes_exactly(
    tmp_path, monkeypatch
):
    """3 batches per epoch, 2 epochs: batch b (0..5) trains with lr 0.01 * (1 - b/6); a record
    keeps the lr of its epoch's last batch. Interrupted in epoch 2 and resumed, the run
    continues the same line to the same weights."""
    code, out = run(tmp_path, "straight", "--epochs", "2", "--schedule", "linear", "--lr", "0.01")
    assert code == 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in records] == pytest.approx([0.01 * 4 / 6, 0.01 * 1 / 6])

    calls = {"n": 0}
    real_step = SGD.step

    def interrupted_step(self):
        calls["n"] += 1
        if calls["n"] == 5:  # during the second batch of epoch 2
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(SGD, "step", interrupted_step)
    assert run(tmp_path, "split", "--epochs", "2", "--schedule", "linear", "--lr", "0.01")[0] == 130
    monkeypatch.setattr(SGD, "step", real_step)
    code, split = run(
        tmp_path, "split", "--epochs", "2", "--schedule", "linear", "--lr", "0.01", "--resume"
    )
    assert code == 0
    a, _ = model_arrays(out / "checkpoint.npz")
    b, _ = model_arrays(split / "checkpoint.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")  # overflow is the point
def test_a_diverging_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    assert run(tmp_path, "nan", "--epochs", "1")[0] == 0
    before = (tmp_path / "nan" / "checkpoint.npz").read_bytes()
    code, _ = run(tmp_path, "nan", "--epochs", "2", "--lr", "1e12")  # a new run, same folder
    assert code == 1
    assert "loss became" in capsys.readouterr().err
    assert (tmp_path / "nan" / "checkpoint.npz").read_bytes() == before


def test_each_epoch_reports_how_long_it_waited_for_data(tmp_path, capsys, monkeypatch):
    """The epoch line and metrics.jsonl give the share of the epoch spent blocked in the
    loader; a slow transform (here a sleep) shows up in it."""
    real_transform = train.train_transform

    def slow_transform(*args, **kwargs):
        time.sleep(0.4)  # data starves the model
        return real_transform(*args, **kwargs)

    monkeypatch.setattr(train, "train_transform", slow_transform)
    code, out = run(tmp_path, "starved", "--epochs", "1", "--workers", "1")
    assert code == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "metrics.jsonl").read_text())
    assert f"data wait {100 * record['data_wait_share']:.0f}% of the epoch" in printed
    # the first batch alone (nothing to overlap it with) was waited for 0.4 s at least
    assert 0.35 <= record["data_wait_share"] * record["seconds"] <= record["seconds"], record

    monkeypatch.setattr(train, "train_transform", real_transform)
    code, out = run(tmp_path, "fed", "--epochs", "1", "--workers", "2")
    assert code == 0
    assert "% of the epoch" in capsys.readouterr().out
    assert 0 <= json.loads((out / "metrics.jsonl").read_text())["data_wait_share"] < 1


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_workers_must_be_a_positive_integer(tmp_path, capsys, value):
    with pytest.raises(SystemExit):
        train.main([*TINY, "--out", str(tmp_path / "x"), "--workers", value])
    err = capsys.readouterr().err
    assert "--workers" in err and "integer >= 1" in err


def test_resume_refuses_a_corrupted_checkpoint(tmp_path):
    out = tmp_path / "bad"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="checkpoint"):
        train.main([*TINY, "--out", str(out), "--epochs", "1", "--resume"])


def test_evaluate_and_predict_on_a_trained_checkpoint(tmp_path, capsys):
    code, out = run(tmp_path, "run", "--epochs", "1")
    assert code == 0
    assert (
        evaluate.main(
            [
                str(out / "best.npz"),
                "--ten-crop",
                "--device",
                "cpu",
                "--json",
                str(tmp_path / "eval.json"),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["ten_crop"] and result["examples"] == 64  # the run's --val-size
    assert 0 <= result["top5_err"] <= result["top1_err"] <= 1
    evaluate.main([str(out / "best.npz"), "--size", "32", "--json", str(tmp_path / "e32.json")])
    assert json.loads((tmp_path / "e32.json").read_text())["examples"] == 32
    cm = tmp_path / "cm.png"
    assert evaluate.main([str(out / "best.npz"), "--confusion", str(cm)]) == 0
    assert Image.open(cm).format == "PNG"
    with pytest.raises(SystemExit):
        evaluate.main([str(out / "best.npz"), "--size", "many"])
    img = np.zeros((48, 64, 3), np.uint8)
    img[10:40, 20:50] = 255
    Image.fromarray(img).save(tmp_path / "square.png")
    capsys.readouterr()
    assert (
        predict.main(
            [
                str(out / "best.npz"),
                str(tmp_path / "square.png"),
                "--device",
                "cpu",
                "--plot",
                str(tmp_path / "top5.png"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert printed.startswith("square.png: ") and printed.count("%") >= 5
    assert (tmp_path / "top5.png").stat().st_size > 0


def test_tf32_is_recorded_and_said_to_do_nothing_on_the_cpu(tmp_path, capsys, monkeypatch):
    asked = []
    monkeypatch.setattr(train, "set_tf32", lambda on: asked.append(on) or False)
    code, out = run(tmp_path, "tf32", "--epochs", "1", "--tf32")
    assert code == 0
    assert "--tf32 applies to GPUs only" in capsys.readouterr().err
    assert asked == [False], "TF32 stays off where there is no GPU"
    _, meta = model_arrays(out / "checkpoint.npz")
    assert meta["run"]["tf32"] is True


def test_training_skips_the_images_gradient(tmp_path, monkeypatch):
    seen = []
    real = train.model_from_config

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(train, "model_from_config", spy)
    code, _ = run(tmp_path, "noinput", "--epochs", "1")
    assert code == 0 and seen[0].input_grad is False
