"""What one definition contributes to a code fingerprint, computed once per process.

This module owns :class:`_Summary`: a function's or class's own digest and normalized text
(:mod:`memo_replay.keys.normalize`) and what it reads (:mod:`memo_replay.keys.reads`), left
unresolved, since resolving names depends on the project root (:mod:`memo_replay.keys.walk`).
A class is summarized whole, or without its plain methods, which count only where the walked
code uses their name. Code with no source (``python -c``, a REPL) is summarized from its
bytecode. A summary is computed once per process and shared by every recorded function that
reaches the definition.

It also owns :class:`_Closure`, what a helper function reaches transitively (resolved: per
project root), kept with every lookup the walk that made it did, and reused by later walks only
while each of those lookups finds the same thing again (:func:`_closure_holds`).
"""

from __future__ import annotations

import _thread
import ast
import functools
import sys
import types
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, cast

from memo_replay.keys.normalize import (
    Rendered,
    _docstring_free,
    analyze,
    bytecode_text,
    clean,
    plain_digest,
)
from memo_replay.keys.reads import Import, code_names, self_names
from memo_replay.keys.source import Located, _copy, locate_definition


class _Summary(NamedTuple):
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
_summaries_lock = _thread.allocate_lock()


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
    found = locate_definition(fn)
    if found is None or isinstance(found.node, ast.ClassDef):
        text = bytecode_text(fn)
        names = code_names(fn.__code__) | frozenset(fn.__code__.co_freevars)
        return _Summary(Rendered.of_text(text).digest, _constant(text),
                        tuple((n,) for n in sorted(names)), names, bytecode=True)
    node = found.node
    analysis = analyze(node, fn.__globals__)
    if found.module is not None and found.span is not None and \
            found.module.functions.get(found.span.qualname) is found.span:
        # What the check of observed dependencies will ask of this definition: computed now,
        # while its node is at hand (nodes are not kept: see ModuleTree).
        found.module.plain_digests.setdefault(found.span.qualname,
                                              plain_digest(node, fn.__globals__, analysis))
    return _Summary(analysis.digest, _text_lazily(found, fn.__globals__), analysis.chains,
                    analysis.attributes, analysis.imports, frozenset(self_names(node)))


def _class_summary(cls: type, *, whole: bool) -> _Summary:
    found = locate_definition(cls)
    module = sys.modules.get(getattr(cls, "__module__", None) or "")
    globals_ = vars(module) if module is not None else {}
    if found is None or not isinstance(found.node, ast.ClassDef):
        return _class_without_source(cls)
    node = found.node
    members: frozenset[str] = frozenset()
    if not whole:
        members = frozenset(s.name for s in _docstring_free(node.body)
                            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                            and _counts_where_used(s))
    analysis = analyze(node, globals_, drop=members)
    return _Summary(analysis.digest, _text_lazily(found, globals_), analysis.chains,
                    analysis.attributes, members=members)


def _text_lazily(found: Located, globals_: Mapping[str, Any]) -> Callable[[], str]:
    """What gives the cleaned text of a definition for people, made the first time it is asked
    for (only a recorded function's own text is stored, and a replay never reads it): from its
    lines, parsed again, rather than holding its node for the whole process. A class's text is
    of the whole class, its plain methods included."""
    module, span = found.module, found.span
    held = found.node if module is None or span is None else None
    made: list[str] = []

    def text() -> str:
        if not made:
            node = held
            if node is None:
                assert module is not None
                assert span is not None
                node = module.definition(span)
            if node is None:  # the same lines parsed before: cannot happen
                raise RuntimeError(f"memo_replay: cannot parse {span} again")
            made.append(clean(_copy(node), globals_))  # the node may be shared
        return made[0]

    return text


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
    """A class with no source (``python -c``): its name, each function's bytecode (a
    property's accessors included) and each other attribute's value — ``LIMIT = 1`` becoming
    ``LIMIT = 2`` must change the key as it does in a class with source. A value without a
    canonical encoding counts by its type, as an unencodable constant cannot count by value."""
    from memo_replay.keys.encoding import Encoder, Unencodable, type_id

    parts = [f"<class {cls.__qualname__}>"]
    names: set[str] = set()
    encoder: Encoder | None = None
    for name, value in sorted(vars(cls).items()):
        functions = [f for f in (value.fget, value.fset, value.fdel) if f is not None] \
            if isinstance(value, property) else [_function_of(value)]
        if any(f is not None for f in functions):
            for function in functions:
                if isinstance(function, types.FunctionType):
                    parts.append(f"{name}: {bytecode_text(function)}")
                    names |= code_names(function.__code__)
        elif not _is_dunder(name):
            encoder = encoder or Encoder(None)
            try:
                parts.append(f"{name} = {encoder.encode(value).hex()}")
            except (Unencodable, RecursionError):
                parts.append(f"{name}: <{type_id(type(value))}>")
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


# -- what a helper reaches, shared ---------------------------------------------------------------

Check = tuple[Callable[[Any, Any], Any], Any, Any, Any]
"""``(look, a, b, found)``: a lookup a walk made, ``look(a, b)``, and what it found."""


class _Closure:
    """Everything a helper function reaches, transitively (:class:`~memo_replay.keys.walk.
    _Walker` from that helper alone), kept so that every recorded function reaching the helper
    merges it instead of walking it again.

    A walk reads the world only through lookups: a global, a module's or a class's attribute,
    a closure cell, ``__code__``, ``__mro__``, ``sys.modules``, a module's statements binding a
    name; each is recorded with what it found. The closure serves only while every one of them
    (and every one of the closures it merged) finds the very same object again (``is``), or an
    equal encoding for a mutable constant (a dict mutated at run time is seen by a function
    first called after the mutation, as a fresh walk would): a helper rebound, given new code,
    reloaded or imported anew is walked again."""

    __slots__ = ("attributes", "children", "classes", "conflicted", "constants", "defined",
                 "definitions", "digest", "equal", "fn", "helpers", "members", "origins", "same",
                 "seen")

    def __init__(self, fn: weakref.ref[Any], digest: str) -> None:
        self.fn = fn
        self.digest = digest
        self.helpers: dict[str, str] = {}
        self.origins: dict[str, int] = {}
        """Helper name → id of the function or class it is the digest of."""
        self.constants: dict[str, str] = {}
        self.definitions: dict[str, str] = {}
        self.seen: frozenset[int] = frozenset()
        self.classes: tuple[type, ...] = ()
        self.members: dict[int, frozenset[str]] = {}
        self.attributes: frozenset[str] = frozenset()
        self.defined: frozenset[tuple[int, str]] = frozenset()
        self.same: tuple[Check, ...] = ()
        self.equal: tuple[Check, ...] = ()
        self.children: tuple[_Closure, ...] = ()
        self.conflicted = False
        """Its walk gave one name to two different things (see ``_Walker.conflicted``)."""


_closures: dict[tuple[object, int], _Closure] = {}
"""(project root, id of a helper function) → its closure, while the function lives (its entry
goes with it; the closure holds it only weakly)."""


def _closure_for(root: object, fn: types.FunctionType) -> _Closure | None:
    """The closure kept for ``fn`` under ``root``, if any (not yet validated)."""
    found = _closures.get((root, id(fn)))
    return found if found is not None and found.fn() is fn else None


def _new_closure(root: object, fn: types.FunctionType, digest: str) -> _Closure:
    """An empty closure for ``fn`` (filled by the walk, then :func:`_keep_closure`)."""
    key = (root, id(fn))
    return _Closure(weakref.ref(fn, functools.partial(_drop_closure, key)), digest)


def _keep_closure(root: object, fn: types.FunctionType, closure: _Closure) -> None:
    _closures[(root, id(fn))] = closure


def _drop_closure(key: tuple[object, int], reference: weakref.ref[Any]) -> None:
    """A helper died: drop its closure (no lock: see :func:`_forget`)."""
    held = _closures.get(key)
    if held is not None and held.fn is reference:
        _closures.pop(key, None)


def _closure_holds(closure: _Closure, checked: dict[int, tuple[_Closure, bool]]) -> bool:
    """Whether every lookup of ``closure`` and of the closures it merged finds what it found.
    ``checked``: closures already checked in this walk (held, so that an id is not reused)."""
    stack = [closure]
    while stack:
        current = stack.pop()
        known = checked.get(id(current))
        if known is not None and known[0] is current:
            if not known[1]:
                return False
            continue
        holds = _checks_hold(current)
        checked[id(current)] = (current, holds)
        if not holds:
            return False
        stack.extend(current.children)
    return True


def _checks_hold(closure: _Closure) -> bool:
    if closure.fn() is None:
        return False
    try:
        for look, a, b, found in closure.same:
            if look(a, b) is not found:
                return False
        for look, a, b, found in closure.equal:
            if look(a, b) != found:
                return False
    except Exception:  # a lookup that fails now cannot be trusted: walk again
        return False
    return True
