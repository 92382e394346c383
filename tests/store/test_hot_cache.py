"""The in-memory hot cache in front of the store (memo_replay.store.store._HotCache).

A long-lived process keeps recent hits in memory; an item is used only while the entry file it
was read from keeps its (size, mtime_ns, inode). These tests drive one long-lived process (a
small server reading commands on stdin) while other processes and the test itself change the
store under it, and check it always replays what is on disk now — never a stale value from
memory. Nothing here measures time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from memo_replay import MemoReplayError, Store, StoreError, recorded, track
from memo_replay.store.index import HOT_CACHE_BYTES

if TYPE_CHECKING:
    from conftest import Project

MIB = 1024 * 1024

WORK = """
from pathlib import Path
from memo_replay import recorded

HERE = Path(__file__).resolve().parent


@recorded(observe_files=False)  # value.txt stands for a remote service: not a dependency
def answer(name: str) -> dict:
    with open(HERE / "calls.log", "a") as log:
        log.write(name + "\\n")
    # Not a declared file: re-recording the same key with another result is the point.
    return {"name": name, "value": (HERE / "value.txt").read_text()}
"""

SERVE = """
import json
import sys

import memo_replay
import work

for line in sys.stdin:
    command = json.loads(line)
    out = {}
    try:
        with memo_replay.mode(command["mode"]), memo_replay.track() as events:
            out["value"] = work.answer(command["name"])
        out["outcomes"] = [event.outcome for event in events]
    except memo_replay.MemoReplayError as exc:
        out["error"] = type(exc).__name__
        out["message"] = str(exc)
    out["hot"] = len(work.answer.memo.store.hot_cache)
    print(json.dumps(out), flush=True)
"""


class Server:
    """A long-lived Python process in the project that calls ``work.answer`` on request."""

    def __init__(self, project: Project, env: dict[str, str] | None = None) -> None:
        self.project = project
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith("MEMO_") and k not in ("CI", "PYTHONPATH")}
        full_env.update(PYTHONPATH=str(project.root), PYTHONDONTWRITEBYTECODE="1")
        full_env.update(env or {})
        self._stderr = (project.root / "server.err").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "serve.py"], cwd=project.root, env=full_env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)

    def call(self, name: str = "a", mode: str = "auto") -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps({"name": name, "mode": mode}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError("the server died:\n" + self.project.read("server.err"))
        return json.loads(line)  # type: ignore[no-any-return]

    def value(self, name: str = "a", mode: str = "auto") -> str:
        out = self.call(name, mode)
        assert "error" not in out, out
        return out["value"]["value"]  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            self.process.kill()
            self.process.wait()
        self._stderr.close()


@pytest.fixture
def work(project: Project) -> Project:
    project.write("work.py", WORK)
    project.write("serve.py", SERVE)
    project.write("value.txt", "one")
    return project


@pytest.fixture
def server(work: Project) -> Iterator[Server]:
    running = Server(work)
    yield running
    running.close()


def rerecord(project: Project, value: str, name: str = "a") -> None:
    """Another process re-records ``answer(name)`` with ``value`` as its result."""
    project.write("value.txt", value)
    out = project.run(f"import work; print(work.answer({name!r})['value'])", mode="record")
    assert out.stdout.strip() == value


def entry_file(project: Project) -> Path:
    (path,) = project.store.entry_files("work.answer")
    return path


# -- another process, a hand, a checkout --------------------------------------------------------


def test_a_hit_is_replayed_from_memory(server: Server, work: Project) -> None:
    first = server.call()
    assert first["value"] == {"name": "a", "value": "one"}
    assert first["outcomes"] == ["recorded"]
    second = server.call()
    assert second["value"] == {"name": "a", "value": "one"}
    assert second["outcomes"] == ["replayed"]
    assert second["hot"] == 1  # the hit is held in memory
    assert server.call(mode="replay")["outcomes"] == ["replayed"]
    assert work.calls() == ["a"]


def test_a_re_record_by_another_process_is_seen(server: Server, work: Project) -> None:
    assert server.value() == "one"
    assert server.call()["hot"] == 1
    rerecord(work, "two")
    assert work.calls() == ["a", "a"]
    out = server.call()
    assert out["value"]["value"] == "two"  # the stat signature changed: read again
    assert out["outcomes"] == ["replayed"]
    assert server.value(mode="replay") == "two"
    rerecord(work, "three, longer")
    assert server.value(mode="replay") == "three, longer"
    rerecord(work, "3")
    assert server.value(mode="replay") == "3"
    assert work.calls() == ["a", "a", "a", "a"]  # the server never called it again


def test_an_entry_deleted_by_hand_is_not_replayed(server: Server, work: Project) -> None:
    assert server.value() == "one"
    assert server.value() == "one"
    entry_file(work).unlink()
    work.write("value.txt", "fresh")
    miss = server.call(mode="replay")
    assert miss["error"] == "ReplayMiss"
    assert work.calls() == ["a"]
    out = server.call()
    assert out["value"]["value"] == "fresh"  # recomputed, not the remembered "one"
    assert out["outcomes"] == ["recorded"]
    assert work.calls() == ["a", "a"]
    assert server.value(mode="replay") == "fresh"


def test_an_older_entry_copied_back_in_place_is_seen(server: Server, work: Project) -> None:
    """`cp -p old.json entry.json`: same inode, the old bytes and the old mtime."""
    assert server.value() == "one"
    path = entry_file(work)
    old_bytes, old_stat = path.read_bytes(), path.stat()
    rerecord(work, "new!")
    assert server.value(mode="replay") == "new!"
    assert server.value(mode="replay") == "new!"
    current = path.stat()
    with path.open("r+b") as fh:  # rewrite in place: the inode stays
        fh.write(old_bytes)
        fh.truncate()
    os.utime(path, ns=(old_stat.st_atime_ns, old_stat.st_mtime_ns))
    assert path.stat().st_ino == current.st_ino
    assert path.read_bytes() == old_bytes
    assert server.value(mode="replay") == "one"
    assert work.calls() == ["a", "a"]


def test_an_older_entry_checked_out_as_a_new_file_is_seen(server: Server,
                                                         work: Project) -> None:
    """`git checkout`: the old bytes written to a new file that replaces the entry."""
    assert server.value() == "one"
    path = entry_file(work)
    old_bytes = path.read_bytes()
    rerecord(work, "two")
    assert server.value(mode="replay") == "two"
    temp = path.with_name(".checkout.tmp")
    temp.write_bytes(old_bytes)
    os.replace(temp, path)
    assert server.value(mode="replay") == "one"
    assert server.value(mode="replay") == "one"
    assert work.calls() == ["a", "a"]


def test_a_hand_edited_payload_is_never_replayed_from_memory(server: Server,
                                                            work: Project) -> None:
    assert server.value() == "one"
    assert server.value() == "one"
    path = entry_file(work)
    text = path.read_text()
    assert text.count('"value": "one"') == 1
    path.write_text(text.replace('"value": "one"', '"value": "hax"'))  # checksum now stale
    damaged = server.call(mode="replay")
    assert damaged["error"] == "CorruptEntry"
    assert str(path.name) in damaged["message"]
    out = server.call()  # auto: re-recorded (with a warning), never the cached "one"
    assert out["value"]["value"] == "one"
    assert out["outcomes"] == ["recorded"]
    assert work.calls() == ["a", "a"]
    assert '"value": "hax"' not in path.read_text()


def test_a_replaced_payload_file_is_seen(work: Project) -> None:
    """A large binary result lives in a payload file beside the entry; the hot cache checks it
    too."""
    work.write("work.py", WORK.replace("-> dict:", "-> bytes:").replace(
        'return {"name": name, "value": (HERE / "value.txt").read_text()}',
        'return (HERE / "value.txt").read_bytes() * 20000'))
    work.write("serve.py", SERVE.replace('out["value"] = work.answer(command["name"])',
                                         'out["value"] = work.answer(command["name"])[:8]'
                                         '.decode()'))
    work.write("value.txt", "AAAA")
    running = Server(work)
    try:
        assert running.call()["value"] == "AAAAAAAA"
        assert running.call()["outcomes"] == ["replayed"]
        path = entry_file(work)
        (payload_file,) = path.parent.glob("*.bin")
        assert payload_file.stat().st_size == 80_000
        rerecord_bytes = "import work; print(len(work.answer('a')))"
        work.write("value.txt", "BBBB")
        work.run(rerecord_bytes, mode="record")
        assert running.call(mode="replay")["value"] == "BBBBBBBB"
        # The payload file damaged by hand (same size), the entry untouched: never replayed.
        (new_payload,) = path.parent.glob("*.bin")
        data = bytearray(new_payload.read_bytes())
        data[:4] = b"CCCC"
        new_payload.write_bytes(bytes(data))
        assert running.call(mode="replay")["error"] == "CorruptEntry"
    finally:
        running.close()


# -- MEMO_HOT_CACHE_MB ---------------------------------------------------------------------------


def test_hot_cache_off_still_replays_correctly(work: Project) -> None:
    running = Server(work, env={"MEMO_HOT_CACHE_MB": "0"})
    try:
        assert running.call()["outcomes"] == ["recorded"]
        out = running.call()
        assert out["outcomes"] == ["replayed"]
        assert out["value"]["value"] == "one"
        assert out["hot"] == 0
        rerecord(work, "two")
        out = running.call(mode="replay")
        assert out["value"]["value"] == "two"
        assert out["hot"] == 0
        entry_file(work).unlink()
        assert running.call(mode="replay")["error"] == "ReplayMiss"
    finally:
        running.close()
    assert work.calls() == ["a", "a"]


def test_default_and_configured_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMO_HOT_CACHE_MB", raising=False)
    assert HOT_CACHE_BYTES == 64 * MIB
    assert Store(tmp_path / "a").hot_cache.limit == HOT_CACHE_BYTES
    monkeypatch.setenv("MEMO_HOT_CACHE_MB", "")
    assert Store(tmp_path / "b").hot_cache.limit == HOT_CACHE_BYTES
    monkeypatch.setenv("MEMO_HOT_CACHE_MB", "1")
    assert Store(tmp_path / "c").hot_cache.limit == MIB
    monkeypatch.setenv("MEMO_HOT_CACHE_MB", "0.5")
    assert Store(tmp_path / "d").hot_cache.limit == MIB // 2
    monkeypatch.setenv("MEMO_HOT_CACHE_MB", "0")
    assert Store(tmp_path / "e").hot_cache.limit == 0


@pytest.mark.parametrize("value", ["lots", "-1", "1MB", "1,5"])
def test_an_invalid_setting_is_a_store_error_naming_the_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MEMO_HOT_CACHE_MB", value)
    with pytest.raises(StoreError) as info:
        Store(tmp_path / "store")
    assert "MEMO_HOT_CACHE_MB" in str(info.value)
    assert repr(value) in str(info.value)
    assert isinstance(info.value, MemoReplayError)


def test_an_invalid_setting_fails_the_first_call(memo_env: Store,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMO_HOT_CACHE_MB", "lots")
    calls: list[int] = []

    @recorded
    def f(x: int) -> int:
        calls.append(x)
        return x

    with pytest.raises(StoreError, match="MEMO_HOT_CACHE_MB='lots'"):
        f(1)
    assert calls == []
    monkeypatch.setenv("MEMO_HOT_CACHE_MB", "1")
    assert f(1) == 1  # a failed store is not kept: the next call opens it again
    assert f(1) == 1
    assert calls == [1]


@pytest.mark.parametrize("value", ["nan", "inf", "1e400"])
def test_a_non_finite_setting_is_a_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               value: str) -> None:
    monkeypatch.setenv("MEMO_HOT_CACHE_MB", value)
    with pytest.raises(StoreError, match="MEMO_HOT_CACHE_MB"):
        Store(tmp_path / "store")


# -- boundedness ---------------------------------------------------------------------------------


def ten_kib(i: int) -> str:
    return f"{i:05d}:" + "abcdefghij" * 1023 + "abcd"


def test_the_cache_stays_bounded_and_correct(memo_env: Store,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMO_HOT_CACHE_MB", "1")
    calls: list[int] = []

    @recorded
    def blob(i: int) -> str:
        calls.append(i)
        return ten_kib(i)

    assert len(ten_kib(0)) == 10 * 1024
    for i in range(300):
        assert blob(i) == ten_kib(i)
    store = blob.memo.store
    assert store.hot_cache.limit == MIB
    for _ in range(2):
        for i in range(300):
            assert blob(i) == ten_kib(i)
            assert store.hot_cache.size <= MIB
            assert len(store.hot_cache) <= MIB // (10 * 1024)
    assert len(calls) == 300
    assert len(store.hot_cache) > 0
    with track() as events:  # the most recent hits are in memory, and still correct
        for i in range(299, 289, -1):
            assert blob(i) == ten_kib(i)
    assert [e.outcome for e in events] == ["replayed"] * 10
    assert len(calls) == 300


def test_a_payload_too_big_for_the_cache_still_replays(memo_env: Store,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMO_HOT_CACHE_MB", "1")
    calls: list[int] = []

    @recorded
    def big(i: int) -> str:
        calls.append(i)
        return str(i) * (400 * 1024)

    @recorded
    def small(i: int) -> str:
        return str(i)

    assert small(1) == "1"
    assert small(1) == "1"
    assert big(7) == "7" * (400 * 1024)
    assert big(7) == "7" * (400 * 1024)
    store = big.memo.store
    assert store.hot_cache.size <= MIB
    assert len(store.hot_cache) == 1  # only `small`: one huge payload does not flush the others
    assert calls == [7]


def test_the_bound_counts_bytes_of_non_ascii_results(memo_env: Store,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMO_HOT_CACHE_MB", "1")

    @recorded
    def emoji(i: int) -> str:
        return f"{i:05d}" + "\N{GRINNING FACE}" * 2560  # 10 KiB of UTF-8

    for _ in range(2):
        for i in range(300):
            assert emoji(i) == f"{i:05d}" + "\N{GRINNING FACE}" * 2560
    items = emoji.memo.store.hot_cache.items()
    held = sum(len(c.hit.payload.data.encode()) if isinstance(c.hit.payload.data, str)
               else len(c.hit.payload.data) for c in items)
    assert held <= MIB


# -- replays are fresh objects -------------------------------------------------------------------


def test_each_replay_returns_a_distinct_object(memo_env: Store) -> None:
    calls: list[int] = []

    @recorded
    def config(n: int) -> dict[str, Any]:
        calls.append(n)
        return {"n": n, "items": [1, 2], "nested": {"k": "v"}}

    original = config(1)
    original["items"].append("changed by the caller")  # the real call's result, mutated
    first = config(1)
    second = config(1)
    assert calls == [1]
    assert first == second == {"n": 1, "items": [1, 2], "nested": {"k": "v"}}
    assert first is not second
    assert first["items"] is not second["items"]
    assert first["nested"] is not second["nested"]
    first["items"].append(3)
    first["nested"]["k"] = "mutated"
    first["extra"] = True
    third = config(1)
    assert third == {"n": 1, "items": [1, 2], "nested": {"k": "v"}}
    assert second == third
    assert len(config.memo.store.hot_cache) == 1  # these came from the hot cache
