"""Explaining a miss: each component that can differ, named, and the command that re-records."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import memo_replay
from memo_replay import Explanation, ReplayMiss, Store, recorded
from memo_replay.explain import rerecord_command

PROMPT = "Translate this: {text}"


@pytest.fixture
def command(request: pytest.FixtureRequest) -> str:
    """The re-record command expected while this test runs."""
    return f"MEMO_MODE=record python -m pytest {request.node.nodeid}"


def strict_miss(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """Call in replay mode; return the text of the ReplayMiss it must raise."""
    with memo_replay.mode("replay"), pytest.raises(ReplayMiss) as info:
        fn(*args, **kwargs)
    assert info.value.explanation is not None
    assert str(info.value).endswith(str(info.value.explanation))
    return str(info.value)


def components(explanation: Explanation) -> list[tuple[str, str]]:
    return [(d.component, d.name) for d in explanation.differences]


def test_command_names_the_current_test(command: str, request: pytest.FixtureRequest) -> None:
    assert rerecord_command() == command
    assert request.node.nodeid in command
    assert command.startswith("MEMO_MODE=record python -m pytest tests/test_explain.py::")


def test_command_outside_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    # A script re-records by running the same command line again, with MEMO_MODE=record.
    expected = shlex.join(["python", *sys.orig_argv[1:]])
    assert rerecord_command() == f"MEMO_MODE=record {expected}"
    assert "::" not in rerecord_command()


def test_hit_says_it_matches(memo_env: Store) -> None:
    @recorded
    def f(x: int) -> int:
        return x

    f(1)
    explanation = f.memo.explain(1)
    assert explanation.matched
    assert explanation.differences == ()
    assert explanation.key == f.memo.key(1)
    assert explanation.recordings == 1
    assert str(explanation) == f"`{f.memo.id}` has a recording for this call (key {f.memo.key(1)})."


def test_no_recording(memo_env: Store, command: str) -> None:
    calls: list[str] = []

    @recorded
    def translate(text: str) -> str:
        calls.append(text)
        return text

    explanation = translate.memo.explain("hi")
    assert not explanation.matched
    assert explanation.closest is None
    assert explanation.recordings == 0
    text = str(explanation)
    assert f"no recording of `{translate.memo.id}` exists in the store" in text
    assert translate.memo.key("hi") in text
    assert text.endswith(f"To record it: {command}")
    miss = strict_miss(translate, "hi")
    assert miss.startswith("memo_replay (replay mode): no recording of")
    assert miss.endswith(command)
    assert calls == []


def test_source_change(memo_env: Store, command: str) -> None:
    @recorded
    def translate(text: str) -> str:
        return text.upper()

    translate("hi")
    function_id = translate.memo.id

    @recorded
    def translate(text: str) -> str:  # the same function, edited
        # A comment is not a change.
        return text.upper() + "!"

    assert translate.memo.id == function_id
    explanation = translate.memo.explain("hi")
    assert components(explanation) == [("source", function_id)]
    text = strict_miss(translate, "hi")
    assert f"source of `{function_id}` changed" in text
    assert "--- recorded" in text
    assert "+++ current" in text
    assert "-    return text.upper()\n" in text
    assert "+    return text.upper() + '!'" in text
    assert "comment" not in text
    assert "1 recording of this function" in text
    assert text.endswith(f"To re-record: {command}")


def test_signature_change(memo_env: Store, command: str) -> None:
    @recorded
    def translate(text: str) -> str:
        return text

    translate("hi")

    @recorded
    def translate(text: str, model: str = "small") -> str:
        return text

    explanation = translate.memo.explain("hi")
    assert ("source", translate.memo.id) in components(explanation)
    assert ("argument", "model") in components(explanation)
    text = str(explanation)
    assert "-def translate(text: str) -> str:" in text
    assert "+def translate(text: str, model: str='small') -> str:" in text
    assert "argument `model` is new" in text
    assert text.endswith(command)


def test_argument_differs(memo_env: Store, command: str) -> None:
    @recorded
    def translate(prompt: str, model: str = "small") -> str:
        return prompt

    translate("route the request", model="large")
    explanation = translate.memo.explain("route the answer", model="large")
    assert components(explanation) == [("argument", "prompt")]
    text = strict_miss(translate, "route the answer", model="large")
    assert ("argument `prompt` differs: recorded 'route the request', now 'route the answer'"
            in text)
    assert "model" not in text.split("differs in:")[1].split("To re-record")[0]
    assert text.endswith(f"To re-record: {command}")


def test_long_argument_previews_are_bounded(memo_env: Store) -> None:
    @recorded
    def translate(prompt: str) -> str:
        return prompt[:3]

    translate("a" * 10_000)
    text = str(translate.memo.explain("a" * 9_999 + "b"))
    assert "argument `prompt` differs" in text
    assert "a" * 1_000 not in text
    assert len(text) < 2_000


def test_closest_recording_is_chosen(memo_env: Store) -> None:
    @recorded
    def translate(prompt: str, model: str) -> str:
        return prompt + model

    translate("alpha", "small")
    translate("beta", "large")
    explanation = translate.memo.explain("beta", "medium")
    assert explanation.recordings == 2
    assert components(explanation) == [("argument", "model")]
    assert explanation.closest is not None
    assert explanation.closest.key == translate.memo.key("beta", "large")
    text = str(explanation)
    assert "2 recordings of this function" in text
    assert "argument `model` differs: recorded 'large', now 'medium'" in text
    assert "prompt" not in text.split("differs in:")[1]


def test_file_changed(memo_env: Store, tmp_path: Path, command: str) -> None:
    source = tmp_path / "router.dy"
    source.write_text('machine "Router"\n')

    @recorded(files=["{path}"])
    def translate(path: str) -> str:
        return Path(path).read_text()

    translate(str(source))
    source.write_text('machine "Router v2"\n')
    explanation = translate.memo.explain(str(source))
    assert components(explanation) == [("file", source.as_posix())]
    text = strict_miss(translate, str(source))
    assert f"file `{source.as_posix()}` changed" in text
    assert "argument" not in text.split("differs in:")[1]
    assert text.endswith(f"To re-record: {command}")


def test_helper_changed(memo_env: Store, command: str) -> None:
    def normalize(text: str) -> str:
        return text.strip()

    def make() -> Callable[[str], str]:
        @recorded
        def translate(text: str) -> str:
            return normalize(text)

        return translate

    first = make()
    first(" hi ")
    helper_id = f"{__name__}.test_helper_changed.<locals>.normalize"
    assert helper_id in first.memo.code.helpers

    def normalize(text: str) -> str:  # noqa: F811 - the helper, edited
        return text.strip().lower()

    second = make()
    assert second.memo.id == first.memo.id
    explanation = second.memo.explain(" hi ")
    assert components(explanation) == [("helper", helper_id)]
    text = strict_miss(second, " hi ")
    assert f"helper `{helper_id}` changed" in text
    assert "source of" not in text
    assert text.endswith(f"To re-record: {command}")


def test_constant_changed(memo_env: Store, monkeypatch: pytest.MonkeyPatch,
                          command: str) -> None:
    def make() -> Callable[[str], str]:
        @recorded
        def translate(text: str) -> str:
            return PROMPT.format(text=text)

        return translate

    first = make()
    assert first("hi") == "Translate this: hi"
    monkeypatch.setitem(globals(), "PROMPT", "Translate this, carefully: {text}")
    second = make()
    explanation = second.memo.explain("hi")
    assert components(explanation) == [("constant", f"{__name__}.PROMPT")]
    text = strict_miss(second, "hi")
    assert f"constant `{__name__}.PROMPT` changed" in text
    assert "source of" not in text
    assert text.endswith(f"To re-record: {command}")
    # In auto, the edited constant re-records instead of replaying the stale answer.
    assert second("hi") == "Translate this, carefully: hi"


def test_version_changed(memo_env: Store, command: str) -> None:
    def make(version: str) -> Callable[[int], int]:
        @recorded(version=version)
        def score(x: int) -> int:
            return x

        return score

    make("1")(5)
    second = make("2")
    explanation = second.memo.explain(5)
    assert components(explanation) == [("version", "version")]
    text = strict_miss(second, 5)
    assert "version= changed from '1' to '2'" in text
    assert text.endswith(f"To re-record: {command}")


def test_several_differences_are_all_listed(memo_env: Store, tmp_path: Path) -> None:
    source = tmp_path / "a.dy"
    source.write_text("one")

    @recorded(files=["{path}"])
    def translate(path: str, model: str) -> str:
        return Path(path).read_text() + model

    translate(str(source), "small")
    source.write_text("two")
    explanation = translate.memo.explain(str(source), "large")
    assert components(explanation) == [("argument", "model"), ("file", source.as_posix())]
    text = str(explanation)
    assert "argument `model` differs: recorded 'small', now 'large'" in text
    assert f"file `{source.as_posix()}` changed" in text


def test_explain_does_not_call_or_record(memo_env: Store) -> None:
    calls: list[int] = []

    @recorded
    def f(x: int) -> int:
        calls.append(x)
        return x

    f.memo.explain(1)
    f.memo.key(1)
    assert calls == []
    assert list(f.memo.entries()) == []
