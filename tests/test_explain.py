"""Explaining a miss: each component that can differ, named, and the command that re-records."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import memo_replay
from memo_replay import Explanation, ReplayMiss, Store, constants, recorded
from memo_replay.explain import compare_entries, rerecord_command

if TYPE_CHECKING:
    from conftest import Project

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


def test_type_only_argument_differences_name_both_types(memo_env: Store) -> None:
    """``Path("a.dy")`` and ``"a.dy"`` preview alike, ``2 == 2.0``: the miss names both types."""
    @recorded
    def translate(path: str | Path, temperature: float = 0) -> str:
        return str(path)

    translate("a.dy", 2)
    path_type = f"{Path.__module__}.{type(Path('a.dy')).__qualname__}"  # pathlib.PosixPath
    text = strict_miss(translate, Path("a.dy"), 2)
    assert (f"argument `path`: recorded a `str`, now a `{path_type}` (same preview 'a.dy')"
            in text)
    text = strict_miss(translate, "a.dy", 2.0)
    assert "argument `temperature` differs: recorded 2 (a `int`), now 2.0 (a `float`)" in text
    text = strict_miss(translate, Path("b.dy"), 2)
    assert (f"argument `path` differs: recorded 'a.dy' (a `str`), now 'b.dy' (a `{path_type}`)"
            in text)
    assert "beyond what the preview shows" not in text
    # The recorded types are kept in the entry's components (not in its key).
    [entry] = memo_env.entries()
    assert entry.components.argument_types == {"path": "str", "temperature": "int"}
    assert entry.key == translate.memo.key("a.dy", 2)


def test_type_difference_against_an_entry_without_stored_types(memo_env: Store) -> None:
    """Entries recorded before argument types were kept: JSON still tells 2 from 2.0; for a
    string preview the miss says the recorded type is unknown, and the entry still replays."""
    @recorded
    def translate(path: str | Path, temperature: float = 0) -> str:
        return str(path)

    translate("a.dy", 2)
    [entry] = memo_env.entries()
    document = json.loads(entry.path.read_text())
    del document["components"]["argument_types"]
    entry.path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    text = strict_miss(translate, "a.dy", 2.0)
    assert "argument `temperature` differs: recorded 2 (a `int`), now 2.0 (a `float`)" in text
    text = strict_miss(translate, Path("a.dy"), 2)
    assert "argument `path` differs beyond what the preview shows ('a.dy', now a `" in text
    assert "the recording predates stored argument types" in text
    with memo_replay.mode("replay"):
        assert translate("a.dy", 2) == "a.dy"


def test_memo_replay_diff_names_argument_types(memo_env: Store) -> None:
    @recorded
    def score(x: float) -> float:
        return x

    score(2)
    score(2.0)
    first, second = sorted(memo_env.entries(), key=lambda e: e.arguments["x"].__class__.__name__,
                           reverse=True)  # int, then float
    [difference] = compare_entries(first, second)
    assert difference.message == "argument `x` differs: recorded 2 (a `int`), now 2.0 (a `float`)"


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


# -- constants: both values, where they are defined ---------------------------------------

PROMPTS = '''
PROMPT = "Translate: {text}"
'''

LLM = '''
from memo_replay import recorded
from pkg.prompts import PROMPT

CALLS = {"n": 0}
API_TOKEN = "not-a-real-token-but-named-like-one"


def call_model(text: str) -> str:
    CALLS["n"] += 1  # a counter the call itself bumps
    return PROMPT.format(text=text) + API_TOKEN[:0]


@recorded
def translate(text: str) -> str:
    return call_model(text)
'''

MISS = '''
import memo_replay
import pkg.llm
{setup}
try:
    with memo_replay.mode("replay"):
        pkg.llm.translate("a")
except memo_replay.ReplayMiss as miss:
    print(miss)
'''


@pytest.fixture
def translator(project: Project) -> Project:
    project.write("pkg/__init__.py", "")
    project.write("pkg/prompts.py", PROMPTS)
    project.write("pkg/llm.py", LLM)
    project.run("import pkg.llm; pkg.llm.translate('a')")
    return project


def test_mutated_constant_shows_both_values_and_the_faq(translator: Project) -> None:
    out = translator.run(MISS.format(setup="pkg.llm.CALLS['n'] = 5"), mode=None).stdout
    # The recorded value is the one the key saw, before the call bumped the counter.
    assert "  - constant `pkg.llm.CALLS` changed: recorded {'n': 0}, now {'n': 5}" in out
    assert ("      `pkg.llm.CALLS` is a mutable dict: if the program changes it while it runs, "
            "the calls after the change miss. See \"A constant changed, but I did not edit "
            "it\" in docs/faq.md.") in out
    [entry] = translator.store.entries()
    assert entry.components.constant_values["pkg.llm.CALLS"] == {"n": 0}


def test_imported_constant_names_its_defining_module(translator: Project) -> None:
    translator.replace("pkg/prompts.py", "Translate:", "Translate now:")
    out = translator.run(MISS.format(setup=""), mode=None).stdout
    assert ("  - constant `pkg.llm.PROMPT` (defined in `pkg.prompts`) changed: recorded "
            "'Translate: {text}', now 'Translate now: {text}'") in out
    assert "mutable" not in out  # a string: no FAQ pointer


def test_secret_looking_constants_are_never_written_or_shown(translator: Project) -> None:
    [entry] = translator.store.entries()
    assert "not-a-real-token" not in entry.path.read_text()
    assert entry.components.constant_values["pkg.llm.API_TOKEN"] == constants.HIDDEN
    translator.replace("pkg/llm.py", "not-a-real-token", "another-fake-token")
    out = translator.run(MISS.format(setup=""), mode=None).stdout
    assert (f"constant `pkg.llm.API_TOKEN` changed: recorded {constants.HIDDEN}, now "
            f"{constants.HIDDEN}") in out
    assert "fake-token" not in out


def test_constant_values_absent_from_older_entries(translator: Project) -> None:
    """An entry recorded before constant values were kept still explains (value now only)
    and still replays; reading it needs no format change."""
    [entry] = translator.store.entries()
    document = json.loads(entry.path.read_text())
    del document["components"]["constant_values"]
    entry.path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    translator.run("import memo_replay, pkg.llm\nwith memo_replay.mode('replay'): "
                   "pkg.llm.translate('a')", mode=None)
    out = translator.run(MISS.format(setup="pkg.llm.CALLS['n'] = 5"), mode=None).stdout
    assert ("constant `pkg.llm.CALLS` changed: now {'n': 5} (the recording predates stored "
            "constant values)") in out


def test_diff_of_two_entries_shows_recorded_constant_values(translator: Project) -> None:
    translator.run("import pkg.llm; pkg.llm.CALLS['n'] = 3; pkg.llm.translate('a')")
    first, second = sorted(translator.store.entries(),
                           key=lambda e: e.components.constant_values["pkg.llm.CALLS"]["n"])
    [difference] = compare_entries(first, second)
    assert difference.message == ("constant `pkg.llm.CALLS` changed: recorded {'n': 0}, now "
                                  "{'n': 3}")


def test_long_strings_are_shown_from_where_they_differ(translator: Project) -> None:
    """A reworded prompt differs near its end, past what a bounded preview shows from its
    start: both values are shown from a little before the first difference."""
    long_prompt = "Translate the state machine below into JSON with the keys title and states. "
    translator.replace("pkg/prompts.py", "Translate: ", long_prompt)
    for entry in translator.store.entries():
        entry.path.unlink()  # the only recording is the one with the long prompt
    translator.run("import pkg.llm; pkg.llm.translate('a')")
    translator.replace("pkg/prompts.py", "title and states", "title and transitions")
    out = translator.run(MISS.format(setup=""), mode=None).stdout
    assert ("changed: recorded …' the keys title and states. {text}', now …' the keys title "
            "and transitions. {text}'") in out


def test_a_long_template_changed_near_its_end_shows_the_change(translator: Project) -> None:
    """Regression: a constant's stored preview stopped at 200 characters, so a prompt template
    reworded past them read "recorded …'<the same text>… (539 chars)', now …'<the same
    text>… (578 chars)'" — nothing of the change. String constants are kept whole up to
    constants.STRING_CHARS, and the miss shows where the two differ."""
    long_prompt = "Translate: " + "Follow every rule below. " * 40 + "Keep names. "
    assert 500 < len(long_prompt) < 4000
    translator.replace("pkg/prompts.py", "Translate: ", long_prompt)
    for entry in translator.store.entries():
        entry.path.unlink()
    translator.run("import pkg.llm; pkg.llm.translate('a')")
    translator.replace("pkg/prompts.py", "Keep names. ", "Keep names exactly as written. ")
    out = translator.run(MISS.format(setup=""), mode=None).stdout
    assert "Keep names. {text}" in out
    assert "Keep names exactly as written. {text}" in out
