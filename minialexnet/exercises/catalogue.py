"""The exercise catalogue: ``minialexnet/exercises/catalogue.toml`` read, checked and printed.

Each exercise names the library functions whose marked solution regions a
student writes (``regions``, ``"path::qualname"``), the tutorial cells that go
with them, the message of the stub that replaces them, the grading tests
(``tests``, shipped to students; ``hidden``, kept by the instructor) and its
points. Paths are relative to the repository root: the instructor's checkout,
or a student copy written by :func:`minialexnet.exercises.release.release`
(whose catalogue has a ``[release]`` table naming the exercises handed out,
and no hidden tests). The grading tests draw their random inputs through
``tests/exercises/exercise_support.py`` (``rand``, ``distinct``, ``generator``), so
that grading can draw other ones than the shipped tests' recorded inputs (the
grading salt: :func:`minialexnet.exercises.grade.release_salt`).
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .regions import RegionError, find_regions, notebook_regions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "CATALOGUE_FILE",
    "SCORING",
    "Catalogue",
    "CatalogueError",
    "Exercise",
    "catalogue_path",
    "dumps_catalogue",
    "format_table",
    "load_catalogue",
    "marked_python_files",
    "read_catalogue",
    "repo_root",
    "select",
    "split_spec",
    "top_level_functions",
]

CATALOGUE_FILE = "minialexnet/exercises/catalogue.toml"
"""Where the catalogue lives, relative to the repository root."""

_FIELDS = (
    "name",
    "title",
    "points",
    "regions",
    "tutorials",
    "todo",
    "tests",
    "hidden",
    "scoring",
    "loop_reference",
    "allow_loop_reference",
)

SCORING = ("proportional", "all")
"""The ways an exercise is scored: its points x the share of tests passed, or all or nothing."""


class CatalogueError(ValueError):
    """The catalogue (or the checkout it describes) is not usable; the message lists why."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of the catalogue (see ``catalogue.toml`` for what each field means)."""

    name: str
    title: str
    points: int
    regions: tuple[str, ...]
    tutorials: tuple[str, ...]
    todo: str
    tests: tuple[str, ...]
    hidden: tuple[str, ...] = ()
    scoring: str = "proportional"
    loop_reference: tuple[str, ...] = ()
    allow_loop_reference: bool = False

    @property
    def left_out(self) -> tuple[str, ...]:
        """The loop versions a copy handing this exercise out replaces by stubs."""
        return () if self.allow_loop_reference else self.loop_reference

    @property
    def message(self) -> str:
        """The stub's message: ``"<name>: <todo>"``."""
        return f"{self.name}: {self.todo}"

    @property
    def all_tests(self) -> tuple[str, ...]:
        """Shipped then hidden test files: what ``grade`` runs."""
        return self.tests + self.hidden

    def region_files(self) -> tuple[str, ...]:
        """The library files holding this exercise's regions, each once, in order."""
        return tuple(dict.fromkeys(split_spec(spec)[0] for spec in self.regions))


@dataclass(frozen=True)
class Catalogue:
    """The whole catalogue file: the exercises and the ``[catalogue]``/``[release]`` settings.

    ``released`` is None in the instructor's checkout, and the names of the
    exercises handed out in a student copy.
    """

    exercises: tuple[Exercise, ...]
    support: tuple[str, ...] = ()
    instructor_only: tuple[str, ...] = ()
    released: tuple[str, ...] | None = None
    root: Path = field(default_factory=Path)

    def names(self) -> list[str]:
        """The exercises' names, in catalogue order."""
        return [ex.name for ex in self.exercises]

    def get(self, name: str) -> Exercise:
        """The exercise called ``name`` (``CatalogueError`` listing the known names if none)."""
        exact = [ex for ex in self.exercises if ex.name == name]
        return exact[0] if exact else select(self.exercises, [name])[0]


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"path::qualname"`` -> (path, qualname); a spec without ``::`` -> (path, None)."""
    path, sep, qualname = spec.partition("::")
    return path, (qualname or None) if sep else None


# -- where things are ---------------------------------------------------------------------------


def repo_root() -> Path:
    """The checkout this package lives in: the folder holding minialexnet/ and tests/exercises/.

    Raises :class:`CatalogueError` when the package was installed without its
    repository (``pip install`` from an archive rather than ``pip install -e``
    of a clone): releasing and grading need the tests and tutorials next to it.
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / "minialexnet").is_dir() or not (root / "tests" / "exercises").is_dir():
        raise CatalogueError(
            f"minialexnet.exercises needs the repository it came from (a folder holding "
            f"minialexnet/ and tests/exercises/), but the package is installed at "
            f"{Path(__file__).resolve().parents[1]} without tests/exercises/ beside it; "
            "clone the repository and install it with `pip install -e .`"
        )
    return root


def catalogue_path(root: Path | None = None) -> Path:
    """The catalogue file of the checkout ``root`` (default: :func:`repo_root`)."""
    return (repo_root() if root is None else Path(root)) / CATALOGUE_FILE


def _root_of(path: Path) -> Path:
    """The repository root for a catalogue at ``path``: three levels up at the usual place."""
    path = path.resolve()
    if path.parts[-3:] == tuple(Path(CATALOGUE_FILE).parts):
        return path.parents[2]
    return repo_root()


# -- reading ------------------------------------------------------------------------------------


def _strings(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list):
        problems.append(f"{where} must be a list of strings, got {value!r}")
        return ()
    if not all(isinstance(v, str) and v for v in value):
        problems.append(f"{where} must hold non-empty strings, got {value!r}")
        return ()
    return tuple(value)


def _exercise(raw: Any, index: int, problems: list[str]) -> Exercise | None:
    where = f"exercise #{index + 1}"
    if not isinstance(raw, dict):
        problems.append(f"{where} must be a table, got {raw!r}")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        problems.append(f"{where}: name must be a Python-identifier-like string, got {name!r}")
        return None
    where = f"exercise {name!r}"
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        problems.append(f"{where}: unknown field(s) {unknown}; the fields are {list(_FIELDS)}")
    for key in ("title", "todo"):
        if not isinstance(raw.get(key), str) or not raw.get(key):
            problems.append(f"{where}: {key} must be a non-empty string, got {raw.get(key)!r}")
    points = raw.get("points")
    if isinstance(points, bool) or not isinstance(points, int) or points < 0:
        problems.append(f"{where}: points must be an int >= 0, got {points!r}")
    regions = _strings(raw.get("regions"), f"{where}: regions", problems)
    tests = _strings(raw.get("tests"), f"{where}: tests", problems)
    tutorials = _strings(raw.get("tutorials", []), f"{where}: tutorials", problems)
    hidden = _strings(raw.get("hidden", []), f"{where}: hidden", problems)
    if not regions:
        problems.append(f"{where}: regions must name at least one function")
    if not tests and not hidden:
        problems.append(f"{where}: needs at least one test file (tests or hidden)")
    for spec in regions:
        if split_spec(spec)[1] is None:
            problems.append(f"{where}: region {spec!r} must be 'path::qualname'")
    scoring = raw.get("scoring", "proportional")
    if scoring not in SCORING:
        problems.append(f"{where}: scoring must be one of {list(SCORING)}, got {scoring!r}")
    loops = _strings(raw.get("loop_reference", []), f"{where}: loop_reference", problems)
    for spec in loops:
        if split_spec(spec)[1] is None or not split_spec(spec)[0].endswith(".py"):
            problems.append(f"{where}: loop_reference {spec!r} must be 'path.py::function'")
    allow = raw.get("allow_loop_reference", False)
    if not isinstance(allow, bool):
        problems.append(f"{where}: allow_loop_reference must be true or false, got {allow!r}")
    return Exercise(
        name=name,
        title=str(raw.get("title", "")),
        points=points if isinstance(points, int) else 0,
        regions=regions,
        tutorials=tutorials,
        todo=str(raw.get("todo", "")),
        tests=tests,
        hidden=hidden,
        scoring=scoring if scoring in SCORING else "proportional",
        loop_reference=loops,
        allow_loop_reference=allow is True,
    )


def _qualnames_in(path: Path, problems: list[str], where: str) -> list[str | None] | None:
    """The qualnames of the regions in the file at ``path`` (None if unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"{where}: cannot read {path}: {exc}")
        return None
    try:
        if path.suffix == ".ipynb":
            return [r.qualname for r in notebook_regions(json.loads(text), str(path))]
        return [r.qualname for r in find_regions(text, str(path))]
    except (RegionError, ValueError) as exc:
        problems.append(f"{where}: {exc}")
        return None


def marked_python_files(root: Path) -> list[Path]:
    """The ``.py`` files of the library and the tutorials that hold a marked region."""
    found = []
    paths = sorted((root / "minialexnet").rglob("*.py")) + sorted(root.glob("tutorials/*.py"))
    for path in paths:
        if "__pycache__" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if "### BEGIN SOLUTION" in text or "### END SOLUTION" in text:
            try:
                regions = find_regions(text, str(path))
            except RegionError:
                regions = [None]  # reported where the file's regions are read
            if regions:
                found.append(path)
    return found


def _validate_files(catalogue: Catalogue, problems: list[str]) -> None:
    root = catalogue.root
    for ex in catalogue.exercises:
        hidden = () if catalogue.released is not None else ex.hidden
        for rel in ex.tests + hidden:
            if not (root / rel).is_file():
                problems.append(f"exercise {ex.name!r}: test file {rel} does not exist")
    for rel in catalogue.support:
        if not (root / rel).is_file():
            problems.append(f"[catalogue] support file {rel} does not exist")
    functions: dict[str, set[str] | None] = {}
    for ex in catalogue.exercises:
        for spec in ex.loop_reference:
            rel, name = split_spec(spec)
            if rel not in functions:
                functions[rel] = top_level_functions(root / rel)
            found = functions[rel]
            if found is None:
                problems.append(f"exercise {ex.name!r}: loop_reference file {rel} does not exist")
            elif name not in found:
                problems.append(
                    f"exercise {ex.name!r}: no function {name} at the top level of {rel} "
                    f"(loop_reference); it has {sorted(found)}"
                )


def top_level_functions(path: Path) -> set[str] | None:
    """The names of the functions defined at the top level of the file ``path`` (None: no file)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError):
        return None
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _validate_regions(catalogue: Catalogue, problems: list[str]) -> None:
    """Every region spec finds a marked region, and every marked region has one exercise."""
    root = catalogue.root
    claimed: dict[tuple[str, str | None], str] = {}
    cache: dict[str, list[str | None] | None] = {}

    def qualnames(rel: str, where: str) -> list[str | None] | None:
        if rel not in cache:
            path = root / rel
            if not path.is_file():
                problems.append(f"{where}: {rel} does not exist")
                cache[rel] = None
            else:
                cache[rel] = _qualnames_in(path, problems, where)
        return cache[rel]

    for ex in catalogue.exercises:
        where = f"exercise {ex.name!r}"
        specs = list(ex.regions)
        for tut in ex.tutorials:
            base, qual = split_spec(tut)
            specs += [
                f"{base}{suffix}" + (f"::{qual}" if qual else "") for suffix in (".py", ".ipynb")
            ]
        for spec in specs:
            rel, qual = split_spec(spec)
            found = qualnames(rel, where)
            if found is None:
                continue
            if (qual is None and not found) or (qual is not None and qual not in found):
                what = f"in {qual}" if qual else "anywhere"
                problems.append(
                    f"{where}: no marked region {what} in {rel} (found regions in "
                    f"{sorted({str(q) for q in found}) or 'no function'}); put "
                    "### BEGIN SOLUTION / ### END SOLUTION comment lines around the solution"
                )
            keys = [(rel, q) for q in dict.fromkeys(found)] if qual is None else [(rel, qual)]
            for key in keys:
                other = claimed.setdefault(key, ex.name)
                if other != ex.name:
                    problems.append(
                        f"{where}: {key[0]}::{key[1]} is already claimed by exercise {other!r}"
                    )
    for path in marked_python_files(root):
        rel = path.relative_to(root).as_posix()
        for qual in qualnames(rel, "catalogue") or []:
            if (rel, qual) not in claimed:
                problems.append(
                    f"{rel}::{qual} holds a marked solution region that no exercise names; "
                    "add it to an exercise's regions in the catalogue (or remove the markers)"
                )


def read_catalogue(
    path: str | Path | None = None, *, root: str | Path | None = None, validate: bool = True
) -> Catalogue:
    """Read and check the catalogue at ``path`` (default: the checkout's own).

    ``root`` is the repository root the catalogue's paths are relative to
    (default: three levels above ``path``). Checks: the fields, unique names,
    that every test and support file exists and (in an instructor's checkout)
    that every region names a function holding a marked region and every marked
    region of the library belongs to exactly one exercise. All problems are
    reported together in one :class:`CatalogueError`.
    """
    if path is None:
        root = repo_root() if root is None else Path(root)
        path = root / CATALOGUE_FILE
    path = Path(path)
    root = _root_of(path) if root is None else Path(root).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"no exercise catalogue at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path} is not valid TOML: {exc}") from None

    problems: list[str] = []
    unknown = sorted(set(data) - {"catalogue", "exercise", "release"})
    if unknown:
        problems.append(f"unknown top-level key(s) {unknown}")
    settings = data.get("catalogue", {})
    support = _strings(settings.get("support", []), "[catalogue] support", problems)
    instructor_only = _strings(
        settings.get("instructor_only", []), "[catalogue] instructor_only", problems
    )
    released = None
    if "release" in data:
        released = _strings(data["release"].get("exercises"), "[release] exercises", problems)
    raw = data.get("exercise", [])
    if not isinstance(raw, list) or not raw:
        problems.append("the catalogue has no [[exercise]] tables")
        raw = []
    exercises = [ex for i, r in enumerate(raw) if (ex := _exercise(r, i, problems)) is not None]
    names = [ex.name for ex in exercises]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"exercise names must be unique; repeated: {duplicates}")
    if released is not None:
        strangers = sorted(set(released) - set(names))
        if strangers:
            problems.append(f"[release] names unknown exercises {strangers}")
    catalogue = Catalogue(tuple(exercises), support, instructor_only, released, root)
    if validate and not problems:
        _validate_files(catalogue, problems)
        if released is None:
            _validate_regions(catalogue, problems)
    if problems:
        raise CatalogueError(f"{path}: " + "; ".join(problems))
    return catalogue


def load_catalogue(path: str | Path | None = None) -> list[Exercise]:
    """The exercises of the catalogue at ``path`` (default: the checkout's own), checked."""
    return list(read_catalogue(path).exercises)


def select(exercises: Sequence[Exercise], names: Iterable[str] | None) -> list[Exercise]:
    """The exercises called ``names``, in catalogue order (all of them for None).

    A name that is not an exercise but the start of some (``lrn`` for ``lrn_forward``
    and ``lrn_backward``, ``conv2d``, ``maxpool2d``) stands for all of those.
    Raises :class:`CatalogueError` naming the unknown ones and listing the known names.
    """
    if names is None:
        return list(exercises)
    wanted = [n.strip() for n in names if n.strip()]
    known = [ex.name for ex in exercises]
    chosen: set[str] = set()
    unknown = []
    for name in wanted:
        group = [k for k in known if k == name] or [k for k in known if k.startswith(name + "_")]
        if not group:
            unknown.append(name)
        chosen.update(group)
    if unknown:
        raise CatalogueError(
            f"unknown exercise{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"the catalogue has: {', '.join(known)} (or a group: "
            f"{', '.join(groups(known))})"
        )
    if not wanted:
        raise CatalogueError(f"no exercise named; the catalogue has: {', '.join(known)}")
    return [ex for ex in exercises if ex.name in chosen]


def groups(names: Sequence[str]) -> list[str]:
    """Prefixes that stand for several exercises: ``lrn`` for lrn_forward and lrn_backward."""
    prefixes = {n.rsplit("_", 1)[0] for n in names if "_" in n}
    return sorted(p for p in prefixes if p not in names and sum(
        n.startswith(p + "_") for n in names) > 1)  # fmt: skip


# -- writing and printing -----------------------------------------------------------------------


def _toml_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _toml_list(values: Sequence[str]) -> str:
    if len(values) <= 1:
        return "[" + ", ".join(_toml_str(v) for v in values) + "]"
    return "[\n" + "".join(f"    {_toml_str(v)},\n" for v in values) + "]"


def dumps_catalogue(catalogue: Catalogue, header: str = "") -> str:
    """The catalogue as TOML text that :func:`read_catalogue` reads back to the same values."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    if lines:
        lines.append("")
    lines += [
        "[catalogue]",
        f"support = {_toml_list(catalogue.support)}",
        f"instructor_only = {_toml_list(catalogue.instructor_only)}",
    ]
    if catalogue.released is not None:
        lines += ["", "[release]", f"exercises = {_toml_list(catalogue.released)}"]
    for ex in catalogue.exercises:
        lines += [
            "",
            "[[exercise]]",
            f"name = {_toml_str(ex.name)}",
            f"title = {_toml_str(ex.title)}",
            f"points = {ex.points}",
            f"regions = {_toml_list(ex.regions)}",
            f"tutorials = {_toml_list(ex.tutorials)}",
            f"todo = {_toml_str(ex.todo)}",
            f"tests = {_toml_list(ex.tests)}",
            f"hidden = {_toml_list(ex.hidden)}",
            f"scoring = {_toml_str(ex.scoring)}",
            f"loop_reference = {_toml_list(ex.loop_reference)}",
            f"allow_loop_reference = {'true' if ex.allow_loop_reference else 'false'}",
        ]
    return "\n".join(lines) + "\n"


def format_table(catalogue: Catalogue, verbose: bool = False) -> str:
    """A plain-text table of the exercises: name, points, tests, title (and with
    ``verbose`` the regions, tutorials and the stub's message under each)."""
    released = set(catalogue.released or ())
    rows = []
    for ex in catalogue.exercises:
        tests = f"{len(ex.tests)}" + (f"+{len(ex.hidden)} hidden" if ex.hidden else "")
        mark = "*" if ex.name in released else ""
        rows.append((ex.name + mark, str(ex.points), tests, ex.title))
    header = ("exercise", "points", "tests", "title")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]

    def line(r: Sequence[str]) -> str:
        return f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()

    rule = "-" * max(len(line(r)) for r in [header, *rows])
    out = [line(header), rule]
    for ex, row in zip(catalogue.exercises, rows, strict=True):
        out.append(line(row))
        if verbose:
            pad = " " * (widths[0] + 2)
            out += [f"{pad}region    {spec}" for spec in ex.regions]
            out += [f"{pad}tutorial  {spec}" for spec in ex.tutorials]
            out += [f"{pad}test      {t}" for t in ex.tests]
            out += [f"{pad}hidden    {t}" for t in ex.hidden]
            out.append(f"{pad}scoring   {ex.scoring}")
            allowed = " (allowed: shipped)" if ex.allow_loop_reference else ""
            out += [f"{pad}loops     {spec}{allowed}" for spec in ex.loop_reference]
            out.append(f"{pad}stub      {ex.message}")
    total = sum(ex.points for ex in catalogue.exercises)
    out.append(rule)
    out.append(f"{len(catalogue.exercises)} exercises, {total} points")
    if catalogue.released is not None:
        out.append(
            f"student copy: * marks the exercises handed out ({', '.join(catalogue.released)})"
        )
    return "\n".join(out)
