"""A store from a pull request cannot touch files outside itself, crash memo_replay, replay
another function's answer, or lose a recording to a race (issue 14).

Every test plants what a pull request could commit — symlinks, FIFOs, directories where files
belong, deeply nested or edited JSON — in a real store, and checks that the outcome is a typed
:class:`~memo_replay.errors.MemoReplayError` naming the entry (or a refusal), that sentinel files
outside the store keep their bytes and mtimes, and that nothing recorded is lost.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from memo_replay import Store, recorded
from memo_replay.errors import CorruptEntry, StoreError
from memo_replay.store.layout import function_dir_name

CALLS: list[object] = []


@recorded
def square(n: int) -> dict[str, int]:
    CALLS.append(n)
    return {"n": n, "square": n * n}


@recorded
def cube(n: int) -> dict[str, int]:
    CALLS.append(("cube", n))
    return {"n": n, "cube": n ** 3}


@recorded
def blob(n: int) -> bytes:
    """Large enough for a payload file beside the entry."""
    CALLS.append(("blob", n))
    return bytes([n % 256]) * 100_000


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    CALLS.clear()


class Outside:
    """Files outside the store that nothing may read, write or delete: their names are the ones
    memo_replay writes and deletes (entries, payload files, temp files, an index)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        names = ["x.tmp", ".a.b.tmp", f"{'0' * 32}.json", f"{'0' * 32}.{'1' * 32}.bin",
                 "cache.db", ".gitignore"]
        for name in names:
            (root / name).write_bytes(b"sentinel " + name.encode())
        old = time.time() - 86400
        for path in root.iterdir():
            os.utime(path, (old, old))
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, tuple[bytes, int]]:
        return {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
                for p in sorted(self.root.rglob("*")) if p.is_file()}

    def untouched(self) -> bool:
        return self.snapshot() == self.before


@pytest.fixture
def outside(tmp_path: Path) -> Outside:
    return Outside(tmp_path / "outside")


def _function_dir(store: Store, fn: object) -> Path:
    return store.path / function_dir_name(fn.memo.id)  # type: ignore[attr-defined]


def _entry_of(store: Store, fn: object) -> Path:
    [entry] = [e.path for e in store.entries(fn.memo.id)]  # type: ignore[attr-defined]
    return entry


def _every_command(store: Store) -> list[str]:
    """Run every store command a reviewer or CI might run; each either works or is refused
    with a StoreError. Returns what each did."""
    commands: dict[str, Callable[[], object]] = {
        "verify": store.verify,
        "stats": store.stats,
        "entries": lambda: list(store.entries()),
        "prune --orphans --older-than 0 --yes":
            lambda: store.prune(orphans=True, dry_run=False, older_than=0),
        "delete": lambda: [store.delete(Path(name).stem) for name in store.entry_names()],
    }
    outcomes = []
    for name, command in commands.items():
        try:
            command()
            outcomes.append(f"{name}: done")
        except StoreError as exc:
            outcomes.append(f"{name}: refused ({exc})")
    return outcomes


# -- symlinks and non-regular files: never followed -------------------------------------------


def test_a_symlinked_function_directory_is_never_read_written_or_pruned(
        memo_env: Store, outside: Outside, monkeypatch: pytest.MonkeyPatch) -> None:
    assert square(3) == {"n": 3, "square": 9}
    directory = _function_dir(memo_env, square)
    entry = _entry_of(memo_env, square)
    # The PR moves the real directory's entry outside and links the directory there.
    shutil.copy(entry, outside.root / entry.name)
    outside.before = outside.snapshot()
    shutil.rmtree(directory)
    directory.symlink_to(outside.root, target_is_directory=True)

    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(CorruptEntry, match="not a directory of the store"):
        square(3)  # the entry outside is never replayed
    monkeypatch.setenv("MEMO_MODE", "auto")
    with pytest.raises(StoreError, match="nothing in the store is followed"):
        square(3)  # nor re-recorded through the link
    monkeypatch.setenv("MEMO_MODE", "record")
    with pytest.raises(StoreError, match="nothing was written"):
        square(4)
    assert all(o.endswith(": done") for o in _every_command(memo_env))
    assert outside.untouched()
    assert directory.is_symlink()
    [problem] = memo_env.verify()
    assert problem.path == directory
    assert problem.kind == "stray"


def test_a_symlinked_cache_directory_is_never_used(
        memo_env: Store, outside: Outside, monkeypatch: pytest.MonkeyPatch) -> None:
    assert square(2) == {"n": 2, "square": 4}
    shutil.rmtree(memo_env.path / ".cache")
    (memo_env.path / ".cache").symlink_to(outside.root, target_is_directory=True)

    monkeypatch.setenv("MEMO_MODE", "replay")
    fresh = Store(memo_env.path)  # a fresh process's store: nothing cached yet
    assert square(2) == {"n": 2, "square": 4}  # replays from the entry file
    monkeypatch.setenv("MEMO_MODE", "auto")
    with pytest.raises(StoreError, match="never follows links"):
        square(5)  # no lock is taken (or created) through the link
    assert CALLS == [2]
    outcomes = _every_command(fresh)
    assert outcomes[-1].startswith("delete: refused")
    assert "never follows links" in outcomes[-1]
    assert outside.untouched()
    assert [p.kind for p in fresh.verify()] == ["unsafe"]


def test_a_symlinked_lock_file_is_never_followed(
        memo_env: Store, outside: Outside, monkeypatch: pytest.MonkeyPatch) -> None:
    assert square(1) == {"n": 1, "square": 1}
    key = square.memo.key(11)
    locks = memo_env.path / ".cache" / "locks"
    (locks / f"{key}.lock").symlink_to(outside.root / "x.tmp")
    (locks / f"{square.memo.key(12)}.lock").symlink_to(outside.root / "created-through-link")
    with pytest.raises(StoreError, match="is a symbolic link, never followed"):
        square(11)
    with pytest.raises(StoreError, match="is a symbolic link, never followed"):
        square(12)  # O_CREAT does not create the link's target either
    assert CALLS == [1]
    assert outside.untouched()


@pytest.mark.parametrize("plant", ["symlink to a copy", "symlink to /dev/zero", "fifo",
                                   "directory"])
def test_an_entry_that_is_not_a_regular_file_is_refused(
        memo_env: Store, outside: Outside, monkeypatch: pytest.MonkeyPatch, plant: str) -> None:
    assert square(6) == {"n": 6, "square": 36}
    entry = _entry_of(memo_env, square)
    copy = outside.root / "copy.json"
    copy.write_text(entry.read_text().replace("36", "37"))  # a forged answer outside
    outside.before = outside.snapshot()
    entry.unlink()
    if plant == "symlink to a copy":
        entry.symlink_to(copy)
    elif plant == "symlink to /dev/zero":
        entry.symlink_to("/dev/zero")
    elif plant == "fifo":
        os.mkfifo(entry)
    else:
        entry.mkdir()
    memo_env.close()
    fresh = Store(memo_env.path)
    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(CorruptEntry) as info:
        square(6)  # neither the forged answer nor a hang
    assert entry.name in str(info.value)
    assert [p.kind for p in fresh.verify()] == ["corrupt"]
    assert outside.untouched()


def test_a_payload_file_symlinked_outside_is_refused(
        memo_env: Store, outside: Outside, monkeypatch: pytest.MonkeyPatch) -> None:
    assert blob(7) == bytes([7]) * 100_000
    [payload] = _function_dir(memo_env, blob).glob("*.bin")
    payload.unlink()
    payload.symlink_to("/dev/zero")
    set_fresh = Store(memo_env.path)
    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(CorruptEntry, match="symbolic link"):
        blob(7)
    assert outside.untouched()
    assert "corrupt" in [p.kind for p in set_fresh.verify()]


def test_an_oversized_entry_is_refused_before_it_is_read(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from memo_replay.store.entry import MAX_ENTRY_BYTES

    assert square(8) == {"n": 8, "square": 64}
    entry = _entry_of(memo_env, square)
    with entry.open("r+b") as fh:
        fh.truncate(MAX_ENTRY_BYTES + 1)  # sparse: costs no disk
    fresh = Store(memo_env.path)
    with pytest.raises(CorruptEntry, match="above the bound"):
        fresh.lookup(square.memo.id, entry.stem)
    assert [p.kind for p in fresh.verify()] == ["corrupt"]


# -- entries that lie -------------------------------------------------------------------------


def test_an_entry_of_another_function_is_never_replayed(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    assert square(2) == {"n": 2, "square": 4}
    entry = _entry_of(memo_env, square)
    document = json.loads(entry.read_text())
    document["function"] = cube.memo.id  # claims to be cube's, in square's directory
    entry.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    fresh = Store(memo_env.path)
    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(CorruptEntry, match="holds a recording of"):
        square(2)
    assert [p.kind for p in fresh.verify()] == ["misplaced"]
    monkeypatch.setenv("MEMO_MODE", "auto")
    assert square(2) == {"n": 2, "square": 4}  # re-recorded over it
    assert CALLS == [2, 2]
    assert fresh.verify() == []


def test_duplicate_fields_are_reported_by_verify(memo_env: Store) -> None:
    assert square(4) == {"n": 4, "square": 16}
    entry = _entry_of(memo_env, square)
    text = entry.read_text()
    # A second "key" field at the end: JSON keeps the last one silently.
    key = json.loads(text)["key"]
    entry.write_text(text.rstrip().removesuffix("}") + f',\n  "key": "{key}"\n}}\n')
    [problem] = memo_env.verify()
    assert problem.kind == "corrupt"
    assert "`key`" not in problem.message
    assert "key appear twice" in problem.message


def test_deeply_nested_json_is_a_corrupt_entry_everywhere(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    assert square(9) == {"n": 9, "square": 81}
    entry = _entry_of(memo_env, square)
    entry.write_text("[" * 100_000)
    fresh = Store(memo_env.path)
    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(CorruptEntry, match="nested too deeply"):
        square(9)
    monkeypatch.setenv("MEMO_MODE", "auto")
    with pytest.warns(UserWarning, match="nested too deeply"):
        assert square(9) == {"n": 9, "square": 81}  # re-recorded over it
    assert fresh.verify() == []
    # Nested inside a valid document too: the payload.
    document = json.loads(entry.read_text())
    document["result"]["payload"] = "PLACEHOLDER"
    entry.write_text(json.dumps(document).replace('"PLACEHOLDER"', "[" * 50_000 + "]" * 50_000))
    fresh = Store(memo_env.path)
    assert [p.kind for p in fresh.verify()] == ["corrupt"]
    assert fresh.stats().problems == 1
    assert list(fresh.entries()) == []
    assert fresh.delete(entry.stem) is True


# -- races that lose recordings ---------------------------------------------------------------


def test_delete_waits_for_a_rerecording_of_the_same_key(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting takes the key's record-once lock: a re-recording in flight (here: holding the
    lock between writing its payload file and its entry) finishes first, and the deletion then
    removes the entry with the payload file it names — never a payload under a live entry."""
    assert blob(1) == bytes([1]) * 100_000
    key = _entry_of(memo_env, blob).stem
    lock = memo_env.lock(blob.memo.id, key)
    assert lock is not None
    lock.acquire(5)  # what a recorder holds from the call to the entry's rename
    done = threading.Event()
    result: list[bool] = []
    def delete() -> None:
        result.append(memo_env.delete(key))
        done.set()

    deleter = threading.Thread(target=delete)
    deleter.start()
    assert not done.wait(0.5)  # waits for the recording
    assert _entry_of(memo_env, blob).exists()
    lock.release()
    deleter.join(10)
    assert result == [True]
    assert list(memo_env.entries()) == []
    assert list(_function_dir(memo_env, blob).iterdir()) == []  # its payload file went too
    assert memo_env.verify() == []


def test_prune_leaves_young_orphans_and_those_of_a_recording_in_flight(
        memo_env: Store) -> None:
    assert blob(2) == bytes([2]) * 100_000
    directory = _function_dir(memo_env, blob)
    key = _entry_of(memo_env, blob).stem
    young = directory / f"{key}.{'a' * 16}.bin"
    young.write_bytes(b"a payload written an instant before its entry")
    temp = directory / f".{key}.x7y8z9.tmp"
    temp.write_bytes(b"half an entry")
    assert {(p.path, p.kind) for p in memo_env.verify()} == {(young, "orphan"),
                                                              (temp, "orphan")}
    assert memo_env.prune(orphans=True, dry_run=False) == []  # younger than an hour
    assert young.exists()
    assert temp.exists()

    lock = memo_env.lock(blob.memo.id, key)
    assert lock is not None
    assert lock.try_acquire()
    try:
        assert memo_env.prune(orphans=True, dry_run=False, older_than=0) == []
        assert young.exists()
        assert temp.exists()
    finally:
        lock.release()
    removed = memo_env.prune(orphans=True, dry_run=False, older_than=0)
    assert {f.path for f in removed} == {young, temp}
    assert memo_env.verify() == []
    assert blob(2) == bytes([2]) * 100_000
    assert CALLS == [("blob", 2)]


def test_deleting_the_cache_while_a_process_runs_never_breaks_a_later_miss(
        memo_env: Store) -> None:
    """The docs say deleting `.cache/` is always safe: the locks directory is recreated on
    demand, not remembered (issue 14, item 7)."""
    assert square(1) == {"n": 1, "square": 1}
    for n in (2, 3):
        shutil.rmtree(memo_env.path / ".cache")
        assert square(n) == {"n": n, "square": n * n}  # recorded, under a fresh lock
    assert CALLS == [1, 2, 3]
    assert memo_env.verify() == []
    assert list((memo_env.path / ".cache" / "locks").iterdir()) == []
