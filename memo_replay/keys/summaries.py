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
import functools
import inspect
import threading
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from memo_replay.keys.normalize import Rendered, bytecode_text, clean_lazily, digest
from memo_replay.keys.reads import (
    Import,
    attribute_names,
    code_names,
    function_reads,
    references,
    self_names,
)
from memo_replay.keys.source import parse_definition


@dataclass(frozen=True)
class _Summary:
    """A function's or class's own digest and what it reads (resolved anew by each walk)."""

    digest: str
    text_of: Callable[[], str]
    """Gives the normalized text for people (made on first use: only a recorded function's
    own text is stored)."""
    chains: tuple[tuple[str, ...], ...]
    attributes: frozenset[str]
    imports: tuple[Import, ...] = ()
    self_names: frozenset[str] = frozenset()
    members: frozenset[str] = frozenset()
    """A class's plain methods, which count only where the walked code uses their name."""
    bytecode: bool = False

    @property
    def text(self) -> str:
        """The normalized text for people."""
        return self.text_of()


_summaries: dict[int, tuple[weakref.ref[Any], Any, dict[str, _Summary]]] = {}
"""id(obj) → (a weak reference to obj, its code object for a function, else None; its
summaries by variant)."""
_summaries_lock = threading.Lock()


def _cached(obj: Any, variant: str, compute: Any) -> _Summary:
    """The summary of ``obj`` (a function or class), computed once per process and shared by
    every walk that reaches it. Summaries do not depend on the project root: resolving what
    they read does, and happens in each walk. The memo is keyed by ``obj``'s identity and
    holds it weakly (an entry whose object died is never used, so a reused id cannot match)
    and, for a function, is valid only while its ``__code__`` is the one summarized (a replaced
    ``__code__`` is summarized anew; a reloaded module has new function and class objects)."""
    code = obj.__code__ if isinstance(obj, types.FunctionType) else None
    key = id(obj)
    with _summaries_lock:
        held = _summaries.get(key)
        found = held[2].get(variant) if held is not None and held[0]() is obj and \
            held[1] is code else None
    if found is None:
        found = cast(_Summary, compute(obj))
        try:
            reference = weakref.ref(obj, functools.partial(_forget, key))
        except TypeError:  # not weak-referenceable: not cached
            return found
        with _summaries_lock:
            held = _summaries.get(key)
            if held is None or held[0]() is not obj or held[1] is not code:
                held = _summaries[key] = (reference, code, {})
            held[2][variant] = found
    return found


def _forget(key: int, reference: weakref.ref[Any]) -> None:
    """A summarized object died: drop its entry. No lock: this runs wherever the object is
    freed, possibly inside :func:`_cached`'s locked section; and its id cannot be reused (nor
    its entry replaced) before this returns."""
    held = _summaries.get(key)
    if held is not None and held[0] is reference:
        _summaries.pop(key, None)


def _function_summary(fn: types.FunctionType) -> _Summary:
    node = parse_definition(fn)
    if node is None or isinstance(node, ast.ClassDef):
        text = bytecode_text(fn)
        names = code_names(fn.__code__) | frozenset(fn.__code__.co_freevars)
        return _Summary(Rendered.of_text(text).digest, _constant(text),
                        tuple((n,) for n in sorted(names)), names, bytecode=True)
    text_of = clean_lazily(node, fn.__globals__)
    chains, imports = function_reads(node)
    return _Summary(digest(node), text_of, tuple(map(tuple, chains)), attribute_names(node),
                    imports, frozenset(self_names(node)))


def _class_summary(cls: type, *, whole: bool) -> _Summary:
    node = parse_definition(cls)
    module = inspect.getmodule(cls)
    globals_ = vars(module) if module is not None else {}
    if not isinstance(node, ast.ClassDef):
        return _class_without_source(cls)
    text = clean_lazily(node, globals_)
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
    return _Summary(Rendered.of_text(text).digest, _constant(text),
                    tuple((n,) for n in sorted(names)), frozenset(names), bytecode=True)


def _constant(text: str) -> Callable[[], str]:
    return lambda: text


def _function_of(value: Any) -> types.FunctionType | None:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    elif isinstance(value, functools.cached_property):
        value = value.func
    return value if isinstance(value, types.FunctionType) else None


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")
