"""``python -m minialexnet.predict CKPT IMAGE...``: the five most probable classes of each image.

Each image is prepared as in training -- shorter side resized to the stored
image size, centre crop, mean image subtracted, centre patch -- and the
softmax probabilities of its top five classes are printed. ``--plot out.png``
draws each image beside a bar chart of its top five, as in the paper's
Figure 4 (left).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import functional as F
from .backend import Device, to_numpy
from .checkpoint import CheckpointError
from .data import eval_transform
from .data.folder import decode_image
from .evaluate import load_model
from .viz import plot_top5

__all__ = ["load_image", "main"]

BATCH = 32


def load_image(path: str | Path, size: int) -> np.ndarray:
    """An image file as uint8 (size, size, 3): RGB, shorter side resized to size, centre
    crop; decoded as the datasets decode (:func:`minialexnet.data.folder.decode_image`)."""
    return decode_image(path, size)


def main(argv: list[str] | None = None) -> int:
    """``python -m minialexnet.predict CHECKPOINT IMAGE...``: top-five classes; 0 on success."""
    parser = argparse.ArgumentParser(
        prog="python -m minialexnet.predict", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "checkpoint",
        help="best.npz or checkpoint.npz written by train, or a checkpoint from "
        "python -m minialexnet.convert (e.g. the ImageNet-trained BVLC AlexNet)",
    )
    parser.add_argument("images", nargs="+", help="image files (jpg, png, ...)")
    parser.add_argument("--plot", help="save a picture of the images and their top five here")
    parser.add_argument("--device", default="auto", help="auto | cpu | gpu | gpu:N")
    args = parser.parse_args(argv)

    # bad input (a bad --device, a file that is not a checkpoint, no readable image) ends
    # with its message and exit status 2; anything else is a bug and keeps its traceback
    try:
        devices = [Device(args.device)]
    except (RuntimeError, ValueError) as exc:  # an unknown --device, or no GPU for it
        return _bad_input(exc)
    try:
        model, stats, meta = load_model(args.checkpoint, devices)
    except CheckpointError as exc:
        return _bad_input(exc)
    classes = meta.get("classes")
    if not isinstance(classes, list):
        return _bad_input(
            CheckpointError(args.checkpoint, "no class names in it: not written by train")
        )
    size = meta.get("run", {}).get("image_size", model.input_size)
    images, names = [], []
    for path in args.images:
        try:
            images.append(load_image(path, size))
            names.append(Path(path).name)
            with Image.open(path) as img:
                w, h = img.size
            if min(w, h) < size // 2:
                print(
                    f"note: {path} is {w}x{h}, enlarged to {size}: the network sees a blur "
                    "of it; a larger photo is better",
                    file=sys.stderr,
                )
        except (OSError, UnidentifiedImageError) as exc:
            print(f"{path}: cannot read this image ({exc}); skipped", file=sys.stderr)
    if not images:
        return _bad_input("no readable images: give image files such as photo.jpg or a .png")
    x = eval_transform(np.stack(images), stats=stats, crop=model.input_size)
    probs = np.concatenate([  # in batches: the ImageNet net needs ~20 MB an image
        to_numpy(F.softmax(model.forward(x[i : i + BATCH], train=False)))
        for i in range(0, len(x), BATCH)
    ])  # fmt: skip
    k = min(5, len(classes))
    top5 = []
    for name, p in zip(names, probs, strict=True):
        order = np.argsort(-p)[:k]
        top5.append([(classes[i], float(p[i])) for i in order])
        print(name + ": " + ", ".join(f"{c} {100 * q:.1f}%" for c, q in top5[-1]))
    if args.plot:
        try:
            print(f"wrote {plot_top5(images, names, top5, args.plot)}")
        except (OSError, ValueError) as exc:  # a missing folder, a folder, an odd suffix
            return _bad_input(f"cannot write --plot {args.plot}: {exc}")
    return 0


def _bad_input(problem: Exception | str) -> int:
    """Print what was wrong with the command line's input; the exit status 2."""
    print(f"minialexnet.predict: {problem}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
