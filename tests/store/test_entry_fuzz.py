"""A hypothesis-driven fuzzer of entry files (issue 14): valid entries of several kinds are
mutated — fields removed, retyped, nested, duplicated, re-encoded, bytes flipped or cut — and a
strict replay of the call must either give the recorded value (the mutation touched nothing
that matters) or raise a typed :class:`~memo_replay.errors.MemoReplayError`: never another
exception, never a different value, never a hang. ``verify()`` must not crash either.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from memo_replay import Store, recorded
from memo_replay.errors import MemoReplayError


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str


@recorded
def as_dict(n: int) -> dict[str, Any]:
    return {"n": n, "items": [n, str(n), None, 1.5], "nested": {"ok": True}}


@recorded
def as_text(n: int) -> str:
    return f"text {n} ✓"


@recorded
def as_point(n: int) -> Point:
    return Point(float(n), n / 2, f"p{n}")


@recorded
def as_bytes(n: int) -> bytes:
    return bytes(range(256)) * n  # n = 300: in a payload file beside the entry


@recorded
def as_tuple(n: int) -> tuple[int, float]:
    return (n, n / 4)


CASES: list[tuple[Callable[[int], Any], int]] = [
    (as_dict, 3), (as_text, 4), (as_point, 5), (as_bytes, 1), (as_bytes, 300), (as_tuple, 7),
]

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
    | st.sampled_from(["\x1b[31m", "\ud800", "os:system", "builtins:eval", "../../x",
                       "/dev/zero", "pickle", "typed", "binary", "json", "text", "exception",
                       "0" * 32, "1970-01-01T00:00:00Z", ""]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _set(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    *parents, last = path
    holder = document
    for step in parents:
        holder = holder[step]
    holder[last] = value
    return document


def _delete(document: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return {}
    *parents, last = path
    holder = document
    for step in parents:
        holder = holder[step]
    del holder[last]
    return document


@st.composite
def mutations(draw: st.DrawFn, raw: bytes) -> tuple[str, bytes]:
    """A description and the mutated bytes of an entry file."""
    kind = draw(st.sampled_from(["replace", "delete", "nest", "duplicate", "encoding",
                                 "flip", "cut", "insert"]))
    if kind in ("flip", "cut", "insert"):
        at = draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            return f"flip byte {at}", raw[:at] + bytes([raw[at] ^ draw(
                st.integers(1, 255))]) + raw[at + 1:]
        if kind == "cut":
            return f"cut at {at}", raw[:at]
        extra = draw(st.binary(min_size=1, max_size=8))
        return f"insert {extra!r} at {at}", raw[:at] + extra + raw[at:]
    if kind == "encoding":
        codec = draw(st.sampled_from(["utf-16", "utf-32", "utf-8-sig", "latin-1"]))
        text = raw.decode()
        if codec == "latin-1":
            return codec, text.encode("latin-1", errors="replace")
        return codec, text.encode(codec)
    document = json.loads(raw)
    path = draw(st.sampled_from(_paths(document)))
    if kind == "replace":
        value = draw(JSON_VALUES)
        return f"{path} = {value!r}", _dump(_set(document, path, value))
    if kind == "delete":
        return f"del {path}", _dump(_delete(document, path))
    if kind == "nest":
        depth = draw(st.sampled_from([2, 50, 5_000, 100_000]))
        text = _dump(_set(document, path, "NEST")).decode()
        return f"{path} nested {depth}", text.replace(
            '"NEST"', "[" * depth + "]" * depth, 1).encode()
    # duplicate: the same field again at the end of the top-level object, another value
    field = draw(st.sampled_from(sorted(document)))
    value = draw(JSON_VALUES)
    text = _dump(document).decode().rstrip().removesuffix("}")
    return f"duplicate {field} = {value!r}", (
        text + f",\n  {json.dumps(field)}: {json.dumps(value)}\n}}\n").encode(
        errors="surrogatepass")


def _dump(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode(
        errors="surrogatepass")


@pytest.fixture(scope="module")
def recorded_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[Path, bytes]]:
    """A store with one entry per case, recorded once; their original bytes."""
    store_dir = tmp_path_factory.mktemp("fuzz") / "store"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMO_MODE", "record")
        mp.setenv("MEMO_STORE", str(store_dir))
        for fn, n in CASES:
            fn(n)
    originals = {p: p.read_bytes() for p in store_dir.glob("*/*.json")}
    assert len(originals) == len(CASES)
    return store_dir, originals


_STAMP = [10**18]  # an mtime no real write has: every mutation is a new version of the file


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), case=st.sampled_from(range(len(CASES))))
def test_a_mutated_entry_replays_its_value_or_raises_a_typed_error(
        recorded_store: tuple[Path, dict[Path, bytes]], monkeypatch: pytest.MonkeyPatch,
        data: st.DataObject, case: int) -> None:
    store_dir, originals = recorded_store
    fn, n = CASES[case]
    monkeypatch.setenv("MEMO_STORE", str(store_dir))
    monkeypatch.setenv("MEMO_MODE", "replay")
    for path, raw in originals.items():
        path.write_bytes(raw)
    expected = fn(n)  # the unmutated entry replays
    [entry] = [p for p in originals if p.parent.name.endswith("." + fn.__name__)
               and json.loads(originals[p])["arguments"] == {"n": n}]
    description, mutated = data.draw(mutations(originals[entry]))
    note(description)
    entry.write_bytes(mutated)
    _STAMP[0] += 1_000_000
    os.utime(entry, ns=(_STAMP[0], _STAMP[0]))
    try:
        value = fn(n)
    except MemoReplayError:
        pass  # a typed refusal: the entry is damaged, and the error says which and what to do
    else:
        assert type(value) is type(expected)
        assert value == expected
    Store(store_dir).verify()  # never crashes either
