"""The judge's side of the channel: the student's modules and objects as proxies.

In grading, a test's ``student = student_module("minialexnet.functional.lrn")``
(:mod:`tests.exercises.exercise_support`) is a :class:`Remote`: ``student.lrn_forward(x)``
sends the call to the worker and returns what came back, decoded into plain values
(arrays, tuples, numbers) in the judge; an object that is not plain data (the student's
``SGD``) comes back as another :class:`Remote`. Arrays passed in are linked: what the
student's code does to them in place shows in the judge's arrays after the call (see
:mod:`minialexnet.exercises.wire`). A judge function given to the student's code (a
reference ``im2col`` monkeypatched into the student's module) is run here, in the judge,
when the student's code calls it.

Nothing the worker sends runs here: there are no pickles, a :class:`Remote` forwards no
double-underscore name (``__array_interface__`` could point NumPy at any memory), and
every value is checked on arrival. An exception in the student's code, a reply that
breaks the rules or a worker that died raises :class:`StudentError` with the reason; the
test fails with that text.
"""

from __future__ import annotations

import re
import types
from typing import Any

import numpy as np

from . import wire

__all__ = ["Client", "Remote", "StudentError", "StudentAttributeError"]

_DEVICE = re.compile(r"cpu(:\d{1,3})?")


class StudentError(Exception):
    """The student's code raised, sent back a value that breaks the rules, or died."""


class StudentAttributeError(StudentError, AttributeError):
    """The student's object has no such attribute (``hasattr`` sees False)."""


class Remote:
    """A module or object of the student's, living in the worker."""

    __slots__ = ("_client", "_target", "_in_place")

    def __init__(self, client: Client, target: dict[str, Any], in_place: bool = False) -> None:
        object.__setattr__(self, "_client", client)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_in_place", in_place)

    def _request(self, op: str, header: dict[str, Any], values: dict[str, Any]) -> Any:
        __tracebackhide__ = True  # pytest: the judge's frames are no hint
        header = dict(header, op=op, target=self._target)
        return self._client.request(header, values, in_place=self._in_place)

    def __getattr__(self, name: str) -> Any:
        __tracebackhide__ = True  # pytest: the judge's frames are no hint
        if name.startswith("__"):
            raise AttributeError(name)
        if set(self._target) == {"mod"}:  # a module's function or class: resolved when used
            return Remote(self._client, dict(self._target, attr=name), self._in_place)
        return self._request("getattr", {"name": name}, {})

    def __setattr__(self, name: str, value: Any) -> None:
        __tracebackhide__ = True  # pytest: the judge's frames are no hint
        self._request("setattr", {"name": name}, {"value": value})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # pytest: the judge's frames are no hint
        return self._request("call", {}, {"args": args, "kwargs": kwargs})

    def __getitem__(self, key: Any) -> Any:
        __tracebackhide__ = True  # pytest: the judge's frames are no hint
        return self._request("getitem", {}, {"key": key})

    def __setitem__(self, key: Any, value: Any) -> None:
        __tracebackhide__ = True  # pytest: the judge's frames are no hint
        self._request("setitem", {}, {"key": key, "value": value})

    def __len__(self) -> int:
        __tracebackhide__ = True  # pytest: the judge's frames are no hint
        n = self._request("len", {}, {})
        if type(n) is not int or n < 0:
            raise StudentError(f"len() of the student's object gave {n!r}")
        return n

    def __repr__(self) -> str:
        target = self._target
        if "mod" in target:
            return f"<student's {target['mod']}{'.' + target['attr'] if 'attr' in target else ''}>"
        return f"<student's object #{target['h']}>"


class Client(wire.Peer):
    """The judge's end of the channel to one worker."""

    sign = 1

    def __init__(self, fd_in: int, fd_out: int) -> None:
        super().__init__()
        self.fd_in, self.fd_out = fd_in, fd_out
        self.dead: str | None = None

    def reset(self) -> None:
        """Forget linked values, handles and callbacks (and tell the worker to, if it lives)."""
        if getattr(self, "fd_out", None) is not None and self.dead is None:
            try:
                self.request({"op": "reset", "target": {}}, {})
            except StudentError:
                pass
        super().reset()
        self.callbacks: dict[int, Any] = {}
        self.in_place: set[int] = set()
        self._lending = False

    def module(self, dotted: str, in_place: bool = False) -> Remote:
        """The student's module ``dotted`` (imported in the worker on first use).

        ``in_place``: every array passed through it (or through the objects it returns)
        may be changed in place by the student's code (an optimizer's parameters).
        """
        return Remote(self, {"mod": dotted}, in_place)

    def allow_in_place(self, value: Any) -> None:
        """Let the student's code change ``value``'s arrays, lists and dicts in place."""
        if isinstance(value, (np.ndarray, list, dict)):
            key, _ = self._link(value)
            self.in_place.add(key)
        if isinstance(value, (list, tuple)):
            for item in value:
                self.allow_in_place(item)
        elif isinstance(value, dict):
            for item in value.values():
                self.allow_in_place(item)

    def allow_change(self, key: int, obj: Any) -> bool:
        return key in self.in_place or isinstance(obj, np.random.Generator)

    def hello(self) -> str | None:
        """Wait for the worker's greeting: None, or why the student's package is unusable."""
        header, arrays = self._receive()
        hello = header.get("hello")
        if type(hello) is not dict:
            raise StudentError("the worker did not greet")
        problem = hello.get("problem")
        return None if problem is None else str(problem)[:3000]

    # ---------------------------------------------------------------- values

    def encode_other(self, value: Any, arrays: list) -> Any:
        if isinstance(value, Remote):
            if value._client is not self or set(value._target) == {"mod"}:
                raise TypeError("a student's module cannot be sent back")
            return dict(value._target, t="h")
        kind = type(value)
        if kind.__name__ == "Device" and kind.__module__.endswith("backend"):
            return {"t": "dev", "v": str(value.name)}
        if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
            key = len(self.callbacks) + 1
            self.callbacks[key] = value
            return {"t": "cb", "id": key, "name": getattr(value, "__name__", "function")}
        raise TypeError(f"a {kind.__name__} cannot be sent to the student's code")

    def decode_other(self, tag: str, node: dict[str, Any], arrays: list) -> Any:
        if tag == "h":
            key = node.get("id")
            if type(key) is not int:
                raise wire.WireError("a handle without an id")
            return Remote(self, {"h": key}, self._lending)
        if tag == "dev":
            return self._device(node.get("v"))
        raise wire.WireError(f"unknown value kind {tag!r}"[:100])

    @staticmethod
    def _device(name: Any) -> Any:
        if type(name) is not str or not _DEVICE.fullmatch(name):
            raise wire.WireError(f"device {name!r} is not a CPU device"[:100])
        from minialexnet.backend import Device  # the instructor's

        return Device(name)

    def device_array(self, value: Any, device: str) -> Any:
        return self._device(device).asarray(value)

    # ---------------------------------------------------------------- requests

    def _fail(self, why: str) -> StudentError:
        self.dead = why
        return StudentError(why)

    def _receive(self) -> tuple[dict[str, Any], list]:
        __tracebackhide__ = True  # pytest: the judge's frames are no hint
        try:
            header, arrays = wire.receive(self.fd_in)
            self.apply_sync(header, arrays)
        except EOFError:
            raise self._fail(
                "the process running the student's code ended (it crashed, was killed, "
                "or the code called exit)"
            ) from None
        except (wire.WireError, OSError, ValueError, TypeError) as exc:
            raise self._fail(f"the student's code sent back something not allowed: {exc}") from None
        return header, arrays

    def request(
        self, header: dict[str, Any], values: dict[str, Any], in_place: bool = False
    ) -> Any:
        """Send one request and return its decoded result (running callbacks meanwhile).

        ``in_place``: the student's code may change the arrays in ``values`` in place.
        """
        __tracebackhide__ = True  # pytest: the judge's frames are no hint
        if self.dead is not None:
            raise StudentError(f"earlier: {self.dead}")
        if in_place:
            for value in values.values():
                self.allow_in_place(value)
        self._lending = in_place
        try:
            return self._request(header, values)
        finally:
            self._lending = False
            self.refused.clear()

    def _refusal(self) -> StudentError | None:
        if not self.refused:
            return None
        what = ", ".join(
            f"an array of shape {tuple(o.shape)}"
            if isinstance(o, np.ndarray)
            else f"a {type(o).__name__}"
            for o in self.refused[:3]
        )
        self.refused.clear()
        return StudentError(
            f"the student's code changed its input in place ({what}): leave the arrays "
            "you are given alone and return new ones (the change was not applied)"
        )

    def _request(self, header: dict[str, Any], values: dict[str, Any]) -> Any:
        __tracebackhide__ = True  # pytest: the judge's frames are no hint
        message, arrays = self.encode_message(header, values)
        try:
            wire.send(self.fd_out, message, arrays)
        except OSError as exc:
            raise self._fail(f"the process running the student's code is gone ({exc})") from None
        while True:
            reply, arrays = self._receive()
            if "cb" in reply:
                self._callback(reply, arrays)
                continue
            refused = self._refusal()
            if refused is not None:
                raise refused
            if "error" in reply:
                raise self._error(reply["error"], header.get("op") == "getattr")
            try:
                value = self.decode(reply.get("ok"), arrays)
            except (wire.WireError, ValueError, TypeError) as exc:
                raise StudentError(
                    f"the student's code returned something not allowed: {exc}"
                ) from None
            refused = self._refusal()
            if refused is not None:
                raise refused
            return value

    @staticmethod
    def _error(error: Any, attribute: bool) -> StudentError:
        if type(error) is not dict:
            return StudentError("the student's code failed (no reason given)")
        kind = str(error.get("type", "Exception"))[:100]
        text = f"{kind}: {str(error.get('message', ''))[:2000]}"
        trace = str(error.get("trace", ""))[:8000]
        if trace:
            text += "\n(in the student's code)\n" + trace
        return (StudentAttributeError if attribute and kind == "AttributeError" else StudentError)(
            text
        )

    def _callback(self, reply: dict[str, Any], arrays: list) -> None:
        func = self.callbacks.get(reply.get("cb"))
        try:
            if func is None:
                raise LookupError("no such function")
            args = self.decode(reply.get("args"), arrays)
            kwargs = self.decode(reply.get("kwargs"), arrays)
            if type(args) is not list or type(kwargs) is not dict:
                raise wire.WireError("bad call")
            result = func(*args, **kwargs)
            self.allow_in_place(result)  # what the student's code asked for is its own
            message, out = self.encode_message({"cbret": 1}, {"ok": result})
        except Exception as exc:  # noqa: BLE001 - reported to the student's code as its error
            message, out = self.encode_message(
                {"cbret": 1, "error": f"{type(exc).__name__}: {exc}"[:2000]}, {}
            )
        wire.send(self.fd_out, message, out)
