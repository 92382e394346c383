"""What a definition reads: the names, attributes and imports the walk resolves.

This module owns the pure analysis of what code reads, never what the names refer to: the dotted
name chains a definition (or a module-level statement) reads and does not bind locally
(:func:`references`), the attribute names that may reach a class's members
(:func:`attribute_names`), the imports inside a body (:func:`lazy_imports`,
:func:`import_bound`), a method's first parameter (:func:`self_names`) and, where no source
exists, the names a code object reads (:func:`code_names`). Resolving them to objects and
deciding what belongs to the project is :mod:`memo_replay.keys.walk`.
"""

from __future__ import annotations

import ast
import types

from memo_replay.keys.source import Definition

Import = ast.Import | ast.ImportFrom


# -- what a definition reads ----------------------------------------------------------------------

def references(node: ast.AST, keep: frozenset[str] = frozenset(),
               bound: set[str] | None = None) -> list[list[str]]:
    """Dotted name chains ``node`` reads and does not bind locally, in source order, decorators
    included (a cleaned definition no longer has ``@recorded``). Names in ``keep`` are reported
    even though bound locally (names bound by imports inside a function, followed lazily).
    ``bound``: the names a definition binds, when already known (:func:`function_reads`)."""
    if bound is None and isinstance(node, Definition):
        bound = _bound_names(node)
    local = (bound - keep) if bound is not None else _lambda_and_comprehension_names(node)
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


def function_reads(node: Definition) -> tuple[list[list[str]], tuple[Import, ...]]:
    """``references(node, import_bound(node))`` and ``lazy_imports(node)``, walking the tree
    fewer times (names bound by imports, plus the others, are the names bound)."""
    imports = lazy_imports(node)
    imported: set[str] = set()
    for statement in imports:
        imported.update((a.asname or a.name).split(".")[0] for a in statement.names)
    others = _bound_names(node, imports=False)
    return references(node, frozenset(imported - others), others | imported), imports


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


def _chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` → ``["a", "b", "c"]``; None when the base is not a plain name."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(attrs)]
    return None


# -- code without source --------------------------------------------------------------------------

def code_names(code: types.CodeType) -> frozenset[str]:
    """Every name a code object and the code nested in it read: globals and attributes alike
    (the bytecode does not tell them apart without being disassembled)."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= code_names(const)
    return frozenset(names)
