"""Finding a definition in its module's source.

This module owns reading source code. A module's source is parsed with :mod:`ast` once per
process (:func:`module_tree`, from :mod:`linecache`, which also holds IPython cells) and indexed:
function definitions by first line, definitions by qualified name, and the module-level
statements binding (or mutating) each name (:func:`binding_statements`). :func:`parse_definition`
returns a copy of the node defining a function or class (the cached tree is never edited),
falling back to :func:`inspect.getsourcelines`. What of that source counts for a key is
:mod:`memo_replay.keys.normalize`; what it reads is :mod:`memo_replay.keys.reads`.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import textwrap
import threading
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


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


_trees: dict[str, tuple[list[str], ModuleTree | None, tuple[int, int, int] | None]] = {}
"""filename → (linecache's lines it was parsed from, the tree, the file's stamp then)."""
_trees_lock = threading.Lock()
parses = 0
"""How many module sources this process has parsed (:func:`module_tree`); read by tests."""


def module_tree(filename: str, module_globals: Mapping[str, Any] | None = None
                ) -> ModuleTree | None:
    """The parsed source of ``filename`` (from :mod:`linecache`, which also holds IPython cells);
    parsed again only when the file's (size, mtime_ns, inode) or linecache's text of it changed.
    None without a parseable source. Every part of the fingerprint and of the observed check
    reads a module through here: each module is read and parsed once per process."""
    global parses
    stamp = None
    if not filename.startswith("<"):
        stamp = _stamp(filename)
        with _trees_lock:
            cached = _trees.get(filename)
        entry = linecache.cache.get(filename)
        if cached is not None and stamp is not None and cached[2] == stamp and \
                entry is not None and len(entry) == 4 and entry[2] is cached[0] and \
                entry[3] == filename:
            # The file linecache read, unchanged: linecache.checkcache would keep its lines.
            return cached[1]
        if cached is not None and cached[2] != stamp:
            # Rewritten in place within linecache's mtime resolution, or replaced by a rename:
            # linecache compares only size and mtime.
            linecache.cache.pop(filename, None)
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
        if cached is not None and cached[0] is lines and cached[2] == stamp:
            return cached[1]
    try:
        tree: ast.Module | None = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        tree = None
    parsed = None if tree is None else _index(tree)
    with _trees_lock:
        parses += 1
        _trees[filename] = (lines, parsed, stamp)
    return parsed


def _stamp(filename: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(filename)
    except (OSError, ValueError):
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def _index(tree: ast.Module) -> ModuleTree:
    by_line: dict[int, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    by_qualname: dict[str, Definition] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in blocks(node):
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


_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)


def blocks(node: ast.AST) -> Iterator[ast.AST]:
    """The children of ``node`` that are or hold statements, in :func:`ast.iter_child_nodes`'s
    order: where a ``def`` or ``class`` can be (never inside an expression), so finding them
    does not visit every expression of a module."""
    for name in node._fields:
        field = getattr(node, name, None)
        if isinstance(field, list):
            for item in field:
                if isinstance(item, _BLOCKS):
                    yield item


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
