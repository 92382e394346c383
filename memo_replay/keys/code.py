"""The code fingerprint: what about a function's code a recording depends on.

This module owns :class:`CodeFingerprint` and the dependency walk. The function's own source is
normalized by :mod:`memo_replay.keys.normalize` (no docstrings, no ``@recorded``, a canonical
structure that formatting and comments do not change); here, the names that source reads are
resolved against its globals, closure and class, and followed transitively and with cycle
protection into the project's own helper functions and classes (directly, through module
attributes such as ``helpers.normalize``, and through ``self.``/``cls.``). The values of
module-level constants it reads (also as ``prompts.TEMPLATE``), closure values, ``deps=`` and
``version=`` count too. What belongs to the project is decided by file location; third-party and
standard-library code is identified by name (and distribution version) only, never hashed by
source.

Each helper and constant is kept by qualified name, so a miss can say which one changed.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xxhash import xxh3_128

from memo_replay.errors import InvalidOption, warn
from memo_replay.keys.encoding import Encoder, Unencodable
from memo_replay.keys.normalize import (
    Rendered,
    bytecode_text,
    parse_definition,
    references,
    render,
    self_names,
)
from memo_replay.project import is_project_file, module_name

CODE_FRAMING_VERSION = 1

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


def fingerprint(fn: Any, *, function_id: str, root: Path, deps: Sequence[object] = (),
                version: str | None = None) -> CodeFingerprint:
    """Fingerprint ``fn`` (the undecorated callable) for the project rooted at ``root``."""
    walker = _Walker(root)
    if _is_project_callable(fn, root):
        source = walker.function_source(fn)
        kind: Kind = "source" if source is not None else "bytecode"
        if source is None:
            warn(f"memo_replay: no source code for `{function_id}` (defined in a REPL, with "
                 f"`python -c` or in a frozen app); its key uses a fingerprint of the bytecode, "
                 f"which differs between Python versions.")
            source = Rendered.of_text(bytecode_text(fn))
    else:
        kind, source = "package", Rendered.of_text(_package_identity(fn))
    dep_hashes = dict(walker.dependency(index, dep) for index, dep in enumerate(deps))
    return _assemble(kind, source, walker.helpers, walker.constants, dep_hashes, version)


def _assemble(kind: Kind, source: Rendered, helpers: dict[str, str],
              constants: dict[str, str], deps: dict[str, str], version: str | None
              ) -> CodeFingerprint:
    h = xxh3_128(b"memo-replay-code\x00%d\x00%s\x00" % (CODE_FRAMING_VERSION, kind.encode()))
    h.update(source.digest.encode() + b"\x00")
    for tag, mapping in ((b"h", helpers), (b"c", constants), (b"d", deps)):
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
    )


class _Walker:
    """Collects the helpers and constants reachable from a piece of project code."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.helpers: dict[str, str] = {}
        self.constants: dict[str, str] = {}
        self._seen: set[int] = set()
        self._encoder = Encoder(root)

    # -- entry points -------------------------------------------------------------------------

    def function_source(self, fn: types.FunctionType) -> Rendered | None:
        """Normalized source of ``fn``; walks what it references. None when no source exists."""
        self._seen.add(id(fn))
        node = parse_definition(fn)
        if node is None:
            return None
        owner = _owner_class(fn)
        receivers = self_names(node) if owner is not None else set()
        closure = _closure_values(fn)
        for chain in references(node):
            self._reference(chain, fn.__globals__, closure, owner, receivers, _qualified(fn))
        return render(node, fn.__globals__)

    def dependency(self, index: int, dep: object) -> tuple[str, str]:
        """Name and hash of an explicit ``deps=`` item (its references are walked too)."""
        target = inspect.unwrap(dep) if callable(dep) and hasattr(dep, "__wrapped__") else dep
        if isinstance(target, (types.FunctionType, type)):
            self._seen.discard(id(target))
            return _qualified(target), self._code_digest(target) or ""
        try:
            return f"deps[{index}]", xxh3_128(self._encoder.encode(dep)).hexdigest()
        except Unencodable as exc:
            raise InvalidOption(
                f"deps[{index}] is a `{exc.type_name}` with no stable encoding; pass a function, "
                f"a class or a plain value (str, number, tuple, frozen container, enum)"
            ) from None

    # -- resolution ---------------------------------------------------------------------------

    def _reference(self, chain: list[str], globals_: Mapping[str, Any],
                   closure: Mapping[str, Any], owner: type | None, self_names: set[str],
                   scope: str) -> None:
        base, attrs = chain[0], chain[1:]
        if base in self_names and owner is not None:
            if attrs:
                self._attribute_of_class(owner, attrs[0])
            return
        if base in closure:
            value, name = closure[base], f"{scope}.<closure>.{base}"
        elif base in globals_:
            value, name = globals_[base], f"{_global_owner(globals_)}.{base}"
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
            attrs = attrs[1:]
        self._object(name, value)

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

    def _object(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType):
            return
        if isinstance(value, functools.partial):
            self._object(name, value.func)
            self._object(name, (value.args, value.keywords))
            return
        if callable(value) and not isinstance(value, type) and hasattr(value, "__wrapped__"):
            # A recorded function, or one wrapped by functools.lru_cache/cache/wraps: depend on
            # the code it wraps (an lru_cache wrapper is not a FunctionType at all).
            try:
                value = inspect.unwrap(value)
            except ValueError:  # a __wrapped__ cycle
                return
        if isinstance(value, (types.FunctionType, type)):
            if id(value) in self._seen or not _is_project_callable(value, self.root):
                return
            digest = self._code_digest(value)
            if digest is not None:
                self.helpers[_qualified(value)] = digest
            return
        if callable(value):
            return  # builtins, bound methods of objects, third-party callables
        try:
            encoded = self._encoder.encode(value)
        except (Unencodable, RecursionError):
            return  # an object (a client, a logger, …): not a constant
        self.constants[name] = xxh3_128(encoded).hexdigest()

    def _code_digest(self, obj: types.FunctionType | type) -> str | None:
        """Hash of a helper's normalized source; walks what the helper references."""
        if id(obj) in self._seen:
            return None
        self._seen.add(id(obj))
        source = self._class_source(obj) if isinstance(obj, type) else self.function_source(obj)
        if source is None:
            source = Rendered.of_text(bytecode_text(obj) if isinstance(obj, types.FunctionType)
                                      else _qualified(obj))
        return source.digest

    def _class_source(self, cls: type) -> Rendered | None:
        node = parse_definition(cls)
        if node is None:
            return None
        module = inspect.getmodule(cls)
        globals_ = vars(module) if module is not None else {}
        for base in cls.__mro__[1:]:
            if base is not object:
                self._object(_qualified(base), base)
        for chain in references(node):
            self._reference(chain, globals_, {}, None, set(), _qualified(cls))
        return render(node, globals_)


_MISSING = object()


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


def _is_project_module(module: types.ModuleType, root: Path) -> bool:
    file = getattr(module, "__file__", None)
    if file:
        return is_project_file(file, root)
    # A namespace package (no __init__.py) has no __file__, only __path__ directories.
    return any(is_project_file(path, root) for path in getattr(module, "__path__", ()))


def _is_project_callable(obj: Any, root: Path) -> bool:
    try:
        file = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except (TypeError, OSError):
        return False
    if file.startswith("<"):  # python -c, a REPL, exec(): local code without a file
        return isinstance(obj, types.FunctionType)
    return is_project_file(file, root)


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
