"""The code fingerprint: what about a function's code a recording depends on.

This module owns :class:`CodeFingerprint` and the dependency walk. The function's own source is
normalized by :mod:`memo_replay.keys.normalize` (no docstrings, no ``@recorded``, a canonical
structure that formatting and comments do not change); here, the names that source reads are
resolved against its globals, closure, class and in-body imports, and followed transitively and
with cycle protection into the project's (and the user's) own code:

- **helpers**: functions, with their decorators (a decorator and a decorator factory's arguments
  are read by the definition, so they count); classes *per member*: the class without its plain
  methods (bases, decorators, class-level assignments and annotations, dunder methods, methods
  with decorators a framework may call), plus each plain method whose name the walked code uses
  as an attribute anywhere (``x.render``, ``self.render``, ``type(self).render``,
  ``super().render``), on the class and its bases;
- **constants**: values of module-level names with a canonical encoding;
- **definitions**: any other module-level name (an instance, a compiled regex, a namespace, a
  dispatch table of functions) counts by the canonical AST of the module-level statements that
  bind it, and what those statements read; an instance counts by its class too.

What is "own" code is decided by file location: the project's files and user code outside any
installed package (a ``__main__`` script, a notebook cell, ``exec``'d code); the standard library
and site-packages are identified by name (and distribution version) only, never hashed.

Each helper, constant and definition is kept by qualified name, so a miss can say which one
changed. What one definition (function or class) contributes is computed once per process and
shared by every recorded function that reaches it (:class:`_Summary`).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import importlib.util
import inspect
import linecache
import sys
import threading
import types
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xxhash import xxh3_128

from memo_replay.errors import InvalidOption, warn
from memo_replay.keys.encoding import Encoder, Unencodable
from memo_replay.keys.normalize import (
    Import,
    Rendered,
    attribute_names,
    binding_statements,
    bytecode_text,
    clean,
    code_names,
    digest,
    import_bound,
    lazy_imports,
    parse_definition,
    references,
    self_names,
    statements_digest,
)
from memo_replay.project import _package_dir, _stdlib_dirs, is_project_file, module_name

CODE_FRAMING_VERSION = 2
"""Version 2: definitions, decorators, per-member classes, lazy imports, user code, local
annotations and None constants changed what a fingerprint covers."""

Kind = Literal["source", "bytecode", "package"]


@dataclass(frozen=True)
class CodeFingerprint:
    """The code component of a key. ``hash`` covers every other field."""

    hash: str
    kind: Kind
    source: str
    """The normalized source for people (``ast.unparse``; its layout varies by Python)."""
    source_hash: str
    """Hash of the canonical structure of the source — what the key uses."""
    helpers: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, str] = field(default_factory=dict)
    deps: Mapping[str, str] = field(default_factory=dict)
    version: str | None = None
    definitions: Mapping[str, str] = field(default_factory=dict)
    """Module-level names with no canonical value → digest of the statements binding them."""
    framing: int = CODE_FRAMING_VERSION
    """The version of what goes into the fingerprint (entries before it was stored: 1)."""


def fingerprint(fn: Any, *, function_id: str, root: Path, deps: Sequence[object] = (),
                version: str | None = None) -> CodeFingerprint:
    """Fingerprint ``fn`` (the undecorated callable) for the project rooted at ``root``."""
    walker = _Walker(root)
    kind: Kind
    if isinstance(fn, types.FunctionType) and _is_project_callable(fn, root):
        summary = walker.function_summary(fn)
        kind = "bytecode" if summary.bytecode else "source"
        if summary.bytecode:
            warn(f"memo_replay: no source code for `{function_id}` (defined in a REPL, with "
                 f"`python -c` or in a frozen app); its key uses a fingerprint of the bytecode, "
                 f"which differs between Python versions.")
        source = Rendered(summary.text, summary.digest)
    elif isinstance(fn, type) and _is_project_callable(fn, root):
        summary = walker.whole_class(fn)
        kind, source = "source", Rendered(summary.text, summary.digest)
    else:
        kind, source = "package", Rendered.of_text(_package_identity(fn))
    dep_hashes = dict(walker.dependency(index, dep) for index, dep in enumerate(deps))
    return _assemble(kind, source, walker.helpers, walker.constants, dep_hashes, version,
                     walker.definitions)


def _assemble(kind: Kind, source: Rendered, helpers: dict[str, str],
              constants: dict[str, str], deps: dict[str, str], version: str | None,
              definitions: dict[str, str] | None = None) -> CodeFingerprint:
    definitions = definitions or {}
    h = xxh3_128(b"memo-replay-code\x00%d\x00%s\x00" % (CODE_FRAMING_VERSION, kind.encode()))
    h.update(source.digest.encode() + b"\x00")
    for tag, mapping in ((b"h", helpers), (b"c", constants), (b"d", deps), (b"n", definitions)):
        for name in sorted(mapping):
            h.update(b"%s%s=%s\x00" % (tag, name.encode(), mapping[name].encode()))
    h.update(b"v%s" % (version or "").encode())
    return CodeFingerprint(
        hash=h.hexdigest(),
        kind=kind,
        source=source.text,
        source_hash=source.digest,
        helpers=dict(sorted(helpers.items())),
        constants=dict(sorted(constants.items())),
        deps=dict(sorted(deps.items())),
        version=version,
        definitions=dict(sorted(definitions.items())),
    )


# -- what one definition contributes, once per process -------------------------------------------

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


# -- the walk ------------------------------------------------------------------------------------

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
        try:
            encoded = self._encoder.encode(value)
        except (Unencodable, RecursionError):
            if home is not None:
                self._definition(name, instance, home)
            return
        self.constants[name] = xxh3_128(encoded).hexdigest()
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
        self.definitions[name] = statements_digest(statements, globals_)
        for statement in statements:
            self._see_attributes(attribute_names(statement))
            if isinstance(statement, ast.ImportFrom):
                self._imported_definition(statement, globals_, bare)
            elif not isinstance(statement, ast.Import):
                for chain in references(statement):
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
        summary = _cached(cls, "members", functools.partial(_class_summary, whole=False))
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
            members = _cached(cls, "members", functools.partial(_class_summary, whole=False)
                              ).members
            for member in sorted(members & new):
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


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _module_globals(cls: type) -> Mapping[str, Any]:
    module = inspect.getmodule(cls)
    return vars(module) if module is not None else {}


def _module_files(globals_: Mapping[str, Any]) -> list[str]:
    """Where a module's top-level statements are: its file, or for a ``__main__`` without one
    (IPython, Jupyter, ``python -c``) the cells and snippets linecache holds."""
    file = globals_.get("__file__")
    if isinstance(file, str) and file:
        return [file]
    if globals_.get("__name__") != "__main__":
        return []
    return sorted(name for name in list(linecache.cache)
                  if name.startswith(("<ipython-input-", "<string>")) or "ipykernel_" in name)


def _resolve_import(statement: ast.ImportFrom, globals_: Mapping[str, Any]) -> str | None:
    if not statement.level:
        return statement.module
    package = globals_.get("__package__")
    if not package:
        name = str(globals_.get("__name__", ""))
        package = name if "__path__" in globals_ else name.rpartition(".")[0]
    try:
        return importlib.util.resolve_name("." * statement.level + (statement.module or ""),
                                           package)
    except (ImportError, ValueError):
        return None


def _members_of(value: Any) -> list[Any]:
    """The items of a (small) container constant, one level deep."""
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        return []
    return items if len(items) <= 10_000 else []


def _is_user_file(path: str | None, root: Path) -> bool:
    """A source file of the project, or user code outside any installed package (a script
    outside the root, a notebook's cell file): everything but the standard library,
    site-packages and memo_replay itself."""
    if not path:
        return False
    if is_project_file(path, root):
        return True
    if path.startswith("<"):
        return not path.startswith("<frozen")
    try:
        resolved = Path(path).resolve()
    except OSError:
        return False
    if "site-packages" in resolved.parts or "dist-packages" in resolved.parts:
        return False
    if any(resolved.is_relative_to(p) for p in _stdlib_dirs()):
        return False
    return not resolved.is_relative_to(_package_dir()) and resolved.suffix in (".py", ".pyw", "")


def _is_project_module(module: types.ModuleType, root: Path) -> bool:
    file = getattr(module, "__file__", None)
    if file:
        return _is_user_file(file, root)
    # A namespace package (no __init__.py) has no __file__, only __path__ directories.
    return any(_is_user_file(path, root) for path in getattr(module, "__path__", ()))


def _is_project_callable(obj: Any, root: Path) -> bool:
    """Whether ``obj`` (a function or class) is the project's or the user's own code."""
    try:
        file = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except (TypeError, OSError):
        file = None
    if not file:  # a class of `python -c` or of a REPL: no file at all
        return isinstance(obj, (types.FunctionType, type)) and \
            getattr(obj, "__module__", None) == "__main__"
    if file.startswith("<"):  # python -c, a REPL, exec(), an IPython cell
        return isinstance(obj, (types.FunctionType, type)) and not file.startswith("<frozen")
    return _is_user_file(file, root)


def _qualified(obj: Any) -> str:
    return f"{module_name(obj)}.{getattr(obj, '__qualname__', repr(obj))}"


def _global_owner(globals_: Mapping[str, Any]) -> str:
    """The module name of a globals dict, with ``__main__`` named like everywhere else."""
    name = str(globals_.get("__name__", "?"))
    return module_name(types.SimpleNamespace(__module__=name)) if name == "__main__" else name


def _package_identity(fn: Any) -> str:
    """Third-party code is identified by its distribution and version, never its source."""
    module = getattr(fn, "__module__", None) or type(fn).__module__
    name = f"{module}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    top = module.split(".")[0]
    distribution, version = _distribution_of(top)
    return f"<package {distribution}=={version}> {name}" if distribution else f"<stdlib> {name}"


@functools.lru_cache(maxsize=128)
def _distribution_of(top_module: str) -> tuple[str | None, str | None]:
    from importlib import metadata

    names = metadata.packages_distributions().get(top_module)
    if not names:
        # Python 3.10 reads only top_level.txt, which wheels built by flit or hatch lack.
        names = [dist.metadata["Name"] for dist in metadata.distributions()
                 if any(f.parts and f.parts[0] in (top_module, f"{top_module}.py")
                        for f in dist.files or ())][:1]
    if not names:
        return None, None
    try:
        return names[0], metadata.version(names[0])
    except metadata.PackageNotFoundError:
        return names[0], None
