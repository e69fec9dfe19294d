"""Instructors' exercises from one source: the library's own code, with solution regions marked.

Solution regions sit in the library's source between nbgrader's comment lines
``### BEGIN SOLUTION`` and ``### END SOLUTION`` (the reference package works
unchanged with them in place). ``catalogue.toml`` names each exercise, the
functions holding its regions, the tests that grade it and its points.

    python -m minialexnet.exercises list
    python -m minialexnet.exercises release --only conv2d_backward,lrn_forward --out DIR
    python -m minialexnet.exercises grade DIR [--json results.json]
    python -m minialexnet.exercises check NAME        (inside a student copy)

Modules: :mod:`.regions` (find and replace marked regions in source and
notebooks), :mod:`.catalogue` (read and check the catalogue), :mod:`.release`
(write a student copy), :mod:`.grade` (grade one in a sandboxed process:
``from minialexnet.exercises.grade import grade``). Grading separates computing from
judging (:mod:`.sandbox`): the tests run in a *judge* process with the instructor's
package, the student's code in a confined *worker* process (:mod:`._worker`, owned by
:mod:`._keeper`) that the tests call through proxies (:mod:`.remote`, over
:mod:`.wire`); :mod:`.fixtures` records reference calls for a copy's self-checks.
See ``docs/instructors.md`` for the workflow.
"""

from __future__ import annotations

from .catalogue import (
    Catalogue,
    CatalogueError,
    Exercise,
    load_catalogue,
    read_catalogue,
    repo_root,
)
from .regions import BEGIN, END, RegionError, find_regions, replace_regions
from .release import ReleaseError, release

__all__ = [
    "BEGIN",
    "END",
    "Catalogue",
    "CatalogueError",
    "Exercise",
    "RegionError",
    "ReleaseError",
    "find_regions",
    "load_catalogue",
    "read_catalogue",
    "release",
    "replace_regions",
    "repo_root",
]
