"""Arguments: bound to the signature with defaults applied, hashed one by one, previewed.

``f(1)``, ``f(x=1)`` and ``f(1, y=2)`` (with default ``y=2``) bind to the same arguments and so
share a key. Each argument gets its own hash so a miss can name the argument that differs.
Arguments listed in ``ignore=`` are left out of the key and out of everything stored.
"""

from __future__ import annotations

import enum
import functools
import math
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from xxhash import xxh3_128_digest, xxh3_128_hexdigest

from memo_replay.errors import UnhashableArgument
from memo_replay.keys.encoding import Encoder, Unencodable, builtins_pickle, type_id
from memo_replay.optional_types import (
    dataclass_fields,
    instance_of,
    is_pydantic_model,
    is_temporal,
)

if TYPE_CHECKING:
    import inspect

_IDENTITY_BYTES = 4096
"""Byte strings above this are recognised by their in-place digest, not copied into a pickle."""
_SUPPORTED = (
    "str, bytes, bytearray, memoryview, int, float, bool, None, list, tuple, dict, set, "
    "frozenset, Path, datetime (ZoneInfo or timezone), date, UUID, Decimal, Enum, classes, "
    "dataclasses, pydantic models, NamedTuple, numpy arrays and scalars"
)


_CO_VARARGS, _CO_VARKEYWORDS = 0x04, 0x08  # inspect.CO_VARARGS, inspect.CO_VARKEYWORDS


def _plain_parameters(fn: Callable[..., Any]) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """The parameter names and defaults of a plain Python function — no positional-only,
    keyword-only, ``*args`` or ``**kwargs`` parameters, not wrapped, no ``__signature__`` —
    read from its code object as ``inspect.signature`` would (without importing ``inspect``,
    a few ms of each process's start); None for every other callable."""
    if type(fn) is not types.FunctionType or hasattr(fn, "__wrapped__") \
            or hasattr(fn, "__signature__"):
        return None
    code = fn.__code__
    if code.co_posonlyargcount or code.co_kwonlyargcount \
            or code.co_flags & (_CO_VARARGS | _CO_VARKEYWORDS):
        return None
    names = code.co_varnames[:code.co_argcount]
    defaults = fn.__defaults__ or ()
    return names, dict(zip(names[len(names) - len(defaults):], defaults, strict=True))


class ArgumentSpec:
    """How one recorded function's arguments become key material."""

    def __init__(self, fn: Callable[..., Any], *, function_id: str, ignore: frozenset[str],
                 root: Path) -> None:
        self.function_id = function_id
        self.ignore = ignore
        self._encoder = Encoder(root)
        self._root = root
        self._function = fn
        # The fast path of bind(): plain parameters only (no positional-only, keyword-only,
        # *args or **kwargs); anything unusual goes through Signature.bind.
        self._plain: tuple[str, ...] | None = None
        self._signature: inspect.Signature | None = None
        plain = _plain_parameters(fn)
        if plain is None:
            self._signature = self.signature
            if self._signature is not None and all(
                    p.kind is p.POSITIONAL_OR_KEYWORD for p in self._signature.parameters.values()):
                plain = tuple(self._signature.parameters), {
                    name: p.default for name, p in self._signature.parameters.items()
                    if p.default is not p.empty}
        if plain is not None:
            self._plain, self._defaults = plain
            self._names = frozenset(self._plain)
        parameters = self._signature.parameters.values() if self._signature else ()
        # `ignore=` names that are not parameters may arrive through **kwargs.
        self._var_keyword = next((p.name for p in parameters if p.kind is p.VAR_KEYWORD),
                                 "kwargs" if plain is None and self._signature is None else None)

    @functools.cached_property
    def signature(self) -> inspect.Signature | None:
        """The function's signature (None for callables without one: some builtins and C
        callables), made on demand: a plain function binds without it (see bind)."""
        import inspect

        try:
            if sys.version_info >= (3, 14):
                # Annotations are evaluated lazily (PEP 649): as values, one naming a class
                # imported only under TYPE_CHECKING raises NameError. Binding needs names, kinds
                # and defaults, never annotations: read them as forward references.
                from annotationlib import Format

                return inspect.signature(self._function, annotation_format=Format.FORWARDREF)
            return inspect.signature(self._function)
        except (TypeError, ValueError):
            return None

    @property
    def accepts_any_keyword(self) -> bool:
        return self._var_keyword is not None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        if self._plain is not None:
            return self._plain
        if self.signature is None:
            return ("args", "kwargs")
        return tuple(self.signature.parameters)

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Name → value for every parameter, defaults applied, ``ignore=`` names included.

        A call that does not fit the signature raises ``TypeError`` naming the function, before
        anything runs.
        """
        names = self._plain
        if names is None and self.signature is None:
            return {"args": args, "kwargs": dict(kwargs)}
        if names is not None and len(args) <= len(names):
            fast = dict(zip(names, args, strict=False))
            if not kwargs and len(args) == len(names):
                return fast
            for name, value in kwargs.items():
                if name in fast or name not in self._names:
                    break  # a duplicate or unknown name: let Signature.bind say so
                fast[name] = value
            else:
                for name in names:
                    if name not in fast:
                        if name not in self._defaults:
                            break  # a missing argument: let Signature.bind say so
                        fast[name] = self._defaults[name]
                else:
                    return {name: fast[name] for name in names}
        signature = self.signature
        assert signature is not None  # a function without one returned above
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:  # the call does not fit: say whose signature it missed
            raise TypeError(f"{self.function_id}(): {exc}") from None
        bound.apply_defaults()
        return bound.arguments

    def hashes(self, bound: Mapping[str, Any]) -> dict[str, str]:
        """Name → hex hash of each argument that counts (``ignore=`` names left out)."""
        result: dict[str, str] = {}
        for name, value in self._counted(bound) if self.ignore else bound.items():
            try:
                encoded = self._encoder.encode(value)
            except Unencodable as exc:
                raise self._unhashable(name, exc) from None
            except RecursionError:
                raise self._unhashable(
                    name, Unencodable(type_id(type(value)), "", "self-referential")
                ) from None
            result[name] = xxh3_128_hexdigest(encoded)
        return result

    def identity(self, bound: Mapping[str, Any]) -> bytes:
        """A digest that is equal exactly when the arguments that count are equal: to find a
        key computed before (the key itself needs :meth:`hashes`).

        Built-in values (the common case: strings, numbers, dicts and lists of them) are
        recognised by the C pickler's bytes, which needs no sorting or type checks — equal
        values inserted in another order just get their own identity. Anything else, and large
        byte strings (hashed in place rather than copied), use the canonical encoding.
        """
        counted = dict(self._counted(bound)) if self.ignore else bound
        if not any(type(v) is bytes and len(v) > _IDENTITY_BYTES for v in counted.values()):
            pickled = builtins_pickle(counted)
            if pickled is not None:
                return b"P" + xxh3_128_digest(pickled)
        return b"C" + self.digest(bound)

    def digest(self, bound: Mapping[str, Any]) -> bytes:
        """One digest over the canonical encodings of every argument that counts."""
        parts = []
        for name, value in self._counted(bound) if self.ignore else bound.items():
            try:
                encoded = self._encoder.encode(value)
            except (Unencodable, RecursionError):
                self.hashes(bound)  # raises the UnhashableArgument naming the argument
                raise
            # Both length-prefixed: a **kwargs name may hold any character, NUL included.
            data = name.encode("utf-8", "surrogatepass")
            parts.append(b"%d:%s%d:%s" % (len(data), data, len(encoded), encoded))
        return xxh3_128_digest(b"".join(parts))

    def preview(self, bound: Mapping[str, Any]) -> dict[str, Any]:
        """A bounded, JSON-able summary of the arguments that count, for humans."""
        return {name: preview_value(value, self._root) for name, value in self._counted(bound)}

    def _counted(self, bound: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
        for name, value in bound.items():
            if name in self.ignore:
                continue
            if name == self._var_keyword and self.ignore and isinstance(value, dict):
                value = {k: v for k, v in value.items() if k not in self.ignore}
            yield name, value

    def _unhashable(self, name: str, exc: Unencodable) -> UnhashableArgument:
        where = f"argument `{name}`{exc.path}"
        why = f" ({exc.reason})" if exc.reason else ", which has no stable encoding"
        return UnhashableArgument(
            f"cannot build a key for `{self.function_id}`: {where} is a `{exc.type_name}`{why}. "
            f"Fix it with one of: @recorded(ignore=[{name!r}]) if it does not affect the result; "
            f"a `__memo_key__(self)` method on the type returning a stable value; or pass a "
            f"supported type ({_SUPPORTED}).",
            function=self.function_id,
            parameter=name,
            type_name=exc.type_name,
        )


_MAX_STR = 200
_MAX_ITEMS = 20
_MAX_DEPTH = 4


def preview_value(value: Any, root: Path | None = None, depth: int = 0) -> Any:
    """A JSON-able, size-bounded rendering of ``value``: long strings and big containers are
    summarized, bytes are never copied, unknown objects show only their type."""
    if value is None or (isinstance(value, (bool, int)) and not isinstance(value, enum.Enum)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        if len(value) <= _MAX_STR:
            return value
        return f"{value[:_MAX_STR]}… ({len(value)} chars)"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{type(value).__name__} of {len(value)} bytes>"
    if isinstance(value, enum.Enum):
        return f"{type(value).__qualname__}.{value.name}"
    if isinstance(value, PurePath):
        if root is not None and value.is_absolute() and value.is_relative_to(root):
            return value.relative_to(root).as_posix()
        return value.as_posix()
    if isinstance(value, complex) or is_temporal(value, "date", "time", "timedelta") \
            or instance_of(value, "uuid", "UUID") or instance_of(value, "decimal", "Decimal"):
        return str(value)
    if isinstance(value, type):
        # A project class counts by its fingerprint too: show its start, so that a miss on an
        # edited class reads "recorded <class app.Invoice 1f2e…>, now <class app.Invoice 9c0d…>".
        from memo_replay.keys.class_values import class_fingerprint  # a class argument

        digest = class_fingerprint(value, root) if root is not None else None
        return f"<class {type_id(value)}>" if digest is None else \
            f"<class {type_id(value)} {digest[:8]}…>"
    if depth >= _MAX_DEPTH:
        return f"<{type(value).__name__}…>"
    fields = _fields(value)
    if fields is not None:
        return {"__type__": type_id(type(value)), **_preview_mapping(fields, root, depth)}
    if isinstance(value, Mapping):
        return _preview_mapping(value, root, depth)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
        shown = [preview_value(v, root, depth + 1) for v in items[:_MAX_ITEMS]]
        if len(items) > _MAX_ITEMS:
            shown.append(f"… ({len(items) - _MAX_ITEMS} more)")
        return shown
    return f"<{type_id(type(value))}>"


def _preview_mapping(value: Mapping[Any, Any], root: Path | None, depth: int) -> dict[str, Any]:
    keys = sorted(value, key=str)
    shown = {_preview_key(k): preview_value(value[k], root, depth + 1) for k in keys[:_MAX_ITEMS]}
    if len(keys) > _MAX_ITEMS:
        shown["…"] = f"{len(keys) - _MAX_ITEMS} more"
    return shown


def _preview_key(key: Any) -> str:
    """A mapping key as shown in a preview: bounded like any string, bytes never copied."""
    if isinstance(key, (bytes, bytearray, memoryview)):
        return f"<{type(key).__name__} of {len(key)} bytes>"
    text = str(key)
    return text if len(text) <= _MAX_STR else f"{text[:_MAX_STR]}… ({len(text)} chars)"


def _fields(value: Any) -> dict[str, Any] | None:
    if (fields := dataclass_fields(value)) is not None:
        return fields
    if is_pydantic_model(value):
        return {name: getattr(value, name) for name in type(value).model_fields}
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):
        return dict(zip(getattr(type(value), "_fields"), value, strict=True))  # noqa: B009
    return None
