"""An independent, slow, obviously-correct reference for "same argument value" (issue 13).

``canonical_equal(a, b)`` answers whether two argument values must share a key, by the rules of
docs/keys.md section 3 — written for the tests, sharing no code with the encoder:

- the types are identical (``type(a) is type(b)``), recursively: ``1``/``1.0``/``True``/
  ``Decimal(1)``/``np.int64(1)`` differ, a ``str`` subclass is not a ``str``, a ``Counter`` is
  not a ``dict``, ``Path`` is not ``PurePosixPath``, a masked array is not an ndarray;
- ``float`` and ``complex`` by bit pattern (``-0.0`` differs from ``0.0``; a NaN equals a NaN
  with the same bits: docs/keys.md, "a float NaN by its sign and payload"); ``str`` by code
  points (NFC and NFD differ); ``Decimal`` by ``as_tuple()`` (``1.0`` and ``1.00`` differ: they
  print apart);
- a plain ``dict`` (and ``Counter``, ``defaultdict``) and ``set``/``frozenset`` are multisets of
  canonically equal items — order does not count; an ``OrderedDict``'s order counts; a
  ``defaultdict``'s ``default_factory`` counts by identity;
- ``memoryview`` by format, shape and logical bytes (strides and contiguity do not count);
- paths by type and ``parts`` (case and spelling as given; relative and absolute differ — an
  absolute path under the project root is *encoded* root-relative, which is a portability
  rule, not an equality);
- datetimes by their fields (``fold`` included) and tzinfo: naive vs aware, a fixed
  ``timezone`` by its offset and name, a ``ZoneInfo`` by its key (London and Lisbon differ even
  where their offsets agree), a different tzinfo class differs; any other tzinfo class is
  unsupported (docs/keys.md);
- dataclasses and NamedTuples by class and fields; pydantic models by class, field values,
  ``extra`` fields (a mapping) and private attributes (a mapping) — what pydantic's ``==`` uses;
- numpy arrays by exact type, full dtype (descr, byte order, field names and titles, metadata),
  shape and logical bytes (layout does not count); masked arrays also by mask and fill value
  (the ``fill_value`` attribute as a value: ``np.int64(999999)`` is not ``np.int8(63)``); numpy
  scalars by type, dtype and bytes (``np.longdouble`` by value and sign: its padding bytes are
  not part of it; all its NaNs are one);
- classes by identity; Enum members by class and value; an object whose type defines
  ``__memo_key__`` by its class and what ``__memo_key__()`` returns;
- a subclass of a built-in value (``str``, ``int``, ``float``, ``bytes``, ``list``, ``tuple``,
  ``frozenset``…) by its exact type and its built-in value.

Values of the types in :data:`UNSUPPORTED` (anywhere inside the value) have no canonical
encoding: the encoder must reject them with ``UnhashableArgument``.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import enum
import struct
import sys
import types
import uuid
import zoneinfo
from pathlib import PurePath
from typing import Any


class Opaque:
    """An object with no canonical encoding (no ``__memo_key__``, not a supported type)."""


class HomemadeZone(dt.tzinfo):
    """A tzinfo with no stable identity: a datetime holding it cannot be keyed."""

    def utcoffset(self, when: object) -> dt.timedelta:
        return dt.timedelta(hours=2)

    def dst(self, when: object) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, when: object) -> str:
        return "HOME"


UNSUPPORTED: tuple[type, ...] = (Opaque, object, types.FunctionType, types.LambdaType)
"""Exact types the encoder must reject (a small explicit list; everything else generated is
supported)."""

_SCALARS = (str, bytes, bytearray, memoryview, int, float, complex, bool, type(None),
            decimal.Decimal, uuid.UUID, PurePath, dt.date, dt.time, dt.timedelta)


def _numpy() -> Any:
    return sys.modules.get("numpy")


def _pydantic_model(value: object) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


def _children(value: Any) -> list[Any]:
    """The values held inside ``value`` (for the support check)."""
    np = _numpy()
    if _has_memo_key(value):
        return [value.__memo_key__()]
    if isinstance(value, enum.Enum):
        return [value.value]
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    if _pydantic_model(value):
        return [*_fields(value).values(), *(value.__pydantic_extra__ or {}).values(),
                *(value.__pydantic_private__ or {}).values()]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return list(_dataclass_fields(value).values())
    if np is not None and isinstance(value, np.ndarray) and value.dtype.hasobject:
        return list(value.flat)
    return []


def supported(value: Any) -> bool:
    """Whether the encoder must accept ``value`` (every part of it of a supported type)."""
    if type(value) in UNSUPPORTED:
        return False
    if isinstance(value, (dt.datetime, dt.time)) and value.tzinfo is not None \
            and type(value.tzinfo) not in (zoneinfo.ZoneInfo, dt.timezone):
        return False
    np = _numpy()
    known = (isinstance(value, (*_SCALARS, enum.Enum, type, dict, list, tuple, set, frozenset))
             or _has_memo_key(value) or _pydantic_model(value) or dataclasses.is_dataclass(value)
             or (np is not None and isinstance(value, (np.ndarray, np.generic))))
    if not known:
        raise AssertionError(f"the reference does not know {type(value)!r}: classify it")
    return all(supported(child) for child in _children(value))


def canonical_equal(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are the same argument value, by the rules above."""
    if type(a) is not type(b):
        return False
    np = _numpy()
    if isinstance(a, type) or type(a) in UNSUPPORTED:
        return a is b
    if _has_memo_key(a):
        return canonical_equal(a.__memo_key__(), b.__memo_key__())
    if np is not None and isinstance(a, np.ndarray):
        return _arrays_equal(a, b)
    if np is not None and isinstance(a, np.longdouble):  # its padding bytes are not its value
        return bool((a == b and np.signbit(a) == np.signbit(b)) or (a != a and b != b))
    if np is not None and isinstance(a, np.generic):
        return _dtypes_equal(a.dtype, b.dtype) and a.tobytes() == b.tobytes()
    if isinstance(a, enum.Enum):
        return canonical_equal(a.value, b.value)
    if isinstance(a, bool) or a is None:
        return a is b
    if isinstance(a, int):
        return int.__int__(a) == int.__int__(b) and _same_attrs(a, b)
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, complex):
        return struct.pack("<dd", a.real, a.imag) == struct.pack("<dd", b.real, b.imag)
    if isinstance(a, str):
        return str.__str__(a) == str.__str__(b) and _same_attrs(a, b)
    if isinstance(a, (bytes, bytearray)):
        return bytes(a) == bytes(b)
    if isinstance(a, memoryview):
        return (a.format, a.itemsize, a.shape, a.tobytes()) == \
            (b.format, b.itemsize, b.shape, b.tobytes())
    if isinstance(a, decimal.Decimal):
        return a.as_tuple() == b.as_tuple()
    if isinstance(a, uuid.UUID):
        return a.int == b.int
    if isinstance(a, PurePath):
        return a.parts == b.parts
    if isinstance(a, dt.datetime):
        return _fields_of_time(a) == _fields_of_time(b) and _tz_equal(a.tzinfo, b.tzinfo)
    if isinstance(a, dt.date):
        return (a.year, a.month, a.day) == (b.year, b.month, b.day)
    if isinstance(a, dt.time):
        return _fields_of_time(a) == _fields_of_time(b) and _tz_equal(a.tzinfo, b.tzinfo)
    if isinstance(a, dt.timedelta):
        return (a.days, a.seconds, a.microseconds) == (b.days, b.seconds, b.microseconds)
    if _pydantic_model(a):
        return (_mapping_equal(_fields(a), _fields(b))
                and _mapping_equal(a.__pydantic_extra__ or {}, b.__pydantic_extra__ or {})
                and _mapping_equal(a.__pydantic_private__ or {}, b.__pydantic_private__ or {}))
    if dataclasses.is_dataclass(a):
        return _mapping_equal(_dataclass_fields(a), _dataclass_fields(b))
    if isinstance(a, (list, tuple)):  # NamedTuples too: the class is already the same
        return len(a) == len(b) and all(map(canonical_equal, a, b))
    if isinstance(a, collections.OrderedDict):
        return canonical_equal(list(a.items()), list(b.items()))
    if isinstance(a, collections.defaultdict) and a.default_factory is not b.default_factory:
        return False
    if isinstance(a, dict):
        return _same_multiset(a.items(), b.items())
    if isinstance(a, (set, frozenset)):
        return _same_multiset(a, b)
    raise AssertionError(f"the reference does not know {type(a)!r}")


def _has_memo_key(value: object) -> bool:
    return not isinstance(value, type) and getattr(type(value), "__memo_key__", None) is not None


def _same_multiset(xs: Any, ys: Any) -> bool:
    """Every item of ``xs`` pairs off with its own canonically equal item of ``ys``."""
    unmatched = list(ys)
    items = list(xs)
    if len(items) != len(unmatched):
        return False
    for x in items:
        for index, y in enumerate(unmatched):
            if canonical_equal(x, y):
                del unmatched[index]
                break
        else:
            return False
    return True


def _mapping_equal(a: dict[Any, Any], b: dict[Any, Any]) -> bool:
    return _same_multiset(((k, v) for k, v in a.items()), ((k, v) for k, v in b.items()))


def _same_attrs(a: object, b: object) -> bool:
    """Instance attributes of a str/int subclass count too (none here unless set)."""
    return _mapping_equal(getattr(a, "__dict__", {}), getattr(b, "__dict__", {}))


def _fields(model: Any) -> dict[str, Any]:
    return {name: getattr(model, name) for name in type(model).model_fields}


def _dataclass_fields(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _fields_of_time(value: dt.datetime | dt.time) -> tuple[int, ...]:
    date = (value.year, value.month, value.day) if isinstance(value, dt.datetime) else ()
    return (*date, value.hour, value.minute, value.second, value.microsecond, value.fold)


def _tz_equal(a: dt.tzinfo | None, b: dt.tzinfo | None) -> bool:
    if a is None or b is None:
        return a is b
    if type(a) is not type(b):
        return False
    if isinstance(a, zoneinfo.ZoneInfo):
        return a.key == b.key  # type: ignore[attr-defined]
    if isinstance(a, dt.timezone):
        return a.utcoffset(None) == b.utcoffset(None) and a.tzname(None) == b.tzname(None)
    return a is b  # an unsupported tzinfo (see ``supported``): only itself


def _dtypes_equal(a: Any, b: Any) -> bool:
    # `fields` too: numpy's `==` and `descr` ignore a field *title* that `newbyteorder()` drops
    # (`[("f0", "?"), (("0", "H"), "?")]`: after it, `array["0"]` raises).
    return (a == b and a.str == b.str and a.descr == b.descr and a.names == b.names
            and dict(a.fields or {}) == dict(b.fields or {})
            and a.metadata == b.metadata and a.isalignedstruct == b.isalignedstruct)


def _arrays_equal(a: Any, b: Any) -> bool:
    np = _numpy()
    if not _dtypes_equal(a.dtype, b.dtype) or a.shape != b.shape:
        return False
    if isinstance(a, np.ma.MaskedArray):
        return (_arrays_equal(np.asarray(a.data), np.asarray(b.data))
                and np.ma.getmaskarray(a).tobytes() == np.ma.getmaskarray(b).tobytes()
                and canonical_equal(a.fill_value, b.fill_value))
    if a.dtype.hasobject:
        return all(map(canonical_equal, a.flat, b.flat))
    return bool(a.tobytes() == b.tobytes())
