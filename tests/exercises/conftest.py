"""The grading tests' fixture: the instructor's reference package, when the grader provides one.

The grading tests of an exercise may only depend on that exercise's code. A
backward needs a forward's cache, and comparisons need reference values; both
come from ``minialexnet_reference``, a pristine copy of the instructor's package
that the grader puts on ``sys.path`` under that name (the package uses relative
imports, so the copied folder imports as it is). The student's code cannot change it.

Where it is absent (a student's self-check, or the test-suite of the instructor's
checkout) the fixture falls back to ``minialexnet`` itself: caches then come from
your own forward pass, and a failure message says so, because the fault may lie there.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


class Reference:
    """Where reference code comes from: ``minialexnet_reference``, else ``minialexnet``.

    ``minialexnet_reference`` when importable (the grader's copy); otherwise the
    student's own package (a self-check, or the instructor's test-suite).

    Attributes:
        name: the package's import name.
        pristine: True when it is the grader's untouched copy.
        note: '' when pristine, else a sentence for failure messages saying that a
            cache or reference value came from the student's own code.
    """

    def __init__(self) -> None:
        try:
            importlib.import_module("minialexnet_reference")
        except ImportError:
            self.name, self.pristine = "minialexnet", False
            self.note = (
                "(no minialexnet_reference here: the forward cache and reference values came "
                "from your own minialexnet, so the mistake may be in another exercise's code)"
            )
        else:
            self.name, self.pristine, self.note = "minialexnet_reference", True, ""

    def module(self, dotted: str) -> ModuleType:
        """The reference package's submodule ``dotted`` (``"functional.conv"``)."""
        return importlib.import_module(f"{self.name}.{dotted}")

    @property
    def functional(self) -> ModuleType:
        """``functional``: forward passes for caches, backward passes to check caches with."""
        return self.module("functional")

    @property
    def loops(self) -> ModuleType:
        """``functional.reference``: the slow, obviously-correct loop versions."""
        return self.module("functional.reference")


@pytest.fixture(scope="session")
def minialexnet_reference() -> Reference:
    """The reference package (the grader's pristine copy, else ``minialexnet`` with a note)."""
    return Reference()


@pytest.fixture(scope="session")
def ref(minialexnet_reference: Reference) -> Reference:
    """Short name for :func:`minialexnet_reference`."""
    return minialexnet_reference
