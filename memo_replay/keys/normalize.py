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

import _thread
import ast
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from xxhash import xxh3_128

from memo_replay.keys.reads import _SELF_LIKE, _chain
from memo_replay.keys.source import Definition


class Rendered(NamedTuple):
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


_text_lock = _thread.allocate_lock()


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


def plain_digest(node: Definition, globals_: Mapping[str, Any], analysis: Analysis) -> str:
    """The digest of ``node`` cleaned with no globals (:func:`definition_digest` with ``{}``,
    what the check of observed dependencies compares), given its ``analysis`` with
    ``globals_``: the same digest unless the two keep different decorators."""
    if _kept(node, globals_) == _kept(node, {}):
        return analysis.digest
    return analyze(node, {}, reads=False).digest


def _kept(node: Definition, globals_: Mapping[str, Any]) -> tuple[int, ...]:
    """The decorators of ``node`` that cleaning keeps (not ``@recorded``), by index."""
    return tuple(i for i, d in enumerate(node.decorator_list) if not _is_recorded(d, globals_))


def definition_digest(node: Definition, globals_: Mapping[str, Any]) -> str:
    """The digest :func:`render` gives ``node``, without the text (``node`` is not edited)."""
    return analyze(node, globals_, reads=False).digest


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
            canonical.extend(_one_pass(statement, globals_, frozenset(), False).out)
        else:
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


# -- one pass over a definition ------------------------------------------------------------------

class Analysis(NamedTuple):
    """What one pass over a definition finds: the digest :func:`render` would give it and what
    :mod:`memo_replay.keys.reads` would find in the cleaned tree."""

    digest: str
    chains: tuple[tuple[str, ...], ...]
    """Dotted name chains read and not bound locally, in source order."""
    attributes: frozenset[str]
    imports: tuple[ast.Import | ast.ImportFrom, ...]
    """Imports inside the definition, in :func:`ast.walk`'s (breadth-first) order."""


def analyze(node: Definition, globals_: Mapping[str, Any], *, drop: frozenset[str] = frozenset(),
            reads: bool = True) -> Analysis:
    """Digest and reads of ``node`` as if it had been cleaned (:func:`clean`), and for a class,
    had the plain methods named in ``drop`` removed from its body — without copying or editing
    the tree (the module's cached tree is shared).

    This is one walk instead of the six the copy, :func:`clean`, :func:`digest` and
    :mod:`memo_replay.keys.reads` take, and it allocates no AST nodes: those are most of a
    first call's garbage-collection work. ``tests/keys/test_one_pass.py`` checks it against
    them over every definition of the standard library."""
    kept = _kept(node, globals_)
    memo: dict[tuple[tuple[int, ...], frozenset[str], bool], Analysis] | None = \
        getattr(node, _MEMO, None)
    if memo is not None:
        # An analysis with the reads serves a request for the digest alone too.
        known = memo.get((kept, drop, True)) or (None if reads else memo.get((kept, drop, False)))
        if known is not None:
            return known
    walker = _OnePass(reads)
    walker.definition(node, [node.decorator_list[i] for i in kept], drop, 0)
    text = "".join(walker.out)
    found = xxh3_128(text.encode("utf-8", "surrogatepass")).hexdigest()
    result = _reads_of(node, walker, found) if reads else Analysis(found, (), frozenset(), ())
    if memo is None:
        memo = {}
        setattr(node, _MEMO, memo)
    memo[(kept, drop, reads)] = result
    return result


_MEMO = "_memo_replay_analysis"
"""The attribute on a definition's node holding its analyses, by (kept decorators, dropped
members, with the reads): the node is shared by the fingerprint and the observed check and
never edited, and the memo lives exactly as long as the node (a module parsed again has new
nodes). Not a field: ``ast.dump``, :func:`_dump` and :func:`ast.unparse` never see it."""


def _reads_of(node: Definition, walker: _OnePass, found: str) -> Analysis:
    # A function's names bound by its own imports are followed through the imported module
    # (reads.function_reads); a class's are local (reads.references).
    local = walker.bound if isinstance(node, ast.ClassDef) else walker.bound_not_imported
    chains = tuple(tuple(chain) for chain, self_like in walker.loads
                   if chain[0] not in local or self_like)
    imports = tuple(statement for _, _, statement in sorted(walker.imports,
                                                            key=lambda item: item[:2]))
    return Analysis(found, chains, frozenset(walker.attributes), imports)


def _one_pass(node: Definition, globals_: Mapping[str, Any], drop: frozenset[str],
              reads: bool) -> _OnePass:
    walker = _OnePass(reads)
    decorators = [d for d in node.decorator_list if not _is_recorded(d, globals_)]
    walker.definition(node, decorators, drop, 0)
    return walker


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_ELLIPSIS = ast.Constant(value=...)
_PASS: list[ast.stmt] = [ast.Pass()]


def _docstring_free(body: list[ast.stmt]) -> list[ast.stmt]:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:] or _PASS
    return body


class _OnePass:
    """The walk behind :func:`analyze`: renders :func:`_dump`'s canonical text of the cleaned
    tree and collects what :func:`~memo_replay.keys.reads.references`,
    :func:`~memo_replay.keys.reads.attribute_names`, ``_bound_names`` and
    :func:`~memo_replay.keys.reads.lazy_imports` would."""

    __slots__ = ("attributes", "bound", "bound_not_imported", "imports", "loads", "order",
                 "out", "reads")

    def __init__(self, reads: bool) -> None:
        self.reads = reads
        self.out: list[str] = []
        self.attributes: set[str] = set()
        self.bound: set[str] = set()
        """Every name bound inside (imports included): what is local to a class."""
        self.bound_not_imported: set[str] = set()
        self.loads: list[tuple[list[str], bool]] = []
        self.imports: list[tuple[int, int, ast.Import | ast.ImportFrom]] = []
        self.order = 0

    def definition(self, node: Definition, decorators: list[ast.expr], drop: frozenset[str],
                   depth: int) -> None:
        """A def or class, with its docstring (and for the top class, ``drop``) left out."""
        out = self.out
        kind = type(node).__name__
        out.append(kind)
        out.append("(")
        function = not isinstance(node, ast.ClassDef)
        for name in node._fields:
            if name == "body":
                body = _docstring_free(node.body)
                if drop:
                    body = [s for s in body if not isinstance(s, _FUNCTIONS)
                            or s.name not in drop] or _PASS
                field: Any = body
            elif name == "decorator_list":
                field = decorators
            else:
                field = getattr(node, name, None)
            if field is None or (isinstance(field, list) and not field):
                continue
            out.append(name)
            out.append("=")
            self.value(field, function, depth + 1, True)
            out.append(",")
        out.append(")")

    def value(self, value: Any, function: bool, depth: int, collect: bool) -> None:
        if isinstance(value, ast.AST):
            self.node(value, function, depth, collect)
        elif isinstance(value, list):
            out = self.out
            out.append("[")
            for item in value:
                self.value(item, function, depth, collect)
                out.append(",")
            out.append("]")
        else:
            self.out.append(f"{type(value).__name__}:{value!r}")

    def node(self, node: ast.AST, function: bool, depth: int, collect: bool) -> None:
        """``function``: the nearest enclosing def or class is a function (its local
        annotations are never evaluated). ``collect``: not inside an attribute chain already
        reported whole."""
        self.order += 1
        if isinstance(node, _DEFINITIONS):
            if self.reads:
                self.bound.add(node.name)
                self.bound_not_imported.add(node.name)
            self.definition(node, node.decorator_list, frozenset(), depth)
            return
        if self.reads:
            read = _READS.get(type(node))
            if read is not None:
                collect = self.read(read, node, depth, collect)
        kind = type(node).__name__
        out = self.out
        out.append(kind)
        out.append("(")
        blank = function and kind == "AnnAssign"
        depth += 1
        for name in node._fields:
            field = getattr(node, name, None)
            if blank and name == "annotation":
                out.append("annotation=")
                _dump(_ELLIPSIS, out)
                out.append(",")
            elif field is None:
                if (kind, name) in _ALWAYS_DUMPED:
                    out.append(f"{name}=NoneType:None,")
            elif isinstance(field, ast.AST):
                out.append(name)
                out.append("=")
                self.node(field, function, depth, collect)
                out.append(",")
            elif isinstance(field, list):
                if not field and (kind, name) not in _ALWAYS_DUMPED:
                    continue
                out.append(name)
                out.append("=[")
                for item in field:
                    if isinstance(item, ast.AST):
                        self.node(item, function, depth, collect)
                    else:
                        self.value(item, function, depth, collect)
                    out.append(",")
                out.append("],")
            else:
                out.append(f"{name}={type(field).__name__}:{field!r},")
        out.append(")")

    def read(self, read: int, node: Any, depth: int, collect: bool) -> bool:
        """Note what ``node`` reads or binds (``read``: its kind, :data:`_READS`); whether
        what is below it is still to be collected."""
        if read == _NAME:
            if isinstance(node.ctx, ast.Load):
                if collect:
                    self.loads.append(([node.id], False))
            else:
                self.bound.add(node.id)
                self.bound_not_imported.add(node.id)
        elif read == _ATTRIBUTE:
            self.attributes.add(node.attr)
            if collect:
                chain = _chain(node)
                if chain is not None:
                    collect = False
                    if isinstance(node.ctx, ast.Load):
                        self.loads.append((chain, chain[0] in _SELF_LIKE))
        elif read == _CONSTANT:
            if isinstance(node.value, str) and node.value.isidentifier():
                self.attributes.add(node.value)
        elif read == _ARG:
            self.bound.add(node.arg)
            self.bound_not_imported.add(node.arg)
        elif read == _IMPORT:
            self.imports.append((depth, self.order, node))
            self.bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif node.name:  # an except handler
            self.bound.add(node.name)
            self.bound_not_imported.add(node.name)
        return collect


_NAME, _ATTRIBUTE, _CONSTANT, _ARG, _IMPORT, _HANDLER = range(6)
_READS = {ast.Name: _NAME, ast.Attribute: _ATTRIBUTE, ast.Constant: _CONSTANT, ast.arg: _ARG,
          ast.Import: _IMPORT, ast.ImportFrom: _IMPORT, ast.ExceptHandler: _HANDLER}
"""The node types (exactly: :func:`ast.parse` makes no subclasses) that read or bind names."""
