"""The Gradescope autograder for a release: one zip, built from the instructor's checkout.

``build_autograder("handout.release.json", "autograder.zip")`` writes a zip holding,
at its root (as Gradescope wants it):

* ``setup.sh``: run once when Gradescope builds the image; installs the package from the
  zip's own copy (``pip install ./checkout``: numpy and the rest of its dependencies)
  with pytest and hypothesis. Nothing is cloned or downloaded but from PyPI. It then
  makes the installed package and the zip's folder readable by root only: the grader
  runs the student's code as ``nobody`` (:mod:`minialexnet.exercises.sandbox`);
* ``run_autograder``: run for every submission; grades ``/autograder/submission`` (the
  student copy's folder, or one folder below it) with the zip's manifest and writes
  ``/autograder/results/results.json``;
* ``release.json``: the instructor's release manifest (never the submission's);
* ``checkout/``: the instructor's package (the grader and the reference the tests take
  caches and reference values from), the grading tests with the hidden ones, and the
  tutorials (the catalogue's checks read them); nothing else of the repository.

Every path ``run_autograder`` uses can be moved with an environment variable, so a test
(or an instructor trying it out) runs it anywhere::

    AUTOGRADER=/tmp/ag                       # holds source/, submission/, results/
    AUTOGRADER_SOURCE, AUTOGRADER_SUBMISSION, AUTOGRADER_RESULTS   # each on its own
    AUTOGRADER_PYTHON=python3                # the interpreter setup.sh installed into
    AUTOGRADER_TIMEOUT=120                   # seconds per exercise

Before writing, the manifest is checked against the checkout: a zip whose tests differ
from the release's is refused (``accept_changes`` builds it anyway, and its
``run_autograder`` passes ``--accept-changes``).
"""

from __future__ import annotations

import os
import shlex
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO

from ..checkpoint import write_atomically
from .catalogue import CatalogueError, read_catalogue, repo_root
from .manifest import Manifest, ManifestError, changes, read_manifest
from .release import _walk  # the student copy's file walk: the same files, the same skips

__all__ = [
    "AutograderError",
    "CHECKOUT",
    "build_autograder",
    "checkout_files",
    "run_autograder_script",
    "setup_script",
    "unpack",
]

CHECKOUT = "checkout"
"""The folder of the zip holding the instructor's files."""

_TOP_FILES = ("pyproject.toml", "README.md", "LICENSE")
_TOP_FOLDERS = ("minialexnet", "tutorials", "tests/exercises")


class AutograderError(ValueError):
    """The autograder cannot be built (no manifest, a changed checkout, a bad path)."""


def checkout_files(root: Path) -> list[str]:
    """The repository paths the zip's ``checkout/`` holds.

    ``pyproject.toml``, ``README.md`` and ``LICENSE`` (``pip install`` reads them), the
    package, the tutorials, ``tests/exercises/`` with the hidden tests, and the helper
    modules of ``tests/`` (``conftest.py``, ``helpers.py``: the grader copies the helpers
    of every folder above a test file).
    """
    root = Path(root)
    files = [name for name in _TOP_FILES if (root / name).is_file()]
    for folder in _TOP_FOLDERS:
        if (root / folder).is_dir():
            files += [p.relative_to(root).as_posix() for p in _walk(root / folder)]
    files += [
        p.relative_to(root).as_posix()
        for p in sorted((root / "tests").glob("*.py"))
        if not p.name.startswith("test_")
    ]
    return files


def setup_script() -> str:
    """``setup.sh``: install the zip's own copy of the package, pytest and hypothesis."""
    return """\
#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image: it installs the
# instructor's package from this zip (checkout/) with its dependencies (numpy, ...),
# pytest and hypothesis. Written by `python -m minialexnet.exercises autograder`.
set -euo pipefail
SOURCE="${AUTOGRADER_SOURCE:-${AUTOGRADER:-/autograder}/source}"
PYTHON="${AUTOGRADER_PYTHON:-python3}"
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    apt-get update && apt-get install -y python3-pip
fi
packages=("$SOURCE/checkout" "pytest>=7.4" "hypothesis>=6.80")
# an image whose Python is "externally managed" (PEP 668) needs --break-system-packages
"$PYTHON" -m pip install --no-cache-dir "${packages[@]}" \\
    || "$PYTHON" -m pip install --no-cache-dir --break-system-packages "${packages[@]}"
cd /
"$PYTHON" -c "import numpy, pytest, hypothesis, minialexnet; print(minialexnet.__version__)"
# the installed copy holds your solutions, and the zip your hidden tests: readable by root
# only (the grader runs the student's code as nobody, and Landlock lets it read /usr)
INSTALLED="$("$PYTHON" -c "import os, minialexnet; print(os.path.dirname(minialexnet.__file__))")"
chmod -R go-rwx "$INSTALLED" "$SOURCE"
"""


def run_autograder_script(
    timeout: float, hidden_visibility: str = "after_published", accept_changes: bool = False
) -> str:
    """``run_autograder``: grade the submission with the zip's manifest into results.json."""
    accept = " --accept-changes" if accept_changes else ""
    return f"""\
#!/usr/bin/env bash
# Gradescope runs this for every submission: it grades the student copy in
# $AUTOGRADER/submission (its folder, or one folder below it) on the exercises of the
# instructor's release manifest in this zip (never the submission's own), and writes
# $AUTOGRADER/results/results.json. Written by `python -m minialexnet.exercises autograder`.
set -uo pipefail
AUTOGRADER="${{AUTOGRADER:-/autograder}}"
SOURCE="${{AUTOGRADER_SOURCE:-$AUTOGRADER/source}}"
SUBMISSION="${{AUTOGRADER_SUBMISSION:-$AUTOGRADER/submission}}"
RESULTS="${{AUTOGRADER_RESULTS:-$AUTOGRADER/results}}"
PYTHON="${{AUTOGRADER_PYTHON:-python3}}"
TIMEOUT="${{AUTOGRADER_TIMEOUT:-{timeout:g}}}"
mkdir -p "$RESULTS"
rm -f "$RESULTS/results.json"
# your solutions and hidden tests: root only (the student's code runs as nobody)
chmod -R go-rwx "$SOURCE" 2>/dev/null || true
# run from the zip's checkout: `python -m` imports its package, the grader and reference
cd "$SOURCE/checkout" || exit 2
"$PYTHON" -m minialexnet.exercises grade "$SUBMISSION" \\
    --release "$SOURCE/release.json" --root "$SOURCE/checkout" \\
    --json "$RESULTS/results.json" --timeout "$TIMEOUT" \\
    --hidden-visibility {shlex.quote(hidden_visibility)}{accept}
status=$?
if [ ! -s "$RESULTS/results.json" ]; then
    # the grader itself failed (its message is in the stdout that instructors see)
    message="The autograder could not grade this submission; the instructor sees why."
    printf '{{"score": 0, "output": "%s", "tests": []}}\\n' "$message" > "$RESULTS/results.json"
fi
exit $status
"""


def _check(manifest: Manifest, root: Path, accept_changes: bool) -> None:
    try:
        catalogue = read_catalogue(root=root)
    except CatalogueError as exc:
        raise AutograderError(str(exc)) from None
    if catalogue.released is not None:
        raise AutograderError(
            f"{root} is a student copy; build the autograder from the instructor's checkout"
        )
    gone = [n for n in manifest.names if n not in catalogue.names()]
    blocking, _ = changes(manifest, catalogue)
    if gone or (blocking and not accept_changes):
        raise AutograderError(
            f"the checkout {root} no longer grades what {manifest.path} handed out: "
            f"{'; '.join(blocking)}. Build from the checkout (the commit) the release came "
            "from, or pass --accept-changes to grade with the current tests"
        )


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    archive.writestr(info, data)


def build_autograder(
    release: str | Path,
    out: str | Path = "autograder.zip",
    root: str | Path | None = None,
    *,
    timeout: float = 120.0,
    hidden_visibility: str = "after_published",
    accept_changes: bool = False,
) -> Path:
    """Write the Gradescope autograder zip for the release manifest ``release``.

    Args:
        release: the instructor's manifest (``OUT.release.json``, or a copy holding one).
        out: the zip to write (replaced if it exists).
        root: the instructor's checkout (default: the one this package lives in).
        timeout: seconds each exercise's tests may run on Gradescope.
        hidden_visibility: Gradescope visibility of the hidden tests' entries.
        accept_changes: build even when the checkout's tests changed since the release.

    Returns:
        ``out`` as an absolute path.

    Raises:
        AutograderError: the manifest is missing or invalid, or the checkout differs.
    """
    try:
        manifest = read_manifest(release)
        root = repo_root() if root is None else Path(root).resolve()
    except (ManifestError, CatalogueError) as exc:
        raise AutograderError(str(exc)) from None
    _check(manifest, root, accept_changes)
    out = Path(out).absolute()
    if out.is_dir():
        raise AutograderError(f"--out {out} is a folder; name the zip file to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    script = run_autograder_script(timeout, hidden_visibility, accept_changes)

    def write(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, "w") as archive:
            _add(archive, "setup.sh", setup_script().encode(), executable=True)
            _add(archive, "run_autograder", script.encode(), executable=True)
            _add(archive, "release.json", manifest.to_json().encode())
            for rel in checkout_files(root):
                mode = (root / rel).stat().st_mode
                _add(
                    archive,
                    f"{CHECKOUT}/{rel}",
                    (root / rel).read_bytes(),
                    executable=bool(mode & stat.S_IXUSR),
                )

    write_atomically(out, write)
    return out


def unpack(zip_path: str | Path, dest: str | Path) -> Path:
    """Unzip ``zip_path`` into ``dest`` keeping the files' modes (as Gradescope does)."""
    dest = Path(dest)
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = archive.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode)
    return dest
