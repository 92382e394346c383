"""What a store remembers of entries it has read: the hot path in front of the entry files.

An index maps an entry's name to a :class:`Cached` item — the :class:`~memo_replay.store.entry.
Hit` read from it and the stamps of the files it was read from — and hands it back only while
the entry file's stamp is unchanged (the store checks the payload file's stamp too). It is
derived data: a ``git pull``, a checkout, a hand edit or a deleted ``.cache/`` never makes the
store answer wrongly, and a store with no index at all answers from the entry files.

Implementations: :class:`HotCache` (in memory, bounded in bytes: ``MEMO_HOT_CACHE_MB``),
:class:`DiskIndex` (a ``diskcache.Cache`` in the store's git-ignored ``.cache/``, shared by the
processes of one checkout), :class:`NoIndex`, and :class:`Layered` (a fast index in front of a
slower one). ``put`` remembers an entry just recorded, ``note`` one just read: the disk index
takes the first and ignores the second, so a replay never writes SQLite (or creates
``.cache/``); the store puts only entries large enough for the index to pay. Items are stored
as a versioned JSON header (:data:`HEADER_FIELDS`) followed by the
raw payload — never a pickle.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import os
import stat
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from xxhash import xxh3_128_hexdigest

from memo_replay.errors import StoreError
from memo_replay.keys.observed import Observed
from memo_replay.store.backend import NotFollowed, Stamp
from memo_replay.store.entry import Hit, Payload, duration

CACHE_DIR = ".cache"
"""The store's git-ignored directory of derived data: the index and the record-once locks."""
INDEX_MIN_BYTES = 4096
"""Entries (with their payload file) smaller than this are not put in the disk index: a lookup
of a 1 KiB entry costs the same from the index as from its file; writing an index row costs a
recording ~90 µs."""
INDEX_MAX_BYTES = 16 * 1024 * 1024
"""Nor are entries larger than this: their payload file reads at disk speed and its checksum at
~10 GB/s, so an index copy would save little, and it would double their disk space and, while
it is encoded, the recording's memory (a 50 MB stream of audio chunks)."""
INDEX_OPEN_AFTER_BYTES = 4 * 1024 * 1024
"""A process opens the disk index for lookups once it has read this many bytes of entries of
:data:`INDEX_MIN_BYTES` or more from their files (or when it records). Opening it costs ~13 ms
here (diskcache and sqlite3 are imported); a lookup from it saves ~2 ms per MB read against the
entry files (1,000 replays of 9 KB entries: 96 ms with the index, 102 ms without, 43 vs 56 ms
for 10), so below a few MB a replay is faster without it."""
CACHED_VERSION = 4
"""Version of the cached item's header; items of another version are ignored."""
HOT_CACHE_BYTES = 64 * 1024 * 1024
"""Default bound of the in-memory hot cache (payload bytes plus a per-item overhead)."""
_INDEX_MMAP_BYTES = 16 * 1024 * 1024
_INDEX_CACHE_PAGES = 2048  # sqlite pages (4 KiB): 8 MiB
_HOT_ITEM_OVERHEAD = 1024  # measured ~0.8 KiB per small item (key, tuples, Hit, Payload)


def _log() -> Any:
    import logging  # imported when there is something to say: it is not free at startup

    return logging.getLogger(__name__)


class Cached(NamedTuple):
    """An entry as last read: the hit, and the stamps of the files it came from."""

    stamp: Stamp
    """The entry file's stamp when it was read."""
    payload_stamp: Stamp | None
    """The stamp of its payload file (large binary payloads), else None."""
    hit: Hit


class Index(Protocol):
    """Cached hits by entry name (see the module docstring)."""

    def get(self, name: str, stamp: Stamp) -> Cached | None:
        """The item cached for ``name``, only if it was read from an entry with ``stamp``."""

    def peek(self, name: str) -> Cached | None:
        """The item cached for ``name`` whatever its stamp (the caller checks it): asking
        first spares a lookup that finds nothing the ``stat`` a stamp costs."""

    def put(self, name: str, cached: Cached) -> None:
        """Remember an entry just recorded (``cached`` is what reading it back gives)."""

    def note(self, name: str, cached: Cached) -> None:
        """Remember an entry just read, where that is cheaper than reading it again."""

    def discard(self, name: str) -> None: ...

    def close(self) -> None: ...


class NoIndex:
    """Remembers nothing: every lookup reads the entry file."""

    def get(self, name: str, stamp: Stamp) -> Cached | None:
        return None

    def peek(self, name: str) -> Cached | None:
        return None

    def put(self, name: str, cached: Cached) -> None:
        pass

    def note(self, name: str, cached: Cached) -> None:
        pass

    def discard(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass


class HotCache:
    """name → cached item in memory, bounded in bytes; the oldest item leaves first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: dict[str, tuple[Cached, int]] = {}
        self._size = 0
        self._lock = _thread.allocate_lock()

    def get(self, name: str, stamp: Stamp) -> Cached | None:
        item = self._items.get(name)
        return item[0] if item is not None and item[0].stamp == stamp else None

    def peek(self, name: str) -> Cached | None:
        item = self._items.get(name)
        return None if item is None else item[0]

    def put(self, name: str, cached: Cached) -> None:
        data = cached.hit.payload.data
        size = len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())
        cost = size + _HOT_ITEM_OVERHEAD
        if cost > self.limit // 4:
            return  # one huge payload must not flush everything else
        with self._lock:
            self._drop(name)
            while self._items and self._size + cost > self.limit:
                self._drop(next(iter(self._items)))
            self._items[name] = (cached, cost)
            self._size += cost

    def note(self, name: str, cached: Cached) -> None:
        self.put(name, cached)

    def discard(self, name: str) -> None:
        with self._lock:
            self._drop(name)

    def close(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0

    def _drop(self, name: str) -> None:
        item = self._items.pop(name, None)
        if item is not None:
            self._size -= item[1]

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[Cached]:
        """What is held now, oldest first."""
        return [cached for cached, _ in self._items.values()]

    @property
    def size(self) -> int:
        """Bytes held (payloads plus a fixed overhead per item)."""
        return self._size


def hot_cache_limit() -> int:
    """The hot cache's bound in bytes, from ``MEMO_HOT_CACHE_MB`` (default 64 MiB)."""
    value = os.environ.get("MEMO_HOT_CACHE_MB")
    if not value:
        return HOT_CACHE_BYTES
    try:
        megabytes = float(value)
        if not 0 <= megabytes < 1024 * 1024:  # also refuses nan and inf
            raise ValueError(value)
    except ValueError:
        raise StoreError(f"invalid MEMO_HOT_CACHE_MB={value!r}: use a number of megabytes "
                         f"(0 turns the in-memory hot cache off)") from None
    return int(megabytes * 1024 * 1024)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def cache_directory(store_root: str) -> str:
    """The store's ``.cache/`` directory, created (with a ``.gitignore`` ignoring everything)
    when missing; raises OSError where it cannot be (a read-only checkout), and
    :class:`~memo_replay.store.backend.NotFollowed` where ``.cache`` or a file memo_replay
    keeps in it is a symlink or not what it should be (a store from a pull request: nothing is
    created or opened through it)."""
    directory = os.path.join(store_root, CACHE_DIR)
    os.makedirs(directory, exist_ok=True)
    check_cache_directory(directory)
    ignore = os.path.join(directory, ".gitignore")
    try:
        fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)
    except FileExistsError:
        return directory
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# created by memo_replay: derived data, never commit it\n*\n")
    return directory


def check_cache_directory(directory: str) -> None:
    """Raise :class:`~memo_replay.store.backend.NotFollowed` unless ``directory`` (a store's
    ``.cache``) and what memo_replay keeps in it are real directories and files."""
    _require(directory, stat.S_ISDIR, "a directory")
    for name in ("cache.db", "cache.db-wal", "cache.db-shm", "locks", ".gitignore"):
        _require(os.path.join(directory, name), stat.S_ISDIR if name == "locks"
                 else stat.S_ISREG, "a directory" if name == "locks" else "a file",
                 missing_ok=True)


def _require(path: str, is_kind: Callable[[int], bool], kind: str, *,
             missing_ok: bool = False) -> None:
    """Refuse ``path`` unless it is ``kind`` itself (not a symlink to one)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    if not is_kind(mode):
        raise NotFollowed(f"{path} should be {kind} but is "
                          f"{'a symbolic link' if stat.S_ISLNK(mode) else 'something else'}; "
                          f"memo_replay never follows links in a store. Delete it (the .cache/ "
                          f"directory is derived data, safe to delete)")


def _sqlite_error() -> type[Exception]:
    import sqlite3  # diskcache has imported it by the time the index is used

    return sqlite3.Error


class DiskIndex:
    """A ``diskcache.Cache`` in ``<store>/.cache``, opened on first use. Where it cannot be
    opened or fails, it turns itself off (with a log line) and the entry files answer."""

    def __init__(self, store_root: str) -> None:
        self.store_root = store_root
        self._cache: Any = None
        self._state = "unopened"  # "open", "absent" (no database to read), "unavailable"
        self._lock = _thread.allocate_lock()
        self._read_from_files = 0
        """Bytes of large entries this process read from their files (see :meth:`peek`)."""

    def _open(self, create: bool) -> Any:
        """The cache, opened on first use; created only to write (``create``): a lookup in a
        checkout without an index (a fresh clone) never builds one."""
        state = self._state
        if state == "open":
            return self._cache
        if state == "unavailable" or (state == "absent" and not create) \
                or not os.path.isdir(self.store_root):
            return None  # nothing recorded yet: no reason to create the store for an index
        with self._lock:
            if self._state in ("unopened", "absent"):
                if not create and not os.path.exists(
                        os.path.join(self.store_root, CACHE_DIR, "cache.db")):
                    self._state = "absent"
                    return None
                self._cache = self._create()
                self._state = "open" if self._cache is not None else "unavailable"
        return self._cache

    def _create(self) -> Any:
        try:
            directory = cache_directory(self.store_root)
            import diskcache

            # The index is read once per key per process (the hot cache answers after that):
            # a small sqlite budget keeps a process replaying 100,000 entries bounded.
            return diskcache.Cache(directory, eviction_policy="none", disk=_plain_disk(),
                                   sqlite_mmap_size=_INDEX_MMAP_BYTES,
                                   sqlite_cache_size=_INDEX_CACHE_PAGES)
        except NotFollowed as exc:
            from memo_replay.errors import warn

            warn(f"memo_replay: the index of store {self.store_root} is not used: {exc}")
            return None
        except (OSError, _sqlite_error()) as exc:
            # A read-only checkout, a full disk: the entry files still answer every lookup.
            _log().info("memo_replay: no index for store %s (%s); reading entry files directly",
                        self.store_root, exc)
            return None

    def _call(self, method: str, *args: Any, create: bool = False) -> Any:
        cache = self._open(create)
        if cache is None:
            return None
        try:
            return getattr(cache, method)(*args)
        except HostileIndex as exc:
            from memo_replay.errors import warn

            warn(f"memo_replay: the index {self.store_root}/{CACHE_DIR} held a row memo_replay "
                 f"never writes ({exc}); it was dropped and is rebuilt as entries are recorded "
                 f"(lookups read the entry files). "
                 f"Nothing was read from it; if the store came from a pull request, check "
                 f"who added a .cache/ to it.")
            self._drop()
            return None
        except (OSError, _sqlite_error()) as exc:
            _log().warning("memo_replay: index of store %s failed (%s); using entry files only",
                           self.store_root, exc)
            self._state = "unavailable"
            return None

    def get(self, name: str, stamp: Stamp) -> Cached | None:
        cached = self.peek(name)
        return cached if cached is not None and cached.stamp == stamp else None

    def peek(self, name: str) -> Cached | None:
        """The item of ``name``, if the database is open or worth opening: a process that has
        read less than :data:`INDEX_OPEN_AFTER_BYTES` of large entries from their files (most
        replays: a CI process reading a fresh clone's recordings once) never pays for opening
        it — importing diskcache and sqlite3 costs more than the index would save them."""
        if self._state != "open" and self._read_from_files < INDEX_OPEN_AFTER_BYTES:
            return None
        return decode(self._call("get", name))

    def put(self, name: str, cached: Cached) -> None:
        self._call("set", name, encode(cached), create=True)

    def note(self, name: str, cached: Cached) -> None:
        """Only counted: a replay never writes the database (one SQLite transaction per entry
        read cost more than reading the entry file saves, even in the next run)."""
        size = len(cached.hit.payload.data)
        if size >= INDEX_MIN_BYTES:
            self._read_from_files += size

    def discard(self, name: str) -> None:
        self._call("delete", name)

    def close(self) -> None:
        with self._lock:
            if self._cache is not None:
                self._cache.close()
            self._cache, self._state = None, "unopened"

    def _drop(self) -> None:
        """Delete the index database (it is derived data); the next use creates a new one."""
        self.close()
        directory = os.path.join(self.store_root, CACHE_DIR)
        for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))


class HostileIndex(Exception):
    """An index row memo_replay never writes: pickled, text, or naming a file outside the
    index directory. It is refused unread."""


_PLAIN_DISK: Any = None


def _plain_disk() -> Any:
    """A ``diskcache.Disk`` that only returns bytes memo_replay wrote: a row in pickle or text
    mode, or whose value file is not a plain file inside the index directory, is refused
    (:class:`HostileIndex`) before anything is read — a ``.cache/`` committed to a pull request
    must not run code or read a file."""
    global _PLAIN_DISK
    import diskcache

    if _PLAIN_DISK is not None and issubclass(_PLAIN_DISK, diskcache.Disk):
        return _PLAIN_DISK  # (unless diskcache was re-imported since: a fresh subclass then)
    from diskcache.core import MODE_BINARY, MODE_RAW

    class PlainDisk(diskcache.Disk):  # type: ignore[misc]
        def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
            if mode not in (MODE_RAW, MODE_BINARY) or read:
                raise HostileIndex(f"a row stored in diskcache mode {mode}")
            if filename is not None:
                directory = os.path.realpath(self._directory)
                path = os.path.join(directory, filename)
                if os.path.isabs(filename) or os.path.realpath(path) != os.path.normpath(path) \
                        or not os.path.normpath(path).startswith(directory + os.sep):
                    raise HostileIndex(f"a row naming the file {filename!r}")
                try:
                    regular = stat.S_ISREG(os.lstat(path).st_mode)
                except OSError:
                    regular = False
                if not regular:
                    raise HostileIndex(f"a row naming {filename!r}, not a plain file")
            return super().fetch(mode, filename, value, read)

    _PLAIN_DISK = PlainDisk
    return PlainDisk


class Layered:
    """A fast index in front of a slow one: what the slow one finds is promoted."""

    def __init__(self, fast: Index, slow: Index) -> None:
        self.fast = fast
        self.slow = slow
        self._fast_get = fast.get  # bound once: every hit asks
        self._fast_peek = fast.peek

    def get(self, name: str, stamp: Stamp) -> Cached | None:
        cached = self._fast_get(name, stamp)
        if cached is None:
            cached = self.slow.get(name, stamp)
            if cached is not None:
                self.fast.put(name, cached)
        return cached

    def peek(self, name: str) -> Cached | None:
        cached = self._fast_peek(name)
        if cached is None:
            cached = self.slow.peek(name)
            if cached is not None:
                self.fast.put(name, cached)  # promoted: the caller checks its stamp
        return cached

    def put(self, name: str, cached: Cached) -> None:
        self.fast.put(name, cached)
        self.slow.put(name, cached)

    def note(self, name: str, cached: Cached) -> None:
        self.fast.note(name, cached)
        self.slow.note(name, cached)

    def discard(self, name: str) -> None:
        self.fast.discard(name)
        self.slow.discard(name)

    def close(self) -> None:
        self.fast.close()
        self.slow.close()


HEADER_FIELDS = ("version", "stamp", "payload_stamp", "serializer", "serializer_version", "type",
                 "kind", "checksum", "duration_s", "recorded_at", "observed", "offsets_ms")
"""The cached item's header, in order: a JSON array (parsing an object with these names costs
measurably more on the path of a second run over a checkout, once per entry)."""


def encode(cached: Cached) -> bytes:
    """The :data:`HEADER_FIELDS` as a JSON array, a newline, then the raw payload: never a
    pickle, so even a ``.cache/`` someone managed to commit cannot run code when read."""
    hit, p = cached.hit, cached.hit.payload
    header = json.dumps([
        CACHED_VERSION, list(cached.stamp),
        None if cached.payload_stamp is None else list(cached.payload_stamp),
        p.serializer, p.serializer_version, p.type, p.kind, p.checksum, hit.duration_s,
        hit.recorded_at, None if hit.observed is None else hit.observed.document(),
        hit.offsets_ms,
    ], separators=(",", ":"))
    data = p.data.encode() if isinstance(p.data, str) else p.data
    return header.encode() + b"\n" + data


def decode(raw: object) -> Cached | None:
    """The item :func:`encode` wrote; None for anything else (another version, damage)."""
    if not isinstance(raw, bytes):
        return None
    header_end = raw.find(b"\n")
    try:
        version, stamp, payload_stamp, serializer, serializer_version, type_, kind, checksum, \
            duration_s, recorded_at, observed, offsets_ms = json.loads(raw[:header_end])
        if version != CACHED_VERSION or not isinstance(recorded_at, (str, type(None))) \
                or not isinstance(offsets_ms, (str, type(None))):
            return None
        if observed is not None:
            observed = Observed.from_document(observed)
        body = raw[header_end + 1:]
        if xxh3_128_hexdigest(body) != checksum:
            return None  # damaged: the entry file answers
        data: str | bytes = body if kind == "binary" else body.decode()
        return Cached(tuple(stamp), None if payload_stamp is None else tuple(payload_stamp),
                      Hit(Payload(serializer, serializer_version, type_, kind, data, checksum),
                          duration(duration_s), recorded_at, observed, None, offsets_ms))
    except (ValueError, TypeError, AttributeError):
        return None


__all__ = ["CACHED_VERSION", "CACHE_DIR", "HOT_CACHE_BYTES", "INDEX_MIN_BYTES",
           "INDEX_OPEN_AFTER_BYTES", "Cached", "DiskIndex", "HotCache",
           "Index", "Layered", "NoIndex", "cache_directory", "hot_cache_limit"]
