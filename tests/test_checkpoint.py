"""Checkpoints: one .npz with a JSON header, written atomically, refused with a clear reason."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from minialexnet.backend import Device
from minialexnet.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    META_KEY,
    CheckpointError,
    check_config,
    load_checkpoint,
    pack,
    save_checkpoint,
    unpack,
)


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "model/conv1.w": rng.standard_normal((4, 3, 2, 2)).astype(np.float32),
        "model/fc.b": rng.standard_normal(5),  # float64
        "optim/velocity/conv1.w": np.zeros((4, 3, 2, 2), np.float32),
        "counts": np.arange(7, dtype=np.int64),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 3), np.float32),
        "file": np.ones(2),  # np.savez(file, **kwds) could not take this name
    }


META = {"config": {"arch": "alexnet-cifar", "num_classes": 10}, "epoch": 3, "lr": [0.01, None]}


def _assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        np.testing.assert_array_equal(got[name], value)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ck.npz"
    save_checkpoint(path, _arrays(), META)
    arrays, meta = load_checkpoint(path)
    _assert_same(arrays, _arrays())
    assert meta == {**META, "format": FORMAT, "version": FORMAT_VERSION}
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_plain_numpy_reads_it_without_pickle(tmp_path: Path) -> None:
    path = tmp_path / "ck.npz"
    save_checkpoint(path, _arrays(), META)
    with np.load(path, allow_pickle=False) as npz:
        assert META_KEY in npz.files and "model/conv1.w" in npz.files
        assert json.loads(npz[META_KEY].tobytes())["format"] == FORMAT


def test_device_arrays_are_saved_from_the_host(tmp_path: Path, device: Device) -> None:
    path = tmp_path / "ck.npz"
    value = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_checkpoint(path, {"x": device.asarray(value), "y": Device("cpu:1").asarray(value)}, {})
    arrays, _ = load_checkpoint(path)
    assert type(arrays["x"]) is np.ndarray and type(arrays["y"]) is np.ndarray
    np.testing.assert_array_equal(arrays["x"], value)
    np.testing.assert_array_equal(arrays["y"], value)


def test_overwrites_and_path_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "last"  # no .npz added
    save_checkpoint(path, {"a": np.zeros(2)}, {"epoch": 1})
    save_checkpoint(str(path), {"a": np.ones(3)}, {"epoch": 2})
    arrays, meta = load_checkpoint(path)
    assert meta["epoch"] == 2 and arrays["a"].tolist() == [1.0, 1.0, 1.0]
    assert os.listdir(tmp_path) == ["last"]


# -- refusing bad input on save ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrays", "meta", "error", "match"),
    [
        ({"a": np.array([1, "x"], dtype=object)}, {}, TypeError, "object"),
        ({"a": [1.0, 2.0]}, {}, TypeError, "'a'.*list"),
        ({META_KEY: np.zeros(1)}, {}, ValueError, "reserved"),
        ({"": np.zeros(1)}, {}, ValueError, "names"),
        ({"a": np.zeros(1)}, {"when": object()}, TypeError, "JSON"),
        ({"a": np.zeros(1)}, {"format": "other"}, ValueError, "format"),
    ],
)
def test_save_refuses(tmp_path: Path, arrays: dict, meta: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        save_checkpoint(tmp_path / "ck.npz", arrays, meta)
    assert os.listdir(tmp_path) == []


# -- atomicity -----------------------------------------------------------------------------------


def _old_checkpoint(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "ck.npz"
    save_checkpoint(path, {"old": np.arange(3)}, {"epoch": 1})
    return path, path.read_bytes()


def test_failure_while_writing_keeps_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, old = _old_checkpoint(tmp_path)
    real_write, calls = np.lib.format.write_array, []

    def write_then_fail(fp, array, **kwargs):  # the second array fails half-way through
        calls.append(1)
        if len(calls) == 2:
            fp.write(b"\x93NUMPY partial")
            raise OSError("disk full")
        return real_write(fp, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _arrays(), META)
    assert len(calls) == 2
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["ck.npz"]  # no temporary file left behind
    assert load_checkpoint(path)[1]["epoch"] == 1


def test_failure_at_rename_keeps_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, old = _old_checkpoint(tmp_path)
    seen = []

    def fail(src, dst):
        seen.append(Path(src))
        assert Path(src).parent == tmp_path and Path(src).stat().st_size > 0  # fully written
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="rename failed"):
        save_checkpoint(path, _arrays(), META)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["ck.npz"] and not seen[0].exists()


def test_interrupt_cleans_up_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, old = _old_checkpoint(tmp_path)

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, _arrays(), META)
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["ck.npz"]


# -- refusing bad files on load ------------------------------------------------------------------


def _refused(path: Path, *phrases: str) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and info.value.path == str(path)
    for phrase in phrases:
        assert phrase in message, message
    assert isinstance(info.value, ValueError)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    _refused(tmp_path / "nope.npz", "no such file")


def test_directory(tmp_path: Path) -> None:
    _refused(tmp_path, "directory")


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.npz"
    path.write_text("epoch 3, lr 0.01\n")
    _refused(path, "not an .npz file", "b'epoc'")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    _refused(path, "empty file")


def test_npy_file(tmp_path: Path) -> None:
    path = tmp_path / "w.npy"
    np.save(path, np.zeros(3))
    _refused(path, "not an .npz file")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_checkpoint(tmp_path: Path, keep: float) -> None:
    good = tmp_path / "good.npz"
    save_checkpoint(good, _arrays(), META)
    data = good.read_bytes()
    bad = tmp_path / "cut.npz"
    bad.write_bytes(data[: int(len(data) * keep)])
    _refused(bad, "not a readable .npz archive", "truncated or corrupt")


def test_corrupted_member(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    save_checkpoint(good, {"a": np.arange(1000, dtype=np.int64)}, {})
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the array data: the zip CRC no longer matches
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(data))
    _refused(bad, "truncated or corrupt")


def test_npz_without_meta(tmp_path: Path) -> None:
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.zeros(3))
    _refused(path, META_KEY, "not a minialexnet checkpoint", "['w']")


def test_pickled_object_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickle.npz"
    np.savez(path, w=np.array([{"a": 1}], dtype=object))
    _refused(path, "pickle")


def _with_meta(tmp_path: Path, raw: bytes) -> Path:
    path = tmp_path / "odd.npz"
    np.savez(path, **{"w": np.zeros(2), META_KEY: np.frombuffer(raw, np.uint8)})
    return path


def test_bad_json_header(tmp_path: Path) -> None:
    _refused(_with_meta(tmp_path, b"{not json"), "not valid JSON")


@pytest.mark.parametrize(
    ("header", "phrase"),
    [
        ({"format": "someone-else", "version": 1}, "format is 'someone-else'"),
        ({"version": 1}, "format is None"),
        ({"format": FORMAT, "version": FORMAT_VERSION + 1}, "reads version"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_wrong_format_or_version(tmp_path: Path, header: object, phrase: str) -> None:
    _refused(_with_meta(tmp_path, json.dumps(header).encode()), phrase)


# -- configs and namespaces ----------------------------------------------------------------------


def test_check_config_names_every_differing_key(tmp_path: Path) -> None:
    path = tmp_path / "ck.npz"
    saved = {"arch": "alexnet", "num_classes": 1000, "input_size": 227, "init": "paper"}
    save_checkpoint(path, {}, {"config": saved})
    _, meta = load_checkpoint(path)
    check_config(meta["config"], dict(saved))  # same: fine
    expected = {"arch": "alexnet-cifar", "num_classes": 10, "input_size": 227, "towers": 2}
    with pytest.raises(CheckpointError) as info:
        check_config(meta["config"], expected, path)
    message = str(info.value)
    assert str(path) in message
    assert "arch: checkpoint has 'alexnet', expected 'alexnet-cifar'" in message
    assert "num_classes: checkpoint has 1000, expected 10" in message
    assert "towers: missing" in message
    assert "input_size" not in message and "init" not in message


def test_check_config_compares_nested_dicts_key_by_key() -> None:
    meta = {"config": {"arch": "alexnet", "num_classes": 1000}, "epoch": 4}
    check_config(meta, {"config": {"arch": "alexnet"}})
    with pytest.raises(CheckpointError) as info:
        check_config(meta, {"config": {"arch": "alexnet-cifar", "num_classes": 1000}})
    assert str(info.value) == (
        "checkpoint: made for a different configuration: "
        "config.arch: checkpoint has 'alexnet', expected 'alexnet-cifar'"
    )


def test_check_config_compares_as_json_reads_back() -> None:
    check_config({"size": [32, 32]}, {"size": (32, 32)})
    with pytest.raises(CheckpointError, match="no model config"):
        check_config(None, {"arch": "alexnet"})  # type: ignore[arg-type]


def test_pack_and_unpack(tmp_path: Path) -> None:
    model = {"a.conv1.w": np.ones((2, 2)), "fc8.b": np.zeros(3)}
    velocity = {"a.conv1.w": np.full((2, 2), 0.5), "fc8.b": np.ones(3)}
    data = {"mean": np.full((4, 4, 3), 120.0, np.float32)}
    arrays = {**pack("model", model), **pack("optim/velocity", velocity), **pack("data", data)}
    assert "model/fc8.b" in arrays and "optim/velocity/fc8.b" in arrays
    save_checkpoint(tmp_path / "ck.npz", arrays, {})
    loaded, _ = load_checkpoint(tmp_path / "ck.npz")
    _assert_same(unpack(loaded, "model"), model)
    _assert_same(unpack(loaded, "optim/velocity"), velocity)
    _assert_same(unpack(loaded, "data"), data)
    assert unpack(loaded, "mod") == {}  # a prefix matches whole path segments only
    with pytest.raises(ValueError, match="prefix"):
        pack("model/", model)
    with pytest.raises(ValueError, match="prefix"):
        unpack(loaded, "")


def test_a_checkpoint_gets_the_usual_file_mode_not_a_private_one(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "c.npz", {"w": np.zeros(2)}, {})
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "c.npz").stat().st_mode) == 0o644
