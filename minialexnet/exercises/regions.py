"""Find and replace solution regions in Python source and Jupyter notebooks.

A solution region is the code between two comment lines, nbgrader's markers::

    def lrn_backward(dout, cache):
        '''docstring (kept)'''
        x, out, denom, scale, n, alpha, beta = cache
        # ### BEGIN SOLUTION   <- the marker is this comment alone on its line, without the "# "
        ...the part a student writes...
        # ### END SOLUTION

(written here with a leading ``# `` so that this docstring holds no marker line).
A marker is a comment that is alone on its line and reads exactly ``### BEGIN
SOLUTION`` or ``### END SOLUTION``; the two must pair up, in order, without
nesting. Each region belongs to the innermost function (or method,
``Class.method``) that contains its BEGIN line; that qualified name is how the
catalogue refers to it.

Releasing turns each region either into one ``raise NotImplementedError("...")``
line at the BEGIN marker's indentation (the region is an exercise handed out) or
into its own code (kept); in both cases the marker lines go.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BEGIN",
    "END",
    "Region",
    "RegionError",
    "find_regions",
    "replace_regions",
    "strip_markers",
    "stub_line",
    "notebook_regions",
    "replace_notebook_regions",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_MARKERS = (BEGIN, END)


class RegionError(ValueError):
    """Markers that do not pair up, or a region that cannot be attributed."""


@dataclass(frozen=True)
class Region:
    """One marked region of a text (a source file or one notebook cell).

    ``begin`` and ``end`` are the 0-based line numbers of the two marker lines;
    the region's code is ``lines[begin + 1 : end]``. ``qualname`` is the
    innermost enclosing function (``"lrn_backward"``, ``"SGD.step"``), or None
    at module level. ``indent`` is the BEGIN marker's leading whitespace.
    """

    begin: int
    end: int
    qualname: str | None
    indent: str

    def body(self, lines: list[str]) -> list[str]:
        """The region's own lines (between the markers) out of the text's lines."""
        return lines[self.begin + 1 : self.end]


# -- finding ------------------------------------------------------------------------------------


def _marker_lines_by_tokens(text: str) -> list[tuple[int, str]] | None:
    """(0-based line, marker) for every marker COMMENT alone on its line; None if untokenizable.

    Tokenizing means a marker inside a string (a docstring quoting one) is not a marker.
    """
    lines = text.splitlines()
    found = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT and tok.string.strip() in _MARKERS:
                row = tok.start[0] - 1
                if lines[row].strip() == tok.string.strip():
                    found.append((row, tok.string.strip()))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    return found


def _marker_lines(text: str) -> list[tuple[int, str]]:
    """Marker lines of ``text``: by tokens where it tokenizes, else line by line."""
    found = _marker_lines_by_tokens(text)
    if found is not None:
        return found
    return [
        (i, line.strip()) for i, line in enumerate(text.splitlines()) if line.strip() in _MARKERS
    ]


def _function_spans(text: str) -> list[tuple[int, int, str]] | None:
    """(first line, last line, qualname), 0-based, for every def in ``text``; None if unparsable.

    Notebook cells may hold IPython magics (``%timeit``, ``!ls``); those lines are
    blanked before parsing so the rest still parses.
    """
    cleaned = "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines()
    )
    try:
        tree = ast.parse(cleaned)
    except SyntaxError:
        return None
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    end = child.end_lineno if child.end_lineno is not None else child.lineno
                    spans.append((child.lineno - 1, end - 1, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def find_regions(text: str, where: str = "<text>") -> list[Region]:
    """The marked regions of Python source ``text``, in order.

    Raises :class:`RegionError` (naming ``where`` and the line) when a BEGIN has
    no END, an END no BEGIN, regions nest, or an END lies outside the function
    that holds its BEGIN.
    """
    markers = _marker_lines(text)
    if not markers:
        return []
    lines = text.splitlines()
    spans = _function_spans(text)
    regions: list[Region] = []
    open_at: int | None = None
    for row, marker in markers:
        if marker == BEGIN:
            if open_at is not None:
                raise RegionError(
                    f"{where}:{row + 1}: {BEGIN} inside the region opened at line {open_at + 1} "
                    f"(regions cannot nest; close it with {END} first)"
                )
            open_at = row
            continue
        if open_at is None:
            raise RegionError(f"{where}:{row + 1}: {END} without a {BEGIN} before it")
        qualname = None
        if spans is not None:
            holding = [s for s in spans if s[0] <= open_at <= s[1]]
            if holding:
                first, last, qualname = max(holding, key=lambda s: s[0])
                # a function ends at its last statement; comments after it still belong to it
                trailing = [line.strip() for line in lines[last + 1 : row]]
                if row > last and any(s and not s.startswith("#") for s in trailing):
                    raise RegionError(
                        f"{where}:{row + 1}: {END} lies outside {qualname}, which holds the "
                        f"{BEGIN} at line {open_at + 1}"
                    )
        indent = re.match(r"[ \t]*", lines[open_at]).group(0)  # type: ignore[union-attr]
        regions.append(Region(open_at, row, qualname, indent))
        open_at = None
    if open_at is not None:
        raise RegionError(f"{where}:{open_at + 1}: {BEGIN} without an {END} after it")
    return regions


# -- replacing ----------------------------------------------------------------------------------


def stub_line(indent: str, message: str) -> str:
    """``raise NotImplementedError("<message>")`` at ``indent`` (a valid Python literal)."""
    return f"{indent}raise NotImplementedError({json.dumps(message, ensure_ascii=False)})"


def replace_regions(
    text: str, message_for: Callable[[Region], str | None], where: str = "<text>"
) -> str:
    """``text`` with its markers removed and some regions replaced by a stub.

    ``message_for(region)`` returns the stub's message (the region's code is
    replaced by :func:`stub_line`) or None (the code is kept). Line endings and
    the text's final newline are kept.
    """
    regions = find_regions(text, where)
    if not regions:
        return text
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    for region in regions:
        out.extend(lines[pos : region.begin])
        message = message_for(region)
        if message is None:
            out.extend(lines[region.begin + 1 : region.end])
        else:
            ending = _ending(lines[region.begin])
            out.append(stub_line(region.indent, message) + ending)
        pos = region.end + 1
    out.extend(lines[pos:])
    return "".join(out)


def _ending(line: str) -> str:
    for ending in ("\r\n", "\n", "\r"):
        if line.endswith(ending):
            return ending
    return "\n"


def strip_markers(text: str, where: str = "<text>") -> str:
    """``text`` with every region's code kept and its marker lines removed."""
    return replace_regions(text, lambda region: None, where)


# -- notebooks ----------------------------------------------------------------------------------


def _cell_text(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def notebook_regions(notebook: dict[str, Any], where: str = "<notebook>") -> list[Region]:
    """The marked regions of every code cell of a notebook (nbformat 4 as a dict)."""
    found: list[Region] = []
    for i, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") == "code":
            found.extend(find_regions(_cell_text(cell), f"{where} cell {i}"))
    return found


def replace_notebook_regions(
    notebook_json: str, message_for: Callable[[Region], str | None], where: str = "<notebook>"
) -> str:
    """The notebook's JSON text with every code cell passed through :func:`replace_regions`.

    Cells without markers are left as they are; the JSON is written the way
    jupytext and ``tutorials/clear_outputs.py`` write it (indent 1, UTF-8, final newline).
    Markdown cells are not touched (a marker there is not a region).
    """
    notebook = json.loads(notebook_json)
    changed = False
    for i, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        text = _cell_text(cell)
        new = replace_regions(text, message_for, f"{where} cell {i}")
        if new != text:
            cell["source"] = new.splitlines(keepends=True)
            changed = True
    if not changed:
        return notebook_json
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
