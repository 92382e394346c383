"""The code fingerprint: what about a function's code a recording depends on.

The function's source is parsed with :mod:`ast`, cleaned of docstrings and of the ``@recorded``
decorator, and rendered with :func:`ast.unparse` — so comments, blank lines, formatting and quote
style do not count, while a renamed variable, a changed literal or a new parameter do. (Never
``ast.dump``: its output differs between Python versions.)

The fingerprint also covers, transitively and with cycle protection, the project's own helper
functions and classes the code references (directly, through module attributes such as
``helpers.normalize``, and through ``self.``/``cls.``), the values of module-level constants it
reads (also as ``prompts.TEMPLATE``), closure values, ``deps=`` and ``version=``. Third-party and
standard-library code is identified by name only, never hashed by source.

Each helper and constant is kept by qualified name, so a miss can say which one changed.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xxhash import xxh3_128

from memo_replay.errors import InvalidOption, warn
from memo_replay.keys.encoding import Encoder, Unencodable
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
            source = _Rendered.of_text(_bytecode_text(fn))
    else:
        kind, source = "package", _Rendered.of_text(_package_identity(fn))
    dep_hashes = dict(walker.dependency(index, dep) for index, dep in enumerate(deps))
    return _assemble(kind, source, walker.helpers, walker.constants, dep_hashes, version)


def _assemble(kind: Kind, source: _Rendered, helpers: dict[str, str],
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

    def function_source(self, fn: types.FunctionType) -> _Rendered | None:
        """Normalized source of ``fn``; walks what it references. None when no source exists."""
        self._seen.add(id(fn))
        node = _parse_definition(fn)
        if node is None:
            return None
        owner = _owner_class(fn)
        self_names = _self_names(node) if owner is not None else set()
        closure = _closure_values(fn)
        for chain in _references(node):
            self._reference(chain, fn.__globals__, closure, owner, self_names, _qualified(fn))
        return _render(node, fn.__globals__)

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
            source = _Rendered.of_text(_bytecode_text(obj) if isinstance(obj, types.FunctionType)
                                       else _qualified(obj))
        return source.digest

    def _class_source(self, cls: type) -> _Rendered | None:
        node = _parse_definition(cls)
        if node is None:
            return None
        module = inspect.getmodule(cls)
        globals_ = vars(module) if module is not None else {}
        for base in cls.__mro__[1:]:
            if base is not object:
                self._object(_qualified(base), base)
        for chain in _references(node):
            self._reference(chain, globals_, {}, None, set(), _qualified(cls))
        return _render(node, globals_)


_MISSING = object()


# -- source handling -----------------------------------------------------------------------------

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _parse_definition(obj: types.FunctionType | type) -> Definition | None:
    """The AST node defining ``obj``, or None when its source is unavailable."""
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


@dataclass(frozen=True)
class _Rendered:
    """A definition's normalized text (for people) and the digest of its canonical form."""

    text: str
    digest: str

    @classmethod
    def of_text(cls, text: str) -> _Rendered:
        return cls(text, xxh3_128(text.encode("utf-8", "surrogatepass")).hexdigest())


def _render(node: Definition, globals_: Mapping[str, Any]) -> _Rendered:
    """A definition without docstrings and without the ``@recorded`` decorator."""
    node.decorator_list = [d for d in node.decorator_list if not _is_recorded(d, globals_)]
    for inner in ast.walk(node):
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = inner.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                inner.body = body[1:] or [ast.Pass()]
    canonical: list[str] = []
    _dump(node, canonical)
    digest = xxh3_128("".join(canonical).encode("utf-8", "surrogatepass")).hexdigest()
    return _Rendered(ast.unparse(node), digest)


def _dump(value: object, out: list[str]) -> None:
    """A canonical structural rendering of an AST, the same on every supported Python.

    Neither ``ast.unparse`` (3.10 writes ``for (i, x) in``, 3.11 ``for i, x in``) nor
    ``ast.dump`` (its defaults and fields vary) is stable across versions. Fields that are None
    or empty lists are skipped, so fields added by later Pythons (``type_params``) do not count
    while they are unused. Positions (``lineno`` …) are attributes, not fields: never included.
    """
    if isinstance(value, ast.AST):
        out.append(type(value).__name__)
        out.append("(")
        for name in value._fields:
            field = getattr(value, name, None)
            if field is None or (isinstance(field, list) and not field):
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


def _references(node: Definition) -> Iterable[list[str]]:
    """Dotted name chains the definition reads and does not bind locally, in source order."""
    local = _bound_names(node)
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

    visitor = Visitor()
    for child in ast.iter_child_nodes(node):
        if child in getattr(node, "decorator_list", ()):
            continue
        visitor.visit(child)
    return found


_SELF_LIKE = frozenset({"self", "cls"})


def _bound_names(node: Definition) -> set[str]:
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
        elif isinstance(inner, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in inner.names)
        elif isinstance(inner, ast.ExceptHandler) and inner.name:
            names.add(inner.name)
    return names


def _self_names(node: Definition) -> set[str]:
    """The first parameter of a method (``self``/``cls`` by convention, any name in fact)."""
    if isinstance(node, ast.ClassDef):
        return set()
    params = [*node.args.posonlyargs, *node.args.args]
    return {params[0].arg} if params else set()


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


def _bytecode_text(fn: types.FunctionType) -> str:
    """A textual fingerprint of a code object (used only where no source exists)."""
    return "<bytecode>\n" + _code_text(fn.__code__)


def _code_text(code: types.CodeType) -> str:
    consts = [
        _code_text(c) if isinstance(c, types.CodeType) else f"{type(c).__name__}:{c!r}"
        for c in code.co_consts
    ]
    return "\n".join((code.co_code.hex(), repr(code.co_names), repr(code.co_varnames), *consts))


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
