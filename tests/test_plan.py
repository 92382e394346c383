"""The decision table (:mod:`memo_replay.call.plan`): every mode × every finding, then the
cells that matter driven end to end through real ``@recorded`` functions.

The expected tables below are written out by hand from the documented behaviour (README "Modes",
the module docstring), not computed: a change to :func:`decide` has to change them too. The
behavioural tests damage, age and re-version real entry files and count how many times the
function really ran.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import memo_replay
from memo_replay import (
    CorruptEntry,
    ExpiredRecording,
    MemoReplayWarning,
    Mode,
    ReplayMiss,
    Store,
    UnsupportedFormat,
    recorded,
)
from memo_replay.call.plan import Action, Found, decide, looks_up
from memo_replay.store.entry import render

if TYPE_CHECKING:
    from conftest import Project

REPLAY, REPLAY_WARN, RECORD, RECORD_WARN, MISS, FAIL, BYPASS = (
    Action.REPLAY, Action.REPLAY_WARN, Action.RECORD, Action.RECORD_WARN, Action.MISS,
    Action.FAIL, Action.BYPASS)
COLUMNS = (Mode.AUTO, Mode.REPLAY, Mode.RECORD, Mode.OFF)

# found                      auto         replay       record   off
WHEN_EXPIRED_WARNS = {
    Found.FOUND:              (REPLAY,      REPLAY,      RECORD,  BYPASS),
    Found.ABSENT:             (RECORD,      MISS,        RECORD,  BYPASS),
    Found.EXPIRED:            (RECORD,      REPLAY_WARN, RECORD,  BYPASS),
    Found.SERIALIZER_CHANGED: (RECORD,      MISS,        RECORD,  BYPASS),
    Found.DEPENDENCIES_CHANGED: (RECORD,    MISS,        RECORD,  BYPASS),
    Found.CORRUPT:            (RECORD_WARN, FAIL,        RECORD,  BYPASS),
    Found.NEWER_FORMAT:       (FAIL,        FAIL,        RECORD,  BYPASS),
}
WHEN_EXPIRED_FAILS = {
    Found.FOUND:              (REPLAY,      REPLAY,      RECORD,  BYPASS),
    Found.ABSENT:             (RECORD,      MISS,        RECORD,  BYPASS),
    Found.EXPIRED:            (RECORD,      FAIL,        RECORD,  BYPASS),
    Found.SERIALIZER_CHANGED: (RECORD,      MISS,        RECORD,  BYPASS),
    Found.DEPENDENCIES_CHANGED: (RECORD,    MISS,        RECORD,  BYPASS),
    Found.CORRUPT:            (RECORD_WARN, FAIL,        RECORD,  BYPASS),
    Found.NEWER_FORMAT:       (FAIL,        FAIL,        RECORD,  BYPASS),
}
TABLES = {"warn": WHEN_EXPIRED_WARNS, "fail": WHEN_EXPIRED_FAILS}
LOOKS_UP = {Mode.AUTO: True, Mode.REPLAY: True, Mode.RECORD: False, Mode.OFF: False}


# -- the table ----------------------------------------------------------------------------------


def test_the_expected_tables_cover_every_mode_and_finding() -> None:
    assert set(COLUMNS) == set(Mode) == set(LOOKS_UP)
    for table in TABLES.values():
        assert set(table) == set(Found)


@pytest.mark.parametrize("replay_expired", sorted(TABLES))
@pytest.mark.parametrize("found", list(Found), ids=[f.value for f in Found])
@pytest.mark.parametrize("mode", COLUMNS, ids=[m.value for m in COLUMNS])
def test_decide(mode: Mode, found: Found, replay_expired: str) -> None:
    expected = TABLES[replay_expired][found][COLUMNS.index(mode)]
    assert decide(mode, found, replay_expired=replay_expired) is expected


@pytest.mark.parametrize(("mode", "found"), list(itertools.product(Mode, Found)))
def test_replay_expired_is_warn_by_default(mode: Mode, found: Found) -> None:
    assert decide(mode, found) is decide(mode, found, replay_expired="warn")


@pytest.mark.parametrize("mode", list(Mode), ids=[m.value for m in Mode])
def test_looks_up(mode: Mode) -> None:
    assert looks_up(mode) is LOOKS_UP[mode]
    if not looks_up(mode):  # a mode that never looks cannot depend on what it would find
        assert len({decide(mode, found) for found in Found}) == 1


# -- end to end: a real recorded function through each cell -------------------------------------


@recorded(ignore=["log"])
def fetch(n: int, log: list[int]) -> dict[str, int]:
    log.append(n)
    return {"n": n, "square": n * n}


@recorded(ignore=["log"], ttl="1h")
def hourly(n: int, log: list[int]) -> dict[str, int]:
    log.append(n)
    return {"n": n, "hourly": True}


def the_entry(store: Store) -> Path:
    paths = sorted(store.path.glob("*/*.json"))
    paths = [p for p in paths if not p.parent.name.startswith(".")]
    assert len(paths) == 1, paths
    return paths[0]


def replace_bytes(path: Path, raw: bytes) -> None:
    """Put ``raw`` at ``path`` as a new file, the way a checkout or a merge writes it."""
    temp = path.with_name(f".{path.name}.edit.tmp")
    temp.write_bytes(raw)
    os.replace(temp, path)


def damage(path: Path) -> bytes:
    """Truncate the entry to half (an interrupted copy); its new bytes."""
    raw = path.read_bytes()[: path.stat().st_size // 2]
    replace_bytes(path, raw)
    return raw


def edit(path: Path, **fields: Any) -> bytes:
    """Rewrite top-level fields of the entry (a valid document otherwise); its new bytes."""
    document = json.loads(path.read_bytes())
    document.update(fields)
    raw = render(document)
    replace_bytes(path, raw)
    return raw


def outcomes(events: list[memo_replay.CallEvent]) -> list[str]:
    return [e.outcome for e in events]


def test_found_replays_and_absent_records(memo_env: Store,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[int] = []
    with memo_replay.track() as events:
        assert fetch(1, log) == {"n": 1, "square": 1}  # auto, absent: recorded
        assert fetch(1, log) == {"n": 1, "square": 1}  # auto, found: replayed
    assert log == [1]
    assert outcomes(events) == ["recorded", "replayed"]

    monkeypatch.setenv("MEMO_MODE", "replay")
    with memo_replay.track() as events:
        assert fetch(1, log) == {"n": 1, "square": 1}  # replay, found: replayed
    assert log == [1]
    assert outcomes(events) == ["replayed"]


def test_absent_in_replay_is_a_miss_and_the_function_is_not_called(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMO_MODE", "replay")
    log: list[int] = []
    with memo_replay.track() as events, pytest.raises(ReplayMiss) as info:
        fetch(2, log)
    assert type(info.value) is ReplayMiss
    assert info.value.function == fetch.memo.id
    assert info.value.key == fetch.memo.key(2, log)
    assert "MEMO_MODE=record" in str(info.value)
    assert log == []
    assert outcomes(events) == ["missed"]
    assert list(memo_env.entries()) == []


def test_corrupt_in_auto_warns_and_records_again(memo_env: Store) -> None:
    log: list[int] = []
    fetch(3, log)
    path = the_entry(memo_env)
    damage(path)

    with memo_replay.track() as events, \
            pytest.warns(MemoReplayWarning, match="re-recording") as caught:
        assert fetch(3, log) == {"n": 3, "square": 9}
    assert log == [3, 3]  # called once more
    assert outcomes(events) == ["recorded"]
    assert any(path.name in str(w.message) for w in caught)
    assert memo_env.verify() == []
    assert the_entry(memo_env) == path

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fetch(3, log) == {"n": 3, "square": 9}  # repaired: replays, silently
    assert log == [3, 3]


def test_corrupt_in_replay_fails_and_the_function_is_not_called(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[int] = []
    fetch(4, log)
    path = the_entry(memo_env)
    damaged = damage(path)

    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(CorruptEntry) as info:
        fetch(4, log)
    assert not isinstance(info.value, UnsupportedFormat)
    assert info.value.path == path
    assert log == [4]
    assert path.read_bytes() == damaged  # replay never writes


def test_expired_in_replay_replays_with_a_warning_by_default(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[int] = []
    hourly(5, log)
    path = the_entry(memo_env)
    old = edit(path, recorded_at="2000-01-01T00:00:00Z")

    monkeypatch.setenv("MEMO_MODE", "replay")
    with memo_replay.track() as events, pytest.warns(MemoReplayWarning, match="expired"):
        assert hourly(5, log) == {"n": 5, "hourly": True}
    assert log == [5]
    assert outcomes(events) == ["replayed"]
    assert path.read_bytes() == old

    monkeypatch.setenv("MEMO_MODE", "auto")  # auto, expired: recorded again
    with memo_replay.track() as events:
        assert hourly(5, log) == {"n": 5, "hourly": True}
    assert log == [5, 5]
    assert outcomes(events) == ["recorded"]
    assert json.loads(path.read_bytes())["recorded_at"] != "2000-01-01T00:00:00Z"


EXPIRING = """
from pathlib import Path

from memo_replay import recorded

HERE = Path(__file__).parent


@recorded(ttl="1h")
def hourly(n: int) -> dict:
    with open(HERE / "calls.log", "a") as fh:
        fh.write(f"hourly {n}\\n")
    return {"n": n}
"""

CALL_HOURLY = """
import json, warnings
import expiring
from memo_replay import MemoReplayError

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        out = {"value": expiring.hourly(1)}
    except MemoReplayError as exc:
        out = {"error": type(exc).__name__, "message": str(exc)}
out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
print(json.dumps(out))
"""


@pytest.mark.parametrize("replay_expired", ["warn", "fail"])
def test_expired_in_replay_follows_the_project_setting(project: Project,
                                                       replay_expired: str) -> None:
    project.write("pyproject.toml", f"""
        [project]
        name = "proj"
        version = "0"

        [tool.memo_replay]
        replay_expired = "{replay_expired}"
    """)
    project.write("expiring.py", EXPIRING)
    assert json.loads(project.run(CALL_HOURLY, mode="auto").stdout)["value"] == {"n": 1}
    [entry] = project.store.entries()
    edit(entry.path, recorded_at="2000-01-01T00:00:00Z")

    out = json.loads(project.run(CALL_HOURLY, mode="replay").stdout)
    if replay_expired == "warn":
        assert out["value"] == {"n": 1}
        [warning] = out["warnings"]
        assert warning.startswith("MemoReplayWarning: ")
        assert "expired" in warning
    else:
        assert out["error"] == ExpiredRecording.__name__
        assert "expired" in out["message"]
        assert "replay_expired" in out["message"]
        assert out["warnings"] == []
    assert project.calls() == ["hourly 1"]  # strict replay never calls


SERIALIZED = '''
from pathlib import Path

from memo_replay import recorded, register_serializer

HERE = Path(__file__).parent


class Celsius:
    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def __eq__(self, other):
        return type(other) is Celsius and other.degrees == self.degrees


class CelsiusText:
    id = "celsius-text"
    version = 1
    payload = "text"

    def dumps(self, value):
        return f"{value.degrees}C"

    def loads(self, data):
        return Celsius(float(data.removesuffix("C")))


register_serializer(Celsius, CelsiusText())


@recorded
def temperature(city: str) -> Celsius:
    with open(HERE / "calls.log", "a") as fh:
        fh.write(f"temperature {city}\\n")
    return Celsius(21.5)
'''

CALL_TEMPERATURE = """
import json, sys
import tempmod
from memo_replay import MemoReplayError, register_serializer

if sys.argv[1:] == ["v2"]:  # the serializer's next version, as an upgrade would bring it
    class CelsiusTextV2(tempmod.CelsiusText):
        version = 2

    register_serializer(tempmod.Celsius, CelsiusTextV2())
try:
    print(json.dumps({"degrees": tempmod.temperature("Oslo").degrees}))
except MemoReplayError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
"""


def test_a_changed_serializer_version_misses_in_replay_and_records_in_auto(
        project: Project) -> None:
    project.write("tempmod.py", SERIALIZED)

    def run(mode: str, *args: str) -> Any:
        return json.loads(project.run(CALL_TEMPERATURE, mode=mode, args=args).stdout)

    assert run("auto") == {"degrees": 21.5}
    assert run("replay") == {"degrees": 21.5}
    assert project.calls() == ["temperature Oslo"]

    out = run("replay", "v2")
    assert out["error"] == ReplayMiss.__name__
    assert "version 1 of the 'celsius-text' serializer" in out["message"]
    assert "this process has version 2" in out["message"]
    assert project.calls() == ["temperature Oslo"]  # not called

    assert run("auto", "v2") == {"degrees": 21.5}  # auto: recorded again
    assert project.calls() == ["temperature Oslo", "temperature Oslo"]
    [entry] = project.store.entries()
    assert json.loads(entry.path.read_bytes())["result"]["serializer_version"] == 2
    assert run("replay", "v2") == {"degrees": 21.5}
    assert len(project.calls()) == 2


def test_a_newer_format_entry_fails_in_every_mode_that_looks_and_is_never_overwritten(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[int] = []
    fetch(6, log)
    path = the_entry(memo_env)
    newer = edit(path, format=99)

    for mode in ("auto", "replay"):
        monkeypatch.setenv("MEMO_MODE", mode)
        with pytest.raises(UnsupportedFormat, match=r"(?i)upgrade memo_replay"):
            fetch(6, log)
        assert log == [6], mode  # not called
    # record does not look, so the function runs; the store then refuses to overwrite the entry
    # in an older format (a newer memo_replay's data would be lost).
    monkeypatch.setenv("MEMO_MODE", "record")
    with pytest.raises(UnsupportedFormat):
        fetch(6, log)
    assert log == [6, 6]
    assert path.read_bytes() == newer


def test_record_never_reads_a_damaged_entry_is_overwritten_silently(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[int] = []
    fetch(7, log)
    path = the_entry(memo_env)
    monkeypatch.setenv("MEMO_MODE", "record")
    with memo_replay.track() as events:
        assert fetch(7, log) == {"n": 7, "square": 49}  # found: called and recorded anyway
    assert log == [7, 7]
    assert outcomes(events) == ["recorded"]

    damage(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "re-recording" warning: record did not look
        assert fetch(7, log) == {"n": 7, "square": 49}
    assert log == [7, 7, 7]
    assert memo_env.verify() == []
    assert the_entry(memo_env) == path

    monkeypatch.setenv("MEMO_MODE", "replay")
    assert fetch(7, log) == {"n": 7, "square": 49}
    assert log == [7, 7, 7]


def test_off_calls_every_time_and_stores_nothing(memo_env: Store,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMO_MODE", "off")
    log: list[int] = []
    with memo_replay.track() as events:
        assert fetch(8, log) == {"n": 8, "square": 64}
        assert fetch(8, log) == {"n": 8, "square": 64}
    assert log == [8, 8]
    assert outcomes(events) == ["bypassed", "bypassed"]
    assert all(e.key is None for e in events)
    assert list(memo_env.path.rglob("*.json")) == []

    monkeypatch.setenv("MEMO_MODE", "auto")  # a damaged entry is not even looked at in off
    fetch(9, log)
    path = the_entry(memo_env)
    damaged = damage(path)
    monkeypatch.setenv("MEMO_MODE", "off")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fetch(9, log) == {"n": 9, "square": 81}
    assert log == [8, 8, 9, 9]
    assert path.read_bytes() == damaged


def test_expired_recordings_are_rerecorded_by_record_too(memo_env: Store,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[int] = []
    hourly(10, log)
    path = the_entry(memo_env)
    edit(path, recorded_at="2000-01-01T00:00:00Z")
    monkeypatch.setenv("MEMO_MODE", "record")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hourly(10, log) == {"n": 10, "hourly": True}
    assert log == [10, 10]
    recorded_at = json.loads(path.read_bytes())["recorded_at"]
    assert dt.datetime.fromisoformat(recorded_at.replace("Z", "+00:00")).year > 2000
