"""Recorded streams: generator and async-generator functions, recorded in one process and
replayed in another, and every way a stream can end.

A fake streaming model (sync and async, with sleeps between chunks, pydantic chunks) lives in
a scratch project; each real run appends a line to ``calls.log``, so a replay is proven by the
log not growing. Item types are compared exactly (``type(x).__name__``), not by ``==``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, entry_files, last_json

from memo_replay import (
    CorruptEntry,
    InvalidOption,
    RecordedStream,
    ReplayMiss,
    SerializationError,
    Store,
    StreamError,
    recorded,
)
from memo_replay.events import track

MODEL = '''
import asyncio, time
from collections.abc import AsyncIterator, Generator, Iterator
from pydantic import BaseModel
from memo_replay import recorded


def log(line):
    with open("calls.log", "a") as f:
        f.write(line + "\\n")


class Chunk(BaseModel):
    index: int
    text: str


class Overloaded(Exception):
    pass


@recorded
def tokens(prompt: str) -> Iterator[str]:
    log(f"tokens {prompt}")
    for word in prompt.split():
        time.sleep(0.002)
        yield word


@recorded
def chunks(prompt: str) -> Generator[Chunk, None, dict]:
    log(f"chunks {prompt}")
    words = prompt.split()
    for index, word in enumerate(words):
        yield Chunk(index=index, text=word)
    return {"chunks": len(words)}


@recorded
async def async_chunks(prompt: str) -> AsyncIterator[Chunk]:
    log(f"async_chunks {prompt}")
    for index, word in enumerate(prompt.split()):
        await asyncio.sleep(0.002)
        yield Chunk(index=index, text=word)


@recorded
def mixed(n: int) -> Iterator[object]:
    log(f"mixed {n}")
    yield "text"
    yield b"\\x00\\xffbinary"
    yield {"n": n}
    yield Chunk(index=n, text="last")


@recorded
def audio(n: int) -> Iterator[bytes]:
    log(f"audio {n}")
    for i in range(n):
        yield bytes([i % 251]) * 70_000


@recorded(record_exceptions=True)
def flaky(n: int) -> Iterator[str]:
    log(f"flaky {n}")
    for i in range(n):
        yield f"part {i}"
    raise Overloaded(f"overloaded after {n}")


@recorded
def fragile(n: int) -> Iterator[str]:
    log(f"fragile {n}")
    for i in range(n):
        yield f"part {i}"
    raise Overloaded("no record_exceptions")


@recorded
def empty() -> Iterator[str]:
    log("empty")
    return
    yield
'''

CONSUME = '''
import asyncio, json, sys
import model

def describe(value):
    if isinstance(value, bytes):
        return ["bytes", len(value), value[:4].hex()]
    if hasattr(value, "model_dump"):
        return [type(value).__name__, value.model_dump()]
    return [type(value).__name__, value]

def drain(generator):
    items = []
    try:
        while True:
            items.append(describe(next(generator)))
    except StopIteration as stop:
        return {"items": items, "returned": stop.value}
    except Exception as exc:
        return {"items": items, "raised": [type(exc).__name__, str(exc)]}

async def adrain(generator):
    items = []
    async for item in generator:
        items.append(describe(item))
    return {"items": items}

out = {
    "tokens": drain(model.tokens("the quick brown fox")),
    "chunks": drain(model.chunks("a b c")),
    "async": asyncio.run(adrain(model.async_chunks("x y"))),
    "mixed": drain(model.mixed(7)),
    "audio": drain(model.audio(3)),
    "flaky": drain(model.flaky(2)),
    "empty": drain(model.empty()),
}
print(json.dumps(out))
'''


@pytest.fixture
def streaming(project: Project) -> Project:
    project.write("model.py", MODEL)
    return project


def test_streams_record_in_one_process_and_replay_strictly_in_another(
        streaming: Project) -> None:
    recorded_run = last_json(streaming.run(CONSUME, mode="auto").stdout)
    calls = streaming.calls()
    assert len(calls) == 7
    replayed_run = last_json(streaming.run(CONSUME, mode="replay").stdout)
    assert streaming.calls() == calls  # nothing ran again
    assert replayed_run == recorded_run
    words = ["the", "quick", "brown", "fox"]
    assert replayed_run["tokens"] == {"items": [["str", w] for w in words], "returned": None}
    assert replayed_run["chunks"]["items"] == [
        ["Chunk", {"index": i, "text": t}] for i, t in enumerate("abc")]
    assert replayed_run["chunks"]["returned"] == {"chunks": 3}
    assert replayed_run["async"]["items"] == [["Chunk", {"index": 0, "text": "x"}],
                                              ["Chunk", {"index": 1, "text": "y"}]]
    assert replayed_run["mixed"]["items"] == [
        ["str", "text"], ["bytes", 8, "00ff6269"], ["dict", {"n": 7}],
        ["Chunk", {"index": 7, "text": "last"}]]
    assert [item[:2] for item in replayed_run["audio"]["items"]] == [["bytes", 70_000]] * 3
    assert replayed_run["flaky"] == {"items": [["str", "part 0"], ["str", "part 1"]],
                                     "raised": ["Overloaded", "overloaded after 2"]}
    assert replayed_run["empty"] == {"items": [], "returned": None}
    # Under CI the same replay is the default, and it works from a fresh process.
    assert last_json(streaming.run(CONSUME, mode=None, env={"CI": "true"}).stdout) \
        == recorded_run


def test_the_entries_say_what_was_streamed(streaming: Project) -> None:
    streaming.run(CONSUME, mode="auto")
    entries = {entry.function.rpartition(".")[2]: entry for entry in streaming.store.entries()}
    tokens = json.loads(entries["tokens"].path.read_text())
    assert tokens["format"] == 4
    assert tokens["result"]["serializer"] == "stream"
    assert tokens["result"]["payload"]["values"] == ["the", "quick", "brown", "fox"]
    offsets = [float(x) for x in tokens["offsets_ms"].split()]
    assert len(offsets) == 4
    assert offsets == sorted(offsets)
    assert offsets[0] > 0
    # The bytes stream is in a payload file beside the entry, not base64 in git.
    audio = entries["audio"]
    assert audio.payload_file is not None
    assert (audio.path.parent / audio.payload_file).stat().st_size > 3 * 70_000
    assert "payload" not in json.dumps(json.loads(audio.path.read_text())["result"]["payload"])
    loaded = entries["chunks"].load()
    assert isinstance(loaded, RecordedStream)
    assert [c.text for c in loaded.items] == ["a", "b", "c"]
    assert loaded.returned == {"chunks": 3}


def test_a_strict_replay_miss_raises_at_the_call_not_at_the_first_next(
        streaming: Project) -> None:
    result = streaming.run('''
        import model
        from memo_replay import ReplayMiss
        try:
            stream = model.tokens("never recorded")
        except ReplayMiss as exc:
            print("raised at the call:", type(exc).__name__)
        else:
            print("returned", type(stream).__name__)
    ''', mode="replay")
    assert "raised at the call: ReplayMiss" in result.stdout
    assert streaming.calls() == []


ABANDON = '''
import asyncio, gc, sys
import model

how = sys.argv[1]
if how == "break":
    for word in model.tokens("one two three four"):
        if word == "two":
            break
elif how == "close":
    stream = model.tokens("one two three four")
    next(stream)
    stream.close()
elif how == "gc":
    stream = model.tokens("one two three four")
    next(stream)
    del stream
    gc.collect()
elif how == "throw":
    stream = model.tokens("one two three four")
    next(stream)
    try:
        stream.throw(KeyError("consumer gave up"))
    except KeyError:
        pass
elif how == "aclose":
    async def main():
        stream = model.async_chunks("p q r")
        await stream.__anext__()
        await stream.aclose()
    asyncio.run(main())
elif how == "abreak":
    async def main():
        async for chunk in model.async_chunks("p q r"):
            break
    asyncio.run(main())
print("done")
'''


@pytest.mark.parametrize("how", ["break", "close", "gc", "throw", "aclose", "abreak"])
def test_a_stream_the_consumer_abandons_writes_nothing(streaming: Project, how: str) -> None:
    result = streaming.run(ABANDON, mode="auto", args=(how,))
    assert result.stdout.strip() == "done"
    assert entry_files(streaming.root / "fixtures_store") == []
    assert not list((streaming.root / "fixtures_store").rglob("*.bin"))
    # The next full consumption records it (the abandoned call left no lock behind).
    streaming.run(CONSUME, mode="auto")
    assert len(entry_files(streaming.root / "fixtures_store")) == 7


def test_abandoning_says_so_at_debug_level(memo_env: Store,
                                           caplog: pytest.LogCaptureFixture) -> None:
    @recorded
    def words() -> Iterator[str]:
        yield from ["a", "b", "c"]

    with caplog.at_level(logging.DEBUG, logger="memo_replay"):
        for word in words():
            if word == "b":
                break
    assert any("was not recorded" in r.getMessage() and "2 item(s)" in r.getMessage()
               for r in caplog.records)
    assert list(memo_env.entry_files()) == []


def test_an_exception_mid_stream_is_not_recorded_without_record_exceptions(
        streaming: Project) -> None:
    code = '''
        import model
        got = []
        try:
            for part in model.fragile(3):
                got.append(part)
        except model.Overloaded as exc:
            got.append(str(exc))
        print(got)
    '''
    first = streaming.run(code, mode="auto")
    assert "'part 0', 'part 1', 'part 2', 'no record_exceptions'" in first.stdout
    assert entry_files(streaming.root / "fixtures_store") == []
    streaming.run(code, mode="auto")
    assert streaming.calls() == ["fragile 3", "fragile 3"]  # ran again: nothing was recorded


def test_with_record_exceptions_the_items_and_the_exception_replay(memo_env: Store) -> None:
    calls: list[int] = []

    @recorded(record_exceptions=True)
    def parts(n: int) -> Iterator[int]:
        calls.append(n)
        yield from range(n)
        raise LookupError(f"ran out after {n}")

    def consume() -> tuple[list[int], str]:
        got: list[int] = []
        try:
            for item in parts(3):
                got.append(item)
        except LookupError as error:
            return got, str(error)
        raise AssertionError("the recorded exception was not raised")

    assert consume() == ([0, 1, 2], "ran out after 3")
    assert consume() == ([0, 1, 2], "ran out after 3")
    assert calls == [3]


def test_replay_timing_recorded_reproduces_the_gaps(memo_env: Store) -> None:
    """The recorded gaps come back in order and in proportion (no wall-clock threshold: a
    long gap replays longer than the short ones around it)."""
    import time

    gaps = [0.01, 0.01, 0.25, 0.01]

    def produce() -> Iterator[int]:
        for index, gap in enumerate(gaps):
            time.sleep(gap)
            yield index

    instant = recorded(produce)
    paced = recorded(replay_timing="recorded")(produce)

    def arrivals(stream: Iterator[int]) -> list[float]:
        started = time.perf_counter()
        return [time.perf_counter() - started for _ in stream]

    arrivals(instant())  # records
    arrivals(paced())    # records (another function id? no: same function, same key)
    replayed = arrivals(paced())
    steps = [b - a for a, b in zip([0.0, *replayed[:-1]], replayed, strict=True)]
    assert steps[2] == max(steps)
    assert steps[2] > 5 * max(steps[0], steps[1], steps[3])
    fast = arrivals(instant())
    assert fast[-1] < replayed[2]  # instant replay does not wait for the long gap


async def _collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


def test_async_replay_timing_waits_without_blocking_the_loop(memo_env: Store) -> None:
    import asyncio
    import time

    @recorded(replay_timing="recorded")
    async def slow() -> AsyncIterator[str]:
        await asyncio.sleep(0.2)
        yield "late"

    async def ticker(ticks: list[float]) -> None:
        for _ in range(10):
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    async def main() -> tuple[list[str], int]:
        ticks: list[float] = []
        got, _ = await asyncio.gather(_collect(slow()), ticker(ticks))
        return got, len(ticks)

    assert asyncio.run(main()) == (["late"], 10)  # records
    with track() as events:
        got, ticks = asyncio.run(main())  # replays, waiting 0.2 s while the ticker runs
    assert (got, ticks) == (["late"], 10)
    assert [e.outcome for e in events] == ["replayed"]


def test_replay_timing_is_checked() -> None:
    with pytest.raises(InvalidOption, match="instant"):
        recorded(replay_timing="slow")  # type: ignore[call-overload]

    def plain() -> int:
        return 1

    with pytest.raises(InvalidOption, match="generator functions"):
        recorded(replay_timing="recorded")(plain)


def test_send_into_a_recorded_stream_is_refused(memo_env: Store) -> None:
    @recorded
    def echo() -> Iterator[str]:
        received = yield "ready"
        yield f"got {received}"

    stream = echo()
    assert next(stream) == "ready"
    with pytest.raises(StreamError, match="send"):
        stream.send("hello")
    assert list(memo_env.entry_files()) == []
    assert list(echo()) == ["ready", "got None"]  # iteration records it
    replayed = echo()
    assert next(replayed) == "ready"
    with pytest.raises(StreamError, match="send"):
        replayed.send("hello")


def test_the_stream_returns_what_a_generator_returns(memo_env: Store) -> None:
    @recorded
    def summarize(words: list[str]) -> Iterator[str]:
        yield from words
        return len(words)  # type: ignore[misc]  # a Generator's return value

    def outer() -> Iterator[str]:
        count = yield from summarize(["x", "y"])
        yield f"count={count}"

    assert list(outer()) == ["x", "y", "count=2"]
    with track() as events:
        assert list(outer()) == ["x", "y", "count=2"]
    assert [(e.outcome, e.items) for e in events] == [("replayed", 2)]


def test_an_item_no_serializer_accepts_fails_at_the_end_and_writes_nothing(
        memo_env: Store) -> None:
    class Opaque:
        pass

    @recorded
    def things() -> Iterator[object]:
        yield "fine"
        yield Opaque()
        yield "also fine"

    got: list[object] = []
    stream = things()
    got += [next(stream), next(stream), next(stream)]
    with pytest.raises(SerializationError, match="item 2 of the stream"):
        next(stream)
    assert len(got) == 3  # the caller saw every item before the error
    assert list(memo_env.entry_files()) == []


def test_redact_rewrites_each_item_as_it_passes(memo_env: Store) -> None:
    def redact(value: Any, *, field: str) -> Any:
        return value.replace("alice", "[name]") if isinstance(value, str) else value

    @recorded(redact=redact)
    def greet(name: str) -> Iterator[str]:
        yield f"hello {name}"
        yield f"bye {name}"

    assert list(greet("alice")) == ["hello [name]", "bye [name]"]
    assert list(greet("alice")) == ["hello [name]", "bye [name]"]
    [entry] = memo_env.entries()
    assert "alice" not in entry.path.read_text()


def test_the_key_covers_arguments_and_code_as_for_any_call(memo_env: Store) -> None:
    calls: list[str] = []

    @recorded
    def spell(word: str) -> Iterator[str]:
        calls.append(word)
        yield from word

    assert list(spell("ab")) == ["a", "b"]
    assert list(spell("ab")) == ["a", "b"]
    assert list(spell("cd")) == ["c", "d"]
    assert calls == ["ab", "cd"]


def test_off_mode_streams_straight_through(memo_env: Store,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMO_MODE", "off")
    calls: list[int] = []

    @recorded
    def count(n: int) -> Iterator[int]:
        calls.append(n)
        yield from range(n)

    with track() as events:
        assert list(count(3)) == [0, 1, 2]
        assert list(count(3)) == [0, 1, 2]
    assert calls == [3, 3]
    assert [(e.outcome, e.items) for e in events] == [("bypassed", 3), ("bypassed", 3)]
    assert list(memo_env.entry_files()) == []


def test_the_function_runs_only_when_the_stream_is_iterated(memo_env: Store) -> None:
    calls: list[str] = []

    @recorded
    def lazy() -> Iterator[str]:
        calls.append("ran")
        yield "x"

    stream = lazy()
    assert calls == []
    assert list(stream) == ["x"]
    assert calls == ["ran"]


def test_the_consumer_code_is_not_a_dependency_of_the_stream(project: Project) -> None:
    """What the consumer runs and reads between items is not observed as the stream's: editing
    it does not invalidate the recording (the stream's own helper does)."""
    project.write("helpers.py", '''
        def shout(text):
            return text.upper()

        def render(text):
            with open("template.txt") as f:
                return f.read().strip() + text
    ''')
    project.write("template.txt", "> ")
    project.write("model.py", '''
        from collections.abc import Iterator
        from memo_replay import recorded
        import helpers

        @recorded
        def words() -> Iterator[str]:
            with open("calls.log", "a") as f:
                f.write("ran\\n")
            for word in ["a", "b"]:
                yield helpers.shout(word)
    ''')
    code = '''
        import helpers, model
        print([helpers.render(word) for word in model.words()])
    '''
    assert "['>A', '>B']" in project.run(code, mode="auto").stdout
    [entry] = project.store.entries()
    assert entry.observed is not None
    assert any("shout" in name for name in entry.observed.code)
    assert not any("render" in name for name in entry.observed.code)
    assert "template.txt" not in entry.observed.files
    project.write("template.txt", ">> ")
    project.replace("helpers.py", "f.read().strip() + text", "f.read().strip() + text + '!'")
    assert "['>>A!', '>>B!']" in project.run(code, mode="replay").stdout
    project.replace("helpers.py", "text.upper()", "text.upper() * 2")
    assert "ReplayMiss" in project.run(code, mode="replay", check=False).stderr
    assert project.calls() == ["ran"]


def test_a_stream_recording_is_not_a_plain_functions_answer(project: Project) -> None:
    """An entry of the other shape (moved by hand, or the function changed from `return` to
    `yield` under the same key) is refused, naming the entry, never replayed."""
    project.write("model.py", '''
        from memo_replay import recorded

        @recorded(version="1")
        def answer(x: int):
            yield x
    ''')
    project.run("import model; print(list(model.answer(1)))", mode="auto")
    [entry] = project.store.entries()
    stream_doc = entry.path.read_text()
    project.write("model.py", '''
        from memo_replay import recorded

        @recorded(version="1")
        def answer(x: int):
            return x
    ''')
    project.run("import model; print(model.answer(1))", mode="auto")
    plain = [e for e in project.store.entries()]
    # Same key only if the code fingerprint matched; put the stream entry under the plain
    # function's key to check the refusal itself.
    [plain_entry] = [e for e in plain if e.key != entry.key] or plain
    doc = json.loads(stream_doc)
    doc["key"] = plain_entry.key
    plain_entry.path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    result = project.run("import model; print(model.answer(1))", mode="replay", check=False)
    assert "CorruptEntry" in result.stderr
    assert "holds a recorded stream" in result.stderr
    assert plain_entry.path.name in result.stderr


def test_a_plain_result_is_not_a_streams_answer(memo_env: Store,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    @recorded(version="1")
    def answer() -> Any:
        return ["a", "b"]

    assert answer() == ["a", "b"]
    [plain] = list(memo_env.entry_files())

    @recorded(version="1")
    def answer() -> Any:  # type: ignore[no-redef]  # the same id, now a generator function
        yield "a"

    key = answer.memo.key()
    plain.rename(plain.with_name(f"{key}.json"))
    doc = json.loads(plain.with_name(f"{key}.json").read_text())
    doc["key"] = key
    plain.with_name(f"{key}.json").write_text(json.dumps(doc, indent=2) + "\n")
    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(CorruptEntry, match="is a generator function"):
        answer()


def _stream_entry(memo_env: Store) -> Path:
    [path] = list(memo_env.entry_files())
    return path


def _rewrite_payload(path: Path, change: Any) -> None:
    """Edit a JSON-form stream payload and recompute its checksum (a hostile edit that the
    checksum alone does not catch)."""
    from xxhash import xxh3_128_hexdigest

    doc = json.loads(path.read_text())
    payload = doc["result"]["payload"]
    change(payload)
    canonical = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    doc["result"]["checksum"] = xxh3_128_hexdigest(canonical.encode())
    doc["result"]["size"] = len(canonical)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


@pytest.mark.parametrize("damage", [
    pytest.param(lambda p: p.update(count=99), id="count-too-large"),
    pytest.param(lambda p: p.update(count=-1), id="count-negative"),
    pytest.param(lambda p: p.update(value_kinds=[5, 0, 0]), id="kind-index-out-of-range"),
    pytest.param(lambda p: p.update(kinds=[]), id="no-kinds"),
    pytest.param(lambda p: p["kinds"][0].update(serializer="pickle"), id="claims-pickle"),
    pytest.param(lambda p: p["kinds"][0].update(encoding="binary"), id="binary-in-json-form"),
    pytest.param(lambda p: p.update(values="abc"), id="values-not-a-list"),
    pytest.param(lambda p: p.update(raised=True), id="claims-an-exception"),
])
def test_a_hostile_stream_payload_is_a_corrupt_entry(memo_env: Store, damage: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    @recorded
    def words() -> Iterator[str]:
        yield from ["a", "b", "c"]

    assert list(words()) == ["a", "b", "c"]
    _rewrite_payload(_stream_entry(memo_env), damage)
    monkeypatch.setenv("MEMO_MODE", "replay")
    # Refused, naming the entry (a pickle claim: refused unread, as for any result).
    with pytest.raises((CorruptEntry, ReplayMiss, SerializationError)):
        list(words())


def test_a_damaged_binary_stream_is_a_corrupt_entry(memo_env: Store,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    @recorded
    def blobs() -> Iterator[bytes]:
        yield b"\x00" * 100_000
        yield b"\x01" * 100_000

    assert [len(b) for b in blobs()] == [100_000, 100_000]
    [payload] = [p for p in memo_env.path.rglob("*.bin")]
    data = bytearray(payload.read_bytes())
    data[-1] ^= 0xFF  # the header length
    payload.write_bytes(bytes(data))
    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(CorruptEntry):
        list(blobs())


def test_re_recording_an_identical_stream_writes_nothing(memo_env: Store,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Timing is volatile: a re-record that yields the same items leaves the entry as it is
    (no churn in git), although its offsets differ."""
    import time

    @recorded
    def slowly() -> Iterator[int]:
        for i in range(3):
            time.sleep(0.001 * (i + 1))
            yield i

    list(slowly())
    path = _stream_entry(memo_env)
    before = path.read_bytes()
    monkeypatch.setenv("MEMO_MODE", "record")
    time.sleep(1.1)  # another second in recorded_at
    assert list(slowly()) == [0, 1, 2]
    assert path.read_bytes() == before


def test_ttl_expires_streams_too(memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time

    calls: list[int] = []

    @recorded(ttl=60)
    def ticks() -> Iterator[int]:
        calls.append(1)
        yield 1

    list(ticks())
    path = _stream_entry(memo_env)
    doc = json.loads(path.read_text())
    doc["recorded_at"] = "2000-01-01T00:00:00Z"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert list(ticks()) == [1]
    assert calls == [1, 1]  # expired: recorded again in auto mode


def test_an_async_stream_stepped_from_several_tasks_is_recorded_and_observed(
        project: Project) -> None:
    """``asyncio.wait_for`` runs each step in its own task (before Python 3.12), each with its
    own copy of the context: the stream still records, and a file it reads in a later step is
    still one of its dependencies."""
    project.write("data.txt", "v1")
    project.write("model.py", '''
        import asyncio
        from collections.abc import AsyncIterator
        from memo_replay import recorded

        @recorded
        async def lines() -> AsyncIterator[str]:
            with open("calls.log", "a") as f:
                f.write("ran\\n")
            yield "first"
            await asyncio.sleep(0)
            with open("data.txt") as f:
                yield f.read()
    ''')
    code = '''
        import asyncio, model

        async def main():
            stream, got = model.lines(), []
            while True:
                try:
                    got.append(await asyncio.wait_for(stream.__anext__(), 30))
                except StopAsyncIteration:
                    return got

        print(asyncio.run(main()))
    '''
    assert "['first', 'v1']" in project.run(code, mode="auto").stdout
    assert "['first', 'v1']" in project.run(code, mode="replay").stdout
    [entry] = project.store.entries()
    assert entry.observed is not None
    assert "data.txt" in entry.observed.files
    project.write("data.txt", "v2")
    missed = project.run(code, mode="replay", check=False)
    assert "ReplayMiss" in missed.stderr
    assert "data.txt" in missed.stderr
    assert project.calls() == ["ran"]


def test_recorded_timing_survives_the_disk_index(project: Project) -> None:
    """A process that has opened the disk index (it recorded something large) replays from it:
    the gaps come back from there too."""
    project.write("model.py", '''
        import time
        from collections.abc import Iterator
        from memo_replay import recorded

        @recorded(replay_timing="recorded")
        def paced() -> Iterator[str]:
            for index in range(6):
                time.sleep(0.3 if index == 3 else 0.005)
                yield f"{index}:" + "x" * 1000  # large enough for the index

        @recorded
        def big(n: int) -> str:
            return "y" * 10_000
    ''')
    code = '''
        import json, sys, time
        import model
        if sys.argv[1] == "warm":
            model.big(1)  # records: this process opens the index, and reads from it
        started, arrivals = time.perf_counter(), []
        for _ in model.paced():
            arrivals.append(time.perf_counter() - started)
        print(json.dumps(arrivals))
    '''
    project.run(code, mode="auto", args=("cold",))
    arrivals = last_json(project.run(code, mode="auto", args=("warm",)).stdout)
    steps = [b - a for a, b in zip([0.0, *arrivals[:-1]], arrivals, strict=True)]
    assert steps[3] == max(steps)
    assert steps[3] > 5 * max(steps[:3] + steps[4:])


def test_a_plain_function_returning_a_generator_says_how_to_record_a_stream(
        memo_env: Store) -> None:
    @recorded
    def words() -> Iterator[str]:
        return iter(["a", "b"])

    with pytest.raises(SerializationError, match="generator functions are recorded as streams"):
        words()

    def inner() -> Iterator[str]:
        yield "a"

    @recorded
    def wrapped() -> Iterator[str]:
        return inner()

    with pytest.raises(SerializationError, match="write `wrapped` with `yield`"):
        wrapped()
    assert list(memo_env.entry_files()) == []


def test_send_into_a_replayed_stream_does_not_claim_it_was_not_recorded(
        memo_env: Store) -> None:
    @recorded
    def ping() -> Iterator[str]:
        yield "a"
        yield "b"

    assert list(ping()) == ["a", "b"]
    replayed = ping()
    next(replayed)
    with pytest.raises(StreamError) as error:
        replayed.send(1)
    assert "not recorded" not in str(error.value)


def test_declared_files_and_ignored_arguments_key_a_stream_as_any_call(
        project: Project) -> None:
    project.write("prompts/greet.txt", "Hello")
    project.write("model.py", '''
        from collections.abc import Iterator
        from memo_replay import recorded

        @recorded(files=["prompts/{name}.txt"], ignore=["client"])
        def speak(name: str, client: object) -> Iterator[str]:
            with open("calls.log", "a") as f:
                f.write(f"{name}\\n")
            with open(f"prompts/{name}.txt") as f:
                yield from f.read().split()
    ''')
    code = "import model; print(list(model.speak('greet', client=object())))"
    assert "['Hello']" in project.run(code, mode="auto").stdout
    assert "['Hello']" in project.run(code, mode="replay").stdout  # another client: same key
    project.write("prompts/greet.txt", "Hello there")
    missed = project.run(code, mode="replay", check=False)
    assert "ReplayMiss" in missed.stderr
    assert "prompts/greet.txt" in missed.stderr
    assert "['Hello', 'there']" in project.run(code, mode="auto").stdout
    assert project.calls() == ["greet", "greet"]
    assert all(list(entry.arguments) == ["name"] for entry in project.store.entries())
