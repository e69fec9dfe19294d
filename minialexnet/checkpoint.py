"""Checkpoints: named arrays plus a JSON header in one ``.npz`` file.

A checkpoint is an ordinary NumPy ``.npz`` archive (a zip of ``.npy`` files, as
``np.savez`` writes) holding

* the arrays, under names such as ``"model/a.conv1.w"``, ``"optim/velocity/fc8.w"``,
  ``"data/mean"`` (:func:`pack` / :func:`unpack` add and strip such prefixes);
* ``"__meta__"``: a JSON document stored as a ``uint8`` array, always with
  ``{"format": "minialexnet-checkpoint", "version": FORMAT_VERSION}`` and whatever
  the caller adds (model config, epoch, lr, schedule state, ...).

It loads with ``np.load(path, allow_pickle=False)``: no Python objects are ever
unpickled, so opening a checkpoint from elsewhere cannot run code. Typical use::

    arrays = {**pack("model", model.state_dict()), **pack("data", {"mean": stats.mean})}
    save_checkpoint("run/last.npz", arrays, {"config": model.config, "epoch": 3})

    arrays, meta = load_checkpoint("run/last.npz")
    check_config(meta["config"], model.config, "run/last.npz")  # refuses another model
    model.load_state_dict(unpack(arrays, "model"))

Saving is atomic: the file is written under a temporary name in the same
folder, flushed to disk, then renamed over ``path``; a crash or an error leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np

from .backend import get_array_module, to_numpy

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "META_KEY",
    "CheckpointError",
    "check_config",
    "load_checkpoint",
    "pack",
    "save_checkpoint",
    "unpack",
    "write_atomically",
]

FORMAT = "minialexnet-checkpoint"
FORMAT_VERSION = 1
META_KEY = "__meta__"


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint: ``str(err)`` says which file and why."""

    def __init__(self, path: str | os.PathLike[str] | None, reason: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        where = "checkpoint" if self.path is None else f"checkpoint {self.path!r}"
        super().__init__(f"{where}: {reason}")


# -- saving -------------------------------------------------------------------------------------


def _host_array(name: Any, value: Any) -> np.ndarray:
    if not isinstance(name, str) or not name:
        raise ValueError(f"save_checkpoint: array names must be non-empty strings, got {name!r}")
    if name == META_KEY:
        raise ValueError(f"save_checkpoint: {META_KEY!r} is reserved for the JSON header")
    if not isinstance(value, (np.ndarray, np.generic)) and get_array_module(value) is np:
        raise TypeError(
            f"save_checkpoint: {name!r} must be a NumPy or CuPy array, got {type(value).__name__}"
        )
    host = np.asarray(to_numpy(value))  # a plain ndarray (also for simulated-device arrays)
    if host.dtype.hasobject:
        raise TypeError(
            f"save_checkpoint: {name!r} has dtype {host.dtype} (Python objects); only plain "
            "numeric/string arrays are saved, so that loading never unpickles anything"
        )
    return host


def _meta_array(meta: Mapping[str, Any]) -> np.ndarray:
    if not isinstance(meta, Mapping):
        raise TypeError(f"save_checkpoint: meta must be a dict, got {type(meta).__name__}")
    header = {"format": FORMAT, "version": FORMAT_VERSION}
    for key, value in header.items():
        if key in meta and meta[key] != value:
            raise ValueError(
                f"save_checkpoint: meta[{key!r}] is reserved (must be {value!r}), got {meta[key]!r}"
            )
    try:
        text = json.dumps({**meta, **header}, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"save_checkpoint: meta must be JSON-serializable: {exc}") from exc
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def _write_npz(file: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """What ``np.savez`` writes (a stored zip of ``<name>.npy``), for any array name.

    (``np.savez(file, **arrays)`` would reject names like ``"file"``, its own argument.)
    """
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def save_checkpoint(
    path: str | os.PathLike[str], arrays: Mapping[str, Any], meta: Mapping[str, Any]
) -> None:
    """Write ``arrays`` and ``meta`` to the ``.npz`` file ``path``, atomically.

    ``arrays``: name -> NumPy or CuPy array (copied to the host); not object arrays,
    not the name ``"__meta__"``. ``meta``: a JSON-serializable dict; it is stored
    with ``"format"`` and ``"version"`` added. The file is written exactly at
    ``path`` (no ``.npz`` suffix is added). Everything is checked before anything
    is written; on any error the temporary file is removed and an existing file at
    ``path`` is left untouched.
    """
    path = os.fspath(path)
    if not isinstance(arrays, Mapping):
        raise TypeError(f"save_checkpoint: arrays must be a dict, got {type(arrays).__name__}")
    contents = {name: _host_array(name, value) for name, value in arrays.items()}
    contents[META_KEY] = _meta_array(meta)

    write_atomically(path, lambda f: _write_npz(f, contents))


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> None:
    """``write(f)`` into a temporary file next to ``path``, flushed to disk, then renamed
    over ``path``: readers see the old file or the whole new one, never a part. On any
    error the temporary file is removed and ``path`` is untouched. The file gets the usual
    mode (``0666 & ~umask``; ``mkstemp`` would leave it private). Checkpoints and exported
    ONNX files are written this way."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)  # read the umask by setting it, then set it back
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (POSIX; not possible everywhere)
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# -- loading ------------------------------------------------------------------------------------

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint: ``(arrays, meta)``, all arrays in memory as NumPy arrays.

    Raises :class:`CheckpointError` (a ``ValueError``) naming the file and the
    problem when it is missing, not an ``.npz`` file (e.g. text), truncated or
    corrupt, without the ``"__meta__"`` header, or of another format or version.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(path, "no such file")
    if os.path.isdir(path):
        raise CheckpointError(path, "is a directory, not a checkpoint file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if not magic:
            raise CheckpointError(path, "empty file (0 bytes): an interrupted copy?")
        if magic not in _ZIP_MAGIC and str(path).lower().endswith(".onnx"):
            raise CheckpointError(
                path,
                "an ONNX file, not a checkpoint: convert it first with python -m "
                "minialexnet.convert MODEL.onnx OUT.npz, then give OUT.npz",
            )
        if magic not in _ZIP_MAGIC:
            raise CheckpointError(
                path,
                "not an .npz file (it does not start with the zip signature "
                f"'PK\\x03\\x04'; its first bytes are {magic!r})",
            )
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except CheckpointError:
        raise
    except zipfile.BadZipFile as exc:
        raise CheckpointError(
            path, f"not a readable .npz archive (truncated or corrupt? {exc})"
        ) from exc
    except (OSError, ValueError, EOFError) as exc:
        if "allow_pickle" in str(exc):  # NumPy refused an object array: it needs unpickling
            raise CheckpointError(
                path,
                "it holds pickled Python objects, which are never loaded (unpickling can run "
                "code); a minialexnet checkpoint holds plain arrays only: not a checkpoint "
                "written by minialexnet.train",
            ) from exc
        raise CheckpointError(path, f"cannot read an array from it: {exc}") from exc

    if META_KEY not in arrays:
        raise CheckpointError(
            path,
            f"an .npz file without the {META_KEY!r} header: not a minialexnet checkpoint "
            f"(it holds {sorted(arrays)[:5]}{' ...' if len(arrays) > 5 else ''})",
        )
    meta = _read_meta(path, arrays.pop(META_KEY))
    return arrays, meta


def _read_meta(path: str, raw: np.ndarray) -> dict[str, Any]:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(
            path, f"{META_KEY!r} should be 1-D uint8 (JSON bytes), is {raw.dtype} {raw.shape}"
        )
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(path, f"the {META_KEY!r} header is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(path, f"the {META_KEY!r} header is not a JSON object")
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            path, f"format is {meta.get('format')!r}, expected {FORMAT!r}: not a minialexnet file"
        )
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            path,
            f"format version {meta.get('version')!r}; this minialexnet reads version "
            f"{FORMAT_VERSION} only",
        )
    return meta


# -- checking and organising ---------------------------------------------------------------------


def _json_normal(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, ...)."""
    return json.loads(json.dumps(value))


def check_config(
    meta: Mapping[str, Any],
    expected: Mapping[str, Any],
    path: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse a checkpoint made for another model: compare each key of ``expected``.

    ``meta`` is the checkpoint's meta, or the part of it that holds the config
    (e.g. ``meta["config"]`` where the trainer stored ``model.config``); its keys
    that ``expected`` lacks are ignored, nested dicts are compared key by key
    (``check_config(meta, {"config": model.config})`` reports ``config.arch``), and
    values are compared as JSON reads them back (a tuple equals a list). Raises
    :class:`CheckpointError` listing every differing key, e.g.
    ``arch: checkpoint has 'alexnet', expected 'alexnet-cifar'; num_classes:
    checkpoint has 1000, expected 10``.
    """
    if not isinstance(meta, Mapping):
        raise CheckpointError(path, f"no model config in the checkpoint (got {meta!r})")
    diffs = _differences(meta, expected, "")
    if diffs:
        raise CheckpointError(path, "made for a different configuration: " + "; ".join(diffs))


def _differences(saved: Mapping[str, Any], expected: Mapping[str, Any], where: str) -> list[str]:
    diffs = []
    for key, want in expected.items():
        name = f"{where}{key}"
        if key not in saved:
            diffs.append(f"{name}: missing in the checkpoint, expected {want!r}")
        elif isinstance(want, Mapping) and isinstance(saved[key], Mapping):
            diffs += _differences(saved[key], want, name + ".")
        elif _json_normal(saved[key]) != _json_normal(want):
            diffs.append(f"{name}: checkpoint has {saved[key]!r}, expected {want!r}")
    return diffs


def pack(prefix: str, arrays: Mapping[str, Any]) -> dict[str, Any]:
    """``{"<prefix>/<name>": array}``: give one component's arrays a namespace in the file."""
    _check_prefix(prefix, "pack")
    return {f"{prefix}/{name}": value for name, value in arrays.items()}


def unpack(arrays: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The arrays under ``prefix/``, with the prefix removed (the inverse of :func:`pack`)."""
    _check_prefix(prefix, "unpack")
    start = prefix + "/"
    return {name[len(start) :]: value for name, value in arrays.items() if name.startswith(start)}


def _check_prefix(prefix: Any, fn: str) -> None:
    if not isinstance(prefix, str) or not prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"{fn}: prefix must be a non-empty string like 'model', got {prefix!r}")
