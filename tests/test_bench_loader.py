"""``python -m minialexnet.bench loader``: times the training input pipeline on the CPU."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from minialexnet.bench.__main__ import main
from minialexnet.bench.loader import synthetic_cache, time_loader, worker_counts
from minialexnet.data import dataset_statistics, train_transform

SMALL = [
    "--images",
    "320",
    "--batch",
    "32",
    "--min-seconds",
    "0.05",
    "--warmup",
    "1",
    "--rounds",
    "2",
]


def _rows(printed: str, model: str) -> dict[int, tuple[float, float]]:
    """{workers: (images/s, ms/batch)} of one model's table in the printed output."""
    table = printed.split(f"\n{model}: ", 1)[1].split("\n\n", 1)[0]
    row = r"^\s+(\d+)\s+(\d+)\s+([\d.]+)\s+[\d.]+x\s+\d+\s+\(\d+-\d+ in 2 rounds\)$"
    rows = re.findall(row, table, flags=re.MULTILINE)
    return {int(w): (float(rate), float(ms)) for w, rate, ms in rows}


def test_bench_loader_prints_images_per_s_per_worker_count_and_writes_json(tmp_path, capsys):
    out = tmp_path / "loader.json"
    argv = ["loader", *SMALL, "--workers", "1,2", "--tmp-dir", str(tmp_path), "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "CPU only" in printed
    assert "alexnet: 227x227 crops of 320 256x256 images (memmap" in printed
    assert "alexnet-cifar: 32x32 crops of 320 32x32 images (memmap" in printed
    for model in ("alexnet", "alexnet-cifar"):
        rows = _rows(printed, model)
        assert sorted(rows) == [1, 2], printed
        assert all(rate > 0 and ms > 0 for rate, ms in rows.values())
    data = json.loads(out.read_text())
    assert data["benchmark"] == "loader" and data["machine"]["cores"] >= 1
    results = data["results"]
    assert [(r["model"], r["workers"]) for r in results] == [
        ("alexnet", 1),
        ("alexnet", 2),
        ("alexnet-cifar", 1),
        ("alexnet-cifar", 2),
    ]
    for r in results:
        assert r["crop"] == (227 if r["model"] == "alexnet" else 32)
        assert r["batch"] == 32 and r["batches"] >= 1 and r["seconds"] > 0
        assert r["images_per_s_min"] <= r["images_per_s"] <= r["images_per_s_max"]
        assert r["ms_per_batch"] == pytest.approx(1e3 * 32 / r["images_per_s"])
        assert r["images_per_cpu_s"] > 0
        assert r["prefetch"] == max(2, r["workers"] + 1)
    assert list(tmp_path.iterdir()) == [out], "the temporary cache is removed"


def test_bench_loader_through_load_dataset(tmp_path, capsys):
    argv = ["loader", *SMALL, "--model", "alexnet-cifar", "--dataset", "shapes", "--workers", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "alexnet-cifar: 32x32 crops of 320 32x32 images (in memory, shapes" in printed
    assert "\nalexnet: " not in printed
    assert sorted(_rows(printed, "alexnet-cifar")) == [1]


def test_bench_loader_explains_bad_arguments(tmp_path, capsys):
    for bad in (["--workers", "0"], ["--workers", "1,x"], ["--images", "-5"], ["--warmup", "-1"]):
        with pytest.raises(SystemExit) as info:
            main(["loader", *bad])
        assert info.value.code == 2
        assert "expected" in capsys.readouterr().err
    assert main(["loader", "--images", "40", "--batch", "32", "--tmp-dir", str(tmp_path)]) == 2
    assert "use more --images" in capsys.readouterr().err
    code = main(["loader", "--model", "alexnet", "--dataset", "cifar10", "--data-dir", "x"])
    assert code == 2
    assert "CIFAR-10 images are 32x32" in capsys.readouterr().err


def test_worker_counts_are_powers_of_two_up_to_the_cores():
    assert worker_counts(1) == [1]
    assert worker_counts(2) == [1, 2]
    assert worker_counts(6) == [1, 2, 4, 6]
    assert worker_counts(16) == [1, 2, 4, 8, 16]


def test_synthetic_cache_is_a_memmap_and_time_loader_counts_the_timed_batches(tmp_path):
    data = synthetic_cache(tmp_path, 100, 8)
    assert isinstance(data.images, np.memmap) and data.images.shape == (100, 8, 8, 3)
    assert data.images.dtype == np.uint8 and len(data.labels) == 100

    def transform(images, rng):
        return train_transform(images, rng, stats=stats, crop=6)

    stats = dataset_statistics(data.images)
    timing = time_loader(data, transform, batch=10, workers=2, warmup=3, min_seconds=0, passes=2)
    assert timing.batches == 2 * (10 - 3) and timing.prefetch == 3
    assert timing.seconds > 0 and timing.cpu_seconds > 0
    timing = time_loader(data, transform, batch=10, workers=1, warmup=0, min_seconds=0)
    assert timing.batches == 10
    for batch, warmup in ((200, 0), (50, 2)):  # no batch; no batch after the warm-up
        with pytest.raises(ValueError, match="use more images"):
            time_loader(data, transform, batch=batch, workers=1, warmup=warmup, min_seconds=1)
