"""A dataset in memory (or memory-mapped) and the one function that loads any of them.

    >>> train = load_dataset("shapes", "train", image_size=32)      # built in, no files
    >>> val = load_dataset("cifar10", "val", data_dir="data")       # the official archive
    >>> imnet = load_dataset("folder:/data/imagenet", "train", image_size=256)
    >>> train.images.shape, train.images.dtype, train.labels.dtype
    ((10000, 32, 32, 3), dtype('uint8'), dtype('int64'))

Images are always uint8 NHWC (N, H, W, 3) host NumPy arrays, raw 0-255 RGB (the paper
feeds raw pixels minus the mean image [section 2]; the transforms do that part), and may
be an ``np.memmap`` for datasets larger than memory. Labels are int64 (N,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "load_dataset", "SPECS", "SPLITS"]

SPECS = ("shapes", "cifar10", "folder:PATH")
SPLITS = ("train", "val")


@dataclass
class Dataset:
    """Images uint8 (N, H, W, 3), labels int64 (N,) in [0, len(classes)), class names, a name."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(
                f"Dataset {self.name!r}: images must be uint8 (N, H, W, 3), got "
                f"{self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (len(self.images),) or self.labels.dtype != np.int64:
            raise ValueError(
                f"Dataset {self.name!r}: labels must be int64 ({len(self.images)},), got "
                f"{self.labels.dtype} {self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """How many classes: ``len(classes)``."""
        return len(self.classes)


def _subset(dataset: Dataset, size: int | None, seed: int) -> Dataset:
    """At most `size` examples, chosen at random (seeded) but kept in their stored order."""
    if size is None or size >= len(dataset):
        return dataset
    if size < 0:
        raise ValueError(f"load_dataset: size must be >= 0, got {size}")
    keep = np.sort(np.random.default_rng([seed, 7]).choice(len(dataset), size, replace=False))
    return Dataset(dataset.images[keep], dataset.labels[keep], dataset.classes, dataset.name)


def load_dataset(
    spec: str,
    split: str,
    *,
    data_dir: str | None = None,
    image_size: int = 32,
    size: int | None = None,
    seed: int = 0,
    on_error: str = "skip",
    progress: bool = True,
) -> Dataset:
    """Load a dataset split.

    spec:
      ``"shapes"``      the built-in procedural dataset (:mod:`.shapes`), drawn at
                        image_size x image_size; `size` images (default 10,000 train /
                        2,000 val), a pure function of (seed, split, size, image_size).
      ``"cifar10"``     CIFAR-10 from its official archive in `data_dir` (:mod:`.cifar10`);
                        32x32 only; "val" is the test batch. `size` keeps a random
                        (seeded) subset.
      ``"folder:PATH"`` an ImageNet-style tree PATH/train/CLASS/*.jpg (:mod:`.folder`),
                        "val" reads PATH/val or PATH/test; images are resized (shorter
                        side -> image_size, centre crop) once and cached. ``"folder"``
                        alone takes PATH from `data_dir`. `size` keeps a random subset.
    split: ``"train"`` or ``"val"``.
    on_error: folder only -- ``"skip"`` unreadable images (reported) or ``"stop"``.
    progress: folder only -- ``False`` hides the progress bar of the first decoding
    (``TQDM_DISABLE=1`` in the environment hides it too).
    """
    if split not in SPLITS:
        raise ValueError(f"load_dataset: split must be one of {list(SPLITS)}, got {split!r}")
    if on_error not in ("skip", "stop"):
        raise ValueError(f"load_dataset: on_error must be 'skip' or 'stop', got {on_error!r}")

    if spec == "shapes":
        from .shapes import load_shapes

        return load_shapes(split, image_size=image_size, size=size, seed=seed)
    if spec == "cifar10":
        from .cifar10 import load_cifar10

        if image_size != 32:
            raise ValueError(
                f"load_dataset: CIFAR-10 images are 32x32, got image_size={image_size}; "
                "use a model for 32x32 images (alexnet-cifar, cnn4)"
            )
        return _subset(load_cifar10(split, data_dir=data_dir), size, seed)
    if spec == "folder" or spec.startswith("folder:"):
        from .folder import load_folder

        root = spec[len("folder:") :] if spec.startswith("folder:") else data_dir
        if not root:
            raise ValueError(
                "load_dataset: give the image tree as 'folder:PATH' (or data_dir=PATH)"
            )
        dataset = load_folder(
            root, split, image_size=image_size, on_error=on_error, progress=progress
        )
        return _subset(dataset, size, seed)
    raise ValueError(f"load_dataset: unknown dataset {spec!r}; valid: {', '.join(SPECS)}")
