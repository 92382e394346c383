"""The store directory: entry files as the truth, a diskcache index as the hot path.

Layout::

    fixtures_store/
      <module.qualname>/<key>.json     one committed entry per recording
      <module.qualname>/<key>.<checksum>.bin   a large binary payload, beside its entry
      .cache/                          diskcache index (ignores itself: holds a `*` .gitignore)

Entry files are written to a temporary file and renamed into place, so a reader never sees half
an entry. Re-recording a result identical to the one on disk writes nothing at all. The index is
derived data: each cached item remembers the (size, mtime_ns, inode) of the entry file it came
from and is used only while they still match, so a ``git pull``, a checkout, a hand edit or a
deleted ``.cache/`` never makes the store answer wrongly — and where the index cannot be created
(a read-only checkout) the store answers from the entry files alone.

In front of the index sits a small in-memory hot cache, validated the same way (one ``stat`` per
hit) and bounded in bytes (:data:`HOT_CACHE_BYTES`, ``MEMO_HOT_CACHE_MB``): replaying 100,000
entries in one process holds at most that much, whatever the store's size.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memo_replay.errors import CorruptEntry, StoreError, UnsupportedFormat
from memo_replay.store.entry import (
    FORMAT_VERSION,
    SIDECAR_SUFFIX,
    Entry,
    MissingPayload,
    Payload,
    parse_entry,
    render,
    same_recording,
    sidecar_name,
    sidecar_of,
    sidecar_path,
)
from memo_replay.store.locks import KeyLock

if TYPE_CHECKING:
    from memo_replay.store.audit import Audit, Finding



def _log() -> Any:
    import logging  # imported when there is something to say: it is not free at startup

    return logging.getLogger(__name__)

CACHE_DIR = ".cache"
HOT_CACHE_BYTES = 64 * 1024 * 1024
"""Default bound of the in-memory hot cache (payload bytes plus a per-item overhead)."""
_INDEX_MMAP_BYTES = 16 * 1024 * 1024
_INDEX_CACHE_PAGES = 2048  # sqlite pages (4 KiB): 8 MiB
_HOT_ITEM_OVERHEAD = 1024  # measured ~0.8 KiB per small item (key, tuples, Hit, Payload)
_TEMP_SUFFIX = ".tmp"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_KEY = re.compile(r"^[0-9a-f]{32}$")
_SIDECAR = re.compile(r"^([0-9a-f]{32})\.[0-9a-f]{16}" + re.escape(SIDECAR_SUFFIX) + "$")


def _file_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


@dataclass(frozen=True)
class Hit:
    """What a lookup returns: the payload, the original call's duration and when it was made."""

    payload: Payload
    duration_s: float
    recorded_at: float | None
    """Seconds since the epoch (None when the entry does not say)."""


@dataclass(frozen=True)
class FunctionStats:
    entries: int = 0
    bytes: int = 0
    oldest: dt.datetime | None = None
    newest: dt.datetime | None = None
    serializers: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreStats:
    entries: int
    bytes: int
    functions: Mapping[str, FunctionStats]
    problems: int


@dataclass(frozen=True)
class Problem:
    """Something :meth:`Store.verify` found, and what to do about it."""

    path: Path
    kind: str
    message: str
    fix: str


Signature = tuple[int, ...]
"""(size, mtime_ns, inode) of an entry file, followed by those of its payload file if it has one:
a cached hit is used only while every file it was read from is unchanged."""


def _sqlite_error() -> type[Exception]:
    import sqlite3  # diskcache has imported it by the time the index is used

    return sqlite3.Error


def _summarize(path: str) -> tuple[str, int, dt.datetime | None, str] | None:
    """(function, bytes on disk, recorded_at, serializer) of an entry file, read without
    checking its payload; None when it does not parse (or vanished)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            document = json.loads(os.read(fd, size + 1))
        finally:
            os.close(fd)
        function, result = document["function"], document["result"]
        serializer, when, beside = result["serializer"], document.get("recorded_at"), \
            result.get("file")
        if not isinstance(function, str) or not isinstance(serializer, str):
            return None
        if isinstance(beside, str) and beside == sidecar_name(
                os.path.basename(path)[:-5], str(result.get("checksum"))):
            size += os.stat(os.path.join(os.path.dirname(path), beside)).st_size
        recorded_at = dt.datetime.fromisoformat(when.replace("Z", "+00:00")) \
            if isinstance(when, str) else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return function, size, recorded_at, serializer


def _stat_signature(path: str) -> Signature | None:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _encode_cached(signature: Signature, hit: Hit) -> bytes:
    # A JSON header and the raw payload: never a pickle, so even a `.cache/` someone managed to
    # commit cannot run code when read.
    p = hit.payload
    header = json.dumps([list(signature), p.serializer, p.serializer_version, p.type, p.kind,
                         p.checksum, hit.duration_s, hit.recorded_at], separators=(",", ":"))
    data = p.data.encode() if isinstance(p.data, str) else p.data
    return header.encode() + b"\n" + data


def _decode_cached(raw: object) -> tuple[Signature, Hit] | None:
    """The signature a cached hit was read with, and the hit."""
    if not isinstance(raw, bytes):
        return None
    header_end = raw.find(b"\n")
    try:
        sig, serializer, version, type_, kind, checksum, duration, recorded_at = \
            json.loads(raw[:header_end])
    except ValueError:  # unreadable, or written by another version of this format
        return None
    body = raw[header_end + 1:]
    data: str | bytes = body if kind == "binary" else body.decode()
    return tuple(sig), Hit(Payload(serializer, version, type_, kind, data, checksum), duration,
                           recorded_at)


def _readable(path: Path, raw: bytes) -> bool:
    """True when ``raw`` parses as a valid entry (a damaged volatile field must be rewritten)."""
    try:
        parse_entry(path, raw)
    except CorruptEntry:
        return False
    return True


def _older(document: Mapping[str, Any], threshold: float | None) -> bool:
    if threshold is None:
        return False
    try:
        when = dt.datetime.fromisoformat(str(document["recorded_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return True
    return when.timestamp() < threshold


class _HotCache:
    """key → (entry file signature, hit), bounded in bytes; the oldest item leaves first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: dict[str, tuple[Signature, Hit, int]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[Signature, Hit] | None:
        item = self._items.get(key)
        return None if item is None else (item[0], item[1])

    def put(self, key: str, signature: Signature, hit: Hit) -> None:
        data = hit.payload.data
        size = len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())
        cost = size + _HOT_ITEM_OVERHEAD
        if cost > self.limit // 4:
            return  # one huge payload must not flush everything else
        with self._lock:
            self._drop(key)
            while self._items and self._size + cost > self.limit:
                self._drop(next(iter(self._items)))
            self._items[key] = (signature, hit, cost)
            self._size += cost

    def discard(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    def _drop(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._size -= item[2]

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size(self) -> int:
        """Bytes held (payloads plus a fixed overhead per item)."""
        return self._size


def _hot_cache_limit() -> int:
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


def function_dir_name(function: str) -> str:
    """The directory holding a function's entries (``<locals>`` and the like made safe)."""
    return _UNSAFE.sub("_", function)


class Store:
    """A recording store directory (``fixtures_store/`` by default).

    >>> import tempfile
    >>> store = Store(tempfile.mkdtemp())
    >>> list(store.entries()), store.stats().entries
    ([], 0)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(
                f"the memo_replay store {self.path} is a file, not a directory; point MEMO_STORE "
                f"or store= at a directory (it is created on the first recording)"
            )
        self._directories: dict[str, str] = {}
        self._locks_ready = False
        self._index: Any = None
        self._index_state = "unopened"  # "open", "unavailable"
        self._lock = threading.Lock()
        self._hot = _HotCache(_hot_cache_limit())

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- hot path ---------------------------------------------------------------------------

    def entry_path(self, function: str, key: str) -> Path:
        return Path(self._entry_file(function, key))

    def _entry_file(self, function: str, key: str) -> str:
        # Plain string joins: this runs on every hit, where pathlib's parsing would dominate.
        directory = self._directories.get(function)
        if directory is None:
            directory = self._directories[function] = os.path.join(
                self.path, function_dir_name(function))
        return f"{directory}{os.sep}{key}.json"

    def lookup(self, function: str, key: str) -> Hit | None:
        """The recording for ``key``, or None. A damaged entry raises :class:`CorruptEntry`."""
        path = self._entry_file(function, key)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        signature: Signature = (st.st_size, st.st_mtime_ns, st.st_ino)
        hot = self._hot.get(key)
        if hot is not None and (hot[0] == signature or self._unchanged(path, signature, *hot)):
            return hot[1]
        if self._open_index() is not None:
            cached = _decode_cached(self._index_call("get", key))
            if cached is not None and self._unchanged(path, signature, *cached):
                self._hot.put(key, *cached)
                return cached[1]
        entry = self._read(Path(path))
        if entry is None:
            return None
        hit = Hit(entry.payload, entry.duration_s,
                  None if entry.recorded_at is None else entry.recorded_at.timestamp())
        if entry.payload_file is not None:
            beside = _stat_signature(os.path.join(os.path.dirname(path), entry.payload_file))
            if beside is None:
                return hit  # deleted since it was read: answer, but cache nothing
            signature += beside
        self._remember(key, signature, hit)
        return hit

    @staticmethod
    def _unchanged(path: str, entry: Signature, cached: Signature, hit: Hit) -> bool:
        """True when the files ``hit`` was read from still have the cached signature."""
        if len(cached) == 3 or cached[:3] != entry:
            return cached == entry
        beside = os.path.join(os.path.dirname(path), sidecar_name(os.path.basename(path)[:-5],
                                                                  hit.payload.checksum))
        return _stat_signature(beside) == cached[3:]

    def save(self, function: str, key: str, document: Mapping[str, Any], *,
             payload: Payload | None = None, stale_before: float | None = None) -> Path:
        """Write an entry atomically; an identical recording on disk is left byte-for-byte,
        unless it was recorded before ``stale_before`` (epoch seconds: it expired, and renewing
        its ``recorded_at`` is the point of re-recording it).

        When the document names a payload file (a large binary payload), ``payload`` is
        written there first, so the entry never points at a file that does not exist yet;
        payload files of earlier recordings of the key are removed after the entry is in place.
        """
        path = self.entry_path(function, key)
        try:
            raw = path.read_bytes()
            existing = json.loads(raw)
        except (OSError, ValueError):  # absent or unreadable: the write decides what happens
            existing = None
        if isinstance(existing, dict) and isinstance(existing.get("format"), int) \
                and existing["format"] > FORMAT_VERSION:
            # Even in `record` mode: rewriting it in our older format would lose what the
            # newer memo_replay wrote. Upgrading is the way forward.
            raise UnsupportedFormat(path, existing["format"], FORMAT_VERSION)
        if isinstance(existing, dict) and same_recording(existing, document) \
                and _readable(path, raw) and not _older(existing, stale_before):
            return path
        sidecar = sidecar_of(document)
        if sidecar is not None:
            data = None if payload is None else payload.beside
            if data is None:
                raise ValueError(f"{path}: the entry names the payload file {sidecar}; pass "
                                 f"its payload to save()")
            self._atomic_write(path.parent / sidecar, data)
        self._atomic_write(path, render(document))
        previous = sidecar_path(path, existing)
        if previous is not None and previous.name != sidecar:
            with contextlib.suppress(FileNotFoundError):
                previous.unlink()  # the payload of the recording just replaced
        return path

    def _remove_entry(self, path: Path) -> bool:
        """Delete an entry file and its payload file; True when the entry was there."""
        try:
            payload_file = sidecar_path(path, json.loads(path.read_bytes()))
        except (OSError, ValueError):
            payload_file = None  # unreadable: a payload left behind is reported as an orphan
        try:
            path.unlink()
        except FileNotFoundError:
            return False  # another process deleted it first
        if payload_file is not None:
            with contextlib.suppress(FileNotFoundError):
                payload_file.unlink()
        return True

    def _atomic_write(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot record {path}: cannot create {path.parent} in the store "
                             f"{self.path}: {exc.strerror or exc}") from exc
        import tempfile

        try:
            fd, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=_TEMP_SUFFIX,
                                        dir=path.parent)
        except OSError as exc:  # a read-only checkout, a full disk: before anything was written
            raise StoreError(f"cannot write the recording {path}: {exc.strerror or exc}; "
                             f"nothing was written and existing entries are intact") from exc
        try:
            if hasattr(os, "fchmod"):  # not on Windows before Python 3.13
                os.fchmod(fd, _FILE_MODE)  # mkstemp makes 0600; entries are shared files
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, path)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                raise StoreError(f"cannot write the recording {path}: {exc.strerror or exc}; "
                                 f"nothing was written and existing entries are intact") from exc
            raise

    def _read(self, path: Path) -> Entry | None:
        """The entry at ``path``; None when another process deleted it since it was listed
        (or stat-ed) — a vanished entry is absent, not damaged."""
        raw = self._raw(path)
        while raw is not None:
            try:
                return parse_entry(path, raw)
            except MissingPayload:
                # A concurrent re-record replaces the entry, then removes the old payload file:
                # read the entry again; the payload is missing for real if it did not change.
                again = self._raw(path)
                if again == raw:
                    raise
                raw = again
        return None

    @staticmethod
    def _raw(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CorruptEntry(path, f"unreadable ({exc.strerror or exc})") from exc

    def lock(self, function: str, key: str) -> KeyLock | None:
        """The record-once lock for ``key`` (None where the store cannot be written at all)."""
        directory = os.path.join(self.path, CACHE_DIR, "locks")
        if not self._locks_ready:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                if self._open_index() is None:
                    return None
                os.makedirs(directory, exist_ok=True)
            except OSError:
                return None  # read-only: the write will fail with a clear StoreError
            self._locks_ready = True
        return KeyLock(os.path.join(directory, f"{key}.lock"), function=function, key=key)

    # -- the index ---------------------------------------------------------------------------

    def _open_index(self) -> Any:
        if self._index_state == "open":
            return self._index
        if self._index_state == "unavailable" or not self.path.is_dir():
            return None
        with self._lock:
            if self._index_state == "unopened":
                self._index = self._create_index()
                self._index_state = "open" if self._index is not None else "unavailable"
        return self._index

    def _create_index(self) -> Any:
        directory = self.path / CACHE_DIR
        try:
            directory.mkdir(exist_ok=True)
            ignore = directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# created by memo_replay: derived data, never commit it\n*\n")
            import diskcache

            # The index is read once per key per process (the hot cache answers after that):
            # a small sqlite budget keeps a process replaying 100,000 entries bounded.
            return diskcache.Cache(str(directory), eviction_policy="none",
                                   sqlite_mmap_size=_INDEX_MMAP_BYTES,
                                   sqlite_cache_size=_INDEX_CACHE_PAGES)
        except (OSError, _sqlite_error()) as exc:
            # A read-only checkout, a full disk: the entry files still answer every lookup.
            _log().info("memo_replay: no index for store %s (%s); reading entry files directly",
                     self.path, exc)
            return None

    def _index_call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._index, method)(*args)
        except (OSError, _sqlite_error()) as exc:
            _log().warning("memo_replay: index of store %s failed (%s); using entry files only",
                        self.path, exc)
            self._index_state = "unavailable"
            return None

    def _remember(self, key: str, signature: Signature, hit: Hit) -> None:
        self._hot.put(key, signature, hit)
        if self._open_index() is not None:
            self._index_call("set", key, _encode_cached(signature, hit))

    def _forget(self, key: str) -> None:
        self._hot.discard(key)
        if self._open_index() is not None:
            self._index_call("delete", key)

    def close(self) -> None:
        """Close the index (it reopens on demand)."""
        with self._lock:
            if self._index is not None:
                self._index.close()
            self._index, self._index_state = None, "unopened"

    # -- inspection --------------------------------------------------------------------------

    def entry_files(self, function: str | None = None) -> Iterator[Path]:
        """Paths of the entry files (of one function when given), sorted, unread."""
        for directory, names in self._listing(function):
            for name in names:
                yield directory / name

    def _listing(self, function: str | None = None) -> Iterator[tuple[Path, list[str]]]:
        """Each function directory and its entry file names, sorted (plain strings: sorting
        100,000 Path objects costs more than reading the directory)."""
        if not self.path.is_dir():
            return
        if function is not None:
            directories = [function_dir_name(function)]
        else:
            with os.scandir(self.path) as it:
                directories = sorted(e.name for e in it
                                     if e.is_dir() and not e.name.startswith("."))
        for name in directories:
            directory = self.path / name
            try:
                with os.scandir(directory) as it:
                    names = sorted(e.name for e in it
                                   if e.name.endswith(".json") and not e.name.startswith("."))
            except (FileNotFoundError, NotADirectoryError):
                continue
            yield directory, names

    def entries(self, function: str | None = None) -> Iterator[Entry]:
        """Every readable entry (of one function when given), sorted by path.

        Damaged entries are skipped here (and logged); :meth:`verify` reports them.
        """
        for path in self.entry_files(function):
            try:
                entry = self._read(path)
            except CorruptEntry as exc:
                _log().warning("%s", exc)
                continue
            if entry is not None and (function is None or entry.function == function):
                yield entry

    def get(self, key: str) -> Entry | None:
        """The entry with this key (or a unique prefix of it), or None."""
        matches = [p for p in self.entry_files() if p.stem.startswith(key)]
        if len(matches) != 1:
            return None
        return self._read(matches[0])

    def delete(self, key: str) -> bool:
        """Remove the entry with this key; True when something was removed."""
        removed = False
        for path in self.entry_files():
            if path.stem == key:
                removed = self._remove_entry(path) or removed
        if removed:
            self._forget(key)
        return removed

    def stats(self) -> StoreStats:
        """Entries, bytes and ages per function. Fast: each entry's envelope is read, its
        payload is not checked (``problems`` counts entries that do not even parse; use
        :meth:`verify` for checksums and placement)."""
        per_function: dict[str, dict[str, Any]] = {}
        problems = 0
        for directory, names in self._listing():
            for name in names:
                path = os.path.join(directory, name)
                summary = _summarize(path)
                if summary is None:
                    problems += 1
                    continue
                function, size, recorded_at, serializer = summary
                s = per_function.setdefault(function, {"entries": 0, "bytes": 0, "dates": [],
                                                       "serializers": {}})
                s["entries"] += 1
                s["bytes"] += size
                if recorded_at is not None:
                    s["dates"].append(recorded_at)
                s["serializers"][serializer] = s["serializers"].get(serializer, 0) + 1
        functions = {
            name: FunctionStats(
                entries=s["entries"], bytes=s["bytes"],
                oldest=min(s["dates"], default=None), newest=max(s["dates"], default=None),
                serializers=dict(sorted(s["serializers"].items())),
            )
            for name, s in sorted(per_function.items())
        }
        return StoreStats(
            entries=sum(f.entries for f in functions.values()),
            bytes=sum(f.bytes for f in functions.values()),
            functions=functions,
            problems=problems,
        )

    def audit(self) -> Audit:
        """Stale, gone, expired and unchecked entries (imports the recorded functions)."""
        from memo_replay.store.audit import audit

        return audit(self)

    def stale(self) -> list[Finding]:
        """Entries whose function's code changed or whose function no longer exists."""
        return self.audit().stale

    def expired(self) -> list[Finding]:
        """Entries older than their function's (or the project's) ``ttl``."""
        return self.audit().expired

    def prune(self, *, stale: bool = False, expired: bool = False, orphans: bool = False,
              dry_run: bool = True) -> list[Finding]:
        """Remove (or, by default, only list) stale/gone entries, expired entries and files
        left by killed recordings. Entries that cannot be checked are never removed."""
        from memo_replay.store.audit import Finding

        findings: list[Finding] = []
        if stale or expired:
            report = self.audit()
            findings += (report.stale if stale else []) + (report.expired if expired else [])
        if orphans:
            findings += [Finding(p.path, "orphan", p.message) for p in self.verify()
                         if p.kind == "orphan"]
        by_path: dict[Path, Finding] = {}
        for finding in findings:  # an entry both stale and expired is reported as stale
            by_path.setdefault(finding.path, finding)
        unique = list(by_path.values())
        if not dry_run:
            for finding in unique:
                if finding.reason == "orphan":
                    with contextlib.suppress(FileNotFoundError):
                        finding.path.unlink()
                else:
                    self._remove_entry(finding.path)
                if finding.key is not None:
                    self._forget(finding.key)
        return unique

    def verify(self) -> list[Problem]:
        """Integrity check of every file in the store: parse, checksum, placement, leftovers."""
        problems: list[Problem] = []
        if not self.path.is_dir():
            return problems
        for directory in sorted(p for p in self.path.iterdir() if not p.name.startswith(".")):
            if not directory.is_dir():
                problems.append(Problem(directory, "stray", "a file at the top of the store",
                                        "move or delete it"))
                continue
            referenced: set[str] = set()  # payload files in use, and keys of damaged entries
            files = sorted(directory.iterdir())
            for path in files:  # entries first: they say which payload files are in use
                if not _SIDECAR.match(path.name):
                    problems.extend(self._check(directory, path, referenced))
            problems.extend(
                Problem(path, "orphan", "a payload file no entry refers to (left by an "
                        "interrupted recording or a deleted entry)", "delete it")
                for path in files if (match := _SIDECAR.match(path.name))
                and path.name not in referenced and match.group(1) not in referenced)
        return sorted(problems, key=lambda p: p.path)

    def _check(self, directory: Path, path: Path, referenced: set[str]) -> list[Problem]:
        if path.name.endswith(_TEMP_SUFFIX):
            return [Problem(path, "orphan", "a temporary file left by an interrupted recording",
                            "delete it")]
        if path.suffix != ".json" or not _KEY.match(path.stem):
            return [Problem(path, "stray", "not an entry file", "move or delete it")]
        try:
            entry = self._read(path)
        except (UnsupportedFormat, CorruptEntry) as exc:
            # The payload files of an entry that cannot be read go with it, not as orphans.
            referenced.add(path.stem)
            if isinstance(exc, UnsupportedFormat):
                return [Problem(path, "newer-format", exc.reason,
                                "upgrade memo_replay (pip install -U memo-replay) to read it")]
            return [Problem(path, "corrupt", exc.reason,
                            "re-record it with MEMO_MODE=record, or delete it")]
        if entry is None:
            return []
        if entry.payload_file is not None:
            referenced.add(entry.payload_file)
        if function_dir_name(entry.function) != directory.name:
            return [Problem(path, "misplaced", f"entry of `{entry.function}` in {directory.name}/",
                            f"move it to {function_dir_name(entry.function)}/")]
        return []
