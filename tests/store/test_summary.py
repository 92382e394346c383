"""`read_summary` — what `stats` and removal read of each entry — scans the layout memo_replay
writes instead of parsing the whole JSON (issue 15: `Store.stats()` over 100,000 entries within
a second). It must say exactly what the parsed document says for every entry memo_replay writes
and for any edit that keeps the layout, and never fail with anything but a `CorruptEntry`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memo_replay import CorruptEntry, Store, recorded
from memo_replay.store.entry import (
    Summary,
    read_document,
    read_envelope,
    read_summary,
    timestamp,
)
from tests.store.test_entry_fuzz import JSON_VALUES, _delete, _dump, _paths, _set


@recorded
def small(n: int) -> dict[str, Any]:
    return {"n": n, "text": "naïve \"quoted\" \\ back\nslash"}


@recorded
def large(n: int) -> bytes:
    return bytes([n]) * 100_000  # in a payload file


@recorded
def naïve_ünïcode(n: int) -> str:
    return "ünïcode"


def _slow(location: str, key: str, raw: bytes) -> Summary:
    envelope = read_envelope(location, key, read_document(location, raw))
    when = envelope.recorded_at
    return Summary(key, envelope.function, None if when is None else timestamp(when),
                   envelope.serializer, envelope.payload_file)


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, bytes]]:
    store_dir = tmp_path_factory.mktemp("summary") / "store"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMO_MODE", "record")
        mp.setenv("MEMO_STORE", str(store_dir))
        for n in range(3):
            small(n)
            large(n)
        naïve_ünïcode(1)
    found = [(p, p.read_bytes()) for p in sorted(store_dir.glob("*/*.json"))]
    assert len(found) == 7
    return found


def test_the_summary_of_every_entry_written_is_the_parsed_one(
        entries: list[tuple[Path, bytes]]) -> None:
    for path, raw in entries:
        assert read_summary(str(path), path.stem, raw) == _slow(str(path), path.stem, raw)
    store = Store(entries[0][0].parents[1])
    stats = store.stats()
    assert stats.problems == 0
    assert stats.entries == len(entries)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_an_edit_that_keeps_the_layout_is_summarized_as_parsed(
        entries: list[tuple[Path, bytes]], data: st.DataObject) -> None:
    path, raw = data.draw(st.sampled_from(entries))
    document = json.loads(raw)
    where = data.draw(st.sampled_from(_paths(document)))
    if data.draw(st.booleans()):
        document = _set(document, where, data.draw(JSON_VALUES))
    else:
        document = _delete(document, where)
    edited = _dump(document)  # sorted, indented by two: the layout memo_replay writes
    try:
        expected: Summary | None = _slow(str(path), path.stem, edited)
    except CorruptEntry:
        expected = None
    try:
        got: Summary | None = read_summary(str(path), path.stem, edited)
    except CorruptEntry:
        got = None
    if expected is not None:
        assert got == expected
    # (A summary of an entry that does not parse is allowed: stats says what entries say
    # about themselves; verify() checks them.)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_bytes_give_a_summary_or_a_corrupt_entry(
        entries: list[tuple[Path, bytes]], data: st.DataObject) -> None:
    path, raw = data.draw(st.sampled_from(entries))
    at = data.draw(st.integers(0, len(raw) - 1))
    damaged = data.draw(st.sampled_from([
        raw[:at],
        raw[:at] + data.draw(st.binary(min_size=1, max_size=6)) + raw[at:],
        raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1:],
    ]))
    try:
        summary = read_summary(str(path), path.stem, damaged)
    except CorruptEntry:
        return
    assert summary.key == path.stem
    assert summary.payload_file is None or summary.payload_file.startswith(path.stem + ".")


def test_listings_say_what_the_parsed_entries_say(entries: list[tuple[Path, bytes]]) -> None:
    """`memo-replay ls` reads listings; they must match the fully parsed entries."""
    store = Store(entries[0][0].parents[1])
    listed = {(x.summary.key, x.summary.function, x.summary.recorded_at, x.size,
               x.summary.serializer, tuple(x.arguments.items())) for x in store.listings()}
    parsed = {(e.key, e.function, None if e.recorded_at is None else timestamp(e.recorded_at),
               e.size, e.serializer, tuple(e.arguments.items())) for e in store.entries()}
    assert listed == parsed
    assert len(listed) == len(entries)


def test_fields_out_of_order_are_summarized_as_parsed(entries: list[tuple[Path, bytes]]) -> None:
    """The scan starts at the last `format` field (the first of the four it needs in sorted
    order); a hand-edited file with `function` before it is still summarized as parsed."""
    for path, raw in entries:
        document = json.loads(raw)
        function = document.pop("function")
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        edited = text.replace('{\n  "', f'{{\n  "function": {json.dumps(function)},\n  "', 1)
        assert edited.encode().index(b'"function"') < edited.encode().index(b'"format"')
        assert read_summary(str(path), path.stem, edited.encode()) == \
            _slow(str(path), path.stem, edited.encode())


def test_a_size_of_many_digits_is_left_to_the_parse(tmp_path: Path,
                                                     entries: list[tuple[Path, bytes]]) -> None:
    """A claimed payload size too long for a float (`ls` divides it) lists the real size."""
    path, raw = next((p, r) for p, r in entries if b'"file"' not in r)
    size = json.loads(raw)["result"]["size"]
    directory = tmp_path / "store" / path.parent.name
    directory.mkdir(parents=True)
    (directory / path.name).write_bytes(raw.replace(f'"size": {size},'.encode(),
                                                    b'"size": ' + b"9" * 30 + b",", 1))
    [listing] = Store(tmp_path / "store").listings()
    assert listing.size == size


def test_a_time_that_does_not_parse_does_not_fail_stats(tmp_path: Path,
                                                         entries: list[tuple[Path, bytes]]) -> None:
    """`2026-13-45T99:99:99Z` has the shape of a time: stats leaves it out of the range."""
    small_entries = [(p, r) for p, r in entries if p.parent.name.endswith(".small")]
    directory = tmp_path / "store" / small_entries[0][0].parent.name
    directory.mkdir(parents=True)
    for path, raw in small_entries:
        (directory / path.name).write_bytes(raw)
    bad_path, bad_raw = small_entries[0]
    when = json.loads(bad_raw)["recorded_at"]
    (directory / bad_path.name).write_bytes(bad_raw.replace(when.encode(),
                                                            b"2026-13-45T99:99:99Z"))
    stats = Store(tmp_path / "store").stats()
    assert stats.entries == len(small_entries)
    [function] = stats.functions.values()
    assert function.oldest is not None
    assert function.newest is not None
    assert timestamp(function.newest) != "2026-13-45T99:99:99Z"
