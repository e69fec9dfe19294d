"""``python -m minialexnet.evaluate CKPT``: top-1 and top-5 error of a trained model.

The paper reports top-1 and top-5 error [6]: an example counts as a top-5
error when its true class is not among the five most probable. At test time it
averages the softmax outputs of ten patches -- the four corners and the centre
of the image, and their horizontal reflections [4.1]; ``--ten-crop`` does the
same, otherwise the centre patch alone is used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from . import functional as F
from .backend import Device, to_numpy
from .checkpoint import CheckpointError, load_checkpoint, unpack
from .data import BatchLoader, Dataset, Stats, eval_transform, load_dataset, ten_crop
from .models import model_from_config
from .viz import plot_confusion

__all__ = ["topk_correct", "evaluate_model", "image_features", "load_model", "main"]


def topk_correct(scores: np.ndarray, labels: np.ndarray, k: int) -> int:
    """How many rows have their label among the k highest scores (ties: any order)."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return int((top == labels[:, None]).any(axis=1).sum())


def evaluate_model(
    model: Any,
    dataset: Dataset,
    stats: Stats,
    *,
    batch_size: int = 128,
    ten_crops: bool = False,
    progress: bool = True,
    keep_predictions: bool = False,
) -> dict[str, Any]:
    """Loss and top-1/top-5 error (fractions) of ``model`` on ``dataset``, in order, no dropout.

    With ``ten_crops`` the softmax outputs of the ten patches are averaged per image.
    When the images are exactly the model's input size (32x32 CIFAR images for
    ``alexnet_cifar``) the five windows are all the whole image, so the average of
    the ten is that of the image and its mirror: only those two are computed.
    With ``keep_predictions`` the result also holds ``"predictions"``: the most probable
    class of every example, in the dataset's order (int64 array), e.g. for
    :func:`minialexnet.viz.plot_confusion`.
    """
    crop = model.input_size
    # patches 4 and 9 of TEN_CROP_ORDER: the centre and its mirror
    distinct = [4, 9] if tuple(dataset.images.shape[1:3]) == (crop, crop) else slice(None)
    if ten_crops:

        def transform(images: np.ndarray, rng: Any) -> np.ndarray:
            return ten_crop(images, stats=stats, crop=crop)
    else:

        def transform(images: np.ndarray, rng: Any) -> np.ndarray:
            return eval_transform(images, stats=stats, crop=crop)

    loader = BatchLoader(dataset, batch_size, transform, shuffle=False)
    loss_sum, top1, top5, seen, predictions = 0.0, 0, 0, 0, []
    bar = tqdm(
        loader,
        desc="evaluate" + (" (ten-crop)" if ten_crops else ""),
        unit="batch",
        leave=False,
        **({} if progress else {"disable": True}),  # else TQDM_DISABLE=1 may silence it
    )
    for x, y in bar:
        crops = x[distinct] if ten_crops else x[None]
        probs = np.mean([to_numpy(F.softmax(model.forward(c, train=False))) for c in crops], axis=0)
        loss_sum += float(-np.log(np.maximum(probs[np.arange(len(y)), y], 1e-30)).sum())
        top1 += topk_correct(probs, y, 1)
        top5 += topk_correct(probs, y, 5)
        seen += len(y)
        if keep_predictions:
            predictions.append(probs.argmax(axis=1))
    if seen == 0:
        raise ValueError(f"evaluate: the dataset {dataset.name!r} has no examples")
    result: dict[str, Any] = {
        "loss": loss_sum / seen,
        "top1_err": 1 - top1 / seen,
        "top5_err": 1 - top5 / seen,
        "examples": seen,
    }
    if keep_predictions:
        result["predictions"] = np.concatenate(predictions).astype(np.int64)
    return result


def image_features(
    model: Any, images: np.ndarray, stats: Stats, stage: str = "fc7", batch: int = 64
) -> np.ndarray:
    """The activations after ``stage`` (``model.features``) of uint8 images (N, H, W, 3),
    prepared as for evaluation (centre crop minus the mean image), in batches of
    ``batch``; a host array (N, D), float32. ``"fc7"``: the paper's 4096-d feature vector
    whose Euclidean neighbours are images the network finds alike [6.1, Figure 4]."""
    parts = []
    for i in range(0, len(images), batch):
        x = eval_transform(images[i : i + batch], stats=stats, crop=model.input_size)
        parts.append(to_numpy(model.features(x, stage)))
    return np.concatenate(parts)


def load_model(path: str | Path, devices: list[Device] | None = None) -> tuple[Any, Stats, dict]:
    """Rebuild a model from a training checkpoint: (model, data statistics, metadata).

    Raises :class:`~minialexnet.checkpoint.CheckpointError` (a ``ValueError``) naming the
    file when it is not a checkpoint, or a checkpoint that ``minialexnet.train`` did not
    write (no model config, weights or data statistics).
    """
    arrays, meta = load_checkpoint(path)
    config = meta.get("config")
    if not isinstance(config, dict) or "arch" not in config or "num_classes" not in config:
        raise CheckpointError(
            path,
            "a minialexnet checkpoint without a model config: not one written by "
            "minialexnet.train (use its checkpoint.npz or best.npz)",
        )
    try:
        model = model_from_config(config, devices=devices)
        model.load_state_dict(unpack(arrays, "model"))
        stats = Stats.from_arrays(unpack(arrays, "data"))
    except ValueError as exc:  # weights or statistics missing, of other shapes, ...
        raise CheckpointError(path, f"cannot rebuild its model: {exc}") from exc
    return model, stats, meta


def main(argv: list[str] | None = None) -> int:
    """``python -m minialexnet.evaluate CHECKPOINT``: top-1/top-5 errors; 0 on success."""
    parser = argparse.ArgumentParser(
        prog="python -m minialexnet.evaluate", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "checkpoint",
        help="a checkpoint.npz or best.npz written by train, or one python -m "
        "minialexnet.convert wrote (then give --dataset folder:PATH)",
    )
    parser.add_argument(
        "--dataset", help="shapes | cifar10 | folder:PATH (default: the one it was trained on)"
    )
    parser.add_argument("--data-dir", help="where CIFAR-10 lives (cifar10 only)")
    parser.add_argument("--split", default="val", choices=["val", "train"], help="default: val")
    parser.add_argument("--ten-crop", action="store_true", help="average ten patches per image")
    parser.add_argument(
        "--size",
        help="how many images: a number (a seeded random subset) or 'all'; default: the "
        "validation subset the run used (its --val-size), else all",
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto", help="auto | cpu | gpu | gpu:N")
    parser.add_argument("--json", help="write the result here (default: next to the checkpoint)")
    parser.add_argument(
        "--confusion", metavar="PNG", help="also draw the confusion matrix to this picture"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    size: int | None = None
    if args.size not in (None, "all"):
        try:
            size = int(args.size)
        except ValueError:
            parser.error(f"--size: expected a number or 'all', got {args.size!r}")

    # bad input (a bad --device, a file that is not a checkpoint, missing data) ends with
    # its message and exit status 2; anything else is a bug and keeps its traceback
    try:
        devices = [Device(args.device)]
    except (RuntimeError, ValueError) as exc:  # an unknown --device, or no GPU for it
        return _bad_input(exc)
    try:
        model, stats, meta = load_model(args.checkpoint, devices)
    except CheckpointError as exc:
        return _bad_input(exc)
    run = meta.get("run", {})
    if args.size is None and args.split == "val":
        size = run.get("val_size")
    if args.dataset is None and "dataset" not in run and "source" in meta:
        return _bad_input(
            f"{args.checkpoint} was converted from {meta['source'].get('file')}, not trained "
            "here: give the data with --dataset folder:PATH (for ImageNet weights, PATH/val/ "
            "with one subfolder per class, named by WordNet id: n01440764, n01443537, ...)"
        )
    spec = args.dataset or run.get("dataset", "shapes")
    try:
        dataset = load_dataset(
            spec,
            args.split,
            data_dir=args.data_dir or run.get("data_dir"),
            image_size=run.get("image_size", model.input_size),
            size=size,
            seed=run.get("seed", 0),
            progress=not args.quiet,
        )
    except (ValueError, FileNotFoundError) as exc:  # no such data, an unknown --dataset, ...
        return _bad_input(exc)
    trained_on = meta.get("classes")
    # a converted ImageNet checkpoint also knows its classes' WordNet ids (folder names)
    same = dataset.classes in (trained_on, meta.get("class_ids"))
    if trained_on is not None and not same:
        return _bad_input(
            f"{args.checkpoint} was trained on {len(trained_on)} classes "
            f"{_some(trained_on)}, but {spec} {args.split} has {len(dataset.classes)} "
            f"{_some(dataset.classes)}: evaluate it on the data it was trained on (leave out "
            "--dataset) or on data with the same classes"
        )
    result = evaluate_model(
        model,
        dataset,
        stats,
        batch_size=args.batch_size,
        ten_crops=args.ten_crop,
        progress=not args.quiet,
        keep_predictions=bool(args.confusion),
    )
    if args.confusion:
        predictions = result.pop("predictions")
        crops = "ten-crop" if args.ten_crop else "centre crop"
        plot_confusion(
            dataset.labels,
            predictions,
            dataset.classes,
            args.confusion,
            title=f"{spec} {args.split} ({crops}): top-1 error {100 * result['top1_err']:.1f}%",
        )
        print(f"wrote {args.confusion}")
    result.update(
        checkpoint=str(args.checkpoint),
        dataset=spec,
        split=args.split,
        ten_crop=args.ten_crop,
        epoch=meta.get("epoch"),
    )
    print(
        f"{spec} {args.split}: top-1 error {100 * result['top1_err']:.2f}%, "
        f"top-5 error {100 * result['top5_err']:.2f}% on {result['examples']} images"
        + (" (ten-crop)" if args.ten_crop else " (centre crop)")
    )
    out = (
        Path(args.json)
        if args.json
        else Path(args.checkpoint).with_suffix(".tencrop.json" if args.ten_crop else ".eval.json")
    )
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def _some(names: list[str], show: int = 4) -> str:
    """The first few class names, for a message: ``[a, b, c, d, ...]``."""
    return "[" + ", ".join(names[:show]) + (", ...]" if len(names) > show else "]")


def _bad_input(problem: Exception | str) -> int:
    """Print what was wrong with the command line's input; the exit status 2."""
    print(f"minialexnet.evaluate: {problem}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
