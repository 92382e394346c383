"""Expiry: ``@recorded(ttl=...)`` and ``[tool.memo_replay] ttl`` / ``replay_expired``.

- ``auto``, ``record``: called again and re-recorded; ``recorded_at`` is renewed even when the
  result is identical;
- ``replay`` (default ``replay_expired = "warn"``): replayed with a ``MemoReplayWarning``;
- ``replay`` with ``replay_expired = "fail"``: ``ExpiredRecording`` (a ``ReplayMiss``), never
  called.

Nothing sleeps: a recording is made old by rewriting its ``recorded_at`` (a volatile field, outside
the payload checksum) to a date long past.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import memo_replay
from memo_replay import (
    ConfigError,
    CorruptEntry,
    ExpiredRecording,
    InvalidOption,
    MemoReplayWarning,
    ReplayMiss,
    Store,
    recorded,
)
from memo_replay.config import load_config
from memo_replay.store.entry import render

if TYPE_CHECKING:
    from conftest import Project

LONG_AGO = "2000-01-01T00:00:00Z"


# -- helpers ----------------------------------------------------------------------------------


@recorded(ignore=["log"], ttl="1h")
def hourly(n: int, log: list[int]) -> dict[str, int]:
    log.append(n)
    return {"n": n, "double": 2 * n}


@recorded(ignore=["log"])
def forever(n: int, log: list[int]) -> dict[str, int]:
    log.append(n)
    return {"n": n, "triple": 3 * n}


@recorded(ignore=["log"], ttl=dt.timedelta(hours=1))
async def hourly_async(n: int, log: list[int]) -> dict[str, int]:
    log.append(n)
    await asyncio.sleep(0)
    return {"n": n, "half": n // 2}


def the_entry(store: Store) -> Path:
    files = sorted(p for p in store.path.glob("*/*.json") if not p.parent.name.startswith("."))
    assert len(files) == 1, files
    return files[0]


def backdate(path: Path, when: str = LONG_AGO) -> bytes:
    """Rewrite the entry's ``recorded_at`` (atomically, like a checkout would); its bytes."""
    document = json.loads(path.read_bytes())
    document["recorded_at"] = when
    raw = render(document)
    temp = path.with_name(f".{path.stem}.backdate.tmp")
    temp.write_bytes(raw)
    os.replace(temp, path)
    return raw


def recorded_at(path: Path) -> dt.datetime:
    return dt.datetime.fromisoformat(json.loads(path.read_bytes())["recorded_at"]
                                     .replace("Z", "+00:00"))


def without_volatile(raw: bytes) -> dict[str, Any]:
    document = json.loads(raw)
    for name in ("recorded_at", "duration_s", "versions"):
        document.pop(name)
    return document  # type: ignore[no-any-return]


def outcomes(events: list[memo_replay.CallEvent]) -> list[str]:
    return [e.outcome for e in events]


# -- auto and record re-record ----------------------------------------------------------------


def test_auto_rerecords_an_expired_recording_and_renews_recorded_at(memo_env: Store) -> None:
    log: list[int] = []
    assert hourly(1, log) == {"n": 1, "double": 2}
    path = the_entry(memo_env)
    first_recorded_at = recorded_at(path)
    old = backdate(path)
    assert memo_env.verify() == []  # an old recording is not a damaged one

    with memo_replay.track() as events:
        assert hourly(1, log) == {"n": 1, "double": 2}
    assert log == [1, 1]
    assert outcomes(events) == ["recorded"]
    renewed = path.read_bytes()
    assert renewed != old  # rewritten although the result is identical…
    assert without_volatile(renewed) == without_volatile(old)  # …which it is
    assert recorded_at(path) >= first_recorded_at
    assert memo_env.verify() == []

    with memo_replay.track() as events:  # renewed: replays again
        assert hourly(1, log) == {"n": 1, "double": 2}
    assert log == [1, 1]
    assert outcomes(events) == ["replayed"]
    assert path.read_bytes() == renewed


def test_record_mode_renews_an_expired_recording(memo_env: Store) -> None:
    log: list[int] = []
    hourly(2, log)
    path = the_entry(memo_env)
    fresh = path.read_bytes()
    with memo_replay.mode("record"):  # not expired, same result: not a byte changes
        hourly(2, log)
    assert log == [2, 2]
    assert path.read_bytes() == fresh

    first_recorded_at = recorded_at(path)
    old = backdate(path)
    with memo_replay.mode("record"), memo_replay.track() as events:
        assert hourly(2, log) == {"n": 2, "double": 4}
    assert log == [2, 2, 2]
    assert outcomes(events) == ["recorded"]
    assert path.read_bytes() != old
    assert without_volatile(path.read_bytes()) == without_volatile(old)
    assert recorded_at(path) >= first_recorded_at
    assert memo_env.verify() == []


def test_async_functions_expire_too(memo_env: Store) -> None:
    log: list[int] = []
    assert asyncio.run(hourly_async(8, log)) == {"n": 8, "half": 4}
    path = the_entry(memo_env)
    old = backdate(path)

    async def strict() -> dict[str, int]:
        with memo_replay.mode("replay"):
            return await hourly_async(8, log)

    with pytest.warns(MemoReplayWarning, match="expired") as caught:
        assert asyncio.run(strict()) == {"n": 8, "half": 4}
    assert log == [8]
    assert path.read_bytes() == old
    assert [w.filename for w in caught if w.category is MemoReplayWarning] == [__file__]

    assert asyncio.run(hourly_async(8, log)) == {"n": 8, "half": 4}  # auto: re-records
    assert log == [8, 8]
    assert path.read_bytes() != old


# -- strict replay ----------------------------------------------------------------------------


def test_strict_replay_of_an_expired_recording_warns_and_replays(memo_env: Store) -> None:
    log: list[int] = []
    hourly(3, log)
    path = the_entry(memo_env)
    old = backdate(path)

    with memo_replay.mode("replay"), memo_replay.track() as events, \
            pytest.warns(MemoReplayWarning, match="expired") as caught:
        assert hourly(3, log) == {"n": 3, "double": 6}
    assert log == [3]  # not called
    assert outcomes(events) == ["replayed"]
    assert path.read_bytes() == old  # replay never writes
    (warning,) = [w for w in caught if w.category is MemoReplayWarning]
    message = str(warning.message)
    assert hourly.memo.id in message
    assert "MEMO_MODE=record" in message
    assert warning.filename == __file__  # points at the call, not into memo_replay


def test_an_unexpired_recording_replays_silently(memo_env: Store) -> None:
    log: list[int] = []
    hourly(4, log)
    path = the_entry(memo_env)
    fresh = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with memo_replay.mode("replay"), memo_replay.track() as events:
            assert hourly(4, log) == {"n": 4, "double": 8}
        assert hourly(4, log) == {"n": 4, "double": 8}  # auto
    assert log == [4]
    assert outcomes(events) == ["replayed"]
    assert path.read_bytes() == fresh


def test_without_ttl_a_recording_never_expires(memo_env: Store) -> None:
    log: list[int] = []
    forever(5, log)
    path = the_entry(memo_env)
    old = backdate(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with memo_replay.mode("replay"):
            assert forever(5, log) == {"n": 5, "triple": 15}
        assert forever(5, log) == {"n": 5, "triple": 15}  # auto: replayed, not re-recorded
    assert log == [5]
    assert path.read_bytes() == old


@pytest.mark.parametrize("when", ["yesterday", "2026-02-30T00:00:00Z", "2026-11-21T24:00:00Z"])
def test_a_recording_time_that_is_not_a_time(memo_env: Store, when: str) -> None:
    """A hit reads ``recorded_at`` only when a ttl needs its age: without one the recording
    replays; with one it is a corrupt entry — strict replay fails naming the field, auto
    re-records — never a crash and never a guess at its age."""
    log: list[int] = []
    forever(6, log)
    hourly(6, log)
    for path in sorted(p for p in memo_env.path.glob("*/*.json")):
        backdate(path, when)
    with memo_replay.mode("replay"):
        assert forever(6, log) == {"n": 6, "triple": 18}
        with pytest.raises(CorruptEntry, match="recorded_at") as info:
            hourly(6, log)
    assert hourly.memo.id.rpartition(".")[2] in str(info.value)
    assert log == [6, 6]
    with pytest.warns(MemoReplayWarning, match="recorded_at"):
        assert hourly(6, log) == {"n": 6, "double": 12}  # auto: re-recorded
    assert log == [6, 6, 6]


# -- ttl and replay_expired in pyproject.toml -------------------------------------------------


EXPIRY_MODULE = """
import os
from memo_replay import recorded


def _log(name):
    with open("calls.log", "a") as fh:
        fh.write(f"{name} {os.getpid()}\\n")


@recorded
def daily(n: int) -> dict:
    _log("daily")
    return {"n": n}


@recorded(ttl="36500d")
def century(n: int) -> dict:
    _log("century")
    return {"n": n, "century": True}
"""

CALL_BOTH = """
import json, warnings
import memo_replay, expmod
from memo_replay import ExpiredRecording, ReplayMiss

warnings.simplefilter("error")
out = {}
with memo_replay.track() as events:
    try:
        out["daily"] = expmod.daily(1)
    except ExpiredRecording as exc:
        out["expired"] = {"message": str(exc), "is_miss": isinstance(exc, ReplayMiss),
                          "function": exc.function, "key": exc.key,
                          "expected_key": expmod.daily.memo.key(1)}
    out["century"] = expmod.century(1)
out["outcomes"] = [e.outcome for e in events]
print(json.dumps(out))
"""


def expiry_project(project: Project, settings: str) -> None:
    project.write("pyproject.toml", f"""
        [project]
        name = "proj"
        version = "0"

        [tool.memo_replay]
        {settings}
    """)
    project.write("expmod.py", EXPIRY_MODULE)


def run_both(project: Project, mode: str) -> dict[str, Any]:
    return json.loads(project.run(CALL_BOTH, mode=mode).stdout)  # type: ignore[no-any-return]


def backdate_all(project: Project) -> None:
    entries = list(project.store.entries())
    assert len(entries) == 2
    for entry in entries:
        backdate(entry.path)


def test_config_replay_expired_fail_raises_expired_recording(project: Project) -> None:
    expiry_project(project, 'ttl = "1h"\n        replay_expired = "fail"')
    assert run_both(project, "auto")["outcomes"] == ["recorded", "recorded"]
    backdate_all(project)

    out = run_both(project, "replay")
    assert issubclass(ExpiredRecording, ReplayMiss)
    expired = out["expired"]
    assert expired["is_miss"] is True
    assert expired["function"] == "expmod.daily"
    assert expired["key"] == expired["expected_key"]
    message = expired["message"]
    assert "`expmod.daily`" in message
    assert "expired" in message
    assert "replay_expired" in message
    assert "To re-record: MEMO_MODE=record" in message
    # century's own ttl (100 years) beats the config's hour: it replays, silently.
    assert out["century"] == {"n": 1, "century": True}
    assert out["outcomes"] == ["missed", "replayed"]  # the refused expired call is a miss
    assert len(project.calls()) == 2  # strict replay called nothing

    out = run_both(project, "auto")  # config ttl: daily re-records, century replays
    assert out["daily"] == {"n": 1}
    assert out["outcomes"] == ["recorded", "replayed"]
    assert [line.split()[0] for line in project.calls()] == ["daily", "century", "daily"]

    out = run_both(project, "replay")  # renewed: replays
    assert out["outcomes"] == ["replayed", "replayed"]
    assert project.store.verify() == []


def test_config_ttl_in_replay_warns_by_default(project: Project) -> None:
    expiry_project(project, "ttl = 3600")
    run_both(project, "auto")
    backdate_all(project)
    result = project.run(CALL_BOTH, mode="replay", check=False)
    # CALL_BOTH turns warnings into errors: the expired `daily` warning surfaces as one.
    assert result.returncode != 0
    assert "MemoReplayWarning" in result.stderr
    assert "expmod.daily" in result.stderr
    assert "expired" in result.stderr
    assert len(project.calls()) == 2


def test_invalid_config_ttl_fails_the_call_naming_the_file(project: Project) -> None:
    expiry_project(project, 'ttl = "x"')
    result = project.run("import expmod; expmod.daily(1)", check=False)
    assert result.returncode != 0
    assert "ConfigError" in result.stderr
    assert "`ttl`" in result.stderr
    assert str(project.root / "pyproject.toml") in result.stderr
    assert project.calls() == []


# -- what a ttl may be ------------------------------------------------------------------------


@pytest.mark.parametrize(("ttl", "seconds"), [
    ("30d", 30 * 86400.0),
    (dt.timedelta(days=1), 86400.0),
    (3600, 3600.0),
    (1.5, 1.5),
    ("12h", 43200.0),
    ("90", 90.0),
    ("2w", 14 * 86400.0),
])
def test_valid_ttl_values(ttl: Any, seconds: float) -> None:
    def fn(n: int) -> int:
        return n

    assert recorded(ttl=ttl)(fn).memo.options.ttl == seconds


@pytest.mark.parametrize("ttl", [
    -1, 0, "soon", "", "-5s", "1y", dt.timedelta(0), dt.timedelta(seconds=-1), True,
    float("inf"), float("nan"), [60],
])
def test_invalid_ttl_is_an_invalid_option(ttl: Any) -> None:
    with pytest.raises(InvalidOption, match=r"@recorded\(ttl=\.\.\.\)") as info:
        recorded(ttl=ttl)
    assert isinstance(info.value, ValueError)
    assert repr(ttl) in str(info.value)


@pytest.mark.parametrize(("value", "seconds"), [
    ('"30d"', 30 * 86400.0), ("3600", 3600.0), ("1.5", 1.5), ('"12h"', 43200.0),
])
def test_valid_config_ttl_values(tmp_path: Path, value: str, seconds: float) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[tool.memo_replay]\nttl = {value}\n")
    config = load_config(pyproject)
    assert config.ttl == seconds
    assert config.replay_expired == "warn"


@pytest.mark.parametrize(("setting", "name"), [
    ('ttl = "x"', "ttl"),
    ("ttl = 0", "ttl"),
    ("ttl = -3", "ttl"),
    ("ttl = true", "ttl"),
    ('replay_expired = "maybe"', "replay_expired"),
    ("replay_expired = true", "replay_expired"),
])
def test_invalid_config_expiry_is_a_config_error(tmp_path: Path, setting: str,
                                                 name: str) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[tool.memo_replay]\n{setting}\n")
    with pytest.raises(ConfigError, match=f"`{name}") as info:
        load_config(pyproject)
    assert str(pyproject) in str(info.value)
