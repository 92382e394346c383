"""The stream payload against an independent reference: whatever a generator yields (JSON
data, text, bytes, pydantic models, in any mix and order), a fresh read of the entry file gives
back the same items, of the same types, in order — and the checksum a reader recomputes from
the entry matches the one the writer stored (the JSON form is canonical without a re-parse)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from memo_replay import RecordedStream, Store, recorded
from memo_replay.serializers.stream import (
    Kind,
    StreamWriter,
    read_stream,
    stored_stream,
)


class Token(BaseModel):
    text: str
    logprob: float


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=10)
_items = st.lists(
    _json | st.binary(max_size=300)
    | st.builds(Token, text=_text, logprob=st.floats(-50, 0, allow_nan=False)),
    max_size=25)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type all the way down (``1 == 1.0 == True`` is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(items=_items, returned=st.none() | _json)
def test_what_a_generator_yields_is_what_a_fresh_read_gives_back(
        tmp_path_factory: pytest.TempPathFactory, items: list[Any], returned: Any,
        ) -> None:
    import os

    store_dir = tmp_path_factory.mktemp("store")
    os.environ["MEMO_STORE"] = str(store_dir)
    os.environ["MEMO_MODE"] = "record"
    try:
        @recorded
        def produce(n: int) -> Any:
            yield from items
            return returned

        def consume() -> tuple[list[Any], Any]:
            got: list[Any] = []
            stream = produce(len(items))
            while True:
                try:
                    got.append(next(stream))
                except StopIteration as stop:
                    return got, stop.value

        assert consume() == (items, returned)  # passed through untouched
        [entry] = Store(store_dir).entries()  # a fresh reader: checksum recomputed from file
        loaded = entry.load()
        assert isinstance(loaded, RecordedStream)
        assert _same(list(loaded.items), items)
        assert _same(loaded.returned, returned)
        assert loaded.raised is None
        os.environ["MEMO_MODE"] = "replay"
        got, value = consume()
        assert _same(got, items)
        assert _same(value, returned)
        binary = any(isinstance(item, bytes) for item in items)
        assert entry.payload.kind == ("binary" if binary else "json")
    finally:
        del os.environ["MEMO_STORE"], os.environ["MEMO_MODE"]


@given(values=st.lists(st.tuples(st.sampled_from(["json", "text", "binary"]),
                                 st.text(st.characters(exclude_categories=["Cs"]), max_size=10)),
                       max_size=30))
def test_the_writer_and_the_reader_agree_on_the_layout(values: list[tuple[str, str]]) -> None:
    """Kinds, per-value kinds and item order survive both forms (the reader's view through
    :func:`stored_stream`, which needs no serializer)."""
    writer = StreamWriter()
    expected: list[tuple[str, Any]] = []
    for encoding, text in values:
        if encoding == "json":
            writer.add(Kind("json", 1, None, "json"), json.dumps(text, ensure_ascii=False,
                                                                 separators=(",", ":")))
            expected.append(("json", text))
        elif encoding == "text":
            writer.add(Kind("upper", 1, None, "text"), text)
            expected.append(("text", text))
        else:
            writer.add(Kind("bytes", 1, None, "binary"), text.encode())
            expected.append(("binary", text.encode()))
    form, data = writer.finish()
    assert form == ("binary" if any(e == "binary" for e, _ in values) else "json")
    stream = stored_stream(data)
    assert stream.end.items == len(values)
    assert not stream.end.returned
    assert not stream.end.raised
    shown = [(kind.encoding, bytes(value) if kind.encoding == "binary" else value)
             for kind, value in stream.stored(0, len(values))]
    assert shown == expected
    assert len(stream.value_kinds) == len(values)
    assert len(set(stream.kinds)) == len(stream.kinds)
    stream.check()


def test_binary_items_are_cut_from_the_payload_only_when_read() -> None:
    writer = StreamWriter()
    for index in range(3):
        writer.add(Kind("bytes", 1, None, "binary"), bytes([index]) * 10)
    _, data = writer.finish()
    assert isinstance(data, bytes)
    from memo_replay.serializers import registry

    stream = read_stream(data, lambda kind: registry.resolve(kind.serializer, kind.type, None,
                                                             function="f"))
    assert len(stream.items) == 3
    assert stream.items[-1] == b"\x02" * 10
    assert stream.items[0:2] == [b"\x00" * 10, b"\x01" * 10]
    assert list(stream.items) == [bytes([i]) * 10 for i in range(3)]
    with pytest.raises(IndexError):
        stream.items[3]


def test_a_stream_of_100000_tokens_round_trips(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMO_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("MEMO_MODE", "auto")
    calls: list[int] = []

    @recorded
    def tokens(n: int) -> Iterator[str]:
        calls.append(n)
        for i in range(n):
            yield f"tok{i}"

    first = list(tokens(100_000))
    monkeypatch.setenv("MEMO_MODE", "replay")
    [entry] = Store(tmp_path / "store").entries()
    assert len(entry.load().items) == 100_000
    assert list(tokens(100_000)) == first
    assert calls == [100_000]
