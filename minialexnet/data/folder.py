"""Read an ImageNet-style image tree once, resize it, and cache it as a memory-mapped array.

Expected layout (file extensions .jpg, .jpeg, .png in any case; other files are ignored):

    root/train/CLASS_A/xxx.jpg        classes = sorted names of the folders in root/train
    root/train/CLASS_B/yyy.png
    root/val/CLASS_A/zzz.jpeg         "val" reads root/val, or root/test when there is no val
                                      (a class may be missing there; an unknown one is an error)

Preprocessing is the paper's [section 2]: rescale so that the SHORTER side is
`image_size` (256 in the paper), then take the central image_size x image_size crop.
Decoding a large tree is slow, so it is done once per (root, split, image_size) and
stored in a cache folder ($MINIALEXNET_CACHE, default ~/.cache/minialexnet):

    images.npy   uint8 (N, S, S, 3), opened later with np.load(mmap_mode="r") -- a memmap,
                 so ImageNet (1.2 M x 256 x 256 x 3 = 236 GB) never has to fit in memory
    labels.npy   int64 (N,)
    index.json   classes, the files (relative path, size, mtime) and the unreadable ones;
                 a later load re-lists the tree and rebuilds when anything changed.

Unreadable or corrupt images are never dropped silently: with on_error="skip" they are
left out and reported (how many, and the first few paths); with on_error="stop" the
first one raises ValueError naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from .dataset import Dataset

__all__ = ["IMAGE_EXTENSIONS", "default_cache_dir", "list_images", "decode_image", "load_folder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
CACHE_VERSION = 2  # 2: EXIF orientation, 16-bit grey, transparency (decode_image)
_BILINEAR = getattr(Image, "Resampling", Image).BILINEAR  # Pillow >= 9.1 has Image.Resampling
_SHOW_BAD = 5  # how many unreadable paths a report lists


def default_cache_dir() -> Path:
    """$MINIALEXNET_CACHE if set, else ~/.cache/minialexnet."""
    env = os.environ.get("MINIALEXNET_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "minialexnet"


def _split_dir(root: Path, split: str) -> Path:
    """root/train for "train"; root/val, else root/test, for "val"."""
    if split == "train":
        candidates = [root / "train"]
    elif split == "val":
        candidates = [root / "val", root / "test"]
    else:
        raise ValueError(f"folder: split must be 'train' or 'val', got {split!r}")
    for path in candidates:
        if path.is_dir():
            return path
    names = " or ".join(f"{p.name}/" for p in candidates)
    raise ValueError(
        f"folder: no {names} folder in {root} (expected root/{candidates[0].name}/CLASS/*.jpg)"
    )


def _subfolders(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_images(root: str | os.PathLike, split: str) -> tuple[list[str], list[Path], np.ndarray]:
    """Classes (sorted folders of root/train), image paths and their labels for one split.

    Files are in class order, then sorted by name. Without train/, the "val" split alone
    works too: its own sorted folders are the classes (ImageNet's validation set, named by
    WordNet id, for converted weights). Raises ValueError for a missing root, a missing
    train/ (or val/test) folder, an unknown class folder in val, or no images.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"folder: image root {root} does not exist or is not a folder (expected "
            f"{root}/train/CLASS/*.jpg and {root}/val/CLASS/*.jpg)"
        )
    class_root = root / "train"
    if not class_root.is_dir():
        has_val = any((root / name).is_dir() for name in ("val", "test"))
        if split != "val" or not has_val:
            raise ValueError(
                f"folder: no train/ folder in {root}; expected root/train/CLASS/*.jpg "
                "(the class list is taken from train/)"
            )
        # a validation set alone (e.g. ImageNet's val/ for converted weights): its folders,
        # sorted, are the classes
        class_root = _split_dir(root, "val")
    classes = _subfolders(class_root)
    if not classes:
        raise ValueError(
            f"folder: {class_root} has no class folders (expected one folder of images "
            f"per class: {class_root.name}/CLASS/*.jpg)"
        )
    split_dir = _split_dir(root, split)
    unknown = sorted(set(_subfolders(split_dir)) - set(classes))
    if unknown:
        raise ValueError(
            f"folder: {split_dir} has class folders that train/ does not: {unknown[:10]}"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        folder = split_dir / name
        if not folder.is_dir():
            continue  # a class with no examples in this split is fine
        files = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise ValueError(
            f"folder: no images ({', '.join(IMAGE_EXTENSIONS)}) in {split_dir}/CLASS/ folders"
        )
    return classes, paths, np.asarray(labels, dtype=np.int64)


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB as a viewer shows the file: turned upright by its EXIF orientation (phones
    store photos sideways plus a tag), 16/32-bit grey scaled to 0-255 (not clipped to
    white), transparency over white."""
    img = ImageOps.exif_transpose(img)
    if img.mode.startswith("I"):
        pixels = np.asarray(img, dtype=np.float64)
        top_value = 65535.0 if pixels.max() > 255 else 255.0
        img = Image.fromarray(np.round(pixels * (255.0 / top_value)).astype(np.uint8))
    if img.mode in ("RGBA", "LA") or "transparency" in img.info:
        img = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img)
    return img.convert("RGB")


def decode_image(path: str | os.PathLike, image_size: int) -> np.ndarray:
    """Decode one image to uint8 (image_size, image_size, 3) RGB, the paper's way.

    Upright by its EXIF tag, 16-bit grey scaled, transparency on white; shorter side ->
    image_size (bilinear, antialiased when shrinking), then the central square crop.
    Datasets and ``predict`` both decode this way. Raises whatever Pillow raises for an
    unreadable file.
    """
    with Image.open(path) as img:
        # JPEG only: let the decoder shrink by 1/2, 1/4 or 1/8 while staying >= image_size
        # (much faster for large photos; the bilinear resize below does the rest)
        img.draft("RGB", (image_size, image_size))
        img = _to_rgb(img)
    width, height = img.size
    scale = image_size / min(width, height)
    new_w, new_h = max(image_size, round(width * scale)), max(image_size, round(height * scale))
    img = img.resize((new_w, new_h), _BILINEAR)
    left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
    img = img.crop((left, top, left + image_size, top + image_size))
    return np.asarray(img, dtype=np.uint8)


def _try_decode(path: Path, image_size: int) -> np.ndarray | str:
    """The decoded image, or an error message (for the report) when it cannot be read."""
    try:
        return decode_image(path, image_size)
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ...
        return f"{type(exc).__name__}: {exc}"


def _report_skipped(skipped: list[str], total: int, split_dir: str, cached: bool) -> None:
    """Tell the user which images were left out (never skip silently)."""
    if not skipped:
        return
    where = " (remembered in the cache)" if cached else ""
    lines = [
        f"folder: skipped {len(skipped)} unreadable image(s) of {total} in {split_dir}{where}:"
    ]
    lines += [f"  {path}" for path in skipped[:_SHOW_BAD]]
    if len(skipped) > _SHOW_BAD:
        lines.append(f"  ... and {len(skipped) - _SHOW_BAD} more")
    print("\n".join(lines), file=sys.stderr)


def _cache_folder(cache_dir: Path, root: Path, split: str, image_size: int) -> Path:
    """One cache folder per (resolved root, split, image_size)."""
    key = hashlib.sha1(f"{root.resolve()}|{split}|{image_size}".encode()).hexdigest()[:12]
    return cache_dir / f"folder-{root.resolve().name}-{split}-{image_size}-{key}"


def _file_table(root: Path, paths: list[Path]) -> list[list]:
    """[relative path, size, mtime_ns] of every image: a changed tree changes this table."""
    table = []
    for path in paths:
        stat = path.stat()
        table.append([path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns])
    return table


def _decode_all(
    paths: list[Path],
    labels: np.ndarray,
    image_size: int,
    out_file: Path,
    on_error: str,
    workers: int,
    progress: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """Decode every image into an .npy memmap at out_file; returns (kept labels, bad paths).

    Threads decode in parallel (Pillow releases the GIL while decoding); results come
    back in order and are written at the next free row, so skipped files leave no gap.
    """
    shape = (len(paths), image_size, image_size, 3)
    images = np.lib.format.open_memmap(out_file, mode="w+", dtype=np.uint8, shape=shape)
    keep: list[int] = []
    bad: list[str] = []
    chunk = 256  # submit work in slices so that a million files do not make a million futures
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(
            total=len(paths),
            desc=f"decoding {out_file.parent.name}",
            unit="img",
            file=sys.stderr,
            **({} if progress else {"disable": True}),  # else TQDM_DISABLE=1 may silence it
        ) as bar,
    ):
        for start in range(0, len(paths), chunk):
            batch = paths[start : start + chunk]
            for i, result in enumerate(pool.map(_try_decode, batch, [image_size] * len(batch))):
                if isinstance(result, str):
                    if on_error == "stop":
                        raise ValueError(f"folder: cannot read image {batch[i]}: {result}")
                    bad.append(str(batch[i]))
                else:
                    images[len(keep)] = result
                    keep.append(start + i)
                bar.update(1)
    images.flush()
    del images
    return labels[keep], bad


def _shrink_npy(path: Path, n: int) -> None:
    """Keep only the first n rows of an .npy file (after skipped images), chunk by chunk."""
    old = np.load(path, mmap_mode="r")
    tmp = path.with_name(path.name + ".tmp")
    new = np.lib.format.open_memmap(tmp, mode="w+", dtype=old.dtype, shape=(n, *old.shape[1:]))
    for start in range(0, n, 1024):
        stop = min(start + 1024, n)
        new[start:stop] = old[start:stop]
    new.flush()
    del new, old
    os.replace(tmp, path)


def load_folder(
    root: str | os.PathLike,
    split: str,
    *,
    image_size: int = 256,
    on_error: str = "skip",
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Dataset:
    """Load root/<split>/CLASS/* as a Dataset of uint8 (N, image_size, image_size, 3).

    The first call decodes everything (progress bar) into the cache; later calls open the
    cached array as a memmap unless a file was added, removed or modified. on_error:
    "skip" leaves unreadable images out and reports them, "stop" raises ValueError.
    workers: decoding threads (default min(8, CPU count)). progress: False hides the
    decoding's progress bar (so does ``TQDM_DISABLE=1`` in the environment).
    """
    if on_error not in ("skip", "stop"):
        raise ValueError(f"folder: on_error must be 'skip' or 'stop', got {on_error!r}")
    if image_size < 1:
        raise ValueError(f"folder: image_size must be >= 1, got {image_size}")
    root = Path(root).expanduser()
    classes, paths, labels = list_images(root, split)
    split_dir = str(_split_dir(root, split))
    files = _file_table(root, paths)

    folder = _cache_folder(
        Path(cache_dir) if cache_dir else default_cache_dir(), root, split, image_size
    )
    index_file = folder / "index.json"
    name = f"folder:{root}-{split}"
    if index_file.is_file():
        try:
            index = json.loads(index_file.read_text())
        except ValueError:
            index = {}  # unreadable: rebuild
        if (
            index.get("version") == CACHE_VERSION
            and index.get("classes") == classes
            and index.get("files") == files
            and (folder / "images.npy").is_file()
            and (folder / "labels.npy").is_file()
        ):
            skipped = index["skipped"]
            if skipped and on_error == "stop":
                raise ValueError(f"folder: cannot read image {skipped[0]} (found while caching)")
            _report_skipped(skipped, len(files), split_dir, cached=True)
            images = np.load(folder / "images.npy", mmap_mode="r")
            return Dataset(images, np.load(folder / "labels.npy"), classes, name)
        index_file.unlink()  # stale: forget it first, so a half-done rebuild is never trusted

    folder.mkdir(parents=True, exist_ok=True)
    workers = workers or min(8, os.cpu_count() or 1)
    # decode into a new file and rename it at the end: a memmap of the old cache that is
    # still open elsewhere keeps its (old) file instead of seeing it overwritten
    part = folder / "images.part.npy"
    kept_labels, skipped = _decode_all(paths, labels, image_size, part, on_error, workers, progress)
    if not len(kept_labels):
        raise ValueError(f"folder: none of the {len(paths)} images in {split_dir} could be read")
    if skipped:
        _shrink_npy(part, len(kept_labels))
    images_file = folder / "images.npy"
    os.replace(part, images_file)
    np.save(folder / "labels.npy", kept_labels)
    index = {
        "version": CACHE_VERSION,
        "root": str(root.resolve()),
        "split": split,
        "image_size": image_size,
        "classes": classes,
        "files": files,
        "skipped": skipped,
    }
    tmp = index_file.with_name("index.json.tmp")
    tmp.write_text(json.dumps(index))
    os.replace(tmp, index_file)  # written last: its presence means the cache is complete
    _report_skipped(skipped, len(files), split_dir, cached=False)
    return Dataset(np.load(images_file, mmap_mode="r"), kept_labels, classes, name)
