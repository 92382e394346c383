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
