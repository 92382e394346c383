"""The dependency walk: from one piece of user code to everything of the user's it reaches.

This module owns :class:`_Walker`. It resolves the names a definition reads (its
:class:`~memo_replay.keys.summaries._Summary`) against its globals, closure, class and in-body
imports, and follows them transitively and with cycle protection into the project's and the
user's own code (:mod:`memo_replay.keys.ownership` decides what that is), collecting helpers
(functions; classes member by member), constants (values with a canonical encoding) and
definitions (the digest of the module-level statements binding any other name). The summaries
it reads are shared; so is what each helper function reaches, transitively (its
:class:`~memo_replay.keys.summaries._Closure`, per project root), which a later walk merges
after checking that every lookup it was made of still finds the same object.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

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
    _qualified,
    _resolve_import,
)
from memo_replay.keys.reads import Import, attribute_names, references
from memo_replay.keys.source import binding_statements
from memo_replay.keys.summaries import (
    Check,
    _cached,
    _class_summary,
    _Closure,
    _closure_for,
    _closure_holds,
    _function_of,
    _function_summary,
    _is_dunder,
    _keep_closure,
    _new_closure,
    _Summary,
)

if TYPE_CHECKING:
    from pathlib import Path

Home = tuple[Mapping[str, Any], str]
"""Where a global name lives: its module's globals and its name there."""


class _Pass:
    """What the walks of one fingerprint share: whether helpers' closures are used at all, the
    helpers whose closure is being computed (reached again, they are walked in place: a
    cycle), the closures already checked, and the encoder of constants."""

    __slots__ = ("checked", "computing", "encoder", "share")

    def __init__(self, root: Path, *, share: bool = True) -> None:
        self.share = share
        self.computing: set[int] = set()
        self.checked: dict[int, tuple[_Closure, bool]] = {}
        self.encoder = Encoder(root, ordered=True)  # a constant's dict order is iteration order


_NESTED = 6
"""How many closures may be computed inside one another; deeper, helpers are walked in place.
A closure computed inside another costs a few more stack frames per level than walking in place,
and the walk recurses once per level of helpers: deep call graphs (click's) hit the recursion
limit where they did not before closures were shared."""


class _Walker:
    """Collects the helpers, constants and definitions reachable from a piece of user code.

    A helper function is not walked again by each recorded function that reaches it: what it
    reaches is computed once per process (by a walker of its own) and kept as a
    :class:`~memo_replay.keys.summaries._Closure`, which every later walk checks (each lookup it
    made finds the same object again) and merges. Merging is exact: what a walk collects is
    the least set closed under "what walked code reads" and "the plain methods of reached
    classes that walked code names", and both rules only ever add, so the union of the
    helpers' closures, closed again under the second rule, is what one walk would collect —
    unless two different things have one name (:attr:`conflicted`): then which one counts
    depends on the order of the walk, and the fingerprint is computed without closures."""

    def __init__(self, root: Path, context: _Pass | None = None) -> None:
        self.root = root
        self.helpers: dict[str, str] = {}
        self._origins: dict[str, int] = {}
        self.constants: dict[str, str] = {}
        self.definitions: dict[str, str] = {}
        self._seen: set[int] = set()
        self._roots: set[int] = set()
        """Functions walked as entry points (the recorded function, ``deps``): never helpers."""
        self._classes: dict[int, type] = {}
        self._members: dict[int, frozenset[str]] = {}
        """Each reached class's plain methods (its summary's ``members``)."""
        self._attributes: set[str] = set()
        self._defined: set[tuple[int, str]] = set()
        self._context = context or _Pass(root)
        self._encoder = self._context.encoder
        self._same: list[Check] = []
        self._equal: list[Check] = []
        self._children: list[_Closure] = []
        self.conflicted = False
        """Two different things were given one name (two module-level lambdas, two closures
        of one factory): which one counts depends on the order of the walk, so the merged
        closures may not give what one walk of everything gives (see :func:`fingerprint`)."""

    # -- entry points -------------------------------------------------------------------------

    def function_summary(self, fn: types.FunctionType) -> _Summary:
        """The summary of ``fn``; walks everything it reads."""
        self._roots.add(id(fn))
        return self._function(fn)

    def whole_class(self, cls: type) -> _Summary:
        """The summary of a whole class (every member counts: ``deps=[cls]``, an argument)."""
        self._seen.add(id(cls))
        summary = _cached(cls, "whole", functools.partial(_class_summary, whole=True))
        self._walk(summary, self._module_globals(cls), {}, None, _qualified(cls))
        for base in self._look(_mro, cls, None)[1:]:
            if base is not object:
                self._object(_qualified(base), base)
        return summary

    def dependency(self, index: int, dep: object) -> tuple[str, str]:
        """Name and hash of an explicit ``deps=`` item (its references are walked too)."""
        target = _unwrap(dep) if callable(dep) and hasattr(dep, "__wrapped__") else dep
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

    # -- lookups, recorded for the closures that reuse this walk --------------------------------

    def _look(self, look: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
        """``look(a, b)``, recorded: a closure made of this walk holds while it is the same."""
        found = look(a, b)
        self._same.append((look, a, b, found))
        return found

    def _look_equal(self, look: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
        """``look(a, b)``, recorded: the closure holds while it is equal."""
        found = look(a, b)
        self._equal.append((look, a, b, found))
        return found

    def _module_globals(self, cls: type) -> Mapping[str, Any]:
        module = self._look(_sys_module, getattr(cls, "__module__", None) or "", None)
        return vars(module) if module is not None else {}

    # -- helpers, each walked once per process --------------------------------------------------

    def _function(self, fn: types.FunctionType) -> _Summary:
        """Walk ``fn`` here (an entry point, or a helper reached again while its own closure
        is being computed)."""
        self._seen.add(id(fn))
        self._look(_code, fn, None)
        self._look_equal(_qualified_name, fn, None)
        summary = _cached(fn, "function", _function_summary)
        owner = self._look(_owner, fn, None)
        if owner is not None:
            self._reach_class(owner)
        self._walk(summary, fn.__globals__, self._closure_values(fn), owner, _qualified(fn))
        return summary

    def _shared(self, fn: types.FunctionType) -> _Closure | None:
        """The closure of helper ``fn`` (checked, or computed now); None when ``fn`` is to be
        walked here: a cycle back to a helper whose closure is being computed, closures
        nested too deep, or sharing turned off."""
        context = self._context
        if not context.share or id(fn) in context.computing or \
                len(context.computing) >= _NESTED:
            return None
        closure = _closure_for(self.root, fn)
        if closure is not None and _closure_holds(closure, context.checked):
            return closure
        return self._compute(fn)

    def _put(self, found: dict[str, str], name: str, digest: str) -> None:
        """``found[name] = digest``, noting a conflict (see :attr:`conflicted`)."""
        if found.get(name, digest) != digest:
            self.conflicted = True
        found[name] = digest

    def _compute(self, fn: types.FunctionType) -> _Closure:
        context = self._context
        walker = _Walker(self.root, context)
        context.computing.add(id(fn))
        try:
            summary = walker.function_summary(fn)
        finally:
            context.computing.discard(id(fn))
        closure = _new_closure(self.root, fn, summary.digest)
        closure.helpers, closure.origins = walker.helpers, walker._origins
        closure.constants, closure.definitions = walker.constants, walker.definitions
        closure.seen = frozenset(walker._seen)
        closure.classes = tuple(walker._classes.values())
        closure.members = walker._members
        closure.attributes = frozenset(walker._attributes)
        closure.defined = frozenset(walker._defined)
        closure.same, closure.equal = tuple(walker._same), tuple(walker._equal)
        closure.children = tuple(walker._children)
        closure.conflicted = walker.conflicted
        context.checked[id(closure)] = (closure, True)
        _keep_closure(self.root, fn, closure)
        return closure

    def _merge(self, fn: types.FunctionType, closure: _Closure) -> None:
        """What walking ``fn`` here would have collected, from its closure."""
        self._children.append(closure)
        self.conflicted |= closure.conflicted
        self._seen.add(id(fn))
        self._seen |= closure.seen
        for name, digest in closure.helpers.items():
            origin = closure.origins[name]
            if origin not in self._roots:  # an entry point is not its own helper
                self._put(self.helpers, name, digest)
                self._origins[name] = origin
        name = _qualified(fn)
        self._put(self.helpers, name, closure.digest)
        self._origins[name] = id(fn)
        for name, digest in closure.constants.items():
            self._put(self.constants, name, digest)
        for name, digest in closure.definitions.items():
            self._put(self.definitions, name, digest)
        self._defined |= closure.defined
        new = [cls for cls in closure.classes if id(cls) not in self._classes]
        for cls in new:
            self._classes[id(cls)] = cls
            self._members[id(cls)] = closure.members[id(cls)]
            self._seen.add(id(cls))
        for cls in new:  # their methods named by code walked here, not by the closure's
            for member in sorted(self._members[id(cls)] & self._attributes):
                self._member(cls, member)
        self._see_attributes(closure.attributes)

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
                       if isinstance(self._look(_global, globals_, n), types.ModuleType)]
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
        else:
            value = self._look(_global, globals_, base)
            if value is _MISSING:
                return  # builtin, or a local the scope analysis missed
            name, home = f"{_global_owner(globals_)}.{base}", (globals_, base)
        while attrs and isinstance(value, types.ModuleType):
            if not _is_project_module(value, self.root):
                return  # third-party or stdlib module: identified by name only
            owner_module = value
            value = self._look(_attribute, value, attrs[0])
            if value is _MISSING:
                return
            name = f"{_global_owner(vars(owner_module))}.{attrs[0]}"
            home = (vars(owner_module), attrs[0])
            attrs = attrs[1:]
        self._object(name, value, home)

    def _attribute_of_class(self, cls: type, attr: str) -> None:
        value = self._look(_static_attribute, cls, attr)
        if value is _MISSING:
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
            value = self._look(_unwrapped, value, None)
            if value is _MISSING:  # a __wrapped__ cycle
                return
        if isinstance(value, type):
            if _is_project_callable(value, self.root):
                self._reach_class(value)
            return
        if isinstance(value, types.FunctionType):
            if id(value) not in self._seen and _is_project_callable(value, self.root):
                closure = self._shared(value)
                if closure is not None:
                    self._merge(value, closure)
                    return
                name = _qualified(value)
                self._put(self.helpers, name, self._function(value).digest)
                self._origins[name] = id(value)
            return
        if isinstance(value, _BUILTIN_CALLABLES):
            return  # builtins and C functions are identified by name
        self._value(name, value, home, value)

    def _value(self, name: str, value: Any, home: Home | None, instance: Any) -> None:
        """A value: a constant if it has a canonical encoding, else its definition; an instance
        of a project class counts by its class too."""
        cls = self._look(_type, instance, None)  # `__class__` can be assigned
        if _is_project_callable(cls, self.root):
            self._reach_class(cls)
        if isinstance(value, str) and name.rpartition(".")[2] in _MODULE_PATHS:
            # `Path(__file__).parent / "prompts"`: where the checkout is must not count, so
            # the module's own path counts relative to the root (the encoder's rule for paths).
            from pathlib import Path

            value = Path(value)
        immutable = _immutable(value)
        if immutable:  # its identity was checked where it was looked up
            known = _constants.get((self.root, id(value)))
            if known is not None and known[0] is value:
                self._put(self.constants, name, known[1])
                return
            found = _encoding(self._encoder, value)
        else:  # a container can be mutated: encoded again whenever a closure is checked
            found = self._look_equal(_encoding, self._encoder, value)
        if found is None:
            if home is not None:
                self._definition(name, instance, home)
            return
        self._put(self.constants, name, found[0])
        if immutable:
            _constants[(self.root, id(value))] = (value, found[0])
        for item in found[1]:  # classes in a table are encoded by name only
            self._object(_qualified(item), item)

    def _definition(self, name: str, value: Any, home: Home) -> None:
        """The module-level statements binding ``home``'s name, and what they read."""
        globals_, bare = home
        if (id(globals_), bare) in self._defined:
            return
        self._defined.add((id(globals_), bare))
        statements = [s for filename in self._look_equal(_files_of, globals_, None)
                      for s in self._look(_bindings, filename, (bare, globals_))]
        if statements and all(self._imported_from_elsewhere(s, globals_) for s in statements):
            return  # `from typing import Any`: third-party or stdlib, identified by name only
        if not statements:  # bound at run time (globals()[…], setattr): its type at least
            kind = type(value)
            self._put(self.definitions, name, Rendered.of_text(
                f"<bound at run time: {kind.__module__}.{kind.__qualname__}>").digest)
            return
        self._put(self.definitions, name, _statements_digest(statements, globals_))
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
        modules = [self._look(_sys_module, name or "", None) for name in names]
        return all(module is not None and not _is_project_module(module, self.root)
                   for module in modules)

    def _imported_definition(self, statement: ast.ImportFrom, globals_: Mapping[str, Any],
                             bare: str) -> None:
        """``from config import FORMATTER``: FORMATTER's definition in ``config`` counts too."""
        module_name_ = _resolve_import(statement, globals_)
        module = self._look(_sys_module, module_name_ or "", None)
        if module is None or not _is_project_module(module, self.root):
            return
        for alias in statement.names:
            if (alias.asname or alias.name) == bare:
                value = self._look(_attribute, module, alias.name)
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
        name = _qualified(cls)
        self._put(self.helpers, name, summary.digest)
        self._origins[name] = id(cls)
        for base in self._look(_mro, cls, None)[1:]:
            if base is not object:
                self._object(_qualified(base), base)
        self._walk(summary, self._module_globals(cls), {}, None, _qualified(cls))
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
        value = self._look(_class_dict_item, cls, member)
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

    def _closure_values(self, fn: types.FunctionType) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
            value = self._look(_cell, cell, None)
            if value is not _MISSING:  # else an empty cell: the variable is not bound yet
                values[name] = value
        return values

    # -- imports inside a function ------------------------------------------------------------

    def _lazy_imports(self, imports: tuple[Import, ...], globals_: Mapping[str, Any]
                      ) -> dict[str, tuple[Any, str, Home | None]]:
        """What the imports inside a function bind (:func:`_resolve_lazy_imports`), recorded:
        a closure holds while they bind the same objects."""
        bound = _resolve_lazy_imports(self.root, imports, globals_)
        self._equal.append((_same_lazy_imports, (self.root, imports, globals_), bound, True))
        return bound


_MISSING: Any = object()


def _resolve_lazy_imports(root: Path, imports: tuple[Import, ...], globals_: Mapping[str, Any]
                          ) -> dict[str, tuple[Any, str, Home | None]]:
    """What the imports inside a function bind, resolved without running the function:
    a module already imported is used as it is; a project module not imported yet is
    imported (never a third-party one)."""
    bound: dict[str, tuple[Any, str, Home | None]] = {}
    for statement in imports:
        if isinstance(statement, ast.ImportFrom):
            target = _resolve_import(statement, globals_)
            module = _load(root, target) if target else None
            if module is None:
                continue
            for alias in statement.names:
                value = getattr(module, alias.name, _MISSING)
                if value is _MISSING:
                    value = _load(root, f"{target}.{alias.name}") or _MISSING
                if value is not _MISSING:
                    bound[alias.asname or alias.name] = (
                        value, f"{_global_owner(vars(module))}.{alias.name}",
                        (vars(module), alias.name))
            continue
        for alias in statement.names:
            module = _load(root, alias.name)
            if module is None:
                continue
            top = alias.name.split(".")[0]
            local = alias.asname or top
            value = module if alias.asname else sys.modules.get(top)
            if value is not None:
                bound[local] = (value, local, None)
    return bound


def _same_lazy_imports(resolving: tuple[Path, tuple[Import, ...], Mapping[str, Any]],
                       bound: dict[str, tuple[Any, str, Home | None]]) -> bool:
    """Whether the imports inside a function still bind what they bound (the same objects)."""
    now = _resolve_lazy_imports(*resolving)
    if now.keys() != bound.keys():
        return False
    for local, (value, name, home) in bound.items():
        value_now, name_now, home_now = now[local]
        if value_now is not value or name_now != name or (home is None) != (home_now is None):
            return False
        if home is not None and home_now is not None and (home_now[0] is not home[0] or
                                                          home_now[1] != home[1]):
            return False
    return True


def _load(root: Path, name: str) -> types.ModuleType | None:
    module = sys.modules.get(name)
    if module is not None:
        return module
    top = name.split(".")[0]
    if top in sys.modules:
        if not _is_project_module(sys.modules[top], root):
            return None
    else:
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return None
        locations = [spec.origin] if spec is not None and spec.origin else []
        locations += list(spec.submodule_search_locations or []) if spec else []
        if not any(_is_user_file(location, root) for location in locations):
            return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# -- the lookups a walk records (``look(a, b)``) --------------------------------------------------

def _global(globals_: Mapping[str, Any], name: str) -> Any:
    return globals_.get(name, _MISSING)


def _attribute(obj: Any, name: str) -> Any:
    return getattr(obj, name, _MISSING)


def _class_dict_item(cls: type, name: str) -> Any:
    return vars(cls).get(name, _MISSING)


def _static_attribute(cls: type, name: str) -> Any:
    """:func:`inspect.getattr_static` (``self.name`` in a method): found in the class's
    ``__mro__``, else in its metaclass's, without running a descriptor or ``__getattr__``."""
    if type(cls) is not type:  # a metaclass may shadow `__dict__`: inspect's full rules
        import inspect

        return inspect.getattr_static(cls, name, _MISSING)
    for klass in type.__dict__["__mro__"].__get__(cls):
        namespace = klass.__dict__
        if name in namespace:
            return namespace[name]
    for klass in (type, object):
        if name in klass.__dict__:
            return klass.__dict__[name]
    return _MISSING


def _mro(cls: type, _: None) -> tuple[type, ...]:
    return cls.__mro__


def _code(fn: types.FunctionType, _: None) -> types.CodeType:
    return fn.__code__


def _qualified_name(obj: Any, _: None) -> str:
    return _qualified(obj)


def _owner(fn: types.FunctionType, _: None) -> type | None:
    return _owner_class(fn)


def _cell(cell: Any, _: None) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return _MISSING


def _sys_module(name: str, _: None) -> types.ModuleType | None:
    return sys.modules.get(name)


def _type(value: Any, _: None) -> type:
    return type(value)


def _unwrapped(value: Any, _: None) -> Any:
    try:
        return _unwrap(value)
    except ValueError:
        return _MISSING


def _files_of(globals_: Mapping[str, Any], _: None) -> list[str]:
    return _module_files(globals_)


def _bindings(filename: str, name_in: tuple[str, Mapping[str, Any]]) -> tuple[ast.stmt, ...]:
    """The statements binding a name (the same tuple while the module's source is unchanged:
    a file edited and parsed again gives new ones)."""
    return binding_statements(filename, name_in[0], name_in[1])


def _encoding(encoder: Encoder, value: Any) -> tuple[str, tuple[type, ...]] | None:
    """A constant's digest and the classes it holds (followed as helpers), or None when it
    has no canonical encoding."""
    try:
        encoded = encoder.encode(value)
    except (Unencodable, RecursionError):
        return None
    return xxh3_128(encoded).hexdigest(), tuple(
        item for item in _members_of(value) if isinstance(item, type))


def _unwrap(value: Any) -> Any:
    """:func:`inspect.unwrap` (a recorded function, an ``lru_cache``): the same rules, without
    importing :mod:`inspect` for them. ``ValueError`` on a ``__wrapped__`` cycle."""
    first, limit = value, sys.getrecursionlimit()
    seen = {id(value): value}  # held: an id is never reused while it is looked up
    while hasattr(value, "__wrapped__") and not (_UNWRAP_STOPS_AT_CLASSES and
                                                 isinstance(value, type)):
        value = value.__wrapped__
        if id(value) in seen or len(seen) >= limit:
            raise ValueError(f"wrapper loop when unwrapping {first!r}")
        seen[id(value)] = value
    return value


_UNWRAP_STOPS_AT_CLASSES = sys.version_info >= (3, 13)
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
