"""Lossless argument keys (issue 13): ``key(a) == key(b)`` exactly when ``a`` and ``b`` are the
same value of the same type.

The reference is :func:`lossless_reference.canonical_equal` (slow, independent of the encoder;
its module docstring states the rules). Pairs are generated three ways from one strategy
covering every supported type: two independent values, a value and a rebuilt *twin* (same value,
other objects, other dict/set order, other memory layout), and a value and a *mutant* (the twin
with some leaves swapped for a near neighbour: ``Path`` ↔ ``PurePosixPath``, NFC ↔ NFD,
``1.5`` ↔ ``np.float64(1.5)``, London ↔ Lisbon, ``dict`` ↔ ``OrderedDict``…) — the pairs where
a lossy encoding collides. Every key is computed twice (the second time remembered) and composed
afresh, which checks the remembered-keys identity and the C-pickle fast path by the same rule.

Profiles: ``memo-ci`` (default: derandomized, 300 examples per property) and ``memo-deep``
(``HYPOTHESIS_PROFILE=memo-deep pytest tests/keys/test_lossless_property.py -s``: 5,000 random
examples per property). The number of pairs checked is printed at the end of the module.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import datetime as dt
import decimal
import enum
import os
import unicodedata
import uuid
import warnings
import zoneinfo
from collections.abc import Iterator
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any, NamedTuple

import numpy as np
import pydantic
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst
from hypothesis.vendor.pretty import pretty
from lossless_reference import HomemadeZone, Opaque, canonical_equal, supported

from memo_replay import UnhashableArgument, recorded

ROOT = Path(__file__).resolve().parents[2]  # the project root: paths under it encode relative

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("memo-ci", derandomize=True, max_examples=300, deadline=None,
                          database=None, suppress_health_check=_HEALTH)
settings.register_profile("memo-deep", max_examples=5000, deadline=None,
                          suppress_health_check=_HEALTH)
PROFILE_NAME = "memo-deep" if os.environ.get("HYPOTHESIS_PROFILE") == "memo-deep" else "memo-ci"
PROFILE = settings.get_profile(PROFILE_NAME)

pytestmark = [pytest.mark.filterwarnings("ignore:Generating overly large repr"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")]

PAIRS: collections.Counter[str] = collections.Counter()
"""Pairs checked per test (printed when the module ends)."""


@recorded
def keyed(x: object) -> object:
    """Only its keys are used (never called)."""
    return x


# -- the supported types --------------------------------------------------------------------------


class Masked(str):
    """A str subclass that hides its value from ``str()``."""

    def __str__(self) -> str:
        return "***"


class Tag(str):
    pass


class MyInt(int):
    pass


class MyFloat(float):
    pass


class MyBytes(bytes):
    pass


class MyList(list):  # type: ignore[type-arg]
    pass


class MyTuple(tuple):  # type: ignore[type-arg]
    pass


class FrozenBag(frozenset):  # type: ignore[type-arg]
    pass


class Keyed:
    """An object that says what it counts by (``__memo_key__``)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __memo_key__(self) -> Any:
        return self.value

    def __repr__(self) -> str:
        return f"Keyed({show(self.value)})"


class Color(enum.Enum):
    RED = 1
    GREEN = "g"


class Shade(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    ONE = 1


class Pair(NamedTuple):
    first: Any
    second: Any


@dataclasses.dataclass
class Point:
    x: Any
    y: Any


@dataclasses.dataclass
class OtherPoint:
    x: Any
    y: Any


class Row(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    x: int = 0
    y: str = ""
    _note: str = pydantic.PrivateAttr(default="")


class OtherRow(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    x: int = 0
    y: str = ""
    _note: str = pydantic.PrivateAttr(default="")


RowA = pydantic.create_model("Row", a=(int, 0))
RowB = pydantic.create_model("Row", b=(str, ""))
CLASSES: list[type] = [int, str, Point, OtherPoint, Row, RowA, RowB]

LONDON, LISBON = zoneinfo.ZoneInfo("Europe/London"), zoneinfo.ZoneInfo("Europe/Lisbon")
ZONES: list[dt.tzinfo] = [dt.timezone.utc, dt.timezone(dt.timedelta(0)), zoneinfo.ZoneInfo("UTC"),
                          dt.timezone(dt.timedelta(hours=1)),
                          dt.timezone(dt.timedelta(hours=1), "CET"),
                          dt.timezone(dt.timedelta(hours=-5, minutes=-30)), LONDON, LISBON]


def make_row(cls: type[pydantic.BaseModel], x: int, y: str, extra: dict[str, Any],
             note_: str) -> pydantic.BaseModel:
    row = cls(x=x, y=y, **extra)
    row._note = note_  # type: ignore[attr-defined]
    return row


def matrix(array: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.asmatrix(array)


# -- strategies -----------------------------------------------------------------------------------

ODD_TEXT = ["", "é", "e\u0301", "Å", "A\u030a", "a\ud800b", "\x00", ";", "a;pb", "b;pc",
            "\U0001f600"]
texts = st.text(max_size=6) | st.sampled_from(ODD_TEXT) | st.text(
    st.characters(codec=None, categories=None), max_size=3)
names = st.text(st.characters(exclude_characters="\x00/", exclude_categories=("Cs",)),
                min_size=1, max_size=4) | st.sampled_from(["a", "a;pb", "b;pc", "c", "a b", "é",
                                                           "e\u0301", ";", ".."])
big_ints = st.integers(4295, 4400).map(lambda n: 10**n + 7)
floats = st.floats() | st.sampled_from([0.0, -0.0, float("nan"), -float("nan"), float("inf")])


def _path(parts: list[str], kind: str, cls: type[PurePath]) -> PurePath:
    if kind == "root" and cls is Path:
        return ROOT.joinpath(*parts)
    anchor = {"relative": "", "root": "/", "abs": "/elsewhere"}[kind]
    if cls is PureWindowsPath and anchor:
        anchor = "C:\\"
    return cls(anchor, *parts)


paths = st.builds(_path, st.lists(names, min_size=1, max_size=3),
                  st.sampled_from(["relative", "root", "abs"]),
                  st.sampled_from([Path, PurePosixPath, PureWindowsPath]))
zones = st.none() | st.sampled_from(ZONES)
january = st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 31), timezones=zones)
datetimes = january | st.datetimes(timezones=zones)

simple_dtypes = npst.scalar_dtypes() | npst.byte_string_dtypes(max_len=3) | \
    npst.unicode_string_dtypes(max_len=3)
ordered_dtypes = st.tuples(simple_dtypes, st.booleans()).map(
    lambda d: d[0].newbyteorder() if d[1] and d[0].itemsize > 1 else d[0])
structured = npst.array_dtypes(ordered_dtypes, min_size=1, max_size=3)
shapes = npst.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)
plain_arrays = npst.arrays(ordered_dtypes | structured, shapes)
numeric = npst.integer_dtypes() | npst.floating_dtypes() | npst.boolean_dtypes()
masked_arrays = npst.arrays(numeric, npst.array_shapes(min_dims=1, max_dims=2, max_side=3)).flatmap(
    lambda a: npst.arrays(np.bool_, a.shape).map(lambda m: np.ma.masked_array(a, mask=m)))
matrices = npst.arrays(numeric, npst.array_shapes(min_dims=2, max_dims=2, max_side=3)).map(matrix)
numpy_scalars = st.one_of(
    floats.map(np.float64), st.floats(width=32).map(np.float32), st.booleans().map(np.bool_),
    st.integers(-(2**63), 2**63 - 1).map(np.int64), st.integers(-128, 127).map(np.int8),
    st.complex_numbers().map(np.complex128), st.text(max_size=3).map(np.str_),
    st.sampled_from(["2024-01-01", "NaT", "2024-01-01T00:00"]).map(np.datetime64),
    st.integers(-5, 5).map(lambda n: np.timedelta64(n, "s")), floats.map(np.longdouble))


def _memoryview(data: bytes, how: str) -> memoryview:
    view = memoryview(data if how != "writable" else bytearray(data))
    n = len(data) - len(data) % 4
    if how == "strided":
        return view[::2]
    if how == "int32" and n:
        return view[:n].cast("i")
    if how == "2d" and n:  # 2-D and non-contiguous (memoryview cannot slice 2-D itself)
        return memoryview(np.frombuffer(data[:n], np.uint8).reshape(2, -1)[:, ::2])
    if how == "char":
        return view.cast("c")
    return view


buffers = st.one_of(st.binary(max_size=8), st.binary(min_size=4095, max_size=4100),
                    st.binary(max_size=8).map(bytearray),
                    st.builds(_memoryview, st.binary(max_size=12),
                              st.sampled_from(["plain", "writable", "strided", "int32", "2d",
                                               "char"])))
hashable_leaves = st.one_of(
    texts, st.integers(), big_ints, floats, st.booleans(), st.none(), st.binary(max_size=6),
    st.complex_numbers(), st.decimals().filter(lambda d: not d.is_snan()), st.uuids(), paths,
    datetimes, st.dates(), st.times(timezones=zones), st.timedeltas(),
    st.sampled_from([Color.RED, Color.GREEN, Shade.RED, Level.ONE]),
    texts.map(Masked), texts.map(Tag), st.integers().map(MyInt), floats.map(MyFloat),
    st.binary(max_size=4).map(MyBytes),
    st.sampled_from(CLASSES))
hashables = st.recursive(hashable_leaves, lambda inner: st.one_of(
    st.tuples(inner, inner), st.frozensets(inner, max_size=3),
    st.builds(Pair, inner, inner)), max_leaves=4)
unsupported = st.builds(Opaque) | st.builds(object) | st.datetimes(
    timezones=st.just(HomemadeZone()))
extra_names = st.sampled_from(["extra", "other", "z"])
rows = st.builds(make_row, st.sampled_from([Row, OtherRow]), st.integers(-3, 3),
                 st.sampled_from(["", "y", "é"]),
                 st.dictionaries(extra_names, hashable_leaves, max_size=2),
                 st.sampled_from(["", "secret"]))


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    items = st.lists(st.tuples(hashables, inner), max_size=3)
    return st.one_of(
        st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(hashables, inner, max_size=3), st.sets(hashables, max_size=3),
        st.frozensets(hashables, max_size=3), items.map(collections.OrderedDict),
        st.dictionaries(hashables, st.integers(-2, 2), max_size=3).map(collections.Counter),
        st.builds(collections.defaultdict, st.sampled_from([list, int]), items.map(dict)),
        st.builds(Pair, inner, inner), st.builds(Point, inner, inner),
        st.builds(OtherPoint, inner, inner), st.lists(inner, max_size=3).map(MyList),
        st.lists(inner, max_size=2).map(MyTuple), st.frozensets(hashables, max_size=2).map(
            FrozenBag), inner.map(Keyed))


def object_array(items: list[Any]) -> Any:
    array = np.empty(len(items), dtype=object)
    for index, item in enumerate(items):  # one by one: never nested into a 2-D array
        array[index] = item
    return array


object_arrays = st.lists(hashable_leaves, max_size=3).map(object_array)
# numpy scalars are never set members or dict keys: `np.int8(0) == b""` raises (equal hashes).
leaves = st.one_of(hashable_leaves, numpy_scalars, buffers, rows, plain_arrays, masked_arrays,
                   matrices, object_arrays)
values = st.recursive(leaves, _containers, max_leaves=6)
values_or_unsupported = st.recursive(leaves | unsupported, _containers, max_leaves=6)
flat_scalars = st.one_of(st.text(max_size=4), st.integers(), big_ints, floats, st.booleans(),
                         st.none(), st.binary(max_size=4))
flat_containers = st.one_of(st.lists(flat_scalars, max_size=6),
                            st.lists(flat_scalars, max_size=6).map(tuple),
                            st.dictionaries(flat_scalars, flat_scalars, max_size=6))


# -- twins and mutants ----------------------------------------------------------------------------


def neighbours(v: Any) -> list[Any]:
    """Values close to ``v``: another type with the same content, or a small change."""
    tp = type(v)
    if tp is str or (isinstance(v, str) and not isinstance(v, np.generic)):
        s = str.__str__(v)
        return [unicodedata.normalize("NFD", s), unicodedata.normalize("NFC", s), s + "x", s,
                Masked(s), Tag(s), np.str_(s), s.encode("utf-8", "surrogatepass")]
    if tp is bool:
        return [not v, int(v), np.bool_(v)]
    if isinstance(v, Keyed):
        return [v.value, Keyed(v)]
    if tp is MyFloat:
        return [float(v), np.float64(v)]
    if tp is MyBytes:
        return [bytes(v), bytearray(v)]
    if tp in (MyList, MyTuple, FrozenBag):
        return [list(v), tuple(v), frozenset(v) if tp is FrozenBag else Keyed(list(v))]
    if tp is int or tp is MyInt:
        near = [int(v), v + 1, -v, MyInt(v), decimal.Decimal(int(v)), bool(v % 2)]
        return near + ([float(v), np.int64(v)] if abs(v) < 2**53 else [])
    if tp is float:
        near = [-v, np.float64(v), MyFloat(v), complex(v), decimal.Decimal(v) if v == v else v]
        return near + ([float(np.nextafter(v, 1.0)), int(v)] if v - v == 0 else [])
    if tp is complex:
        return [v.conjugate(), complex(v.real, 0.0), v.real, np.complex128(v)]
    if v is None:
        return [(), "", 0]
    if tp in (bytes, bytearray):
        data = bytes(v)
        return [data, bytearray(data), memoryview(data), MyBytes(data), data + b"\0", data[:-1]]
    if tp is memoryview:
        data = v.tobytes()
        return [data, bytearray(data), memoryview(data), memoryview(data).cast("b")]
    if tp is decimal.Decimal:
        return [v.normalize(), v + 1, -v, float(v)] if v.is_finite() else [-v, float(v)]
    if tp is uuid.UUID:
        return [uuid.UUID(int=v.int ^ 1), str(v), v.hex]
    if isinstance(v, enum.Enum):
        return [Color.RED, Shade.RED, Level.ONE, v.value]
    if isinstance(v, PurePath):
        s = v.as_posix()
        out = [Path(s), PurePosixPath(s), PureWindowsPath(s), s, v.parent, v / ";"]
        if not v.is_absolute():
            out.append(ROOT / s)
        elif v.is_relative_to(ROOT):
            out.append(Path(v.relative_to(ROOT)))
        return out
    if tp is dt.datetime:
        out = [v.replace(tzinfo=z) for z in (None, LONDON, LISBON, dt.timezone.utc)]
        out += [v.replace(fold=1 - v.fold), v.date()]
        for shifted in (lambda: v + dt.timedelta(microseconds=1), lambda: v.astimezone(LISBON),
                        lambda: v.astimezone(dt.timezone(v.utcoffset()))):
            with contextlib.suppress(OverflowError, TypeError):  # at the ends of time; naive
                out.append(shifted())
        return out
    if tp is dt.date:
        return [dt.datetime(v.year, v.month, v.day), v.isoformat(),
                v + dt.timedelta(days=1) if v < dt.date.max else v]
    if tp is dt.time:
        return [v.replace(tzinfo=None), v.replace(tzinfo=LONDON), v.replace(fold=1 - v.fold)]
    if tp is dt.timedelta:
        return [-v, v + dt.timedelta(microseconds=1) if v < dt.timedelta.max else v]
    if isinstance(v, np.generic):
        with np.errstate(over="ignore", invalid="ignore"):
            return [v.item(), np.asarray(v), np.float32(v) if v.dtype.kind in "fiub" else v]
    if isinstance(v, np.ndarray):
        return _array_neighbours(v)
    if isinstance(v, pydantic.BaseModel):
        extra = dict(v.__pydantic_extra__ or {})
        return [make_row(OtherRow if type(v) is Row else Row, v.x, v.y, extra, v._note),
                make_row(type(v), v.x, v.y, {**extra, "z": None}, v._note),
                make_row(type(v), v.x, v.y, extra, v._note + "!"),
                make_row(type(v), v.x, v.y, {}, v._note)]
    if tp in (Point, OtherPoint):
        return [OtherPoint(v.x, v.y) if tp is Point else Point(v.x, v.y), Pair(v.x, v.y),
                {"x": v.x, "y": v.y}]
    if tp is Pair:
        return [tuple(v), list(v)]
    if tp in (list, tuple):
        return [list(v) if tp is tuple else tuple(v), tp([*v, None]), tp(v[:-1]), tp(v[::-1]),
                MyList(v) if tp is list else MyTuple(v), Keyed(v)]
    if isinstance(v, dict):
        items = list(v.items())
        counter = [collections.Counter(dict(items))] if all(
            type(n) is int for n in v.values()) else []  # Counter's repr sorts its values
        return [dict(items), collections.OrderedDict(items), collections.OrderedDict(items[::-1]),
                collections.defaultdict(list, items), dict(items[:-1]), *counter]
    if tp in (set, frozenset):
        return [frozenset(v) if tp is set else set(v), tp(list(v)[:-1]), list(v), FrozenBag(v)]
    return []


def _array_neighbours(v: Any) -> list[Any]:
    out: list[Any] = [np.asarray(v).copy(), np.asarray(v).reshape(-1), np.asarray(v).tolist()]
    if v.dtype.hasobject:  # never reinterpret the bytes of object pointers
        return [*out, v[::-1].copy(), v[:-1].copy(), tuple(v)]
    if v.dtype.itemsize > 1:
        out.append(np.asarray(v).astype(v.dtype.newbyteorder()))
    if v.dtype.names:
        renamed = np.dtype([(name + "_", v.dtype.fields[name][0]) for name in v.dtype.names])
        out.append(np.asarray(v).view(renamed))
    elif v.dtype.itemsize:
        out.append(np.asarray(v).view(f"V{v.dtype.itemsize}"))
    changed = _with_a_byte_flipped(np.asarray(v))
    if changed is not None:
        out.append(changed)
    if isinstance(v, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(v).copy()
        if mask.size:
            mask.flat[0] = not mask.flat[0]
        out += [np.ma.masked_array(v.data, mask=mask),
                np.ma.masked_array(v.data, mask=np.ma.getmaskarray(v), fill_value=1)]
    elif v.ndim == 2 and v.dtype.names is None:
        out.append(matrix(np.asarray(v)) if type(v) is np.ndarray else np.asarray(v))
    else:
        out.append(np.ma.masked_array(v))
    return out


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except (TypeError, ValueError):
        return False
    return True


def _valid(array: Any) -> bool:
    try:
        array.tolist()  # a flipped byte can make a UCS4 code point out of range
    except (SystemError, ValueError):
        return False
    return True


def _with_a_byte_flipped(v: Any, start: int = 0) -> Any:
    """A copy of the plain array ``v`` with one bit changed (None for an empty array)."""
    raw = bytearray(v.tobytes())
    for index in [*range(start, len(raw)), *range(start)]:
        raw[index] ^= 1
        changed = np.frombuffer(bytes(raw), v.dtype).reshape(v.shape).copy()
        if _valid(changed):
            return changed
        raw[index] ^= 1
    return None


def twin(v: Any, data: st.DataObject, mutate: bool, hashable: bool = False) -> Any:
    """The same value built again (other objects, order, layout); with ``mutate``, some parts
    swapped for a neighbour (a hashable one where the value is a dict key or set member)."""
    if mutate and data.draw(st.integers(0, 3)) == 0:
        options = [o for o in neighbours(v)
                   if not hashable or (_hashable(o) and not isinstance(o, np.generic))]
        if options:  # by index: sampled_from hashes its elements (a writable memoryview fails)
            return options[data.draw(st.integers(0, len(options) - 1), label="neighbour")]
    tp = type(v)

    def again(items: Any, hashable: bool = hashable) -> list[Any]:
        return [twin(item, data, mutate, hashable) for item in items]

    def keys(items: Any) -> list[Any]:
        return again(items, hashable=True)

    def shuffled(items: Any) -> list[Any]:
        items = list(items)  # drawn as indices: a repr of the items may fail (big ints)
        return [items[i] for i in data.draw(st.permutations(range(len(items))))]

    if tp in (list, tuple, MyList, MyTuple):
        return tp(again(v))
    if tp is Keyed:
        return Keyed(twin(v.value, data, mutate))
    if tp is Pair:
        return Pair(*again(v))
    if tp is collections.OrderedDict:
        return tp(zip(keys(v.keys()), again(v.values()), strict=True))
    if tp is collections.defaultdict:
        return tp(v.default_factory, shuffled(zip(keys(v), again(v.values()), strict=True)))
    if tp in (dict, collections.Counter):
        return tp(dict(shuffled(zip(keys(v), again(v.values()), strict=True))))
    if tp in (set, frozenset, FrozenBag):  # in a stable order: a NaN hashes by its id
        return tp(shuffled(keys(sorted(v, key=lambda x: (type(x).__qualname__, show(x))))))
    if tp in (Point, OtherPoint):
        return tp(*again([v.x, v.y]))
    if isinstance(v, pydantic.BaseModel):
        extra = dict(shuffled((v.__pydantic_extra__ or {}).items()))
        return make_row(tp, v.x, v.y, dict(zip(extra, keys(extra.values()), strict=True)),
                        v._note)
    if tp is bytearray:
        return bytearray(v)
    if tp is memoryview and v.ndim:
        try:
            return memoryview(v.tobytes()).cast(v.format, v.shape)  # contiguous, read-only
        except TypeError:
            return v
    if tp is str:
        return "".join(list(v))
    if isinstance(v, np.ndarray):  # a masked array's copy keeps a default fill value default
        return v.copy(order="F")
    return v


# -- the property ---------------------------------------------------------------------------------

UNSUPPORTED = "<unsupported>"


def show(value: object) -> str:
    """A repr that survives ints over 4,300 digits and odd numpy data."""
    try:
        return pretty(value)
    except Exception as exc:  # only a message: never hide the real failure
        return f"<{type(value).__name__}: repr failed with {exc!r}>"


def checked_key(v: Any) -> str:
    """``keyed``'s key for ``v``: the same computed again (remembered) and afresh; only
    ``UnhashableArgument`` is accepted as a refusal, and only for unsupported values."""
    try:
        first = keyed.memo.key(v)
    except UnhashableArgument:
        assert not supported(v), f"a supported value was refused: {show(v)}"
        return UNSUPPORTED
    assert supported(v), f"an unsupported value got a key: {show(v)}"
    assert keyed.memo.key(v) == first, "the remembered key differs from the first"
    fresh = keyed.memo.keys.compose(keyed.memo.keys.bind((v,), {})).key
    assert fresh == first, "the remembered key differs from the one composed afresh"
    return first


def check_pair(a: Any, b: Any, counter: str) -> None:
    PAIRS[counter] += 1
    key_a, key_b = checked_key(a), checked_key(b)
    if UNSUPPORTED in (key_a, key_b):
        return
    same = canonical_equal(a, b)
    assert canonical_equal(b, a) is same, "the reference is not symmetric"
    pair = f"\n  a = {show(a)}\n  b = {show(b)}"
    if same:
        assert key_a == key_b, "FALSE MISS: one value, two keys" + pair
    else:
        assert key_a != key_b, "FALSE HIT: two different values share a key" + pair
    assert checked_key(a) == key_a, "the key of `a` changed after computing the key of `b`" + pair


PARTNERS = ("mutant", "mutant", "mutant", "twin", "independent")
"""Each generated value is checked against these: mutants find collisions, twins false misses."""


def check_partners(data: st.DataObject, strategy: st.SearchStrategy[Any], counter: str) -> None:
    a = data.draw(strategy, label="a")
    for how in PARTNERS:
        b = data.draw(strategy, label="b") if how == "independent" else \
            twin(a, data, how == "mutant")
        if how == "twin":
            assert canonical_equal(a, b), f"a twin must equal its original (test bug): {show(b)}"
        check_pair(a, b, counter)


@PROFILE
@given(st.data())
def test_keys_are_equal_exactly_for_canonically_equal_values(data: st.DataObject) -> None:
    check_partners(data, values, "general")


@PROFILE
@given(st.data())
def test_unsupported_values_are_refused_and_never_crash(data: st.DataObject) -> None:
    check_partners(data, values_or_unsupported, "unsupported")


@PROFILE
@given(st.data())
def test_fast_path_containers_follow_the_same_rule(data: st.DataObject) -> None:
    check_partners(data, flat_containers, "fast path")


# -- mutation in place ----------------------------------------------------------------------------

copyable = st.recursive(hashable_leaves | numpy_scalars | st.binary(max_size=6).map(bytearray)
                        | rows | plain_arrays, _containers, max_leaves=5)
mutables = st.one_of(st.lists(copyable, max_size=3), st.dictionaries(hashables, copyable,
                                                                     max_size=3),
                     buffers.filter(lambda b: type(b) is bytearray),
                     st.binary(min_size=4095, max_size=4100).map(bytearray),
                     st.sets(hashables, max_size=3), st.builds(Point, copyable, copyable),
                     rows, npst.arrays(ordered_dtypes | structured,
                                       npst.array_shapes(min_dims=0, max_dims=2, max_side=3)))


def _mutable_parts(v: Any) -> Iterator[Any]:
    """``v`` and every mutable value inside it that :func:`mutate` knows."""
    if isinstance(v, (list, dict, bytearray, set, Point, Row, OtherRow, np.ndarray)) \
            and not isinstance(v, np.ma.MaskedArray) and type(v) is not np.matrix:
        yield v
    children: list[Any] = []
    if isinstance(v, dict):
        children = list(v.values())
    elif isinstance(v, (list, tuple)):
        children = list(v)
    elif isinstance(v, (Point, OtherPoint)):
        children = [v.x, v.y]
    for child in children:
        yield from _mutable_parts(child)


def mutate(v: Any, data: st.DataObject) -> None:
    leaf = data.draw(hashables, label="new element")
    if isinstance(v, list):
        how = data.draw(st.sampled_from(["append", "set", "pop"] if v else ["append"]))
        if how == "append":
            v.append(leaf)
        elif how == "set":
            v[data.draw(st.integers(0, len(v) - 1))] = leaf
        else:
            v.pop()
    elif isinstance(v, dict):
        if v and data.draw(st.booleans()):
            del v[data.draw(st.sampled_from(list(v)))]
        else:
            v[leaf] = data.draw(hashables)
    elif isinstance(v, bytearray):
        if v and data.draw(st.booleans()):
            v[data.draw(st.integers(0, len(v) - 1))] ^= 1
        else:
            v.append(data.draw(st.integers(0, 255)))
    elif isinstance(v, set):
        if v and data.draw(st.booleans()):
            v.discard(data.draw(st.sampled_from(list(v))))
        else:
            v.add(leaf)
    elif isinstance(v, Point):
        setattr(v, data.draw(st.sampled_from(["x", "y"])), leaf)
    elif isinstance(v, pydantic.BaseModel):
        what = data.draw(st.sampled_from(["x", "extra", "private"]))
        if what == "x":
            v.x += 1  # type: ignore[attr-defined]
        elif what == "extra":
            setattr(v, data.draw(extra_names), leaf)
        else:
            v._note += "!"  # type: ignore[attr-defined]
    elif v.nbytes:
        changed = _with_a_byte_flipped(v, data.draw(st.integers(0, v.nbytes - 1)))
        if changed is not None:
            v[...] = changed
    # else an empty array: nothing to change, and the key must stay


@PROFILE
@given(st.data())
def test_mutating_an_argument_in_place_changes_its_key(data: st.DataObject) -> None:
    value = data.draw(mutables, label="value")
    before = checked_key(value)
    snapshot = copy.deepcopy(value)
    part = data.draw(st.sampled_from(list(_mutable_parts(value))), label="mutated part")
    mutate(part, data)
    note(f"after = {show(value)}")
    PAIRS["mutation"] += 1
    after = checked_key(value)
    if UNSUPPORTED in (before, after):
        return
    if canonical_equal(snapshot, value):
        assert after == before, "FALSE MISS after a mutation that changed nothing"
    else:
        assert after != before, "STALE KEY: the value changed in place, the key did not"


# -- hand-picked pairs (issue 13) -----------------------------------------------------------------

_a1 = dt.datetime(2024, 1, 15, 12, tzinfo=LONDON)
_struct = np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")])
DIFFERENT: list[tuple[str, Any, Any]] = [
    ("path-framing", [PurePosixPath("a;pb"), PurePosixPath("c")],
     [PurePosixPath("a"), PurePosixPath("b;pc")]),
    ("str-subclass-with-own-str", Masked("alice"), Masked("bob")),
    ("str-subclass-vs-str", Tag("1"), "1"),
    ("ordereddict-order", collections.OrderedDict(a=1, b=2), collections.OrderedDict(b=2, a=1)),
    ("counter-vs-dict", collections.Counter(a=1), {"a": 1}),
    ("nested-counter-vs-dict", [collections.Counter(a=1)], [{"a": 1}]),
    ("london-vs-lisbon", _a1, _a1.replace(tzinfo=LISBON)),
    ("zone-vs-fixed-offset", _a1, _a1.replace(tzinfo=dt.timezone.utc)),
    ("bytearray-vs-memoryview", bytearray(b"x"), memoryview(b"x")),
    ("memoryview-format", memoryview(b"abcd"), memoryview(b"abcd").cast("i")),
    ("memoryview-shape", memoryview(b"abcd").cast("B", (2, 2)), memoryview(b"abcd")),
    ("path-vs-pureposixpath", Path("a"), PurePosixPath("a")),
    ("relative-vs-absolute-under-root", Path("a"), ROOT / "a"),
    ("np-float64-vs-float", np.float64(1.5), 1.5),
    ("np-str-vs-str", np.str_("a"), "a"),
    ("structured-field-names", _struct, _struct.view([("x", "<i4"), ("y", "<f4")])),
    ("structured-vs-void", _struct, _struct.view("V8")),
    ("masked-mask", np.ma.masked_array([1, 2], mask=[0, 1]), np.ma.masked_array([1, 2])),
    ("matrix-vs-ndarray", matrix(np.eye(2)), np.eye(2)),
    ("create-model-classes", RowA, RowB),
    ("pydantic-extra", make_row(Row, 1, "", {"z": 1}, ""), make_row(Row, 1, "", {}, "")),
    ("pydantic-private", make_row(Row, 1, "", {}, "a"), make_row(Row, 1, "", {}, "b")),
    ("big-int", 10**5000, 10**5000 + 1),
    ("nan-payload", float("nan"), -float("nan")),
    ("decimal-exponent", decimal.Decimal("1.0"), decimal.Decimal("1.00")),
    ("datetime64-units", np.array(["2024-01-01"], "M8[D]"), np.array(["2024-01-01"], "M8[s]")),
    ("defaultdict-factory", collections.defaultdict(int), collections.defaultdict(list)),
    ("timezone-name", _a1.replace(tzinfo=dt.timezone(dt.timedelta(hours=1), "CET")),
     _a1.replace(tzinfo=dt.timezone(dt.timedelta(hours=1)))),
    ("longdouble", np.longdouble(1.5), np.longdouble(2.5)),
    ("longdouble-vs-float64", np.longdouble(1.5), np.float64(1.5)),
]
SAME: list[tuple[str, Any, Any]] = [
    ("dict-order", {"a": 1, "b": [2]}, {"b": [2], "a": 1}),
    ("set-order", {8, 16}, {16, 8}),
    ("non-contiguous-memoryview", memoryview(b"abab")[::2], memoryview(b"aa")),
    ("fortran-order", np.arange(6).reshape(2, 3), np.asfortranarray(np.arange(6).reshape(2, 3))),
    ("nan", float("nan"), float("nan")),
    ("big-int", 10**5000, 10**5000),
    ("datetime64", np.array(["2024-01-01", "NaT"], "M8[D]"), np.array(["2024-01-01", "NaT"],
                                                                     "M8[D]")),
]
HELD_UP: list[tuple[str, Any, Any]] = [
    (f"held-{i}", a, b) for i, (a, b) in enumerate([
        (1, 1.0), (1, True), (1, decimal.Decimal(1)), (0.0, -0.0), ("1", b"1"), ([1], (1,)),
        ({1}, frozenset({1})), ({1: 0}, {"1": 0}), ("é", "e\u0301"),
        (dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)),
        (Color.RED, 1), (Color.RED, Shade.RED), (Point(1, 2), OtherPoint(1, 2)),
        (Pair(1, 2), (1, 2)), (np.zeros(2, "<i4"), np.zeros(2, ">i4")),
        (np.zeros(2), np.zeros((2, 1)))])]


@pytest.mark.parametrize(("a", "b"), [(a, b) for _, a, b in DIFFERENT + HELD_UP],
                         ids=[name for name, _, _ in DIFFERENT + HELD_UP])
def test_hand_picked_pairs_get_different_keys(a: Any, b: Any) -> None:
    assert not canonical_equal(a, b)
    check_pair(a, b, "hand-picked")


@pytest.mark.parametrize(("a", "b"), [(a, b) for _, a, b in SAME],
                         ids=[name for name, _, _ in SAME])
def test_hand_picked_pairs_share_a_key(a: Any, b: Any) -> None:
    assert canonical_equal(a, b)
    check_pair(a, b, "hand-picked")


UNSUPPORTED_VALUES: list[tuple[str, Any]] = [
    ("opaque", Opaque()), ("nested", {"a": [1, (Opaque(),)]}), ("in-a-set", {Opaque()}),
    ("under-a-huge-int-key", {10**4300 + 7: Opaque()}),
    ("homemade-zone", dt.datetime(2024, 1, 1, tzinfo=HomemadeZone())),
    ("in-a-dataclass", Point(Opaque(), 1)), ("in-pydantic-extra", Row(x=1, other=Opaque())),
]


@pytest.mark.parametrize("value", [v for _, v in UNSUPPORTED_VALUES],
                         ids=[name for name, _ in UNSUPPORTED_VALUES])
def test_hand_picked_unsupported_values_are_refused(value: Any) -> None:
    assert not supported(value)
    PAIRS["hand-picked"] += 1
    with pytest.raises(UnhashableArgument):
        keyed.memo.key(value)


@pytest.fixture(autouse=True, scope="module")
def _report_pairs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\ntest_lossless_property: {sum(PAIRS.values())} pairs checked "
              f"({', '.join(f'{k}: {n}' for k, n in sorted(PAIRS.items()))}; "
              f"profile {PROFILE_NAME})")
