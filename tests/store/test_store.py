"""The store: entry files are the truth, the diskcache index is derived and never trusted blindly.

In-process tests record with real ``@recorded`` functions into the private store of the
``memo_env`` fixture (``auto`` mode); cross-process behaviour runs real interpreters in a
throwaway project.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from xxhash import xxh3_128_hexdigest

from memo_replay import (
    CorruptEntry,
    MemoReplayWarning,
    ReplayMiss,
    Store,
    StoreError,
    UnsupportedFormat,
    recorded,
)
from memo_replay.store import FunctionStats

if TYPE_CHECKING:
    from conftest import Project


# -- helpers ----------------------------------------------------------------------------------


@recorded(ignore=["log"])
def fetch(n: int, log: list[int]) -> dict[str, Any]:
    log.append(n)
    return {"n": n, "word": "aaa"}


@recorded(ignore=["log"], ttl="30d")
def fetch_for_a_month(n: int, log: list[int]) -> dict[str, Any]:
    log.append(n)
    return {"n": n, "word": "bbb"}


@recorded(ignore=["log"])
def square(n: int, log: list[int]) -> int:
    log.append(n)
    return n * n


def entry_files(store: Store) -> list[Path]:
    return sorted(p for p in store.path.glob("*/*.json") if not p.parent.name.startswith("."))


def the_entry(store: Store) -> Path:
    files = entry_files(store)
    assert len(files) == 1, files
    return files[0]


def rewrite_payload(path: Path, payload: Any) -> None:
    """Replace the JSON payload of an entry *with a matching checksum* (a valid entry)."""
    document = json.loads(path.read_text())
    canonical = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    document["result"]["payload"] = payload
    document["result"]["checksum"] = xxh3_128_hexdigest(canonical.encode())
    document["result"]["size"] = len(canonical)
    with open(path, "r+b") as fh:  # in place: same inode
        fh.truncate(0)
        fh.write((json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())


def truncate_half(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def edit_document(path: Path, **changes: Any) -> None:
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


# -- damaged entries --------------------------------------------------------------------------


def test_truncated_entry_in_replay_raises_corrupt_entry_naming_file(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[int] = []
    fetch(1, log)
    path = the_entry(memo_env)
    truncate_half(path)

    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(CorruptEntry) as info:
        fetch(1, log)
    assert info.value.path == path
    assert str(path) in str(info.value)
    assert log == [1]  # never called in replay


def test_truncated_entry_in_auto_is_rerecorded_with_a_warning(memo_env: Store) -> None:
    log: list[int] = []
    fetch(1, log)
    path = the_entry(memo_env)
    truncate_half(path)

    with pytest.warns(MemoReplayWarning, match=path.name):
        assert fetch(1, log) == {"n": 1, "word": "aaa"}
    assert log == [1, 1]
    assert memo_env.verify() == []
    assert json.loads(path.read_text())["result"]["payload"] == {"n": 1, "word": "aaa"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fetch(1, log) == {"n": 1, "word": "aaa"}  # replayed, silently
    assert log == [1, 1]


def test_hand_edited_payload_fails_its_checksum(memo_env: Store,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[int] = []
    fetch(1, log)
    path = the_entry(memo_env)
    document = json.loads(path.read_text())
    document["result"]["payload"]["word"] = "zzz"  # valid JSON, stale checksum
    path.write_text(json.dumps(document, indent=2) + "\n")

    with pytest.raises(CorruptEntry, match="checksum"):
        memo_env.get(path.stem)
    [problem] = memo_env.verify()
    assert problem.path == path
    assert problem.kind == "corrupt"
    assert "checksum" in problem.message
    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(CorruptEntry, match="checksum"):
        fetch(1, log)
    assert log == [1]


def test_hand_edited_payload_is_detected_even_when_cached(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[int] = []
    fetch(1, log)
    fetch(1, log)  # replay: the index now holds the entry
    path = the_entry(memo_env)
    document = json.loads(path.read_text())
    document["result"]["payload"]["word"] = "zzz"
    path.write_text(json.dumps(document, indent=2) + "\n")
    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(CorruptEntry, match="checksum"):
        fetch(1, log)
    assert log == [1]


def test_entry_from_newer_format_is_refused(memo_env: Store,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[int] = []
    fetch(1, log)
    path = the_entry(memo_env)
    edit_document(path, format=99)

    with pytest.raises(UnsupportedFormat) as info:
        memo_env.get(path.stem)
    assert "upgrade" in str(info.value).lower()
    assert str(path) in str(info.value)
    assert isinstance(info.value, CorruptEntry)
    monkeypatch.setenv("MEMO_MODE", "replay")
    with pytest.raises(UnsupportedFormat, match=r"(?i)upgrade"):
        fetch(1, log)
    assert log == [1]
    [problem] = memo_env.verify()
    assert problem.kind == "newer-format"
    assert "99" in problem.message
    assert "upgrade" in problem.fix
    # Not even `record` rewrites it in this older format: the newer writer's data would be lost.
    before = path.read_bytes()
    monkeypatch.setenv("MEMO_MODE", "record")
    with pytest.raises(UnsupportedFormat, match=r"(?i)upgrade"):
        fetch(1, log)
    assert path.read_bytes() == before


def test_entry_with_wrong_key_or_missing_fields_is_corrupt(memo_env: Store) -> None:
    log: list[int] = []
    fetch(1, log)
    fetch(2, log)
    first, second = entry_files(memo_env)
    edit_document(first, key="0" * 32)
    document = json.loads(second.read_text())
    del document["result"]["checksum"]
    second.write_text(json.dumps(document, indent=2) + "\n")
    problems = {p.path: p for p in memo_env.verify()}
    assert set(problems) == {first, second}
    assert all(p.kind == "corrupt" for p in problems.values())
    assert list(memo_env.entries()) == []  # damaged entries are skipped, not raised


def test_damaged_volatile_field_is_repaired_by_rerecording(memo_env: Store) -> None:
    """Regression: `save` used to keep an entry that differed only in volatile fields even
    when those fields were unreadable, so a damaged `recorded_at` was never repaired and every
    `auto` call re-ran the function. (A hit reads `recorded_at` only when a ttl needs the
    recording's age: hence a function with one.)"""
    log: list[int] = []
    fetch_for_a_month(1, log)
    path = the_entry(memo_env)
    edit_document(path, recorded_at="not a date")
    with pytest.raises(CorruptEntry):
        memo_env.get(path.stem)

    with pytest.warns(MemoReplayWarning, match="recorded_at"):
        fetch_for_a_month(1, log)
    assert memo_env.verify() == []
    fetch_for_a_month(1, log)
    assert log == [1, 1]


# -- the index ---------------------------------------------------------------------------------


def test_deleted_cache_dir_still_replays(memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[int] = []
    fetch(1, log)
    fetch(1, log)
    cache = memo_env.path / ".cache"
    assert cache.is_dir()
    shutil.rmtree(cache)
    monkeypatch.setenv("MEMO_MODE", "replay")
    assert fetch(1, log) == {"n": 1, "word": "aaa"}
    assert log == [1]


def test_cache_gitignore_ignores_everything(memo_env: Store) -> None:
    log: list[int] = []
    fetch(1, log)
    fetch(1, log)
    ignore = memo_env.path / ".cache" / ".gitignore"
    assert "*" in ignore.read_text().splitlines()


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_sees_only_entry_files(project: Project) -> None:
    project.write("gitmod.py", """
        from memo_replay import recorded

        @recorded
        def triple(n: int) -> int:
            return 3 * n
    """)
    git_env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=project.root, env=git_env, check=True,
                              capture_output=True, text=True).stdout

    git("init", "-q")
    project.run("import gitmod; gitmod.triple(2)")
    project.run("import gitmod; gitmod.triple(2)", mode="replay")
    assert (project.root / "fixtures_store" / ".cache").is_dir()
    untracked = git("status", "--porcelain", "--untracked-files=all").splitlines()
    store_files = [line[3:] for line in untracked if "fixtures_store" in line]
    assert len(store_files) == 1
    assert store_files[0].startswith("fixtures_store/gitmod.triple/")
    assert store_files[0].endswith(".json")
    git("add", "-A")
    git("commit", "-q", "-m", "record")
    project.run("import gitmod; gitmod.triple(2)", mode="record")
    assert git("status", "--porcelain", "--untracked-files=all") == ""


def test_cache_being_a_file_still_records_and_replays(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    memo_env.path.mkdir(parents=True)
    (memo_env.path / ".cache").write_text("not a directory\n")
    log: list[int] = []
    assert fetch(1, log) == {"n": 1, "word": "aaa"}
    assert fetch(1, log) == {"n": 1, "word": "aaa"}
    monkeypatch.setenv("MEMO_MODE", "replay")
    assert fetch(1, log) == {"n": 1, "word": "aaa"}
    assert log == [1]
    assert (memo_env.path / ".cache").is_file()
    # Reported (the index can never work there), with the fix; nothing else is wrong.
    [problem] = memo_env.verify()
    assert (problem.path, problem.kind) == (memo_env.path / ".cache", "unsafe")
    assert "delete it" in problem.fix


def test_cache_being_a_file_in_fresh_processes(project: Project) -> None:
    project.write("cachemod.py", """
        from memo_replay import recorded

        @recorded
        def double(n: int) -> int:
            with open("calls.log", "a") as fh:
                fh.write("double\\n")
            return 2 * n
    """)
    (project.root / "fixtures_store").mkdir()
    (project.root / "fixtures_store" / ".cache").write_text("x\n")
    assert project.run("import cachemod; print(cachemod.double(4))").stdout.strip() == "8"
    out = project.run("import cachemod; print(cachemod.double(4))", mode="replay").stdout
    assert out.strip() == "8"
    assert project.calls() == ["double"]


def test_unreadable_index_database_still_replays(memo_env: Store,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[int] = []
    fetch(1, log)
    cache = memo_env.path / ".cache"
    shutil.rmtree(cache, ignore_errors=True)  # the record-once lock already created it
    cache.mkdir()
    (cache / "cache.db").write_bytes(b"this is not an sqlite database" * 100)
    monkeypatch.setenv("MEMO_MODE", "replay")
    assert Store(memo_env.path).lookup(fetch.memo.id, fetch.memo.key(1, [])) is not None
    assert fetch(1, log) == {"n": 1, "word": "aaa"}
    assert log == [1]


@recorded(ignore=["log"])
def fetch_large(n: int, log: list[int]) -> dict[str, Any]:
    """Large enough for its entry to be put in the disk index when recorded."""
    log.append(n)
    return {"n": n, "word": "aaa", "pad": "p" * 5000}


def test_index_is_not_trusted_after_in_place_rewrite(memo_env: Store) -> None:
    log: list[int] = []
    fetch_large(1, log)  # recorded, and remembered by the index
    path = the_entry(memo_env)
    key = path.stem
    import diskcache

    with diskcache.Cache(str(memo_env.path / ".cache")) as index:
        # the index really holds the old payload
        assert index.get(memo_env.entry_name(fetch_large.memo.id, key)) is not None
    before = path.stat()
    rewrite_payload(path, {"n": 1, "word": "bbb", "pad": "p" * 5000})  # same size and inode
    after = path.stat()
    assert (after.st_size, after.st_ino) == (before.st_size, before.st_ino)
    if after.st_mtime_ns == before.st_mtime_ns:  # a coarse clock: make the change visible
        os.utime(path, ns=(after.st_atime_ns, before.st_mtime_ns + 1_000_000_000))

    assert fetch_large(1, log)["word"] == "bbb"
    hit = Store(memo_env.path).lookup(fetch_large.memo.id, key)  # a fresh process's view
    assert hit is not None
    assert json.loads(hit.payload.data)["word"] == "bbb"
    assert log == [1]


def test_small_entries_are_not_indexed_and_large_ones_are(memo_env: Store) -> None:
    """Reading a small entry file costs what an index lookup does: only entries of
    INDEX_MIN_BYTES or more are put in the index, when they are recorded (never on replay)."""
    import diskcache

    from memo_replay.store.store import INDEX_MIN_BYTES

    log: list[int] = []
    fetch(1, log)
    fetch_large(1, log)
    small = memo_env.entry_name(fetch.memo.id, fetch.memo.key(1, []))
    large = memo_env.entry_name(fetch_large.memo.id, fetch_large.memo.key(1, []))
    assert memo_env.backend.size(small) < INDEX_MIN_BYTES <= memo_env.backend.size(large)
    with diskcache.Cache(str(memo_env.path / ".cache")) as index:
        assert index.get(small) is None
        assert index.get(large) is not None


def test_very_large_entries_are_not_copied_into_the_index(memo_env: Store) -> None:
    """Above INDEX_MAX_BYTES the index copy would double the disk space (and, while pickled,
    the recording's memory) of a payload that reads from its file at disk speed."""
    import diskcache

    from memo_replay.store.index import INDEX_MAX_BYTES

    @recorded
    def download(n: int) -> bytes:
        return bytes([n]) * (INDEX_MAX_BYTES + 1)

    assert len(download(7)) == INDEX_MAX_BYTES + 1
    name = memo_env.entry_name(download.memo.id, download.memo.key(7))
    with diskcache.Cache(str(memo_env.path / ".cache")) as index:
        assert index.get(name) is None
    cached = sum(p.stat().st_size for p in (memo_env.path / ".cache").rglob("*") if p.is_file())
    assert cached < INDEX_MAX_BYTES // 4
    assert download(7) == bytes([7]) * (INDEX_MAX_BYTES + 1)  # replayed from its file


def test_a_replay_opens_the_index_only_once_it_pays(project: Project) -> None:
    """A fresh process replaying a few large entries reads their files and never imports
    diskcache (opening the index costs more than it saves it); one that has read
    INDEX_OPEN_AFTER_BYTES of them from their files opens it, and reads the rest from it."""
    from memo_replay.store.index import INDEX_OPEN_AFTER_BYTES

    entry_bytes = 64 * 1024 - 1000  # JSON: below the payload-file threshold, inline
    count = INDEX_OPEN_AFTER_BYTES // entry_bytes + 10
    project.write("bulky.py", f"""
        from memo_replay import recorded

        @recorded
        def page(n: int) -> dict:
            return {{"n": n, "text": "x" * {entry_bytes}}}
    """)
    call = """
        import json, sys
        from bulky import page
        from memo_replay.store.index import INDEX_OPEN_AFTER_BYTES
        opened_at = None
        for n in range(int(sys.argv[1])):
            assert page(n)["n"] == n
            if opened_at is None and "diskcache" in sys.modules:
                opened_at = n
        store = page.memo.store
        print(json.dumps({"opened_at": opened_at, "hot": len(store.hot_cache)}))
    """
    project.run(call, mode="record", args=(str(count),))
    few = json.loads(project.run(call, mode="replay", args=("10",)).stdout)
    assert few["opened_at"] is None  # ten large entries: files only, no diskcache
    many = json.loads(project.run(call, mode="replay", args=(str(count),)).stdout)
    assert many["opened_at"] is not None
    assert many["opened_at"] * entry_bytes >= INDEX_OPEN_AFTER_BYTES * 0.95
    assert many["hot"] == count  # every entry answered (from its file or the index)


def test_index_is_not_trusted_after_another_process_rerecords(project: Project) -> None:
    project.write("staleproj.py", """
        from pathlib import Path
        from memo_replay import recorded

        HERE = Path(__file__).parent

        @recorded
        def value(name: str) -> dict:
            with open(HERE / "calls.log", "a") as fh:
                fh.write("value\\n")
            return {"name": name, "value": (HERE / "value.txt").read_text().strip()}
    """)
    project.write("value.txt", "first")
    call = "import json, staleproj; print(json.dumps(staleproj.value('x')))"
    project.run(call)
    assert json.loads(project.run(call, mode="replay").stdout) == {"name": "x", "value": "first"}
    assert (project.root / "fixtures_store" / ".cache").is_dir()  # the shared index is warm

    project.write("value.txt", "second")
    project.run(call, mode="record")
    assert json.loads(project.run(call, mode="replay").stdout) == {"name": "x", "value": "second"}
    # and a Store in this process, opened on the same warm index, agrees
    [entry] = Store(project.root / "fixtures_store").entries()
    assert entry.load() == {"name": "x", "value": "second"}
    assert project.calls() == ["value", "value"]


CONCURRENT = """
import sys, time
from pathlib import Path
import lockmod
barrier = Path("barrier")
barrier.mkdir(exist_ok=True)
(barrier / sys.argv[1]).touch()
while len(list(barrier.iterdir())) < int(sys.argv[2]):
    time.sleep(0.01)
print(lockmod.slow(1))
"""


def test_concurrent_misses_of_one_key_record_once(project: Project) -> None:
    project.write("lockmod.py", """
        import os, time
        from memo_replay import recorded

        @recorded
        def slow(n: int) -> int:
            with open("calls.log", "a") as fh:
                fh.write(f"{os.getpid()}\\n")
            time.sleep(1.5)
            return n + 1
    """)
    workers = 4
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEMO_") and k not in ("CI", "PYTHONPATH")}
    env.update(PYTHONPATH=str(project.root), MEMO_MODE="auto")
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(i), str(workers)],
                              cwd=project.root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(workers)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * workers, outputs
    assert [o.strip() for o, _ in outputs] == ["2"] * workers
    assert len(entry_files(project.store)) == 1
    assert len(project.calls()) == 1


# -- the store directory ----------------------------------------------------------------------


def test_store_path_that_is_a_file_is_a_store_error(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "store"
    file.write_text("oops\n")
    with pytest.raises(StoreError, match="is a file") as info:
        Store(file)
    assert str(file) in str(info.value)
    assert isinstance(info.value, OSError)

    monkeypatch.setenv("MEMO_MODE", "auto")
    monkeypatch.setenv("MEMO_STORE", str(file))
    log: list[int] = []
    with pytest.raises(StoreError, match="is a file"):
        fetch(1, log)
    assert file.read_text() == "oops\n"


def test_missing_store_is_empty_and_not_created_by_reads(tmp_path: Path) -> None:
    store = Store(tmp_path / "nowhere")
    assert list(store.entries()) == []
    assert store.get("abc") is None
    assert store.delete("0" * 32) is False
    assert store.lookup("mod.fn", "0" * 32) is None
    assert store.verify() == []
    stats = store.stats()
    assert (stats.entries, stats.bytes, dict(stats.functions), stats.problems) == (0, 0, {}, 0)
    assert not (tmp_path / "nowhere").exists()


def test_replay_miss_does_not_create_the_store(memo_env: Store,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMO_MODE", "replay")
    log: list[int] = []
    with pytest.raises(ReplayMiss):
        fetch(1, log)
    assert not memo_env.path.exists()
    assert log == []


def test_entry_file_is_world_readable(project: Project) -> None:
    project.write("modemod.py", """
        from memo_replay import recorded

        @recorded
        def one() -> int:
            return 1
    """)
    project.run("import os; os.umask(0o022); import modemod; modemod.one()")
    [path] = entry_files(project.store)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not list(path.parent.glob(".*.tmp"))


def test_entry_file_mode_follows_umask_in_process(memo_env: Store) -> None:
    log: list[int] = []
    fetch(1, log)
    mode = stat.S_IMODE(the_entry(memo_env).stat().st_mode)
    umask = os.umask(0o022)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's 0600
    assert not list(the_entry(memo_env).parent.glob(".*.tmp"))


# -- inspection API -----------------------------------------------------------------------------


def _record_three(store: Store) -> dict[str, list[str]]:
    log: list[int] = []
    fetch(1, log)
    fetch(2, log)
    square(3, log)
    assert log == [1, 2, 3]
    return {
        fetch.memo.id: sorted([fetch.memo.key(1, []), fetch.memo.key(2, [])]),
        square.memo.id: [square.memo.key(3, [])],
    }


def test_entries_lists_everything_or_one_function(memo_env: Store) -> None:
    keys = _record_three(memo_env)
    everything = list(memo_env.entries())
    assert [e.path for e in everything] == sorted(e.path for e in everything)
    assert sorted(e.key for e in everything) == sorted(keys[fetch.memo.id] + keys[square.memo.id])

    fetched = list(memo_env.entries(fetch.memo.id))
    assert [e.key for e in fetched] == keys[fetch.memo.id]
    assert {e.function for e in fetched} == {fetch.memo.id}
    assert sorted(e.load()["n"] for e in fetched) == [1, 2]
    assert [e.load() for e in memo_env.entries(square.memo.id)] == [9]
    assert list(memo_env.entries("no.such.function")) == []
    assert [e.key for e in fetch.memo.entries()] == keys[fetch.memo.id]


def test_entries_skip_damaged_and_leftover_files(memo_env: Store) -> None:
    keys = _record_three(memo_env)
    [square_key] = keys[square.memo.id]
    truncate_half(memo_env.entry_path(square.memo.id, square_key))
    directory = memo_env.entry_path(fetch.memo.id, keys[fetch.memo.id][0]).parent
    (directory / f".{keys[fetch.memo.id][0]}.abc123.tmp").write_text("{")
    (directory / "notes.txt").write_text("hello\n")
    assert sorted(e.key for e in memo_env.entries()) == keys[fetch.memo.id]


def test_get_by_key_and_prefix(memo_env: Store) -> None:
    keys = _record_three(memo_env)
    [key] = keys[square.memo.id]
    entry = memo_env.get(key)
    assert entry is not None
    assert entry.key == key
    assert entry.function == square.memo.id
    assert entry.load() == 9
    all_keys = keys[fetch.memo.id] + [key]
    prefix = next(key[:n] for n in range(1, 33)
                  if sum(k.startswith(key[:n]) for k in all_keys) == 1)
    by_prefix = memo_env.get(prefix)
    assert by_prefix is not None
    assert by_prefix.key == key
    assert memo_env.get("") is None  # ambiguous: matches every entry
    assert memo_env.get("z" * 8) is None  # matches nothing


def test_delete_removes_one_entry(memo_env: Store) -> None:
    keys = _record_three(memo_env)
    [key] = keys[square.memo.id]
    path = memo_env.entry_path(square.memo.id, key)
    log: list[int] = []
    square(3, log)  # replayed; the index now holds it
    assert log == []

    assert memo_env.delete(key[:8]) is False  # a prefix is not enough to delete
    assert path.exists()
    assert memo_env.delete(key) is True
    assert not path.exists()
    assert memo_env.delete(key) is False
    assert memo_env.lookup(square.memo.id, key) is None
    assert memo_env.get(key) is None
    assert sorted(e.key for e in memo_env.entries()) == keys[fetch.memo.id]

    assert square(3, log) == 9  # recorded again
    assert log == [3]
    assert path.exists()


def test_stats_counts_entries_bytes_and_problems(memo_env: Store) -> None:
    keys = _record_three(memo_env)
    files = entry_files(memo_env)
    stats = memo_env.stats()
    assert stats.entries == 3
    assert stats.bytes == sum(p.stat().st_size for p in files)
    assert stats.problems == 0
    assert set(stats.functions) == {fetch.memo.id, square.memo.id}
    fetch_stats = stats.functions[fetch.memo.id]
    assert isinstance(fetch_stats, FunctionStats)
    assert fetch_stats.entries == 2
    assert fetch_stats.bytes == sum(p.stat().st_size for p in files
                                    if p.stem in keys[fetch.memo.id])
    assert dict(fetch_stats.serializers) == {"json": 2}
    assert fetch_stats.oldest is not None
    assert fetch_stats.newest is not None
    assert fetch_stats.oldest <= fetch_stats.newest
    assert stats.functions[square.memo.id].entries == 1

    truncate_half(memo_env.entry_path(square.memo.id, keys[square.memo.id][0]))
    damaged = memo_env.stats()
    assert damaged.entries == 2
    assert damaged.problems == 1
    assert set(damaged.functions) == {fetch.memo.id}


def test_verify_reports_every_kind_of_problem(memo_env: Store) -> None:
    keys = _record_three(memo_env)
    assert memo_env.verify() == []
    fetch_dir = memo_env.entry_path(fetch.memo.id, keys[fetch.memo.id][0]).parent
    square_dir = memo_env.entry_path(square.memo.id, keys[square.memo.id][0]).parent

    orphan = fetch_dir / f".{keys[fetch.memo.id][0]}.x1y2z3.tmp"
    orphan.write_bytes(b'{"format": 1')
    stray_top = memo_env.path / "notes.txt"
    stray_top.write_text("hi\n")
    stray_inner = fetch_dir / "README.md"
    stray_inner.write_text("hi\n")
    corrupt = memo_env.entry_path(fetch.memo.id, keys[fetch.memo.id][1])
    truncate_half(corrupt)
    misplaced = square_dir / f"{keys[fetch.memo.id][0]}.json"
    shutil.copy(memo_env.entry_path(fetch.memo.id, keys[fetch.memo.id][0]), misplaced)

    problems = {p.path: p for p in memo_env.verify()}
    assert {path: p.kind for path, p in problems.items()} == {
        orphan: "orphan",
        stray_top: "stray",
        stray_inner: "stray",
        corrupt: "corrupt",
        misplaced: "misplaced",
    }
    assert all(p.message and p.fix for p in problems.values())
    assert "MEMO_MODE=record" in problems[corrupt].fix
    assert fetch_dir.name in problems[misplaced].fix
    # the index directory is never reported
    assert not any(".cache" in p.path.parts for p in problems.values())


def test_lookup_returns_the_payload_and_original_duration(memo_env: Store) -> None:
    keys = _record_three(memo_env)
    [key] = keys[square.memo.id]
    for _ in range(2):  # from the file, then from the index
        hit = memo_env.lookup(square.memo.id, key)
        assert hit is not None
        assert hit.payload.serializer == "json"
        assert json.loads(hit.payload.data) == 9
        document = json.loads(memo_env.entry_path(square.memo.id, key).read_text())
        assert hit.duration_s == document["duration_s"]
        assert hit.payload.checksum == document["result"]["checksum"]
    assert memo_env.lookup(square.memo.id, "f" * 32) is None


def test_binary_payload_round_trips_through_store(memo_env: Store) -> None:
    log: list[int] = []

    @recorded(ignore=["log"])
    def blob(n: int, log: list[int]) -> bytes:
        log.append(n)
        return bytes(range(256)) * n

    assert blob(2, log) == bytes(range(256)) * 2
    path = the_entry(memo_env)
    document = json.loads(path.read_text())
    assert document["result"]["encoding"] == "binary"
    assert base64.b64decode(document["result"]["payload"]) == bytes(range(256)) * 2
    assert blob(2, log) == bytes(range(256)) * 2
    assert blob(2, log) == bytes(range(256)) * 2
    assert log == [2]
    entry = memo_env.get(path.stem)
    assert entry is not None
    assert entry.load() == bytes(range(256)) * 2
    assert entry.size == 512


def test_unreadable_entries_are_reported_and_never_replayed(memo_env: Store,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """Bytes that are not text, and a directory where the entry file should be: both are
    reported by verify, refused in replay, and (for the bytes) re-recorded in auto."""
    log: list[int] = []
    fetch(1, log)
    fetch(2, log)
    by_key = {path.stem: path for path in entry_files(memo_env)}
    garbled, blocked = by_key[fetch.memo.key(1, [])], by_key[fetch.memo.key(2, [])]
    garbled.write_bytes(b"\xff\xfe\x00\x81" * 64)
    blocked.unlink()
    blocked.mkdir()

    problems = {p.path: p for p in memo_env.verify()}
    assert problems[garbled].kind == "corrupt"
    assert "not valid JSON" in problems[garbled].message
    assert problems[blocked].kind == "corrupt"
    assert "unreadable" in problems[blocked].message

    monkeypatch.setenv("MEMO_MODE", "replay")
    for n, path in ((1, garbled), (2, blocked)):
        with pytest.raises(CorruptEntry) as info:
            fetch(n, log)
        assert str(path) in str(info.value)
    assert log == [1, 2]

    monkeypatch.setenv("MEMO_MODE", "auto")
    with pytest.warns(MemoReplayWarning, match="re-recording"):
        assert fetch(1, log) == {"n": 1, "word": "aaa"}
    assert json.loads(garbled.read_text())["key"] == garbled.stem
    with pytest.warns(MemoReplayWarning), pytest.raises(StoreError, match="cannot write"):
        fetch(2, log)  # a directory cannot be replaced by a file: a clear error, nothing lost
    assert blocked.is_dir()


@pytest.mark.parametrize("stated", ["-1e20", "Infinity", "1e300", '"12"', "null", "true"])
def test_a_stated_duration_that_is_no_duration_counts_as_unknown(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch, stated: str) -> None:
    """`duration_s` is only reported (the time a replay saved): a hand-edited or hostile one
    replays as 0 s, never as a negative or infinite saving in a test run's summary."""
    from memo_replay import track

    @recorded
    def answer(n: int) -> int:
        return n + 1

    assert answer(1) == 2
    [path] = list(memo_env.entry_files())
    raw = path.read_text()
    start = raw.index('"duration_s": ') + len('"duration_s": ')
    path.write_text(raw[:start] + stated + raw[raw.index(",", start):])
    monkeypatch.setenv("MEMO_MODE", "replay")
    with track() as calls:
        assert answer(1) == 2
    assert [(c.outcome, c.recorded_duration_s) for c in calls] == [("replayed", 0.0)]
