"""CIFAR-10 from its official archives (https://www.cs.toronto.edu/~kriz/cifar.html).

60,000 colour images of 32x32 in 10 classes: 50,000 training images in five batches,
10,000 test images (our "val" split). The paper used CIFAR-10 for its ReLU and LRN
experiments [sections 3.1, 3.3]. Two official formats are read:

* binary (cifar-10-binary.tar.gz -> cifar-10-batches-bin/): data_batch_1.bin ...
  data_batch_5.bin, test_batch.bin; each record is 1 label byte + 3072 image bytes,
  stored channel-major (1024 red, 1024 green, 1024 blue, each row by row);
* python (cifar-10-python.tar.gz -> cifar-10-batches-py/): data_batch_1 ... test_batch,
  pickled dicts {b"data": uint8 (10000, 3072) array, b"labels": list of ints, ...}.
  Unpickling can run arbitrary code, so these are read with a restricted unpickler that
  only allows the few NumPy globals needed to rebuild an array (see SafeUnpickler).

`data_dir` may be the .tar.gz itself, a folder holding it, the extracted folder
(cifar-10-batches-bin or -py), or a folder holding that. Archives are read in place
(no extraction). Get the data with

    python -m minialexnet.data.cifar10 download --data-dir data [--version binary|python]
"""

from __future__ import annotations

import argparse
import codecs
import hashlib
import importlib
import io
import os
import pickle
import sys
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .dataset import Dataset

__all__ = [
    "CIFAR10_CLASSES",
    "URLS",
    "MD5",
    "SafeUnpickler",
    "download_cifar10",
    "find_cifar10",
    "read_cifar10",
    "load_cifar10",
]

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
ARCHIVES = {"binary": "cifar-10-binary.tar.gz", "python": "cifar-10-python.tar.gz"}
FOLDERS = {"binary": "cifar-10-batches-bin", "python": "cifar-10-batches-py"}
URLS = {version: f"https://www.cs.toronto.edu/~kriz/{name}" for version, name in ARCHIVES.items()}
MD5 = {"binary": "c32a1d4ab5d03f1284b67883e8d87530", "python": "c58f30108f718f92721af3b95e74349a"}
BATCHES = {
    "binary": {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "val": ["test_batch.bin"]},
    "python": {"train": [f"data_batch_{i}" for i in range(1, 6)], "val": ["test_batch"]},
}
RECORD_BYTES = 1 + 32 * 32 * 3  # binary format: label byte + CHW image
DEFAULT_DATA_DIR = os.environ.get("MINIALEXNET_DATA", "data")


# --------------------------------------------------------------------------- reading batches


def parse_binary_batch(raw: bytes, name: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """Records of 1 label byte + 3072 CHW bytes -> (uint8 (N, 32, 32, 3) NHWC, int64 (N,))."""
    if len(raw) % RECORD_BYTES:
        raise ValueError(
            f"cifar10: {name} has {len(raw)} bytes, not a multiple of {RECORD_BYTES} "
            "(1 label byte + 3072 pixel bytes); is the file truncated?"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # CHW -> HWC
    return np.ascontiguousarray(images), labels


def _numpy_global(module: str, name: str):
    """Import module.name; NumPy 2 renamed numpy.core to numpy._core, so try both spellings."""
    spellings = [
        module.replace("numpy.core", "numpy._core"),
        module.replace("numpy._core", "numpy.core"),
    ]
    for spelling in spellings:
        try:
            return getattr(importlib.import_module(spelling), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"cannot import {module}.{name} from this NumPy")


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that can rebuild NumPy arrays and plain containers, nothing else.

    A pickle names the functions it calls ("globals"); a malicious one names os.system
    or builtins.eval. The official CIFAR-10 pickles (Python 2, protocol 2) only need the
    first three below to rebuild their uint8 array; the others let the same data
    re-pickled by Python 3 / NumPy 2 load too. Any other global raises
    pickle.UnpicklingError naming it.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),  # how ndarray.__reduce__ rebuilds an array
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"),  # the same, written by NumPy >= 2
        ("numpy.core.multiarray", "scalar"),  # a NumPy scalar (e.g. an np.int64 label)
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # arrays in pickle protocol 5
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # bytes in a protocol-2 pickle written by Python 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return codecs.encode
        if (module, name) in self.ALLOWED:
            return _numpy_global(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: a CIFAR-10 batch only needs NumPy "
            "arrays, so this file is not a CIFAR-10 pickle (or has been tampered with)"
        )


def parse_python_batch(raw: bytes, name: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """A pickled dict {data: (N, 3072) CHW uint8, labels: [N ints]} -> (NHWC uint8, int64)."""
    try:
        batch = SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"cifar10: {name}: {exc}") from exc
    if not isinstance(batch, dict):
        raise ValueError(f"cifar10: {name} holds a {type(batch).__name__}, expected a dict")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"cifar10: {name} has keys {sorted(batch)}, expected data and labels")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(
            f"cifar10: {name}: data {data.shape} and {len(labels)} labels, expected (N, 3072) and N"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


# --------------------------------------------------------------------------- finding the data


def find_cifar10(data_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Where the CIFAR-10 data is: (path to a .tar.gz or an extracted folder, version).

    Looks at data_dir itself, then inside it, for the binary version first, then the
    python one. Raises FileNotFoundError saying how to download when nothing is there.
    """
    base = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR).expanduser()
    if base.is_file():  # the archive itself, whatever its file name
        return base, _archive_version(base)
    for version in ("binary", "python"):
        if base.is_dir() and base.name == FOLDERS[version]:
            return base, version
        for candidate in (base / FOLDERS[version], base / ARCHIVES[version]):
            if candidate.exists():
                return candidate, version
    raise FileNotFoundError(
        f"CIFAR-10 not found at {base} (looked for {ARCHIVES['binary']}, {ARCHIVES['python']}, "
        f"{FOLDERS['binary']}/ or {FOLDERS['python']}/).\n"
        f"Download it (about 170 MB) with:\n"
        f"    python -m minialexnet.data.cifar10 download --data-dir {base}\n"
        f"or point --data-dir (data_dir=...) at the folder or the .tar.gz you already have."
    )


def _archive_version(path: Path) -> str:
    """ "binary" or "python", from the folder name inside a CIFAR-10 .tar.gz."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            first = tar.next()
    except (tarfile.TarError, OSError) as exc:
        raise ValueError(f"cifar10: {path} is not a readable .tar.gz archive ({exc})") from exc
    top = first.name.lstrip("./").split("/")[0] if first else ""
    for version, folder in FOLDERS.items():
        if top == folder:
            return version
    raise ValueError(
        f"cifar10: {path} does not contain {FOLDERS['binary']}/ or {FOLDERS['python']}/"
    )


def _read_members(path: Path, version: str, names: list[str]) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each batch file, from an extracted folder or straight from the archive."""
    if path.is_dir():
        for name in names:
            file = path / name
            if not file.is_file():
                raise FileNotFoundError(f"cifar10: {file} is missing; is the extraction complete?")
            yield str(file), file.read_bytes()
        return
    # one sequential pass through the gzip stream (seeking back in a .gz means re-reading it)
    found: dict[str, bytes] = {}
    with tarfile.open(path, "r|gz") as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and name in names:
                found[name] = tar.extractfile(member).read()
    for name in names:
        if name not in found:
            raise FileNotFoundError(f"cifar10: {path} has no {FOLDERS[version]}/{name}")
        yield f"{path}:{FOLDERS[version]}/{name}", found[name]


def read_cifar10(
    split: str, data_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 32, 32, 3), labels int64 (N,)) of "train" (50,000) or "val" (10,000)."""
    if split not in ("train", "val"):
        raise ValueError(f"cifar10: split must be 'train' or 'val' (the test batch), got {split!r}")
    path, version = find_cifar10(data_dir)
    parse = parse_binary_batch if version == "binary" else parse_python_batch
    parts = [
        parse(raw, name) for name, raw in _read_members(path, version, BATCHES[version][split])
    ]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"cifar10: labels outside 0..9 in {path}")
    return images, labels


def load_cifar10(split: str, *, data_dir: str | os.PathLike | None = None) -> Dataset:
    """CIFAR-10 as a Dataset ("val" = the official test batch)."""
    images, labels = read_cifar10(split, data_dir)
    return Dataset(images, labels, list(CIFAR10_CLASSES), f"cifar10-{split}")


# --------------------------------------------------------------------------- downloading


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stream_to_file(
    url: str, path: Path, label: str, progress: bool = True
) -> tuple[str, int, int | None]:
    """Copy url to path in 1 MiB blocks with a progress bar: (MD5 hex, bytes, Content-Length)."""
    digest, received = hashlib.md5(), 0
    with urllib.request.urlopen(url) as response, open(path, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length else None
        quiet = {} if progress else {"disable": True}  # else TQDM_DISABLE=1 may silence it
        with tqdm(
            total=total, unit="B", unit_scale=True, desc=label, file=sys.stderr, **quiet
        ) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                digest.update(block)
                received += len(block)
                bar.update(len(block))
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), received, total


def download_cifar10(
    data_dir: str | os.PathLike,
    version: str = "binary",
    url: str | None = None,
    *,
    md5: str | None = None,
    progress: bool = True,
) -> Path:
    """Download the official archive into data_dir; returns its path.

    Streams into "<name>.part" with a progress bar, checks the MD5 (the published one
    unless `md5` is given, e.g. for a test archive) and only then renames the file into
    place, so the final name only ever holds a complete, verified archive. A mismatch
    deletes the part file and raises ValueError. An archive already in place with the
    right checksum is kept. `url` replaces the official address (a mirror, file://...).
    ``progress=False`` hides the progress bar (so does ``TQDM_DISABLE=1``).
    """
    if version not in ARCHIVES:
        raise ValueError(f"cifar10: version must be one of {sorted(ARCHIVES)}, got {version!r}")
    url = url or URLS[version]
    expected = (md5 or MD5[version]).lower()
    target_dir = Path(data_dir).expanduser()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / ARCHIVES[version]
    if target.is_file() and _md5(target) == expected:
        print(f"cifar10: {target} already there (checksum ok)", file=sys.stderr)
        return target

    part = target.with_name(target.name + ".part")
    try:
        got, received, total = _stream_to_file(url, part, target.name, progress)
        if total is not None and received != total:
            raise OSError(
                f"cifar10: download of {url} interrupted after {received} of {total} bytes"
            )
        if got != expected:
            raise ValueError(
                f"cifar10: checksum mismatch for {url}: MD5 {got}, expected {expected}; "
                "the download was deleted, try again"
            )
        os.replace(part, target)  # atomic: the final name appears complete or not at all
    finally:
        part.unlink(missing_ok=True)  # failed, interrupted or bad: leave nothing half-written
    return target


def main(argv: list[str] | None = None) -> int:
    """``python -m minialexnet.data.cifar10 download --data-dir DIR [--version binary|python]``."""
    parser = argparse.ArgumentParser(
        prog="python -m minialexnet.data.cifar10", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    download = commands.add_parser("download", help="download and verify the official archive")
    download.add_argument(
        "--data-dir", default=DEFAULT_DATA_DIR, help=f"default: {DEFAULT_DATA_DIR}"
    )
    download.add_argument("--version", choices=sorted(ARCHIVES), default="binary")
    download.add_argument("--url", default=None, help="another address of the same archive")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    folder = Path(args.data_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        print(
            f"minialexnet.data.cifar10: --data-dir {folder} is a file; give the folder to "
            "download into",
            file=sys.stderr,
        )
        return 2
    try:
        path = download_cifar10(args.data_dir, args.version, args.url, progress=not args.quiet)
    except (OSError, ValueError) as exc:  # no network, a bad --url or --data-dir, bad checksum
        print(
            f"minialexnet.data.cifar10: {exc}\nno CIFAR-10 was written. Check the network, "
            f"--url and --data-dir, or download {URLS[args.version]} by hand and give "
            "its folder as --data-dir",
            file=sys.stderr,
        )
        return 2
    print(f"CIFAR-10 ({args.version}) is in {path}; use --data-dir {args.data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
