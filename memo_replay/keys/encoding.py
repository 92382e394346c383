"""Canonical, type-tagged encoding of values into bytes, for keys.

The encoding is stable across processes, machines and ``PYTHONHASHSEED``: dict and set order do
not count, ``1``, ``1.0``, ``True`` and ``"1"`` differ, and absolute paths inside the project root
are encoded relative to it. A value with no stable encoding raises :class:`Unencodable`; there is
never a fallback to ``id()`` or ``repr()``.

A class counts by its name, except a class of the project's own (``extract(text, Invoice)``): it
counts by its name and its code fingerprint, and a pydantic model class by its JSON schema too,
so adding a field to ``Invoice`` changes the key. Computed once per class per process.

Flat containers of built-in scalars (a dict of 1,000 strings and numbers, a list of ids) take a
fast path: their exact element types are checked in C, a dict's keys are sorted, and the C
pickler in "fast" mode (no memo, so shared string objects do not change the bytes) writes them.
Whether a value takes the fast path depends only on the value, and fast encodings carry their own
tags (``P``, ``Q``), so they never collide with the general encoding.

Bump :data:`ENCODING_VERSION` whenever the bytes produced for some value change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import io
import json
import pickle
import sys
import threading
import weakref
from pathlib import Path, PurePath
from typing import Any

from xxhash import xxh3_128, xxh3_128_digest

from memo_replay.optional_types import (
    instance_of,
    is_numpy_array,
    is_numpy_scalar,
    is_pydantic_model,
    is_pydantic_model_class,
)
from memo_replay.project import is_project_file, module_name

ENCODING_VERSION = 3

# Above this size a bytes-like value contributes its xxh3 digest instead of a copy of itself.
_INLINE_LIMIT = 4096
_MAX_DEPTH = 100


class Unencodable(Exception):
    """Internal: a value has no canonical encoding. ``path`` locates it inside the argument."""

    def __init__(self, type_name: str, path: str = "", reason: str = "") -> None:
        super().__init__(type_name)
        self.type_name = type_name
        self.path = path
        self.reason = reason


def type_id(tp: type) -> str:
    """``module.qualname`` of a type, the identity used in tags and entries (a script's class
    is named like the module the script is when imported, as functions are)."""
    return f"{module_name(tp)}.{tp.__qualname__}"


class Encoder:
    """Encodes values canonically. ``root`` makes absolute paths under it root-relative.

    With ``ordered=True`` a dict's insertion order counts (its own tag, ``o``): for module-level
    constants, whose iteration order can change what the code does (a table of few-shot
    examples joined into a prompt). Arguments use the default, where it does not count.
    """

    __slots__ = ("_ordered", "_root")

    def __init__(self, root: PurePath | None = None, *, ordered: bool = False) -> None:
        self._root = root
        self._ordered = ordered

    def encode(self, value: object) -> bytes:
        tp = type(value)
        if tp is str:  # the commonest argument, and the same bytes _encode writes
            data = value.encode("utf-8", "surrogatepass")  # type: ignore[attr-defined]
            return b"s%d:%s" % (len(data), data)
        if (tp is dict and not self._ordered) or tp is list or tp is tuple:
            fast = _fast_container(value)
            if fast is not None:
                return fast
        out = bytearray()
        self._encode(value, out, 0)
        return bytes(out)

    def _encode(self, value: Any, out: bytearray, depth: int) -> None:
        # Exact-type checks first: they are the common case and the cheapest test.
        tp = type(value)
        if tp is str:
            data = value.encode("utf-8", "surrogatepass")
            out += b"s%d:" % len(data)
            out += data
        elif tp is int:
            out += b"i%d;" % value
        elif tp is bool:
            out += b"T" if value else b"F"
        elif value is None:
            out += b"N"
        elif tp is float:
            out += b"f%s;" % repr(value).encode()
        elif tp is bytes:
            self._bytes(b"b", value, out)
        elif tp is list or tp is tuple:
            self._sequence(b"l" if tp is list else b"t", value, out, depth)
        elif tp is dict:
            self._dict(value, out, depth)
        else:
            self._other(value, out, depth)

    def _other(self, value: Any, out: bytearray, depth: int) -> None:
        tp = type(value)
        memo_key = getattr(tp, "__memo_key__", None)
        if memo_key is not None and not isinstance(value, type):
            out += b"K%s:" % type_id(tp).encode()
            self._nested(memo_key(value), out, depth, ".__memo_key__()")
        elif isinstance(value, enum.Enum):
            out += b"E%s:" % type_id(tp).encode()
            self._nested(value.value, out, depth, ".value")
        elif isinstance(value, bool):
            out += b"T" if value else b"F"
        elif isinstance(value, int):
            out += b"i%d;" % int(value)
        elif isinstance(value, float):
            out += b"f%s;" % repr(float(value)).encode()
        elif isinstance(value, str):
            self._encode(str(value), out, depth)
        elif isinstance(value, bytes):
            self._bytes(b"b", bytes(value), out)
        elif isinstance(value, (bytearray, memoryview)):
            self._bytes(b"y", value, out)
        elif isinstance(value, type):
            self._class(value, out)
        elif is_pydantic_model(value):
            fields = {name: getattr(value, name) for name in type(value).model_fields}
            out += b"M%s:" % type_id(tp).encode()
            self._mapping(b"d", fields, out, depth)
        elif dataclasses.is_dataclass(value):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            out += b"D%s:" % type_id(tp).encode()
            self._mapping(b"d", fields, out, depth)
        elif isinstance(value, tuple) and hasattr(tp, "_fields"):
            out += b"n%s:" % type_id(tp).encode()
            self._mapping(b"d", dict(zip(tp._fields, value, strict=True)), out, depth)
        elif isinstance(value, (list, tuple)):
            self._sequence(b"l" if isinstance(value, list) else b"t", value, out, depth)
        elif isinstance(value, dict):
            self._dict(value, out, depth)
        elif isinstance(value, (set, frozenset)):
            self._set(b"Z" if isinstance(value, frozenset) else b"S", value, out, depth)
        elif isinstance(value, PurePath):
            out += b"p%s;" % self._path(value).encode("utf-8", "surrogatepass")
        elif isinstance(value, dt.datetime):
            out += b"dt%s;" % value.isoformat().encode()
        elif isinstance(value, dt.date):
            out += b"da%s;" % value.isoformat().encode()
        elif isinstance(value, dt.time):
            out += b"ti%s;" % value.isoformat().encode()
        elif isinstance(value, dt.timedelta):
            out += b"td%d,%d,%d;" % (value.days, value.seconds, value.microseconds)
        elif instance_of(value, "uuid", "UUID"):
            out += b"u%s;" % value.hex.encode()
        elif instance_of(value, "decimal", "Decimal"):
            out += b"x%s;" % str(value).encode()
        elif isinstance(value, complex):
            out += b"c%s;" % repr(value).encode()
        elif is_numpy_array(value):
            self._ndarray(value, out, depth)
        elif is_numpy_scalar(value):
            out += b"g%s:" % value.dtype.str.encode()
            self._nested(value.item(), out, depth, ".item()")
        else:
            raise Unencodable(type_id(tp))

    def _class(self, cls: type, out: bytearray) -> None:
        """A class: by name when it is not the project's; else by name and fingerprint."""
        digest = _project_class_digest(cls, self._root) if self._root is not None else None
        if digest is None:
            out += b"C%s;" % type_id(cls).encode()
        else:
            out += b"G%s:%s;" % (type_id(cls).encode(), digest)

    def _nested(self, value: object, out: bytearray, depth: int, where: Where) -> None:
        if depth >= _MAX_DEPTH:
            raise Unencodable(type_id(type(value)), _describe(where),
                              "nested too deeply (self-referential?)")
        try:
            self._encode(value, out, depth + 1)
        except Unencodable as exc:
            exc.path = _describe(where) + exc.path
            raise

    def _part(self, value: object, depth: int, where: Where) -> bytes:
        """The encoding of one element on its own (to sort elements by their encoding)."""
        part = bytearray()
        self._nested(value, part, depth, where)
        return bytes(part)

    def _bytes(self, tag: bytes, value: bytes | bytearray | memoryview, out: bytearray) -> None:
        size = value.nbytes if isinstance(value, memoryview) else len(value)
        if size > _INLINE_LIMIT:
            # Hashing in place avoids copying a large buffer into the key material.
            out += tag.upper() + b"%d:" % size
            out += xxh3_128_digest(value)
        else:
            out += tag + b"%d:" % size
            out += value

    def _sequence(self, tag: bytes, value: list[Any] | tuple[Any, ...], out: bytearray,
                  depth: int) -> None:
        out += tag + b"%d:" % len(value)
        for index, item in enumerate(value):
            self._nested(item, out, depth, ("index", index))

    def _dict(self, value: dict[Any, Any], out: bytearray, depth: int) -> None:
        if not self._ordered:
            self._mapping(b"d", value, out, depth)
            return
        out += b"o%d:" % len(value)
        for k, v in value.items():
            out += self._part(k, depth, ("key", k))
            out += self._part(v, depth, ("item", k))

    def _mapping(self, tag: bytes, value: dict[Any, Any], out: bytearray, depth: int) -> None:
        pairs = sorted(
            (self._part(k, depth, ("key", k)), self._part(v, depth, ("item", k)))
            for k, v in value.items()
        )
        out += tag + b"%d:" % len(pairs)
        for encoded_key, encoded_value in pairs:
            out += encoded_key
            out += encoded_value

    def _set(self, tag: bytes, value: set[Any] | frozenset[Any], out: bytearray,
             depth: int) -> None:
        items = sorted(self._part(item, depth, "{…}") for item in value)
        out += tag + b"%d:" % len(items)
        for encoded in items:
            out += encoded

    def _path(self, value: PurePath) -> str:
        if self._root is not None and value.is_absolute():
            try:
                return "<root>/" + value.relative_to(self._root).as_posix()
            except ValueError:
                pass
        return value.as_posix()

    def _ndarray(self, value: Any, out: bytearray, depth: int) -> None:
        if value.dtype.hasobject:
            out += b"A%s:" % str(value.shape).encode()
            self._nested(value.tolist(), out, depth, ".tolist()")
            return
        import numpy  # type: ignore[import-not-found,unused-ignore]

        contiguous = numpy.ascontiguousarray(value)
        out += b"A%s%s:" % (value.dtype.str.encode(), str(value.shape).encode())
        out += xxh3_128_digest(contiguous.data)


_FLAT = frozenset({str, int, float, bool, type(None), bytes})
"""Exact scalar types a fast-path container may hold."""


class _BuiltinsOnly(pickle.Pickler):
    """Pickles built-in values only: the C pickler asks ``reducer_override`` about every
    object that is not an exact None/bool/int/float/str/bytes/bytearray/list/tuple/dict/set/
    frozenset, before it would call any of that object's code — and this one refuses."""

    def reducer_override(self, obj: Any) -> Any:
        raise _NotBuiltin


class _NotBuiltin(Exception):
    pass


def _refuse_buffer(buffer: Any) -> bool:
    # A PickleBuffer would be written like the bytes it wraps: handed here out of band, refused.
    raise _NotBuiltin


def builtins_pickle(value: Any) -> bytes | None:
    """The C pickler's bytes for ``value`` when it holds built-in values only, else None.

    Without the memo ("fast" mode), so the bytes depend on the values, not on which objects
    share them. Injective — equal bytes mean equal values of the same types — but not
    canonical: a dict's or set's order shows. Good to recognise a value seen before, never as
    a key by itself.
    """
    buffer = io.BytesIO()
    pickler = _BuiltinsOnly(buffer, protocol=5, buffer_callback=_refuse_buffer)
    pickler.fast = True
    try:
        pickler.dump(value)
    except (_NotBuiltin, RecursionError, ValueError, pickle.PicklingError):
        return None  # an object, a cycle ("fast mode: can't pickle cyclic objects")
    return buffer.getvalue()


def _fast_container(value: Any) -> bytes | None:
    """The fast-path encoding of a flat container of built-in scalars, or None."""
    if type(value) is dict:
        key_types = set(map(type, value))
        if not (_FLAT.issuperset(key_types) and _FLAT.issuperset(map(type, value.values()))):
            return None
        if float in key_types and any(k != k for k in value):
            return None  # NaN keys sort in insertion order: the general path orders them
        try:
            keys = sorted(value)
        except TypeError:  # keys of several kinds (str and int)
            return None
        tag, value = b"Q", (keys, list(map(value.__getitem__, keys)))
    elif _FLAT.issuperset(map(type, value)):
        tag = b"P"
    else:
        return None
    pickled = builtins_pickle(value)  # exact scalars only: canonical once the keys are sorted
    return None if pickled is None else tag + pickled


Where = str | tuple[str, Any]
"""Where an element sits in its parent, formatted only when encoding fails (hot path)."""


def _describe(where: Where) -> str:
    if isinstance(where, str):
        return where
    kind, position = where
    if kind == "index":
        return f"[{position}]"
    return f"[{position!r}] (key)" if kind == "key" else f"[{position!r}]"


# -- project classes as values --------------------------------------------------------------------
#
# A class passed as an argument — `extract(text, Invoice)`, a structured-output schema — is part
# of what the call computes: adding a field to `Invoice` changes the answer. So a class whose
# module is a project file counts by its code fingerprint (and a pydantic model also by its JSON
# schema, which is what a model is shown), not only by its name. Third-party and standard-library
# classes keep counting by name.

_class_digests: weakref.WeakKeyDictionary[type, dict[PurePath, bytes | None]] = \
    weakref.WeakKeyDictionary()
"""Per process: class → root → its digest (None: not a project class). Computed once, on the
first encoding of the class, like the code fingerprint of a function."""
_in_progress = threading.local()
"""The classes being fingerprinted on this thread: a class reached again while its own
fingerprint is computed (a registry constant holding it) counts by name there."""


def class_fingerprint(cls: type, root: PurePath) -> str | None:
    """What a class of the project's own counts by, besides its name (hex; the key material
    holds it); None for a class that counts by name only (standard library, site-packages)."""
    digest = _project_class_digest(cls, root)
    return None if digest is None else digest.decode()


def _project_class_digest(cls: type, root: PurePath) -> bytes | None:
    """Hex digest of a project class's fingerprint (and pydantic schema); None for a class
    that is not the project's own."""
    try:
        per_root = _class_digests.get(cls)
    except TypeError:  # a class that cannot be weakly referenced (some C extension types)
        return None
    if per_root is not None and root in per_root:
        return per_root[root]
    stack: list[type] | None = getattr(_in_progress, "stack", None)
    if stack is None:
        stack = _in_progress.stack = []
    if cls in stack:
        return None  # a cycle: the outer computation already covers this class
    stack.append(cls)
    try:
        digest = _compute_class_digest(cls, Path(root))
    finally:
        stack.pop()
    if not stack:
        # Only a computation that started at this class is remembered: one made inside another
        # class's (which counts that class by name) must not become what this class is.
        _class_digests.setdefault(cls, {})[root] = digest
    return digest


def _compute_class_digest(cls: type, root: Path) -> bytes | None:
    if not _is_own_class(cls, root):
        return None
    h = xxh3_128()
    h.update(_code_digest(cls, root).encode())
    # Plain values in the class's own namespace, like a function's closure values: two classes
    # with one source and one name (made by a factory, `value = n`) are not the same class.
    encoder = Encoder(root)
    for name, value in sorted(vars(cls).items()):
        if not (name.startswith("__") and name.endswith("__")) and _plain(value):
            h.update(b"\x00a%s=%s" % (name.encode("utf-8", "surrogatepass"),
                                      encoder.encode(value)))
    if is_pydantic_model_class(cls):
        h.update(b"\x00schema\x00")
        h.update(_pydantic_schema(cls))
    return h.hexdigest().encode()


_PLAIN_SCALARS = (str, bytes, int, float, complex, bool, type(None))


def _plain(value: object, depth: int = 0) -> bool:
    """An immutable value: a scalar, an enum member, or a tuple or frozenset of such values."""
    if isinstance(value, (*_PLAIN_SCALARS, enum.Enum)):
        return True
    if type(value) in (tuple, frozenset) and depth < 4:
        return all(_plain(item, depth + 1) for item in value)  # type: ignore[attr-defined]
    return False


def _is_own_class(cls: type, root: Path) -> bool:
    """A class of a project file, or of user code run as ``__main__`` (a script, ``python -c``,
    a notebook); not one of the standard library, site-packages or memo_replay."""
    if cls.__module__ == "__main__":
        return True
    module = sys.modules.get(cls.__module__)
    return is_project_file(getattr(module, "__file__", None), root)


def _code_digest(cls: type, root: Path) -> str:
    from memo_replay.keys.code import fingerprint  # imported here: code.py imports this module

    return fingerprint(cls, function_id=type_id(cls), root=root).hash


def _pydantic_schema(cls: type) -> bytes:
    """The canonical JSON schema of a pydantic model class (what a model is shown of it)."""
    import pydantic

    try:
        schema = cls.model_json_schema()  # type: ignore[attr-defined]
    except pydantic.PydanticUserError as exc:  # a field type with no JSON schema
        import logging  # not at import: `import memo_replay` stays light

        logging.getLogger(__name__).debug(
            "no JSON schema for %s (%s): its code fingerprint alone counts", type_id(cls), exc)
        return b"<no schema>"
    return json.dumps(schema, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
