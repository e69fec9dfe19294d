"""The release manifest: what a student copy handed out, so that grading grades exactly that.

``release`` writes the same JSON file twice: into the student copy (``COPY/release.json``)
and beside it for the instructor (``COPY.release.json``, next to the folder ``COPY``).
It records the exercises handed out with their points and scoring, the loop versions
left out, the package's version, the date, and fingerprints: the sha256 of the catalogue
and of every graded test file (shipped, hidden and support), and one digest over them.

``grade DIR --release COPY.release.json`` grades exactly the manifest's exercises, so a
blank handout scores 0 of the points handed out, and refuses (exit 2) when the
instructor's catalogue or tests no longer match the fingerprints, naming the files that
changed: the grade would otherwise be of tests the students never had
(``--accept-changes`` grades with the current ones anyway). The copy's own manifest is a
fallback only: a student can edit it (drop the exercises they did not solve), so
``grade`` says when it uses it, and the Gradescope autograder carries the instructor's.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .catalogue import CATALOGUE_FILE, Catalogue, Exercise

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "Manifest",
    "ManifestError",
    "ReleasedExercise",
    "beside",
    "build_manifest",
    "changes",
    "fingerprints",
    "grading_salt",
    "read_manifest",
    "write_manifest",
]

FORMAT = "minialexnet-release/1"
"""The manifest format's name and version (the file's ``format``)."""

MANIFEST_NAME = "release.json"
"""The manifest's name inside a student copy."""


class ManifestError(ValueError):
    """A manifest is missing, unreadable, or does not describe the instructor's catalogue."""


@dataclass(frozen=True)
class ReleasedExercise:
    """One exercise as handed out: its name, points, scoring and loop versions left out."""

    name: str
    title: str
    points: int
    scoring: str
    left_out: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """What a release handed out (see the module's docstring).

    Attributes:
        exercises: the exercises handed out, in catalogue order.
        files: sha256 of the catalogue and of each graded test file, by repository path.
        digest: sha256 over ``files`` and the exercises' names, points and scoring.
        package_version: ``minialexnet.__version__`` of the instructor's checkout.
        created: when the release was written (UTC, ISO 8601).
        path: the file it was read from (None when built in memory).
    """

    exercises: tuple[ReleasedExercise, ...]
    files: dict[str, str]
    digest: str
    package_version: str
    created: str
    format: str = FORMAT
    path: Path | None = field(default=None, compare=False)

    @property
    def names(self) -> list[str]:
        """The names of the exercises handed out."""
        return [ex.name for ex in self.exercises]

    @property
    def total(self) -> int:
        """The points handed out."""
        return sum(ex.points for ex in self.exercises)

    def to_json(self) -> str:
        """The manifest as the JSON text ``release`` writes."""
        data = {
            "format": self.format,
            "package_version": self.package_version,
            "created": self.created,
            "total_points": self.total,
            "exercises": [{**asdict(ex), "left_out": list(ex.left_out)} for ex in self.exercises],
            "digest": self.digest,
            "files": dict(sorted(self.files.items())),
        }
        return json.dumps(data, indent=2) + "\n"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def graded_files(catalogue: Catalogue, exercises: Sequence[Exercise]) -> list[str]:
    """The catalogue, the support files and the tests (shipped and hidden) of ``exercises``."""
    files = [CATALOGUE_FILE, *catalogue.support]
    for ex in exercises:
        files += [t.partition("::")[0] for t in ex.all_tests]
    return list(dict.fromkeys(files))


def fingerprints(catalogue: Catalogue, exercises: Sequence[Exercise]) -> dict[str, str]:
    """sha256 of each of :func:`graded_files` in the checkout ``catalogue.root``."""
    return {rel: _sha256(catalogue.root / rel) for rel in graded_files(catalogue, exercises)}


def _released(ex: Exercise) -> ReleasedExercise:
    return ReleasedExercise(ex.name, ex.title, ex.points, ex.scoring, tuple(ex.left_out))


def _digest(files: dict[str, str], exercises: Sequence[ReleasedExercise]) -> str:
    lines = [f"{rel} {sha}" for rel, sha in sorted(files.items())]
    lines += [
        f"exercise {ex.name} {ex.points} {ex.scoring} {' '.join(ex.left_out)}".rstrip()
        for ex in exercises
    ]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _version(root: Path) -> str:
    """``__version__`` as written in the checkout's ``minialexnet/__init__.py``."""
    try:
        text = (root / "minialexnet" / "__init__.py").read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    for line in text.splitlines():
        if line.startswith("__version__"):
            return line.partition("=")[2].strip().strip("\"'")
    return "unknown"


def build_manifest(
    catalogue: Catalogue, exercises: Sequence[Exercise], created: str | None = None
) -> Manifest:
    """The manifest of a release of ``exercises`` from the checkout ``catalogue.root``."""
    released = tuple(_released(ex) for ex in exercises)
    files = fingerprints(catalogue, exercises)
    now = created or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    return Manifest(released, files, _digest(files, released), _version(catalogue.root), now)


def grading_salt(digest: str) -> int:
    """The grading salt of a release whose manifest has ``digest``: an integer below 2**64.

    Grading mixes it into every seeded generator of the grading tests
    (``tests/exercises/exercise_support.generator``), so the judged inputs differ from
    the ones whose reference results a student copy ships (``reference_calls.npz``);
    derived from the digest, it is the same at every grading of a release (reproducible
    grades), and ``release`` checks that the instructor's package passes under it.
    """
    return int.from_bytes(hashlib.sha256(digest.encode("utf-8")).digest()[:8], "big")


def beside(out: Path) -> Path:
    """The instructor's manifest of the copy ``out``, beside it: ``out.release.json``."""
    out = Path(out)
    return out.with_name(out.name + ".release.json")


def write_manifest(manifest: Manifest, path: Path) -> Path:
    """Write ``manifest`` to ``path`` (its folder must exist); return ``path``."""
    path = Path(path)
    path.write_text(manifest.to_json(), encoding="utf-8")
    return path


def _fail(path: Path, why: str) -> ManifestError:
    return ManifestError(
        f"{path} is not a release manifest ({why}); use the file that `python -m "
        "minialexnet.exercises release` wrote beside the student copy (DIR.release.json)"
    )


def read_manifest(path: str | Path) -> Manifest:
    """Read and check the manifest at ``path`` (a file, or a student copy holding one).

    Raises:
        ManifestError: no such file, not JSON, not a manifest, or a digest that does not
            match its own contents (edited by hand).
    """
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"no release manifest at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read the release manifest {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise _fail(path, f"format {found!r}, expected {FORMAT!r}")
    try:
        exercises = tuple(
            ReleasedExercise(
                str(e["name"]),
                str(e["title"]),
                int(e["points"]),
                str(e["scoring"]),
                tuple(str(s) for s in e.get("left_out", [])),
            )
            for e in data["exercises"]
        )
        files = {str(k): str(v) for k, v in data["files"].items()}
        manifest = Manifest(
            exercises,
            files,
            str(data["digest"]),
            str(data.get("package_version", "unknown")),
            str(data.get("created", "")),
            path=path.resolve(),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _fail(path, f"a field is missing or of the wrong type: {exc!r}") from None
    if _digest(files, exercises) != manifest.digest:
        raise ManifestError(
            f"{path}: its digest does not match its exercises and files: the manifest was "
            "edited after `release` wrote it; use the instructor's copy (DIR.release.json)"
        )
    return manifest


def changes(manifest: Manifest, catalogue: Catalogue) -> tuple[list[str], list[str]]:
    """How the checkout ``catalogue.root`` differs from what ``manifest`` handed out.

    Returns ``(blocking, notes)``, one line per difference. ``blocking``: what changes a
    grade (an exercise gone, other points or scoring, a graded test file changed, added
    or missing). ``notes``: what does not (the catalogue file changed, but not in the
    released exercises' points, scoring or tests: a title or another exercise).
    Both empty when grading uses exactly what was released.
    """
    blocking, notes = [], []
    known = {ex.name: ex for ex in catalogue.exercises}
    current = []
    for released in manifest.exercises:
        ex = known.get(released.name)
        if ex is None:
            blocking.append(f"exercise {released.name} is no longer in the catalogue")
            continue
        current.append(ex)
        if ex.points != released.points:
            blocking.append(f"{ex.name}: {released.points} points at release, now {ex.points}")
        if ex.scoring != released.scoring:
            blocking.append(
                f"{ex.name}: scoring {released.scoring!r} at release, now {ex.scoring!r}"
            )
    now: dict[str, str] = {}
    for rel in graded_files(catalogue, current):
        path = catalogue.root / rel
        now[rel] = _sha256(path) if path.is_file() else "missing"
    for rel in sorted(set(now) | set(manifest.files)):
        before, after = manifest.files.get(rel), now.get(rel)
        if before == after:
            continue
        if rel == CATALOGUE_FILE:
            notes.append(
                f"{rel} changed since the release (the released exercises' points, "
                "scoring and test files did not)"
            )
        elif before is None:
            blocking.append(f"{rel} is graded now but was not at release")
        elif after is None:
            blocking.append(f"{rel} was graded at release but is not now")
        elif after == "missing":
            blocking.append(f"{rel} is missing")
        else:
            blocking.append(f"{rel} changed since the release")
    return blocking, notes
