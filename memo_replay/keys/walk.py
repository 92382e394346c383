"""The dependency walk: from one piece of user code to everything of the user's it reaches.

This module owns :class:`_Walker`. It resolves the names a definition reads (its
:class:`~memo_replay.keys.summaries._Summary`) against its globals, closure, class and in-body
imports, and follows them transitively and with cycle protection into the project's and the
user's own code (:mod:`memo_replay.keys.ownership` decides what that is), collecting helpers
(functions; classes member by member), constants (values with a canonical encoding) and
definitions (the digest of the module-level statements binding any other name). A walk depends
on the project root and is done anew for each fingerprint; the summaries it reads are shared.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xxhash import xxh3_128

from memo_replay.errors import InvalidOption
from memo_replay.keys.encoding import Encoder, Unencodable
from memo_replay.keys.normalize import Rendered, statements_digest
from memo_replay.keys.ownership import (
    _global_owner,
    _is_project_callable,
    _is_project_module,
    _is_user_file,
    _module_files,
    _module_globals,
    _qualified,
    _resolve_import,
)
from memo_replay.keys.reads import Import, attribute_names, references
from memo_replay.keys.source import binding_statements
from memo_replay.keys.summaries import (
    _cached,
    _class_summary,
    _function_of,
    _function_summary,
    _is_dunder,
    _Summary,
)

Home = tuple[Mapping[str, Any], str]
"""Where a global name lives: its module's globals and its name there."""


class _Walker:
    """Collects the helpers, constants and definitions reachable from a piece of user code."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.helpers: dict[str, str] = {}
        self.constants: dict[str, str] = {}
        self.definitions: dict[str, str] = {}
        self._seen: set[int] = set()
        self._classes: dict[int, type] = {}
        self._members: dict[int, frozenset[str]] = {}
        """Each reached class's plain methods (its summary's ``members``)."""
        self._attributes: set[str] = set()
        self._defined: set[tuple[int, str]] = set()
        self._encoder = Encoder(root, ordered=True)  # a constant's dict order is iteration order

    # -- entry points -------------------------------------------------------------------------

    def function_summary(self, fn: types.FunctionType) -> _Summary:
        """The summary of ``fn``; walks everything it reads."""
        self._seen.add(id(fn))
        summary = _cached(fn, "function", _function_summary)
        owner = _owner_class(fn)
        if owner is not None:
            self._reach_class(owner)
        self._walk(summary, fn.__globals__, _closure_values(fn), owner, _qualified(fn))
        return summary

    def whole_class(self, cls: type) -> _Summary:
        """The summary of a whole class (every member counts: ``deps=[cls]``, an argument)."""
        self._seen.add(id(cls))
        summary = _cached(cls, "whole", functools.partial(_class_summary, whole=True))
        self._walk(summary, _module_globals(cls), {}, None, _qualified(cls))
        for base in cls.__mro__[1:]:
            if base is not object:
                self._object(_qualified(base), base)
        return summary

    def dependency(self, index: int, dep: object) -> tuple[str, str]:
        """Name and hash of an explicit ``deps=`` item (its references are walked too)."""
        target = inspect.unwrap(dep) if callable(dep) and hasattr(dep, "__wrapped__") else dep
        if isinstance(target, type):
            return _qualified(target), self.whole_class(target).digest
        if isinstance(target, types.FunctionType):
            return _qualified(target), self.function_summary(target).digest
        try:
            return f"deps[{index}]", xxh3_128(self._encoder.encode(dep)).hexdigest()
        except Unencodable as exc:
            raise InvalidOption(
                f"deps[{index}] is a `{exc.type_name}` with no stable encoding; pass a function, "
                f"a class or a plain value (str, number, tuple, frozen container, enum)"
            ) from None

    # -- resolution ---------------------------------------------------------------------------

    def _walk(self, summary: _Summary, globals_: Mapping[str, Any], closure: Mapping[str, Any],
              owner: type | None, scope: str) -> None:
        self._see_attributes(summary.attributes)
        imported = self._lazy_imports(summary.imports, globals_) if summary.imports else {}
        for chain in summary.chains:
            self._reference(list(chain), globals_, closure, owner, summary.self_names, scope,
                            imported)
        if summary.bytecode:  # `module.name` cannot be told apart in bytecode: try each pair
            modules = [n for n in summary.attributes
                       if isinstance(globals_.get(n), types.ModuleType)]
            for module in modules:
                for attr in summary.attributes:
                    self._reference([module, attr], globals_, closure, None, frozenset(), scope,
                                    imported)

    def _reference(self, chain: list[str], globals_: Mapping[str, Any],
                   closure: Mapping[str, Any], owner: type | None, self_names: frozenset[str],
                   scope: str, imported: Mapping[str, tuple[Any, str, Home | None]]) -> None:
        base, attrs = chain[0], chain[1:]
        home: Home | None = None
        if base in self_names and owner is not None:
            if attrs:
                self._attribute_of_class(owner, attrs[0])
            return
        if base in imported:
            value, name, home = imported[base]
        elif base in closure:
            value, name = closure[base], f"{scope}.<closure>.{base}"
        elif base in globals_:
            value, name, home = globals_[base], f"{_global_owner(globals_)}.{base}", (globals_,
                                                                                       base)
        else:
            return  # builtin, or a local the scope analysis missed
        while attrs and isinstance(value, types.ModuleType):
            if not _is_project_module(value, self.root):
                return  # third-party or stdlib module: identified by name only
            owner_module = value
            value = getattr(value, attrs[0], _MISSING)
            if value is _MISSING:
                return
            name = f"{_global_owner(vars(owner_module))}.{attrs[0]}"
            home = (vars(owner_module), attrs[0])
            attrs = attrs[1:]
        self._object(name, value, home)

    def _attribute_of_class(self, cls: type, attr: str) -> None:
        try:
            value = inspect.getattr_static(cls, attr)
        except AttributeError:
            return  # an instance attribute: part of `self`, which is encoded as an argument
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        elif isinstance(value, property):
            for accessor in (value.fget, value.fset, value.fdel):
                if accessor is not None:
                    self._object(_qualified(accessor), accessor)
            return
        self._object(f"{_qualified(cls)}.{attr}", value)

    def _object(self, name: str, value: Any, home: Home | None = None) -> None:
        if isinstance(value, types.ModuleType):
            return
        if isinstance(value, functools.partial):
            self._object(name, value.func)
            self._value(name, (value.args, value.keywords), home, value)
            return
        if isinstance(value, types.MethodType):  # a bound method: `render = FORMATTER.render`
            self._object(name, value.__func__)
            if not isinstance(value.__self__, type):
                self._object(f"{name}.__self__", value.__self__)
            if home is not None:
                self._definition(name, value, home)
            return
        if callable(value) and not isinstance(value, type) and hasattr(value, "__wrapped__"):
            # A recorded function, or one wrapped by functools.lru_cache/cache/wraps: depend on
            # the code it wraps (whose own decorators are part of its definition).
            try:
                value = inspect.unwrap(value)
            except ValueError:  # a __wrapped__ cycle
                return
        if isinstance(value, type):
            if _is_project_callable(value, self.root):
                self._reach_class(value)
            return
        if isinstance(value, types.FunctionType):
            if id(value) not in self._seen and _is_project_callable(value, self.root):
                self.helpers[_qualified(value)] = self.function_summary(value).digest
            return
        if isinstance(value, _BUILTIN_CALLABLES):
            return  # builtins and C functions are identified by name
        self._value(name, value, home, value)

    def _value(self, name: str, value: Any, home: Home | None, instance: Any) -> None:
        """A value: a constant if it has a canonical encoding, else its definition; an instance
        of a project class counts by its class too."""
        cls = type(instance)
        if _is_project_callable(cls, self.root):
            self._reach_class(cls)
        if isinstance(value, str) and name.rpartition(".")[2] in _MODULE_PATHS:
            # `Path(__file__).parent / "prompts"`: where the checkout is must not count, so
            # the module's own path counts relative to the root (the encoder's rule for paths).
            value = Path(value)
        immutable = _immutable(value)
        if immutable:
            known = _constants.get((self.root, id(value)))
            if known is not None and known[0] is value:
                self.constants[name] = known[1]
                return
        try:
            encoded = self._encoder.encode(value)
        except (Unencodable, RecursionError):
            if home is not None:
                self._definition(name, instance, home)
            return
        self.constants[name] = found = xxh3_128(encoded).hexdigest()
        if immutable:
            _constants[(self.root, id(value))] = (value, found)
        for item in _members_of(value):  # classes in a table are encoded by name only
            if isinstance(item, type):
                self._object(_qualified(item), item)

    def _definition(self, name: str, value: Any, home: Home) -> None:
        """The module-level statements binding ``home``'s name, and what they read."""
        globals_, bare = home
        if (id(globals_), bare) in self._defined:
            return
        self._defined.add((id(globals_), bare))
        statements = [s for filename in _module_files(globals_)
                      for s in binding_statements(filename, bare, globals_)]
        if statements and all(self._imported_from_elsewhere(s, globals_) for s in statements):
            return  # `from typing import Any`: third-party or stdlib, identified by name only
        if not statements:  # bound at run time (globals()[…], setattr): its type at least
            kind = type(value)
            self.definitions[name] = Rendered.of_text(
                f"<bound at run time: {kind.__module__}.{kind.__qualname__}>").digest
            return
        self.definitions[name] = _statements_digest(statements, globals_)
        for statement in statements:
            attributes, chains = _statement_reads(statement)
            self._see_attributes(attributes)
            if isinstance(statement, ast.ImportFrom):
                self._imported_definition(statement, globals_, bare)
            elif not isinstance(statement, ast.Import):
                for chain in chains:
                    if not _is_dunder(chain[0]):  # module metadata (`__name__`, `__file__`)
                        self._reference(chain, globals_, {}, None, frozenset(), name, {})

    def _imported_from_elsewhere(self, statement: ast.stmt, globals_: Mapping[str, Any]
                                 ) -> bool:
        """Whether ``statement`` imports from a module that is not user code."""
        if isinstance(statement, ast.ImportFrom):
            names = [_resolve_import(statement, globals_)]
        elif isinstance(statement, ast.Import):
            names = [alias.name for alias in statement.names]
        else:
            return False
        modules = [sys.modules.get(name or "") for name in names]
        return all(module is not None and not _is_project_module(module, self.root)
                   for module in modules)

    def _imported_definition(self, statement: ast.ImportFrom, globals_: Mapping[str, Any],
                             bare: str) -> None:
        """``from config import FORMATTER``: FORMATTER's definition in ``config`` counts too."""
        module_name_ = _resolve_import(statement, globals_)
        module = sys.modules.get(module_name_ or "")
        if module is None or not _is_project_module(module, self.root):
            return
        for alias in statement.names:
            if (alias.asname or alias.name) == bare:
                value = getattr(module, alias.name, _MISSING)
                if value is not _MISSING:
                    self._object(f"{_global_owner(vars(module))}.{alias.name}", value,
                                 (vars(module), alias.name))

    # -- classes, member by member ------------------------------------------------------------

    def _reach_class(self, cls: type) -> None:
        if id(cls) in self._classes or not _is_project_callable(cls, self.root):
            return
        self._classes[id(cls)] = cls
        self._seen.add(id(cls))
        summary = _cached(cls, "members", _members_summary)
        self._members[id(cls)] = summary.members
        self.helpers[_qualified(cls)] = summary.digest
        for base in cls.__mro__[1:]:
            if base is not object:
                self._object(_qualified(base), base)
        self._walk(summary, _module_globals(cls), {}, None, _qualified(cls))
        for member in sorted(summary.members & self._attributes):
            self._member(cls, member)

    def _see_attributes(self, names: frozenset[str]) -> None:
        """Attribute names used by walked code: the plain methods of reached classes they
        name count (a fixpoint: each new name is checked against each reached class)."""
        new = names - self._attributes
        if not new:
            return
        self._attributes |= new
        for cls in list(self._classes.values()):
            for member in sorted(self._members[id(cls)] & new):
                self._member(cls, member)

    def _member(self, cls: type, member: str) -> None:
        value = vars(cls).get(member, _MISSING)
        if isinstance(value, property):
            for accessor in (value.fget, value.fset, value.fdel):
                if accessor is not None:
                    self._object(_qualified(accessor), accessor)
            return
        function = _function_of(value)
        if function is not None:
            value = function
        if value is not _MISSING:
            self._object(f"{_qualified(cls)}.{member}", value)

    # -- imports inside a function ------------------------------------------------------------

    def _lazy_imports(self, imports: tuple[Import, ...], globals_: Mapping[str, Any]
                      ) -> dict[str, tuple[Any, str, Home | None]]:
        """What the imports inside a function bind, resolved without running the function:
        a module already imported is used as it is; a project module not imported yet is
        imported (never a third-party one)."""
        bound: dict[str, tuple[Any, str, Home | None]] = {}
        for statement in imports:
            if isinstance(statement, ast.ImportFrom):
                target = _resolve_import(statement, globals_)
                module = self._load(target) if target else None
                if module is None:
                    continue
                for alias in statement.names:
                    value = getattr(module, alias.name, _MISSING)
                    if value is _MISSING:
                        value = self._load(f"{target}.{alias.name}") or _MISSING
                    if value is not _MISSING:
                        bound[alias.asname or alias.name] = (
                            value, f"{_global_owner(vars(module))}.{alias.name}",
                            (vars(module), alias.name))
                continue
            for alias in statement.names:
                module = self._load(alias.name)
                if module is None:
                    continue
                top = alias.name.split(".")[0]
                local = alias.asname or top
                value = module if alias.asname else sys.modules.get(top)
                if value is not None:
                    bound[local] = (value, local, None)
        return bound

    def _load(self, name: str) -> types.ModuleType | None:
        module = sys.modules.get(name)
        if module is not None:
            return module
        top = name.split(".")[0]
        if top in sys.modules:
            if not _is_project_module(sys.modules[top], self.root):
                return None
        else:
            try:
                spec = importlib.util.find_spec(top)
            except (ImportError, ValueError):
                return None
            locations = [spec.origin] if spec is not None and spec.origin else []
            locations += list(spec.submodule_search_locations or []) if spec else []
            if not any(_is_user_file(location, self.root) for location in locations):
                return None
        try:
            return importlib.import_module(name)
        except ImportError:
            return None


_MISSING: Any = object()
_members_summary = functools.partial(_class_summary, whole=False)

def _statements_digest(statements: list[ast.stmt], globals_: Mapping[str, Any]) -> str:
    """:func:`statements_digest`, once per process for statements of a parsed module (they are
    held: a module parsed again has new ones). A ``def`` or ``class`` among them is cleaned
    against the module's globals: computed each time."""
    if any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
           for s in statements):
        return statements_digest(statements, globals_)
    key = tuple(map(id, statements))
    known = _definition_digests.get(key)
    if known is not None and all(a is b for a, b in zip(known[0], statements, strict=True)):
        return known[1]
    found = statements_digest(statements, globals_)
    _definition_digests[key] = (tuple(statements), found)
    return found


_definition_digests: dict[tuple[int, ...], tuple[tuple[ast.stmt, ...], str]] = {}


def _statement_reads(statement: ast.stmt) -> tuple[frozenset[str], list[list[str]]]:
    """The attribute names and the name chains a module-level statement reads, once per
    process per statement of a parsed module (held, so that its id is not reused)."""
    known = _statements_read.get(id(statement))
    if known is not None and known[0] is statement:
        return known[1], known[2]
    attributes = attribute_names(statement)
    chains = [] if isinstance(statement, (ast.Import, ast.ImportFrom)) else references(statement)
    _statements_read[id(statement)] = (statement, attributes, chains)
    return attributes, chains


_statements_read: dict[int, tuple[ast.stmt, frozenset[str], list[list[str]]]] = {}

_constants: dict[tuple[Path, int], tuple[Any, str]] = {}
"""(root, id of an immutable value) → (the value, held so that its id is not reused; its
digest): a string or a tuple of numbers read by many helpers is encoded once per process.
Mutable containers are encoded at each walk, as they are now (a dict mutated at run time is
seen by a function first called after the mutation)."""
_PRIMITIVES = (str, bytes, int, float, complex, bool, type(None))


def _immutable(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is a built-in immutable value all the way down (no subclass: its
    encoding could depend on more than its value)."""
    kind = type(value)
    if kind in _PRIMITIVES:
        return True
    if (kind is tuple or kind is frozenset) and depth < 8 and len(value) <= 1_000:
        return all(_immutable(item, depth + 1) for item in value)
    return False

_BUILTIN_CALLABLES = (types.BuiltinFunctionType, types.BuiltinMethodType,
                      types.WrapperDescriptorType, types.MethodWrapperType,
                      types.MethodDescriptorType, types.ClassMethodDescriptorType)


# -- what a name refers to -----------------------------------------------------------------------

def _owner_class(fn: types.FunctionType) -> type | None:
    """The class a method is defined in, resolved through its ``__qualname__``."""
    parts = fn.__qualname__.split(".")[:-1]
    if not parts or "<locals>" in parts:
        return None
    value: Any = fn.__globals__.get(parts[0])
    for part in parts[1:]:
        value = getattr(value, part, None)
    return value if isinstance(value, type) else None


def _closure_values(fn: types.FunctionType) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # an empty cell: the variable is not bound yet
            continue
    return values


_MODULE_PATHS = frozenset({"__file__", "__cached__"})


def _members_of(value: Any) -> list[Any]:
    """The items of a (small) container constant, one level deep."""
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        return []
    return items if len(items) <= 10_000 else []
