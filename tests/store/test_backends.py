"""Store backends: one contract suite over every backend, then what each one adds.

Every backend — :class:`LocalDirectory`, :class:`Tiered` over two directories, :class:`Tiered`
over a dict and a directory, and :class:`InMemory` (below: the protocol implemented in a dict,
showing a backend needs no filesystem) — runs through the same cases. Backend-specific cases
plant real symlinks, FIFOs and directories where entries should be; the last cases put a real
recording in a shared read-only tier behind an empty local store and replay it through
:class:`Store`.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memo_replay import Store, StoreError, recorded
from memo_replay.store import Backend, LocalDirectory, ReadOnly, Tiered
from memo_replay.store.backend import BlobTooLarge, Stamp
from memo_replay.store.index import HotCache, NoIndex

MB = 1 << 20
KEY_A = "0123456789abcdef0123456789abcdef"
KEY_B = "fedcba9876543210fedcba9876543210"


class InMemory:
    """The :class:`Backend` protocol over a dict: name → (bytes, version). The stamp is the
    version, bumped by every write (identical bytes too), so a stamp names one write."""

    def __init__(self, location: str = "memory://blobs") -> None:
        self.location = location
        self._blobs: dict[str, tuple[bytes, int]] = {}
        self._writes = 0

    def read(self, name: str, *, limit: int | None = None) -> bytes | None:
        held = self._blobs.get(name)
        if held is None:
            return None
        if limit is not None and len(held[0]) > limit:
            raise BlobTooLarge(f"{len(held[0])} bytes, above the bound of {limit}")
        return held[0]

    def read_stamped(self, name: str, *, limit: int | None = None
                     ) -> tuple[bytes, Stamp] | None:
        held = self._blobs.get(name)
        data = self.read(name, limit=limit)
        return None if held is None or data is None else (data, (held[1],))

    def stamp(self, name: str) -> Stamp | None:
        held = self._blobs.get(name)
        return None if held is None else (held[1],)

    def size(self, name: str) -> int | None:
        held = self._blobs.get(name)
        return None if held is None else len(held[0])

    def write(self, name: str, data: bytes) -> None:
        self._writes += 1
        self._blobs[name] = (bytes(data), self._writes)

    def delete(self, name: str) -> bool:
        return self._blobs.pop(name, None) is not None

    def names(self, prefix: str = "") -> Iterator[str]:
        return iter(sorted(name for name in self._blobs if name.startswith(prefix)))

    def where(self, name: str) -> str:
        return f"{self.location}/{name}"


BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "local": lambda tmp: LocalDirectory(tmp / "store"),
    "tiered-local-local": lambda tmp: Tiered(LocalDirectory(tmp / "a"), LocalDirectory(tmp / "b")),
    "tiered-memory-local": lambda tmp: Tiered(InMemory(), LocalDirectory(tmp / "b")),
    "memory": lambda tmp: InMemory(),
}
"""The backends whose blobs (the tier written to) are files: LocalDirectory's listing."""


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each backend, empty; the directories under it do not exist yet (as before a first
    recording)."""
    return BACKENDS[request.param](tmp_path)


def entry(directory: str, key: str = KEY_A) -> str:
    return f"{directory}/{key}.json"


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file (its bytes) and symlink (its target) under ``root``."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[relative] = os.readlink(path)
        elif path.is_file():
            found[relative] = path.read_bytes()
    return found


# -- the contract: every backend ----------------------------------------------------------------


def test_is_a_backend(backend: Backend) -> None:
    assert isinstance(backend, Backend)
    assert isinstance(ReadOnly(backend), Backend)
    assert isinstance(backend.location, str)
    assert not isinstance(object(), Backend)


def test_an_absent_name_is_none_everywhere(backend: Backend) -> None:
    for name in (entry("fn"), "fn/absent.bin", "top-level", entry("fn/nested")):
        assert backend.read(name) is None
        assert backend.read(name, limit=0) is None
        assert backend.stamp(name) is None
        assert backend.size(name) is None
        assert backend.delete(name) is False
    assert list(backend.names()) == []
    assert list(backend.names("fn/")) == []

    backend.write(entry("fn"), b"{}")  # a sibling existing changes nothing for the others
    assert backend.read(entry("fn", KEY_B)) is None
    assert backend.stamp(entry("fn", KEY_B)) is None
    assert backend.delete(entry("fn", KEY_B)) is False


@pytest.mark.parametrize("data", [
    b"",
    b"\x00binary\x00\xff\xfe\x00 with NULs\r\n\x00",
    random.Random(0).randbytes(MB),
], ids=["empty", "nuls", "1mb"])
def test_write_then_read_returns_the_exact_bytes(backend: Backend, data: bytes) -> None:
    name = entry("pkg.translate")
    backend.write(name, data)
    assert backend.read(name) == data
    assert backend.read(name, limit=len(data)) == data  # the bound is inclusive
    assert backend.size(name) == len(data)
    assert backend.stamp(name) is not None
    assert list(backend.names()) == [name]
    assert name.rsplit("/", 1)[1] in backend.where(name)


def test_read_stamped_gives_the_bytes_and_the_stamp_stamp_gives(backend: Backend) -> None:
    """The store validates cached hits by `stamp()` and fills the cache from `read_stamped()`:
    the two must name the same version of a blob, or a cached copy would never (or wrongly)
    be used."""
    name = entry("fn")
    assert backend.read_stamped(name) is None
    backend.write(name, b'{"v": 1}')
    read = backend.read_stamped(name)
    assert read is not None
    assert read == (b'{"v": 1}', backend.stamp(name))
    backend.write(name, b'{"v": 2}')
    again = backend.read_stamped(name)
    assert again is not None
    assert again[1] == backend.stamp(name)
    assert again[1] != read[1]
    with pytest.raises(BlobTooLarge):
        backend.read_stamped(name, limit=3)


def test_stamps_change_with_every_write_and_hold_while_unchanged(backend: Backend) -> None:
    name = entry("fn")
    backend.write(name, b'{"v": 1}')
    first = backend.stamp(name)
    assert first is not None
    assert backend.stamp(name) == first  # unchanged blob, same stamp: a cached copy stays valid

    backend.write(name, b'{"v": 2}')  # same size, other bytes
    second = backend.stamp(name)
    assert second is not None
    assert second != first
    assert backend.read(name) == b'{"v": 2}'

    backend.write(name, b'{"v": 2}')  # identical bytes rewritten: still a valid stamp
    third = backend.stamp(name)
    assert third is not None
    assert backend.stamp(name) == third
    assert backend.read(name) == b'{"v": 2}'
    assert backend.size(name) == len(b'{"v": 2}')


def test_names_are_sorted_and_filtered_by_prefix(backend: Backend) -> None:
    names = [
        entry("a.b"),
        entry("a.b", KEY_B),
        f"a.b/{KEY_B}.0123456789abcdef.bin",  # a payload file beside its entry
        entry("fn"),
        entry("fn", KEY_B),
        entry("pkg.mod.Class.method"),
        entry("zzz"),
    ]
    for name in random.Random(1).sample(names, len(names)):
        backend.write(name, name.encode())
    assert list(backend.names()) == sorted(names)
    assert list(backend.names("fn/")) == [entry("fn"), entry("fn", KEY_B)]
    assert list(backend.names("a.b/")) == sorted(n for n in names if n.startswith("a.b/"))
    assert list(backend.names(f"a.b/{KEY_B}")) == [f"a.b/{KEY_B}.0123456789abcdef.bin",
                                                   entry("a.b", KEY_B)]
    assert list(backend.names("nothing/")) == []
    for name in names:
        assert backend.read(name) == name.encode()


def test_names_are_sorted_when_a_directory_name_extends_another(backend: Backend) -> None:
    # `m.f` and its nested function `m.f.<locals>.g` (directory `m.f._locals_.g`): as strings
    # "m.f._locals_.g/…" < "m.f-x/…" < "m.f/…", since "." and "-" sort before "/".
    names = [entry("m.f"), entry("m.f._locals_.g"), entry("m.f-x"), entry("m.fg")]
    for name in names:
        backend.write(name, b"{}")
    assert list(backend.names()) == sorted(names)
    assert list(backend.names("m.f/")) == [entry("m.f")]


def test_delete_removes_only_that_blob(backend: Backend) -> None:
    gone, kept = entry("fn"), entry("fn", KEY_B)
    backend.write(gone, b"gone")
    backend.write(kept, b"kept")
    assert backend.delete(gone) is True
    assert backend.read(gone) is None
    assert backend.stamp(gone) is None
    assert backend.size(gone) is None
    assert list(backend.names()) == [kept]
    assert list(backend.names("fn/")) == [kept]
    assert backend.read(kept) == b"kept"
    assert backend.delete(gone) is False  # deleted twice: the second finds nothing

    backend.write(gone, b"again")  # a deleted name can be written again
    assert backend.read(gone) == b"again"


def test_read_refuses_a_blob_above_the_limit(backend: Backend) -> None:
    name = entry("fn")
    backend.write(name, b"x" * 100)
    with pytest.raises(BlobTooLarge):
        backend.read(name, limit=99)
    assert issubclass(BlobTooLarge, OSError)
    assert backend.read(name, limit=100) == b"x" * 100
    assert backend.read(name) == b"x" * 100


# -- LocalDirectory -----------------------------------------------------------------------------


def test_local_never_reads_through_a_symlinked_entry(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_bytes(b'{"secret": "outside the store"}')
    store = LocalDirectory(tmp_path / "store")
    name = entry("fn")
    link = tmp_path / "store" / "fn" / f"{KEY_A}.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)

    with pytest.raises(OSError) as info:  # noqa: PT011 - its errno is checked below
        store.read(name)
    assert info.value.errno in (errno.ELOOP, errno.EMLINK)  # O_NOFOLLOW refuses the link
    assert store.stamp(name) is not None  # something is there: damage, not absence

    store.write(name, b"{}")  # replaces the link; never writes through it
    assert not link.is_symlink()
    assert store.read(name) == b"{}"
    assert outside.read_bytes() == b'{"secret": "outside the store"}'

    link.unlink()
    link.symlink_to(outside)
    assert store.delete(name) is True  # removes the link, not what it points to
    assert not link.is_symlink()
    assert outside.read_bytes() == b'{"secret": "outside the store"}'


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_local_read_of_a_fifo_planted_as_an_entry_does_not_block(tmp_path: Path) -> None:
    root = tmp_path / "store"
    (root / "fn").mkdir(parents=True)
    os.mkfifo(root / "fn" / f"{KEY_A}.json")
    # In a subprocess: a read that blocked on the FIFO (no writer will ever come) would hang the
    # test run instead of failing it.
    code = textwrap.dedent(f"""
        from memo_replay.store.backend import LocalDirectory

        try:
            LocalDirectory({str(root)!r}).read({entry("fn")!r})
        except OSError as exc:
            print("raised", type(exc).__name__)
        else:
            print("returned")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("raised "), result.stdout
    assert LocalDirectory(root).stamp(entry("fn")) is not None


def test_local_directory_where_a_blob_should_be(tmp_path: Path) -> None:
    root = tmp_path / "store"
    (root / "fn" / f"{KEY_A}.json").mkdir(parents=True)
    store = LocalDirectory(root)
    with pytest.raises(OSError):  # noqa: PT011 - the type varies by platform
        store.read(entry("fn"))
    assert list(store.names("fn/")) == [entry("fn")]  # listed, so that verify() sees it
    [problem] = Store(root).verify()
    assert problem.kind == "corrupt"
    assert problem.path == root / "fn" / f"{KEY_A}.json"

    with pytest.raises(StoreError):  # a write cannot replace it, and leaves nothing behind
        store.write(entry("fn"), b"{}")
    assert sorted(os.listdir(root / "fn")) == [f"{KEY_A}.json"]


def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalDirectory(root)
    for data in (b"one", b"two", b"two", b""):
        store.write(entry("fn"), data)
    store.write(entry("fn", KEY_B), random.Random(2).randbytes(MB))
    store.write("top-level", b"stray")
    assert sorted(os.listdir(root)) == ["fn", "top-level"]
    assert sorted(os.listdir(root / "fn")) == [f"{KEY_A}.json", f"{KEY_B}.json"]
    assert (root / "fn" / f"{KEY_A}.json").read_bytes() == b""


def test_local_does_not_list_top_level_dot_names(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalDirectory(root)
    store.write(entry("fn"), b"{}")
    store.write(".cache/index.json", b"derived")
    store.write(".gitignore", b"*\n")
    store.write(".hidden.json", b"{}")
    assert list(store.names()) == [entry("fn")]
    assert list(store.names("fn/")) == [entry("fn")]


def test_local_names_do_not_descend_into_a_symlinked_function_directory(
        tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "fn"
    elsewhere.mkdir(parents=True)
    (elsewhere / f"{KEY_A}.json").write_bytes(b'{"from": "elsewhere"}')
    root = tmp_path / "store"
    store = LocalDirectory(root)
    store.write(entry("fn"), b"{}")
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    assert not [name for name in store.names() if name.startswith("linked/")]
    assert entry("fn") in list(store.names())


def test_local_names_with_a_prefix_do_not_descend_into_a_symlinked_directory(
        tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "fn"
    elsewhere.mkdir(parents=True)
    (elsewhere / f"{KEY_A}.json").write_bytes(b'{"from": "elsewhere"}')
    root = tmp_path / "store"
    root.mkdir()
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    store = LocalDirectory(root)
    assert list(store.names("linked/")) == []


# -- ReadOnly -----------------------------------------------------------------------------------


def test_read_only_passes_reads_and_refuses_changes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    inner = LocalDirectory(root)
    inner.write(entry("fn"), b'{"v": 1}')
    inner.write(entry("fn", KEY_B), b'{"v": 2}')
    before = tree(root)
    store = ReadOnly(LocalDirectory(root))

    assert store.location == str(root)
    assert store.read(entry("fn")) == b'{"v": 1}'
    with pytest.raises(BlobTooLarge):
        store.read(entry("fn"), limit=1)
    assert store.stamp(entry("fn")) == inner.stamp(entry("fn"))
    assert store.size(entry("fn")) == len(b'{"v": 1}')
    assert list(store.names()) == [entry("fn"), entry("fn", KEY_B)]
    assert store.where(entry("fn")) == inner.where(entry("fn"))
    assert store.read(entry("other")) is None

    for name in (entry("fn"), entry("new"), "fn/new.bin"):
        with pytest.raises(StoreError) as info:
            store.write(name, b"overwritten")
        assert "read-only" in str(info.value)
        assert str(root) in str(info.value)
    for name in (entry("fn"), entry("absent")):
        with pytest.raises(StoreError, match="read-only"):
            store.delete(name)
    assert tree(root) == before


# -- Tiered -------------------------------------------------------------------------------------


TIERS: dict[str, Callable[[Path], tuple[Backend, Backend]]] = {
    "local-local": lambda tmp: (LocalDirectory(tmp / "a"), LocalDirectory(tmp / "b")),
    "memory-local": lambda tmp: (InMemory(), LocalDirectory(tmp / "b")),
    "memory-memory": lambda tmp: (InMemory("memory://a"), InMemory("memory://b")),
}


@pytest.fixture(params=sorted(TIERS))
def tiers(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Backend, Backend]:
    """(first tier, second tier), both empty."""
    return TIERS[request.param](tmp_path)


def test_tiered_reads_fall_back_to_the_second_tier(tiers: tuple[Backend, Backend]) -> None:
    first, second = tiers
    tiered = Tiered(first, ReadOnly(second))
    second.write(entry("fn"), b"shared")
    assert tiered.read(entry("fn")) == b"shared"
    assert tiered.stamp(entry("fn")) is not None
    assert tiered.size(entry("fn")) == len(b"shared")
    assert tiered.where(entry("fn")) == second.where(entry("fn"))
    assert list(tiered.names()) == [entry("fn")]
    with pytest.raises(BlobTooLarge):
        tiered.read(entry("fn"), limit=1)
    assert tiered.location == first.location


def test_tiered_writes_and_deletes_in_the_first_tier_only(
        tiers: tuple[Backend, Backend]) -> None:
    first, second = tiers
    tiered = Tiered(first, second)
    tiered.write(entry("fn"), b"local")
    assert first.read(entry("fn")) == b"local"
    assert second.read(entry("fn")) is None

    second.write(entry("fn"), b"shared")
    second.write(entry("fn", KEY_B), b"shared only")
    assert tiered.delete(entry("fn")) is True
    assert first.read(entry("fn")) is None
    assert second.read(entry("fn")) == b"shared"
    assert tiered.read(entry("fn")) == b"shared"  # the second tier shows through again
    assert tiered.delete(entry("fn", KEY_B)) is False  # only in the second tier: left alone
    assert second.read(entry("fn", KEY_B)) == b"shared only"


def test_tiered_names_are_the_sorted_union_without_duplicates(
        tiers: tuple[Backend, Backend]) -> None:
    first, second = tiers
    for name in (entry("a"), entry("c"), entry("fn"), entry("fn", KEY_B)):
        first.write(name, b"1")
    for name in (entry("b"), entry("fn"), entry("zzz"), entry("c")):
        second.write(name, b"2")
    tiered = Tiered(first, second)
    union = sorted({entry("a"), entry("b"), entry("c"), entry("fn"), entry("fn", KEY_B),
                    entry("zzz")})
    assert list(tiered.names()) == union
    assert list(tiered.names("fn/")) == [entry("fn"), entry("fn", KEY_B)]
    assert list(tiered.names("c/")) == [entry("c")]


def test_tiered_reads_a_name_held_by_both_tiers_from_the_first(
        tiers: tuple[Backend, Backend]) -> None:
    first, second = tiers
    first.write(entry("fn"), b"local copy")
    second.write(entry("fn"), b"the shared one")
    tiered = Tiered(first, second)
    assert tiered.read(entry("fn")) == b"local copy"
    assert tiered.size(entry("fn")) == len(b"local copy")
    assert tiered.where(entry("fn")) == first.where(entry("fn"))


def test_tiered_stamps_of_the_same_bytes_in_different_tiers_differ() -> None:
    first, second = InMemory("memory://a"), InMemory("memory://b")
    tiered = Tiered(first, second)
    second.write(entry("fn"), b"same bytes")
    from_second = tiered.stamp(entry("fn"))
    first.write(entry("fn"), b"same bytes")
    assert first.stamp(entry("fn")) == second.stamp(entry("fn"))  # each tier's first write…
    from_first = tiered.stamp(entry("fn"))
    assert from_first is not None
    assert from_second is not None
    assert from_first != from_second  # …yet not the same blob: a cached copy must not match

    first.delete(entry("fn"))
    assert tiered.stamp(entry("fn")) == from_second


def test_tiered_lists_a_name_held_by_both_directories_once(tmp_path: Path) -> None:
    names = [entry("m.f"), entry("m.f._locals_.g")]
    for root in ("a", "b"):
        for name in names:
            LocalDirectory(tmp_path / root).write(name, b"{}")
    tiered = Tiered(LocalDirectory(tmp_path / "a"), LocalDirectory(tmp_path / "b"))
    assert sorted(tiered.names()) == sorted(names)


# -- a Store over tiers, and over other indexes -------------------------------------------------


@recorded(ignore=["log"])
def translate(text: str, log: list[str]) -> dict[str, str]:
    log.append(text)
    return {"text": text, "upper": text.upper()}


@recorded(ignore=["log"])
def draw(seed: int, log: list[str]) -> bytes:
    log.append(f"draw {seed}")
    return random.Random(seed).randbytes(200 * 1024)  # above 64 KiB: in a payload file


DOOR = {"text": "door", "upper": "DOOR"}
PICTURE = random.Random(7).randbytes(200 * 1024)


@pytest.fixture
def recorded_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store directory holding two real recordings: `translate("door")` (inline) and
    `draw(7)` (its payload in a file beside the entry)."""
    directory = tmp_path / "recorded"
    monkeypatch.setenv("MEMO_MODE", "auto")
    monkeypatch.setenv("MEMO_STORE", str(directory))
    log: list[str] = []
    assert translate("door", log) == DOOR
    assert draw(7, log) == PICTURE
    assert log == ["door", "draw 7"]
    return directory


def lookups() -> list[tuple[str, str, Any]]:
    """(function id, key, recorded value) of the two recordings of `recorded_store`."""
    return [(translate.memo.id, translate.memo.key("door", []), DOOR),
            (draw.memo.id, draw.memo.key(7, []), PICTURE)]


def test_a_store_replays_from_a_shared_read_only_tier_behind_an_empty_local_one(
        tmp_path: Path, recorded_store: Path) -> None:
    shared = tmp_path / "shared"
    for directory in recorded_store.iterdir():
        if directory.is_dir() and not directory.name.startswith("."):
            shutil.copytree(directory, shared / directory.name)
    assert len(list(shared.glob("*/*.bin"))) == 1
    before = tree(shared)
    local = tmp_path / "store"
    store = Store(local, backend=Tiered(LocalDirectory(local), ReadOnly(LocalDirectory(shared))))

    for function, key, value in lookups():
        for _ in range(2):  # read from the file, then from the index
            hit = store.lookup(function, key)
            assert hit is not None
            assert hit.payload.load(None, function=function) == value
        assert store.lookup(function, "0" * 32) is None
        assert store.entry_path(function, key).is_relative_to(shared)

    entries = {e.function: e for e in store.entries()}
    assert sorted(entries) == sorted([translate.memo.id, draw.memo.id])
    assert all(e.path.is_relative_to(shared) for e in entries.values())
    assert entries[translate.memo.id].load() == DOOR
    assert entries[draw.memo.id].load() == PICTURE
    assert entries[draw.memo.id].payload_file is not None
    assert [e.key for e in store.entries(translate.memo.id)] == [lookups()[0][1]]
    assert store.verify() == []
    assert store.stats().entries == 2

    assert tree(shared) == before  # the shared tier is only read, nothing copied locally
    assert [p for p in local.glob("*/*") if not p.parent.name.startswith(".")] == []


@pytest.mark.parametrize("index", [NoIndex, lambda: HotCache(0)], ids=["no-index", "hot-cache-0"])
def test_a_store_without_a_usable_index_reads_the_entry_files(
        recorded_store: Path, index: Callable[[], Any]) -> None:
    store = Store(recorded_store, index=index())
    for function, key, value in lookups():
        for _ in range(3):
            hit = store.lookup(function, key)
            assert hit is not None
            assert hit.payload.load(None, function=function) == value
    assert [e.load() for e in store.entries(translate.memo.id)] == [DOOR]
    assert store.verify() == []

    function, key, _ = lookups()[0]
    assert store.delete(key) is True  # nothing remembered answers for a deleted entry
    assert store.lookup(function, key) is None
