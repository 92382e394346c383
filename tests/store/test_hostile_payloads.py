"""A payload or stored type that memo_replay never wrote — planted in a pull request with a
matching checksum — is refused before anything is allocated or built from it: a `.npy` header
declaring more data than there is, an `.npz` archive, a pickle, a `result.type` naming a
function or an arbitrary class (issue 14, item 9).

Every test records real entries in a temporary store, rewrites one on disk (recomputing its
checksum, as an attacker would), and checks that replay raises a `CorruptEntry` naming that
entry and the fix and nothing else, that the other entries still replay, and that `auto`
records over the damaged entry.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.lib import format as npy
from pydantic import BaseModel
from xxhash import xxh3_128_hexdigest

from memo_replay import CorruptEntry, MemoReplayError, Store, recorded
from memo_replay.errors import MemoReplayWarning
from memo_replay.serializers import registry
from memo_replay.store.entry import render
from memo_replay.store.layout import payload_file_name

real_calls: list[str] = []
"""The real (not replayed) calls of the functions below."""


class Item(BaseModel):
    name: str


@dataclass
class Point:
    x: int
    y: int


@recorded
def array(n: int) -> np.ndarray:
    real_calls.append(f"array {n}")
    return np.arange(n, dtype=np.int64)


@recorded
def pair(n: int) -> tuple[int, str]:
    real_calls.append(f"pair {n}")
    return (n, "x" * n)


@recorded
def item(n: int) -> Item:
    real_calls.append(f"item {n}")
    return Item(name=f"item {n}")


@recorded
def point(n: int) -> Point:
    real_calls.append(f"point {n}")
    return Point(n, -n)


LARGE = 10_000
"""An array of this many int64 is stored in a payload file (above the 64 KiB threshold)."""


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A private store; `real_calls` starts empty."""
    monkeypatch.setenv("MEMO_STORE", str(tmp_path / "store"))
    real_calls.clear()
    yield Store(tmp_path / "store")
    real_calls.clear()


def _record(monkeypatch: pytest.MonkeyPatch, function: Any, *ns: int) -> None:
    monkeypatch.setenv("MEMO_MODE", "record")
    for n in ns:
        function(n)
    real_calls.clear()


def _entry(store: Store, function: Any, n: int) -> Path:
    path = store.entry_path(function.memo.id, function.memo.key(n))
    assert path.is_file()
    return path


def _rewrite(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit an entry document and write it back as memo_replay writes entries (a new file)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    temporary = path.with_suffix(".planted")
    temporary.write_bytes(render(document))
    os.replace(temporary, path)


def _plant_binary(path: Path, data: bytes) -> None:
    """Replace a binary payload (embedded, or in its payload file) by ``data``, with the
    checksum, size and payload file name it implies: a well-formed entry."""
    checksum = xxh3_128_hexdigest(data)

    def change(document: dict[str, Any]) -> None:
        result = document["result"]
        if result.get("file"):
            old = path.parent / result["file"]
            new = path.parent / payload_file_name(path.stem, checksum)
            new.write_bytes(data)
            if new != old:
                old.unlink()
            result["file"] = new.name
        else:
            result["payload"] = base64.b64encode(data).decode()
        result["checksum"] = checksum
        result["size"] = len(data)

    _rewrite(path, change)


def _plant_type(path: Path, stored_type: Any) -> None:
    def change(document: dict[str, Any]) -> None:
        document["result"]["type"] = stored_type  # the checksum covers the payload only

    _rewrite(path, change)


def _npy(header: dict[str, Any], data: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    """A .npy file with the header numpy would write for ``header``, then ``data``."""
    out = io.BytesIO()
    write = npy.write_array_header_1_0 if version == (1, 0) else npy.write_array_header_2_0
    write(out, header)
    return out.getvalue() + data


def _refused(monkeypatch: pytest.MonkeyPatch, function: Any, n: int, path: Path) -> CorruptEntry:
    """Strict replay of ``function(n)``: a CorruptEntry naming ``path`` and the fix, nothing
    else raised, the function not called and the entry left as it was."""
    before = path.read_bytes()
    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(CorruptEntry) as info:
        function(n)
    error = info.value
    assert type(error) is CorruptEntry
    assert error.path == path
    message = str(error)
    assert str(path) in message
    assert "MEMO_MODE=record" in message
    assert "delete the file" in message
    assert real_calls == []
    assert path.read_bytes() == before
    return error


def _load_refused(store: Store, path: Path) -> None:
    """The planted entry is well-formed (it parses, its checksum matches: only its payload or
    type is hostile), and loading it through the public API is a typed error too."""
    entry = store.get(path.stem)
    assert entry is not None
    with pytest.raises(MemoReplayError):
        entry.load()


def _still_replays(monkeypatch: pytest.MonkeyPatch, function: Any, n: int,
                   expected: Any) -> None:
    monkeypatch.setenv("MEMO_MODE", "replay")
    value = function(n)
    if isinstance(expected, np.ndarray):
        assert value.dtype == expected.dtype
        assert np.array_equal(value, expected)
    else:
        assert type(value) is type(expected)
        assert value == expected
    assert real_calls == []


def _rerecorded_in_auto(monkeypatch: pytest.MonkeyPatch, store: Store, function: Any, n: int,
                        expected: Any) -> None:
    """`auto` warns, calls the function and records over the damaged entry; strict replay then
    returns the real value again."""
    monkeypatch.setenv("MEMO_MODE", "auto")
    with pytest.warns(MemoReplayWarning, match="(?s)corrupt recording .*re-recording it"):
        value = function(n)
    assert real_calls == [f"{function.__name__} {n}"]
    real_calls.clear()
    loaded = store.get(function.memo.key(n))
    assert loaded is not None
    for got in (value, loaded.load()):
        if isinstance(expected, np.ndarray):
            assert np.array_equal(got, expected)
        else:
            assert got == expected
    _still_replays(monkeypatch, function, n, expected)


# -- numpy: the header is checked before numpy allocates or reads anything -----------------------

I8 = {"descr": "<i8", "fortran_order": False}
FOUR = np.arange(4, dtype=np.int64).tobytes()

BAD_NPY: dict[str, Callable[[], bytes]] = {
    "shape-10**15": lambda: _npy({**I8, "shape": (10**15,)}, FOUR),
    "shape-2**62-squared": lambda: _npy({**I8, "shape": (2**62, 2**62)}, FOUR),
    "shape-one-more-than-data": lambda: _npy({**I8, "shape": (5,)}, FOUR),
    "trailing-data": lambda: _npy({**I8, "shape": (3,)}, FOUR),
    "negative-dimension": lambda: _npy({**I8, "shape": (-4,)}, FOUR),
    "shape-not-a-tuple": lambda: _npy({**I8, "shape": [4]}, FOUR),
    "fortran-order-not-bool": lambda: _npy({"descr": "<i8", "fortran_order": 1, "shape": (4,)},
                                           FOUR),
    "unknown-dtype": lambda: _npy({**I8, "descr": "<q9", "shape": (4,)}, FOUR),
    "huge-itemsize": lambda: _npy({**I8, "descr": "|V1000000000000", "shape": ()}, FOUR),
    "object-dtype": lambda: _npy({**I8, "descr": "|O", "shape": (1,)},
                                 pickle.dumps([1, 2], protocol=2)),
    "struct-with-object-field": lambda: _npy(
        {**I8, "descr": [("n", "<i8"), ("o", "|O")], "shape": (1,)}, b"\0" * 16),
    "version-9": lambda: _npy({**I8, "shape": (4,)}, FOUR).replace(b"NUMPY\x01\x00",
                                                                   b"NUMPY\x09\x00", 1),
    "version-2": lambda: _npy({**I8, "shape": (10**15,)}, FOUR, (2, 0)),
    "header-not-a-dict": lambda: b"\x93NUMPY\x01\x00" + (8).to_bytes(2, "little")
    + b"[1, 2]\n " + FOUR,
    "header-runs-past-the-end": lambda: b"\x93NUMPY\x01\x00" + (60000).to_bytes(2, "little")
    + b"{'descr': '<i8'",
    "header-not-a-literal": lambda: b"\x93NUMPY\x01\x00" + (24).to_bytes(2, "little")
    + b"__import__('os').getpid()"[:24] + FOUR,
    "extra-header-key": lambda: _npy({**I8, "shape": (4,), "x": 1}, FOUR),
    "magic-only": lambda: b"\x93NUMPY",
    "empty": lambda: b"",
    "npz-archive": lambda: _npz(),
    "pickle": lambda: pickle.dumps(np.arange(4)),
}


def _npz() -> bytes:
    out = io.BytesIO()
    np.savez(out, x=np.arange(4, dtype=np.int64))
    return out.getvalue()


@pytest.mark.parametrize("name", list(BAD_NPY))
def test_a_bad_npy_payload_is_a_corrupt_entry(monkeypatch: pytest.MonkeyPatch, store: Store,
                                              name: str) -> None:
    _record(monkeypatch, array, 4, 3)
    path = _entry(store, array, 4)
    _plant_binary(path, BAD_NPY[name]())
    _refused(monkeypatch, array, 4, path)
    _load_refused(store, path)
    _still_replays(monkeypatch, array, 3, np.arange(3, dtype=np.int64))
    _rerecorded_in_auto(monkeypatch, store, array, 4, np.arange(4, dtype=np.int64))
    assert store.verify() == []


def test_a_huge_declared_shape_allocates_nothing(monkeypatch: pytest.MonkeyPatch,
                                                 store: Store) -> None:
    """128 MiB declared, 32 bytes present: refused without numpy allocating the array."""
    _record(monkeypatch, array, 4)
    path = _entry(store, array, 4)
    _plant_binary(path, _npy({**I8, "shape": (2**24,)}, FOUR))
    tracemalloc.start()
    try:
        _refused(monkeypatch, array, 4, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


def test_a_pickle_payload_never_runs(monkeypatch: pytest.MonkeyPatch, store: Store,
                                     tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _record(monkeypatch, array, 4)
    path = _entry(store, array, 4)
    _plant_binary(path, pickle.dumps(_Evil(str(marker))))
    error = _refused(monkeypatch, array, 4, path)
    assert "not a .npy array" in error.reason
    assert not marker.exists()
    _load_refused(store, path)
    assert not marker.exists()


def test_an_npz_payload_is_not_replayed_as_an_archive(monkeypatch: pytest.MonkeyPatch,
                                                      store: Store) -> None:
    _record(monkeypatch, array, 4)
    path = _entry(store, array, 4)
    _plant_binary(path, _npz())
    error = _refused(monkeypatch, array, 4, path)
    assert ".npz archive" in error.reason


@pytest.mark.parametrize("name", ["shape-10**15", "npz-archive", "object-dtype", "pickle"])
def test_a_bad_payload_file_is_a_corrupt_entry(monkeypatch: pytest.MonkeyPatch, store: Store,
                                               name: str) -> None:
    """The same checks for an array large enough to live in a payload file beside its entry."""
    _record(monkeypatch, array, LARGE, 3)
    path = _entry(store, array, LARGE)
    assert json.loads(path.read_text())["result"]["file"]
    _plant_binary(path, BAD_NPY[name]())
    _refused(monkeypatch, array, LARGE, path)
    _load_refused(store, path)
    _still_replays(monkeypatch, array, 3, np.arange(3, dtype=np.int64))
    _rerecorded_in_auto(monkeypatch, store, array, LARGE, np.arange(LARGE, dtype=np.int64))


def test_valid_arrays_still_replay_exactly(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    """The header checks refuse nothing numpy itself writes (0-d, empty, Fortran order,
    structured, version 2 and 3 headers)."""
    values = {
        "zero-d": np.array(7.5),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "fortran": np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
        "structured": np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "unicode": np.array(["é", "ab"]),
    }
    for name, value in values.items():
        for version in ((1, 0), (2, 0), (3, 0)):
            out = io.BytesIO()
            npy.write_array(out, value, version=version, allow_pickle=False)
            loaded = registry.resolve("numpy", None, None, function="f").loads(out.getvalue())
            assert loaded.dtype == value.dtype, name
            assert loaded.shape == value.shape, name
            assert loaded.tobytes() == value.tobytes(), name
            assert loaded.flags.f_contiguous == value.flags.f_contiguous, name
            assert loaded.flags.writeable, name


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


# -- a stored type is a value type, checked before pydantic builds a schema ----------------------

NOT_VALUE_TYPES = [
    "os:system",
    "builtins:eval",
    "subprocess:Popen",
    "os:environ",
    "builtins:type[builtins:int]",
    "builtins:list[os:system]",
    "typing:Union[builtins:int, subprocess:Popen]",
    "builtins:int[builtins:str]",
    "os:system[builtins:int]",
    "builtins:list[builtins:int",
    "builtins:list[builtins:int]]",
    "builtins",
    "",
    "builtins:list[" * 5000 + "builtins:int" + "]" * 5000,
    "builtins:tuple[" + ", ".join(["builtins:int"] * 3000) + "]",
    7,
    ["builtins:int"],
]
TYPE_IDS = ["os-system", "eval", "popen", "environ", "type-of-int", "function-argument",
            "popen-in-union", "subscripted-int", "subscripted-function", "unclosed",
            "extra-bracket", "no-colon", "empty", "nested-5000", "20000-chars", "int",
            "list"]


@pytest.mark.parametrize("stored_type", NOT_VALUE_TYPES, ids=TYPE_IDS)
def test_a_typed_entry_naming_no_value_type_is_a_corrupt_entry(
        monkeypatch: pytest.MonkeyPatch, store: Store, stored_type: Any) -> None:
    import subprocess

    def no_popen(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Popen was built from a recording")

    _record(monkeypatch, pair, 2, 3)
    path = _entry(store, pair, 2)
    assert json.loads(path.read_text())["result"]["type"] == \
        "builtins:tuple[builtins:int, builtins:str]"
    _plant_type(path, stored_type)
    with monkeypatch.context() as patched:
        patched.setattr(subprocess.Popen, "__init__", no_popen)
        _refused(monkeypatch, pair, 2, path)
        _load_refused(store, path)
    _still_replays(monkeypatch, pair, 3, (3, "xxx"))
    _rerecorded_in_auto(monkeypatch, store, pair, 2, (2, "xx"))


EXPECTED: dict[str, Callable[[int], Any]] = {
    "item": lambda n: Item(name=f"item {n}"),
    "point": lambda n: Point(n, -n),
}
OTHER = "the other class-bound type"


@pytest.mark.parametrize("stored_type", ["os:system", "builtins:eval", "subprocess:Popen",
                                         "builtins:dict", OTHER],
                         ids=["os-system", "eval", "popen", "dict", "other-kind"])
@pytest.mark.parametrize("function", [item, point], ids=["pydantic", "dataclass"])
def test_a_model_entry_naming_another_type_is_a_corrupt_entry(
        monkeypatch: pytest.MonkeyPatch, store: Store, function: Any, stored_type: str) -> None:
    """A pydantic (dataclass) entry must name a pydantic model (a dataclass)."""
    _record(monkeypatch, function, 1, 2)
    path = _entry(store, function, 1)
    if stored_type == OTHER:  # a dataclass for a model entry, a model for a dataclass one
        other = Point if function is item else Item
        stored_type = f"{other.__module__}:{other.__qualname__}"
    _plant_type(path, stored_type)
    _refused(monkeypatch, function, 1, path)
    _load_refused(store, path)
    expected = EXPECTED[function.__name__]
    _still_replays(monkeypatch, function, 2, expected(2))
    _rerecorded_in_auto(monkeypatch, store, function, 1, expected(1))


def test_a_typed_entry_naming_a_wrong_value_type_is_a_corrupt_entry(
        monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    """A value type that does not fit the payload fails validation: a corrupt entry too."""
    _record(monkeypatch, pair, 2)
    path = _entry(store, pair, 2)
    _plant_type(path, "builtins:list[builtins:int]")
    error = _refused(monkeypatch, pair, 2, path)
    assert "does not load" in error.reason
    _rerecorded_in_auto(monkeypatch, store, pair, 2, (2, "xx"))


# -- JSON payloads: nesting and shape -----------------------------------------------------------


@recorded
def listing(n: int) -> list[int]:
    real_calls.append(f"listing {n}")
    return list(range(n))


@recorded(record_exceptions=True)
def failing(n: int) -> int:
    real_calls.append(f"failing {n}")
    raise ValueError(f"boom {n}")


def _plant_text(path: Path, text: str) -> None:
    """Make the payload a string (``encoding: text``) holding ``text``, checksum included."""
    def change(document: dict[str, Any]) -> None:
        result = document["result"]
        result.update(encoding="text", payload=text, checksum=xxh3_128_hexdigest(text.encode()),
                      size=len(text))

    _rewrite(path, change)


def _plant_json(path: Path, value: Any) -> None:
    """Make the embedded JSON payload ``value``, checksum included."""
    canonical = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    def change(document: dict[str, Any]) -> None:
        document["result"].update(payload=value, size=len(canonical),
                                  checksum=xxh3_128_hexdigest(canonical.encode()))

    _rewrite(path, change)


def test_a_json_payload_nested_too_deeply_is_a_corrupt_entry(
        monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    """Held as a string in the entry, the nesting is first seen by the serializer."""
    _record(monkeypatch, listing, 2, 3)
    path = _entry(store, listing, 2)
    _plant_text(path, "[" * 100_000 + "]" * 100_000)
    error = _refused(monkeypatch, listing, 2, path)
    assert "nested too deeply" in error.reason
    _load_refused(store, path)
    _still_replays(monkeypatch, listing, 3, [0, 1, 2])
    _rerecorded_in_auto(monkeypatch, store, listing, 2, [0, 1])


@pytest.mark.parametrize("where", ["duration_s", "payload"])
def test_an_integer_beyond_pythons_digit_limit_is_a_corrupt_entry(
        monkeypatch: pytest.MonkeyPatch, store: Store, where: str) -> None:
    """``json.loads`` refuses integers of more than 4,300 digits with a plain ValueError
    (CVE-2020-10735's limit): a replay, ``verify``, ``ls`` and ``stats`` call such an entry
    damaged instead of crashing."""
    _record(monkeypatch, listing, 2, 3)
    path = _entry(store, listing, 2)
    raw = path.read_bytes()
    field = b'"duration_s": ' if where == "duration_s" else b'"payload": ['
    at = raw.index(field) + len(field)
    end = at + len(raw[at:].split(b",", 1)[0].split(b"\n", 1)[0].rstrip(b"]"))
    path.write_bytes(raw[:at] + b"9" * 5000 + raw[end:])
    error = _refused(monkeypatch, listing, 2, path)
    assert "not valid JSON" in error.reason
    assert [p.kind for p in store.verify()] == ["corrupt"]
    assert store.stats().entries + store.stats().problems == 2  # counted, unchecked: no crash
    assert _entry(store, listing, 3).stem in [listed.summary.key for listed in store.listings()]
    _still_replays(monkeypatch, listing, 3, [0, 1, 2])
    _rerecorded_in_auto(monkeypatch, store, listing, 2, [0, 1])


@pytest.mark.parametrize("document", [
    [1],
    {"args": [], "message": "boom 1"},
    {"type": 7, "args": [], "message": "boom 1"},
    {"type": "builtins:ValueError", "args": "boom 1", "message": "boom 1"},
    {"type": "builtins:ValueError", "args": [], "message": None},
    {"type": "os:system", "args": ["true"], "message": "x"},
], ids=["list", "no-type", "type-not-a-string", "args-not-a-list", "message-not-a-string",
        "not-an-exception"])
def test_a_malformed_exception_payload_is_a_corrupt_entry(
        monkeypatch: pytest.MonkeyPatch, store: Store, document: Any) -> None:
    monkeypatch.setenv("MEMO_MODE", "record")
    for n in (1, 2):
        with pytest.raises(ValueError, match=f"boom {n}"):
            failing(n)
    real_calls.clear()
    path = _entry(store, failing, 1)
    _plant_json(path, document)
    _refused(monkeypatch, failing, 1, path)
    _load_refused(store, path)
    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(ValueError, match="boom 2"):  # the other entry replays its exception
        failing(2)
    assert real_calls == []


# -- recorded exceptions: only for functions that opted in, only Exception subclasses ---------


def _plant_exception(path: Path, document: dict[str, Any]) -> None:
    """Make the entry a recorded exception (serializer `exception`), checksum included."""
    _plant_json(path, document)

    def change(entry: dict[str, Any]) -> None:
        entry["result"].update(serializer="exception", serializer_version=registry.resolve(
            "exception", None, None, function="f", annotation=None,
            pickle_allowed=False).version, type=None)

    _rewrite(path, change)


@pytest.mark.parametrize("document", [
    {"type": "builtins:SystemExit", "args": [0], "message": "0"},
    {"type": "builtins:ValueError", "args": ["planted"], "message": "planted"},
], ids=["SystemExit", "ValueError"])
def test_an_exception_for_a_function_that_never_opted_in_is_refused(
        monkeypatch: pytest.MonkeyPatch, store: Store, document: dict[str, Any]) -> None:
    _record(monkeypatch, listing, 2, 3)
    path = _entry(store, listing, 2)
    _plant_exception(path, document)
    error = _refused(monkeypatch, listing, 2, path)  # not raised: a CorruptEntry instead
    assert "record_exceptions=True" in error.reason
    _still_replays(monkeypatch, listing, 3, [0, 1, 2])
    _rerecorded_in_auto(monkeypatch, store, listing, 2, [0, 1])


@pytest.mark.parametrize("name", ["SystemExit", "KeyboardInterrupt", "GeneratorExit"])
def test_only_exception_subclasses_are_ever_raised_by_a_replay(
        monkeypatch: pytest.MonkeyPatch, store: Store, name: str) -> None:
    """Even for a function that records exceptions: recording never stores a BaseException
    that is not an Exception, so one in an entry was planted."""
    monkeypatch.setenv("MEMO_MODE", "record")
    with pytest.raises(ValueError, match="boom 1"):
        failing(1)
    real_calls.clear()
    path = _entry(store, failing, 1)
    _plant_exception(path, {"type": f"builtins:{name}", "args": [0], "message": "0"})
    error = _refused(monkeypatch, failing, 1, path)
    assert "not an Exception class" in error.reason


def test_a_planted_system_exit_never_ends_a_ci_script_with_status_0(project: Any) -> None:
    """The reproduction of issue 14, item 3, end to end in a real process: a script whose
    recorded function never opted into recording exceptions."""
    project.write("app.py", """
        from memo_replay import recorded

        @recorded
        def answer(n: int) -> int:
            return n * 2
    """)
    project.run("import app; app.answer(21)", mode="record")
    [path] = [p for p in (project.root / "fixtures_store").glob("*/*.json")]
    _plant_exception(path, {"type": "builtins:SystemExit", "args": [0], "message": "0"})
    run = project.run("import app; app.answer(21); print('the checks ran')", mode="replay",
                      check=False)
    assert run.returncode == 1
    assert "CorruptEntry" in run.stderr
    assert "record_exceptions=True" in run.stderr


def test_entry_load_of_a_payload_that_fails_validation_is_a_corrupt_entry(
        monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    """The public API too: `Entry.load()` of a well-formed entry whose payload does not
    validate (checksum recomputed) raises CorruptEntry naming the entry, not pydantic's error."""
    _record(monkeypatch, item, 1)
    path = _entry(store, item, 1)
    _plant_json(path, {"name": ["not", "a", "string"]})
    entry = store.get(path.stem)
    assert entry is not None
    with pytest.raises(CorruptEntry) as info:
        entry.load()
    assert info.value.path == path
    _refused(monkeypatch, item, 1, path)
