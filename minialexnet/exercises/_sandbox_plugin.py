"""The pytest plugin that the grader's sandbox loads into every graded run (the judge).

It is copied, as a plain file, next to the copied tests and loaded with ``-p``.
Configured by environment variables (set by :mod:`minialexnet.exercises.sandbox`):

* ``MINIALEXNET_SANDBOX_MODE``: ``judge`` (grading: the student's code runs in the worker,
  reached through the channel below) or ``local`` (a self-check: the package under test
  is imported here, as it is);
* ``MINIALEXNET_SANDBOX_CHANNEL``: ``IN,OUT``, the judge's descriptors of the channel
  (replies from the worker, requests to it), in judge mode;
* ``MINIALEXNET_SANDBOX_PACKAGE``: the package under test (``minialexnet``);
* ``MINIALEXNET_SANDBOX_STUDENT``: in local mode, the folder the package must come from
  (``MINIALEXNET_SANDBOX_SHOWN``: the student's own folder, named in messages);
* ``MINIALEXNET_SANDBOX_STATUS``: a file this plugin writes as the run goes: first
  ``importing <package>``, then ``running <test id>`` before each test, and finally, when
  the package could not be imported or came from elsewhere, ``problem <reason>``. The
  grader reads it to say where a run that timed out or crashed was.

In judge mode it creates :data:`CLIENT` (a :class:`minialexnet.exercises.remote.Client`),
which ``exercise_support.student_module`` uses, waits for the worker's greeting (the
student's package imported, or why not), and after each test makes the worker forget the
objects of that test. When the package fails its check, every test fails in its setup
with the reason.
"""

from __future__ import annotations

import importlib
import os
import traceback
from pathlib import Path
from typing import Any

import pytest

_PROBLEM: str | None = None
CLIENT: Any = None
"""The channel to the worker (judge mode), else None."""


def _status(line: str) -> None:
    path = os.environ.get("MINIALEXNET_SANDBOX_STATUS")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(line)


def _where(exc: BaseException) -> str:
    """The innermost frame of ``exc``'s traceback, as ``file:line``."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def _check_local(package: str) -> str | None:
    """None when the package imports from the student's folder, else why not."""
    student = Path(os.environ.get("MINIALEXNET_SANDBOX_STUDENT", ".")).resolve()
    shown = os.environ.get("MINIALEXNET_SANDBOX_SHOWN", str(student))
    try:
        module = importlib.import_module(package)
    except BaseException as exc:  # noqa: BLE001 - SystemExit at import is the student's too
        return f"importing the student's {package} failed: {type(exc).__name__}: {exc}" + _where(
            exc
        )
    file = getattr(module, "__file__", None)
    if file is None:
        return f"{package} in {shown} is not a package (no {package}/__init__.py)"
    if not Path(file).resolve().is_relative_to(student):
        return (
            f"{package} was imported from {Path(file).parent}, not from the student's copy "
            f"{shown}: the student's package is missing there"
        )
    return None


def _connect() -> str | None:
    """Open the channel to the worker and wait for its greeting."""
    global CLIENT
    from minialexnet.exercises.remote import Client, StudentError  # the instructor's

    fd_in, fd_out = (int(v) for v in os.environ["MINIALEXNET_SANDBOX_CHANNEL"].split(","))
    CLIENT = Client(fd_in, fd_out)
    try:
        return CLIENT.hello()
    except StudentError as exc:
        return f"the process for the student's code did not start: {exc}"


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: object, args: list) -> None:
    """Import the package under test (or meet the worker) before the conftests load."""
    global _PROBLEM
    package = os.environ.get("MINIALEXNET_SANDBOX_PACKAGE", "minialexnet")
    _status(f"importing {package}")
    if os.environ.get("MINIALEXNET_SANDBOX_MODE") == "judge":
        _PROBLEM = _connect()
    else:
        _PROBLEM = _check_local(package)
    _status("ok" if _PROBLEM is None else f"problem {_PROBLEM}")


def pytest_runtest_logstart(nodeid: str, location: tuple) -> None:
    """Record the test about to run (the grader names it when the run times out)."""
    if _PROBLEM is None:
        _status(f"running {nodeid}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail every test with the reason when the package under test is not usable."""
    if _PROBLEM is not None:
        pytest.fail(_PROBLEM, pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """After each test (its fixtures' teardown included) the worker forgets its objects."""
    yield
    if CLIENT is not None and _PROBLEM is None:
        CLIENT.reset()
