"""The grader's wire format between the judge and the worker: framed JSON plus raw array bytes.

Never pickle: unpickling what the student's process sent would run its code in the judge.
A message is ``<u32 header length><u64 payload length>``, a UTF-8 JSON header, then the
payload: the raw bytes of the message's arrays, one after the other. The header's
``"arrays"`` lists each array's ``[dtype, shape]``; values in the header point at them.

Values that travel (both ways), as JSON nodes:

* ``None``, ``bool``, ``int``, ``float`` (NaN and infinities included), ``str`` (capped):
  themselves;
* NumPy arrays of a numeric or bool dtype (never object, structured or void):
  ``{"t": "ar", "id", "a": index, "dev": simulated device or null}``;
* NumPy scalars ``{"t": "sc", "a"}``, dtypes ``{"t": "dt", "v": "<f8"}``;
* tuples ``{"t": "tu", "v": [...]}``, lists ``{"t": "ls", "id", "v": [...]}``, dicts with
  ``str`` keys ``{"t": "dc", "id", "v": {...}}``;
* NumPy ``Generator`` (PCG64) ``{"t": "rng", "id", "v": its bit generator's state}``;
* anything else is up to a :class:`Peer` subclass (handles of the worker's objects,
  the judge's callbacks, devices, random generators).

Arrays, lists, dicts and generators are *linked*: each has an id on both sides, and a receiver that
already holds the id updates its object in place (so ``opt.velocity["w"] is velocity``
holds in the judge, and an SGD step that updates ``w`` in place in the worker updates the
judge's ``w``). Before each message a peer sends, in ``"sync"``, every linked object that
changed since it was last sent or received. A peer may refuse changes to its own objects
(:meth:`Peer.allow_change`): the judge lets the student's code change in place only what
a test allows (``exercise_support.in_place``), so a student cannot zero a test's inputs
to make the expected values agree with wrong ones. Ids made by the judge are positive, by the
worker negative. :meth:`Peer.reset` forgets them all (the judge does after each test).

Everything read is validated: sizes (``MAX_HEADER``, ``MAX_PAYLOAD``), dtypes, shapes,
that an in-place update keeps an array's shape and dtype. A violation raises
:class:`WireError`. This module needs only NumPy and the standard library, because the
worker runs it as a plain file next to the student's package.
"""

from __future__ import annotations

import json
import math
import os
import struct
from typing import Any

import numpy as np

__all__ = [
    "MAX_HEADER",
    "MAX_PAYLOAD",
    "MAX_STR",
    "MAX_DEPTH",
    "WireError",
    "send",
    "receive",
    "check_dtype",
    "Peer",
]

MAX_HEADER = 8 << 20
"""Bytes of one message's JSON header accepted."""
MAX_PAYLOAD = 64 << 20
"""Bytes of one message's arrays accepted (one reply of the student's code)."""
MAX_STR = 20_000
"""Characters of one string value accepted."""
MAX_DEPTH = 32
"""Nesting of lists, tuples and dicts accepted."""

_FRAME = struct.Struct("<IQ")
_KINDS = "biufc"  # bool, signed, unsigned, float, complex


class WireError(Exception):
    """A message that breaks the format or its limits."""


def _read_exact(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other process closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def send(fd: int, header: dict[str, Any], arrays: list[np.ndarray]) -> None:
    """Write one message: ``header`` (JSON-able) and the raw bytes of ``arrays``."""
    header = dict(header, arrays=[[a.dtype.str, list(a.shape)] for a in arrays])
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # the arrays' own bytes (flat uint8 views), not copies of them
    blobs = [np.ascontiguousarray(a).reshape(-1).view(np.uint8) for a in arrays]
    payload = sum(b.nbytes for b in blobs)
    _write_all(fd, _FRAME.pack(len(head), payload) + head)
    for blob in blobs:
        _write_all(fd, blob)


def check_dtype(text: Any) -> np.dtype:
    """The numeric/bool dtype spelled ``text``; WireError for anything else."""
    if not isinstance(text, str) or len(text) > 8:
        raise WireError(f"bad dtype {text!r}")
    try:
        dtype = np.dtype(text)
    except TypeError as exc:
        raise WireError(f"bad dtype {text!r}") from exc
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise WireError(f"dtype {dtype} is not a numeric or bool dtype")
    return dtype


def receive(
    fd: int, max_payload: int = MAX_PAYLOAD, max_header: int = MAX_HEADER
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Read one message: its header and its arrays (validated; read-only copies of the bytes)."""
    head_len, payload = _FRAME.unpack(_read_exact(fd, _FRAME.size))
    if head_len > max_header:
        raise WireError(f"a message header of {head_len} bytes (at most {max_header})")
    if payload > max_payload:
        raise WireError(
            f"a reply of {payload / 2**20:.1f} MiB of arrays (at most {max_payload / 2**20:g} MiB)"
        )
    try:
        header = json.loads(_read_exact(fd, head_len).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WireError(f"a message header that is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays", []), list):
        raise WireError("a message header that is not a JSON object")
    specs, total = header.pop("arrays", []), 0
    sizes = []
    for spec in specs:
        if not (isinstance(spec, list) and len(spec) == 2 and isinstance(spec[1], list)):
            raise WireError(f"bad array description {spec!r}"[:200])
        dtype, shape = check_dtype(spec[0]), spec[1]
        if len(shape) > 32 or not all(type(n) is int and n >= 0 for n in shape):
            raise WireError(f"bad array shape {shape!r}"[:200])
        nbytes = math.prod(shape) * dtype.itemsize
        sizes.append((dtype, tuple(shape), nbytes))
        total += nbytes
    if total != payload:
        raise WireError(f"the arrays' sizes ({total} bytes) do not match the payload ({payload})")
    arrays = []
    for dtype, shape, nbytes in sizes:
        arrays.append(np.frombuffer(_read_exact(fd, nbytes), dtype=dtype).reshape(shape))
    return header, arrays


def _same(a: Any, b: Any) -> bool:
    """``a`` and ``b`` hold the same things: the same linked objects, equal plain values."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if type(a) in (int, float, bool, str, np.dtype) or isinstance(a, np.generic):
        return bool(a == b) or (a != a and b != b)  # NaN is the same as NaN here
    return False


class Peer:
    """One side's codec: encodes values into JSON nodes and arrays, decodes and links them.

    Subclasses handle other objects with :meth:`encode_other` and :meth:`decode_other`,
    and may tag simulated-device arrays with :meth:`device_array`.
    """

    sign = 1  # the judge's ids are positive, the worker's negative

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every linked object."""
        self.objects: dict[int, Any] = {}
        self.ids: dict[int, int] = {}  # id(obj) -> link id
        self.snapshots: dict[int, Any] = {}
        self.refused: list[Any] = []  # this side's objects the other side may not change
        self._next = 0

    # ---------------------------------------------------------------- linking

    def _link(self, obj: Any) -> tuple[int, bool]:
        key = self.ids.get(id(obj))
        if key is not None and self.objects.get(key) is obj:
            return key, False
        self._next += 1
        key = self.sign * self._next
        self.objects[key], self.ids[id(obj)] = obj, key
        return key, True

    @staticmethod
    def _snapshot(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            return obj.tobytes()
        if isinstance(obj, list):
            return tuple(id(v) for v in obj)
        if isinstance(obj, dict):
            return tuple((k, id(v)) for k, v in obj.items())
        if isinstance(obj, np.random.Generator):
            return json.dumps(obj.bit_generator.state, sort_keys=True)
        return None

    def changed(self) -> list[Any]:
        """The linked objects that changed since they were last sent or received."""
        return [
            obj
            for key, obj in list(self.objects.items())
            if self._snapshot(obj) != self.snapshots.get(key)
        ]

    # ---------------------------------------------------------------- encoding

    def encode_message(self, header: dict[str, Any], values: dict[str, Any]) -> tuple[dict, list]:
        """``header`` plus each of ``values`` encoded, and the changed linked objects in "sync"."""
        arrays: list[np.ndarray] = []
        out = dict(header)
        for name, value in values.items():
            out[name] = self.encode(value, arrays)
        out["sync"] = [self.encode(obj, arrays) for obj in self.changed()]
        return out, arrays

    def encode(self, value: Any, arrays: list[np.ndarray], depth: int = 0) -> Any:
        """The JSON node of ``value`` (its arrays appended to ``arrays``)."""
        if depth > MAX_DEPTH:
            raise TypeError(f"values nested more than {MAX_DEPTH} deep")
        if value is None or type(value) in (bool, int, float):
            return value
        if type(value) is str:
            if len(value) > MAX_STR:
                raise TypeError(f"a string of {len(value)} characters (at most {MAX_STR})")
            return value
        if isinstance(value, np.ndarray):
            check = value.dtype
            if check.kind not in _KINDS or check.fields is not None:
                raise TypeError(f"an array of dtype {check} (only numeric and bool arrays travel)")
            key, _ = self._link(value)
            arrays.append(np.ascontiguousarray(value))
            self.snapshots[key] = self._snapshot(value)
            dev = getattr(value, "device_name", None)
            return {"t": "ar", "id": key, "a": len(arrays) - 1, "dev": dev}
        if isinstance(value, np.generic) and value.dtype.kind in _KINDS:
            arrays.append(np.asarray(value))
            return {"t": "sc", "a": len(arrays) - 1}
        if isinstance(value, np.dtype):
            check_dtype(value.str)
            return {"t": "dt", "v": value.str}
        if type(value) is np.random.Generator and type(value.bit_generator) is np.random.PCG64:
            key, _ = self._link(value)
            self.snapshots[key] = self._snapshot(value)
            return {"t": "rng", "id": key, "v": value.bit_generator.state}
        if type(value) is tuple:
            return {"t": "tu", "v": [self.encode(v, arrays, depth + 1) for v in value]}
        if type(value) is list:
            key, _ = self._link(value)
            self.snapshots[key] = self._snapshot(value)
            return {"t": "ls", "id": key, "v": [self.encode(v, arrays, depth + 1) for v in value]}
        if type(value) is dict:
            if not all(type(k) is str for k in value):
                raise TypeError("a dict whose keys are not all strings")
            key, _ = self._link(value)
            self.snapshots[key] = self._snapshot(value)
            items = {k: self.encode(v, arrays, depth + 1) for k, v in value.items()}
            return {"t": "dc", "id": key, "v": items}
        return self.encode_other(value, arrays)

    def encode_other(self, value: Any, arrays: list[np.ndarray]) -> Any:
        """The node of a value that is not plain data (subclasses)."""
        raise TypeError(f"a {type(value).__name__} cannot be sent")

    # ---------------------------------------------------------------- decoding

    def apply_sync(self, header: dict[str, Any], arrays: list[np.ndarray]) -> None:
        """Apply the "sync" part of a received message (in-place updates of linked objects)."""
        sync = header.get("sync", [])
        if not isinstance(sync, list):
            raise WireError("bad sync list")
        for node in sync:
            self.decode(node, arrays)

    def decode(self, node: Any, arrays: list[np.ndarray], depth: int = 0) -> Any:
        """The value of a JSON node (linked objects updated in place when known)."""
        if depth > MAX_DEPTH:
            raise WireError(f"values nested more than {MAX_DEPTH} deep")
        if node is None or type(node) in (bool, int, float):
            return node
        if type(node) is str:
            if len(node) > MAX_STR:
                raise WireError(f"a string of {len(node)} characters (at most {MAX_STR})")
            return node
        if type(node) is not dict or type(node.get("t")) is not str:
            raise WireError(f"bad value {node!r}"[:200])
        tag = node["t"]
        if tag in ("ar", "sc"):
            index = node.get("a")
            if type(index) is not int or not 0 <= index < len(arrays):
                raise WireError("bad array index")
            data = arrays[index]
            if tag == "sc":
                if data.ndim != 0:
                    raise WireError("a scalar that is not 0-d")
                return data[()]
            return self._decode_array(node, data)
        if tag == "dt":
            return check_dtype(node.get("v"))
        if tag in ("tu", "ls"):
            items = node.get("v")
            if type(items) is not list:
                raise WireError("bad sequence")
            values = [self.decode(v, arrays, depth + 1) for v in items]
            if tag == "tu":
                return tuple(values)
            obj = self._known(node, list)
            if obj is None:
                obj = self._register(node, [])
            elif not self._may_change(node["id"], obj, not _same(obj, values)):
                return obj
            obj[:] = values
            self.snapshots[node["id"]] = self._snapshot(obj)
            return obj
        if tag == "dc":
            items = node.get("v")
            if type(items) is not dict:
                raise WireError("bad dict")
            values = {str(k): self.decode(v, arrays, depth + 1) for k, v in items.items()}
            obj = self._known(node, dict)
            if obj is None:
                obj = self._register(node, {})
            elif not self._may_change(node["id"], obj, not _same(obj, values)):
                return obj
            obj.clear()
            obj.update(values)
            self.snapshots[node["id"]] = self._snapshot(obj)
            return obj
        if tag == "rng":
            return self._decode_rng(node)
        return self.decode_other(tag, node, arrays)

    def _decode_rng(self, node: dict[str, Any]) -> np.random.Generator:
        state = node.get("v")
        if type(state) is not dict or state.get("bit_generator") != "PCG64":
            raise WireError("a random generator that is not NumPy's PCG64")
        obj = self._known(node, np.random.Generator)
        if obj is None:
            obj = self._register(node, np.random.Generator(np.random.PCG64()))
        try:
            obj.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise WireError(f"a bad random generator state: {exc}") from None
        self.snapshots[node["id"]] = self._snapshot(obj)
        return obj

    def decode_other(self, tag: str, node: dict[str, Any], arrays: list[np.ndarray]) -> Any:
        """The value of a node of another kind (subclasses)."""
        raise WireError(f"unknown value kind {tag!r}"[:100])

    def _known(self, node: dict[str, Any], kind: type) -> Any:
        key = node.get("id")
        if type(key) is not int:
            raise WireError("a linked value without an id")
        obj = self.objects.get(key)
        if obj is not None and not isinstance(obj, kind):
            raise WireError(f"linked value {key} changed its kind")
        return obj

    def _register(self, node: dict[str, Any], obj: Any) -> Any:
        key = node["id"]
        if len(self.objects) > 1_000_000:
            raise WireError("too many linked values")
        self.objects[key], self.ids[id(obj)] = obj, key
        return obj

    def _decode_array(self, node: dict[str, Any], data: np.ndarray) -> np.ndarray:
        obj = self._known(node, np.ndarray)
        dev = node.get("dev")
        if dev is not None and type(dev) is not str:
            raise WireError("bad device name")
        if obj is None:
            value = np.array(data)  # a writable copy
            if dev is not None:
                value = self.device_array(value, dev)
            obj = self._register(node, value)
        else:
            if obj.shape != data.shape or obj.dtype != data.dtype:
                raise WireError(
                    f"an array changed from {obj.dtype}{list(obj.shape)} to "
                    f"{data.dtype}{list(data.shape)} in place"
                )
            changed = obj.tobytes() != data.tobytes()
            if changed and self._may_change(node["id"], obj, True):
                obj.view(np.ndarray)[...] = data
        self.snapshots[node["id"]] = self._snapshot(obj)
        return obj

    def _may_change(self, key: int, obj: Any, changed: Any) -> bool:
        """Whether a received update may change the linked ``obj`` (see :meth:`allow_change`)."""
        if not changed:
            return True
        if key * self.sign < 0 or self.allow_change(key, obj):
            return True  # the other side's own objects always may
        self.refused.append(obj)
        return False

    def allow_change(self, key: int, obj: Any) -> bool:
        """Whether the other side may change this side's linked ``obj`` in place (yes here)."""
        return True

    def device_array(self, value: np.ndarray, device: str) -> np.ndarray:
        """``value`` on simulated device ``device`` (subclasses; here: refused)."""
        raise WireError(f"arrays on device {device!r} are not accepted here")
