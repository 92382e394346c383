"""One contract, run over every serializer: a result comes back as the same type with an equal
value (in-process and through a real record → replay in fresh interpreters, without calling the
function again), and two recordings of it are byte-identical apart from the volatile fields.

Then what surrounds the contract: serializer versions, serializers that do not round-trip,
numpy object arrays, numpy never imported for nothing, planted type names, and
`[tool.memo_replay] pickle_functions`.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib
import json
import os
import pickle
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from conftest import entry_files, last_json
from pydantic import BaseModel
from xxhash import xxh3_128_hexdigest

from memo_replay import (
    ConfigError,
    SerializationError,
    Serializer,
    Store,
    recorded,
    register_serializer,
)
from memo_replay.config import load_config
from memo_replay.serializers import registry, round_trips
from memo_replay.store.entry import VOLATILE_FIELDS, render

if TYPE_CHECKING:
    from conftest import Project


def write_pyproject(project: Project, table: str) -> None:
    project.write("pyproject.toml", f"""
        [project]
        name = "proj"
        version = "0"

        [tool.memo_replay]
        {table}
    """)


# -- the cases ----------------------------------------------------------------------------------

# case id -> the serializer the library must choose for it. `build_<case>()` in CASES_MODULE
# makes the value, `case_<case>()` is the recorded function returning it (ids use "-", Python
# names "_").
CASES: dict[str, str] = {
    "json-dict": "json",
    "json-list": "json",
    "json-unicode-str": "json",
    "bytes-all-values": "bytes",
    "bytes-non-utf8": "bytes",
    "bytes-empty": "bytes",
    "numpy-float32-2d": "numpy",
    "numpy-int64": "numpy",
    "numpy-bool": "numpy",
    "numpy-nan-inf": "numpy",
    "numpy-0d": "numpy",
    "numpy-fortran-order": "numpy",
    "numpy-str-dtype": "numpy",
    "numpy-large-payload-file": "numpy",
    "pydantic-plain": "pydantic",
    "pydantic-nested": "pydantic",
    "pydantic-generic-page": "pydantic",
    "pydantic-set-field": "pydantic",
    "dataclass-nested": "dataclass",
    "typed-list-of-models": "typed",
    "typed-tuple": "typed",
    "typed-dict-of-models": "typed",
    "typed-optional-namedtuple": "typed",
    "typed-set": "typed",
    "typed-optional-model": "pydantic",  # `-> Item | None` returning an Item: the model's own
    "typed-optional-none": "json",       # ... and returning None: plain JSON null
    "pickle-object": "pickle",
    "registered-celsius": "contract-celsius",
}



def slug(case: str) -> str:
    return case.replace("-", "_")


CASES_MODULE = r'''
"""Contract values: `build_<case>()` makes one, `case_<case>()` records it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

import numpy as np
from pydantic import BaseModel

from memo_replay import recorded, register_serializer

HERE = Path(__file__).parent
T = TypeVar("T")


def _log(name: str) -> None:
    with open(HERE / "calls.log", "a", encoding="utf-8") as fh:
        fh.write(name + "\n")


class Item(BaseModel):
    name: str
    qty: int
    price: float = 0.0


class Order(BaseModel):
    id: int
    items: list[Item]
    tags: dict[str, int]
    placed: dt.datetime
    note: str | None = None
    parent: Order | None = None


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    cursor: str | None = None


class Labels(BaseModel):
    names: set[str]


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


class Pair(NamedTuple):
    left: int
    right: str


class Thing:
    """An arbitrary object: only cloudpickle records it."""

    def __init__(self, name, parts):
        self.name = name
        self.parts = parts

    def __eq__(self, other):
        return type(other) is Thing and (self.name, self.parts) == (other.name, other.parts)

    def __repr__(self):
        return f"Thing({self.name!r}, {self.parts!r})"


class Celsius:
    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def __eq__(self, other):
        return type(other) is Celsius and other.degrees == self.degrees

    def __repr__(self):
        return f"Celsius({self.degrees!r})"


class CelsiusSerializer:
    id = "contract-celsius"
    version = 1
    payload = "text"

    def dumps(self, value: Celsius) -> str:
        return repr(value.degrees)

    def loads(self, data: str | bytes) -> Celsius:
        return Celsius(float(data))


register_serializer(Celsius, CelsiusSerializer())

NAMES = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}


def build_json_dict():
    return {"title": "Grüße, 世界 ✓", "count": 3, "ratio": 0.1, "big": 2**70, "tiny": -1.5e-300,
            "ok": True, "no": False, "missing": None, "items": [1, 2.5, "x", [], {}],
            "nested": {"z": [True, None], "a": {"deep": ["é", "tab\tquote\"", "🎉"]}}}


def build_json_list():
    return [1, -0.0, "two", None, True, {"k": ["v"]}, [[], [1]]]


def build_json_unicode_str():
    return "naïve café — ✓ 日本語 \U0001F600 \u0000 end"


def build_bytes_all_values():
    return bytes(range(256)) * 2


def build_bytes_non_utf8():
    return b"\xff\xfe\x00\x80 not utf-8 \xc3\x28 \xed\xa0\x80"


def build_bytes_empty():
    return b""


def build_numpy_float32_2d():
    return np.arange(12, dtype=np.float32).reshape(3, 4) / np.float32(7)


def build_numpy_int64():
    return np.array([-(2**62), -1, 0, 2**62], dtype=np.int64)


def build_numpy_bool():
    return np.array([[True, False, True], [False, False, True]])


def build_numpy_nan_inf():
    return np.array([1.5, np.nan, -np.inf, np.inf, -0.0])


def build_numpy_0d():
    return np.array(3.25)


def build_numpy_fortran_order():
    return np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))


def build_numpy_str_dtype():
    return np.array(["a", "héllo", "日本"])


def build_numpy_large_payload_file():
    return np.linspace(0.0, 1.0, 10_000)


def build_pydantic_plain():
    return Item(name="bolt", qty=3, price=0.25)


def build_pydantic_nested():
    first = Order(id=6, items=[], tags={}, placed=dt.datetime(2024, 1, 2, 3, 4, 5), note="first")
    return Order(id=7, items=[Item(name="nut", qty=2), Item(name="bolt", qty=1, price=1.5)],
                 tags={"b": 2, "a": 1}, placed=dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
                 parent=first)


def build_pydantic_generic_page():
    return Page[Item](items=[Item(name="a", qty=1), Item(name="b", qty=2)], total=2)


def build_pydantic_set_field():
    return Labels(names=set(NAMES))


def build_dataclass_nested():
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)
    return Report(stamp=Stamp(when, Color.RED),
                  history=[Stamp(when + dt.timedelta(days=i), Color.BLUE) for i in range(2)],
                  where=Path("reports") / "r2.txt", ident=uuid.UUID(int=42),
                  amount=Decimal("12.50"))


def build_typed_list_of_models():
    return [Item(name="a", qty=1), Item(name="b", qty=2, price=9.75)]


def build_typed_tuple():
    return (7, "seven")


def build_typed_dict_of_models():
    return {"b": Item(name="b", qty=2), "a": Item(name="a", qty=1)}


def build_typed_optional_namedtuple():
    return Pair(3, "three")


def build_typed_set():
    return set(NAMES)


def build_typed_optional_model():
    return Item(name="maybe", qty=0)


def build_typed_optional_none():
    return None


def build_pickle_object():
    return Thing("gear", [1, 2.5, "x", {"k": (3, 4)}])


def build_registered_celsius():
    return Celsius(21.5)


@recorded
def case_json_dict() -> dict:
    _log("json-dict")
    return build_json_dict()


@recorded
def case_json_list() -> list:
    _log("json-list")
    return build_json_list()


@recorded
def case_json_unicode_str() -> str:
    _log("json-unicode-str")
    return build_json_unicode_str()


@recorded
def case_bytes_all_values() -> bytes:
    _log("bytes-all-values")
    return build_bytes_all_values()


@recorded
def case_bytes_non_utf8() -> bytes:
    _log("bytes-non-utf8")
    return build_bytes_non_utf8()


@recorded
def case_bytes_empty() -> bytes:
    _log("bytes-empty")
    return build_bytes_empty()


@recorded
def case_numpy_float32_2d() -> np.ndarray:
    _log("numpy-float32-2d")
    return build_numpy_float32_2d()


@recorded
def case_numpy_int64() -> np.ndarray:
    _log("numpy-int64")
    return build_numpy_int64()


@recorded
def case_numpy_bool() -> np.ndarray:
    _log("numpy-bool")
    return build_numpy_bool()


@recorded
def case_numpy_nan_inf() -> np.ndarray:
    _log("numpy-nan-inf")
    return build_numpy_nan_inf()


@recorded
def case_numpy_0d() -> np.ndarray:
    _log("numpy-0d")
    return build_numpy_0d()


@recorded
def case_numpy_fortran_order() -> np.ndarray:
    _log("numpy-fortran-order")
    return build_numpy_fortran_order()


@recorded
def case_numpy_str_dtype() -> np.ndarray:
    _log("numpy-str-dtype")
    return build_numpy_str_dtype()


@recorded
def case_numpy_large_payload_file() -> np.ndarray:
    _log("numpy-large-payload-file")
    return build_numpy_large_payload_file()


@recorded
def case_pydantic_plain() -> Item:
    _log("pydantic-plain")
    return build_pydantic_plain()


@recorded
def case_pydantic_nested() -> Order:
    _log("pydantic-nested")
    return build_pydantic_nested()


@recorded
def case_pydantic_generic_page() -> Page[Item]:
    _log("pydantic-generic-page")
    return build_pydantic_generic_page()


@recorded
def case_pydantic_set_field() -> Labels:
    _log("pydantic-set-field")
    return build_pydantic_set_field()


@recorded
def case_dataclass_nested() -> Report:
    _log("dataclass-nested")
    return build_dataclass_nested()


@recorded
def case_typed_list_of_models() -> list[Item]:
    _log("typed-list-of-models")
    return build_typed_list_of_models()


@recorded
def case_typed_tuple() -> tuple[int, str]:
    _log("typed-tuple")
    return build_typed_tuple()


@recorded
def case_typed_dict_of_models() -> dict[str, Item]:
    _log("typed-dict-of-models")
    return build_typed_dict_of_models()


@recorded
def case_typed_optional_namedtuple() -> Pair | None:
    _log("typed-optional-namedtuple")
    return build_typed_optional_namedtuple()


@recorded
def case_typed_set() -> set[str]:
    _log("typed-set")
    return build_typed_set()


@recorded
def case_typed_optional_model() -> Item | None:
    _log("typed-optional-model")
    return build_typed_optional_model()


@recorded
def case_typed_optional_none() -> Item | None:
    _log("typed-optional-none")
    return build_typed_optional_none()


@recorded(serializer="pickle")
def case_pickle_object() -> Thing:
    _log("pickle-object")
    return build_pickle_object()


@recorded
def case_registered_celsius() -> Celsius:
    _log("registered-celsius")
    return build_registered_celsius()
'''

PROBE_MODULE = r'''
"""What a user can observe of a value: its exact type all the way down, and equality."""

import dataclasses
import datetime as dt
import sys


def qualified(tp):
    return f"{tp.__module__}:{tp.__qualname__}"


def describe(value):
    tp = qualified(type(value))
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray):
        order = "F" if value.flags.f_contiguous and not value.flags.c_contiguous else "C"
        return [tp, str(value.dtype), list(value.shape), order]
    if isinstance(value, (list, tuple)):
        return [tp, [describe(v) for v in value]]
    if isinstance(value, (set, frozenset)):
        return [tp, sorted(qualified(type(v)) for v in value)]
    if isinstance(value, dict):
        return [tp, [[describe(k), describe(v)] for k, v in value.items()]]
    if hasattr(type(value), "model_fields"):
        return [tp, [[k, describe(getattr(value, k))] for k in type(value).model_fields]]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [tp, [[f.name, describe(getattr(value, f.name))]
                     for f in dataclasses.fields(value)]]
    if isinstance(value, dt.datetime):
        return [tp, qualified(type(value.tzinfo))]
    return tp


def shown(value):
    """repr, with the elements of sets sorted (their order depends on PYTHONHASHSEED)."""
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}({sorted(shown(v) for v in value)})"
    fields = getattr(type(value), "model_fields", None)
    if fields and any(isinstance(getattr(value, k), (set, frozenset)) for k in fields):
        inner = ", ".join(f"{k}={shown(getattr(value, k))}" for k in fields)
        return f"{qualified(type(value))}({inner})"
    return repr(value)


def same(a, b):
    np = sys.modules.get("numpy")
    if np is not None and isinstance(a, np.ndarray):
        return bool(type(b) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
                    and a.tobytes() == b.tobytes())
    return type(a) is type(b) and a == b


def report(cases):
    import contract_cases as m

    out = {}
    for case in cases:
        name = case.replace("-", "_")
        try:
            value = getattr(m, "case_" + name)()
        except Exception as exc:
            out[case] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        expected = getattr(m, "build_" + name)()
        out[case] = {"repr": shown(value), "type": qualified(type(value)),
                     "same_type": type(value) is type(expected),
                     "describe": describe(value), "expected": describe(expected),
                     "equal": same(value, expected)}
    return out
'''

REPORT = """
import json, sys
import contract_probe
print(json.dumps(contract_probe.report(json.loads(sys.argv[1]))))
"""


@dataclass
class ContractRuns:
    """Two recordings (two stores, two hash seeds), then a strict replay of the first."""

    project: Project
    store_a: Path
    store_b: Path
    recorded_a: dict[str, Any]
    recorded_b: dict[str, Any]
    replayed: dict[str, Any]
    calls: list[Counter[str]]  # the call log after each of the three runs


@pytest.fixture(scope="module")
def contract_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    from conftest import Project

    root = tmp_path_factory.mktemp("contract") / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "proj"\nversion = "0"\n')
    project = Project(root)
    project.write("contract_cases.py", CASES_MODULE)
    project.write("contract_probe.py", PROBE_MODULE)
    return project


@pytest.fixture(scope="module")
def cases(contract_project: Project) -> Iterator[tuple[ModuleType, ModuleType]]:
    """The case module imported in this process (for the in-process round trips)."""
    sys.path.insert(0, str(contract_project.root))
    try:
        module = importlib.import_module("contract_cases")
        probe = importlib.import_module("contract_probe")
    finally:
        sys.path.remove(str(contract_project.root))
    yield module, probe
    for name in ("contract_cases", "contract_probe"):
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def contract_runs(contract_project: Project) -> ContractRuns:
    project = contract_project
    store_a, store_b = project.root / "store_a", project.root / "store_b"
    argv = (json.dumps(list(CASES)),)
    calls: list[Counter[str]] = []

    def run(mode: str, store: Path, seed: str) -> dict[str, Any]:
        result = project.run(REPORT, mode=mode, args=argv,
                             env={"MEMO_STORE": str(store), "PYTHONHASHSEED": seed})
        calls.append(Counter(project.calls()))
        return last_json(result.stdout)  # type: ignore[no-any-return]

    recorded_a = run("record", store_a, "1")
    recorded_b = run("record", store_b, "2")
    replayed = run("replay", store_a, "3")
    return ContractRuns(project, store_a, store_b, recorded_a, recorded_b, replayed, calls)


# -- a. round trip, in this process ------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip(case: str, cases: tuple[ModuleType, ModuleType]) -> None:
    module, probe = cases
    function = getattr(module, f"case_{slug(case)}")
    value = getattr(module, f"build_{slug(case)}")()
    memo = function.memo
    serializer, type_path = registry.choose(
        value, memo.options.serializer, function=memo.id, annotation=memo.return_annotation)
    assert serializer.id == CASES[case]
    assert isinstance(serializer, Serializer)

    data = serializer.dumps(value)
    assert isinstance(data, (str, bytes))
    replayed = serializer.loads(data)
    assert round_trips(serializer, value, replayed)
    assert type(replayed) is type(value)
    assert probe.same(replayed, value)
    assert probe.describe(replayed) == probe.describe(value)  # nested types too
    assert probe.shown(replayed) == probe.shown(value)

    # deterministic: the same value dumps to the same output, and so does what was loaded
    # (a set is written sorted, whatever order it iterates in)
    assert serializer.dumps(value) == data
    assert serializer.dumps(replayed) == data

    # a replaying process finds the serializer from what the entry stores (id and type name)
    again = registry.resolve(serializer.id, type_path, memo.options.serializer,
                             function=memo.id)
    assert (again.id, again.version) == (serializer.id, serializer.version)
    reloaded = again.loads(data)
    assert round_trips(again, value, reloaded)
    assert probe.describe(reloaded) == probe.describe(value)


class _Tagged(BaseModel):
    tags: set[str]
    ids: frozenset[int]
    by_id: dict[int, set[str]]
    groups: list[frozenset[str]]


@dataclass
class _TaggedRow:
    tags: set[str]
    nested: _Tagged


def test_sets_are_written_sorted_at_any_depth_and_replay_as_sets() -> None:
    """Sets inside models, dict values, lists and dataclasses are written sorted (canonically:
    an int set by JSON text), so the bytes do not depend on iteration order; loading gives
    sets back."""
    words = ["pear", "apple", "fig", "kiwi", "date"]
    model = _Tagged(tags=set(words), ids=frozenset({10, 9, 100}), by_id={2: {"b", "a"}},
                    groups=[frozenset({"z", "y"})])
    pydantic_serializer, _ = registry.choose(model, None, function="t.f", annotation=None)
    data = pydantic_serializer.dumps(model)
    assert json.loads(data) == {"tags": sorted(words), "ids": [10, 100, 9],
                                "by_id": {"2": ["a", "b"]}, "groups": [["y", "z"]]}
    back = pydantic_serializer.loads(data)
    assert back == model
    assert type(back.tags) is set
    assert type(back.ids) is frozenset
    reordered = _Tagged(tags=set(reversed(words)), ids=frozenset({100, 9, 10}),
                        by_id={2: {"a", "b"}}, groups=[frozenset({"y", "z"})])
    assert pydantic_serializer.dumps(reordered) == data

    row = _TaggedRow(tags={"b", "a"}, nested=model)
    dataclass_serializer, _ = registry.choose(row, None, function="t.f", annotation=None)
    assert dataclass_serializer.id == "dataclass"
    assert json.loads(dataclass_serializer.dumps(row))["tags"] == ["a", "b"]
    assert dataclass_serializer.loads(dataclass_serializer.dumps(row)) == row

    typed, _ = registry.choose({"b", "a"}, None, function="t.f", annotation=set[str])
    assert typed.id == "typed"
    assert json.loads(typed.dumps({"b", "a", "c"})) == ["a", "b", "c"]
    assert typed.loads(typed.dumps({"b", "a"})) == {"a", "b"}


# -- b. the real library, record → replay in fresh interpreters --------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_replays_same_type_without_calling(case: str, contract_runs: ContractRuns) -> None:
    recorded_run = contract_runs.recorded_a[case]
    replayed = contract_runs.replayed[case]
    assert "error" not in recorded_run, recorded_run
    assert "error" not in replayed, replayed
    assert recorded_run["equal"], recorded_run
    assert recorded_run["same_type"], recorded_run

    # the replaying process sees exactly what the recording process saw
    assert replayed == recorded_run
    assert replayed["equal"], replayed
    assert replayed["same_type"], replayed
    assert replayed["describe"] == replayed["expected"]

    # called once per recording store, never by the replay
    assert [counts[case] for counts in contract_runs.calls] == [1, 2, 2]

    [path] = (contract_runs.store_a / f"contract_cases.case_{slug(case)}").glob("*.json")
    assert json.loads(path.read_text())["result"]["serializer"] == CASES[case]


# -- c. determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_recordings_are_identical_but_volatile_fields(
        case: str, contract_runs: ContractRuns) -> None:
    function = f"contract_cases.case_{slug(case)}"
    dir_a, dir_b = contract_runs.store_a / function, contract_runs.store_b / function
    names_a = sorted(p.name for p in dir_a.iterdir())
    assert names_a == sorted(p.name for p in dir_b.iterdir())  # same key, same payload file
    assert contract_runs.recorded_b[case] == contract_runs.recorded_a[case]

    [path_a] = [dir_a / name for name in names_a if name.endswith(".json")]
    path_b = dir_b / path_a.name
    raw_a, raw_b = path_a.read_bytes(), path_b.read_bytes()
    doc_a, doc_b = json.loads(raw_a), json.loads(raw_b)
    assert render(doc_a) == raw_a  # canonical rendering
    assert render(doc_b) == raw_b
    patched_b = {**doc_b, **{name: doc_a[name] for name in VOLATILE_FIELDS if name in doc_a}}
    assert patched_b == doc_a
    assert render(patched_b) == raw_a, "entries differ beyond recorded_at/duration_s/versions"
    for name in names_a:
        if not name.endswith(".json"):  # a payload stored beside the entry
            assert (dir_a / name).read_bytes() == (dir_b / name).read_bytes()


def test_large_array_payload_is_stored_beside_the_entry(contract_runs: ContractRuns) -> None:
    names = sorted(p.name for p in (
        contract_runs.store_a / "contract_cases.case_numpy_large_payload_file").iterdir())
    assert [n.rsplit(".", 1)[-1] for n in names] == ["bin", "json"]


# -- serializer versions -----------------------------------------------------------------------

CELSIUS = r'''
from pathlib import Path

from memo_replay import recorded, register_serializer

HERE = Path(__file__).parent


class Celsius:
    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def __eq__(self, other):
        return type(other) is Celsius and other.degrees == self.degrees


class CelsiusText:
    id = "celsius-text"
    version = 1
    payload = "text"

    def dumps(self, value):
        return f"{value.degrees}C"

    def loads(self, data):
        return Celsius(float(data.removesuffix("C")))


register_serializer(Celsius, CelsiusText())


@recorded
def temperature(city: str) -> Celsius:
    with open(HERE / "calls.log", "a") as fh:
        fh.write("temperature\n")
    return Celsius(21.5)
'''

WITH_V2 = """
import tempmod
from memo_replay import ReplayMiss, register_serializer

class CelsiusTextV2(tempmod.CelsiusText):
    version = 2

register_serializer(tempmod.Celsius, CelsiusTextV2())
try:
    t = tempmod.temperature("Oslo")
except ReplayMiss as exc:
    print("MISS:", str(exc).replace("\\n", " "))
else:
    print("VALUE:", type(t) is tempmod.Celsius and t == tempmod.Celsius(21.5))
"""


def test_serializer_version_bump_invalidates_recordings(project: Project) -> None:
    project.write("tempmod.py", CELSIUS)
    project.run("import tempmod; tempmod.temperature('Oslo')", mode="record")
    [path] = entry_files(project.root / "fixtures_store")
    assert json.loads(path.read_text())["result"]["serializer_version"] == 1
    assert project.calls() == ["temperature"]

    strict = project.run(WITH_V2, mode="replay").stdout
    assert "MISS:" in strict
    for needle in ("version 1", "version 2", "'celsius-text' serializer"):
        assert needle in strict
    assert "MEMO_MODE=record" in strict
    assert project.calls() == ["temperature"]  # strict replay never calls

    assert project.run(WITH_V2, mode="auto").stdout.strip() == "VALUE: True"
    assert project.calls() == ["temperature", "temperature"]  # re-recorded
    assert entry_files(project.root / "fixtures_store") == [path]  # the same key, rewritten
    assert json.loads(path.read_text())["result"]["serializer_version"] == 2

    assert project.run(WITH_V2, mode="replay").stdout.strip() == "VALUE: True"
    assert project.calls() == ["temperature", "temperature"]


# -- refusals: nothing is written --------------------------------------------------------------


class Box:
    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return type(other) is Box and other.n == self.n


class OffByOne:
    id, version, payload = "contract-off-by-one", 1, "text"

    def dumps(self, value: Box) -> str:
        return str(value.n)

    def loads(self, data: str | bytes) -> Box:
        return Box(int(data) + 1)


class LosesType:
    id, version, payload = "contract-loses-type", 1, "text"

    def dumps(self, value: Box) -> str:
        return str(value.n)

    def loads(self, data: str | bytes) -> int:
        return int(data)


@pytest.mark.parametrize("serializer", [OffByOne(), LosesType()], ids=["value", "type"])
@pytest.mark.parametrize("how", ["registered", "option"])
def test_serializer_that_does_not_round_trip_writes_nothing(
        memo_env: Store, serializer: Any, how: str) -> None:
    if how == "registered":
        register_serializer(Box, serializer)
    calls: list[int] = []

    @recorded(ignore=["calls"], serializer=serializer if how == "option" else None)
    def make_box(calls: list[int]) -> Box:
        calls.append(1)
        return Box(41)

    with pytest.raises(SerializationError) as info:
        make_box(calls)
    message = str(info.value)
    assert make_box.memo.id in message
    assert serializer.id in message
    assert "Nothing was written" in message
    assert calls == [1]
    assert list(memo_env.entries()) == []
    assert not memo_env.path.exists() or not [
        p for p in memo_env.path.rglob("*") if p.is_file() and ".cache" not in p.parts]


class Meters(float):
    """A float subclass: equal to the plain float it holds."""


class MetersAsFloat:
    """Gives a `Meters` back as a plain (equal) `float`."""

    id, version, payload = "contract-meters-as-float", 1, "text"

    def dumps(self, value: Meters) -> str:
        return repr(float(value))

    def loads(self, data: str | bytes) -> float:
        return float(data)


class TupleAsList:
    """Gives a tuple back as a list, and says they are the same (``same``)."""

    id, version, payload = "contract-tuple-as-list", 1, "json"

    def dumps(self, value: tuple[Any, ...]) -> str:
        return json.dumps(list(value))

    def loads(self, data: str | bytes) -> Any:
        return json.loads(data)

    @staticmethod
    def same(a: Any, b: Any) -> bool:
        return list(a) == list(b)


@pytest.mark.parametrize(("type_", "serializer", "value"), [
    (Meters, MetersAsFloat(), Meters(3.5)),
    (tuple, TupleAsList(), (1, "a")),
], ids=["float-subclass-back-as-float", "tuple-back-as-list"])
def test_registered_serializer_giving_back_an_equal_value_of_another_type_is_refused(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch, type_: type, serializer: Any,
        value: Any) -> None:
    """`round_trips` checks the type, not only equality: a registered serializer whose `loads`
    returns an equal value of another type is refused at record time, nothing written."""
    monkeypatch.setattr(registry, "_by_type", list(registry._by_type))  # undone after the test
    register_serializer(type_, serializer)
    back = serializer.loads(serializer.dumps(value))
    # The premise: equal by the serializer's own measure, but of another type.
    assert type(back) is not type(value)
    same = getattr(serializer, "same", None)
    assert same(value, back) if same is not None else back == value
    assert registry.choose(value, None, function="f")[0] is serializer
    assert not round_trips(serializer, value, back)
    calls: list[int] = []

    @recorded(ignore=["calls"])
    def measure(calls: list[int]) -> Any:
        calls.append(1)
        return value

    with pytest.raises(SerializationError) as info:
        measure(calls)
    message = str(info.value)
    assert f"the {serializer.id!r} serializer does not give back an equal " \
           f"`{type_.__qualname__}`" in message
    assert "Nothing was written" in message
    assert calls == [1]
    assert list(memo_env.entries()) == []
    assert entry_files(memo_env.path) == []


@pytest.mark.parametrize("build", [
    pytest.param(lambda: np.array([1, "a", None], dtype=object), id="object-dtype"),
    pytest.param(lambda: np.array([(1, [2])], dtype=[("n", "i8"), ("o", "O")]),
                 id="struct-with-object-field"),
])
def test_numpy_object_arrays_are_refused(memo_env: Store, build: Any) -> None:
    calls: list[int] = []

    @recorded(ignore=["build", "calls"])
    def make(build: Any, calls: list[int]) -> np.ndarray:
        calls.append(1)
        return build()  # type: ignore[no-any-return]

    with pytest.raises(SerializationError) as info:
        make(build, calls)
    assert calls == [1]
    assert "numpy" in str(info.value)
    assert "Nothing was written" in str(info.value)
    assert list(memo_env.entries()) == []
    assert entry_files(memo_env.path) == []


# -- numpy is imported only by arrays ----------------------------------------------------------


def test_json_results_never_import_numpy(project: Project) -> None:
    project.write("plainmod.py", """
        from memo_replay import recorded

        @recorded
        def lookup(n: int) -> dict:
            return {"n": n, "items": [1.5, "x", None]}
    """)
    code = """
        import sys
        import memo_replay
        before = "numpy" in sys.modules
        import plainmod
        value = plainmod.lookup(3)
        print(before, "numpy" in sys.modules, value == {"n": 3, "items": [1.5, "x", None]})
    """
    assert project.run(code, mode="record").stdout.split() == ["False", "False", "True"]
    assert project.run(code, mode="replay").stdout.split() == ["False", "False", "True"]
    assert len(entry_files(project.root / "fixtures_store")) == 1


# -- a planted type name never imports a module ------------------------------------------------

PAGES = r'''
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel

from memo_replay import recorded

HERE = Path(__file__).parent
T = TypeVar("T")


class Item(BaseModel):
    name: str


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int


@recorded
def first_page() -> Page[Item]:
    with open(HERE / "calls.log", "a") as fh:
        fh.write("first_page\n")
    return Page[Item](items=[Item(name="a")], total=1)


@recorded
def all_items() -> list[Item]:
    with open(HERE / "calls.log", "a") as fh:
        fh.write("all_items\n")
    return [Item(name="a"), Item(name="b")]
'''

SIDEFX = """
from pathlib import Path

from pydantic import BaseModel

Path(__file__).with_name("SIDEFX_IMPORTED").write_text("imported")


class Thing(BaseModel):
    name: str
"""


@pytest.mark.parametrize(("function", "recorded_type", "planted_type"), [
    ("first_page", "pagemod:Page[pagemod:Item]", "pagemod:Page[sidefx_mod:Thing]"),
    ("all_items", "builtins:list[pagemod:Item]", "builtins:list[sidefx_mod:Thing]"),
], ids=["pydantic-generic", "typed-list"])
def test_planted_generic_argument_module_is_never_imported(
        project: Project, function: str, recorded_type: str, planted_type: str) -> None:
    project.write("pagemod.py", PAGES)
    project.write("sidefx_mod.py", SIDEFX)
    marker = project.root / "SIDEFX_IMPORTED"
    call = f"import pagemod; pagemod.{function}()"
    project.run(call)
    [path] = entry_files(project.root / "fixtures_store")
    document = json.loads(path.read_text())
    assert document["result"]["type"] == recorded_type
    document["result"]["type"] = planted_type  # the checksum covers the payload only
    path.write_text(json.dumps(document, indent=2) + "\n")
    assert Store(project.root / "fixtures_store").verify() == []  # still a well-formed entry

    strict = project.run(f"""
        import pagemod
        from memo_replay import SerializationError
        try:
            pagemod.{function}()
        except SerializationError as exc:
            print("REFUSED:", exc)
    """, mode="replay")
    assert "REFUSED:" in strict.stdout
    assert "'sidefx_mod' is not imported" in strict.stdout
    assert "never imports modules named by a recording" in strict.stdout
    assert not marker.exists()
    assert project.calls() == [function]

    auto = project.run(call, env={"PYTHONWARNINGS": "always"})
    assert "MemoReplayWarning" in auto.stderr
    assert not marker.exists()
    assert project.calls() == [function, function]  # re-recorded with the real type
    assert json.loads(path.read_text())["result"]["type"] == recorded_type


# -- [tool.memo_replay] pickle_functions -------------------------------------------------------

LEGACY = r'''
from pathlib import Path

from memo_replay import recorded

HERE = Path(__file__).parent


def _log(name):
    with open(HERE / "calls.log", "a") as fh:
        fh.write(name + "\n")


class Blob:
    """No serializer but cloudpickle fits it."""

    def __init__(self, name, parts):
        self.name = name
        self.parts = parts

    def __eq__(self, other):
        return type(other) is Blob and (self.name, self.parts) == (other.name, other.parts)

    def __repr__(self):
        return f"Blob({self.name!r}, {self.parts!r})"


def _blob(n):
    return Blob(f"b{n}", {"n": n, "pair": (n, n + 1), "frozen": frozenset({n})})


@recorded
def legacy_load(n: int) -> Blob:
    _log("legacy_load")
    return _blob(n)


@recorded
def modern_load(n: int) -> Blob:
    _log("modern_load")
    return _blob(n)


@recorded
def plain(n: int) -> dict:
    _log("plain")
    return {"n": n}
'''

PICKLE_OPT_IN = 'pickle_functions = ["mod.legacy*"]'


def test_pickle_functions_records_and_replays_listed_function(project: Project) -> None:
    write_pyproject(project, PICKLE_OPT_IN)
    project.write("mod.py", LEGACY)
    code = """
        import mod
        b = mod.legacy_load(4)
        print(repr(b), type(b) is mod.Blob, b == mod._blob(4))
    """
    first = project.run(code).stdout.strip()
    assert first.endswith("True True")
    [path] = entry_files(project.root / "fixtures_store")
    assert path.parent.name == "mod.legacy_load"
    result = json.loads(path.read_text())["result"]
    assert (result["serializer"], result["encoding"]) == ("pickle", "binary")

    assert project.run(code, mode="replay").stdout.strip() == first
    assert project.calls() == ["legacy_load"]


def test_pickle_functions_unlisted_function_is_refused(project: Project) -> None:
    write_pyproject(project, PICKLE_OPT_IN)
    project.write("mod.py", LEGACY)
    result = project.run("""
        import mod
        from memo_replay import SerializationError
        try:
            mod.modern_load(4)
        except SerializationError as exc:
            print("REFUSED:", exc)
    """)
    assert "REFUSED:" in result.stdout
    assert "mod.modern_load" in result.stdout
    assert "mod.Blob" in result.stdout
    assert "Nothing was written" in result.stdout
    assert project.calls() == ["modern_load"]
    assert entry_files(project.root / "fixtures_store") == []


def _hostile_pickle(marker: Path) -> bytes:
    """A pickle that creates ``marker`` (a directory) when it is loaded."""

    class Hostile:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.mkdir, (str(marker),))

    return pickle.dumps(Hostile(), protocol=4)


def test_pickle_functions_planted_pickle_for_unlisted_function_is_refused_unread(
        project: Project, tmp_path: Path) -> None:
    control = tmp_path / "control"
    pickle.loads(_hostile_pickle(control))
    assert control.is_dir()  # the payload really runs code when unpickled

    write_pyproject(project, PICKLE_OPT_IN)
    project.write("mod.py", LEGACY)
    project.run("import mod; mod.plain(1)")
    [path] = entry_files(project.root / "fixtures_store")
    marker = tmp_path / "pwned"
    data = _hostile_pickle(marker)
    document = json.loads(path.read_text())
    document["result"] = {"checksum": xxh3_128_hexdigest(data), "encoding": "binary",
                          "payload": base64.b64encode(data).decode(), "serializer": "pickle",
                          "serializer_version": 1, "size": len(data), "type": None}
    path.write_text(json.dumps(document, indent=2) + "\n")

    strict = project.run("""
        import mod
        from memo_replay import SerializationError
        try:
            mod.plain(1)
        except SerializationError as exc:
            print("REFUSED:", exc)
    """, mode="replay")
    assert "REFUSED:" in strict.stdout
    assert "pickle_functions" in strict.stdout
    assert "refused unread" in strict.stdout
    assert not marker.exists()

    auto = project.run("import mod; print(mod.plain(1))", env={"PYTHONWARNINGS": "always"})
    assert auto.stdout.strip() == "{'n': 1}"
    assert "MemoReplayWarning" in auto.stderr
    assert not marker.exists()
    assert project.calls() == ["plain", "plain"]
    assert json.loads(path.read_text())["result"]["serializer"] == "json"


INVALID_PICKLE_FUNCTIONS = pytest.mark.parametrize(
    "value", ['"x"', '[""]', '["  "]', "[1]"],
    ids=["string", "empty-entry", "blank-entry", "non-string-entry"])


@INVALID_PICKLE_FUNCTIONS
def test_invalid_pickle_functions_is_a_config_error(project: Project, value: str) -> None:
    write_pyproject(project, f"pickle_functions = {value}")
    pyproject = project.root / "pyproject.toml"
    with pytest.raises(ConfigError) as info:
        load_config(pyproject)
    assert "`pickle_functions" in str(info.value)
    assert str(pyproject) in str(info.value)


@pytest.mark.parametrize("value", ['"x"', '[""]'], ids=["string", "empty-entry"])
def test_invalid_pickle_functions_fails_the_call(project: Project, value: str) -> None:
    write_pyproject(project, f"pickle_functions = {value}")
    project.write("mod.py", LEGACY)
    result = project.run("import mod; mod.plain(1)", check=False)
    assert result.returncode != 0
    assert "ConfigError" in result.stderr
    assert "`pickle_functions" in result.stderr
    assert str(project.root / "pyproject.toml") in result.stderr
    assert project.calls() == []
    assert not (project.root / "fixtures_store").exists() or entry_files(
        project.root / "fixtures_store") == []


# -- fidelity bugs: results that replay differently from the real call --------------------------


class Reading(BaseModel):
    when: dt.datetime


@dataclass
class Score:
    value: float


@dataclass
class Stamped:
    when: dt.datetime


def _refused(memo_env: Store, make: Any, calls: list[int]) -> str:
    """Call ``make`` once: it runs, its recording is refused, nothing is written. The message."""
    before = len(calls)
    with pytest.raises(SerializationError) as info:
        make()
    message = str(info.value)
    assert len(calls) == before + 1  # the real function ran: only the recording was refused
    assert "Nothing was written" in message
    assert list(memo_env.entries()) == []
    assert entry_files(memo_env.path) == []
    return message


def _record_then_replay(memo_env: Store, monkeypatch: pytest.MonkeyPatch, make: Any,
                        calls: list[int]) -> tuple[Any, Any]:
    """The live result (recorded: exactly one entry) and its strict replay (the function is
    not called again)."""
    live = make()
    assert len(list(memo_env.entries())) == 1
    monkeypatch.setenv("MEMO_MODE", "replay")  # a miss would raise ReplayMiss
    replayed = make()
    assert calls == [1]
    return live, replayed


def test_typed_tuple_of_floats_holding_ints_is_refused(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """`-> tuple[float, float]` returning ints would replay as floats: refused at record time
    (every time: nothing is recorded), while the same tuple of floats records and replays."""
    calls: list[int] = []

    @recorded(ignore=["calls"])
    def bbox(calls: list[int], ints: bool) -> tuple[float, float]:
        calls.append(1)
        return (0, 1) if ints else (0.0, 1.0)

    message = _refused(memo_env, lambda: bbox(calls, True), calls)
    assert "would replay (0.0, 1.0)" in message
    _refused(memo_env, lambda: bbox(calls, True), calls)  # still nothing to replay
    calls.clear()
    live, replayed = _record_then_replay(memo_env, monkeypatch, lambda: bbox(calls, False),
                                         calls)
    assert replayed == live == (0.0, 1.0)
    assert [type(x) for x in replayed] == [float, float]


def test_dataclass_float_field_holding_int_is_refused(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Score(3)` in a `float` field would replay as `Score(3.0)`: refused; `Score(3.0)`
    records and replays unchanged."""
    calls: list[int] = []

    @recorded(ignore=["calls"])
    def score(calls: list[int], value: float) -> Score:
        calls.append(1)
        return Score(value)

    message = _refused(memo_env, lambda: score(calls, 3), calls)
    assert "would replay Score(value=3.0)" in message
    calls.clear()
    live, replayed = _record_then_replay(memo_env, monkeypatch, lambda: score(calls, 3.0),
                                         calls)
    assert type(replayed) is Score
    assert repr(replayed) == repr(live) == "Score(value=3.0)"
    assert type(replayed.value) is float


def _paris() -> Any:
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        return zoneinfo.ZoneInfo("Europe/Paris")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no tz database")


@pytest.mark.parametrize("kind", ["pydantic", "dataclass"])
def test_aware_datetime_in_a_named_zone_is_refused(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """A datetime in a named zone (Europe/Paris) would replay with a fixed offset — same
    instant, but another tzname and no daylight-saving rules: refused. One with a fixed offset
    records and replays with that offset."""
    calls: list[int] = []
    named = dt.datetime(2024, 7, 1, 12, 0, tzinfo=_paris())
    fixed = dt.datetime(2024, 7, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    @recorded(ignore=["calls"])
    def model_reading(calls: list[int], when: dt.datetime) -> Reading:
        calls.append(1)
        return Reading(when=when)

    @recorded(ignore=["calls"])
    def dataclass_reading(calls: list[int], when: dt.datetime) -> Stamped:
        calls.append(1)
        return Stamped(when)

    reading = model_reading if kind == "pydantic" else dataclass_reading
    message = _refused(memo_env, lambda: reading(calls, named), calls)
    assert "zoneinfo.ZoneInfo(key='Europe/Paris')" in message
    assert f"the {kind!r} serializer does not give back an equal" in message
    calls.clear()
    live, replayed = _record_then_replay(memo_env, monkeypatch, lambda: reading(calls, fixed),
                                         calls)
    assert type(replayed) is type(live)
    assert replayed.when == live.when == fixed
    assert replayed.when.utcoffset() == dt.timedelta(hours=2)
