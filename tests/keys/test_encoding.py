"""The canonical, type-tagged encoding of values (memo_replay.keys.encoding)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memo_replay import UnhashableArgument, recorded
from memo_replay.keys.encoding import Encoder, Unencodable


def enc(value: object, root: Path | None = None) -> bytes:
    return Encoder(root).encode(value)


# -- scalars and containers ----------------------------------------------------------------------


def test_scalars_that_compare_equal_in_python_still_differ() -> None:
    values: list[object] = [1, 1.0, True, "1", b"1", None, 0, 0.0, False, "", b"", -0.0]
    encodings = [enc(v) for v in values]
    assert len(set(encodings)) == len(values)


def test_encoding_is_deterministic_within_a_process() -> None:
    value = {"a": [1, 2.5, None], "b": {"x", "y"}, "c": (b"z", frozenset({1}))}
    copy = json.loads(json.dumps({"a": [1, 2.5, None]}))
    copy.update(b={"y", "x"}, c=(b"z", frozenset({1})))
    assert enc(value) == enc(copy)


def test_int_and_str_subclasses_encode_by_type_and_value() -> None:
    class MyInt(int):
        pass

    class MyStr(str):
        pass

    assert enc(MyInt(5)) == enc(MyInt(5))
    assert enc(MyInt(5)) != enc(5)
    assert enc(MyInt(5)) != enc(MyInt(6))
    assert enc(MyStr("hi")) == enc(MyStr("hi"))
    assert enc(MyStr("hi")) != enc("hi")


def test_list_and_tuple_differ() -> None:
    assert enc([1, 2]) != enc((1, 2))
    assert enc([]) != enc(())


def test_sequence_order_counts() -> None:
    assert enc([1, 2]) != enc([2, 1])
    assert enc((1, 2)) != enc((2, 1))


def test_set_frozenset_and_dict_differ_from_each_other() -> None:
    assert len({enc({1}), enc(frozenset({1})), enc([1]), enc((1,)), enc({1: None})}) == 5


def test_string_boundaries_are_framed() -> None:
    # Length prefixes keep ["ab", "c"] apart from ["a", "bc"].
    assert enc(["ab", "c"]) != enc(["a", "bc"])
    assert enc({"a": "bc"}) != enc({"ab": "c"})


def test_nested_containers_encode_by_value() -> None:
    a = {"outer": [{"inner": (1, 2, frozenset({"x", "y"}))}, {3, 4}], "n": None}
    b = {"n": None, "outer": [{"inner": (1, 2, frozenset({"y", "x"}))}, {4, 3}]}
    assert enc(a) == enc(b)
    c = {"n": None, "outer": [{"inner": (1, 2, frozenset({"y", "z"}))}, {4, 3}]}
    assert enc(a) != enc(c)
    d = {"n": None, "outer": [{"inner": [1, 2, frozenset({"x", "y"})]}, {4, 3}]}
    assert enc(a) != enc(d)


# No two of these compare equal across types (1 == 1.0 == True would collapse inside a set,
# keeping whichever came first — Python's doing, not the encoder's).
hashable_scalars = st.one_of(
    st.integers(), st.text(max_size=8), st.binary(max_size=8), st.none(),
    st.tuples(st.integers(), st.text(max_size=3)),
)


@given(st.dictionaries(hashable_scalars, hashable_scalars, max_size=12), st.randoms())
def test_dict_order_does_not_count(value: dict[Any, Any], rnd: Any) -> None:
    items = list(value.items())
    rnd.shuffle(items)
    assert enc(dict(items)) == enc(value)


@given(st.lists(hashable_scalars, max_size=12), st.randoms())
def test_set_and_frozenset_order_does_not_count(items: list[Any], rnd: Any) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert enc(set(shuffled)) == enc(set(items))
    assert enc(frozenset(shuffled)) == enc(frozenset(items))


@given(st.lists(st.integers(), min_size=2, max_size=8, unique=True))
def test_distinct_sets_encode_differently(items: list[int]) -> None:
    assert enc(set(items)) != enc(set(items[1:]))


# -- paths ---------------------------------------------------------------------------------------


def test_absolute_path_under_root_is_root_relative(tmp_path: Path) -> None:
    here, elsewhere = tmp_path / "a" / "proj", tmp_path / "b" / "moved"
    assert enc(here / "data" / "x.txt", here) == enc(elsewhere / "data" / "x.txt", elsewhere)
    assert enc(here / "data" / "x.txt", here) != enc(elsewhere / "data" / "y.txt", elsewhere)


def test_path_outside_root_and_relative_paths(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    outside = tmp_path / "other" / "x.txt"
    assert enc(outside, root) == enc(outside)  # kept absolute
    assert enc(Path("data/x.txt"), root) == enc(Path("data") / "x.txt", root)
    assert enc(Path("data/x.txt"), root) != enc(PurePosixPath("data/x.txt"), root)  # kinds
    # A path is not a string.
    assert enc(Path("data/x.txt")) != enc("data/x.txt")
    # Without a root the absolute location counts.
    assert enc(root / "x.txt") != enc(tmp_path / "moved" / "x.txt")


# -- rich types ----------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Shade(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    LOW = 1


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


@dataclasses.dataclass(frozen=True)
class OtherPoint:
    x: int
    y: int


class PointModel(pydantic.BaseModel):
    x: int
    y: int


class PointTuple(NamedTuple):
    x: int
    y: int


class Client:
    """An object with a stable identity of its own choosing."""

    def __init__(self, endpoint: str, session: object) -> None:
        self.endpoint = endpoint
        self.session = session

    def __memo_key__(self) -> object:
        return {"endpoint": self.endpoint}


def test_datetime_and_date() -> None:
    moment = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
    assert enc(moment) == enc(dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc))
    assert enc(moment) != enc(moment.replace(tzinfo=None))
    assert enc(moment) != enc(moment + dt.timedelta(microseconds=1))
    assert enc(dt.date(2024, 5, 1)) != enc(dt.datetime(2024, 5, 1))
    assert enc(dt.date(2024, 5, 1)) != enc("2024-05-01")
    assert enc(dt.timedelta(days=1)) != enc(dt.timedelta(seconds=86399))


def test_uuid_and_decimal() -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert enc(u) == enc(uuid.UUID(str(u)))
    assert enc(u) != enc(uuid.UUID(int=u.int + 1))
    assert enc(u) != enc(str(u))
    assert enc(decimal.Decimal("1.5")) == enc(decimal.Decimal("1.5"))
    assert enc(decimal.Decimal("1.5")) != enc(1.5)
    assert enc(decimal.Decimal("1")) != enc(1)


def test_enum_is_tagged_with_its_type() -> None:
    assert enc(Color.RED) == enc(Color(1))
    assert enc(Color.RED) != enc(Color.GREEN)
    assert enc(Color.RED) != enc(Shade.RED)
    assert enc(Color.RED) != enc(1)
    assert enc(Level.LOW) != enc(1)  # an IntEnum is an Enum first


def test_dataclass_pydantic_and_namedtuple() -> None:
    assert enc(Point(1, 2)) == enc(Point(1, 2))
    assert enc(Point(1, 2)) != enc(Point(2, 1))
    assert enc(Point(1, 2)) != enc(OtherPoint(1, 2))
    assert enc(PointModel(x=1, y=2)) == enc(PointModel(y=2, x=1))
    assert enc(PointModel(x=1, y=2)) != enc(PointModel(x=1, y=3))
    assert enc(PointTuple(1, 2)) == enc(PointTuple(x=1, y=2))
    assert enc(PointTuple(1, 2)) != enc(PointTuple(1, 3))
    assert enc(PointTuple(1, 2)) != enc((1, 2))
    assert len({enc(Point(1, 2)), enc(PointModel(x=1, y=2)), enc(PointTuple(1, 2)),
                enc({"x": 1, "y": 2})}) == 4


def test_class_with_memo_key() -> None:
    a = Client("https://api.example", session=object())
    b = Client("https://api.example", session=object())
    assert enc(a) == enc(b)  # the session (an arbitrary object) does not count
    assert enc(a) != enc(Client("https://other.example", session=object()))
    assert enc(a) != enc({"endpoint": "https://api.example"})


def test_large_bytes_are_hashed_not_copied() -> None:
    big = bytes(range(256)) * 64 + b"!"  # 16 KiB + 1
    encoded = enc(big)
    assert len(encoded) < 64
    assert big[:1000] not in encoded
    changed = big[:-1] + b"?"
    assert enc(changed) != encoded
    assert enc(bytearray(big)) != encoded  # bytearray keeps its own tag
    assert enc(memoryview(big)) != enc(bytearray(big))  # a memoryview is not a bytearray
    small = b"x" * 4096
    assert small in enc(small)  # up to 4 KiB is inline
    assert len(enc(small + b"x")) < 64


# -- errors --------------------------------------------------------------------------------------


def test_unsupported_object_raises_with_path() -> None:
    class Opaque:
        pass

    with pytest.raises(Unencodable) as info:
        enc(Opaque())
    assert info.value.type_name.endswith("Opaque")
    assert info.value.path == ""

    with pytest.raises(Unencodable) as info:
        enc({"config": [1, 2, {"client": Opaque()}]})
    assert info.value.path == "['config'][2]['client']"
    assert info.value.type_name.endswith("Opaque")


def test_unsupported_object_inside_fields() -> None:
    @dataclasses.dataclass
    class Holder:
        handle: object

    with pytest.raises(Unencodable) as info:
        enc((Holder(handle=lambda: None),))
    assert info.value.path == "[0]['handle']"
    assert info.value.type_name == "builtins.function"


def test_self_referential_value_is_unencodable_not_a_crash() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(Unencodable) as info:
        enc(loop)
    assert "nested too deeply" in info.value.reason


# -- stability across processes ------------------------------------------------------------------

_STABILITY_SNIPPET = textwrap.dedent("""
    import datetime, decimal, uuid
    from pathlib import PurePosixPath
    from memo_replay.keys.encoding import Encoder
    value = {
        "words": {"alpha", "beta", "gamma", "delta", "epsilon"},
        "frozen": frozenset({"x", "y", ("t", 1), b"raw"}),
        "mapping": {"k%d" % i: i for i in range(20)},
        "mixed": [1, 1.0, True, None, "1", b"1", (2, 3)],
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "id": uuid.UUID(int=42),
        "amount": decimal.Decimal("3.14"),
        "path": PurePosixPath("a/b.txt"),
    }
    print(Encoder().encode(value).hex())
""")


def _encode_in_subprocess(hash_seed: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMO_")}
    env["PYTHONHASHSEED"] = hash_seed
    result = subprocess.run([sys.executable, "-c", _STABILITY_SNIPPET], env=env,
                            capture_output=True, text=True, check=True, timeout=120)
    return result.stdout.strip()


def test_stable_across_processes_and_hash_seeds() -> None:
    first, second = _encode_in_subprocess("1"), _encode_in_subprocess("12345")
    assert first
    assert first == second
    namespace: dict[str, Any] = {}
    exec(_STABILITY_SNIPPET.replace("print(", "result = ("), namespace)  # this process
    assert namespace["result"] == first


# -- lossless: two values that differ never share a key (issue 13) -------------------------------
#
# One test per collision class found; each pair goes through a real `@recorded` key.


@recorded
def keyed(value: object) -> object:
    """Only its key is used here (``keyed.memo.key``): it is never called."""
    return value


def assert_distinct(*values: object) -> None:
    keys = [keyed.memo.key(v) for v in values]
    assert len(set(keys)) == len(values), values
    assert [keyed.memo.key(v) for v in values] == keys  # remembered identities agree


def test_path_framing_semicolons_in_file_names() -> None:
    assert_distinct([PurePosixPath("a;pb"), PurePosixPath("c")],
                    [PurePosixPath("a"), PurePosixPath("b;pc")])
    assert_distinct({PurePosixPath("a;pb"), PurePosixPath("c")},
                    {PurePosixPath("a"), PurePosixPath("b;pc")})


def test_names_in_tags_are_length_prefixed() -> None:
    semi = type("a;b", (), {})
    plain = type("a", (), {})
    assert_distinct([semi, 1], [plain, 1])
    assert enc([semi]) != enc([plain])


def test_str_subclass_with_its_own_str() -> None:
    class Masked(str):
        def __str__(self) -> str:
            return "***"

    class Tag(str):
        pass

    assert_distinct(Masked("alice"), Masked("bob"), "alice", Tag("alice"))
    assert_distinct(Tag("1"), "1", [Tag("1")], ["1"])
    assert keyed.memo.key(Masked("alice")) == keyed.memo.key(Masked("alice"))


def test_int_float_bytes_subclasses() -> None:
    class Cents(int):
        def __int__(self) -> int:
            return 0

    class Ratio(float):
        def __float__(self) -> float:
            return 0.0

    class Blob(bytes):
        def __bytes__(self) -> bytes:
            return b""

    assert_distinct(Cents(1), Cents(2), 1)
    assert_distinct(Ratio(1.5), Ratio(2.5), 1.5)
    assert_distinct(Blob(b"x"), Blob(b"y"), b"x")


def test_dict_subclasses_keep_their_type_and_ordered_dict_its_order() -> None:
    from collections import Counter, OrderedDict, defaultdict

    assert_distinct(OrderedDict(a=1, b=2), OrderedDict(b=2, a=1), {"a": 1, "b": 2})
    assert_distinct({"n": Counter(a=1)}, {"n": {"a": 1}}, {"n": defaultdict(int, a=1)})
    assert keyed.memo.key({"a": 1, "b": 2}) == keyed.memo.key({"b": 2, "a": 1})
    assert keyed.memo.key(Counter(a=1, b=2)) == keyed.memo.key(Counter(b=2, a=1))


def test_bytes_like_values_keep_their_kind_format_and_shape() -> None:
    data = bytes(range(12))
    view = memoryview(data)
    assert_distinct(data, bytearray(data), view, view.cast("i"), view.cast("i", (3, 1)),
                    view.cast("B", (3, 4)))
    assert keyed.memo.key(memoryview(bytes(data))) == keyed.memo.key(view)


def test_non_contiguous_memoryview_encodes_by_its_elements() -> None:
    data = bytes(range(12))
    every_other = memoryview(data)[::2]
    assert not every_other.contiguous
    assert keyed.memo.key(every_other) == keyed.memo.key(memoryview(data[::2]))
    assert_distinct(every_other, memoryview(data)[1::2])


def test_path_kinds_differ() -> None:
    from pathlib import PureWindowsPath

    assert_distinct(Path("a/b"), PurePosixPath("a/b"), PureWindowsPath("a/b"), "a/b")


def test_relative_path_is_not_the_absolute_one_under_the_root() -> None:
    # A relative path is relative to the working directory, never to the project root.
    root = Path.cwd()
    assert enc(root / "data.txt", root) != enc(Path("data.txt"), root)
    assert enc(root / "data.txt", root) != enc(Path("<root>/data.txt"), root)
    assert_distinct(Path.cwd() / "data.txt", Path("data.txt"), Path("<root>/data.txt"))


def test_datetimes_in_zones_with_one_offset_differ() -> None:
    from zoneinfo import ZoneInfo

    winter = dt.datetime(2024, 1, 15, 12, 0)
    assert_distinct(winter.replace(tzinfo=ZoneInfo("Europe/London")),
                    winter.replace(tzinfo=ZoneInfo("Europe/Lisbon")),
                    winter.replace(tzinfo=dt.timezone.utc),
                    winter.replace(tzinfo=dt.timezone(dt.timedelta(0), "GMT")),
                    winter)
    assert_distinct(dt.time(12, tzinfo=ZoneInfo("Europe/London")),
                    dt.time(12, tzinfo=ZoneInfo("Europe/Lisbon")), dt.time(12))
    assert keyed.memo.key(winter.replace(tzinfo=ZoneInfo("Europe/London"))) == \
        keyed.memo.key(dt.datetime(2024, 1, 15, 12, tzinfo=ZoneInfo("Europe/London")))
    ambiguous = dt.datetime(2024, 10, 27, 1, 30, tzinfo=ZoneInfo("Europe/London"))
    assert_distinct(ambiguous, ambiguous.replace(fold=1))


def test_datetime_with_an_unknown_time_zone_is_unhashable() -> None:
    class Mystery(dt.tzinfo):
        def utcoffset(self, moment: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(0)

    with pytest.raises(UnhashableArgument) as info:
        keyed.memo.key(dt.datetime(2024, 1, 1, tzinfo=Mystery()))
    assert "argument `value`.tzinfo" in str(info.value)
    assert "zoneinfo.ZoneInfo" in str(info.value)


def test_pydantic_extra_fields_and_private_attributes_count() -> None:
    class Loose(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")
        x: int

    class Secretive(pydantic.BaseModel):
        x: int
        _cache: int = 0

    assert Loose(x=1, y=2) != Loose(x=1, y=3)
    assert_distinct(Loose(x=1), Loose(x=1, y=2), Loose(x=1, y=3))
    a, b = Secretive(x=1), Secretive(x=1)
    b._cache = 5
    assert a != b
    assert_distinct(a, b)
    assert keyed.memo.key(Loose(x=1, y=2)) == keyed.memo.key(Loose(y=2, x=1))


def test_classes_of_one_name_made_by_create_model_differ() -> None:
    first = pydantic.create_model("Row", a=(int, ...))
    second = pydantic.create_model("Row", b=(str, ...))
    assert first.__qualname__ == second.__qualname__
    assert_distinct(first, second)


def test_huge_ints_encode_without_the_int_to_str_limit() -> None:
    huge = 10**5000
    assert_distinct(huge, huge + 1, -huge, [huge], [huge + 1], {"n": huge}, {"n": huge + 1})
    assert keyed.memo.key(10**5000) == keyed.memo.key(huge)
    assert enc(10**599) != enc(10**600)  # the two sides of the decimal/bytes boundary
    assert enc(10**600) != enc(-(10**600))


def test_identity_frames_keyword_names() -> None:
    @recorded
    def f(**extra: object) -> None:
        pass

    assert f.memo.key(**{"a\x001\x00": 2}) != f.memo.key(**{"a": 2})
    assert f.memo.key(a=1, b=[Path("x")]) != f.memo.key(**{"a\x00": 1, "b": [Path("x")]})


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # numpy.matrix
def test_numpy_values_are_keyed_in_full() -> None:
    np = pytest.importorskip("numpy")
    # Structured dtypes: field names, types and offsets (dtype.str is '|V8' for all of these).
    a = np.zeros(2, dtype=[("x", "<i4"), ("y", "<f4")])
    b = np.zeros(2, dtype=[("p", "<i4"), ("q", "<f4")])
    c = np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")])
    d = np.zeros(2, dtype={"names": ["x"], "formats": ["<i4"], "offsets": [4], "itemsize": 8})
    assert_distinct(a, b, c, d, np.zeros(2, dtype="<i8"))
    # Masked arrays by their mask and fill value; matrix vs ndarray.
    data = np.arange(3)
    assert_distinct(data, np.ma.array(data, mask=[0, 1, 0]), np.ma.array(data, mask=[1, 0, 0]),
                    np.ma.array(data, mask=[1, 0, 0], fill_value=7))
    assert_distinct(np.array([[1, 2]]), np.matrix([[1, 2]]))
    # Scalars by dtype.
    assert_distinct(np.float64(1.5), 1.5, np.float32(1.5), np.int64(1), 1, np.bool_(True), True)
    assert keyed.memo.key(np.float64(1.5)) == keyed.memo.key(np.float64(1.5))


def test_numpy_datetimes_and_longdouble_no_longer_crash() -> None:
    np = pytest.importorskip("numpy")
    days = np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]")
    assert_distinct(days, days + 1, days.astype("datetime64[s]"),
                    np.array([1, 2], dtype="timedelta64[s]"),
                    np.array([1, 3], dtype="timedelta64[s]"))
    assert keyed.memo.key(days) == keyed.memo.key(days.copy())
    assert_distinct(np.longdouble(1.5), np.longdouble(2.5), 1.5, np.float64(1.5))
    assert_distinct(np.datetime64("2024-01-01"), np.datetime64("2024-01-02"))
    assert_distinct(np.arange(6)[::2], np.arange(6)[1::2])  # non-contiguous arrays


def test_what_held_up_keeps_holding() -> None:
    import decimal as _decimal

    assert_distinct(1, 1.0, True, _decimal.Decimal("1"), "1", b"1")
    assert_distinct(0.0, -0.0)
    assert_distinct([1, 2], (1, 2), {1, 2}, frozenset({1, 2}))
    assert_distinct({1: "x"}, {"1": "x"})
    assert_distinct("\u00e9", "e\u0301")  # NFC vs NFD
    assert_distinct(Color.RED, 1, Point(1, 2), OtherPoint(1, 2), PointTuple(1, 2), (1, 2))
    assert keyed.memo.key({1, 2, 3}) == keyed.memo.key({3, 2, 1})


def test_defaultdict_counts_its_factory() -> None:
    from collections import defaultdict

    assert_distinct(defaultdict(int), defaultdict(list), {})
    with pytest.raises(UnhashableArgument) as info:
        keyed.memo.key(defaultdict(lambda: 0))
    assert "argument `value`.default_factory" in str(info.value)


def test_an_unhashable_value_under_a_huge_int_key_names_its_path() -> None:
    class Opaque:
        pass

    with pytest.raises(UnhashableArgument) as info:
        keyed.memo.key({10**4300 + 7: Opaque()})
    assert "argument `value`[<builtins.int>]" in str(info.value)
