"""Recorded reference values, so that a student's self-check does not depend on other exercises.

The grading tests take caches and expected values from the ``ref`` fixture
(``tests/exercises/conftest.py``). In grading, ``ref`` is the instructor's package; in a
student copy there is none: the package there is the student's, so ``lrn_backward``
could not be checked before ``lrn_forward`` works. Hence, when releasing a copy:

    write_check_fixtures(root, shipped_tests, copy / "tests" / "exercises" / "fixtures")

runs the shipped tests against the instructor's package (``root``) in *record* mode:
every call made through ``ref`` is stored, keyed by the function's name and a hash of its
arguments, with its result, in ``reference_calls.npz`` (JSON structure plus arrays, the
:mod:`minialexnet.exercises.wire` encoding: no pickle). In the student copy, ``ref``
*replays*: a call whose arguments hash to a recorded key returns the recorded result;
any other call (the student's own cache handed to a reference backward, say, when it
differs from the reference's) runs the copy's own code, and the failure message then says
that the value came from the student's own package.

    record:   shipped tests --ref.f(args)--> instructor's f --> (key(f, args), result)
    replay:   shipped tests --ref.f(args)--> key(f, args) in the file ? result : own f(args)

The file holds the exact expected results of the shipped tests' inputs, so a submission
could answer by looking its own inputs up in it: that passes ``check``, never a grade.
Grading sets ``MINIALEXNET_GRADE_SALT`` (the release's grading salt,
:func:`minialexnet.exercises.grade.release_salt`) for the judge, and the tests' generators
(``exercise_support.generator``) then draw other inputs, none of them in the file. The
recording runs without the salt (it is removed from the recording run's environment).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import wire
from .sandbox import GRADE_SALT_ENV

__all__ = [
    "FIXTURE_FILE",
    "RECORD_ENV",
    "MISSING",
    "call_key",
    "Recorder",
    "Replayer",
    "write_check_fixtures",
]

FIXTURE_FILE = "reference_calls.npz"
"""The file of recorded calls, in the fixtures folder (``tests/exercises/fixtures``)."""
RECORD_ENV = "MINIALEXNET_RECORD_FIXTURES"
"""Environment variable naming the file a recording run writes."""
MISSING = object()
"""What :meth:`Replayer.lookup` returns for a call that was not recorded."""


class _Unhashable(Exception):
    pass


def _feed(h: Any, value: Any, depth: int = 0) -> None:
    if depth > 32:
        raise _Unhashable("too deep")
    if value is None or type(value) in (bool, int, float, str):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            raise _Unhashable("object array")
        arr = np.ascontiguousarray(value)
        h.update(f"ar:{arr.dtype.str}:{arr.shape};".encode())
        h.update(arr.tobytes())
    elif isinstance(value, np.generic):
        h.update(f"sc:{value.dtype.str}:".encode() + np.asarray(value).tobytes())
    elif isinstance(value, np.dtype):
        h.update(f"dt:{value.str};".encode())
    elif type(value) in (tuple, list):
        h.update(f"{type(value).__name__}[{len(value)}:".encode())
        for v in value:
            _feed(h, v, depth + 1)
        h.update(b"]")
    elif type(value) is dict:
        h.update(f"dict[{len(value)}:".encode())
        for k in sorted(value, key=repr):
            _feed(h, k, depth + 1)
            _feed(h, value[k], depth + 1)
        h.update(b"]")
    else:
        raise _Unhashable(type(value).__name__)


def call_key(name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> str | None:
    """The hash of a call of ``name`` with these arguments; None when they cannot be hashed."""
    h = hashlib.sha256(f"{name}(".encode())
    try:
        _feed(h, tuple(args))
        _feed(h, dict(kwargs))
    except _Unhashable:
        return None
    return h.hexdigest()


class Recorder:
    """Collects calls and their results; :meth:`save` writes them to an npz file."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[bytes, list[np.ndarray]]] = {}

    def record(self, name: str, args: Sequence[Any], kwargs: dict[str, Any], result: Any) -> None:
        """Store one call (calls whose arguments or result cannot be stored are skipped)."""
        key = call_key(name, args, kwargs)
        if key is None or key in self.calls:
            return
        arrays: list[np.ndarray] = []
        try:
            node = wire.Peer().encode(result, arrays)
        except (TypeError, ValueError):
            return
        self.calls[key] = (json.dumps(node).encode("utf-8"), [np.array(a) for a in arrays])

    def save(self, path: Path) -> Path:
        """Write the recorded calls to ``path`` (an ``.npz``, no pickles)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        entries: dict[str, np.ndarray] = {}
        for key, (node, arrays) in self.calls.items():
            entries[f"{key}.json"] = np.frombuffer(node, dtype=np.uint8)
            for i, arr in enumerate(arrays):
                entries[f"{key}.{i}"] = arr
        np.savez_compressed(path, **entries)
        return path


class Replayer:
    """Looks calls up in a file written by :class:`Recorder`."""

    def __init__(self, path: Path) -> None:
        self._file = np.load(Path(path), allow_pickle=False)
        self._counts: dict[str, int] = {}
        for name in self._file.files:
            key, _, part = name.partition(".")
            if part != "json":
                self._counts[key] = self._counts.get(key, 0) + 1
            else:
                self._counts.setdefault(key, 0)

    def lookup(self, name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        """The recorded result of this call (a fresh copy), or :data:`MISSING`."""
        key = call_key(name, args, kwargs)
        if key is None or key not in self._counts:
            return MISSING
        node = json.loads(bytes(self._file[f"{key}.json"]).decode("utf-8"))
        arrays = [self._file[f"{key}.{i}"] for i in range(self._counts[key])]
        return wire.Peer().decode(node, arrays)


def wrap(
    name: str,
    func: Callable[..., Any],
    recorder: Recorder | None = None,
    replayer: Replayer | None = None,
    on_miss: Callable[[str], None] | None = None,
) -> Callable[..., Any]:
    """``func`` recording its calls into ``recorder``, or replaying them from ``replayer``."""

    def recorded(*args: Any, **kwargs: Any) -> Any:
        if replayer is not None:
            found = replayer.lookup(name, args, kwargs)
            if found is not MISSING:
                return found
            if on_miss is not None:
                on_miss(name)
            return func(*args, **kwargs)
        key_args = None
        if recorder is not None:  # hash the arguments before the call may change them
            key_args = (_snapshot(args), _snapshot(kwargs))
        result = func(*args, **kwargs)
        if recorder is not None and key_args is not None:
            recorder.record(name, key_args[0], key_args[1], result)
        return result

    recorded.__name__ = getattr(func, "__name__", name)
    recorded.__doc__ = getattr(func, "__doc__", None)
    return recorded


def _snapshot(value: Any) -> Any:
    """A deep copy of plain data (arrays copied), so that later changes do not alter a key."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if type(value) in (tuple, list):
        return type(value)(_snapshot(v) for v in value)
    if type(value) is dict:
        return {k: _snapshot(v) for k, v in value.items()}
    return value


def run_checkout_tests(
    root: Path, tests: Sequence[str], env: dict[str, str], args: Sequence[str], timeout: float
) -> subprocess.CompletedProcess:
    """Run pytest on ``tests`` of the checkout ``root`` with its own package, output captured.

    The environment is this process's without its pytest options, ``PYTHONPATH``, grading
    salt and recording file, plus ``env``; ``args`` are more pytest options.
    """
    dropped = ("PYTEST_ADDOPTS", "PYTHONPATH", GRADE_SALT_ENV, RECORD_ENV)
    full = {k: v for k, v in os.environ.items() if k not in dropped}
    full.update({"PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1", **env})
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    command += ["--rootdir", str(root), *[str(root / t) for t in tests]]
    return subprocess.run(
        command, cwd=root, env=full, capture_output=True, text=True, timeout=timeout
    )


def write_check_fixtures(
    root: Path, tests: Sequence[str], dest: Path, *, timeout: float = 600.0
) -> Path:
    """Record the ``ref`` calls of ``tests`` (shipped test files of ``root``) into ``dest``.

    Runs pytest on ``tests`` in ``root`` (the instructor's checkout, whose package is the
    reference) with :data:`RECORD_ENV` set; writes ``dest / FIXTURE_FILE`` and returns its
    path. The tests must pass there (they do on the instructor's package).

    Raises:
        RuntimeError: the recording run failed (its output's tail says why).
    """
    root, dest = Path(root).resolve(), Path(dest).resolve()
    target = dest / FIXTURE_FILE
    target.unlink(missing_ok=True)  # an older recording must not pass for this one
    # without the grading salt: the shipped inputs are the ones recorded
    done = run_checkout_tests(root, tests, {RECORD_ENV: str(target)}, ["-x"], timeout)
    if done.returncode == 0 and not target.is_file():
        Recorder().save(target)  # the tests passed without a reference call: nothing to replay
    if done.returncode != 0 or not target.is_file():
        tail = (done.stdout + done.stderr).strip()[-2000:]
        raise RuntimeError(f"recording the reference calls failed:\n{tail}")
    return target
