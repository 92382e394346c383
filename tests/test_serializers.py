"""Serializers: chosen automatically, replayed as the same type in a fresh interpreter,
refused loudly (nothing written) when no serializer is faithful, pickle only on opt-in."""

from __future__ import annotations

import base64
import collections
import collections.abc
import dataclasses
import datetime as dt
import decimal
import enum
import json
import os
import pickle
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Optional, TypeVar, Union

import pytest
from conftest import entry_files, last_json
from pydantic import BaseModel
from typing_extensions import TypedDict  # pydantic needs it before 3.12
from xxhash import xxh3_128_hexdigest

from memo_replay import (
    InvalidOption,
    MemoReplayWarning,
    SerializationError,
    Serializer,
    Store,
    recorded,
    register_serializer,
)
from memo_replay.serializers import InvalidPayload, registry
from memo_replay.serializers.typenames import resolve_type, type_name

if TYPE_CHECKING:
    from conftest import Project


# -- round trips through a real record → replay in separate interpreters -----------------------

MODELS = '''
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel

from memo_replay import recorded

HERE = Path(__file__).parent


def _log(name: str) -> None:
    with open(HERE / "calls.log", "a") as fh:
        fh.write(name + "\\n")


class Point(BaseModel):
    x: int
    y: float


class Shape(BaseModel):
    name: str
    points: list[Point]
    anchors: dict[str, Point] = {}
    parent: Shape | None = None


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Stamp:
    when: dt.datetime
    color: Color


@dataclasses.dataclass
class Report:
    stamp: Stamp
    history: list[Stamp]
    where: Path
    ident: uuid.UUID
    amount: Decimal
    note: str | None = None


def build_shape(n: int) -> Shape:
    inner = Shape(name="inner", points=[Point(x=0, y=0.5)])
    return Shape(name=f"shape{n}", points=[Point(x=i, y=i / 2) for i in range(n)],
                 anchors={"origin": Point(x=0, y=0.0)}, parent=inner)


def build_report(n: int) -> Report:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc)
    return Report(
        stamp=Stamp(when, Color.RED),
        history=[Stamp(when + dt.timedelta(days=i), Color.BLUE) for i in range(n)],
        where=Path("reports") / f"r{n}.txt",
        ident=uuid.UUID(int=n),
        amount=Decimal("12.50"),
    )


def build_json(n: int) -> dict:
    return {"n": n, "items": [1, 2.5, None, True, "é ✓"], "nested": {"empty": [], "d": {}}}


def build_bytes(n: int) -> bytes:
    return bytes(range(256)) * n


@recorded
def make_shape(n: int) -> Shape:
    _log("make_shape")
    return build_shape(n)


@recorded
def make_report(n: int) -> Report:
    _log("make_report")
    return build_report(n)


@recorded
def make_json(n: int) -> dict:
    _log("make_json")
    return build_json(n)


@recorded
def make_bytes(n: int) -> bytes:
    _log("make_bytes")
    return build_bytes(n)
'''

CHECK = """
import json
from decimal import Decimal
from pathlib import Path
from uuid import UUID
import sermod as m

shape = m.make_shape(3)
report = m.make_report(2)
data = m.make_json(1)
blob = m.make_bytes(2)
print(json.dumps({
    "shape_type": type(shape) is m.Shape,
    "shape_equal": shape == m.build_shape(3),
    "shape_nested": type(shape.points[0]) is m.Point and type(shape.parent) is m.Shape
                    and type(shape.anchors["origin"]) is m.Point,
    "report_type": type(report) is m.Report,
    "report_equal": report == m.build_report(2),
    "report_nested": type(report.stamp) is m.Stamp and type(report.history[1]) is m.Stamp
                     and type(report.stamp.color) is m.Color,
    "report_fields": isinstance(report.where, Path) and type(report.ident) is UUID
                     and type(report.amount) is Decimal and str(report.amount) == "12.50"
                     and report.stamp.when.utcoffset().total_seconds() == 0
                     and report.stamp.when.microsecond == 123456,
    "json_equal": data == m.build_json(1) and list(data) == ["n", "items", "nested"],
    "bytes_equal": type(blob) is bytes and blob == m.build_bytes(2),
}))
"""


def test_builtin_serializers_round_trip_across_interpreters(project: Project) -> None:
    project.write("sermod.py", MODELS)
    recorded_run = last_json(project.run(CHECK).stdout)
    assert all(recorded_run.values()), recorded_run
    calls = ["make_shape", "make_report", "make_json", "make_bytes"]
    assert project.calls() == calls

    replayed = last_json(project.run(CHECK, mode="replay").stdout)
    assert all(replayed.values()), replayed
    assert project.calls() == calls  # nothing was called again

    by_function = {json.loads(p.read_text())["function"]: json.loads(p.read_text())
                   for p in entry_files(project.root / "fixtures_store")}
    assert {f: d["result"]["serializer"] for f, d in by_function.items()} == {
        "sermod.make_shape": "pydantic",
        "sermod.make_report": "dataclass",
        "sermod.make_json": "json",
        "sermod.make_bytes": "bytes",
    }
    assert by_function["sermod.make_shape"]["result"]["type"] == "sermod:Shape"
    assert by_function["sermod.make_report"]["result"]["type"] == "sermod:Report"
    report = by_function["sermod.make_report"]["result"]["payload"]
    assert report["amount"] == "12.50"
    assert report["stamp"]["color"] == "red"
    assert report["where"] == "reports/r2.txt"
    blob = by_function["sermod.make_bytes"]["result"]
    assert blob["encoding"] == "binary"
    assert base64.b64decode(blob["payload"]) == bytes(range(256)) * 2


# -- refusals: nothing written ------------------------------------------------------------------


class Opaque:
    def __init__(self, value: int) -> None:
        self.value = value


@pytest.mark.parametrize(("value", "type_name"), [
    ((1, 2), "tuple"),
    ([1, (2, 3)], "list"),
    ({1: "a"}, "dict"),
    ({"a", "b"}, "set"),
])
def test_non_faithful_json_is_refused_and_nothing_written(
        memo_env: Store, value: Any, type_name: str) -> None:
    calls: list[int] = []

    @recorded(ignore=["calls"])
    def produce(calls: list[int]) -> Any:
        calls.append(1)
        return value

    with pytest.raises(SerializationError, match=type_name) as info:
        produce(calls)
    assert "Nothing was written" in str(info.value)
    assert calls == [1]
    assert entry_files(memo_env.path) == []
    assert list(memo_env.entries()) == []


def test_tuple_result_in_subprocess_writes_nothing(project: Project) -> None:
    project.write("tuplemod.py", """
        from memo_replay import recorded

        @recorded
        def pair(n: int):  # no return annotation: nothing says it must come back a tuple
            return (n, n + 1)
    """)
    result = project.run("import tuplemod; tuplemod.pair(1)", check=False)
    assert result.returncode != 0
    assert "SerializationError" in result.stderr
    assert "tuple" in result.stderr
    assert entry_files(project.root / "fixtures_store") == []


def test_unannotated_tuple_result_says_how_to_annotate_and_keeps_the_result(
        memo_env: Store) -> None:
    calls: list[int] = []

    @recorded(ignore=["calls"])
    def pair(n: int, calls: list[int]):  # type: ignore[no-untyped-def]  # unannotated on purpose
        calls.append(n)
        return (n, "x", (1.5, None))

    with pytest.raises(SerializationError) as info:
        pair(1, calls)
    message = str(info.value)
    assert "`def pair(...) -> tuple[int, str, tuple[float, None]]:`" in message
    assert "returned a `tuple`" in message
    assert "Nothing was written" in message
    assert "error.result" in message
    assert info.value.has_result
    assert info.value.result == (1, "x", (1.5, None))  # the call ran once; its answer is kept
    assert calls == [1]
    assert entry_files(memo_env.path) == []

    @recorded
    def pair_annotated(n: int) -> tuple[int, str, tuple[float, None]]:
        return (n, "x", (1.5, None))

    assert pair_annotated(1) == (1, "x", (1.5, None))  # the suggested annotation records
    assert pair_annotated(1) == (1, "x", (1.5, None))
    assert len(list(memo_env.entries())) == 1


@pytest.mark.parametrize(("value", "annotation"), [
    ((), "tuple[()]"),
    (tuple(range(10)), "tuple[int, ...]"),
    ({"a", "b"}, "set[str]"),
    (frozenset({1, "a"}), "frozenset[int | str]"),
    (([1], {"k": 2.0}), "tuple[list[int], dict[str, float]]"),
    ([1, 2], None),
])
def test_suggested_annotation(value: Any, annotation: str | None) -> None:
    from memo_replay.serializers import suggested_annotation

    assert suggested_annotation(value) == annotation


def test_serialization_error_keeps_pydantic_text_out_and_the_result_in(
        memo_env: Store) -> None:
    """The message says what memo_replay knows (function, type, fix); pydantic's paragraph
    (arbitrary_types_allowed, handler(), a docs URL) is only in the chained cause."""
    @recorded
    def make() -> Opaque:
        return Opaque(7)

    with pytest.raises(SerializationError) as info:
        make()
    message = str(info.value)
    assert make.memo.id in message
    assert "Opaque" in message
    assert "PydanticSchemaGenerationError" in message
    for pydantic_words in ("arbitrary_types_allowed", "errors.pydantic.dev", "handler("):
        assert pydantic_words not in message
        assert pydantic_words in str(info.value.__cause__)
    assert "annotate the return type" not in message  # it is annotated: that is the problem
    assert "\n" not in message
    assert isinstance(info.value.result, Opaque)
    assert info.value.result.value == 7
    assert entry_files(memo_env.path) == []


def test_serialization_error_from_a_replay_has_no_result() -> None:
    error = SerializationError("cannot read")
    assert not error.has_result
    assert error.result is None
    assert str(error) == "cannot read"


def test_nan_result_is_refused(memo_env: Store) -> None:
    @recorded
    def ratio() -> float:
        return float("nan")

    with pytest.raises(SerializationError):
        ratio()
    assert entry_files(memo_env.path) == []


def test_unserializable_object_names_type_and_fixes(memo_env: Store) -> None:
    @recorded
    def make() -> Opaque:
        return Opaque(1)

    with pytest.raises(SerializationError) as info:
        make()
    message = str(info.value)
    assert "Opaque" in message
    assert "register_serializer" in message
    assert 'serializer="pickle"' in message
    assert make.memo.id in message
    assert entry_files(memo_env.path) == []


# -- pickle: opt-in only -----------------------------------------------------------------------

PICKLED = '''
from pathlib import Path

from memo_replay import recorded

HERE = Path(__file__).parent


class Thing:
    def __init__(self, name, parts):
        self.name = name
        self.parts = parts

    def __eq__(self, other):
        return type(other) is Thing and (self.name, self.parts) == (other.name, other.parts)


@recorded(serializer="pickle")
def make_thing(n: int) -> Thing:
    with open(HERE / "calls.log", "a") as fh:
        fh.write("make_thing\\n")
    return Thing(f"t{n}", ({1, 2}, (3, 4), frozenset({n})))


@recorded
def plain(n: int) -> dict:
    with open(HERE / "calls.log", "a") as fh:
        fh.write("plain\\n")
    return {"n": n}
'''

CHECK_THING = """
import pickmod
t = pickmod.make_thing(5)
print(type(t) is pickmod.Thing and t == pickmod.Thing("t5", ({1, 2}, (3, 4), frozenset({5}))))
"""


def test_pickle_opt_in_round_trips_an_arbitrary_object(project: Project) -> None:
    project.write("pickmod.py", PICKLED)
    assert project.run(CHECK_THING).stdout.strip() == "True"
    assert project.run(CHECK_THING, mode="replay").stdout.strip() == "True"
    assert project.calls() == ["make_thing"]
    [path] = entry_files(project.root / "fixtures_store")
    result = json.loads(path.read_text())["result"]
    assert result["serializer"] == "pickle"
    assert result["encoding"] == "binary"
    assert json.loads(path.read_text())["components"]["serializer"] == "pickle"


def _hostile_pickle(marker: Path) -> bytes:
    """A pickle that creates ``marker`` (a directory) when it is loaded."""

    class Hostile:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.mkdir, (str(marker),))

    return pickle.dumps(Hostile(), protocol=4)


def _plant_pickle(path: Path, data: bytes) -> None:
    document = json.loads(path.read_text())
    document["result"] = {
        "checksum": xxh3_128_hexdigest(data),
        "encoding": "binary",
        "payload": base64.b64encode(data).decode(),
        "serializer": "pickle",
        "serializer_version": 1,
        "size": len(data),
        "type": None,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def test_planted_pickle_is_refused_unread(project: Project, tmp_path: Path) -> None:
    # The hostile payload really does run code when unpickled (the control case).
    control = tmp_path / "control-marker"
    pickle.loads(_hostile_pickle(control))
    assert control.is_dir()

    project.write("pickmod.py", PICKLED)
    project.run("import pickmod; pickmod.plain(1)")
    [path] = entry_files(project.root / "fixtures_store")
    marker = tmp_path / "pwned-marker"
    _plant_pickle(path, _hostile_pickle(marker))
    store = Store(project.root / "fixtures_store")
    assert store.verify() == []  # a well-formed entry: the refusal is about trust, not damage

    replay = project.run("""
        import pickmod
        from memo_replay import SerializationError
        try:
            pickmod.plain(1)
        except SerializationError as exc:
            print("refused:", exc)
    """, mode="replay")
    assert "refused:" in replay.stdout
    assert "pickle" in replay.stdout
    assert not marker.exists()

    entry = store.get(path.stem)
    assert entry is not None
    with pytest.raises(SerializationError, match="pickle"):
        entry.load()
    assert not marker.exists()

    auto = project.run("""
        import warnings, pickmod
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            print(pickmod.plain(1))
        print([w.category.__name__ for w in caught])
    """)
    assert "MemoReplayWarning" in auto.stdout
    assert not marker.exists()
    assert project.calls() == ["plain", "plain"]  # re-recorded as plain JSON
    assert json.loads(path.read_text())["result"]["serializer"] == "json"


def test_planted_pickle_refused_in_process(memo_env: Store, tmp_path: Path) -> None:
    @recorded
    def plain(n: int) -> dict[str, int]:
        return {"n": n}

    plain(1)
    [path] = entry_files(memo_env.path)
    marker = tmp_path / "marker"
    _plant_pickle(path, _hostile_pickle(marker))
    with pytest.warns(MemoReplayWarning, match="pickle"):
        assert plain(1) == {"n": 1}
    assert not marker.exists()


# -- registered serializers --------------------------------------------------------------------


class _NoId:
    version = 1

    def dumps(self, value: Any) -> str:
        return ""

    def loads(self, data: bytes | str) -> Any:
        return None


class _BadVersion:
    id = "bad-version"
    version = "1"

    def dumps(self, value: Any) -> str:
        return ""

    def loads(self, data: bytes | str) -> Any:
        return None


class _NoDumps:
    id = "no-dumps"
    version = 1

    def loads(self, data: bytes | str) -> Any:
        return None


class _BuiltinId:
    id = "json"
    version = 1

    def dumps(self, value: Any) -> str:
        return ""

    def loads(self, data: bytes | str) -> Any:
        return None


@pytest.mark.parametrize(("serializer", "complaint"), [
    (_NoId(), "`id`"),
    (_BadVersion(), "`version`"),
    (_NoDumps(), "`dumps`"),
    (_BuiltinId(), "built-in"),
    (object(), "`id`"),
])
def test_register_serializer_rejects_bad_serializers(serializer: Any, complaint: str) -> None:
    with pytest.raises(InvalidOption, match=complaint):
        register_serializer(Opaque, serializer)


def test_register_serializer_rejects_a_non_type() -> None:
    class Fine:
        id = "fine"
        version = 1

        def dumps(self, value: Any) -> str:
            return ""

        def loads(self, data: bytes | str) -> Any:
            return None

    assert isinstance(Fine(), Serializer)
    with pytest.raises(InvalidOption, match="not a type"):
        register_serializer(Opaque(1), Fine())  # type: ignore[arg-type]


CUSTOM = '''
from pathlib import Path

from memo_replay import recorded, register_serializer

HERE = Path(__file__).parent


class Celsius:
    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def __eq__(self, other: object) -> bool:
        return type(other) is Celsius and other.degrees == self.degrees


class CelsiusSerializer:
    id = "celsius"
    version = 1

    def dumps(self, value: Celsius) -> str:
        return f"{value.degrees}C"

    def loads(self, data: str) -> Celsius:
        return Celsius(float(data.removesuffix("C")))


register_serializer(Celsius, CelsiusSerializer())


@recorded
def temperature(city: str) -> Celsius:
    with open(HERE / "calls.log", "a") as fh:
        fh.write("temperature\\n")
    return Celsius(21.5)
'''

CHECK_CUSTOM = """
import tempmod
from memo_replay import ReplayMiss
try:
    t = tempmod.temperature("Oslo")
except ReplayMiss:
    print("miss")
else:
    print(type(t) is tempmod.Celsius and t == tempmod.Celsius(21.5))
"""


def test_custom_serializer_round_trips_and_version_bump_rerecords(project: Project) -> None:
    project.write("tempmod.py", CUSTOM)
    assert project.run(CHECK_CUSTOM).stdout.strip() == "True"
    assert project.run(CHECK_CUSTOM, mode="replay").stdout.strip() == "True"
    assert project.calls() == ["temperature"]
    [path] = entry_files(project.root / "fixtures_store")
    result = json.loads(path.read_text())["result"]
    assert (result["serializer"], result["serializer_version"]) == ("celsius", 1)
    assert result["payload"] == "21.5C"
    assert result["encoding"] == "text"

    project.replace("tempmod.py", "    version = 1\n", "    version = 2\n")
    # the key does not change (the function did not), but the old recording no longer counts
    assert project.run(CHECK_CUSTOM, mode="replay").stdout.strip() == "miss"
    assert project.run(CHECK_CUSTOM).stdout.strip() == "True"
    assert project.calls() == ["temperature", "temperature"]
    assert entry_files(project.root / "fixtures_store") == [path]
    assert json.loads(path.read_text())["result"]["serializer_version"] == 2
    assert project.run(CHECK_CUSTOM, mode="replay").stdout.strip() == "True"
    assert project.calls() == ["temperature", "temperature"]


def test_unregistered_serializer_is_a_clear_error(project: Project) -> None:
    project.write("tempmod.py", CUSTOM)
    project.run(CHECK_CUSTOM)
    [path] = entry_files(project.root / "fixtures_store")
    entry = Store(project.root / "fixtures_store").get(path.stem)
    assert entry is not None
    with pytest.raises(SerializationError, match="register_serializer"):
        entry.load()  # this process never registered "celsius"


@pytest.mark.parametrize(("option", "needs"), [("pydantic", "pydantic model"),
                                               ("dataclass", "dataclass instance")])
def test_class_bound_option_with_wrong_value_is_a_serialization_error(
        memo_env: Store, option: str, needs: str) -> None:
    """Regression: this used to raise InvalidOption calling 'pydantic' an unknown serializer."""
    @recorded(serializer=option)
    def make() -> dict[str, int]:
        return {"n": 1}

    with pytest.raises(SerializationError, match=needs) as info:
        make()
    assert "unknown serializer" not in str(info.value)
    assert entry_files(memo_env.path) == []


def test_planted_type_path_does_not_import_arbitrary_modules(project: Project) -> None:
    project.write("sidefx.py", """
        from pathlib import Path
        Path(__file__).with_name("IMPORTED").mkdir(exist_ok=True)

        class Thing:
            pass
    """)
    project.write("pickmod.py", PICKLED)
    project.run("import pickmod; pickmod.plain(1)")
    [path] = entry_files(project.root / "fixtures_store")
    document = json.loads(path.read_text())
    document["result"]["serializer"] = "dataclass"
    document["result"]["type"] = "sidefx:Thing"
    path.write_text(json.dumps(document, indent=2) + "\n")
    result = project.run("""
        import pickmod
        from memo_replay import SerializationError
        try:
            pickmod.plain(1)
        except SerializationError as exc:
            print("REFUSED:", exc)
    """, mode="replay")
    assert not (project.root / "IMPORTED").exists()
    assert "REFUSED:" in result.stdout
    assert "'sidefx' is not imported" in result.stdout
    assert "never imports modules named by a recording" in result.stdout


# -- stored type names: every name a recording can hold resolves; nothing else does --------------


class Tagged(enum.Enum):
    A = "a"


class Pair(NamedTuple):
    left: int
    right: str


class Movie(TypedDict):
    title: str


@dataclasses.dataclass
class Spot:
    x: int


class Model(BaseModel):
    name: str


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]


NAMEABLE: list[Any] = [
    int, str, float, bool, bytes, type(None), list[int], dict[str, list[float]],
    tuple[int, ...], tuple[int, str], set[str], frozenset[int], Optional[int],  # noqa: UP045
    Union[int, str, None],  # noqa: UP007
    list[Any], dt.datetime, dt.date, dt.timedelta, decimal.Decimal, uuid.UUID, Path,
    collections.deque[int], collections.OrderedDict[str, int],
    collections.abc.Sequence[int], collections.abc.Mapping[str, int],
    Tagged, Pair, Movie, Spot, Model, list[Model], dict[str, Spot], Page[Model],
    Optional[Pair],  # noqa: UP045
]


@pytest.mark.parametrize("tp", NAMEABLE, ids=repr)
def test_every_recordable_type_name_resolves_to_the_same_type(tp: Any) -> None:
    """What the recorder names is what replay gets back — the value-type check refuses none of
    it (these are read back from the stored name when the annotation does not say it)."""
    name = type_name(tp)
    assert resolve_type(name) == tp
    serializer = registry.resolve("typed", name, None, function="f")
    assert serializer.annotation == tp  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", [
    "os:system", "builtins:eval", "builtins:exec", "subprocess:Popen", "os:environ",
    "builtins:type", "builtins:list[subprocess:Popen]", "builtins:int[builtins:str]",
    "typing:Union[builtins:int, os:system]", "importlib:import_module", "sys:modules",
    "builtins:list[builtins:int", "builtins:int]", "nocolon", "",
])
def test_a_stored_name_that_is_no_value_type_is_refused_unbuilt(name: str) -> None:
    with pytest.raises(InvalidPayload):
        resolve_type(name)
    for serializer_id in ("typed", "pydantic", "dataclass"):
        with pytest.raises(InvalidPayload):
            registry.resolve(serializer_id, name, None, function="f")


def test_result_not_matching_its_annotation_says_where_in_one_line(memo_env: Store) -> None:
    """pydantic's validation error is reduced to where and what; the result is kept."""
    @recorded
    def pair(n: int) -> tuple[int, str]:
        return (n, 5)  # type: ignore[return-value]  # the mistake under test

    with pytest.raises(SerializationError) as info:
        pair(1)
    message = str(info.value)
    assert "ValidationError: at [1]: Input should be a valid string." in message
    assert "matches the return annotation" in message
    assert "\n" not in message
    assert info.value.result == (1, 5)
    assert entry_files(memo_env.path) == []
