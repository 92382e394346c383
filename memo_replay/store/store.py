"""The store: recordings as entry files (the truth), over a backend, behind an index.

:class:`Store` owns what a recording is on disk — which name an entry has, when an identical
re-recording writes nothing, the payload file written before its entry and removed after it is
replaced, listing, statistics and removal; integrity checks and pruning are
:mod:`memo_replay.store.upkeep`'s, through its public methods. Where the bytes live is its
:mod:`backend <memo_replay.store.backend>`'s business; what it remembers of entries already read
is its :mod:`index <memo_replay.store.index>`'s (an in-memory hot cache in front of a diskcache
index in ``.cache/``); the record-once locks live in ``.cache/locks``, created on demand whether
or not an index could be opened. Every entry it reads goes through
:mod:`memo_replay.store.entry`'s reader.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memo_replay.config import DEFAULT_LOCK_TIMEOUT_S
from memo_replay.errors import CorruptEntry, StoreError, UnsupportedFormat
from memo_replay.store.backend import Backend, LocalDirectory, NotFollowed, Stamp
from memo_replay.store.entry import (
    MAX_ENTRY_BYTES,
    Entry,
    Hit,
    Listing,
    MissingPayload,
    Recording,
    Summary,
    parse_entry,
    parse_timestamp,
    read_document,
    read_envelope,
    read_hit,
    read_summary,
    render,
    same_recording,
)
from memo_replay.store.index import (
    INDEX_MAX_BYTES,
    INDEX_MIN_BYTES,
    Cached,
    DiskIndex,
    HotCache,
    Index,
    Layered,
    cache_directory,
    hot_cache_limit,
)
from memo_replay.store.layout import (
    entry_stem,
    function_dir_name,
    is_entry_file,
    payload_file_name,
    sibling,
    split,
)

if TYPE_CHECKING:
    from memo_replay.audit import Audit, Finding
    from memo_replay.store.catalog import StoreStats
    from memo_replay.store.locks import KeyLock
    from memo_replay.store.remote import RemoteTier
    from memo_replay.store.upkeep import Problem

ORPHAN_AGE_S = 3600.0
"""``prune(orphans=True)`` leaves files younger than this alone (``--older-than``): a payload
file is written an instant before its entry, and a temporary file belongs to a write in flight."""


def _located(path: Path) -> Path:
    """``path`` made absolute. A relative one is taken at the project root around the working
    directory (the nearest ``pyproject.toml``, else ``.git``, else the working directory), the
    place ``@recorded(store=...)`` puts it: ``Store("fixtures_store")`` in a script run from a
    subdirectory is the project's store, not an empty one beside the script."""
    if path.is_absolute():
        return path
    from memo_replay.project import find_root

    return Path(os.path.normpath(find_root(Path.cwd().resolve()) / path))


def _log() -> Any:
    import logging  # imported when there is something to say: it is not free at startup

    return logging.getLogger(__name__)


class Store:
    """A recording store directory (`fixtures_store/` by default): read its recordings,
    check them, remove them.

    `Store(path)` opens the directory (a relative `path` is taken at the project root; it
    need not exist yet). [`.memo.store`][memo_replay.Memo.store] is the store a recorded
    function uses. `backend` holds the files (default: the directory itself); `index`
    remembers entries already read (default: an in-memory hot cache in front of a diskcache
    index in `<path>/.cache`); `lock_timeout` is how long removing an entry waits for a
    recording of the same key in flight.

    ```pycon
    >>> import tempfile
    >>> from memo_replay import Store
    >>> store = Store(tempfile.mkdtemp())
    >>> list(store.entries()), store.stats().entries
    ([], 0)
    ```

    The command line does the same (`memo-replay ls`, `show`, `stats`, `verify`, `prune`):
    see [Inspecting the store](guides/inspecting.md).
    """

    def __init__(self, path: str | os.PathLike[str], *, backend: Backend | None = None,
                 index: Index | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
                 ) -> None:
        self.path = _located(Path(path))
        """The store directory, absolute (a relative ``path`` is taken at the project root)."""
        self.lock_timeout = lock_timeout
        """How long deleting an entry waits for a recording of the same key in flight."""
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(
                f"the memo_replay store {self.path} is a file, not a directory; point MEMO_STORE "
                f"or store= at a directory (it is created on the first recording)"
            )
        self.backend: Backend = LocalDirectory(self.path) if backend is None else backend
        self.hot_cache: HotCache | None = None
        """The in-memory hot cache of the default index (None with another index)."""
        if index is None:
            self.hot_cache = HotCache(hot_cache_limit())
            index = Layered(self.hot_cache, DiskIndex(str(self.path)))
        self.index: Index = index
        self._directories: dict[str, str] = {}
        self._locks: str | None = None
        """The lock directory, once created and found to be what it should be."""
        self.remote: RemoteTier | None = None
        """The shared tier consulted on a local miss (``remote = "s3://..."``), if any."""
        # Bound once: these run on every hit.
        self._stamp = self.backend.stamp
        self._peek = self.index.peek

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- the hot path ------------------------------------------------------------------------

    def entry_name(self, function: str, key: str) -> str:
        """The name of the entry of ``key`` (``<function directory>/<key>.json``)."""
        directory = self._directories.get(function)
        if directory is None:
            directory = self._directories[function] = function_dir_name(function) + "/"
        return f"{directory}{key}.json"

    def entry_path(self, function: str, key: str) -> Path:
        """Where the entry of ``key`` is (or would be)."""
        return Path(self.backend.where(self.entry_name(function, key)))

    def lookup(self, function: str, key: str) -> Hit | None:
        """The recording for `key`, or None. A damaged entry raises
        [`CorruptEntry`][memo_replay.CorruptEntry]."""
        name = self.entry_name(function, key)
        cached = self._peek(name)
        if cached is not None:
            stamp = self._stamp(name)
            if stamp is None:
                return None if self.remote is None else self.remote.lookup(name, function, key)
            if cached.stamp == stamp and (cached.payload_stamp is None or self._stamp(
                    sibling(name, payload_file_name(key, cached.hit.payload.checksum)))
                    == cached.payload_stamp):
                return cached.hit
        hit = self._read_hit(name, function, key)
        if hit is None and self.remote is not None:
            return self.remote.lookup(name, function, key)  # a local miss: the shared tier
        return hit

    def _read_hit(self, name: str, function: str, key: str) -> Hit | None:
        """Read the entry file (its bytes and their stamp in one look), check it and cache
        what it holds."""
        read = self._reader(name)
        found = self._raw_stamped(name)
        while found is not None:
            raw, stamp = found
            try:
                hit, payload_file = read_hit(self.backend.where(name), function, key, raw, read)
                break
            except MissingPayload as exc:
                found = self._reread(name, raw, exc)
        else:
            return None
        payload_stamp = None
        if payload_file is not None:
            payload_stamp = self._stamp(sibling(name, payload_file))
            if payload_stamp is None:
                return hit  # deleted since it was read: answer, but cache nothing
        self.index.note(name, Cached(stamp, payload_stamp, hit if hit.decoded is None
                                     else hit._replace(decoded=None)))
        return hit

    def _reread(self, name: str, raw: bytes, missing: MissingPayload
                ) -> tuple[bytes, Stamp] | None:
        """The entry again after its payload file was found missing: a concurrent re-record
        replaces the entry, then removes the old payload file. The payload is missing for real
        (re-raised) if the entry did not change."""
        again = self._raw_stamped(name)
        if again is not None and again[0] == raw:
            raise missing
        return again

    def _raw(self, name: str) -> bytes | None:
        """An entry file's bytes (None when absent); unreadable or oversized ones are
        :class:`CorruptEntry`."""
        found = self._raw_stamped(name)
        return None if found is None else found[0]

    def _raw_stamped(self, name: str) -> tuple[bytes, Stamp] | None:
        """:meth:`_raw`, and the stamp of the bytes read."""
        try:
            return self.backend.read_stamped(name, limit=MAX_ENTRY_BYTES)
        except OSError as exc:
            raise CorruptEntry(self.backend.where(name),
                               f"unreadable ({exc.strerror or exc})") from exc

    def _summary(self, name: str) -> tuple[int, Summary] | None:
        """The size of an entry file and its :class:`Summary` (its payload unchecked); None
        when it is absent."""
        raw = self._raw(name)
        if raw is None:
            return None
        return len(raw), read_summary(self.backend.where(name), entry_stem(name), raw)

    def _reader(self, name: str) -> Callable[[str], bytes | None]:
        def read_payload_file(file: str) -> bytes | None:
            data = self.backend.read(sibling(name, file))
            if data is None:  # not beside its entry: kept out of git (payloads = "remote")?
                return self._kept_payload(name, file)
            return data

        return read_payload_file

    def _kept_payload(self, name: str, file: str) -> bytes:
        """A payload file that is not beside its entry, from ``.cache/payloads/`` or the
        remote (see :func:`memo_replay.store.remote.kept_payload`); never reached while payload
        files are beside their entries."""
        from memo_replay.store.remote import kept_payload

        return kept_payload(str(self.path), self.backend.where(name), self.remote, name, file)

    # -- recording ---------------------------------------------------------------------------

    def save(self, recording: Recording, *, stale_before: float | None = None) -> Path:
        """Write the entry of ``recording`` atomically; an identical recording on disk is left
        byte-for-byte, unless it was recorded before ``stale_before`` (epoch seconds: it
        expired, and renewing its ``recorded_at`` is the point of re-recording it).

        A large binary payload is written to its payload file first, so the entry never names
        a file that does not exist yet; the payload file of the recording it replaces is
        removed after the entry is in place.
        """
        name = self.entry_name(recording.function, recording.key)
        location = self.backend.where(name)
        document = recording.document()
        existing = self._existing(name, location)
        if existing is not None and same_recording(existing[0], document) \
                and existing[1] and not _older(existing[0], stale_before):
            return Path(location)
        payload_file = recording.payload.in_file
        uploaded = False
        if payload_file is not None:
            file = payload_file_name(recording.key, recording.payload.checksum)
            if self.remote is not None and self.remote.payloads == "remote":
                self.remote.keep_payload(name, file, payload_file)  # out of git
                uploaded = True
            else:
                self.backend.write(sibling(name, file), payload_file)
        raw = render(document)
        self.backend.write(name, raw)
        previous = None if existing is None else existing[2]
        replaced = previous is not None and previous != document["result"].get("file")
        del document, existing  # a large payload's parse: not held while the index reads it
        if replaced:
            assert previous is not None
            self.backend.delete(sibling(name, previous))  # the payload of the one replaced
        self._remember(name, recording, raw)
        if self.remote is not None:
            self.remote.upload(name, raw, None if payload_file is None or uploaded else (
                payload_file_name(recording.key, recording.payload.checksum), payload_file))
        return Path(location)

    def _remember(self, name: str, recording: Recording, raw: bytes) -> None:
        """Put the entry just written in the index, exactly as reading it back would find it
        (the index is written when recording, never when replaying) — if it is large enough
        for the index to pay: below :data:`INDEX_MIN_BYTES`, reading the entry file costs
        what an index lookup does; above :data:`INDEX_MAX_BYTES`, the copy costs more than
        it saves."""
        payload_file = recording.payload.in_file
        size = len(raw) + (0 if payload_file is None else len(payload_file))
        if size < INDEX_MIN_BYTES or size > INDEX_MAX_BYTES:
            return
        stamp = self._stamp(name)
        if stamp is None:
            return  # replaced or deleted by another process already
        try:
            hit, file = read_hit(self.backend.where(name), recording.function, recording.key,
                                 raw, lambda _: payload_file)
        except CorruptEntry:
            return
        payload_stamp = None if file is None else self._stamp(sibling(name, file))
        if file is None or payload_stamp is not None:
            self.index.put(name, Cached(stamp, payload_stamp, hit._replace(decoded=None)))

    def _existing(self, name: str, location: str
                  ) -> tuple[Mapping[str, Any], bool, str | None] | None:
        """The entry now at ``name``: its document, whether it is fully readable (a damaged
        volatile field must be rewritten), and its payload file; None when absent or not even
        a document. One from a newer format raises :class:`UnsupportedFormat`: even in
        ``record`` mode, rewriting it in this older format would lose what a newer memo_replay
        wrote."""
        try:
            raw = self.backend.read(name, limit=MAX_ENTRY_BYTES)
        except OSError:
            return None  # unreadable: the write decides what happens
        if raw is None:
            return None
        try:
            document = read_document(location, raw)
        except UnsupportedFormat:
            raise
        except CorruptEntry:
            return None
        try:
            payload_file = read_envelope(location, entry_stem(name), document).payload_file
            parse_entry(location, name, raw, self._reader(name))
        except CorruptEntry:
            return document, False, None
        return document, True, payload_file

    def lock(self, function: str, key: str) -> KeyLock | None:
        """The record-once lock for ``key`` (None where the store cannot be written at all)."""
        directory = self._locks
        if directory is None or not _is_real_directory(directory):
            # Checked (and created) again whenever it is not there: .cache/ may be deleted.
            try:
                directory = os.path.join(cache_directory(str(self.path)), "locks")
                os.makedirs(directory, exist_ok=True)
            except NotFollowed as exc:
                raise StoreError(f"cannot lock `{function}` (key {key}) to record or delete "
                                 f"it: {exc}") from None
            except OSError:
                return None  # read-only: the write will fail with a clear StoreError
            self._locks = directory
        from memo_replay.store.locks import KeyLock  # recording only

        return KeyLock(os.path.join(directory, f"{key}.lock"), function=function, key=key)

    def close(self) -> None:
        """Close the index (it reopens on demand)."""
        self.index.close()

    # -- inspection --------------------------------------------------------------------------

    def entry_names(self, function: str | None = None) -> Iterator[str]:
        """Names of the entry files (of one function when given), sorted, unread."""
        prefix = "" if function is None else function_dir_name(function) + "/"
        return (name for name in self.backend.names(prefix) if is_entry_file(name))

    def entry_files(self, function: str | None = None) -> Iterator[Path]:
        """Paths of the entry files (of one function when given), sorted, unread."""
        for name in self.entry_names(function):
            yield Path(self.backend.where(name))

    def read(self, name: str) -> Entry | None:
        """The entry file ``name``, read and checked; None when another process deleted it
        since it was listed (a vanished entry is absent, not damaged)."""
        return self.read_with_bytes(name)[0]

    def read_with_bytes(self, name: str) -> tuple[Entry | None, bytes | None]:
        """What `read()` gives, and the entry file's bytes it parsed."""
        found = self._raw_stamped(name)
        while found is not None:
            raw = found[0]
            try:
                return parse_entry(self.backend.where(name), name, raw, self._reader(name)), raw
            except MissingPayload as exc:
                found = self._reread(name, raw, exc)
        return None, None

    def entries(self, function: str | None = None) -> Iterator[Entry]:
        """Every readable entry (of one function id, `module.qualname`, when given), sorted
        by name, each an [`Entry`][memo_replay.Entry].

        Damaged entries are skipped here (and logged); [`verify()`][memo_replay.Store.verify]
        reports them.
        """
        for name in self.entry_names(function):
            try:
                entry = self.read(name)
            except CorruptEntry as exc:
                _log().warning("%s", exc)
                continue
            if entry is not None and (function is None or entry.function == function):
                yield entry

    def listings(self, function: str | None = None) -> Iterator[Listing]:
        """What `memo-replay ls` shows of every entry (of one function when given), sorted
        by name: read from the layout memo_replay writes where it can be (fast, unchecked),
        else from the parsed entry, and remembered in the store's `.cache/catalog` for the
        next listing. Entries that cannot be read are skipped (and logged);
        [`verify()`][memo_replay.Store.verify] reports them."""
        from memo_replay.store.catalog import listings  # ls only: not loaded to replay

        return listings(self, function)

    def get(self, key: str) -> Entry | None:
        """The entry with this key (or a unique prefix of it), or None."""
        matches = [name for name in self.entry_names() if entry_stem(name).startswith(key)]
        if len(matches) != 1:
            return None
        return self.read(matches[0])

    # -- removing ----------------------------------------------------------------------------

    def delete(self, key: str) -> bool:
        """Remove the entry with this key (and its payload file); True when it was there."""
        removed = False
        for name in self.entry_names():
            if entry_stem(name) == key:
                removed = self.remove_named(name) or removed
        return removed

    def remove(self, entry: Entry) -> bool:
        """Remove ``entry`` (and its payload file); True when it was still there."""
        return self.remove_named(entry.name)

    def remove_named(self, name: str) -> bool:
        """Delete the entry file ``name`` and its payload file, holding the key's record-once
        lock (a re-recording of the same key in flight finishes first, so its new payload file
        is never removed under it); True when the entry was there."""
        with self._holding(name, entry_stem(name)):
            try:
                read = self._summary(name)
                payload_file = None if read is None else read[1].payload_file
            except CorruptEntry:
                payload_file = None  # unreadable: a payload file left behind is an orphan
            self.index.discard(name)
            if not self.backend.delete(name):
                return False  # another process deleted it first
            if payload_file is not None:
                self.backend.delete(sibling(name, payload_file))
            return True

    @contextlib.contextmanager
    def _holding(self, name: str, key: str) -> Iterator[None]:
        """Hold the record-once lock of ``key`` (nothing where the store is read-only)."""
        lock = self.lock(split(name)[0], key)
        if lock is None:
            yield
            return
        lock.acquire(self.lock_timeout)
        try:
            yield
        finally:
            lock.release()

    # -- reports -----------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        """Entries, bytes and ages per function (what `memo-replay stats` shows): `.entries`,
        `.bytes`, `.functions`, `.problems`. Fast: what each entry says about itself is read
        and remembered in the store's `.cache/catalog` for the next report; nothing is checked
        (`problems` counts entries whose summary cannot be read at all;
        [`verify()`][memo_replay.Store.verify] checks every entry)."""
        from memo_replay.store.catalog import stats  # reports only: not loaded to replay

        return stats(self)

    def audit(self) -> Audit:
        """Stale, gone, expired and unchecked entries (`.stale`, `.expired`, `.unchecked`: what
        `memo-replay ls --stale` reports). Imports the recorded functions' modules, but only
        those that resolve to the project's own source files; anything else is reported
        unchecked."""
        from memo_replay.audit import audit

        return audit(self)

    def stale(self) -> list[Finding]:
        """Entries whose function's code changed or whose function no longer exists (see
        [`audit()`][memo_replay.Store.audit])."""
        return self.audit().stale

    def expired(self) -> list[Finding]:
        """Entries older than their function's (or the project's) `ttl`."""
        return self.audit().expired

    def prune(self, *, stale: bool = False, expired: bool = False, orphans: bool = False,
              dry_run: bool = True, older_than: float = ORPHAN_AGE_S) -> list[Finding]:
        """Remove (or, with `dry_run=True`, the default, only list) stale or gone entries
        (`stale`), expired entries (`expired`) and files left by killed recordings
        (`orphans`: those older than `older_than` seconds). Returns what was (or would be)
        removed (`memo-replay prune` lists, `--yes` removes)."""
        from memo_replay.store.upkeep import prune  # maintenance: not loaded to replay

        return prune(self, stale=stale, expired=expired, orphans=orphans, dry_run=dry_run,
                     older_than=older_than)

    def verify(self) -> list[Problem]:
        """Integrity check of every file in the store: parse, checksum, placement, leftovers,
        and anything that is not what it should be. Returns the problems found (empty: all
        is well); `memo-replay verify` is the same."""
        from memo_replay.store.upkeep import verify

        return verify(self)


def _is_real_directory(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _older(document: Mapping[str, Any], threshold: float | None) -> bool:
    if threshold is None:
        return False
    try:
        when = parse_timestamp(str(document["recorded_at"]))
    except (KeyError, ValueError):
        return True
    return when.timestamp() < threshold


__all__ = ["ORPHAN_AGE_S", "Store"]
