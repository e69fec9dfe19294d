"""Every command line ends bad input with its message alone and exit status 2; --quiet is quiet.

Each case runs one CLI (``python -m minialexnet.X``, in a subprocess, as a user would) on
one bad input a user really gives -- a missing file, a file that is not a checkpoint, an
.npz holding pickled objects, a checkpoint of another format, a missing or empty dataset
folder, a model/dataset mismatch, a bad option value -- and checks the exit status 2, the
message, and that no Python traceback is printed. Bad input fails fast: the whole file
takes well under a minute on two cores.

The ``--quiet`` tests check that no progress bar is drawn, the image cache's first
decoding included, and that ``TQDM_DISABLE=1`` silences the bars as well.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minialexnet import evaluate, train
from minialexnet.checkpoint import save_checkpoint
from minialexnet.data.cifar10 import main as cifar10_main

ROOT = Path(__file__).resolve().parents[1]
BAR = "%|"  # what every tqdm bar draws ("  0%|    | 0/3"), and nothing else prints


def tiny_tree(root: Path, classes: tuple[str, ...] = ("circle", "square")) -> Path:
    """An ImageNet-style tree root/{train,val}/CLASS/*.png of a few 12x12 images."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The bad (and the few good) inputs the cases name, as ``{name}`` in their arguments."""
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "text.txt").write_text("hello, not a checkpoint\n")
    np.savez(tmp / "pickled.npz", a=np.array([{"x": 1}], dtype=object))
    np.savez(tmp / "plain.npz", weights=np.zeros(3))
    header = {"format": "minialexnet-checkpoint", "version": 99}
    meta = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(tmp / "version99.npz", __meta__=meta)
    save_checkpoint(tmp / "meta_only.npz", {}, {"note": "no model in here"})
    (tmp / "empty").mkdir()
    (tmp / "no_classes" / "train").mkdir(parents=True)
    (tmp / "corrupt").mkdir()
    (tmp / "corrupt" / "checkpoint.npz").write_bytes(b"not a checkpoint at all")
    tiny_tree(tmp / "tree")
    run = tmp / "run"  # a real checkpoint: 10 classes of shapes, alexnet-cifar
    argv = ["--dataset", "shapes", "--train-size", "64", "--val-size", "32", "--batch-size",
            "32", "--epochs", "1", "--device", "cpu", "--quiet", "--no-ten-crop"]  # fmt: skip
    assert train.main([*argv, "--out", str(run)]) == 0
    return {
        "tmp": str(tmp),
        "text": str(tmp / "text.txt"),
        "text_uri": (tmp / "text.txt").as_uri(),
        "missing": str(tmp / "missing"),
        "missing_uri": (tmp / "missing.tar.gz").as_uri(),
        **{name: str(tmp / f"{name}.npz") for name in ("pickled", "plain", "version99")},
        "meta_only": str(tmp / "meta_only.npz"),
        "empty": str(tmp / "empty"),
        "no_classes": str(tmp / "no_classes"),
        "corrupt": str(tmp / "corrupt"),
        "tree": str(tmp / "tree"),
        "run": str(run),
        "best": str(run / "best.npz"),
        "cache": str(tmp / "cache"),
    }


NOT_NPZ = r"not an \.npz file"
PICKLED = r"pickled Python objects"
CASES = [
    # (CLI, arguments, what the message must say)
    ("evaluate", ["{missing}.npz"], r"missing\.npz'?: no such file"),
    ("evaluate", ["{text}"], NOT_NPZ),
    ("evaluate", ["{pickled}"], PICKLED),
    ("evaluate", ["{plain}"], r"without the '__meta__' header: not a minialexnet checkpoint"),
    ("evaluate", ["{version99}"], r"format version 99"),
    ("evaluate", ["{meta_only}"], r"without a model config"),
    ("evaluate", ["{best}", "--dataset", "folder:{missing}"], r"does not exist"),
    ("evaluate", ["{best}", "--dataset", "folder:{no_classes}"], r"has no class folders"),
    ("evaluate", ["{best}", "--dataset", "folder:{tree}"], r"trained on 10 classes .* has 2"),
    ("evaluate", ["{best}", "--dataset", "cifar10", "--data-dir", "{empty}"], r"CIFAR-10 not "),
    ("evaluate", ["{best}", "--dataset", "imagenet"], r"unknown dataset 'imagenet'"),
    ("evaluate", ["{best}", "--device", "tpu"], r"unknown device 'tpu'"),
    ("evaluate", ["{best}", "--size", "many"], r"--size: expected a number or 'all'"),
    ("predict", ["{pickled}", "{text}"], PICKLED),
    ("predict", ["{text}", "{text}"], NOT_NPZ),
    ("predict", ["{best}", "{missing}.png"], r"no readable images"),
    ("train", ["--dataset", "folder:{missing}"], r"image root .*missing does not exist"),
    ("train", ["--dataset", "folder:{no_classes}"], r"has no class folders"),
    ("train", ["--dataset", "cifar10", "--data-dir", "{empty}"], r"CIFAR-10 not found"),
    ("train", ["--dataset", "imagenet"], r"unknown dataset 'imagenet'"),
    ("train", ["--model", "alexnet", "--dataset", "cifar10"], r"CIFAR-10 images are 32x32"),
    ("train", ["--out", "{text}"], r"--out .*text\.txt.* is a file"),
    ("train", ["--resume", "--out", "{corrupt}"], NOT_NPZ),
    ("train", ["--resume", "--model", "cnn4", "--out", "{run}"], r"config\.arch: checkpoint"),
    ("train", ["--device", "tpu"], r"unknown device 'tpu'"),
    ("train", ["--workers", "0"], r"--workers: expected the number of loader threads"),
    ("experiments", ["lrn", "--dataset", "folder:{missing}", "--out", "{tmp}/x"], r"not exist"),
    ("experiments", ["lrn", "--report-only", "--out", "{empty}"], r"no run of 'with LRN'"),
    ("bench", ["layers", "--device", "tpu"], r"unknown device 'tpu'"),
    (
        "bench",
        ["loader", "--model", "alexnet-cifar", "--dataset", "cifar10", "--data-dir", "{empty}"],
        r"CIFAR-10 not found",
    ),
    ("bench", ["loader", "--dataset", "folder:{missing}"], r"does not exist"),
    ("data.cifar10", ["download", "--data-dir", "{text}"], r"--data-dir .*text\.txt is a file"),
    (
        "data.cifar10",
        ["download", "--data-dir", "{tmp}/dl", "--url", "{missing_uri}"],
        r"No such file",
    ),
    (
        "data.cifar10",
        ["download", "--data-dir", "{tmp}/dl", "--url", "{text_uri}"],
        r"checksum mismatch",
    ),
    ("exercises", ["grade", "{missing}"], r"is not a folder"),
    ("exercises", ["list", "--catalogue", "{missing}.toml"], r"no exercise catalogue"),
]


def run_cli(module: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m minialexnet.<module> ARGS`` from the scratch folder, output captured."""
    return subprocess.run(
        [sys.executable, "-m", f"minialexnet.{module}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=env["SCRATCH"],
    )


def cli_env(places: dict[str, str], **extra: str) -> dict[str, str]:
    """This environment, with the package importable, a scratch image cache, one BLAS thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQDM_")}
    path = env.get("PYTHONPATH")
    env.update(
        PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""),
        MINIALEXNET_CACHE=places["cache"],
        OPENBLAS_NUM_THREADS="1",
        SCRATCH=places["tmp"],  # the working folder: nothing is written in the checkout
    )
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [pytest.param(m, a, msg, id=f"{m} {' '.join(a)}") for m, a, msg in CASES],
)
def test_bad_input_ends_with_the_message_and_status_2(places, module, args, message):
    argv = [a.format(**places) for a in args]
    if module == "train":  # the checks come before any training; keep the data small anyway
        argv = ["--train-size", "64", "--val-size", "32", *argv]
        if "--device" not in argv:
            argv += ["--device", "cpu"]
    if module in ("evaluate", "predict") and "--device" not in argv:
        argv += ["--device", "cpu"]
    done = run_cli(module, argv, cli_env(places))
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == 2, output
    assert re.search(message, done.stderr), done.stderr


# ------------------------------------------------------------------------------- --quiet


def train_on_tree(tmp_path: Path, *extra: str) -> int:
    """Train one epoch on a fresh tiny image tree (the cache decodes it first)."""
    tree = tiny_tree(tmp_path / "tree")
    return train.main(["--dataset", f"folder:{tree}", "--batch-size", "4", "--epochs", "1",
                       "--device", "cpu", "--no-ten-crop", "--out", str(tmp_path / "run"),
                       *extra])  # fmt: skip


def test_quiet_silences_every_bar_of_train_the_image_cache_included(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setenv("MINIALEXNET_CACHE", str(tmp_path / "cache"))
    assert train_on_tree(tmp_path / "loud") == 0
    err = capfd.readouterr().err
    assert "decoding" in err and "epoch 1" in err and BAR in err  # the bars this test hides
    assert train_on_tree(tmp_path / "quiet", "--quiet") == 0
    err = capfd.readouterr().err
    assert BAR not in err and "decoding" not in err, err


def test_tqdm_disable_silences_the_bars_without_quiet(places, tmp_path):
    tree = tiny_tree(tmp_path / "tree")
    argv = ["--dataset", f"folder:{tree}", "--batch-size", "4", "--epochs", "1", "--device",
            "cpu", "--out", str(tmp_path / "run")]  # fmt: skip
    env = cli_env(places, MINIALEXNET_CACHE=str(tmp_path / "cache"), TQDM_DISABLE="1")
    done = run_cli("train", argv, env)
    assert done.returncode == 0, done.stderr
    assert "top-1 error" in done.stdout  # it trained, validated and tested
    assert BAR not in done.stderr, done.stderr


def test_evaluate_quiet_draws_no_bar(places, capfd, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    out = Path(places["tmp"]) / "eval.json"
    assert evaluate.main([places["best"], "--device", "cpu", "--json", str(out)]) == 0
    assert BAR in capfd.readouterr().err
    assert evaluate.main([places["best"], "--device", "cpu", "--json", str(out), "--quiet"]) == 0
    assert BAR not in capfd.readouterr().err


def test_cifar10_download_quiet_draws_no_bar(places, tmp_path, capfd):
    argv = ["download", "--data-dir", str(tmp_path), "--url", places["text_uri"]]
    assert cifar10_main(argv) == 2  # the checksum differs: after the whole download
    assert BAR in capfd.readouterr().err
    assert cifar10_main([*argv, "--quiet"]) == 2
    err = capfd.readouterr().err
    assert BAR not in err and "checksum mismatch" in err
