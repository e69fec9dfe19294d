"""The documentation: the site builds with ``mkdocs build --strict``, every page is in the
nav, and docs/api.md lists every public name and is exactly what docs/gen_api.py writes."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"
API_MD = DOCS / "api.md"


def _gen_api() -> ModuleType:
    """docs/gen_api.py, imported from its path (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_api", DOCS / "gen_api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen_api() -> ModuleType:
    return _gen_api()


def _nav_pages() -> list[str]:
    """The .md files named in mkdocs.yml's nav (read as text: no YAML parser needed)."""
    text = MKDOCS_YML.read_text(encoding="utf-8")
    match = re.search(r"^nav:\n((?:[ \t]+.*\n|\n)+)", text, flags=re.MULTILINE)
    assert match, "mkdocs.yml has no nav: section"
    return re.findall(r"([\w./-]+\.md)\s*$", match.group(1), flags=re.MULTILINE)


def test_mkdocs_build_strict(tmp_path: Path):
    for module, package in (("mkdocs", "mkdocs"), ("material", "mkdocs-material")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{package} is not installed: pip install -e '.[docs]' (or '.[test]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner, not a build warning
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"]
    command += ["--config-file", str(MKDOCS_YML), "--site-dir", str(tmp_path / "site")]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"mkdocs build --strict failed (exit {result.returncode}):\n"
        f"{result.stdout}\n{result.stderr}"
    )
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_every_public_name_is_in_the_api_reference(gen_api: ModuleType):
    text = API_MD.read_text(encoding="utf-8")
    # the page's sections, one per module: "## `minialexnet.x`" up to the next one
    parts = re.split(r"^## `([\w.]+)`\s*$", text, flags=re.MULTILINE)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    missing = []
    for module, names in gen_api.public_api().items():
        if module not in sections:
            missing.append(f"module {module}")
            continue
        missing += [f"{module}.{n}" for n in names if f"`{n}`" not in sections[module]]
    assert not missing, f"docs/api.md lacks {', '.join(missing)}: run `python docs/gen_api.py`"


def test_api_reference_is_up_to_date(gen_api: ModuleType):
    assert API_MD.is_file(), "docs/api.md is missing: run `python docs/gen_api.py`"
    assert API_MD.read_text(encoding="utf-8") == gen_api.render(), (
        "docs/api.md is not what docs/gen_api.py writes from the current docstrings: "
        "run `python docs/gen_api.py` and commit docs/api.md"
    )


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = _nav_pages()
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(set(nav)) == sorted(nav), f"a page is in mkdocs.yml's nav twice: {nav}"
    left_out = [p for p in pages if p not in nav]
    assert not left_out, f"pages in docs/ but not in mkdocs.yml's nav: {left_out}"
    dangling = [p for p in nav if not (DOCS / p).is_file()]
    assert not dangling, f"mkdocs.yml's nav names pages that do not exist: {dangling}"
