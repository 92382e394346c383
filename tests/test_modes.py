"""Modes: parsing, precedence, CI default, context-manager locality, config in pyproject."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import memo_replay
from memo_replay import ConfigError, InvalidMode, Mode, ReplayMiss, Store, recorded, track
from memo_replay.config import Config, load_config
from memo_replay.modes import default_mode, parse_mode, resolve_mode, set_session_mode

if TYPE_CHECKING:
    from conftest import Project

VALID = "auto, record, replay, off"


@pytest.fixture
def no_mode_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Neither MEMO_MODE nor CI: the documented default (auto) applies."""
    monkeypatch.delenv("MEMO_MODE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    return monkeypatch


# -- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("auto", Mode.AUTO), ("record", Mode.RECORD), ("replay", Mode.REPLAY), ("off", Mode.OFF),
    (" Replay ", Mode.REPLAY), ("RECORD", Mode.RECORD), (Mode.OFF, Mode.OFF),
])
def test_parse_mode(text: str, expected: Mode) -> None:
    assert parse_mode(text, source="test") is expected


def test_mode_is_a_str_enum() -> None:
    assert [m.value for m in Mode] == ["auto", "record", "replay", "off"]
    assert Mode("replay") is Mode.REPLAY
    assert Mode.REPLAY == "replay"
    assert str(Mode.OFF) == "off"


@pytest.mark.parametrize("bad", ["fast", "", "replay!", "rec"])
def test_parse_mode_rejects_invalid_values(bad: str) -> None:
    with pytest.raises(InvalidMode) as info:
        parse_mode(bad, source="somewhere")
    assert VALID in str(info.value)
    assert "somewhere" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_invalid_memo_mode_env(memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    @recorded
    def f(x: int) -> int:
        return x

    monkeypatch.setenv("MEMO_MODE", "strict")
    with pytest.raises(InvalidMode) as info:
        f(1)
    assert "'strict'" in str(info.value)
    assert "MEMO_MODE" in str(info.value)
    assert VALID in str(info.value)


def test_invalid_decorator_mode() -> None:
    with pytest.raises(InvalidMode) as info:
        @recorded(mode="sometimes")
        def f(x: int) -> int:
            return x
    assert "'sometimes'" in str(info.value)
    assert "@recorded(mode=...)" in str(info.value)
    assert VALID in str(info.value)


def test_invalid_context_manager_mode() -> None:
    with pytest.raises(InvalidMode, match=VALID), memo_replay.mode("later"):
        pass


def test_invalid_config_mode(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.memo_replay]\nmode = "sometimes"\n')
    with pytest.raises(InvalidMode) as info:
        load_config(pyproject)
    assert "'sometimes'" in str(info.value)
    assert str(pyproject) in str(info.value)
    assert VALID in str(info.value)


# -- the default and CI -------------------------------------------------------------------------


def test_default_without_ci_is_auto(no_mode_env: pytest.MonkeyPatch) -> None:
    assert default_mode() is Mode.AUTO
    assert resolve_mode(None, None) is Mode.AUTO


@pytest.mark.parametrize("value", ["true", "1", "yes", "True", "github"])
def test_ci_set_means_replay(no_mode_env: pytest.MonkeyPatch, value: str) -> None:
    no_mode_env.setenv("CI", value)
    assert default_mode() is Mode.REPLAY
    assert resolve_mode(None, None) is Mode.REPLAY


@pytest.mark.parametrize("value", ["false", "0", "", "no", "FALSE"])
def test_ci_false_means_auto(no_mode_env: pytest.MonkeyPatch, value: str) -> None:
    no_mode_env.setenv("CI", value)
    assert default_mode() is Mode.AUTO


def test_ci_strict_replay_in_process(no_mode_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_mode_env.setenv("MEMO_STORE", str(tmp_path / "store"))
    no_mode_env.setenv("CI", "true")
    calls: list[int] = []

    @recorded
    def f(x: int) -> int:
        calls.append(x)
        return x

    assert f.memo.mode is Mode.REPLAY
    with pytest.raises(ReplayMiss, match="no recording of"):
        f(1)
    assert calls == []
    no_mode_env.delenv("CI")
    assert f.memo.mode is Mode.AUTO
    assert f(1) == 1
    no_mode_env.setenv("CI", "true")
    with track() as events:
        assert f(1) == 1
    assert [e.outcome for e in events] == ["replayed"]
    assert calls == [1]


# -- precedence ---------------------------------------------------------------------------------


def test_resolve_mode_precedence(no_mode_env: pytest.MonkeyPatch) -> None:
    # default < config < decorator < MEMO_MODE < context manager
    assert resolve_mode(None, Mode.OFF) is Mode.OFF
    assert resolve_mode(Mode.RECORD, Mode.OFF) is Mode.RECORD
    no_mode_env.setenv("CI", "true")
    assert resolve_mode(None, Mode.AUTO) is Mode.AUTO  # config beats the CI default
    no_mode_env.setenv("MEMO_MODE", "off")
    assert resolve_mode(Mode.RECORD, Mode.AUTO) is Mode.OFF
    with memo_replay.mode("record") as forced:
        assert forced is Mode.RECORD
        assert resolve_mode(Mode.AUTO, Mode.AUTO) is Mode.RECORD
        with memo_replay.mode(Mode.REPLAY):
            assert resolve_mode(None, None) is Mode.REPLAY
        assert resolve_mode(None, None) is Mode.RECORD
    assert resolve_mode(None, None) is Mode.OFF


def test_context_manager_beats_env(memo_env: Store) -> None:
    calls: list[int] = []

    @recorded
    def f(x: int) -> int:
        calls.append(x)
        return x

    assert f.memo.mode is Mode.AUTO  # MEMO_MODE=auto from memo_env
    with memo_replay.mode("replay"):
        assert f.memo.mode is Mode.REPLAY
        with pytest.raises(ReplayMiss):
            f(1)
    assert calls == []
    assert f(1) == 1
    assert calls == [1]


def test_env_beats_decorator(memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    @recorded(mode="replay")
    def f(x: int) -> int:
        calls.append(x)
        return x

    assert f.memo.mode is Mode.AUTO  # MEMO_MODE=auto beats mode="replay"
    assert f(1) == 1
    monkeypatch.setenv("MEMO_MODE", "off")
    assert f(1) == 1
    assert calls == [1, 1]
    monkeypatch.delenv("MEMO_MODE")
    monkeypatch.delenv("CI", raising=False)
    assert f.memo.mode is Mode.REPLAY  # now the decorator decides
    with pytest.raises(ReplayMiss):
        f(2)


def test_decorator_beats_ci_default(memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMO_MODE")
    monkeypatch.setenv("CI", "true")

    @recorded(mode="off")
    def f(x: int) -> int:
        return x

    assert f.memo.mode is Mode.OFF
    assert f(1) == 1
    assert list(f.memo.entries()) == []


# -- locality of mode() -------------------------------------------------------------------------


def test_mode_is_task_local(no_mode_env: pytest.MonkeyPatch) -> None:
    seen: dict[str, Mode] = {}

    async def forced(entered: asyncio.Event, release: asyncio.Event) -> None:
        with memo_replay.mode("replay"):
            entered.set()
            await release.wait()
            seen["forced"] = resolve_mode(None, None)

    async def free(entered: asyncio.Event, release: asyncio.Event) -> None:
        await entered.wait()  # the other task is inside its `with` block now
        seen["free"] = resolve_mode(None, None)
        release.set()

    async def main() -> None:
        entered, release = asyncio.Event(), asyncio.Event()
        await asyncio.gather(forced(entered, release), free(entered, release))
        seen["after"] = resolve_mode(None, None)

    asyncio.run(main())
    assert seen == {"forced": Mode.REPLAY, "free": Mode.AUTO, "after": Mode.AUTO}


def test_mode_is_thread_local(no_mode_env: pytest.MonkeyPatch) -> None:
    seen: dict[str, Mode] = {}
    entered, release = threading.Event(), threading.Event()

    def forced() -> None:
        with memo_replay.mode("off"):
            entered.set()
            release.wait(timeout=30)
            seen["forced"] = resolve_mode(None, None)

    thread = threading.Thread(target=forced)
    thread.start()
    assert entered.wait(timeout=30)
    seen["main"] = resolve_mode(None, None)
    release.set()
    thread.join(timeout=30)
    assert seen == {"forced": Mode.OFF, "main": Mode.AUTO}


def test_mode_in_main_thread_does_not_leak_into_a_worker(no_mode_env: pytest.MonkeyPatch) -> None:
    seen: list[Mode] = []
    with memo_replay.mode("record"):
        thread = threading.Thread(target=lambda: seen.append(resolve_mode(None, None)))
        thread.start()
        thread.join(timeout=30)
        assert resolve_mode(None, None) is Mode.RECORD
    assert seen == [Mode.AUTO]


def test_mode_restored_after_an_exception(no_mode_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError), memo_replay.mode("off"):
        raise RuntimeError
    assert resolve_mode(None, None) is Mode.AUTO


# -- [tool.memo_replay] -------------------------------------------------------------------------


def test_load_config(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    assert load_config(pyproject) == Config()  # no file
    pyproject.write_text('[project]\nname = "x"\n')
    assert load_config(pyproject) == Config()  # no table
    pyproject.write_text('[tool.memo_replay]\nmode = "Replay"\nstore = "recs"\n')
    assert load_config(pyproject) == Config(store="recs", mode=Mode.REPLAY)


@pytest.mark.parametrize(("table", "named"), [
    ('stroe = "recs"', "stroe"),
    ("mode = 3", "mode"),
    ("store = true", "store"),
    ('store = "  "', "store"),
])
def test_config_errors_name_key_and_file(tmp_path: Path, table: str, named: str) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[tool.memo_replay]\n{table}\n")
    with pytest.raises(ConfigError) as info:
        load_config(pyproject)
    assert f"`{named}`" in str(info.value)
    assert str(pyproject) in str(info.value)


def test_config_typo_names_file_valid_keys_and_closest(tmp_path: Path) -> None:
    """A typo in [tool.memo_replay] is reported in memo_replay's words: the file, each unknown
    key with the closest valid one, and every valid key — not pydantic's "Extra inputs"."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.memo_replay]\nmdoe = "replay"\nlock_timout = 5\nzzz = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(pyproject)
    message = str(info.value)
    assert str(pyproject) in message
    assert "`mdoe` (did you mean `mode`?)" in message
    assert "`lock_timout` (did you mean `lock_timeout`?)" in message
    assert "`zzz` in" in message  # nothing close: no guess
    assert "Valid keys: `allow_secrets`, `lock_timeout`, `mode`," in message
    assert "Extra inputs" not in message


def test_config_table_that_is_not_a_table(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool]\nmemo_replay = "replay"\n')
    with pytest.raises(ConfigError, match="should be a table") as info:
        load_config(pyproject)
    assert str(pyproject) in str(info.value)


def test_config_not_toml(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.memo_replay\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(pyproject)



@pytest.mark.parametrize("spelling", [
    '[tool.memo_replay]\nmode = "replay"\n',
    '[tool]\nmemo_replay = { mode = "replay" }\n',
    'tool.memo_replay.mode = "replay"\n',
    '[tool."memo_replay"]\nmode = "replay"\n',
    "[tool.'memo_replay']\nmode = 'replay'\n",
    '[tool."memo\\u005freplay"]\nmode = "replay"\n',  # an escaped key never spells the name
    '[tool."memo\\U0000005Freplay"]\nmode = "replay"\n',
])
def test_every_spelling_of_the_table_is_read(tmp_path: Path, spelling: str) -> None:
    """load_config skips parsing a pyproject.toml that cannot hold our table (no TOML parser
    on a fresh clone's replay); every way TOML can spell ``tool.memo_replay`` is still read."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f'{spelling}[project]\nname = "x"\n')
    assert load_config(pyproject) == Config(mode=Mode.REPLAY)


def test_a_file_that_cannot_configure_us_is_not_parsed(tmp_path: Path) -> None:
    """Without ``memo_replay`` or an escape in it, pyproject.toml is not ours to validate."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[project\nname = ")  # broken, and not about memo_replay
    assert load_config(pyproject) == Config()
    pyproject.write_text("[tool.memo_replay\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(pyproject)
    pyproject.write_bytes(b'[tool.memo_replay]\nstore = "\xff"\n')  # not UTF-8
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(pyproject)

MODULE = '''
from pathlib import Path
from memo_replay import recorded

@recorded
def f(x: int) -> int:
    with open("calls.log", "a") as fh:
        fh.write(f"f {x}\\n")
    return x * 2
'''

SHOW = "from pkg.work import f; print('result', f(2), f.memo.mode, f.memo.store.path)"


def configured(project: Project, table: str) -> None:
    project.write("pyproject.toml", f'[project]\nname = "proj"\nversion = "0"\n\n'
                                    f"[tool.memo_replay]\n{table}\n")
    project.write("pkg/__init__.py", "")
    project.write("pkg/work.py", MODULE)


def test_config_mode_and_store_honoured(project: Project) -> None:
    configured(project, 'mode = "replay"\nstore = "recs"')
    # Config says replay, nothing is recorded yet: strict miss, function not called.
    miss = project.run(SHOW, mode=None, check=False)
    assert miss.returncode != 0
    assert "ReplayMiss" in miss.stderr
    assert "no recording of `pkg.work.f`" in miss.stderr
    assert project.calls() == []
    # MEMO_MODE beats the config: record into the configured store `recs/`.
    out = project.run(SHOW, mode="auto")
    assert "result 4 auto" in out.stdout
    assert str(project.root / "recs") in out.stdout
    assert project.calls() == ["f 2"]
    assert len(list(Store(project.root / "recs").entries())) == 1
    assert not (project.root / "fixtures_store").exists()
    # Back to the config's replay: it replays from `recs/`.
    out = project.run(SHOW, mode=None)
    assert "result 4 replay" in out.stdout
    assert project.calls() == ["f 2"]


def test_config_mode_beats_ci_default(project: Project) -> None:
    configured(project, 'mode = "auto"')
    out = project.run(SHOW, mode=None, env={"CI": "true"})
    assert "result 4 auto" in out.stdout
    assert project.calls() == ["f 2"]


def test_decorator_mode_beats_config(project: Project) -> None:
    configured(project, 'mode = "replay"')
    project.replace("pkg/work.py", "@recorded\n", '@recorded(mode="auto")\n')
    out = project.run(SHOW, mode=None)
    assert "result 4 auto" in out.stdout
    assert project.calls() == ["f 2"]


def test_memo_store_env_beats_config(project: Project, tmp_path: Path) -> None:
    configured(project, 'store = "recs"')
    elsewhere = tmp_path / "elsewhere"
    out = project.run(SHOW, env={"MEMO_STORE": str(elsewhere)})
    assert str(elsewhere) in out.stdout
    assert len(list(Store(elsewhere).entries())) == 1
    assert not (project.root / "recs").exists()


def test_unknown_config_key_is_an_error(project: Project) -> None:
    configured(project, 'mdoe = "replay"')
    result = project.run(SHOW, check=False)
    assert result.returncode != 0
    assert "ConfigError" in result.stderr
    assert "`mdoe`" in result.stderr
    assert str(project.root / "pyproject.toml") in result.stderr
    assert project.calls() == []


def test_invalid_config_mode_in_project(project: Project) -> None:
    configured(project, 'mode = "sometimes"')
    result = project.run(SHOW, mode=None, check=False)
    assert result.returncode != 0
    assert "InvalidMode" in result.stderr
    assert VALID in result.stderr
    assert str(project.root / "pyproject.toml") in result.stderr


# -- the session mode (what `--memo-mode` sets) -------------------------------------------------


@pytest.fixture
def session_mode() -> Iterator[Callable[[str | None], None]]:
    def set_mode(value: str | None) -> None:
        set_session_mode(value, source="--memo-mode")

    try:
        yield set_mode
    finally:
        set_session_mode(None, source="--memo-mode")


def test_session_mode_precedence(no_mode_env: pytest.MonkeyPatch,
                                 session_mode: Callable[[str | None], None]) -> None:
    session_mode("record")
    no_mode_env.setenv("MEMO_MODE", "off")
    assert resolve_mode(Mode.AUTO, Mode.AUTO) is Mode.RECORD  # beats env, decorator, config
    with memo_replay.mode("replay"):
        assert resolve_mode(None, None) is Mode.REPLAY  # the context manager beats it
    session_mode(None)
    assert resolve_mode(None, None) is Mode.OFF


def test_session_mode_reaches_threads(no_mode_env: pytest.MonkeyPatch,
                                      session_mode: Callable[[str | None], None]) -> None:
    # Regression: it was a ContextVar, so threads a test started (which begin with an empty
    # context) ignored `--memo-mode` and fell back to MEMO_MODE or the default.
    session_mode("replay")
    seen: list[Mode] = []
    thread = threading.Thread(target=lambda: seen.append(resolve_mode(None, None)))
    thread.start()
    thread.join(timeout=30)
    assert seen == [Mode.REPLAY]


def test_invalid_session_mode(session_mode: Callable[[str | None], None]) -> None:
    with pytest.raises(InvalidMode) as info:
        session_mode("fast")
    assert "--memo-mode" in str(info.value)
    assert VALID in str(info.value)
