"""The worker: the only process that runs the student's code. It computes; it never judges.

Started by the keeper (:mod:`minialexnet.exercises._keeper`) as a plain script, with
``python -I -S`` (no site, no ``.pth`` files, no environment), as an unprivileged user
where the grader is root. Its ``sys.path`` holds a copy of the student's package and the
folder NumPy is installed in, nothing else: no reference package, no tests, no plugin.

    python -I -S _worker.py WIRE_PY STUDENT_DIR SITE_DIR PACKAGE

stdin and stdout are the channel from and to the judge; the worker moves them to other
descriptors first, so that whatever the student's code prints goes to stderr (which the
keeper captures, capped, and the grader never shows in a grade). It then imports the
student's package, says hello (or why the import failed), and serves requests one at a
time: ``getattr``, ``setattr``, ``call``, ``getitem``, ``setitem``, ``len`` on a module
(``{"mod": dotted}``) or on a handle (``{"h": id}``) of an object it keeps, and ``reset``.
Values go through :mod:`minialexnet.exercises.wire`; objects that are not plain data
(functions, a student's optimizer) stay here and travel as handles. A judge's function
(``{"t": "cb"}``: a reference function put in place of one of the student's) becomes a stub
that asks the judge to run it. An exception in the student's code is sent back as its
type, message and the student's frames of the traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from typing import Any

_MAX_MESSAGE = 2000
_MISSING = object()
_MAX_FRAMES = 30


def _load_wire(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("_minialexnet_wire", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    wire_path, student, site, package = argv
    chan_in, chan_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)  # the student's prints go to stderr (captured by the keeper)
    os.close(null)
    here = os.path.dirname(os.path.realpath(__file__))
    stdlib = [p for p in sys.path if p and os.path.realpath(p) != here]
    sys.path[:] = [student, *stdlib, site]
    wire = _load_wire(wire_path)
    worker = _make_worker(wire)(chan_in, chan_out, student, package)
    worker.hello()
    worker.serve()
    return 0


def _make_worker(wire: Any) -> type:
    class Worker(wire.Peer):
        sign = -1

        def __init__(self, chan_in: int, chan_out: int, student: str, package: str) -> None:
            super().__init__()
            self.chan_in, self.chan_out = chan_in, chan_out
            self.student, self.package = os.path.realpath(student), package

        def reset(self) -> None:
            # attributes the judge set (a monkeypatched reference function) get their
            # original values back: the judge's undo may only name the patched value
            for (target, name), value in getattr(self, "patched", {}).items():
                if value is _MISSING:
                    delattr(target, name)
                else:
                    setattr(target, name, value)
            self.patched: dict[tuple[Any, str], Any] = {}
            super().reset()
            self.handles: dict[int, Any] = {}
            self.handle_of: dict[int, int] = {}

        # ------------------------------------------------------------ values

        def encode_other(self, value: Any, arrays: list) -> Any:
            if isinstance(value, wire.np.ndarray):
                raise TypeError(
                    f"an array of dtype {value.dtype} cannot be returned (only numeric and "
                    "bool arrays)"
                )
            key = self.handle_of.get(id(value))
            if key is None or self.handles.get(key) is not value:
                key = len(self.handles) + 1
                self.handles[key], self.handle_of[id(value)] = value, key
            return {"t": "h", "id": key}

        def decode_other(self, tag: str, node: dict, arrays: list) -> Any:
            if tag == "h" and "mod" in node:
                return self._target(node)
            if tag == "h":
                key = node.get("h", node.get("id"))
                if key not in self.handles:
                    raise wire.WireError(f"no object {key!r} here")
                return self.handles[key]
            if tag == "dev":
                from minialexnet.backend import Device  # the student's

                return Device(str(node.get("v")))
            if tag == "cb":
                return self._stub(node.get("id"), str(node.get("name", "a reference function")))
            raise wire.WireError(f"unknown value kind {tag!r}")

        def device_array(self, value: Any, device: str) -> Any:
            from minialexnet.backend import Device  # the student's

            return Device(device).asarray(value)

        def _stub(self, key: Any, name: str) -> Any:
            def reference_function(*args: Any, **kwargs: Any) -> Any:
                self._send({"cb": key}, {"args": list(args), "kwargs": kwargs})
                while True:
                    header, arrays = self._receive()
                    if "cbret" in header:
                        self.apply_sync(header, arrays)
                        if "error" in header:
                            raise RuntimeError(f"{name}: {header['error']}"[:_MAX_MESSAGE])
                        return self.decode(header.get("ok"), arrays)
                    self._serve_one(header, arrays)

            reference_function.__name__ = name
            return reference_function

        # ------------------------------------------------------------ channel

        def _send(self, header: dict, values: dict) -> None:
            try:
                out, arrays = self.encode_message(header, values)
            except (TypeError, ValueError, RecursionError) as exc:
                error = {"type": "ReturnValueError", "message": str(exc)[:_MAX_MESSAGE]}
                out, arrays = self.encode_message({"error": error}, {})
            wire.send(self.chan_out, out, arrays)

        def hello(self) -> None:
            problem = None
            if not os.path.isfile(os.path.join(self.student, self.package, "__init__.py")):
                problem = (
                    f"no {self.package} package in the student's copy (no "
                    f"{self.package}/__init__.py): there is nothing to grade"
                )
                self._send({"hello": {"problem": problem}}, {})
                return
            try:
                module = importlib.import_module(self.package)
            except BaseException as exc:  # noqa: BLE001 - SystemExit at import is the student's
                frames = traceback.extract_tb(exc.__traceback__)
                where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
                problem = (
                    f"importing the student's {self.package} failed: {type(exc).__name__}: {exc}"[
                        :_MAX_MESSAGE
                    ]
                    + where
                )
            else:
                file = getattr(module, "__file__", None)
                if file is None:
                    problem = f"{self.package} is not a package (no {self.package}/__init__.py)"
                elif not os.path.realpath(file).startswith(self.student + os.sep):
                    problem = (
                        f"{self.package} was imported from {os.path.dirname(file)}, not from "
                        "the student's copy: the student's package is missing there"
                    )
            self._send({"hello": {"problem": problem}}, {})

        def serve(self) -> None:
            while True:
                try:
                    header, arrays = self._receive()
                except EOFError:
                    return
                self._serve_one(header, arrays)

        def _receive(self) -> tuple[dict, list]:
            # the judge is trusted: no size limits on what it sends
            return wire.receive(self.chan_in, max_payload=1 << 46, max_header=1 << 40)

        def _serve_one(self, header: dict, arrays: list) -> None:
            try:
                self.apply_sync(header, arrays)
                value = self._run(header, arrays)
            except BaseException as exc:  # noqa: BLE001 - everything the student's code raises
                self._send({"error": self._describe(exc)}, {})
            else:
                self._send({}, {"ok": value})

        # ------------------------------------------------------------ requests

        def _target(self, target: Any) -> Any:
            if type(target) is not dict:
                raise wire.WireError("a request without a target")
            if "mod" not in target:
                return self.decode_other("h", target, [])
            dotted = str(target["mod"])
            if dotted != self.package and not dotted.startswith(self.package + "."):
                raise ImportError(f"only {self.package} and its modules can be imported")
            module = importlib.import_module(dotted)
            if "attr" not in target:
                return module
            name = target["attr"]
            if type(name) is not str or name.startswith("__"):
                raise AttributeError(f"attribute {name!r} cannot be used")
            return getattr(module, name)

        def _run(self, header: dict, arrays: list) -> Any:
            op = header.get("op")
            if op == "reset":
                self.reset()
                return None
            target = self._target(header.get("target"))
            name = header.get("name")
            if op in ("getattr", "setattr") or (op == "call" and name is not None):
                if type(name) is not str or name.startswith("__"):
                    raise AttributeError(f"attribute {name!r} cannot be used")
            if op == "getattr":
                return getattr(target, name)
            if op == "setattr":
                self.patched.setdefault((target, name), getattr(target, name, _MISSING))
                setattr(target, name, self.decode(header.get("value"), arrays))
                return None
            if op == "call":
                args = self.decode(header.get("args"), arrays)
                kwargs = self.decode(header.get("kwargs"), arrays)
                if type(args) is not tuple or type(kwargs) is not dict:
                    raise wire.WireError("a call without args and kwargs")
                func = target if name is None else getattr(target, name)
                return func(*args, **kwargs)
            if op == "getitem":
                return target[self.decode(header.get("key"), arrays)]
            if op == "setitem":
                target[self.decode(header.get("key"), arrays)] = self.decode(
                    header.get("value"), arrays
                )
                return None
            if op == "len":
                return len(target)
            raise wire.WireError(f"unknown request {op!r}")

        def _describe(self, exc: BaseException) -> dict:
            frames = []
            for frame in traceback.extract_tb(exc.__traceback__):
                path = os.path.realpath(frame.filename)
                if not path.startswith(self.student + os.sep):
                    continue  # the worker's own frames, NumPy's
                rel = os.path.relpath(path, self.student)
                frames.append(f"{rel}:{frame.lineno}: in {frame.name}\n    {frame.line or ''}")
            if len(frames) > _MAX_FRAMES:
                frames = frames[:5] + ["..."] + frames[-(_MAX_FRAMES - 6) :]
            message = str(exc) if not isinstance(exc, wire.WireError) else f"(wire) {exc}"
            return {
                "type": type(exc).__name__[:100],
                "message": message[:_MAX_MESSAGE],
                "trace": "\n".join(frames)[: 4 * _MAX_MESSAGE],
            }

    return Worker


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
