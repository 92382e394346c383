"""The hot-path shortcuts of key building keep every rule of the general path.

- ``Encoder.encode`` writes flat dicts/lists/tuples of exact built-in scalars with the C pickler
  (``_fast_container``) and plain strings directly;
- ``ArgumentSpec.bind`` binds plain signatures through a precomputed name list;
- ``KeyBuilder.key`` remembers the keys of recent argument sets (``REMEMBERED_KEYS``).

Each test checks a correctness rule (docs/keys.md) through ``Encoder().encode`` and through real
``@recorded`` keys; none of them measures time.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import inspect
import json
import math
import pickle
import random
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
import xxhash

from memo_replay import Store, UnhashableArgument, recorded, track
from memo_replay.keys.arguments import ArgumentSpec
from memo_replay.keys.builder import REMEMBERED_KEYS as _RECENT_KEYS
from memo_replay.keys.encoding import Encoder

if TYPE_CHECKING:
    from conftest import Project


def enc(value: object) -> bytes:
    return Encoder().encode(value)


@recorded
def keyed(value: object) -> object:
    """Only its key is used here (``keyed.memo.key``): it is never called."""
    return value


def key(value: object) -> str:
    return keyed.memo.key(value)


class Counter:
    """Counts real calls; never part of a key (instances have no stable encoding)."""

    def __init__(self) -> None:
        self.n = 0

    def hit(self) -> int:
        self.n += 1
        return self.n


class Tag(str):
    pass


class Level(enum.IntEnum):
    ONE = 1


# -- golden digests: committed recordings depend on these bytes ---------------------------------


@pytest.mark.parametrize(("value", "digest"), [
    ({"b": 1, "a": [1, 2.5, "x", None, True, b"zz"]}, "5d3af746186fc8e9"),
    ([1, "two", 3.0, (4, 5)], "647b1080be223cf1"),
    (("a", 1), "c92410c306b8a8b4"),
    ({f"k{i}": i for i in range(300)}, "a93cd0067e66a6ec"),
    ([2**70, -1, 0.1], "c6b0a8e20f570c3e"),
    (["é" * 300, "x" * 70000], "10de1c7895db163e"),
    ([PurePosixPath("a;b/c"), PureWindowsPath("C:/x")], "c332b9c597a453e6"),
    ([dt.datetime(2024, 1, 15, 12, tzinfo=ZoneInfo("Europe/London")),
      dt.datetime(2024, 1, 15, 12, tzinfo=dt.timezone.utc)], "f2177c9ba3d88bab"),
    ([collections.OrderedDict(b=1, a=2), collections.Counter(x=2), bytearray(b"ab"),
      memoryview(b"abcd").cast("H")], "d6a7c7949f4108d6"),
    ([10**5000, -(10**700), float("nan"), {1.5}], "30d0dbe85f481e4c"),
], ids=["nested-dict", "list-with-tuple", "flat-tuple", "dict-300", "bigint-float", "long-str",
        "paths", "zoned", "subclasses", "huge-int-nan"])
def test_golden_digests_do_not_change(value: object, digest: str) -> None:
    # Checked identical on Python 3.10-3.13 (key format 3, ENCODING_VERSION 4; the values of
    # the first six encode as they did before). A change here changes the key of every
    # committed recording with such an argument: bump ENCODING_VERSION and
    # CODE_FRAMING_VERSION (the key format users see) and say so in docs/keys.md.
    assert xxhash.xxh3_64_hexdigest(enc(value)) == digest


def test_golden_digests_cover_both_paths() -> None:
    # The fast path's own tags (P, Q) and the general ones: the golden values exercise both.
    assert enc(("a", 1))[:1] == b"P"
    assert enc({f"k{i}": i for i in range(300)})[:1] == b"Q"
    assert enc({"b": 1, "a": [1]})[:1] == b"d"  # a nested list: general path
    assert enc([1, (4, 5)])[:1] == b"l"


# -- dict order and hash seeds --------------------------------------------------------------------


def test_dict_insertion_order_does_not_count() -> None:
    a = {"x": 1, "y": 2.5, "z": None, "w": b"q", "v": True}
    b = dict(reversed(list(a.items())))
    assert list(a) != list(b)
    assert enc(a) == enc(b)
    assert key(a) == key(b)


def test_a_thousand_item_dict_in_any_order_has_one_encoding() -> None:
    items = [(f"setting_{i}", i if i % 3 else f"v{i}") for i in range(1000)]
    shuffled = items[:]
    random.Random(4).shuffle(shuffled)
    orders = [dict(items), dict(reversed(items)), dict(shuffled)]
    assert len({tuple(d) for d in orders}) == 3
    assert len({enc(d) for d in orders}) == 1
    assert len({key(d) for d in orders}) == 1
    changed = dict(items)
    changed["setting_500"] = 501
    assert enc(changed) != enc(orders[0])
    assert key(changed) != key(orders[0])


def test_int_keys_sort_by_value_in_any_order() -> None:
    a = {i: str(i) for i in range(50)}
    b = {i: str(i) for i in reversed(range(50))}
    assert enc(a) == enc(b)
    assert key(a) == key(b)
    bools = {True: "t", False: "f", 2: "two", 0.5: "half"}
    assert enc(bools) == enc(dict(reversed(list(bools.items()))))


HASH_SEED_MODULE = """
from memo_replay import recorded

@recorded
def configure(settings: dict, mixed: dict, nested: list) -> int:
    return len(settings)
"""

HASH_SEED_RUN = """
import json, xxhash
from memo_replay.keys.encoding import Encoder
from keyed_module import configure

words = {f"w{i}" for i in range(1000)}  # iterates in a PYTHONHASHSEED-dependent order
settings = {w: int(w[1:]) for w in words}
mixed = {k: repr(k) for k in {*(f"s{i}" for i in range(30)), *range(30)}}
mixed[None] = "none"
nested = [{w: 1 for w in ("p", "q", "r", "s")}, {"t", "u", "v", "x"}]
print(json.dumps({
    "order": list(settings)[:10],
    "mixed_order": [repr(k) for k in mixed],
    "key": configure.memo.key(settings, mixed, nested),
    "settings": xxhash.xxh3_64_hexdigest(Encoder().encode(settings)),
    "mixed": xxhash.xxh3_64_hexdigest(Encoder().encode(mixed)),
    "nested": xxhash.xxh3_64_hexdigest(Encoder().encode(nested)),
}))
"""


def test_keys_are_equal_under_different_hash_seeds(project: Project) -> None:
    project.write("keyed_module.py", HASH_SEED_MODULE)
    runs = [json.loads(project.run(HASH_SEED_RUN, env={"PYTHONHASHSEED": seed}).stdout)
            for seed in ("0", "12345")]
    # The dicts were really built in different orders...
    assert runs[0]["order"] != runs[1]["order"]
    assert runs[0]["mixed_order"] != runs[1]["mixed_order"]
    # ...and encode, and key, the same.
    for field in ("settings", "mixed", "nested", "key"):
        assert runs[0][field] == runs[1][field], field


# -- distinct values stay distinct ----------------------------------------------------------------


def test_list_and_tuple_differ_in_containers() -> None:
    assert enc([1, 2]) != enc((1, 2))
    assert enc([]) != enc(())
    assert enc(["a"]) != enc(("a",))
    assert key([1, 2]) != key((1, 2))
    assert enc({"a": 1}) != enc([("a", 1)])
    assert enc({}) != enc([]) != enc(())


@pytest.mark.parametrize("wrap", [
    lambda v: [v], lambda v: (v,), lambda v: {"k": v}, lambda v: {v: "k"},
], ids=["list", "tuple", "dict-value", "dict-key"])
def test_scalars_of_different_types_differ_inside_containers(wrap: Any) -> None:
    values: list[object] = [1, 1.0, True, "1", b"1", 0, 0.0, False, "", b"", None, -0.0]
    encodings = {enc(wrap(v)) for v in values}
    assert len(encodings) == len(values)
    assert len({key(wrap(v)) for v in values}) == len(values)


def test_int_keys_and_str_keys_differ() -> None:
    assert enc({1: "x"}) != enc({"1": "x"})
    assert enc({1: "x"}) != enc({1.0: "x"})
    assert enc({1: "x"}) != enc({True: "x"})
    assert enc({b"1": "x"}) != enc({"1": "x"})
    assert key({1: "x"}) != key({"1": "x"})


def test_shared_string_objects_do_not_change_the_encoding() -> None:
    shared = "".join(["shared-", "string"])  # one object, not interned
    separate = ["".join(["shared-", "string"]) for _ in range(3)]
    assert separate[0] is not separate[1]
    assert enc([shared, shared, shared]) == enc(separate)
    assert enc((shared, shared)) == enc((separate[0], separate[1]))
    assert enc({"a": shared, "b": shared}) == enc({"a": separate[0], "b": separate[1]})
    big = "b" * 1000
    assert enc([big, big]) == enc(["b" * 1000, "b" * 1000])
    assert key([shared, shared]) == key([separate[0], separate[1]])


def test_values_that_are_not_flat_scalars_never_collide_with_plain_ones() -> None:
    pairs: list[tuple[object, object]] = [
        ([Level.ONE], [1]),
        ([bytearray(b"x")], [b"x"]),
        ([memoryview(b"x")], [b"x"]),
        ([PurePosixPath("a")], ["a"]),
        ([{"a": 1}], [("a", 1)]),
        ([{1, 2}], [[1, 2]]),
        ([frozenset({1})], [{1}]),
        ({"k": Level.ONE}, {"k": 1}),
        ({"k": [1]}, {"k": (1,)}),
        ((1.5 + 0j,), (1.5,)),
    ]
    for special, plain in pairs:
        assert enc(special) != enc(plain), (special, plain)
        assert key(special) != key(plain), (special, plain)


def test_containers_with_non_flat_elements_still_encode_by_value() -> None:
    assert enc([{"a": 1, "b": 2}]) == enc([{"b": 2, "a": 1}])
    assert key([{"a": 1, "b": 2}]) == key([{"b": 2, "a": 1}])
    assert enc([{3, 1, 2}, frozenset({"y", "x"})]) == enc([{2, 3, 1}, frozenset({"x", "y"})])
    assert enc({"outer": {"b": 2, "a": 1}}) == enc({"outer": {"a": 1, "b": 2}})
    assert enc([Path("x/y")]) == enc([Path("x") / "y"])
    assert enc([Level.ONE, Level.ONE]) == enc([Level(1), Level.ONE])
    assert enc([bytearray(b"x")]) == enc([bytearray(b"x")])
    assert enc([Tag("x")]) == enc([Tag("x")])
    assert enc([Tag("x")]) != enc([Tag("y")])


def test_mixed_type_dict_keys_encode_deterministically() -> None:
    a = {1: "a", "b": 2}
    b = {"b": 2, 1: "a"}
    assert enc(a) == enc(b)
    assert key(a) == key(b)
    many: dict[object, object] = {None: 0, 1: "i", "s": 2, b"b": 3, 2.5: "f", (1, 2): "t"}
    assert enc(many) == enc(dict(reversed(list(many.items()))))
    assert enc({1: "a", "b": 2}) != enc({"1": "a", "b": 2})


def test_big_ints_nan_and_signed_zero() -> None:
    assert enc([2**100]) != enc([2**100 + 1])
    assert enc([2**100]) != enc([float(2**100)])
    assert enc([-(2**100)]) != enc([2**100])
    assert enc([2**100]) == enc([2**100])
    assert enc({"n": 2**100}) == enc({"n": 2**100})
    assert enc([0.0]) != enc([-0.0])
    assert enc({"z": 0.0}) != enc({"z": -0.0})
    assert enc({0.0: "z"}) != enc({-0.0: "z"})
    assert key([0.0]) != key([-0.0])
    nan = float("nan")
    assert enc([nan]) == enc([float("nan")])  # equal encodings although nan != nan
    assert enc([nan]) != enc([math.inf])
    assert enc([math.inf]) != enc([-math.inf])
    assert key([nan]) == key([float("nan")])


def test_strings_with_lone_surrogates() -> None:
    lone = "a\ud800b"
    assert enc([lone]) == enc(["a\ud800b"])
    assert enc([lone]) != enc(["a\udc00b"])
    assert enc([lone]) != enc(["ab"])
    assert enc({lone: 1}) != enc({"a\udfffb": 1})
    assert enc(lone) == enc("a\ud800b") != enc("a\udc00b")
    assert key(lone) != key("a\udc00b")
    assert key([lone]) != key(["a\udc00b"])


def test_str_fast_path_matches_the_general_encoding() -> None:
    # A top-level str skips the general encoder; the bytes must be the ones it would write,
    # so a str nested in a non-flat container and a str at the top level stay consistent.
    for text in ("", "x", "é" * 300, "a\ud800b", "x" * 70000):
        general = bytearray()
        Encoder()._encode(text, general, 0)
        assert enc(text) == bytes(general)
        assert enc(Tag(text)) != enc(text)  # a str subclass keys by its type and value


def test_bytes_over_the_inline_limit_in_containers() -> None:
    big = b"x" * 10_000
    assert enc([big]) == enc([b"x" * 10_000])
    assert enc([big]) != enc([b"x" * 9_999 + b"y"])
    assert enc([big]) != enc([bytearray(big)])


def test_nan_dict_keys_do_not_make_insertion_order_count() -> None:
    nan = float("nan")
    assert enc({nan: "a", 1.0: "b"}) == enc({1.0: "b", nan: "a"})


# -- binding plain signatures ---------------------------------------------------------------------


def test_plain_signature_binds_positional_keyword_and_defaults_to_one_key() -> None:
    @recorded
    def f(x: int, y: int = 2) -> int:
        return x + y

    keys = {f.memo.key(1), f.memo.key(x=1), f.memo.key(1, y=2), f.memo.key(y=2, x=1),
            f.memo.key(1, 2), f.memo.key(x=1, y=2)}
    assert len(keys) == 1
    assert f.memo.key(1, 3) != f.memo.key(1)
    assert f.memo.key(y=1, x=2) != f.memo.key(1, 2)


def test_plain_bind_equals_signature_bind() -> None:
    def f(a: int, b: int = 2, c: object = None, d: str = "d") -> None:
        pass

    spec = ArgumentSpec(f, function_id="f", ignore=frozenset(), root=Path.cwd())
    signature = inspect.signature(f)
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((1,), {}), ((1, 2), {}), ((1, 2, 3), {}), ((1, 2, 3, "x"), {}),
        ((), {"a": 1}), ((), {"d": "z", "a": 1}), ((1,), {"c": [1]}), ((1, 2), {"d": "q"}),
        ((), {"c": 3, "b": 4, "a": 5, "d": "e"}),
    ]
    for args, kwargs in calls:
        expected = signature.bind(*args, **kwargs)
        expected.apply_defaults()
        bound = spec.bind(args, kwargs)
        assert list(bound.items()) == list(expected.arguments.items()), (args, kwargs)


def plain(x: int, y: int = 2) -> int:
    return x + y


def error_of(fn: Any, *args: Any, **kwargs: Any) -> TypeError:
    with pytest.raises(TypeError) as info:
        fn(*args, **kwargs)
    return info.value


BAD_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any], str]] = [
    ("duplicate", (1,), {"x": 1}, "'x'"),
    ("unknown-keyword", (1,), {"z": 3}, "'z'"),
    ("missing", (), {"y": 3}, "'x'"),
    ("missing-no-args", (), {}, "'x'"),
    ("too-many-positionals", (1, 2, 3), {}, "positional"),
]


@pytest.mark.parametrize(("args", "kwargs", "names"), [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_a_call_that_does_not_fit_raises_type_error_and_calls_nothing(
        memo_env: Store, args: tuple[Any, ...], kwargs: dict[str, Any], names: str) -> None:
    calls = Counter()

    @recorded
    def f(x: int, y: int = 2) -> int:
        calls.hit()
        return x + y

    for fn in (f, f.memo.key):
        error = error_of(fn, *args, **kwargs)
        assert type(error) is TypeError
        assert names in str(error)
        assert str(error).startswith(f"{f.memo.id}(): ")
    error_of(plain, *args, **kwargs)  # the undecorated function rejects it too
    assert calls.n == 0
    assert list(memo_env.entries()) == []


@pytest.mark.parametrize(("args", "kwargs"), [c[1:3] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_a_call_that_does_not_fit_names_the_function(
        memo_env: Store, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    # docs/decisions.md: the TypeError names the function and the problem in Signature.bind's
    # words (not the undecorated function's exact message), before anything runs.
    decorated = recorded(plain)
    expected = inspect.signature(plain)
    with pytest.raises(TypeError) as reference:
        expected.bind(*args, **kwargs)
    for fn in (decorated, decorated.memo.key):
        message = str(error_of(fn, *args, **kwargs))
        assert message == f"{decorated.memo.id}(): {reference.value}"
    assert decorated.memo.id.endswith(".plain")


def test_function_without_parameters() -> None:
    @recorded
    def f() -> int:
        return 1

    assert f.memo.key() == f.memo.key()
    with pytest.raises(TypeError):
        f.memo.key(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        f.memo.key(x=1)  # type: ignore[call-arg]


def test_mutable_default_values(memo_env: Store) -> None:
    @recorded
    def with_options(x: int, options: dict[str, int] | None = None,
                     tags: list[str] = ["a"]) -> int:  # noqa: B006
        return x

    assert with_options.memo.key(1) == with_options.memo.key(1, None, ["a"])
    assert with_options.memo.key(1) == with_options.memo.key(1, tags=["a"])
    assert with_options.memo.key(1) != with_options.memo.key(1, tags=["b"])

    def accumulate(x: int, seen: list[int] = []) -> list[int]:  # noqa: B006
        seen.append(x)
        return list(seen)

    twin_default: list[int] = []

    def twin(x: int, seen: list[int] = twin_default) -> list[int]:
        seen.append(x)
        return list(seen)

    decorated = recorded(accumulate)
    # The default is the same (mutated) list object on every call: the key follows its current
    # value, so the decorated function returns what the undecorated one does.
    results = [decorated(1), decorated(1), decorated(2)]
    assert results == [twin(1), twin(1), twin(2)] == [[1], [1, 1], [1, 1, 2]]
    assert len(list(memo_env.entries())) == 3


def test_positional_only_parameters_bind_correctly() -> None:
    @recorded
    def f(a: int, /, b: int = 2) -> int:
        return a + b

    assert f.memo.key(1) == f.memo.key(1, 2) == f.memo.key(1, b=2)
    assert f.memo.key(1) != f.memo.key(2)
    with pytest.raises(TypeError):
        f.memo.key(a=1)  # type: ignore[call-arg]


def test_keyword_only_parameters_bind_correctly() -> None:
    @recorded
    def f(a: int, *, b: int = 2) -> int:
        return a + b

    assert f.memo.key(1) == f.memo.key(1, b=2) == f.memo.key(a=1) == f.memo.key(b=2, a=1)
    assert f.memo.key(1) != f.memo.key(1, b=3)
    with pytest.raises(TypeError):
        f.memo.key(1, 2)  # type: ignore[misc]


def test_var_positional_binds_correctly() -> None:
    @recorded
    def f(a: int, *rest: object) -> int:
        return a

    assert f.memo.key(1) == f.memo.key(a=1)
    assert f.memo.key(1, 2, 3) == f.memo.key(1, 2, 3)
    assert f.memo.key(1, 2, 3) != f.memo.key(1, (2, 3))
    assert f.memo.key(1, 2, 3) != f.memo.key(1, 3, 2)
    assert f.memo.key(1) != f.memo.key(1, ())


def test_var_keyword_binds_correctly() -> None:
    @recorded
    def f(a: int, b: int = 0, **extra: object) -> int:
        return a

    assert f.memo.key(1, c=2, d=3) == f.memo.key(a=1, d=3, c=2) == f.memo.key(1, 0, c=2, d=3)
    assert f.memo.key(1, c=2) != f.memo.key(1, d=2)
    assert f.memo.key(1) == f.memo.key(a=1, b=0)
    assert f.memo.key(1, b=2) != f.memo.key(1, c=2)


def test_plain_and_unusual_signatures_key_the_same_values_consistently(
        memo_env: Store) -> None:
    calls = Counter()

    @recorded
    def mixed(a: int, /, b: int, *args: int, c: int = 3, **kw: int) -> int:
        calls.hit()
        return a + b + sum(args) + c + sum(kw.values())

    assert mixed(1, 2) == 6
    assert mixed(1, b=2) == 6
    assert mixed(1, 2, c=3) == 6
    assert calls.n == 1
    assert mixed(1, 2, 4) == 10
    assert mixed(1, 2, d=4) == 10
    assert calls.n == 3


# -- remembered keys of recent argument sets ------------------------------------------------------


def test_mutating_a_dict_argument_in_place_gives_a_new_key(memo_env: Store) -> None:
    calls = Counter()

    @recorded
    def total(config: dict[str, int]) -> int:
        calls.hit()
        return sum(config.values())

    config = {"a": 1, "b": 2}
    first = total.memo.key(config)
    assert total(config) == 3
    assert total(config) == 3
    assert calls.n == 1
    config["b"] = 20
    assert total.memo.key(config) != first
    assert total(config) == 21  # not the replayed 3
    assert calls.n == 2
    config["c"] = 100
    assert total(config) == 121
    assert calls.n == 3
    del config["c"]
    config["b"] = 2
    assert total.memo.key(config) == first
    assert total(config) == 3  # back to the first argument set: replayed
    assert calls.n == 3


def test_mutating_a_list_argument_in_place_gives_a_new_key(memo_env: Store) -> None:
    calls = Counter()

    @recorded
    def joined(parts: list[object]) -> str:
        calls.hit()
        return "-".join(map(str, parts))

    parts: list[object] = ["a", "b"]
    assert joined(parts) == "a-b"
    parts.append("c")
    assert joined(parts) == "a-b-c"
    parts[0] = {"nested": [1]}  # now takes the general path
    assert joined(parts) == "{'nested': [1]}-b-c"
    parts[0]["nested"].append(2)  # type: ignore[index]
    assert joined(parts) == "{'nested': [1, 2]}-b-c"
    assert calls.n == 4
    parts[0] = "a"
    assert joined(parts) == "a-b-c"  # replayed
    assert calls.n == 4


def test_an_argument_with_memo_key_follows_its_state(memo_env: Store) -> None:
    calls = Counter()

    class Box:
        def __init__(self, value: int) -> None:
            self.value = value

        def __memo_key__(self) -> int:
            return self.value

    @recorded
    def unbox(box: Box) -> int:
        calls.hit()
        return box.value

    box = Box(1)
    assert unbox(box) == 1
    box.value = 2
    assert unbox(box) == 2
    assert calls.n == 2
    box.value = 1
    assert unbox(box) == 1
    assert calls.n == 2


def test_declared_file_is_read_again_on_every_call(memo_env: Store, tmp_path: Path) -> None:
    calls = Counter()
    data = tmp_path / "input.txt"
    data.write_text("first")

    @recorded(files=["{path}"])
    def read(path: str) -> str:
        calls.hit()
        return Path(path).read_text()

    assert read(str(data)) == "first"
    assert read(str(data)) == "first"
    assert calls.n == 1
    data.write_text("other")  # same size, same process, right away
    assert read(str(data)) == "other"
    assert calls.n == 2
    data.write_text("a longer text")
    assert read(str(data)) == "a longer text"
    data.write_text("first")
    assert read(str(data)) == "first"  # the first recording again
    assert calls.n == 3


def test_declared_glob_is_read_again_in_one_process(project: Project) -> None:
    project.write("reader.py", """
        from pathlib import Path
        from memo_replay import recorded

        ROOT = Path(__file__).resolve().parent

        @recorded(files=["data/*.txt"])
        def summary(prefix: str) -> str:
            with open(ROOT / "calls.log", "a") as log:
                log.write(prefix + "\\n")
            return prefix + "|".join(p.read_text() for p in sorted((ROOT / "data").glob("*.txt")))
    """)
    project.write("data/a.txt", "one")
    result = project.run("""
        from pathlib import Path
        from reader import summary

        print(summary(">"), summary(">"))
        Path("data/a.txt").write_text("two")
        print(summary(">"))
        Path("data/b.txt").write_text("new file")
        print(summary(">"))
        Path("data/b.txt").unlink()
        Path("data/a.txt").write_text("one")
        print(summary(">"))
    """)
    assert result.stdout.splitlines() == [">one >one", ">two", ">two|new file", ">one"]
    assert project.calls() == [">", ">", ">"]


def test_more_argument_sets_than_remembered_keys_stay_correct(memo_env: Store) -> None:
    assert _RECENT_KEYS == 4096
    calls = Counter()

    @recorded
    def square(n: int) -> int:
        calls.hit()
        return n * n

    total = _RECENT_KEYS + 904  # 5,000 distinct argument sets
    for n in range(total):
        assert square(n) == n * n
    assert calls.n == total
    assert square.memo.keys.remembered <= _RECENT_KEYS
    with track() as events:
        for n in [0, 1, 2, 17, 4095, 4096, 4097, 4999, 3]:
            assert square(n) == n * n
    assert calls.n == total  # all replayed, each the right value
    assert [e.outcome for e in events] == ["replayed"] * 9
    assert square(total) == total * total
    assert calls.n == total + 1


@dataclasses.dataclass
class Settings:
    name: str
    limits: list[int]


REMEMBERED_VALUES: list[object] = [
    1, 1.0, True, "1", b"1", None, 2**100, -0.0, 0.0, float("nan"), "a\ud800b",
    [1], (1,), {"1": 1}, {1: "1"}, {True: "1"}, [Level.ONE], Level.ONE, Tag("1"), [Tag("1")],
    [bytearray(b"1")], bytearray(b"1"), {"a": [1, {"b": (2, {3})}]}, frozenset({1, "1"}),
    {8, 16}, [{8, 16}], b"x" * 5000, [b"x" * 5000], {"k": b"y" * 5000}, Path("p/q"),
    Settings("s", [1]), [Settings("s", [1])], {"s": Settings("s", [1])},
]


def test_remembered_keys_equal_freshly_composed_keys(memo_env: Store) -> None:
    @recorded
    def f(x: object, y: object = None) -> object:
        return x

    for round_ in range(2):  # the second round finds the remembered keys
        for x in REMEMBERED_VALUES:
            for y in (None, "y", {"z": [x]}):
                bound = f.memo.keys.bind((x, y), {})
                assert f.memo.key(x, y) == f.memo.keys.compose(bound).key, (round_, x, y)
    keys = {f.memo.key(x) for x in REMEMBERED_VALUES}
    # Distinct values, distinct keys: a str subclass keys by its type and value, not as its str.
    assert f.memo.key(Tag("1")) != f.memo.key("1")
    assert f.memo.key([Tag("1")]) != f.memo.key(["1"])
    assert len(keys) == len(REMEMBERED_VALUES)


def test_equal_values_with_different_identities_share_one_key(memo_env: Store) -> None:
    calls = Counter()

    @recorded
    def f(value: object, **options: object) -> int:
        calls.hit()
        return 0

    pairs: list[tuple[object, object]] = [
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ({8, 16}, {16, 8}),  # equal sets that iterate (and pickle) in another order
        ([{8, 16}], [{16, 8}]),
        ({"n": {"x": [1], "y": (2,)}}, {"n": {"y": (2,), "x": [1]}}),
        (frozenset({8, 16}), frozenset({16, 8})),
    ]
    for a, b in pairs:
        assert a == b
        assert pickle.dumps(a) != pickle.dumps(b), (a, b)  # two identities for one value
        assert f.memo.key(a) == f.memo.key(b), (a, b)
        assert f.memo.key(b) == f.memo.key(a), (a, b)  # both identities are remembered now
    assert f.memo.key(1, p=1, q=2) == f.memo.key(1, q=2, p=1)
    before = calls.n
    f({"a": 1, "b": 2}, p=1, q=2)
    f({"b": 2, "a": 1}, q=2, p=1)
    assert calls.n == before + 1


def test_in_place_mutation_of_nested_values_gives_a_new_key(memo_env: Store) -> None:
    calls = Counter()

    @recorded
    def describe(value: object) -> str:
        calls.hit()
        return repr(value)

    nested: dict[str, Any] = {"ids": [1, 2], "inner": {"flags": {"a"}}}
    assert describe(nested) == repr(nested)
    nested["ids"].append(3)
    assert describe(nested) == repr(nested)
    nested["inner"]["flags"].add("b")
    assert describe(nested) == repr(nested)
    assert calls.n == 3
    settings = Settings("s", [1])
    assert describe(settings) == repr(settings)
    settings.limits.append(2)
    assert describe(settings) == repr(settings)
    holder = {"settings": settings}
    assert describe(holder) == repr(holder)
    settings.name = "t"
    assert describe(holder) == repr(holder)
    assert calls.n == 7
    big = bytearray(b"z" * 5000)
    assert describe([big]) == repr([big])
    big[0] = ord("y")
    assert describe([big]) == repr([big])
    assert calls.n == 9


def test_ignored_arguments_stay_out_of_the_remembered_identity(memo_env: Store) -> None:
    calls = Counter()

    class Client:
        pass

    @recorded(ignore=["client", "token"])
    def fetch(query: str, client: Client, **extra: object) -> str:
        calls.hit()
        return query

    assert fetch("q", Client(), token="t1") == "q"
    assert fetch("q", Client(), token="t2") == "q"
    assert fetch.memo.key("q", Client(), token="t3") == fetch.memo.key("q", Client())
    assert calls.n == 1
    assert fetch("q", Client(), token="t1", page=2) == "q"
    assert calls.n == 2


def test_an_unencodable_buffer_is_rejected_whatever_was_called_before(
        memo_env: Store) -> None:
    calls = Counter()

    @recorded
    def size(data: object) -> int:
        calls.hit()
        return len(bytes(data))  # type: ignore[call-overload]

    with pytest.raises(UnhashableArgument):
        size(pickle.PickleBuffer(b"x"))
    assert size(b"x") == 1
    with pytest.raises(UnhashableArgument):
        size(pickle.PickleBuffer(b"x"))
