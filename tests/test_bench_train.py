"""The training-step benchmark: what it counts, prints and writes (CPU; the GPU check runs it
on a GPU with the PyTorch comparison)."""

from __future__ import annotations

import json

import pytest

from minialexnet.backend import Device, gpu_available
from minialexnet.bench.__main__ import main
from minialexnet.models import model_from_config


def _model(arch: str):
    classes = 1000 if arch == "alexnet" else 10
    config = {"arch": arch, "num_classes": classes, "init": "scaled"}
    return model_from_config(config, devices=[Device("cpu")], seed=0)


def test_forward_flops_of_the_paper_model_by_hand():
    # multiply-adds per image: output entries x (inputs a kernel sees), per layer
    macs = (
        55 * 55 * 96 * (3 * 11 * 11)  # conv1 (both towers: 2 x 48 kernels)
        + 27 * 27 * 256 * (48 * 5 * 5)  # conv2, grouped: each kernel sees its tower's 48 maps
        + 13 * 13 * 384 * (256 * 3 * 3)  # conv3 sees both towers
        + 13 * 13 * 384 * (192 * 3 * 3)  # conv4, grouped
        + 13 * 13 * 256 * (192 * 3 * 3)  # conv5, grouped
        + 4096 * 9216
        + 4096 * 4096
        + 1000 * 4096
    )
    model = _model("alexnet")
    assert model.forward_flops() == 2 * macs == 1_448_813_632
    assert model.forward_flops(128) == 128 * 2 * macs


def test_bench_train_prints_rate_tflops_memory_and_profile_and_writes_json(tmp_path, capsys):
    out = tmp_path / "train.json"
    argv = ["train", "--model", "alexnet-cifar", "--batch", "8", "--steps", "1", "--warmup", "0"]
    assert main([*argv, "--no-torch", "--profile", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "alexnet-cifar, batch 8, on cpu (both towers)" in printed
    assert "minialexnet float32" in printed and "TFLOP/s" in printed
    assert "peak memory in use: cpu" in printed
    assert "one profiled step" in printed and "conv2" in printed
    assert "TF32" not in printed.split("GFLOP per step")[1], "no TF32 rows on the CPU"
    (r,) = json.loads(out.read_text())["results"]
    assert r["devices"] == ["cpu"] and r["batch"] == 8
    assert r["step_flops"] == 3 * _model("alexnet-cifar").forward_flops(8)
    assert r["tflops"] == pytest.approx(r["step_flops"] / (r["ms_per_step"] / 1e3) / 1e12)
    assert r["images_per_s"] == pytest.approx(8 / (r["ms_per_step"] / 1e3))
    # two steps of batch 8 need at least the parameters' gradients and momentum
    params = sum(p.nbytes for _, p, _ in _model("alexnet-cifar").parameters())
    assert r["peak_memory_bytes"]["cpu"] > params
    assert r["tf32_images_per_s"] is None and r["torch_images_per_s"] is None
    assert {k.split(".", 1)[-1] for k in r["profile_ms"]} >= {"conv1", "pool1", "fc8", "other"}
    assert all(ms >= 0 for ms in r["profile_ms"].values())


@pytest.mark.skipif(gpu_available(), reason="checks the message shown where there is no GPU")
def test_bench_train_on_a_missing_gpu_says_what_to_install(capsys):
    assert main(["train", "--device", "gpu", "--steps", "1"]) == 2
    assert "CuPy" in capsys.readouterr().out


def test_bench_train_refuses_a_bad_batch(capsys):
    assert main(["train", "--model", "alexnet-cifar", "--batch", "0"]) == 2
    assert "--batch must be >= 1" in capsys.readouterr().out
