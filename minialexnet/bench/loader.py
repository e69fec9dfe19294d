"""Time the training input pipeline: images/s the loader delivers, by number of threads.

``python -m minialexnet.bench loader`` measures what ``python -m minialexnet.train``
feeds the model: a uint8 cache of images memory-mapped from an ``.npy`` file, batches
of 128 gathered from it in a shuffled order by :class:`~minialexnet.data.BatchLoader`,
and the training transform of each model (the same ``train_transform`` call as the
training command's): for ``alexnet`` random 227x227 crops of 256x256 images, flips
and PCA colour; for ``alexnet-cifar`` random 32x32 crops of 32x32 images zero-padded
to 40, flips and PCA colour. The consumer takes the batches and does nothing else, so
the rate is what the loader can supply, on the CPU only (no device is used).

By default the cache is ``--images`` synthetic images (uniform noise: the cost of the
pipeline does not depend on what the pictures show) written to a temporary ``.npy``
file and opened with ``np.load(mmap_mode="r")``, as the image-folder cache is; it was
just written, so it is in the page cache (a cache larger than memory is read from disk
instead: 196 KB per 256x256 image). ``--dataset shapes | cifar10 | folder:PATH`` goes
through ``load_dataset`` instead (a folder through its decoded cache).

The thread counts (``--workers``, default 1, 2, 4, ... up to the cores) are timed in
turns, ``--rounds`` rounds (a shared machine's speed drifts from minute to minute;
taking turns spreads the drift over all counts), and each count's figure is the median
of its rounds. In a round a count runs whole epochs until ``--min-seconds / --rounds``
have been timed (at least ``--passes`` epochs); the first ``--warmup`` batches of each
epoch are not timed (threads starting, the pipeline filling), so the figure is the
steady rate of a long epoch. Beside images/s, ``images/CPU-s`` divides the images by
the CPU time the process used meanwhile (all threads): what one core gives, whatever
else the machine is doing, so ``cores x images/CPU-s`` bounds the rate of many threads.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data import BatchLoader, Dataset, dataset_statistics, load_dataset, train_transform

#: model -> (stored image size, crop, padding): the training command's choices.
MODELS: dict[str, tuple[int, int, int]] = {"alexnet": (256, 227, 0), "alexnet-cifar": (32, 32, 4)}
DEFAULT_IMAGES = {"alexnet": 2048, "alexnet-cifar": 16384}  # 403 MB and 50 MB of uint8


@dataclass
class LoaderResult:
    """One measurement: a model's transform, at one thread count."""

    model: str
    image_size: int
    crop: int
    batch: int
    workers: int
    prefetch: int
    batches: int  # timed batches (warm-up batches excluded), all rounds
    seconds: float  # their total time
    images_per_s: float  # the median of the rounds' rates
    ms_per_batch: float  # batch / images_per_s
    images_per_s_min: float  # the slowest round
    images_per_s_max: float  # the fastest round
    images_per_cpu_s: float  # per second of CPU time of the process: what one core gives


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_counts(limit: int) -> list[int]:
    """1, 2, 4, ... up to ``limit``, and ``limit`` itself."""
    counts = [1]
    while counts[-1] * 2 <= limit:
        counts.append(counts[-1] * 2)
    if counts[-1] != limit:
        counts.append(limit)
    return counts


def synthetic_cache(folder: Path, n: int, image_size: int, seed: int = 0) -> Dataset:
    """``n`` random uint8 images written to ``folder/images-SIZE.npy``, opened as a memmap."""
    path = folder / f"images-{image_size}.npy"
    shape = (n, image_size, image_size, 3)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    rng = np.random.default_rng(seed)
    chunk = max(1, (64 << 20) // (image_size * image_size * 3))  # 64 MB at a time
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        out[start:stop] = rng.integers(0, 256, (stop - start, *shape[1:]), dtype=np.uint8)
    out.flush()
    del out
    labels = np.arange(n, dtype=np.int64) % 10
    images = np.load(path, mmap_mode="r")
    return Dataset(images, labels, [str(c) for c in range(10)], f"synthetic:{path}")


def real_cache(spec: str, n: int, image_size: int, data_dir: str | None) -> Dataset:
    """The first ``n`` training images of ``spec`` through ``load_dataset`` (a memmap stays one)."""
    size = n if spec == "shapes" else None  # shapes draws exactly n; the others are sliced
    data = load_dataset(spec, "train", data_dir=data_dir, image_size=image_size, size=size)
    return Dataset(data.images[:n], data.labels[:n], data.classes, data.name)


@dataclass(frozen=True)
class Timing:
    """What :func:`time_loader` measured."""

    batches: int  # timed batches
    seconds: float  # their wall time
    cpu_seconds: float  # the CPU time of the whole process (all threads) meanwhile
    prefetch: int  # the loader's prefetch


def time_loader(
    dataset: Any,
    transform: Any,
    *,
    batch: int,
    workers: int,
    prefetch: int | None = None,
    warmup: int = 2,
    min_seconds: float = 2.0,
    passes: int = 1,
) -> Timing:
    """Time whole epochs of a BatchLoader whose consumer does nothing.

    In each epoch the clocks start when batch ``warmup`` has arrived (at the start with
    ``warmup=0``) and stop when the last batch arrives; epochs repeat until ``min_seconds``
    are timed and ``passes`` are done.
    """
    batches_done, seconds, cpu_seconds, epoch = 0, 0.0, 0.0, 0
    used_prefetch = 0
    while epoch < passes or seconds < min_seconds:
        loader = BatchLoader(
            dataset, batch, transform, shuffle=True, seed=0, epoch=epoch, drop_last=True,
            workers=workers, prefetch=prefetch,
        )  # fmt: skip
        used_prefetch = loader.prefetch
        count = 0
        start = stop = (time.perf_counter(), time.process_time())
        with iter(loader) as batch_iterator:
            for _ in batch_iterator:
                count += 1
                now = (time.perf_counter(), time.process_time())
                if count == warmup:
                    start = now
                stop = now
        if count <= warmup:
            raise ValueError(
                f"time_loader: {len(dataset)} images make {count} batches of {batch}, no more "
                f"than the {warmup} warm-up batches; use more images or fewer warm-up batches"
            )
        batches_done += count - warmup
        seconds += stop[0] - start[0]
        cpu_seconds += stop[1] - start[1]
        epoch += 1
    return Timing(batches_done, seconds, cpu_seconds, used_prefetch)


def main(args: argparse.Namespace) -> int:
    """Run the benchmark with the parsed options; 0 on success, 2 when the data is unusable."""
    models = [args.model] if args.model else list(MODELS)
    counts = args.workers or worker_counts(cores())
    print(
        f"minialexnet loader benchmark: {cores()} cores, batch {args.batch}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
        f"{platform.processor() or platform.machine()}, numpy {np.__version__}; CPU only, "
        f"steady rate after {args.warmup} warm-up batches per epoch"
        + (
            f", GLIBC_TUNABLES={os.environ['GLIBC_TUNABLES']}"
            if "GLIBC_TUNABLES" in os.environ
            else ""
        ),
        flush=True,
    )
    results: list[LoaderResult] = []
    with tempfile.TemporaryDirectory(prefix="minialexnet-bench-loader-", dir=args.tmp_dir) as tmp:
        for model in models:
            image_size, crop, pad = MODELS[model]
            n = args.images or DEFAULT_IMAGES[model]
            if args.dataset == "synthetic":
                dataset = synthetic_cache(Path(tmp), n, image_size)
            else:
                try:
                    dataset = real_cache(args.dataset, n, image_size, args.data_dir)
                except ValueError as exc:
                    print(f"minialexnet.bench loader: {model}: {exc}", file=sys.stderr)
                    return 2
            if len(dataset) < args.batch * (args.warmup + 1):
                print(
                    f"minialexnet.bench loader: {len(dataset)} images make fewer than "
                    f"{args.warmup + 1} batches of {args.batch}; use more --images",
                    file=sys.stderr,
                )
                return 2
            stats = dataset_statistics(dataset.images[: min(len(dataset), 512)])
            # the training command's augment(): train_transform(images, rng, stats=stats,
            # crop=input_size, pad=pad)
            transform = functools.partial(train_transform, stats=stats, crop=crop, pad=pad)
            kind = "memmap" if isinstance(dataset.images, np.memmap) else "in memory"
            print(
                f"\n{model}: {crop}x{crop} crops of {len(dataset)} {image_size}x{image_size} "
                f"images ({kind}, {dataset.name}), flips, PCA colour",
                flush=True,
            )
            print(
                f"{'workers':>8} {'images/s':>10} {'ms/batch':>9} {'vs 1':>6} {'images/CPU-s':>12}",
                flush=True,
            )
            # in turns: round r times every count once, so a drift of the machine's speed
            # hits all counts alike; each count's figure is the median of its rounds
            rounds: dict[int, list[Timing]] = {w: [] for w in counts}
            for _ in range(args.rounds):
                for workers in counts:
                    rounds[workers].append(
                        time_loader(
                            dataset, transform, batch=args.batch, workers=workers,
                            prefetch=args.prefetch, warmup=args.warmup,
                            min_seconds=args.min_seconds / args.rounds, passes=args.passes,
                        )
                    )  # fmt: skip
            base = None
            for workers in counts:
                runs = rounds[workers]
                rates = [t.batches * args.batch / t.seconds for t in runs]
                rate = statistics.median(rates)
                base = base or rate
                cpu_rate = statistics.median(
                    t.batches * args.batch / max(t.cpu_seconds, 1e-9) for t in runs
                )
                result = LoaderResult(
                    model, image_size, crop, args.batch, workers, runs[0].prefetch,
                    sum(t.batches for t in runs), sum(t.seconds for t in runs), rate,
                    1e3 * args.batch / rate, min(rates), max(rates), cpu_rate,
                )  # fmt: skip
                results.append(result)
                print(
                    f"{workers:8d} {rate:10.0f} {result.ms_per_batch:9.1f} {rate / base:5.2f}x "
                    f"{cpu_rate:12.0f}   ({min(rates):.0f}-{max(rates):.0f} in "
                    f"{args.rounds} rounds)",
                    flush=True,
                )
            del dataset  # close the memmap before the folder goes
    if args.json:
        machine = {
            "cores": cores(),
            "processor": platform.processor() or platform.machine(),
            "numpy": np.__version__,
            "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
        }
        with open(args.json, "w") as f:
            json.dump(
                {
                    "benchmark": "loader",
                    "dataset": args.dataset,
                    "machine": machine,
                    "results": [asdict(r) for r in results],
                },
                f,
                indent=2,
            )
        print(f"wrote {args.json}")
    return 0


def _workers_list(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected thread counts >= 1 separated by commas, such as 1,2,4; got {text!r}"
        )
    return counts


def _number(kind: type, minimum: float = 0, inclusive: bool = False) -> Any:
    """An argparse type: a ``kind`` above ``minimum`` (or equal to it, with ``inclusive``)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (value == minimum and not inclusive):
            bound = ">=" if inclusive else ">"
            raise argparse.ArgumentTypeError(f"expected a number {bound} {minimum}, got {text!r}")
        return value

    return parse


_positive_int = _number(int)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m minialexnet.bench loader``."""
    parser.add_argument(
        "--model",
        choices=list(MODELS),
        help="one model's transform (default both: alexnet 227 of 256, alexnet-cifar 32 of 40)",
    )
    parser.add_argument(
        "--dataset",
        default="synthetic",
        help="synthetic (random images in a temporary .npy memmap) | shapes | cifar10 | "
        "folder:PATH",
    )
    parser.add_argument("--data-dir", help="where CIFAR-10 is, for --dataset cifar10")
    parser.add_argument(
        "--images",
        type=_positive_int,
        help="images in the cache (default 2048 for alexnet, 16384 for alexnet-cifar)",
    )
    parser.add_argument(
        "--workers",
        type=_workers_list,
        metavar="N,N,...",
        help=f"loader thread counts to time (default 1, 2, 4, ... up to the {cores()} cores)",
    )
    parser.add_argument(
        "--prefetch",
        type=_positive_int,
        help="batches ahead (default: the loader's, workers + 1 and at least 2)",
    )
    parser.add_argument("--batch", type=_positive_int, default=128, help="batch size")
    parser.add_argument(
        "--warmup",
        type=_number(int, 0, inclusive=True),
        default=2,
        help="untimed batches at the start of each epoch",
    )
    parser.add_argument(
        "--min-seconds",
        type=_number(float, 0, inclusive=True),
        default=3.0,
        help="time at least this long per count",
    )
    parser.add_argument(
        "--rounds",
        type=_positive_int,
        default=3,
        help="time the counts in turns, this many rounds (the median is reported)",
    )
    parser.add_argument("--passes", type=_positive_int, default=1, help="at least this many epochs")
    parser.add_argument("--tmp-dir", help="where the synthetic cache is written (default: $TMPDIR)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.set_defaults(run=main)
