"""The catalog (issue 15): ``stats`` and ``ls`` remember what they read of each entry file in
``.cache/catalog/`` and, on the next run, read again only the entries whose stamp changed.

It must never show stale data (an entry rewritten, replaced, re-recorded, added or deleted after
the catalog was written is shown as it is now, including a rewrite within the same mtime tick),
never crash or follow a link on a damaged or hostile catalog, never be written when replaying,
and never be needed (a ``.cache`` that cannot be used leaves ``stats``/``ls`` working).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memo_replay import Store, recorded
from memo_replay.store import LocalDirectory, Tiered
from memo_replay.store.entry import timestamp


def square(n: int) -> dict[str, int]:
    return {"n": n, "square": n * n}


def reading(n: int) -> dict[str, int]:
    """A result that changes without its code changing: re-recording it rewrites the entry."""
    return {"n": n, "value": int(os.environ.get("CATALOG_TEST_VALUE", "1000"))}


def _record(store: Path, fn: Callable[[int], Any], numbers: range,
            monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as mp:
        mp.setenv("MEMO_MODE", "record")
        wrapped = recorded(store=store)(fn)
        for n in numbers:
            wrapped(n)


def _entry_files(store: Path) -> list[Path]:
    return sorted(p for p in store.glob("*/*.json") if not p.parent.name.startswith("."))


def _age(paths: list[Path], seconds: float = 60.0, *, directories: bool = True) -> None:
    """Entries (and their directories) last modified a while ago, as in any checkout: not
    racily clean."""
    then = time.time_ns() - int(seconds * 1e9)
    for path in [*paths, *({p.parent for p in paths} if directories else ())]:
        os.utime(path, ns=(then, then))


def _shown(store: Path) -> list[tuple[Any, ...]]:
    """What ``ls`` lists (``Store.listings``), as plain tuples."""
    return [(x.summary.key, x.summary.function, x.summary.recorded_at, x.size,
             x.summary.serializer, x.arguments) for x in Store(store).listings()]


def _parsed(store: Path) -> list[tuple[Any, ...]]:
    """The same, from every entry parsed and checked (no catalog involved)."""
    return [(e.key, e.function, None if e.recorded_at is None else timestamp(e.recorded_at),
             e.size, e.serializer, dict(e.arguments)) for e in Store(store).entries()]


def _catalogs(store: Path) -> list[Path]:
    return sorted((store / ".cache" / "catalog").glob("*.json"))


def _catalog(store: Path) -> dict[str, Any]:
    [path] = _catalogs(store)
    document: dict[str, Any] = json.loads(path.read_bytes())
    return document


def _assert_truthful(store: Path) -> None:
    """``ls`` and ``stats`` say what the parsed entries say."""
    truth = _parsed(store)
    assert _shown(store) == truth
    stats = Store(store).stats()
    assert stats.entries == len(truth)
    assert stats.problems == 0
    functions = {row[1] for row in truth}
    assert set(stats.functions) == functions


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Five aged entries of one function, listed once: the catalog holds all of them."""
    directory = tmp_path / "store"
    _record(directory, square, range(5), monkeypatch)
    _age(_entry_files(directory))
    assert _shown(directory) == _parsed(directory)
    assert len(_catalog(directory)["files"]) == 5
    assert _catalog(directory)["listed"] is not None  # the next run does not list it again
    return directory


def _lie(store: Path, function: str = "lying.function") -> None:
    """Rewrite the catalog (well formed, stamps intact) to claim another function."""
    [path] = _catalogs(store)
    document = _catalog(store)
    document["functions"] = [function] * len(document["files"])
    path.write_text(json.dumps(document))


# -- what is remembered ------------------------------------------------------------------------


def test_the_second_run_says_what_the_first_did(store: Path) -> None:
    before = _catalogs(store)[0].stat()
    first_stats = Store(store).stats()
    assert _shown(store) == _parsed(store)
    assert Store(store).stats() == first_stats
    after = _catalogs(store)[0].stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # unchanged
    document = _catalog(store)
    assert document["version"] == 1
    assert document["files"] == [p.name for p in _entry_files(store)]


def test_a_catalog_is_believed_only_while_an_entrys_stamp_matches(store: Path) -> None:
    _lie(store)
    assert {row[1] for row in _shown(store)} == {"lying.function"}  # it is used...
    first = _entry_files(store)[0]
    _age([first], seconds=30)  # ...but not for an entry whose mtime changed
    shown = {row[0]: row[1] for row in _shown(store)}
    assert shown.pop(first.stem) != "lying.function"
    assert set(shown.values()) == {"lying.function"}


def test_stats_without_listings_then_ls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``stats`` catalogues summaries only; ``ls`` then reads the listings and adds them."""
    directory = tmp_path / "store"
    _record(directory, square, range(3), monkeypatch)
    _age(_entry_files(directory))
    stats = Store(directory).stats()
    assert _catalog(directory)["arguments"] == [None, None, None]
    assert _shown(directory) == _parsed(directory)
    assert all(isinstance(a, dict) for a in _catalog(directory)["arguments"])
    assert Store(directory).stats() == stats


# -- never stale -------------------------------------------------------------------------------


def _retime(path: Path, new_time: str) -> None:
    """Rewrite an entry in place (same inode, same size) with another ``recorded_at``."""
    raw = path.read_bytes()
    old_time = json.loads(raw)["recorded_at"]
    assert len(old_time) == len(new_time)
    with path.open("r+b") as fh:  # in place, as some editors write
        fh.write(raw.replace(f'"recorded_at": "{old_time}"'.encode(),
                             f'"recorded_at": "{new_time}"'.encode()))


def test_an_entry_rewritten_within_the_same_tick_is_never_stale(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry modified less than two seconds before a listing is not catalogued (the
    racily-clean rule): a rewrite in place of the same size whose mtime does not move (a coarse
    clock) is still seen."""
    directory = tmp_path / "store"
    _record(directory, square, range(2), monkeypatch)
    assert _shown(directory) == _parsed(directory)  # just recorded: nothing catalogued
    assert all(json.loads(p.read_bytes())["files"] == [] for p in _catalogs(directory))
    entry = _entry_files(directory)[0]
    before = entry.stat()
    _retime(entry, "2001-02-03T04:05:06Z")
    os.utime(entry, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same stamp again
    after = entry.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == \
        (before.st_size, before.st_mtime_ns, before.st_ino)
    assert {row[0]: row[2] for row in _shown(directory)}[entry.stem] == "2001-02-03T04:05:06Z"
    _assert_truthful(directory)


def test_an_entry_rewritten_in_place_after_the_listing_is_read_again(store: Path) -> None:
    entry = _entry_files(store)[2]
    _retime(entry, "2001-02-03T04:05:06Z")  # same size, same inode, a new mtime
    assert {row[0]: row[2] for row in _shown(store)}[entry.stem] == "2001-02-03T04:05:06Z"
    _assert_truthful(store)


def test_an_entry_replaced_with_the_same_size_and_mtime_is_read_again(store: Path) -> None:
    """As ``git checkout`` does: a new file renamed over the old one, here even with the old
    mtime: the inode differs."""
    entry = _entry_files(store)[1]
    before = entry.stat()
    raw = entry.read_bytes()
    old_time = json.loads(raw)["recorded_at"]
    replacement = entry.with_name("replacement.tmp")
    replacement.write_bytes(raw.replace(old_time.encode(), b"2001-02-03T04:05:06Z"))
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, entry)
    assert entry.stat().st_size == before.st_size
    assert entry.stat().st_mtime_ns == before.st_mtime_ns
    assert {row[0]: row[2] for row in _shown(store)}[entry.stem] == "2001-02-03T04:05:06Z"
    _assert_truthful(store)


def test_an_entry_re_recorded_in_the_same_second_is_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "store"
    _record(directory, reading, range(3), monkeypatch)
    entry = _entry_files(directory)[0]
    _retime(entry, "2001-02-03T04:05:06Z")
    _age(_entry_files(directory))
    assert {row[0]: row[2] for row in _shown(directory)}[entry.stem] == "2001-02-03T04:05:06Z"
    assert len(_catalog(directory)["files"]) == 3
    monkeypatch.setenv("CATALOG_TEST_VALUE", "2000")  # the same size: only the value differs
    _record(directory, reading, range(3), monkeypatch)  # right after the listing
    assert len(_entry_files(directory)) == 3  # the same keys: each entry rewritten
    shown = {row[0]: row[2] for row in _shown(directory)}
    assert shown[entry.stem] != "2001-02-03T04:05:06Z"
    assert shown[entry.stem] == json.loads(entry.read_bytes())["recorded_at"]
    _assert_truthful(directory)


def test_entries_added_and_deleted_since_the_listing(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = _entry_files(store)[3]
    gone.unlink()
    _record(store, square, range(10, 12), monkeypatch)
    _age(_entry_files(store), directories=False)  # the directory's mtime moved: listed again
    _assert_truthful(store)
    assert len(_shown(store)) == 6
    assert _catalog(store)["files"] == [p.name for p in _entry_files(store)]


def test_a_directory_changed_within_the_same_tick_is_listed_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory modified less than two seconds before it was listed is listed again next
    time: an entry added within the same mtime tick (its directory's stamp unchanged) is seen."""
    directory = tmp_path / "store"
    _record(directory, square, range(2), monkeypatch)
    _age(_entry_files(directory), directories=False)
    [function_directory] = {p.parent for p in _entry_files(directory)}
    before = function_directory.stat()
    assert len(_shown(directory)) == 2
    assert _catalog(directory)["listed"] is None  # too recent to be trusted
    _record(directory, square, range(2, 3), monkeypatch)
    _age(_entry_files(directory), directories=False)
    os.utime(function_directory, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert function_directory.stat().st_mtime_ns == before.st_mtime_ns
    assert len(_shown(directory)) == 3
    _assert_truthful(directory)


# -- hostile or damaged catalogs ---------------------------------------------------------------


def _edit(change: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        document = json.loads(path.read_bytes())
        change(document)
        path.write_text(json.dumps(document))
    return edit


def _bytes(data: bytes) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes(data)
    return write


def _set(column: str, value: Any, index: int = 0) -> Callable[[Path], None]:
    def change(document: dict[str, Any]) -> None:
        document[column][index] = value
    return _edit(change)


def _huge_size(path: Path) -> None:
    document = json.loads(path.read_bytes())
    size = document["sizes"][0]
    path.write_text(json.dumps(document).replace(f"[{size},", "[1" + "0" * 5000 + ",", 1))


def _deep(path: Path) -> None:
    document = json.loads(path.read_bytes())
    document["arguments"][0] = "DEEP"
    path.write_text(json.dumps(document).replace('"DEEP"', "[" * 100_000 + "]" * 100_000))


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "x").write_text("x")


HOSTILE: dict[str, Callable[[Path], None]] = {
    "garbage bytes": _bytes(b"\x00\xff\xfe not json at all \x1b[31m"),
    "empty": _bytes(b""),
    "a JSON list": _bytes(b"[1, 2, 3]"),
    "a JSON string": _bytes(b'"catalog"'),
    "another version": _edit(lambda d: d.update(version=99)),
    "another directory": _edit(lambda d: d.update(directory="other.function")),
    "a missing column": _edit(lambda d: d.pop("inodes")),
    "a column of another length": _edit(lambda d: d["functions"].pop()),
    "a column that is not a list": _edit(lambda d: d.update(times="2026")),
    "a stamp that is a string": _set("sizes", "12"),
    "a stamp that is a bool": _set("inodes", True),
    "a stamp that is a float": _set("mtimes", 1.5),
    "a number of 5,000 digits": _huge_size,
    "nesting 100,000 deep": _deep,
    "a function that is a number": _set("functions", 5),
    "a time that is a number": _set("times", 7),
    "a serializer that is null": _set("serializers", None),
    "a payload file outside the store": _set("payload_files", "../../../../etc/passwd"),
    "another key's payload file": _set("payload_files", "0" * 32 + ".0123456789abcdef.bin"),
    "a payload size of 10**30": _set("payload_sizes", 10**30),
    "a negative payload size": _set("payload_sizes", -1),
    "arguments that are a string": _set("arguments", "x"),
    "a listing half there": _set("arguments", None),
    "a listed name outside the directory": _edit(
        lambda d: d.update(uncatalogued=["../../outside.json"])),
    "a listed name with a directory": _edit(lambda d: d.update(uncatalogued=["x/y.json"])),
    "a hidden listed name": _edit(lambda d: d.update(uncatalogued=[".tmp.json"])),
    "a listed name that is not an entry's": _edit(lambda d: d.update(uncatalogued=["x.bin"])),
    "a listed name twice": _edit(lambda d: d.update(uncatalogued=d["files"][:1])),
    "a listing out of order": _edit(lambda d: [d[c].reverse() for c in d if type(d[c]) is list
                                               and c not in ("listed", "uncatalogued")]),
    "a listing stamp that is not one": _edit(lambda d: d.update(listed=["0", 1])),
    "a FIFO": _fifo,
    "a directory": _directory,
}


@pytest.mark.parametrize("damage", list(HOSTILE), ids=list(HOSTILE))
def test_a_damaged_or_hostile_catalog_is_ignored(store: Path, damage: str) -> None:
    """Whatever the catalog holds (the stamps of every entry still match), ``stats`` and
    ``ls`` say what the entries say, and a damaged catalog is replaced by a good one."""
    _lie(store)  # well-formed lies first: any part of them shown means the file was used
    outside = store.parent / "outside.json"  # a real entry, where a listed name points
    outside.write_bytes(_entry_files(store)[0].read_bytes())
    HOSTILE[damage](_catalogs(store)[0])
    _assert_truthful(store)
    [path] = _catalogs(store)
    if path.is_file() and not path.is_symlink():  # rewritten whole, atomically
        assert _catalog(store)["files"] == [p.name for p in _entry_files(store)]
        assert "lying.function" not in _catalog(store)["functions"]


def test_a_symlinked_catalog_file_is_not_followed(store: Path, tmp_path: Path) -> None:
    [path] = _catalogs(store)
    _lie(store)
    outside = tmp_path / "outside.json"
    outside.write_bytes(path.read_bytes())  # a lying catalog with matching stamps...
    path.unlink()
    path.symlink_to(outside)  # ...reached through a link
    _assert_truthful(store)
    assert "lying.function" in outside.read_text()  # never written through the link


@pytest.mark.parametrize("link", [".cache", ".cache/catalog"])
def test_a_symlinked_cache_directory_is_neither_read_nor_written(
        store: Path, tmp_path: Path, link: str) -> None:
    _lie(store)
    outside = tmp_path / "elsewhere"
    (store / link).rename(outside)
    (store / link).symlink_to(outside, target_is_directory=True)
    snapshot = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    _assert_truthful(store)
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == snapshot


def test_a_cache_that_is_a_file_leaves_stats_and_ls_working(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "store"
    _record(directory, square, range(3), monkeypatch)
    _age(_entry_files(directory))
    shutil.rmtree(directory / ".cache", ignore_errors=True)
    (directory / ".cache").write_text("not a directory")
    _assert_truthful(directory)
    _assert_truthful(directory)
    assert (directory / ".cache").read_text() == "not a directory"


# -- where it is written -----------------------------------------------------------------------


def test_replay_never_writes_the_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "store"
    _record(directory, square, range(4), monkeypatch)
    _age(_entry_files(directory))
    with monkeypatch.context() as mp:
        mp.setenv("MEMO_MODE", "replay")
        replayed = recorded(store=directory)(square)
        for _ in range(2):
            assert [replayed(n) for n in range(4)] == [square(n) for n in range(4)]
    assert not (directory / ".cache" / "catalog").exists()
    Store(directory).stats()  # the control: a report writes it
    assert _catalogs(directory)


def test_other_backends_have_no_catalog(store: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    tiered = Store(other, backend=Tiered(LocalDirectory(other), LocalDirectory(store)))
    assert tiered.stats().entries == 5
    assert len(list(tiered.listings())) == 5
    assert not (other / ".cache").exists()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMO_")}
    result = subprocess.run([sys.executable, "-m", "memo_replay", *args], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_the_cli_lists_the_same_with_and_without_a_catalog(store: Path) -> None:
    for path in _catalogs(store):
        path.unlink()
    fresh = _cli("ls", "--store", str(store)).stdout
    assert _catalogs(store)  # written by the first listing
    assert _cli("ls", "--store", str(store)).stdout == fresh
    stats = _cli("stats", "--store", str(store)).stdout
    _catalogs(store)[0].write_bytes(b"\x00garbage")
    assert _cli("ls", "--store", str(store)).stdout == fresh
    assert _cli("stats", "--store", str(store)).stdout == stats
    _lie(store)
    assert "lying.function" in _cli("ls", "--store", str(store)).stdout  # (it was used)


def test_the_cli_leaves_the_garbage_collector_as_it_found_it(
        store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ls`/`stats` pause the collector while they read (their objects are acyclic); `main`
    may run inside a longer process."""
    import gc

    from memo_replay.cli import main

    assert gc.isenabled()
    assert main(["ls", "--store", str(store)]) == 0
    assert main(["stats", "--store", str(store)]) == 0
    assert gc.isenabled()
    assert "5 recordings" in capsys.readouterr().out


def test_temporary_files_of_a_killed_writer_are_swept(store: Path) -> None:
    """A process killed while writing a catalog leaves its temporary file; the next write of
    that directory's catalog removes it once it is older than an hour (a younger one may be
    another process's write in flight), and never follows a link."""
    folder = store / ".cache" / "catalog"
    [catalog] = _catalogs(store)
    stem = catalog.stem
    old, young = folder / f".{stem}.111.aaaa.tmp", folder / f".{stem}.222.bbbb.tmp"
    other, link = folder / ".other.333.cccc.tmp", folder / f".{stem}.444.dddd.tmp"
    target = store.parent / "target.txt"
    target.write_text("kept")
    for path in (old, young, other):
        path.write_text("{")
    link.symlink_to(target)
    hours_ago = time.time() - 2 * 3600
    for path in (old, other):
        os.utime(path, (hours_ago, hours_ago))
    os.utime(link, (hours_ago, hours_ago), follow_symlinks=False)
    _age(_entry_files(store)[:1], seconds=30)  # a changed entry: the catalog is written again
    _assert_truthful(store)
    assert not old.exists()
    assert young.exists()
    assert other.exists()
    assert link.is_symlink()
    assert target.read_text() == "kept"
