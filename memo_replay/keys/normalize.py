"""Normalizing one definition's source: what of a function's or class's text counts for a key.

This module owns the pure AST side of the code fingerprint. A definition's source is parsed with
:mod:`ast` and cleaned of docstrings and of the ``@recorded`` decorator. The key uses a canonical
structural dump of the tree, the same on every supported Python, so comments, blank lines,
formatting and quote style do not count, while a renamed variable, a changed literal or a new
parameter do; people see the :func:`ast.unparse` text, whose layout varies by Python. (Never
``ast.dump``: its output differs between Python versions.) Where no source exists, a text made
from the bytecode stands in for it.

It also lists the names a definition reads (:func:`references`) — but resolving them to
objects, deciding what belongs to the project and hashing helpers is :mod:`memo_replay.keys.code`.
The only globals looked at here are the ones that tell whether a decorator is ``@recorded``.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xxhash import xxh3_128

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def parse_definition(obj: types.FunctionType | type) -> Definition | None:
    """The AST node defining ``obj``, or None when its source is unavailable."""
    try:
        lines, _ = inspect.getsourcelines(obj)
    except (OSError, TypeError):
        return None
    text = textwrap.dedent("".join(lines))
    try:
        tree = ast.parse(text)
    except SyntaxError:
        # A lambda or a definition cut out of a larger expression: not parseable on its own.
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return node
    return None


@dataclass(frozen=True)
class Rendered:
    """A definition's normalized text (for people) and the digest of its canonical form."""

    text: str
    digest: str

    @classmethod
    def of_text(cls, text: str) -> Rendered:
        return cls(text, xxh3_128(text.encode("utf-8", "surrogatepass")).hexdigest())


def render(node: Definition, globals_: Mapping[str, Any]) -> Rendered:
    """A definition without docstrings and without the ``@recorded`` decorator."""
    node.decorator_list = [d for d in node.decorator_list if not _is_recorded(d, globals_)]
    for inner in ast.walk(node):
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = inner.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                inner.body = body[1:] or [ast.Pass()]
    canonical: list[str] = []
    _dump(node, canonical)
    digest = xxh3_128("".join(canonical).encode("utf-8", "surrogatepass")).hexdigest()
    return Rendered(ast.unparse(node), digest)


def _dump(value: object, out: list[str]) -> None:
    """A canonical structural rendering of an AST, the same on every supported Python.

    Neither ``ast.unparse`` (3.10 writes ``for (i, x) in``, 3.11 ``for i, x in``) nor
    ``ast.dump`` (its defaults and fields vary) is stable across versions. Fields that are None
    or empty lists are skipped, so fields added by later Pythons (``type_params``) do not count
    while they are unused. Positions (``lineno`` …) are attributes, not fields: never included.
    """
    if isinstance(value, ast.AST):
        out.append(type(value).__name__)
        out.append("(")
        for name in value._fields:
            field = getattr(value, name, None)
            if field is None or (isinstance(field, list) and not field):
                continue
            out.append(name)
            out.append("=")
            _dump(field, out)
            out.append(",")
        out.append(")")
    elif isinstance(value, list):
        out.append("[")
        for item in value:
            _dump(item, out)
            out.append(",")
        out.append("]")
    else:
        out.append(f"{type(value).__name__}:{value!r}")


_MISSING = object()


def _is_recorded(decorator: ast.expr, globals_: Mapping[str, Any]) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    chain = _chain(target)
    if not chain:
        return False
    from memo_replay.decorator import recorded

    value: Any = globals_.get(chain[0], _MISSING)
    for attr in chain[1:]:
        value = getattr(value, attr, _MISSING)
    return value is recorded or (value is _MISSING and chain[-1] == "recorded")


def _chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` → ``["a", "b", "c"]``; None when the base is not a plain name."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(attrs)]
    return None


def references(node: Definition) -> Iterable[list[str]]:
    """Dotted name chains the definition reads and does not bind locally, in source order."""
    local = _bound_names(node)
    found: list[list[str]] = []

    class Visitor(ast.NodeVisitor):
        def visit_Attribute(self, attr: ast.Attribute) -> None:
            chain = _chain(attr)
            if chain is None:
                self.generic_visit(attr)
            elif isinstance(attr.ctx, ast.Load) and (chain[0] not in local or
                                                      chain[0] in _SELF_LIKE):
                found.append(chain)

        def visit_Name(self, name: ast.Name) -> None:
            if isinstance(name.ctx, ast.Load) and name.id not in local:
                found.append([name.id])

    visitor = Visitor()
    for child in ast.iter_child_nodes(node):
        if child in getattr(node, "decorator_list", ()):
            continue
        visitor.visit(child)
    return found


_SELF_LIKE = frozenset({"self", "cls"})


def _bound_names(node: Definition) -> set[str]:
    """Names assigned, imported or declared as parameters anywhere inside ``node``."""
    names: set[str] = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name) and isinstance(inner.ctx, (ast.Store, ast.Del)):
            names.add(inner.id)
        elif isinstance(inner, ast.arg):
            names.add(inner.arg)
        elif isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and inner is not node:
            names.add(inner.name)
        elif isinstance(inner, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in inner.names)
        elif isinstance(inner, ast.ExceptHandler) and inner.name:
            names.add(inner.name)
    return names


def self_names(node: Definition) -> set[str]:
    """The first parameter of a method (``self``/``cls`` by convention, any name in fact)."""
    if isinstance(node, ast.ClassDef):
        return set()
    params = [*node.args.posonlyargs, *node.args.args]
    return {params[0].arg} if params else set()


def bytecode_text(fn: types.FunctionType) -> str:
    """A textual fingerprint of a code object (used only where no source exists)."""
    return "<bytecode>\n" + _code_text(fn.__code__)


def _code_text(code: types.CodeType) -> str:
    consts = [
        _code_text(c) if isinstance(c, types.CodeType) else f"{type(c).__name__}:{c!r}"
        for c in code.co_consts
    ]
    return "\n".join((code.co_code.hex(), repr(code.co_names), repr(code.co_varnames), *consts))
