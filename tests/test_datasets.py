"""Datasets: the procedural shapes, the image-folder reader and its cache, CIFAR-10 readers
(binary and python formats, restricted unpickler) and the verified download.

Everything runs on small files written to tmp_path; nothing is downloaded (the download
tests serve a synthetic archive from file:// or a loopback HTTP server in a thread).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minialexnet.data import Dataset, load_dataset
from minialexnet.data import cifar10 as cifar
from minialexnet.data import folder as folder_mod
from minialexnet.data.shapes import SHAPE_CLASSES, _class_distance, make_shapes

REAL_CIFAR_JPG = Path(__file__).resolve().parents[2] / "shared/data/cifar10-jpg.tar.gz"


# =========================================================================== shapes


def test_shapes_deterministic_per_seed_and_split():
    a_images, a_labels = make_shapes(60, image_size=32, seed=3, split="train")
    b_images, b_labels = make_shapes(60, image_size=32, seed=3, split="train")
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_labels, b_labels)

    other_seed, _ = make_shapes(60, image_size=32, seed=4, split="train")
    val, _ = make_shapes(60, image_size=32, seed=3, split="val")
    assert not np.array_equal(a_images, other_seed)
    assert not np.array_equal(a_images, val)
    # no image of val appears in train (different random streams, not a shifted copy)
    train_set = {img.tobytes() for img in a_images}
    assert not any(img.tobytes() in train_set for img in val)


@pytest.mark.parametrize("image_size", [32, 64])
@pytest.mark.parametrize("split", ["train", "val"])
def test_shapes_shapes_dtypes_and_balance(image_size, split):
    data = load_dataset("shapes", split, image_size=image_size, size=200, seed=1)
    assert isinstance(data, Dataset)
    assert len(data) == 200
    assert data.images.shape == (200, image_size, image_size, 3)
    assert data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64 and data.labels.shape == (200,)
    assert data.classes == SHAPE_CLASSES and len(set(data.classes)) == 10
    np.testing.assert_array_equal(np.bincount(data.labels, minlength=10), [20] * 10)
    assert data.name == f"shapes-{split}"
    # real images: full use of the range, not constant
    assert data.images.min() < 30 and data.images.max() > 225
    assert data.images.reshape(200, -1).std(axis=1).min() > 1.0


def test_shapes_default_sizes_and_balance_when_not_divisible():
    images, labels = make_shapes(205, image_size=16, seed=0)
    counts = np.bincount(labels, minlength=10)
    assert counts.sum() == 205 and counts.min() == 20 and counts.max() == 21
    assert len(load_dataset("shapes", "val", image_size=8)) == 2000


def test_shapes_at_256():
    images, labels = make_shapes(3, image_size=256, seed=0)
    assert images.shape == (3, 256, 256, 3) and images.dtype == np.uint8
    assert len(np.unique(images.reshape(3, -1, 3)[0], axis=0)) > 100  # texture, not flat


def test_shapes_not_separable_by_mean_colour():
    """A nearest-class-mean classifier on the mean RGB of each image is near chance."""
    train_x, train_y = make_shapes(3000, image_size=24, seed=0, split="train")
    val_x, val_y = make_shapes(2000, image_size=24, seed=0, split="val")
    f_train = train_x.reshape(len(train_x), -1, 3).mean(axis=1)
    f_val = val_x.reshape(len(val_x), -1, 3).mean(axis=1)
    means = np.stack([f_train[train_y == k].mean(axis=0) for k in range(10)])
    predicted = np.argmin(((f_val[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    accuracy = (predicted == val_y).mean()
    assert accuracy < 0.2, f"mean colour predicts the class {accuracy:.0%} of the time"
    # colours really vary: the per-image mean colours are spread over the RGB cube
    assert f_val.std(axis=0).min() > 25


def test_shapes_stripe_orientation_is_the_label():
    """Horizontal stripes change along y (vertical gradient), vertical stripes along x."""
    images, labels = make_shapes(400, image_size=64, seed=2)
    gray = images.astype(np.float32).mean(axis=-1)
    energy_y = np.abs(np.diff(gray, axis=1)).mean(axis=(1, 2))
    energy_x = np.abs(np.diff(gray, axis=2)).mean(axis=(1, 2))
    horizontal = SHAPE_CLASSES.index("horizontal stripes")
    vertical = SHAPE_CLASSES.index("vertical stripes")
    assert (energy_y > energy_x)[labels == horizontal].mean() > 0.9
    assert (energy_x > energy_y)[labels == vertical].mean() > 0.9


# (u, v) points in the object's frame that must be inside / outside each class's shape
# (object units: the shape fits the unit disc; stripes of period 0.64 = 3 bands, and a
# checkerboard of 0.4 cells = 4 x 4, both filling the square patch |u|, |v| <= 0.8)
SHAPE_POINTS = {
    "circle": ([(0, 0), (0.75, 0), (0, -0.75)], [(0.6, 0.6), (0.9, 0)]),
    "square": ([(0, 0), (0.6, 0.6), (-0.6, 0.6)], [(0.8, 0), (0, -0.8)]),
    "triangle": ([(0, 0), (0.9, 0), (-0.4, 0.6)], [(-0.6, 0), (0.6, 0.6)]),
    "star": ([(0, 0), (0.9, 0), (0.3, 0.2)], [(0.6 * np.cos(0.63), 0.6 * np.sin(0.63))]),
    "cross": ([(0, 0), (0.8, 0), (0, -0.8)], [(0.6, 0.6), (-0.5, 0.5)]),
    "ring": ([(0.68, 0), (0, -0.7), (0.5, 0.45)], [(0, 0), (0.2, 0.1), (0.95, 0)]),
    "horizontal stripes": ([(0, 0), (0.7, 0), (-0.7, 0.6)], [(0, 0.3), (0, -0.3), (0.9, 0)]),
    "vertical stripes": ([(0, 0), (0, 0.7), (0.6, -0.7)], [(0.3, 0), (-0.3, 0), (0, 0.9)]),
    "checkerboard": ([(-0.6, -0.6), (-0.2, -0.2), (0.6, 0.6)], [(-0.2, -0.6), (0.2, -0.2)]),
    "crescent": ([(-0.6, 0), (0.3, 0.75)], [(0, 0), (0.5, 0), (0.9, 0)]),
}


@pytest.mark.parametrize("name", SHAPE_CLASSES)
def test_shape_signed_distances(name):
    """Each class's implicit function is negative inside its shape, positive outside."""
    k = SHAPE_CLASSES.index(name)
    period = 0.4 if name == "checkerboard" else 0.64
    inside, outside = SHAPE_POINTS[name]
    for points, sign in ((inside, -1), (outside, 1)):
        u, v = (np.array(c, dtype=np.float32) for c in zip(*points, strict=True))
        d = _class_distance(k, u, v, np.float32(period))
        assert np.all(np.sign(d) == sign), f"{name}: {points} -> {d}"
    # the stripe classes are one another rotated by 90 degrees
    u, v = np.meshgrid(np.linspace(-1, 1, 41), np.linspace(-1, 1, 41))
    if name == "horizontal stripes":
        np.testing.assert_allclose(
            _class_distance(k, u, v, 0.64), _class_distance(k + 1, v, u, 0.64), atol=1e-12
        )


def test_load_dataset_errors_list_the_valid_choices():
    with pytest.raises(ValueError, match="shapes.*cifar10.*folder:PATH"):
        load_dataset("imagenet", "train")
    with pytest.raises(ValueError, match="train.*val"):
        load_dataset("shapes", "test")
    with pytest.raises(ValueError, match="on_error"):
        load_dataset("shapes", "train", on_error="ignore")


def test_dataset_checks_its_arrays():
    with pytest.raises(ValueError, match="uint8"):
        Dataset(np.zeros((2, 4, 4, 3), np.float32), np.zeros(2, np.int64), ["a"], "x")
    with pytest.raises(ValueError, match="int64"):
        Dataset(np.zeros((2, 4, 4, 3), np.uint8), np.zeros(3, np.int64), ["a"], "x")


# =========================================================================== image folders


def _save(path: Path, colour, size=(20, 14), fmt=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)


RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)


@pytest.fixture
def tree(tmp_path, monkeypatch) -> Path:
    """root/train/{cat (PNG, red), dog (JPEG, blue)}, root/val/cat (upper-case .JPEG)."""
    monkeypatch.setenv("MINIALEXNET_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tree"
    for i in range(3):
        _save(root / "train/cat" / f"c{i}.png", RED, size=(20 + 7 * i, 14))
        _save(root / "train/dog" / f"d{i}.jpg", BLUE, size=(14, 25 + i))
    _save(root / "val/cat/v0.JPEG", RED, fmt="JPEG")
    (root / "train/dog/notes.txt").write_text("not an image, ignored")
    return root


def test_folder_reads_resizes_and_labels(tree):
    data = load_dataset(f"folder:{tree}", "train", image_size=8)
    assert data.classes == ["cat", "dog"]
    assert data.images.shape == (6, 8, 8, 3) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.labels, [0, 0, 0, 1, 1, 1])
    colours = data.images.reshape(6, -1, 3).mean(axis=1)
    np.testing.assert_allclose(colours[:3], [RED] * 3, atol=6)  # PNG: exact up to rounding
    np.testing.assert_allclose(colours[3:], [BLUE] * 3, atol=12)  # JPEG: lossy
    val = load_dataset(f"folder:{tree}", "val", image_size=8)
    assert val.classes == ["cat", "dog"] and val.labels.tolist() == [0]  # dog missing: fine


def test_folder_shorter_side_then_centre_crop(tmp_path):
    """40x20 image, green in the middle half, red at the sides: the crop is all green."""
    img = np.zeros((20, 40, 3), np.uint8)
    img[:] = RED
    img[:, 10:30] = GREEN
    path = tmp_path / "wide.png"
    Image.fromarray(img).save(path)
    out = folder_mod.decode_image(path, 10)  # 40x20 -> 20x10, centre 10 columns = 10..30
    assert out.shape == (10, 10, 3)
    np.testing.assert_allclose(out[:, 1:-1].reshape(-1, 3).mean(axis=0), GREEN, atol=3)
    tall = np.zeros((30, 10, 3), np.uint8)
    tall[:10], tall[10:20], tall[20:] = RED, GREEN, BLUE
    Image.fromarray(tall).save(tmp_path / "tall.png")
    out = folder_mod.decode_image(tmp_path / "tall.png", 5)  # 10x30 -> 5x15, rows 5..10
    np.testing.assert_allclose(out[1:-1].reshape(-1, 3).mean(axis=0), GREEN, atol=3)


def test_folder_val_falls_back_to_test_and_rejects_unknown_classes(tmp_path):
    root = tmp_path / "t"
    _save(root / "train/a/x.png", RED)
    _save(root / "test/a/y.png", RED)
    cache = tmp_path / "cache"
    assert len(folder_mod.load_folder(root, "val", image_size=4, cache_dir=cache)) == 1
    _save(root / "test/zebra/z.png", RED)
    with pytest.raises(ValueError, match="zebra"):
        folder_mod.load_folder(root, "val", image_size=4, cache_dir=cache)


def test_folder_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        folder_mod.load_folder(tmp_path / "nowhere", "train", cache_dir=tmp_path)
    (tmp_path / "r/val/a").mkdir(parents=True)
    with pytest.raises(ValueError, match="no train/"):
        folder_mod.load_folder(tmp_path / "r", "train", cache_dir=tmp_path)
    (tmp_path / "r/train/a").mkdir(parents=True)
    (tmp_path / "r/train/a/readme.txt").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        folder_mod.load_folder(tmp_path / "r", "train", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="folder:PATH"):
        load_dataset("folder", "train")


def test_folder_corrupt_image_skip_reports_and_stop_raises(tree, capsys):
    bad = tree / "train/dog/broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    with pytest.raises(ValueError, match="broken.jpg"):
        load_dataset(f"folder:{tree}", "train", image_size=8, on_error="stop")

    data = load_dataset(f"folder:{tree}", "train", image_size=8, on_error="skip")
    assert len(data) == 6 and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    err = capsys.readouterr().err
    assert "skipped 1 unreadable" in err and "broken.jpg" in err

    # from the cache: still reported (skip) or raised (stop), never silent
    again = load_dataset(f"folder:{tree}", "train", image_size=8, on_error="skip")
    np.testing.assert_array_equal(again.images, data.images)
    assert "broken.jpg" in capsys.readouterr().err
    with pytest.raises(ValueError, match="broken.jpg"):
        load_dataset(f"folder:{tree}", "train", image_size=8, on_error="stop")


def test_folder_cache_reused_then_rebuilt_when_a_file_changes(tree, monkeypatch):
    first = load_dataset(f"folder:{tree}", "train", image_size=8)
    calls = []
    real_decode = folder_mod.decode_image

    def counting_decode(path, image_size):
        calls.append(path)
        return real_decode(path, image_size)

    monkeypatch.setattr(folder_mod, "decode_image", counting_decode)
    second = load_dataset(f"folder:{tree}", "train", image_size=8)
    assert calls == []  # nothing decoded: read from the cache
    assert isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)

    # another image_size is another cache entry
    assert load_dataset(f"folder:{tree}", "train", image_size=6).images.shape[1:3] == (6, 6)
    calls.clear()

    changed = tree / "train/cat/c0.png"
    _save(changed, GREEN, size=(30, 30))
    os.utime(changed, ns=(1_000_000_000, 1_000_000_000))  # a different mtime, surely
    third = load_dataset(f"folder:{tree}", "train", image_size=8)
    assert len(calls) == 6  # rebuilt
    np.testing.assert_allclose(third.images[0].reshape(-1, 3).mean(axis=0), GREEN, atol=3)

    (tree / "train/cat/c1.png").unlink()  # a removed file rebuilds too
    assert len(load_dataset(f"folder:{tree}", "train", image_size=8)) == 5


def test_folder_size_takes_a_seeded_subset(tree):
    small = load_dataset(f"folder:{tree}", "train", image_size=8, size=4, seed=1)
    assert len(small) == 4 and set(small.labels.tolist()) <= {0, 1}
    again = load_dataset(f"folder:{tree}", "train", image_size=8, size=4, seed=1)
    np.testing.assert_array_equal(small.images, again.images)


@pytest.mark.slow
def test_folder_on_a_slice_of_real_cifar10_jpegs(tmp_path):
    """A few hundred files of the real CIFAR-10 JPEG tree (extracted selectively)."""
    if not REAL_CIFAR_JPG.is_file():
        pytest.skip(f"{REAL_CIFAR_JPG} not present (the shared CIFAR-10 JPEG archive)")
    per_class = {"train": 20, "test": 5}
    taken: dict[tuple[str, str], int] = {}
    root = tmp_path / "cifar"
    with tarfile.open(REAL_CIFAR_JPG, "r|gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) != 3 or parts[0] not in per_class:
                continue
            key = (parts[0], parts[1])
            if taken.get(key, 0) >= per_class[parts[0]]:
                continue
            taken[key] = taken.get(key, 0) + 1
            out = root.joinpath(*parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(tar.extractfile(member).read())
    cache = tmp_path / "cache"
    train = folder_mod.load_folder(root, "train", image_size=32, cache_dir=cache)
    val = folder_mod.load_folder(root, "val", image_size=24, cache_dir=cache)  # val -> test/
    assert train.classes == cifar.CIFAR10_CLASSES  # sorted folder names = the official order
    assert train.images.shape == (200, 32, 32, 3)
    np.testing.assert_array_equal(np.bincount(train.labels), [20] * 10)
    assert val.images.shape == (50, 24, 24, 3)
    assert 60 < train.images.mean() < 200 and train.images.std() > 30


# =========================================================================== CIFAR-10


def _fake_batches(n_per_batch: int = 3, seed: int = 0):
    """Six batches (5 train + test) of random images (NHWC) and labels."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.integers(0, 256, (n_per_batch, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, n_per_batch).astype(np.int64),
        )
        for _ in range(6)
    ]


def _binary_bytes(images, labels) -> bytes:
    chw = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return np.concatenate([labels.astype(np.uint8)[:, None], chw], axis=1).tobytes()


def _python_bytes(images, labels) -> bytes:
    batch = {
        b"batch_label": b"synthetic batch",
        b"labels": [int(v) for v in labels],
        b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
    }
    return pickle.dumps(batch, protocol=2)  # as the official files (Python 2 cPickle)


def _write_cifar(base: Path, version: str, batches) -> tuple[Path, Path]:
    """Write the extracted folder and the .tar.gz of `version`; returns (folder, archive)."""
    folder = base / cifar.FOLDERS[version]
    folder.mkdir(parents=True)
    encode = _binary_bytes if version == "binary" else _python_bytes
    for name, (images, labels) in zip(
        cifar.BATCHES[version]["train"] + cifar.BATCHES[version]["val"], batches, strict=True
    ):
        (folder / name).write_bytes(encode(images, labels))
    (folder / "readme.html").write_text("synthetic")
    archive = base / cifar.ARCHIVES[version]
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return folder, archive


def _expected(batches, split):
    chosen = batches[:5] if split == "train" else batches[5:]
    return np.concatenate([b[0] for b in chosen]), np.concatenate([b[1] for b in chosen])


@pytest.mark.parametrize("version", ["binary", "python"])
def test_cifar10_reads_every_kind_of_data_dir(tmp_path, version):
    batches = _fake_batches()
    folder, archive = _write_cifar(tmp_path / "extracted", version, batches)
    only_archive = tmp_path / "archive_only"
    only_archive.mkdir()
    (only_archive / archive.name).write_bytes(archive.read_bytes())
    renamed = tmp_path / "my-cifar.tgz"
    renamed.write_bytes(archive.read_bytes())

    for data_dir in (folder, folder.parent, only_archive / archive.name, only_archive, renamed):
        for split in ("train", "val"):
            data = load_dataset("cifar10", split, data_dir=str(data_dir))
            images, labels = _expected(batches, split)
            np.testing.assert_array_equal(data.images, images, err_msg=f"{data_dir} {split}")
            np.testing.assert_array_equal(data.labels, labels)
            assert data.images.dtype == np.uint8 and data.labels.dtype == np.int64
            assert data.classes == cifar.CIFAR10_CLASSES
            assert data.name == f"cifar10-{split}"
    assert len(load_dataset("cifar10", "train", data_dir=str(folder))) == 15
    assert len(load_dataset("cifar10", "train", data_dir=str(folder), size=4)) == 4


def test_cifar10_binary_layout_is_label_then_chw():
    """One hand-made record: label 7, red plane 1, green plane 2, blue plane 3."""
    record = bytes([7]) + bytes([1]) * 1024 + bytes([2]) * 1024 + bytes([3]) * 1024
    images, labels = cifar.parse_binary_batch(record)
    assert labels.tolist() == [7]
    assert images.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(images[0, 5, 9], [1, 2, 3])
    with pytest.raises(ValueError, match="truncated"):
        cifar.parse_binary_batch(record[:-1])


def test_cifar10_wrong_image_size_and_missing_data(tmp_path):
    _write_cifar(tmp_path, "binary", _fake_batches())
    with pytest.raises(ValueError, match="32"):
        load_dataset("cifar10", "train", data_dir=str(tmp_path), image_size=64)
    with pytest.raises(FileNotFoundError, match="python -m minialexnet.data.cifar10 download"):
        load_dataset("cifar10", "train", data_dir=str(tmp_path / "empty"))


class _Evil:
    """Unpickling this with plain pickle would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(lambda marker: _Evil(marker), id="os.system"),
        pytest.param(lambda marker: {b"data": _Evil(marker), b"labels": [1]}, id="nested"),
    ],
)
def test_cifar10_python_pickles_are_unpickled_safely(tmp_path, payload):
    batches = _fake_batches()
    folder, _ = _write_cifar(tmp_path, "python", batches)
    marker = tmp_path / "pwned"
    (folder / "test_batch").write_bytes(pickle.dumps(payload(marker), protocol=2))
    with pytest.raises(ValueError, match=r"refusing to load global (os|posix)\.system"):
        load_dataset("cifar10", "val", data_dir=str(folder))
    assert not marker.exists()
    # the same restriction applies to any non-NumPy global, e.g. builtins.eval
    evil = b"\x80\x02cbuiltins\neval\nq\x00X\x05\x00\x00\x001 + 1q\x01\x85q\x02Rq\x03."
    assert pickle.loads(evil) == 2  # a real payload: plain pickle would call eval
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        cifar.SafeUnpickler(io.BytesIO(evil)).load()
    # and the genuine batches still load
    data = load_dataset("cifar10", "train", data_dir=str(folder))
    np.testing.assert_array_equal(data.images, _expected(batches, "train")[0])


# --------------------------------------------------------------------------- download


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def archive(tmp_path) -> Path:
    return _write_cifar(tmp_path / "src", "binary", _fake_batches())[1]


@pytest.fixture
def http_root(archive):
    """A loopback HTTP server (in a thread) serving the folder that holds the archive."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(archive.parent))
    handler.log_message = lambda *args: None
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_download_over_http_verifies_and_renames(tmp_path, archive, http_root):
    dest = tmp_path / "dest"
    path = cifar.download_cifar10(
        dest, "binary", url=f"{http_root}/{archive.name}", md5=_md5(archive)
    )
    assert path == dest / "cifar-10-binary.tar.gz"
    assert path.read_bytes() == archive.read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-binary.tar.gz"]  # no .part
    assert len(load_dataset("cifar10", "val", data_dir=str(dest))) == 3
    # already there with the right checksum: not fetched again (this URL would fail)
    again = cifar.download_cifar10(dest, url=f"{http_root}/nothing-here", md5=_md5(archive))
    assert again == path


def test_download_bad_checksum_leaves_nothing(tmp_path, archive):
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match="checksum mismatch"):
        cifar.download_cifar10(dest, "binary", url=archive.as_uri(), md5="0" * 32)
    assert list(dest.iterdir()) == []
    # by default the published MD5 is checked, which a synthetic archive cannot match
    with pytest.raises(ValueError, match=cifar.MD5["binary"]):
        cifar.download_cifar10(dest, "binary", url=archive.as_uri())
    assert list(dest.iterdir()) == []


def test_download_interrupted_leaves_nothing(tmp_path):
    class Truncating(BaseHTTPRequestHandler):
        def do_GET(self):  # promises 100 kB, sends 10 bytes, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"0123456789")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Truncating)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    dest = tmp_path / "dest"
    try:
        with pytest.raises(OSError, match="interrupted after 10 of 100000 bytes"):
            cifar.download_cifar10(dest, url=f"http://127.0.0.1:{server.server_address[1]}/x")
    finally:
        thread.join(timeout=10)
        server.server_close()
    assert list(dest.iterdir()) == []


def test_download_command_line(tmp_path, archive, monkeypatch, capsys):
    monkeypatch.setitem(cifar.MD5, "binary", _md5(archive))
    dest = tmp_path / "cli"
    code = cifar.main(["download", "--data-dir", str(dest), "--url", archive.as_uri()])
    assert code == 0
    assert (dest / "cifar-10-binary.tar.gz").read_bytes() == archive.read_bytes()
    assert str(dest) in capsys.readouterr().out


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_safe_unpickler_rebuilds_arrays_of_every_protocol(protocol):
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    raw = pickle.dumps({"data": data, "labels": [np.int64(3), 4]}, protocol=protocol)
    images, labels = cifar.parse_python_batch(raw)
    np.testing.assert_array_equal(images, data.reshape(2, 3, 32, 32).transpose(0, 2, 3, 1))
    assert labels.tolist() == [3, 4]
