"""Normalizing one definition's source: what of a function's or class's text counts for a key.

This module owns the canonical form of code. A definition (found by
:mod:`memo_replay.keys.source`) is cleaned of docstrings and of the ``@recorded`` decorator. The
key uses a canonical structural dump of the tree, the same on every supported Python, so comments,
blank lines, formatting and quote style do not count, while a renamed variable, a changed literal
or a new parameter do; people see the :func:`ast.unparse` text, whose layout varies by Python.
(Never ``ast.dump``: its output differs between Python versions.) Annotations of local variables
(``x: list[str] = []`` inside a function) are never evaluated, so they do not count. Where no
source exists, a text made from the bytecode stands in for it.

What a definition reads is :mod:`memo_replay.keys.reads`; resolving names to objects, deciding
what belongs to the project and hashing helpers is :mod:`memo_replay.keys.walk`. The only globals
looked at here are the ones that tell whether a decorator is ``@recorded``.
"""

from __future__ import annotations

import ast
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from xxhash import xxh3_128

from memo_replay.keys.reads import _chain
from memo_replay.keys.source import Definition, _copy


@dataclass(frozen=True)
class Rendered:
    """A definition's normalized text (for people) and the digest of its canonical form."""

    text: str
    digest: str

    @classmethod
    def of_text(cls, text: str) -> Rendered:
        return cls(text, xxh3_128(text.encode("utf-8", "surrogatepass")).hexdigest())


def clean(node: Definition, globals_: Mapping[str, Any], *, text: bool = True) -> str:
    """Remove docstrings and the ``@recorded`` decorator from ``node`` (in place) and return
    the text people see (``""`` with ``text=False``: only the digest is wanted); then replace
    the annotations of local variables (never evaluated) by ``...``, so that the key does not
    depend on them."""
    annotated = _strip(node, globals_)
    rendered = ast.unparse(node) if text else ""
    for statement in annotated:
        statement.annotation = ast.Constant(value=...)
    return rendered


def clean_lazily(node: Definition, globals_: Mapping[str, Any]) -> Callable[[], str]:
    """:func:`clean` ``node``, and return what gives the text :func:`clean` would have returned,
    made the first time it is asked for (people see only a recorded function's own text; a
    helper's is rarely wanted). After that call ``node`` is no longer cleaned: take its digest
    and what it reads before. A class's body may be edited in between: its text is of the body
    as cleaned."""
    annotated = _strip(node, globals_)
    restore = [(statement, statement.annotation) for statement in annotated]
    body = node.body
    for statement in annotated:
        statement.annotation = ast.Constant(value=...)
    made: list[str] = []

    def text() -> str:
        with _text_lock:
            if not made:
                for statement, annotation in restore:
                    statement.annotation = annotation
                node.body = body
                made.append(ast.unparse(node))
            return made[0]

    return text


_text_lock = threading.Lock()


def _strip(node: Definition, globals_: Mapping[str, Any]) -> list[ast.AnnAssign]:
    """Remove docstrings and the ``@recorded`` decorator from ``node`` (in place); the
    annotated assignments of its functions' local scopes, to be blanked."""
    node.decorator_list = [d for d in node.decorator_list if not _is_recorded(d, globals_)]
    functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
    for inner in ast.walk(node):
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = inner.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                inner.body = body[1:] or [ast.Pass()]
            if not isinstance(inner, ast.ClassDef):
                functions.append(inner)
    return [statement for function in functions for statement in _function_scope(function.body)
            if isinstance(statement, ast.AnnAssign)]


def _function_scope(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Nodes of a function body, not descending into class bodies (their annotations count:
    dataclasses and pydantic models are made of them)."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))


def digest(node: ast.AST) -> str:
    """The digest of the canonical structure of ``node``."""
    canonical: list[str] = []
    _dump(node, canonical)
    return xxh3_128("".join(canonical).encode("utf-8", "surrogatepass")).hexdigest()


def render(node: Definition, globals_: Mapping[str, Any]) -> Rendered:
    """A definition without docstrings and without the ``@recorded`` decorator (``node`` is
    edited in place)."""
    text = clean(node, globals_)
    return Rendered(text, digest(node))


def definition_digest(node: Definition, globals_: Mapping[str, Any]) -> str:
    """The digest :func:`render` gives ``node``, without the text (``node`` is not edited)."""
    copied: Definition = _copy(node)
    clean(copied, globals_, text=False)
    return digest(copied)


_ALWAYS_DUMPED = {("Constant", "value"), ("MatchSingleton", "value")}


def _dump(value: object, out: list[str]) -> None:
    """A canonical structural rendering of an AST, the same on every supported Python.

    Neither ``ast.unparse`` (3.10 writes ``for (i, x) in``, 3.11 ``for i, x in``) nor
    ``ast.dump`` (its defaults and fields vary) is stable across versions. Fields that are None
    or empty lists are skipped, so fields added by later Pythons (``type_params``) do not count
    while they are unused — except a constant's value, where None is a value like 0, False and
    ``""`` (each rendered with its type). Positions (``lineno`` …) are attributes, not fields:
    never included.
    """
    if isinstance(value, ast.AST):
        kind = type(value).__name__
        out.append(kind)
        out.append("(")
        for name in value._fields:
            field = getattr(value, name, None)
            if (field is None or (isinstance(field, list) and not field)) \
                    and (kind, name) not in _ALWAYS_DUMPED:
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


def statements_digest(statements: Iterable[ast.stmt], globals_: Mapping[str, Any]) -> str:
    """The canonical digest of module-level statements (a definition fingerprint); a ``def`` or
    ``class`` among them is cleaned like any definition (docstrings do not count)."""
    canonical: list[str] = []
    for statement in statements:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            statement = _copy(statement)
            clean(statement, globals_, text=False)
        _dump(statement, canonical)
        canonical.append(";")
    return xxh3_128("".join(canonical).encode("utf-8", "surrogatepass")).hexdigest()


# -- code without source --------------------------------------------------------------------------

def bytecode_text(fn: types.FunctionType) -> str:
    """A textual fingerprint of a code object (used only where no source exists)."""
    return "<bytecode>\n" + _code_text(fn.__code__)


def _code_text(code: types.CodeType) -> str:
    consts = [
        _code_text(c) if isinstance(c, types.CodeType) else f"{type(c).__name__}:{c!r}"
        for c in code.co_consts
    ]
    return "\n".join((code.co_code.hex(), repr(code.co_names), repr(code.co_varnames), *consts))
