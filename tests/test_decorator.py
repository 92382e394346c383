"""`@recorded` in-process: wrapping, methods, async, call-site wrapping, modes and events."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest

import memo_replay
from memo_replay import (
    InvalidOption,
    Mode,
    ReplayMiss,
    Store,
    UnhashableArgument,
    recorded,
    track,
)


class Calls:
    """Counts real calls. Instances have no stable encoding, so they never enter a key."""

    def __init__(self) -> None:
        self.args: list[object] = []

    def hit(self, *args: object) -> int:
        self.args.append(args)
        return len(self.args)

    @property
    def n(self) -> int:
        return len(self.args)


def entry_files(store: Store) -> list[Path]:
    if not store.path.is_dir():
        return []
    return sorted(p for p in store.path.rglob("*.json") if ".cache" not in p.parts)


# -- wrapping -----------------------------------------------------------------------------------


def test_bare_decorator_records_then_replays(memo_env: Store) -> None:
    calls = Calls()

    @recorded
    def double(x: int) -> int:
        calls.hit(x)
        return x * 2

    with track() as events:
        assert double(21) == 42
        assert double(21) == 42
        assert double(5) == 10
    assert calls.n == 2
    assert [e.outcome for e in events] == ["recorded", "replayed", "recorded"]
    assert len(entry_files(memo_env)) == 2
    assert {e.function for e in memo_env.entries()} == {double.memo.id}
    assert double.memo.id == f"{__name__}.test_bare_decorator_records_then_replays.<locals>.double"


def test_decorator_with_options(memo_env: Store, tmp_path: Path) -> None:
    calls = Calls()
    data = tmp_path / "input.txt"
    data.write_text("hello")

    @recorded(files=["{path}"], ignore=["client"], version="3", serializer="json")
    def read(path: str, client: object, suffix: str = "!") -> str:
        calls.hit(path)
        return Path(path).read_text() + suffix

    # `client` is ignored: different (even unencodable) values give the same key.
    assert read(str(data), "client-token-AAA") == "hello!"
    assert read(str(data), object()) == "hello!"
    assert calls.n == 1
    (entry,) = read.memo.entries()
    assert set(entry.arguments) == {"path", "suffix"}
    assert "client-token-AAA" not in entry.path.read_text()
    assert entry.serializer == "json"
    assert read.memo.code.version == "3"
    # The declared file is part of the key.
    data.write_text("changed")
    assert read(str(data), object()) == "changed!"
    assert calls.n == 2


def test_ignore_of_unknown_parameter_is_rejected(memo_env: Store) -> None:
    with pytest.raises(InvalidOption, match="no parameter named clinet"):
        @recorded(ignore=["clinet"])
        def f(client: object) -> int:
            return 1


def test_wrapper_keeps_metadata(memo_env: Store) -> None:
    def original(text: str, *, times: int = 2) -> str:
        """Repeat `text`."""
        return text * times

    wrapped = recorded(version="1")(original)
    assert wrapped.__wrapped__ is original  # type: ignore[attr-defined]
    assert wrapped.__name__ == "original"
    assert wrapped.__qualname__ == original.__qualname__
    assert wrapped.__doc__ == "Repeat `text`."
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert str(inspect.signature(wrapped)) == "(text: 'str', *, times: 'int' = 2) -> 'str'"
    assert wrapped("ab") == "abab"


def test_memo_attributes(memo_env: Store) -> None:
    @recorded
    def shout(text: str) -> str:
        """A docstring that does not count."""
        return text.upper()  # a comment that does not count

    memo = shout.memo
    assert memo.store.path == memo_env.path
    assert memo.mode is Mode.AUTO
    assert memo.code.kind == "source"
    assert "return text.upper()" in memo.code.source
    assert "recorded" not in memo.code.source
    assert "docstring" not in memo.code.source
    assert "comment" not in memo.code.source
    assert memo.key("hi") == memo.key(text="hi")
    assert memo.key("hi") != memo.key("ho")
    assert list(memo.entries()) == []
    shout("hi")
    (entry,) = memo.entries()
    assert entry.key == memo.key("hi")
    assert entry.load() == "HI"


# -- async --------------------------------------------------------------------------------------


def test_async_function_records_and_replays(memo_env: Store) -> None:
    calls = Calls()

    @recorded
    async def fetch(x: int, scale: int = 3) -> int:
        calls.hit(x)
        await asyncio.sleep(0)
        return x * scale

    assert inspect.iscoroutinefunction(fetch)
    # Same binding rule as for sync functions: positional, keyword and defaults are one key.
    assert fetch.memo.key(2) == fetch.memo.key(x=2) == fetch.memo.key(2, scale=3)

    async def main() -> list[int]:
        return [await fetch(2), await fetch(x=2), await fetch(2, 3)]

    with track() as events:
        assert asyncio.run(main()) == [6, 6, 6]
    assert calls.n == 1
    assert [e.outcome for e in events] == ["recorded", "replayed", "replayed"]
    assert {e.key for e in events} == {fetch.memo.key(2)}

    with memo_replay.mode("replay"):
        assert asyncio.run(fetch(2)) == 6
        with pytest.raises(ReplayMiss):
            asyncio.run(fetch(9))
    assert calls.n == 1


def test_async_exception_records_nothing(memo_env: Store) -> None:
    @recorded
    async def boom(x: int) -> int:
        raise RuntimeError(f"boom {x}")

    with pytest.raises(RuntimeError, match="boom 1"):
        asyncio.run(boom(1))
    assert entry_files(memo_env) == []


# -- methods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Translator:
    model: str

    @recorded
    def translate(self, text: str) -> str:
        CALLS.hit(self.model, text)
        return f"[{self.model}] {text}"


class Keyed:
    def __init__(self, model: str, client: object) -> None:
        self.model = model
        self.client = client

    def __memo_key__(self) -> str:
        return self.model

    @recorded
    def translate(self, text: str) -> str:
        CALLS.hit(self.model, text)
        return f"<{self.model}> {text}"


class Service:
    def __init__(self, token: str) -> None:
        self.token = token

    @recorded(ignore=["self"])
    def answer(self, question: str) -> str:
        CALLS.hit(question)
        return question[::-1]


class Opaque:
    @recorded
    def answer(self, question: str) -> str:
        return question


class Tools:
    @recorded
    @staticmethod
    def outer_static(x: int) -> int:
        CALLS.hit("outer_static", x)
        return x + 1

    @staticmethod
    @recorded
    def inner_static(x: int) -> int:
        CALLS.hit("inner_static", x)
        return x + 2

    @recorded
    @classmethod
    def outer_class(cls, x: int) -> str:
        CALLS.hit("outer_class", x)
        return f"{cls.__name__}:{x}"

    @classmethod
    @recorded
    def inner_class(cls, x: int) -> str:
        CALLS.hit("inner_class", x)
        return f"{cls.__name__}/{x}"


CALLS = Calls()


@pytest.fixture
def method_calls() -> Calls:
    CALLS.args.clear()
    return CALLS


def test_method_with_dataclass_self(memo_env: Store, method_calls: Calls) -> None:
    assert Translator("small").translate("hi") == "[small] hi"
    assert Translator("small").translate("hi") == "[small] hi"  # an equal instance replays
    assert method_calls.n == 1
    assert Translator("large").translate("hi") == "[large] hi"  # `self` is part of the key
    assert method_calls.n == 2
    assert Translator.translate.memo.id == f"{__name__}.Translator.translate"
    previews = sorted(str(e.arguments["self"]) for e in Translator.translate.memo.entries())
    assert len(previews) == 2
    assert "large" in previews[0]
    assert "small" in previews[1]


class AsyncTranslator:
    def __init__(self, model: str) -> None:
        self.model = model

    def __memo_key__(self) -> str:
        return self.model

    @recorded
    async def translate(self, text: str) -> str:
        CALLS.hit(self.model, text)
        return f"({self.model}) {text}"


def test_memo_of_a_method_through_an_instance_binds_self(
        memo_env: Store, method_calls: Calls) -> None:
    import asyncio
    import inspect
    import pickle

    small = Translator("small")
    # key/explain take the call's own arguments: `self` is the instance it was reached from
    assert small.translate.memo.key("hi") == Translator.translate.memo.key(small, "hi")
    assert small.translate.memo.key("hi") != Translator("large").translate.memo.key("hi")
    before = small.translate.memo.explain("hi")
    assert not before.matched
    assert before.recordings == 0
    assert small.translate("hi") == "[small] hi"
    assert small.translate.memo.explain("hi").matched
    assert small.translate.memo.explain(text="hi").matched
    differs = small.translate.memo.explain("ho")
    assert not differs.matched
    assert [d.name for d in differs.differences] == ["text"]
    # the rest of the memo is the method's, through the class as through an instance
    assert small.translate.memo.id == Translator.translate.memo.id
    assert [e.key for e in small.translate.memo.entries()] == [small.translate.memo.key("hi")]
    assert Translator.translate.memo.explain(small, "hi").matched  # unchanged
    assert Translator.translate(small, "hi") == "[small] hi"  # replayed
    assert method_calls.n == 1

    # still a method as tools see one
    assert list(inspect.signature(small.translate).parameters) == ["text"]
    assert small.translate.__name__ == "translate"
    assert small.translate.__self__ is small
    assert small.translate == small.translate
    assert pickle.loads(pickle.dumps(small.translate))("hi") == "[small] hi"

    # async methods too
    tr = AsyncTranslator("m")
    assert inspect.iscoroutinefunction(tr.translate)
    assert not tr.translate.memo.explain("x").matched
    assert asyncio.run(tr.translate("x")) == "(m) x"
    assert tr.translate.memo.explain("x").matched
    assert tr.translate.memo.key("x") == AsyncTranslator.translate.memo.key(tr, "x")

    # static and class methods have no instance to bind: their memo is as it was (a class
    # method's takes `cls` first, whichever way round the decorators are)
    for name in ("outer_static", "inner_static"):
        assert getattr(Tools(), name).memo.key(1) == getattr(Tools, name).memo.key(1)
    for name in ("outer_class", "inner_class"):
        assert getattr(Tools(), name).memo.key(Tools, 1) == \
            getattr(Tools, name).memo.key(Tools, 1)


def test_method_with_memo_key(memo_env: Store, method_calls: Calls) -> None:
    assert Keyed("m1", object()).translate("a") == "<m1> a"
    assert Keyed("m1", object()).translate("a") == "<m1> a"
    assert method_calls.n == 1
    assert Keyed("m2", object()).translate("a") == "<m2> a"
    assert method_calls.n == 2


def test_method_with_ignored_self(memo_env: Store, method_calls: Calls) -> None:
    assert Service("secret-1").answer("abc") == "cba"
    assert Service("secret-2").answer("abc") == "cba"
    assert method_calls.n == 1
    (entry,) = Service.answer.memo.entries()
    assert "self" not in entry.arguments
    assert "secret" not in entry.path.read_text()


def test_method_with_plain_self_is_unhashable(memo_env: Store) -> None:
    with pytest.raises(UnhashableArgument) as info:
        Opaque().answer("q")
    assert info.value.parameter == "self"
    assert info.value.function == f"{__name__}.Opaque.answer"
    message = str(info.value)
    assert "argument `self`" in message
    assert "Opaque" in message
    assert "ignore=['self']" in message
    assert "__memo_key__" in message
    assert entry_files(memo_env) == []


def test_staticmethod_and_classmethod_stacking(memo_env: Store, method_calls: Calls) -> None:
    with track() as events:
        for _ in range(2):
            assert Tools.outer_static(1) == 2
            assert Tools().inner_static(1) == 3
            assert Tools.outer_class(1) == "Tools:1"
            assert Tools().inner_class(1) == "Tools/1"
    assert [args[0] for args in method_calls.args] == [
        "outer_static", "inner_static", "outer_class", "inner_class"]
    assert [e.outcome for e in events] == ["recorded"] * 4 + ["replayed"] * 4
    assert {e.function for e in events} == {
        f"{__name__}.Tools.{name}"
        for name in ("outer_static", "inner_static", "outer_class", "inner_class")
    }


# -- callables we do not own --------------------------------------------------------------------


def test_stdlib_callable_wrapped_at_call_site(memo_env: Store) -> None:
    token_hex = recorded(secrets.token_hex)
    with track() as events:
        first = token_hex(16)
        second = token_hex(16)
        other = token_hex(8)
    # A real second call would almost surely give another random token: this one replayed.
    assert first == second
    assert len(other) == 16
    assert [e.outcome for e in events] == ["recorded", "replayed", "recorded"]
    assert token_hex.memo.id == "secrets.token_hex"
    assert token_hex.memo.code.kind == "package"
    assert "secrets.token_hex" in token_hex.memo.code.source
    # The project is the one wrapping it (this repository), not where the stdlib lives.
    assert token_hex.memo.root == Path(__file__).resolve().parents[1]


def test_json_dumps_wrapped_at_call_site(memo_env: Store) -> None:
    dumps = recorded(json.dumps)
    with track() as events:
        assert dumps({"b": 1, "a": [1, 2]}, sort_keys=True) == '{"a": [1, 2], "b": 1}'
        assert dumps({"a": [1, 2], "b": 1}, sort_keys=True) == '{"a": [1, 2], "b": 1}'
    assert [e.outcome for e in events] == ["recorded", "replayed"]
    with memo_replay.mode("replay"), pytest.raises(ReplayMiss, match=r"`json\.dumps`"):
        dumps({"a": 2})


# -- modes on the decorator ---------------------------------------------------------------------


def test_replay_never_calls_the_function(memo_env: Store) -> None:
    calls = Calls()

    @recorded
    def work(x: int) -> int:
        calls.hit(x)
        return x + 100

    assert work(1) == 101
    with memo_replay.mode("replay"):
        assert work(1) == 101
        with pytest.raises(ReplayMiss) as info:
            work(2)
    assert calls.n == 1
    assert info.value.function == work.memo.id
    assert info.value.key == work.memo.key(2)
    assert info.value.explanation is not None
    assert "argument `x` differs: recorded 1, now 2" in str(info.value)
    assert len(entry_files(memo_env)) == 1


def test_replay_mode_from_decorator_never_calls(memo_env: Store,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMO_MODE")
    calls = Calls()

    @recorded(mode="replay")
    def work(x: int) -> int:
        calls.hit(x)
        return x

    with pytest.raises(ReplayMiss, match="no recording of"):
        work(1)
    assert calls.n == 0
    assert entry_files(memo_env) == []


def test_off_never_stores(memo_env: Store) -> None:
    calls = Calls()

    @recorded
    def work(x: int) -> int:
        return calls.hit(x)

    with memo_replay.mode("off"), track() as events:
        assert work(1) == 1
        assert work(1) == 2
    assert [e.outcome for e in events] == ["bypassed", "bypassed"]
    assert all(e.key is None for e in events)
    assert entry_files(memo_env) == []
    assert not memo_env.path.exists()


def test_off_does_not_replay_an_existing_recording(memo_env: Store) -> None:
    calls = Calls()

    @recorded
    def work(x: int) -> int:
        return calls.hit(x)

    assert work(1) == 1
    before = [p.read_bytes() for p in entry_files(memo_env)]
    with memo_replay.mode("off"):
        assert work(1) == 2
    assert [p.read_bytes() for p in entry_files(memo_env)] == before


def test_record_overwrites(memo_env: Store) -> None:
    calls = Calls()

    @recorded
    def work(x: int) -> int:
        return calls.hit(x) * 10

    assert work(1) == 10
    assert work(1) == 10  # replayed
    with memo_replay.mode("record"), track() as events:
        assert work(1) == 20  # called again, even though a recording exists
    assert [e.outcome for e in events] == ["recorded"]
    assert calls.n == 2
    (entry,) = work.memo.entries()
    assert entry.load() == 20
    with memo_replay.mode("replay"):
        assert work(1) == 20


def test_exceptions_propagate_and_record_nothing(memo_env: Store) -> None:
    calls = Calls()

    @recorded
    def fragile(x: int) -> int:
        calls.hit(x)
        raise ValueError(f"bad input {x}")

    with track() as events:
        for _ in range(2):
            with pytest.raises(ValueError, match="bad input 3"):
                fragile(3)
    assert calls.n == 2  # not recorded, so called again
    assert events == []
    assert entry_files(memo_env) == []


def test_exception_in_record_mode_keeps_old_entry(memo_env: Store) -> None:
    state = {"fail": False}

    @recorded
    def flaky(x: int) -> int:
        if state["fail"]:
            raise ConnectionError("down")
        return x

    assert flaky(4) == 4
    before = [p.read_bytes() for p in entry_files(memo_env)]
    state["fail"] = True
    with memo_replay.mode("record"), pytest.raises(ConnectionError):
        flaky(4)
    assert [p.read_bytes() for p in entry_files(memo_env)] == before


# -- events -------------------------------------------------------------------------------------


def test_track_reports_each_outcome(memo_env: Store) -> None:
    @recorded
    def square(x: int) -> int:
        return x * x

    with track() as events:
        square(3)
        square(3)
        with memo_replay.mode("off"):
            square(3)
    recorded_event, replayed_event, bypassed_event = events
    assert all(isinstance(e, memo_replay.CallEvent) for e in events)
    assert recorded_event.outcome == "recorded"
    assert replayed_event.outcome == "replayed"
    assert bypassed_event.outcome == "bypassed"
    assert recorded_event.key == replayed_event.key == square.memo.key(3)
    assert bypassed_event.key is None
    assert {e.function for e in events} == {square.memo.id}
    # A replay reports how long the original (recorded) call took.
    assert replayed_event.recorded_duration_s == pytest.approx(recorded_event.duration_s,
                                                               abs=1e-5)
    assert all(e.duration_s >= 0 for e in events)


def test_track_is_nested_and_scoped(memo_env: Store) -> None:
    @recorded
    def inc(x: int) -> int:
        return x + 1

    inc(0)  # outside any track(): nothing collected anywhere
    with track() as outer:
        inc(1)
        with track() as inner:
            inc(1)
        inc(2)
    assert [e.outcome for e in outer] == ["recorded", "replayed", "recorded"]
    assert [e.outcome for e in inner] == ["replayed"]


def test_functools_partial_is_not_silently_keyed_by_identity(memo_env: Store) -> None:
    @recorded
    def apply(fn: object, x: int) -> int:
        return 1

    with pytest.raises(UnhashableArgument) as info:
        apply(functools.partial(int), 1)
    assert info.value.parameter == "fn"


def test_recording_from_another_serializer_version(memo_env: Store,
                                                   request: pytest.FixtureRequest) -> None:
    calls = Calls()

    @recorded
    def work(x: int) -> dict[str, int]:
        calls.hit(x)
        return {"x": x}

    work(1)
    (path,) = entry_files(memo_env)
    document = json.loads(path.read_text())
    document["result"]["serializer_version"] = 0
    staged = path.with_name("staged")
    staged.write_text(json.dumps(document, indent=2) + "\n")
    staged.replace(path)  # a new file, as a `git checkout` would write it

    with memo_replay.mode("replay"), pytest.raises(ReplayMiss) as info:
        work(1)
    # Regression: this said "`work` has a recording for this call" — true, yet not replayed.
    message = str(info.value)
    assert "has a recording for this call" not in message
    assert "version 0 of the 'json' serializer" in message
    assert "this process has version 1" in message
    assert message.endswith(f"To re-record: MEMO_MODE=record python -m pytest "
                            f"{request.node.nodeid}")
    assert calls.n == 1

    with track() as events:
        assert work(1) == {"x": 1}  # auto: re-recorded with the current serializer
    assert [e.outcome for e in events] == ["recorded"]
    assert json.loads(path.read_text())["result"]["serializer_version"] == 1


def test_an_exception_that_cannot_be_rebuilt_propagates_unrecorded(memo_env: Store) -> None:
    pydantic = pytest.importorskip("pydantic")
    runs: list[str] = []

    class Shape(pydantic.BaseModel):
        sides: int

    @recorded(record_exceptions=True)
    def shape(sides: object) -> Shape:
        runs.append(str(sides))
        return Shape(sides=sides)  # type: ignore[arg-type]

    for _ in range(2):
        with pytest.warns(memo_replay.MemoReplayWarning, match="ValidationError raised by"), \
                pytest.raises(pydantic.ValidationError):
            shape("many")
    assert runs == ["many", "many"]  # not recorded: the second call ran again
    assert list(memo_env.entries()) == []
