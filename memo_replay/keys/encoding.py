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

import enum
import io
import json
import pickle
import struct
import sys
from collections import OrderedDict, defaultdict
from pathlib import (
    Path,
    PosixPath,
    PurePath,
    PurePosixPath,
    PureWindowsPath,
    WindowsPath,
)
from typing import TYPE_CHECKING, Any

from xxhash import xxh3_128_digest

from memo_replay.optional_types import (
    dataclass_fields,
    instance_of,
    is_numpy_array,
    is_numpy_scalar,
    is_pydantic_model,
)
from memo_replay.project import module_name

if TYPE_CHECKING:
    import datetime as dt

ENCODING_VERSION = 4

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

    Every variable-length field is length-prefixed (``<len>:<bytes>``) or a fixed-size digest,
    and every value starts with its tag, so encodings are self-delimiting: a concatenation of
    them can be split back into the values it came from (no ``;``-in-a-name collisions).
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
            if value.bit_length() < _DECIMAL_BITS:  # inline: the common case, no call
                out += b"i%d;" % value
            else:
                _int(value, out)
        elif tp is bool:
            out += b"T" if value else b"F"
        elif value is None:
            out += b"N"
        elif tp is float:
            if value == value:  # inline: the common case (NaN: sign and payload, below)
                out += b"f%s;" % repr(value).encode()
            else:
                _float(value, out)
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
            _name(b"K", type_id(tp), out)
            self._nested(memo_key(value), out, depth, ".__memo_key__()")
        elif isinstance(value, enum.Enum):
            _name(b"E", type_id(tp), out)
            self._nested(value.value, out, depth, ".value")
        elif isinstance(value, type):
            self._class(value, out)
        elif is_pydantic_model(value):
            self._pydantic(value, out, depth)
        elif (fields := dataclass_fields(value)) is not None:
            _name(b"D", type_id(tp), out)
            self._mapping(b"d", fields, out, depth)
        elif isinstance(value, tuple) and hasattr(tp, "_fields"):
            _name(b"n", type_id(tp), out)
            self._mapping(b"d", dict(zip(tp._fields, value, strict=True)), out, depth)
        elif is_numpy_array(value):
            self._ndarray(value, out, depth)
        elif is_numpy_scalar(value):
            self._numpy_scalar(value, out)
        elif isinstance(value, (set, frozenset)):
            base: type = frozenset if isinstance(value, frozenset) else set
            self._subclass(tp, base, out)
            self._set(b"Z" if base is frozenset else b"S", value, out, depth)
        elif isinstance(value, PurePath):
            self._path(value, out)
        elif (datetime := sys.modules.get("datetime")) is not None and isinstance(
                value, (datetime.date, datetime.time, datetime.timedelta)):
            self._temporal(value, datetime, out)  # such a value means datetime is imported
        elif instance_of(value, "uuid", "UUID"):
            self._subclass(tp, sys.modules["uuid"].UUID, out)
            out += b"u%s;" % value.hex.encode()
        elif instance_of(value, "decimal", "Decimal"):
            self._subclass(tp, sys.modules["decimal"].Decimal, out)
            out += b"x%s;" % str(value).encode()
        # Subclasses of built-in values: their exact type, then their built-in value — read
        # through the base type's own methods, never the subclass's (`str(value)` would call an
        # overridden __str__ and drop what the value is).
        elif isinstance(value, str):
            self._subclass(tp, str, out)
            self._encode(str.__str__(value), out, depth)
        elif isinstance(value, int):  # bool cannot be subclassed; IntEnum is an Enum above
            self._subclass(tp, int, out)
            _int(int.__int__(value), out)
        elif isinstance(value, float):
            self._subclass(tp, float, out)
            _float(float.__float__(value), out)
        elif isinstance(value, complex):
            self._subclass(tp, complex, out)
            out += b"c%s;" % repr(complex(value.real, value.imag)).encode()
        elif isinstance(value, bytes):
            self._subclass(tp, bytes, out)
            self._bytes(b"b", bytes.__getitem__(value, slice(None)), out)
        elif isinstance(value, bytearray):
            self._subclass(tp, bytearray, out)
            self._bytes(b"y", value, out)
        elif isinstance(value, memoryview):
            self._memoryview(value, out)
        elif isinstance(value, (list, tuple)):
            base = list if isinstance(value, list) else tuple
            self._subclass(tp, base, out)
            self._sequence(b"l" if base is list else b"t", value, out, depth)
        elif isinstance(value, dict):
            self._subclass(tp, dict, out)
            if isinstance(value, defaultdict):  # what a missing key reads counts too
                self._nested(value.default_factory, out, depth, ".default_factory")
            if isinstance(value, OrderedDict):  # its == counts the order: so does its key
                self._ordered_items(value, out, depth)
            else:
                self._dict(value, out, depth)
        else:
            raise Unencodable(type_id(tp))

    def _subclass(self, tp: type, base: type, out: bytearray) -> None:
        """Tags a subclass of a built-in value type with its exact type (``U``)."""
        if tp is not base:
            _name(b"U", type_id(tp), out)

    def _class(self, cls: type, out: bytearray) -> None:
        """A class: by name when it is not the project's; else by name and fingerprint."""
        if self._root is None:
            digest = None
        else:
            from memo_replay.keys.class_values import project_class_digest  # classes only

            digest = project_class_digest(cls, self._root)
        if digest is None:
            name = type_id(cls)
            if ";" in name:  # `type("a;b", ...)`: length-prefixed under its own tag
                _name(b"H", name, out)
            else:  # ends at the first `;`: self-delimiting (and unchanged since format 2)
                out += b"C%s;" % name.encode("utf-8", "surrogatepass")
        else:
            _name(b"G", type_id(cls), out)
            _name(b"", digest.decode(), out)

    def _pydantic(self, value: Any, out: bytearray, depth: int) -> None:
        # What pydantic's own == compares: the fields, the extra fields of `extra="allow"`
        # and the private attributes.
        fields = {name: getattr(value, name) for name in type(value).model_fields}
        _name(b"M", type_id(type(value)), out)
        self._mapping(b"d", fields, out, depth)
        extra = getattr(value, "__pydantic_extra__", None)
        private = getattr(value, "__pydantic_private__", None)
        self._nested(None if extra is None else dict(extra), out, depth, ".model_extra")
        self._nested(None if private is None else dict(private), out, depth,
                     ".__pydantic_private__")

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

    def _memoryview(self, value: memoryview, out: bytearray) -> None:
        """A memoryview: its exact type, item format and shape, then its bytes in C order
        (a non-contiguous view is copied)."""
        try:
            flat = value.cast("B") if value.c_contiguous else memoryview(value.tobytes())
            shape = ",".join(map(str, value.shape or ()))
            fmt = value.format
        except (ValueError, TypeError, NotImplementedError) as exc:  # released, odd formats
            raise Unencodable(type_id(type(value)), "", f"cannot read its bytes: {exc}") from None
        _name(b"m", fmt, out)
        _name(b"", shape, out)
        self._bytes(b"b", flat, out)

    def _sequence(self, tag: bytes, value: list[Any] | tuple[Any, ...], out: bytearray,
                  depth: int) -> None:
        out += tag + b"%d:" % len(value)
        for index, item in enumerate(value):
            self._nested(item, out, depth, ("index", index))

    def _dict(self, value: dict[Any, Any], out: bytearray, depth: int) -> None:
        if not self._ordered:
            self._mapping(b"d", value, out, depth)
        else:
            self._ordered_items(value, out, depth)

    def _ordered_items(self, value: dict[Any, Any], out: bytearray, depth: int) -> None:
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

    def _path(self, value: PurePath, out: bytearray) -> None:
        """A path: its kind (``Path``, ``PurePosixPath``, ``PureWindowsPath`` or a subclass),
        whether it is root-relative (an absolute path under the root) or as written, and its
        text. A relative path stays relative (to the working directory): it never equals the
        absolute path of a file under the root."""
        tp = type(value)
        if isinstance(value, Path):
            out += b"pc" if tp in _CONCRETE_PATHS else b"pu"
        else:
            out += _PURE_PATHS.get(tp, b"pv")
        if tp not in _CONCRETE_PATHS and tp not in _PURE_PATHS:
            _name(b"", type_id(tp), out)
        if self._root is not None and value.is_absolute():
            try:
                relative = value.relative_to(self._root)
            except (ValueError, TypeError):
                pass
            else:
                _name(b"r", relative.as_posix(), out)
                return
        _name(b"a", value.as_posix(), out)

    def _temporal(self, value: Any, datetime: Any, out: bytearray) -> None:
        """A datetime, date, time or timedelta (``datetime``: the module, which
        ``import memo_replay`` does not import)."""
        tp = type(value)
        if isinstance(value, datetime.datetime):
            self._subclass(tp, datetime.datetime, out)
            out += b"dt%s/%d;" % (value.replace(tzinfo=None).isoformat().encode(), value.fold)
            self._zone(value.tzinfo, value, datetime, out)
        elif isinstance(value, datetime.date):
            self._subclass(tp, datetime.date, out)
            out += b"da%s;" % value.isoformat().encode()
        elif isinstance(value, datetime.time):
            self._subclass(tp, datetime.time, out)
            out += b"ti%s/%d;" % (value.replace(tzinfo=None).isoformat().encode(), value.fold)
            self._zone(value.tzinfo, None, datetime, out)
        else:
            self._subclass(tp, datetime.timedelta, out)
            out += b"td%d,%d,%d;" % (value.days, value.seconds, value.microseconds)

    def _zone(self, tz: dt.tzinfo | None, moment: dt.datetime | None, datetime: Any,
              out: bytearray) -> None:
        """A time zone by its identity: a ZoneInfo by its key, a fixed offset by offset and
        name; two zones with one offset today (London, Lisbon) differ."""
        if tz is None:
            out += b"N"
        elif type(tz) is datetime.timezone:
            fixed, name = tz.utcoffset(None), tz.tzname(None)
            assert fixed is not None
            assert name is not None
            out += b"z%d,%d;" % (fixed.days * 86400 + fixed.seconds, fixed.microseconds)
            _name(b"", name, out)
        elif instance_of(tz, "zoneinfo", "ZoneInfo") and getattr(tz, "key", None) is not None:
            _name(b"Z", tz.key, out)  # type: ignore[attr-defined]
        elif isinstance(getattr(tz, "zone", None), str):  # pytz
            _name(b"Y", type_id(type(tz)), out)
            _name(b"", tz.zone, out)  # type: ignore[attr-defined]
            offset = moment.utcoffset() if moment is not None else None  # localized offset
            _name(b"", repr(None if offset is None else offset.total_seconds()), out)
        else:
            raise Unencodable(type_id(type(tz)), ".tzinfo",
                              "a time zone with no stable identity; use zoneinfo.ZoneInfo "
                              "or datetime.timezone")

    def _ndarray(self, value: Any, out: bytearray, depth: int) -> None:
        import numpy  # type: ignore[import-not-found,unused-ignore]

        tp = type(value)
        if tp is not numpy.ndarray:
            _name(b"U", type_id(tp), out)
        if isinstance(value, numpy.ma.MaskedArray):
            out += b"k"
            self._ndarray(numpy.ma.getdata(value), out, depth)
            self._ndarray(numpy.ma.getmaskarray(value), out, depth)
            self._nested(value.fill_value, out, depth, ".fill_value")
            return
        _name(b"A", _dtype_descriptor(value.dtype), out)
        _name(b"", ",".join(map(str, value.shape)), out)
        if value.dtype.hasobject:
            self._nested(value.tolist(), out, depth, ".tolist()")
            return
        contiguous = numpy.ascontiguousarray(value).reshape(-1)
        out += xxh3_128_digest(contiguous.view(numpy.uint8).data)

    def _numpy_scalar(self, value: Any, out: bytearray) -> None:
        """A numpy scalar by its dtype and its bytes (``numpy.float64(1.5)`` is not ``1.5``);
        extended precision by its shortest exact repr (its padding bytes are not defined)."""
        dtype = value.dtype
        if dtype.hasobject:
            raise Unencodable(type_id(type(value)), "", "a numpy scalar holding objects")
        _name(b"g", _dtype_descriptor(dtype), out)
        if dtype.kind in "fc" and dtype.itemsize > (8 if dtype.kind == "f" else 16):
            _name(b"r", repr(value), out)
        else:
            data = value.tobytes()
            out += b"b%d:" % len(data)
            out += data


_DECIMAL_BITS = 1993
"""Ints of this many bits or more (about 600 digits) are written as bytes: int→str is
quadratic and refused above ``sys.get_int_max_str_digits()`` (4,300 digits by default, 640 at
the least). Which way an int is written depends on its value only."""

_CONCRETE_PATHS = frozenset({Path, PosixPath, WindowsPath})
_PURE_PATHS = {PurePath: b"pp", PurePosixPath: b"px", PureWindowsPath: b"pw"}


def _int(value: int, out: bytearray) -> None:
    if value.bit_length() < _DECIMAL_BITS:
        out += b"i%d;" % value
    else:
        data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        out += b"I%d:" % len(data)
        out += data


def _float(value: float, out: bytearray) -> None:
    # repr round-trips every float (-0.0 and inf included) but NaN, whose sign and payload
    # are written in full.
    if value == value:
        out += b"f%s;" % repr(value).encode()
    else:
        out += b"fnan%s;" % struct.pack(">d", value).hex().encode()


def _name(tag: bytes, text: str, out: bytearray) -> None:
    """A tag and a length-prefixed string (a name, a type id, a path)."""
    data = text.encode("utf-8", "surrogatepass")
    out += tag + b"%d:" % len(data)
    out += data


def _dtype_descriptor(dtype: Any) -> str:
    """A numpy dtype in full: ``dtype.str`` for a plain one, and for a structured or
    sub-array dtype its field names, types, offsets, titles and itemsize."""
    if dtype.fields is None and dtype.subdtype is None:
        return str(dtype.str)
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return f"sub({_dtype_descriptor(base)};{shape!r})"
    fields = [
        (name, _dtype_descriptor(info[0]), info[1], info[2] if len(info) > 2 else None)
        for name, info in dtype.fields.items()
    ]
    return json.dumps({"fields": fields, "itemsize": dtype.itemsize,
                       "aligned": bool(dtype.isalignedstruct), "order": list(dtype.names)},
                      default=repr)


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
    try:
        shown = repr(position)
    except ValueError:  # an int key over the int→str limit (4,300 digits)
        shown = f"<{type_id(type(position))}>"
    if len(shown) > 80:
        shown = shown[:60] + "…"
    return f"[{shown}] (key)" if kind == "key" else f"[{shown}]"
