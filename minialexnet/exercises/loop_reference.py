"""Take the loop versions of handed-out operations out of a copy of the library.

``minialexnet/functional/reference.py`` holds slow, obviously-correct loop versions of
convolution, max pooling and LRN, forward and backward. A student asked to write the
vectorised ``lrn_backward`` could simply call ``lrn_backward_loops`` and pass, so the
catalogue names, per exercise, the loop versions that compute what it asks for
(``loop_reference``), and :func:`stub_functions` keeps each one's signature but replaces
its docstring and body by a stub that says why it is gone: a one-line docstring and
``raise NotImplementedError("lrn_backward_loops is left out of this student copy: ...")``.

The module still imports and every name it exports is still there, so code that imports
the function (the tutorials) keeps importing; only a call raises. ``release`` applies it
to the student copy, and ``grade`` to the copy of a submission it grades (a student who
pastes the loops back into ``reference.py`` gains nothing).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence

from .catalogue import Exercise, split_spec

__all__ = [
    "LEFT_OUT",
    "left_out_by_file",
    "left_out_message",
    "stub_functions",
    "stubbed_names",
]

LEFT_OUT = "is left out of this student copy"
"""The words every stub's message holds (``check`` recognises a test that needed one)."""


def left_out_message(function: str, exercise: Exercise) -> str:
    """The stub's message: which function is gone, why, and what checks the exercise."""
    return (
        f"{function} {LEFT_OUT}: it computes what the exercise {exercise.name} asks for "
        f"(python -m minialexnet.exercises check {exercise.name} runs its tests; the grader "
        "compares against its own copy of the loop version)"
    )


def left_out_by_file(exercises: Iterable[Exercise]) -> dict[str, dict[str, str]]:
    """``{path: {function: stub message}}`` for the loop versions the ``exercises`` leave out."""
    found: dict[str, dict[str, str]] = {}
    for ex in exercises:
        for spec in ex.left_out:
            path, function = split_spec(spec)
            if function is not None:
                found.setdefault(path, {})[function] = left_out_message(function, ex)
    return found


def _chunks(message: str, width: int = 72) -> list[str]:
    """``message`` cut at spaces into pieces of at most about ``width`` characters."""
    chunks, current = [], ""
    for word in message.split(" "):
        if current and len(current) + len(word) > width:
            chunks.append(current)
            current = ""
        current += word + " "
    chunks.append(current.rstrip(" "))
    return chunks


def stub_functions(text: str, messages: Mapping[str, str], filename: str = "<source>") -> str:
    """``text`` with each top-level function named in ``messages`` reduced to a stub.

    The ``def`` line(s) (decorators, signature, annotations) stay; the docstring and
    body become a one-line docstring and ``raise NotImplementedError(message)``.

    Raises:
        ValueError: a function named in ``messages`` is not defined at the top level.
    """
    tree = ast.parse(text, filename)
    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    missing = sorted(set(messages) - set(functions))
    if missing:
        raise ValueError(f"{filename}: no top-level function {', '.join(missing)} to leave out")
    lines = text.splitlines(keepends=True)
    # replace from the bottom up so that earlier line numbers stay valid
    for name in sorted(messages, key=lambda n: functions[n].lineno, reverse=True):
        node = functions[name]
        first_body = node.body[0].lineno - 1  # 0-based line of the docstring (or first statement)
        end = node.end_lineno or first_body + 1
        indent = " " * (node.col_offset + 4)
        stub = [
            f'{indent}"""Left out of this copy: calling it raises and says why."""\n',
            f"{indent}raise NotImplementedError(\n",
            *(f"{indent}    {chunk!r}\n" for chunk in _chunks(messages[name])),
            f"{indent})\n",
        ]
        if lines[first_body - 1].rstrip().endswith(":") or first_body == node.lineno - 1:
            lines[first_body:end] = stub
        else:  # pragma: no cover - a body on the def line (def f(): return 1)
            raise ValueError(f"{filename}: {name} has its body on its def line")
    return "".join(lines)


def stubbed_names(text: str, filename: str = "<source>") -> Sequence[str]:
    """The top-level functions of ``text`` whose body raises a left-out stub's message."""
    tree = ast.parse(text, filename)
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            source = ast.get_source_segment(text, node) or ""
            if LEFT_OUT in source and len(node.body) <= 2:
                names.append(node.name)
    return names
