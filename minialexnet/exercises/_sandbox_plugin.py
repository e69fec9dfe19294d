"""The pytest plugin that the grader's sandbox loads into every graded run.

It is copied, as a plain file, next to the copied tests and loaded with ``-p``: it never
imports anything from the package under test except the package itself, which is what
it checks. Configured by environment variables (set by :mod:`minialexnet.exercises.sandbox`):

* ``MINIALEXNET_SANDBOX_PACKAGE``: the package that must come from the student's copy
  (``minialexnet``);
* ``MINIALEXNET_SANDBOX_STUDENT``: the folder holding the copy of the student's package;
  the package's ``__file__`` must be inside it (``MINIALEXNET_SANDBOX_SHOWN``: the
  student's own folder, named in messages);
* ``MINIALEXNET_SANDBOX_STATUS``: a file this plugin writes as the run goes: first
  ``importing <package>``, then ``running <test id>`` before each test, and finally, when
  the package could not be imported or came from elsewhere, ``problem <reason>``. The
  grader reads it to say where a run that timed out or crashed was.

When the package fails the check, every test fails in its setup with the reason.
"""

from __future__ import annotations

import importlib
import os
import traceback
from pathlib import Path

import pytest

_PROBLEM: str | None = None


def _status(line: str) -> None:
    path = os.environ.get("MINIALEXNET_SANDBOX_STATUS")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(line)


def _where(exc: BaseException) -> str:
    """The innermost frame of ``exc``'s traceback, as ``file:line``."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def _check_package() -> str | None:
    """None when the package imports from the student's folder, else why not."""
    package = os.environ.get("MINIALEXNET_SANDBOX_PACKAGE", "minialexnet")
    student = Path(os.environ.get("MINIALEXNET_SANDBOX_STUDENT", ".")).resolve()
    shown = os.environ.get("MINIALEXNET_SANDBOX_SHOWN", str(student))
    _status(f"importing {package}")
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


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: object, args: list) -> None:
    """Import the package under test once, before the conftests do, and remember what failed."""
    global _PROBLEM
    _PROBLEM = _check_package()
    _status("ok" if _PROBLEM is None else f"problem {_PROBLEM}")


def pytest_runtest_logstart(nodeid: str, location: tuple) -> None:
    """Record the test about to run (the grader names it when the run times out)."""
    if _PROBLEM is None:
        _status(f"running {nodeid}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail every test with the reason when the package under test is not the student's."""
    if _PROBLEM is not None:
        pytest.fail(_PROBLEM, pytrace=False)
