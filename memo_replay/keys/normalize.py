"""Normalizing one definition's source: what of a function's or class's text counts for a key.

This module owns the pure AST side of the code fingerprint. A module's source is parsed with
:mod:`ast` once per process (:func:`module_tree`); a definition is found in it and cleaned of
docstrings and of the ``@recorded`` decorator. The key uses a canonical structural dump of the
tree, the same on every supported Python, so comments, blank lines, formatting and quote style do
not count, while a renamed variable, a changed literal or a new parameter do; people see the
:func:`ast.unparse` text, whose layout varies by Python. (Never ``ast.dump``: its output differs
between Python versions.) Annotations of local variables (``x: list[str] = []`` inside a
function) are never evaluated, so they do not count. Where no source exists, a text made from
the bytecode stands in for it.

It also lists what a definition reads (:func:`references`, :func:`attribute_names`,
:func:`lazy_imports`) and which module-level statements bind a name (:func:`binding_statements`)
— but resolving names to objects, deciding what belongs to the project and hashing helpers is
:mod:`memo_replay.keys.code`. The only globals looked at here are the ones that tell whether a
decorator is ``@recorded``.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import textwrap
import threading
import types
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from xxhash import xxh3_128

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
Import = ast.Import | ast.ImportFrom


# -- a module's source, parsed once per process ---------------------------------------------------

@dataclass(frozen=True)
class ModuleTree:
    """A parsed module and the indexes the fingerprint looks things up in."""

    tree: ast.Module
    by_line: Mapping[int, ast.FunctionDef | ast.AsyncFunctionDef]
    """Function definitions by first line (a code object's ``co_firstlineno``: its first
    decorator's line, or its ``def``'s)."""
    by_qualname: Mapping[str, Definition]
    bindings: Mapping[str, tuple[ast.stmt, ...]]
    """Module-level statements binding or mutating each name, in source order."""


_trees: dict[str, tuple[list[str], ModuleTree | None]] = {}
_trees_lock = threading.Lock()


def module_tree(filename: str, module_globals: Mapping[str, Any] | None = None
                ) -> ModuleTree | None:
    """The parsed source of ``filename`` (from :mod:`linecache`, which also holds IPython cells);
    parsed again only when linecache's text of it changed. None without a parseable source."""
    if not filename.startswith("<"):
        linecache.checkcache(filename)
    # linecache reads module globals only to find a loader for a file not on disk.
    loader_globals = None if not module_globals else {
        name: module_globals[name] for name in ("__name__", "__loader__", "__spec__")
        if name in module_globals}
    lines = linecache.getlines(filename, loader_globals)
    if not lines:
        return None
    with _trees_lock:
        cached = _trees.get(filename)
        if cached is not None and cached[0] is lines:
            return cached[1]
    try:
        tree: ast.Module | None = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        tree = None
    parsed = None if tree is None else _index(tree)
    with _trees_lock:
        _trees[filename] = (lines, parsed)
    return parsed


def _index(tree: ast.Module) -> ModuleTree:
    by_line: dict[int, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    by_qualname: dict[str, Definition] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                by_line[first] = child
                by_qualname[prefix + child.name] = child
                visit(child, f"{prefix}{child.name}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                by_qualname[prefix + child.name] = child
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    bindings: dict[str, list[ast.stmt]] = {}
    for statement in _module_level(tree.body):
        for name in _bound_by(statement):
            bindings.setdefault(name, []).append(statement)
    return ModuleTree(tree, by_line, by_qualname,
                      {name: tuple(found) for name, found in bindings.items()})


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at module level: through ``if``/``try``/``with``, not into definitions."""
    for statement in body:
        if isinstance(statement, (ast.If, ast.Try, ast.With, ast.AsyncWith)) or \
                type(statement).__name__ == "TryStar":
            yield from _module_level(getattr(statement, "body", []))
            yield from _module_level(getattr(statement, "orelse", []))
            yield from _module_level(getattr(statement, "finalbody", []))
            for handler in getattr(statement, "handlers", []):
                yield from _module_level(handler.body)
            if isinstance(statement, (ast.With, ast.AsyncWith)):
                yield statement  # `with … as NAME` binds NAME
        else:
            yield statement


def _bound_by(statement: ast.stmt) -> set[str]:
    """Names a module-level statement binds, or mutates (``NAME[k] = …``, ``NAME.update(…)``)."""
    targets: list[ast.expr] = []
    if isinstance(statement, ast.Assign):
        targets = list(statement.targets)
    elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        targets = [statement.target]
    elif isinstance(statement, ast.Delete):
        targets = list(statement.targets)
    elif isinstance(statement, (ast.For, ast.AsyncFor)):
        targets = [statement.target]
    elif isinstance(statement, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in statement.items if item.optional_vars]
    elif isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in statement.names}
    elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        targets = [statement.value.func]  # NAME.register(…), NAME.update(…)
        if not isinstance(statement.value.func, ast.Attribute):
            return set()
    names: set[str] = set()
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                names.add(node.id)
                break
            if isinstance(node, (ast.Tuple, ast.List, ast.Starred)):
                for element in ast.walk(node):
                    if isinstance(element, ast.Name) and isinstance(element.ctx, ast.Store):
                        names.add(element.id)
                break
    return names


def binding_statements(filename: str, name: str,
                       module_globals: Mapping[str, Any] | None = None) -> tuple[ast.stmt, ...]:
    """The module-level statements of ``filename`` that bind (or mutate) ``name``."""
    parsed = module_tree(filename, module_globals)
    return () if parsed is None else parsed.bindings.get(name, ())


def statements_digest(statements: Iterable[ast.stmt], globals_: Mapping[str, Any]) -> str:
    """The canonical digest of module-level statements (a definition fingerprint); a ``def`` or
    ``class`` among them is cleaned like any definition (docstrings do not count)."""
    canonical: list[str] = []
    for statement in statements:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            statement = _copy(statement)
            clean(statement, globals_)
        _dump(statement, canonical)
        canonical.append(";")
    return xxh3_128("".join(canonical).encode("utf-8", "surrogatepass")).hexdigest()


# -- one definition -------------------------------------------------------------------------------

def parse_definition(obj: types.FunctionType | type) -> Definition | None:
    """A copy of the AST node defining ``obj``, or None when its source is unavailable."""
    found = _find_in_module(obj)
    if found is not None:
        copied: Definition = _copy(found)
        return copied
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


def _find_in_module(obj: types.FunctionType | type) -> Definition | None:
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
        parsed = module_tree(code.co_filename, obj.__globals__)
        if parsed is None:
            return None
        node = parsed.by_line.get(code.co_firstlineno)
        return node if node is not None and node.name == code.co_name else None
    try:
        filename = inspect.getsourcefile(obj)
    except (TypeError, OSError):  # a class of `python -c`, a builtin
        return None
    if not filename:
        return None
    module = inspect.getmodule(obj)
    parsed = module_tree(filename, vars(module) if module is not None else None)
    if parsed is None:
        return None
    found = parsed.by_qualname.get(obj.__qualname__)
    return found if isinstance(found, ast.ClassDef) else None


def _copy(node: Any) -> Any:
    """A copy of an AST (the cached module tree is never edited), several times faster than
    :func:`copy.deepcopy`."""
    if isinstance(node, ast.AST):
        copied = type(node)(**{name: _copy(getattr(node, name, None)) for name in node._fields})
        for name in node._attributes:  # positions: ast.unparse reads them
            if hasattr(node, name):
                setattr(copied, name, getattr(node, name))
        return copied
    if isinstance(node, list):
        return [_copy(item) for item in node]
    return node


@dataclass(frozen=True)
class Rendered:
    """A definition's normalized text (for people) and the digest of its canonical form."""

    text: str
    digest: str

    @classmethod
    def of_text(cls, text: str) -> Rendered:
        return cls(text, xxh3_128(text.encode("utf-8", "surrogatepass")).hexdigest())


def clean(node: Definition, globals_: Mapping[str, Any]) -> str:
    """Remove docstrings and the ``@recorded`` decorator from ``node`` (in place) and return
    the text people see; then replace the annotations of local variables (never evaluated) by
    ``...``, so that the key does not depend on them."""
    node.decorator_list = [d for d in node.decorator_list if not _is_recorded(d, globals_)]
    for inner in ast.walk(node):
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = inner.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                inner.body = body[1:] or [ast.Pass()]
    text = ast.unparse(node)
    for function in ast.walk(node):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for statement in _function_scope(function.body):
                if isinstance(statement, ast.AnnAssign):
                    statement.annotation = ast.Constant(value=...)
    return text


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


def _chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` → ``["a", "b", "c"]``; None when the base is not a plain name."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(attrs)]
    return None


# -- what a definition reads ----------------------------------------------------------------------

def references(node: ast.AST, keep: frozenset[str] = frozenset()) -> list[list[str]]:
    """Dotted name chains ``node`` reads and does not bind locally, in source order, decorators
    included (a cleaned definition no longer has ``@recorded``). Names in ``keep`` are reported
    even though bound locally (names bound by imports inside a function, followed lazily)."""
    local = (_bound_names(node) - keep) if isinstance(node, Definition) else \
        _lambda_and_comprehension_names(node)
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

    Visitor().visit(node)
    return found


def attribute_names(node: ast.AST) -> frozenset[str]:
    """Every attribute name ``node`` uses (``x.render`` → ``render``) and every identifier-like
    string constant (``getattr(x, "render")``): the members of a class it may reach."""
    names: set[str] = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.Attribute):
            names.add(inner.attr)
        elif isinstance(inner, ast.Constant) and isinstance(inner.value, str) \
                and inner.value.isidentifier():
            names.add(inner.value)
    return frozenset(names)


def lazy_imports(node: Definition) -> tuple[Import, ...]:
    """Imports inside a definition's body (``from .lazy import helper`` in a function)."""
    return tuple(inner for inner in ast.walk(node)
                 if isinstance(inner, (ast.Import, ast.ImportFrom)))


def import_bound(node: Definition) -> frozenset[str]:
    """Names bound only by imports inside ``node`` (resolved through the imported module)."""
    imported: set[str] = set()
    for statement in lazy_imports(node):
        imported.update((a.asname or a.name).split(".")[0] for a in statement.names)
    others = _bound_names(node, imports=False)
    return frozenset(imported - others)


_SELF_LIKE = frozenset({"self", "cls"})


def _bound_names(node: ast.AST, *, imports: bool = True) -> set[str]:
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
        elif imports and isinstance(inner, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in inner.names)
        elif isinstance(inner, ast.ExceptHandler) and inner.name:
            names.add(inner.name)
    return names


def _lambda_and_comprehension_names(node: ast.AST) -> set[str]:
    """In a module-level statement, only lambda parameters and comprehension targets are local
    (the names it assigns are globals, read by whoever reads them)."""
    names: set[str] = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.arg):
            names.add(inner.arg)
        elif isinstance(inner, ast.comprehension):
            names.update(n.id for n in ast.walk(inner.target) if isinstance(n, ast.Name))
    return names


def self_names(node: Definition) -> set[str]:
    """The first parameter of a method (``self``/``cls`` by convention, any name in fact)."""
    if isinstance(node, ast.ClassDef):
        return set()
    params = [*node.args.posonlyargs, *node.args.args]
    return {params[0].arg} if params else set()


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


def code_names(code: types.CodeType) -> frozenset[str]:
    """Every name a code object and the code nested in it read: globals and attributes alike
    (the bytecode does not tell them apart without being disassembled)."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= code_names(const)
    return frozenset(names)
