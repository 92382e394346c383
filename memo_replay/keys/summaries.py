"""What one definition contributes to a code fingerprint, computed once per process.

This module owns :class:`_Summary`: a function's or class's own digest and normalized text
(:mod:`memo_replay.keys.normalize`) and what it reads (:mod:`memo_replay.keys.reads`), left
unresolved, since resolving names depends on the project root and is done anew by each walk
(:mod:`memo_replay.keys.walk`). A class is summarized whole, or without its plain methods, which
count only where the walked code uses their name. Code with no source (``python -c``, a REPL) is
summarized from its bytecode. A summary is computed once per process and shared by every recorded
function that reaches the definition.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import threading
import types
import weakref
from dataclasses import dataclass
from typing import Any

from memo_replay.keys.normalize import Rendered, bytecode_text, clean, digest
from memo_replay.keys.reads import (
    Import,
    attribute_names,
    code_names,
    import_bound,
    lazy_imports,
    references,
    self_names,
)
from memo_replay.keys.source import parse_definition


@dataclass(frozen=True)
class _Summary:
    """A function's or class's own digest and what it reads (resolved anew by each walk)."""

    digest: str
    text: str
    chains: tuple[tuple[str, ...], ...]
    attributes: frozenset[str]
    imports: tuple[Import, ...] = ()
    self_names: frozenset[str] = frozenset()
    members: frozenset[str] = frozenset()
    """A class's plain methods, which count only where the walked code uses their name."""
    bytecode: bool = False


_summaries: weakref.WeakKeyDictionary[Any, dict[str, _Summary]] = weakref.WeakKeyDictionary()
_summaries_lock = threading.Lock()


def _cached(obj: Any, variant: str, compute: Any) -> _Summary:
    """The summary of ``obj`` (a function or class), computed once per process. Summaries do
    not depend on the project root: resolving what they read does, and happens in each walk."""
    with _summaries_lock:
        try:
            found = _summaries.get(obj, {}).get(variant)
        except TypeError:  # not weak-referenceable or unhashable: compute each time
            return compute(obj)  # type: ignore[no-any-return]
    if found is None:
        found = compute(obj)
        # An object that is not weak-referenceable is not cached.
        with _summaries_lock, contextlib.suppress(TypeError):
            _summaries.setdefault(obj, {})[variant] = found
    return found


def _function_summary(fn: types.FunctionType) -> _Summary:
    node = parse_definition(fn)
    if node is None or isinstance(node, ast.ClassDef):
        text = bytecode_text(fn)
        names = code_names(fn.__code__) | frozenset(fn.__code__.co_freevars)
        return _Summary(Rendered.of_text(text).digest, text, tuple((n,) for n in sorted(names)),
                        names, bytecode=True)
    text = clean(node, fn.__globals__)
    return _Summary(digest(node), text, tuple(map(tuple, references(node, import_bound(node)))),
                    attribute_names(node), lazy_imports(node), frozenset(self_names(node)))


def _class_summary(cls: type, *, whole: bool) -> _Summary:
    node = parse_definition(cls)
    module = inspect.getmodule(cls)
    globals_ = vars(module) if module is not None else {}
    if not isinstance(node, ast.ClassDef):
        return _class_without_source(cls)
    text = clean(node, globals_)
    members: set[str] = set()
    if not whole:
        members = {s.name for s in node.body if isinstance(s, (ast.FunctionDef,
                   ast.AsyncFunctionDef)) and _counts_where_used(s)}
        node.body = [s for s in node.body if getattr(s, "name", None) not in members or
                     not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))] or [ast.Pass()]
    return _Summary(digest(node), text, tuple(map(tuple, references(node))),
                    attribute_names(node), members=frozenset(members))


_PER_USE_DECORATORS = frozenset({"staticmethod", "classmethod", "property", "cached_property",
                                 "setter", "getter", "deleter", "abstractmethod", "override"})


def _counts_where_used(method: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A plain method counts only where its name is used; dunders (called by operators and the
    interpreter) and methods with other decorators (``@field_validator``, ``@app.route``: a
    framework may call them) always count."""
    if _is_dunder(method.name):
        return False
    for decorator in method.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else \
            target.id if isinstance(target, ast.Name) else None
        if name not in _PER_USE_DECORATORS:
            return False
    return True


def _class_without_source(cls: type) -> _Summary:
    """A class with no source (``python -c``): its name and each function's bytecode."""
    parts = [f"<class {cls.__qualname__}>"]
    names: set[str] = set()
    for name, value in sorted(vars(cls).items()):
        function = _function_of(value)
        if function is not None:
            parts.append(f"{name}: {bytecode_text(function)}")
            names |= code_names(function.__code__)
    text = "\n".join(parts)
    return _Summary(Rendered.of_text(text).digest, text, tuple((n,) for n in sorted(names)),
                    frozenset(names), bytecode=True)


def _function_of(value: Any) -> types.FunctionType | None:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    elif isinstance(value, functools.cached_property):
        value = value.func
    return value if isinstance(value, types.FunctionType) else None


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")
