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


def test_int_and_str_subclasses_encode_like_their_base() -> None:
    class MyInt(int):
        pass

    class MyStr(str):
        pass

    assert enc(MyInt(5)) == enc(5)
    assert enc(MyStr("hi")) == enc("hi")


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
    assert enc(Path("data/x.txt"), root) == enc(PurePosixPath("data/x.txt"), root)
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
    assert enc(memoryview(big)) == enc(bytearray(big))
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
