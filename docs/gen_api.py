"""Write docs/api.md: every public name of minialexnet, with its signature and docstring.

    python docs/gen_api.py            # rewrite docs/api.md
    python docs/gen_api.py --check    # exit 1 if docs/api.md is out of date

What counts as public (``public_api()``, which tests/test_docs.py uses too):

* modules: every module and package under ``minialexnet`` found by ``pkgutil``,
  except ``__main__`` modules and any whose dotted name has a part starting with
  an underscore (``minialexnet.functional._checks``);
* names: a module's ``__all__``; a module without ``__all__`` contributes the
  names its own source defines at top level (``def``, ``class``, assignments)
  that do not start with an underscore;
* in a class: the methods and properties it defines, or inherits from a private
  base of the package, whose names do not start with an underscore.

Docstrings are plain text with indented blocks, so each goes into a fenced
``text`` block verbatim (no Markdown is interpreted inside: underscores and
asterisks stay as written). Signatures are formatted from ``inspect.signature``
with annotations as written in the source. Constants show the source text of
their assignment (not their value, which may depend on the environment, such as
``minialexnet.tutorial.FAST``) and the string literal that follows them, if any.
Only the standard library is used.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "docs" / "api.md"
PACKAGE = "minialexnet"
WIDTH = 88  # longer signatures are written one parameter per line
MAX_LINES = 12  # of a constant's assignment; longer ones end with "..."

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------- what is public


def public_modules() -> list[str]:
    """Dotted names of the package's public modules, the package itself first, sorted."""
    pkg = importlib.import_module(PACKAGE)
    names = [PACKAGE]
    for info in pkgutil.walk_packages(pkg.__path__, PACKAGE + "."):
        parts = info.name.split(".")
        if parts[-1] == "__main__" or any(p.startswith("_") for p in parts):
            continue
        names.append(info.name)
    return sorted(names)


def _module_ast(module: Any) -> ast.Module | None:
    try:
        return ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return None


def _assigned_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _top_level_names(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        else:
            names.extend(_assigned_names(node))
    return [n for n in dict.fromkeys(names) if not n.startswith("_")]


def public_names(module: Any) -> list[str]:
    """``__all__``, or the public names the module's own source defines."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    tree = _module_ast(module)
    return _top_level_names(tree) if tree is not None else []


def public_api() -> dict[str, list[str]]:
    """{module name: [public names]} for every public module, in page order."""
    return {name: public_names(importlib.import_module(name)) for name in public_modules()}


# ---------------------------------------------------------------- formatting


class _Raw:
    """An annotation shown as its source text (``from __future__ import annotations``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _annotation(ann: Any) -> Any:
    if ann is inspect.Parameter.empty:
        return ann
    return _Raw(ann if isinstance(ann, str) else inspect.formatannotation(ann))


def _param_texts(sig: inspect.Signature) -> list[str]:
    """Each parameter as ``str(Parameter)`` writes it, with the ``/`` and ``*`` markers."""
    kinds = inspect.Parameter
    out: list[str] = []
    star = False
    previous = None
    for p in sig.parameters.values():
        if previous is kinds.POSITIONAL_ONLY and p.kind is not kinds.POSITIONAL_ONLY:
            out.append("/")
        if p.kind is kinds.VAR_POSITIONAL:
            star = True
        if p.kind is kinds.KEYWORD_ONLY and not star:
            out.append("*")
            star = True
        out.append(_ADDRESS.sub("", str(p)))
        previous = p.kind
    if previous is kinds.POSITIONAL_ONLY:
        out.append("/")
    return out


def signature(
    obj: Any, name: str, drop_first: bool = False, drop_return: bool = False
) -> str | None:
    """``name(params) -> return``, one parameter per line when long; None if unknown.

    ``drop_first`` leaves out ``self`` of a function taken from a class;
    ``drop_return`` the return annotation (a class's ``__init__`` returns None).
    """
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = [p.replace(annotation=_annotation(p.annotation)) for p in sig.parameters.values()]
    sig = sig.replace(
        parameters=params[1:] if drop_first else params,
        return_annotation=_annotation(sig.return_annotation),
    )
    parts = _param_texts(sig)
    ret = ""
    if sig.return_annotation is not inspect.Signature.empty and not drop_return:
        ret = f" -> {sig.return_annotation!r}"
    text = f"{name}({', '.join(parts)}){ret}"
    if len(text) <= WIDTH:
        return text
    return f"{name}(\n" + "".join(f"    {part},\n" for part in parts) + f"){ret}"


def fenced(text: str, lang: str) -> str:
    """A fenced block whose fence is longer than any run of backticks in ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}\n"


def docstring_block(obj: Any, inherit: bool = True) -> str:
    """The docstring in a ``text`` block; ``inherit`` looks in base classes when it has none."""
    doc = inspect.getdoc(obj) if inherit else inspect.cleandoc(obj.__doc__ or "")
    if dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
        doc = ""  # the signature that @dataclass writes where the class has no docstring
    if not doc:
        return "*(no docstring)*"
    return fenced(doc, "text")


def _source_file(module: Any) -> str:
    path = Path(inspect.getfile(module)).resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return path.name


def _anchor(module_name: str) -> str:
    """The heading slug of ``## `module_name``` (the same on GitHub and in MkDocs)."""
    return module_name.replace(".", "").lower()


def _constant_source(module: Any, name: str) -> tuple[str | None, str | None]:
    """(``name = value`` as the source writes it, the string literal after it) for ``name``.

    The source text, not ``ast.unparse``: it reads as the author wrote it and does not
    change with the Python version that runs this script.
    """
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return None, None
    body = ast.parse(source).body
    for i, node in enumerate(body):
        if name not in _assigned_names(node) or getattr(node, "value", None) is None:
            continue
        value = ast.get_source_segment(source, node.value) or ""
        ann = getattr(node, "annotation", None)
        head = f"{name}: {ast.get_source_segment(source, ann)}" if ann is not None else name
        lines = f"{head} = {value}".splitlines()
        if len(lines) > MAX_LINES:
            lines = [*lines[: MAX_LINES - 1], "    ..."]
        doc = None
        nxt = body[i + 1] if i + 1 < len(body) else None
        if (
            isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            doc = inspect.cleandoc(nxt.value.value)
        return "\n".join(lines), doc
    return None, None


# ---------------------------------------------------------------- classes


def _members(cls: type) -> list[tuple[str, Any, str]]:
    """(name, object, kind) of the public methods and properties ``cls`` documents."""
    seen: dict[str, tuple[Any, str]] = {}
    for base in cls.__mro__:
        own = base is cls
        private_pkg_base = base.__name__.startswith("_") and base.__module__.startswith(PACKAGE)
        if not (own or private_pkg_base):
            continue
        for name, raw in vars(base).items():
            if name.startswith("_") or name in seen:
                continue
            if isinstance(raw, property):
                seen[name] = (raw, "property")
            elif isinstance(raw, staticmethod):
                seen[name] = (raw.__func__, "staticmethod")
            elif isinstance(raw, classmethod):
                seen[name] = (getattr(cls, name), "classmethod")
            elif inspect.isfunction(raw):
                seen[name] = (raw, "method")
    return [(n, obj, kind) for n, (obj, kind) in seen.items()]


def _method_signature(obj: Any, name: str, kind: str) -> str | None:
    if kind == "property":
        return None
    return signature(obj, name, drop_first=kind == "method")


def document_class(cls: type, qualname: str) -> list[str]:
    """Blocks for a class: its constructor, bases, docstring, then its methods."""
    out = [f"### `{qualname}`"]
    sig = signature(cls, qualname, drop_return=True)
    out.append(fenced(f"class {sig or qualname}", "python"))
    bases = [b for b in cls.__bases__ if b is not object and not b.__name__.startswith("_")]
    if bases:
        out.append("Bases: " + ", ".join(f"`{b.__module__}.{b.__qualname__}`" for b in bases))
    out.append(docstring_block(cls, inherit=False))
    for name, obj, kind in _members(cls):
        tag = "" if kind == "method" else f" ({kind})"
        out.append(f"#### `{qualname}.{name}`{tag}")
        msig = _method_signature(obj, name, kind)
        if msig:
            out.append(fenced(msig, "python"))
        out.append(docstring_block(obj))
    return out


def document_constant(name: str, obj: Any, module: Any) -> list[str]:
    """Blocks for a module-level value: its assignment as written, and its docstring if any."""
    text, doc = _constant_source(module, name)
    if text is None:  # not assigned in this module's source: show the value
        text = f"{name} = {_ADDRESS.sub('', repr(obj))}"
    out = [f"### `{name}`", fenced(text, "python")]
    if doc:
        out.append(fenced(doc, "text"))
    return out


# ---------------------------------------------------------------- the page


class _Index:
    """Which module defines each public object, to document it once and link elsewhere."""

    def __init__(self, api: dict[str, list[str]]) -> None:
        self.api = api
        self.defined: dict[str, set[str]] = {}
        for module_name in api:
            tree = _module_ast(importlib.import_module(module_name))
            self.defined[module_name] = set(_top_level_names(tree)) if tree else set()

    def home(self, name: str, obj: Any) -> str | None:
        """The public module that documents ``obj`` under ``name``, if any."""
        if inspect.isclass(obj) or inspect.isroutine(obj):
            home = getattr(obj, "__module__", None)
            return home if name in self.api.get(home, []) else None
        for module_name, names in self.api.items():
            if name in names and name in self.defined[module_name]:
                if getattr(importlib.import_module(module_name), name, None) is obj:
                    return module_name
        return None


def document_module(module_name: str, names: list[str], index: _Index) -> list[str]:
    """Blocks for one module: heading, source path, docstring, then each public name."""
    module = importlib.import_module(module_name)
    out = [f"## `{module_name}`", f"Source: `{_source_file(module)}`"]
    out.append(docstring_block(module, inherit=False))
    if not hasattr(module, "__all__"):
        if names:
            out.append(
                "*No `__all__`: below are the names its source defines at top level that "
                "do not start with an underscore.*"
            )
        else:
            out.append("*No `__all__` and no public names of its own.*")
    reexported: dict[str, list[str]] = {}
    for name in names:
        if hasattr(module, name):
            home = index.home(name, getattr(module, name))
            if home is not None and home != module_name:
                reexported.setdefault(home, []).append(name)
    if reexported:
        out.append(
            "Re-exported here, and documented in the module that defines them:\n\n"
            + "\n".join(
                f"- from [`{home}`](#{_anchor(home)}): " + ", ".join(f"`{n}`" for n in found)
                for home, found in reexported.items()
            )
        )
    done = {n for found in reexported.values() for n in found}
    for name in names:
        if name in done:
            continue
        if not hasattr(module, name):
            out += [f"### `{name}`", f"*In `__all__` but not defined in `{module_name}`.*"]
            continue
        obj = getattr(module, name)
        if inspect.isclass(obj):
            out.extend(document_class(obj, name))
        elif inspect.isroutine(obj):
            out.append(f"### `{name}`")
            sig = signature(obj, name)
            if sig:
                out.append(fenced(sig, "python"))
            out.append(docstring_block(obj))
        else:
            out.extend(document_constant(name, obj, module))
    return out


HEADER = """\
<!-- Generated by docs/gen_api.py from the package's docstrings: do not edit by hand;
run `python docs/gen_api.py` after changing a public name or its docstring. -->

# API reference

Every public module of `minialexnet` and every public name in it (a module's
`__all__`; for a module without one, the names its source defines that do not
start with an underscore), with its signature and its docstring as written.
Names that a package re-exports are documented once, in the module that
defines them. The command lines (`python -m minialexnet.train`, `.evaluate`,
`.predict`, `.bench`, `.data.cifar10 download`) are the `main` functions below;
`--help` lists their options. Section numbers in brackets ([3.3]) are the
paper's; see [the paper-to-code map](paper-to-code.md).

Modules:"""


def render() -> str:
    """The whole of docs/api.md."""
    api = public_api()
    index = _Index(api)
    contents = "\n".join(
        f"- [`{m}`](#{_anchor(m)}): {len(n)} public name{'' if len(n) == 1 else 's'}"
        for m, n in api.items()
    )
    blocks = [HEADER, contents]
    for module_name, names in api.items():
        blocks.extend(document_module(module_name, names, index))
    return "\n\n".join(b.strip("\n") for b in blocks) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/api.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = API_MD.read_text(encoding="utf-8") if API_MD.exists() else ""
        if current != text:
            print(f"{API_MD} is out of date: run `python docs/gen_api.py`", file=sys.stderr)
            return 1
        print(f"{API_MD} is up to date")
        return 0
    API_MD.write_text(text, encoding="utf-8")
    count = sum(len(names) for names in public_api().values())
    print(f"wrote {API_MD.relative_to(ROOT)}: {count} public names")
    return 0


if __name__ == "__main__":
    sys.exit(main())
