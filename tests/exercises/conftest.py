"""The grading tests' fixture ``ref``: reference code the student's code cannot change.

The grading tests of an exercise may only depend on that exercise's code. A backward
needs a forward's cache, and comparisons need reference values; both come from ``ref``:

* in grading, the tests run in the *judge* process, where ``minialexnet`` is the
  instructor's package (the student's code runs in another process, reached through
  ``exercise_support.student_module``): ``ref`` is that package, pristine;
* in a student copy that ships recorded reference calls (``fixtures/reference_calls.npz``
  beside this file, see :mod:`minialexnet.exercises.fixtures`), ``ref``'s functions
  replay them; a call that was not recorded (your own cache handed to a reference
  backward, when it differs from the reference's) runs your own code, and the failure
  message then says so;
* elsewhere (the instructor's test-suite, a copy without recordings) ``ref`` is
  ``minialexnet`` itself, with that note.

With ``MINIALEXNET_RECORD_FIXTURES=FILE`` set (a release recording the calls) ``ref`` is
``minialexnet`` and every call through it is recorded into FILE at the end of the session.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

_OWN_CODE_NOTE = (
    "(a reference value or cache came from your own minialexnet, not from the recorded "
    "reference, so the mistake may be in another exercise's code)"
)
_FIXTURES = Path(__file__).with_name("fixtures") / "reference_calls.npz"


class _Wrapped:
    """A module whose functions record or replay their calls (other attributes as they are)."""

    def __init__(self, module: ModuleType, dotted: str, reference: Reference) -> None:
        self._module, self._dotted, self._reference = module, dotted, reference

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        if not callable(value) or isinstance(value, type):
            return value
        from minialexnet.exercises.fixtures import wrap

        ref = self._reference
        return wrap(f"{self._dotted}.{name}", value, ref.recorder, ref.replayer, ref._fell_back)


class Reference:
    """Where reference code comes from (see the module's docstring).

    Attributes:
        name: the package's import name.
        pristine: True when it is the instructor's package, in grading.
        recorder, replayer: the recording or the recorded calls, when in use.
        missed: the calls of this test that were not recorded (run on the copy's code).
    """

    def __init__(self) -> None:
        self.name, self.recorder, self.replayer = "minialexnet", None, None
        self.missed: list[str] = []
        plugin = sys.modules.get("_minialexnet_sandbox_plugin")
        self.pristine = getattr(plugin, "CLIENT", None) is not None
        if self.pristine:
            return
        record = os.environ.get("MINIALEXNET_RECORD_FIXTURES")
        if record:
            from minialexnet.exercises.fixtures import Recorder

            self.recorder, self.record_to = Recorder(), Path(record)
        elif _FIXTURES.is_file():
            from minialexnet.exercises.fixtures import Replayer

            self.replayer = Replayer(_FIXTURES)

    @property
    def isolated(self) -> bool:
        """True when ``ref``'s functions do not run the code under test (grading, recorded
        calls): a test may then put a reference helper in place of the student's."""
        return self.pristine or self.recorder is not None or self.replayer is not None

    def _fell_back(self, name: str) -> None:
        self.missed.append(name)

    @property
    def note(self) -> str:
        """'' when every reference value of this test was pristine or recorded, else a note."""
        if self.pristine or self.recorder is not None:
            return ""
        if self.replayer is not None and not self.missed:
            return ""
        return _OWN_CODE_NOTE

    def module(self, dotted: str) -> Any:
        """The reference package's submodule ``dotted`` (``"functional.conv"``)."""
        module = importlib.import_module(f"{self.name}.{dotted}")
        if self.recorder is None and self.replayer is None:
            return module
        return _Wrapped(module, dotted, self)

    @property
    def functional(self) -> Any:
        """``functional``: forward passes for caches, backward passes to check caches with."""
        return self.module("functional")

    @property
    def loops(self) -> Any:
        """``functional.reference``: the slow, obviously-correct loop versions."""
        return self.module("functional.reference")


@pytest.fixture(scope="session")
def minialexnet_reference() -> Any:
    """The reference package (see the module's docstring)."""
    reference = Reference()
    yield reference
    if reference.recorder is not None:
        reference.recorder.save(reference.record_to)


@pytest.fixture
def ref(minialexnet_reference: Reference) -> Reference:
    """Short name for :func:`minialexnet_reference` (its notes start afresh in each test)."""
    minialexnet_reference.missed.clear()
    return minialexnet_reference
