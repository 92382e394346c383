"""``memo-replay push``, ``pull`` and ``remote ls``/``stats``: moving recordings between the
local store and its remote (``s3://bucket/prefix``), on explicit request.

- **push** uploads the local entries the remote lacks (payload file first, then the entry),
  each one read and verified locally first (a damaged entry is never shared), with the
  bucket's write-once write: an object already there is never overwritten.
- **pull** materializes the remote entries the local store lacks into the tracked store, for
  committing. A remote object is untrusted input: it goes through the same entry reader as a
  local entry (format, checksum, key, payload file) and must sit in its function's directory;
  one that fails is reported and skipped. A pulled entry is written with the store's atomic
  write, payload file first, holding the key's record-once lock, and only when the local store
  still lacks that name: a local entry is never overwritten. With ``payloads = "remote"`` only
  the entry is written into the store; its payload file, verified too, is kept in the
  git-ignored ``.cache/payloads/`` (so the clone replays offline right after a pull).
- **ls**/**stats** read the bucket's listing only (names and sizes: no request per object).

Transfers run on a thread pool (``jobs``); ``progress(done, total)`` is called after each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from memo_replay.errors import ConfigError, CorruptEntry, RemoteError, RemoteUnavailable
from memo_replay.store.entry import MAX_ENTRY_BYTES, parse_entry, read_document, same_recording
from memo_replay.store.layout import (
    function_dir_name,
    is_entry_file,
    key_of,
    payload_file_key,
    sibling,
    split,
)
from memo_replay.store.remote import payload_cache, payload_reader

if TYPE_CHECKING:
    from memo_replay.config import RemoteMode
    from memo_replay.store.s3 import S3Bucket
    from memo_replay.store.store import Store

DEFAULT_JOBS = 8

Status = Literal["upload", "uploaded", "present", "download", "downloaded", "refused",
                 "damaged", "kept", "failed"]
PROBLEMS: frozenset[str] = frozenset({"refused", "damaged", "kept", "failed"})
"""Statuses that make ``push``/``pull`` exit 1."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Remote:
    """The remote a store is configured with, and its bucket."""

    url: str
    mode: RemoteMode
    bucket: S3Bucket


@dataclass(frozen=True)
class Transfer:
    """One entry pushed or pulled (or that would be, in a dry run)."""

    name: str
    function: str
    key: str
    status: Status
    bytes: int = 0
    detail: str = ""

    def document(self) -> dict[str, object]:
        return {"name": self.name, "function": self.function, "key": self.key,
                "status": self.status, "bytes": self.bytes, "detail": self.detail}


@dataclass
class FunctionStats:
    entries: int = 0
    payload_files: int = 0
    other: int = 0
    bytes: int = 0


@dataclass
class RemoteStats:
    entries: int = 0
    bytes: int = 0
    other: int = 0
    """Objects under the prefix that are neither entries nor payload files."""
    functions: dict[str, FunctionStats] = field(default_factory=dict)


def remote_of(store: Store) -> Remote:
    """The remote of the project around ``store`` (``MEMO_REMOTE``, else ``[tool.memo_replay]
    remote``); a :class:`~memo_replay.errors.ConfigError` saying how to set one when there is
    none."""
    from memo_replay.config import remote_setting, remote_timeout_setting
    from memo_replay.project import find_root, project_config

    config = project_config(find_root(store.path.resolve()))
    setting = remote_setting(config)
    if setting is None:
        raise ConfigError(
            "no remote is configured: set `remote = \"s3://bucket/prefix\"` under "
            "[tool.memo_replay] in pyproject.toml, or the MEMO_REMOTE environment variable "
            "(see docs/team-cache.md)")
    from memo_replay.store.s3 import bucket_for

    return Remote(setting[0], setting[1],
                  bucket_for(setting[0], remote_timeout_setting(config)))


def _prefix(function: str | None) -> str:
    return "" if function is None else function_dir_name(function) + "/"


def _remote_names(bucket: S3Bucket, function: str | None) -> list[str]:
    return list(bucket.names(_prefix(function)))


def _run(items: list[str], work: Callable[[str], Transfer], jobs: int,
         progress: Progress | None) -> list[Transfer]:
    """``work`` on every item, ``jobs`` at a time; results in the order of ``items``. A
    :class:`RemoteError` that ``work`` raises (the remote unreachable, credentials refused)
    stops everything: the items still queued are not tried, and it is raised."""
    if not items:
        return []
    done = [0]
    lock = threading.Lock()
    stopped: list[RemoteError] = []

    def one(item: str) -> Transfer:
        if stopped:  # unreachable or refusing: the items still queued fail at once
            raise stopped[0]
        try:
            return work(item)
        except RemoteError as exc:
            stopped.append(exc)
            raise
        finally:
            if progress is not None:
                with lock:
                    done[0] += 1
                    progress(done[0], len(items))

    if jobs <= 1:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="memo-replay-sync") as pool:
        return list(pool.map(one, items))


# -- push ----------------------------------------------------------------------------------------


def push(store: Store, remote: Remote, *, function: str | None = None, dry_run: bool = False,
         jobs: int = DEFAULT_JOBS, progress: Progress | None = None) -> list[Transfer]:
    """Upload the local entries (and payload files) the remote lacks; one :class:`Transfer`
    per local entry the remote lacked (``upload`` in a dry run, else ``uploaded``,
    ``present`` when another writer got there first with the same recording, ``damaged`` when
    the local entry fails verification, ``failed`` when the remote refused it)."""
    bucket = remote.bucket
    there = set(_remote_names(bucket, function))
    local = [name for name in store.entry_names(function) if name not in there]

    def one(name: str) -> Transfer:
        directory, _ = split(name)
        key = key_of(name) or ""
        try:
            entry, raw = store.read_with_bytes(name)
        except CorruptEntry as exc:
            return Transfer(name, directory, key, "damaged", 0, f"{exc} (not uploaded)")
        if entry is None or raw is None:
            return Transfer(name, directory, key, "present", 0, "deleted locally since listed")
        payload: tuple[str, bytes] | None = None
        if entry.payload_file is not None:
            data = store.backend.read(sibling(name, entry.payload_file))
            if data is None and isinstance(entry.payload.data, bytes):
                data = entry.payload.data  # kept out of git (payloads = "remote"), verified
            if data is None:
                return Transfer(name, entry.function, key, "damaged", 0,
                                f"its payload file {entry.payload_file} is missing")
            payload = (sibling(name, entry.payload_file), data)
        size = len(raw) + (0 if payload is None else len(payload[1]))
        if dry_run:
            return Transfer(name, entry.function, key, "upload", size)
        try:
            if payload is not None and payload[0] not in there:
                bucket.write(*payload)
            try:
                bucket.write(name, raw)
            except RemoteUnavailable:
                raise
            except RemoteError:
                if not _holds_same(bucket, name, raw):
                    raise
                return Transfer(name, entry.function, key, "present", size,
                                "the same recording was uploaded by another writer")
        except RemoteUnavailable:
            raise
        except RemoteError as exc:
            return Transfer(name, entry.function, key, "failed", size, str(exc))
        return Transfer(name, entry.function, key, "uploaded", size)

    return _run(local, one, jobs, progress)


def _holds_same(bucket: S3Bucket, name: str, raw: bytes) -> bool:
    """Whether the remote entry ``name`` is the same recording as ``raw`` but for its volatile
    fields (``recorded_at``, the duration)."""
    try:
        there = bucket.read(name, limit=MAX_ENTRY_BYTES)
        return there is not None and same_recording(read_document(bucket.where(name), there),
                                                    read_document(name, raw))
    except (OSError, CorruptEntry):
        return False


# -- pull ----------------------------------------------------------------------------------------


def pull(store: Store, remote: Remote, *, function: str | None = None, dry_run: bool = False,
         jobs: int = DEFAULT_JOBS, progress: Progress | None = None) -> list[Transfer]:
    """Write into ``store`` the remote entries it lacks, each verified first; one
    :class:`Transfer` per remote entry the store lacked (``download`` in a dry run, else
    ``downloaded``, ``refused`` when the remote object fails verification, ``kept`` when a
    different local entry appeared meanwhile and was left as it is, ``present`` when the same
    one did)."""
    bucket = remote.bucket
    payloads_out_of_git = _payloads_out_of_git(store)
    local = set(store.entry_names(function))
    wanted = [name for name in _remote_names(bucket, function)
              if is_entry_file(name) and name not in local]

    def one(name: str) -> Transfer:
        directory, _ = split(name)
        where = bucket.where(name)
        key = key_of(name)
        if key is None:
            return Transfer(name, directory, "", "refused", 0,
                            f"{where}: not an entry's name (<function>/<32 hex digits>.json)")
        try:
            raw = bucket.read(name, limit=MAX_ENTRY_BYTES)
        except RemoteError:
            raise
        except OSError as exc:  # BlobTooLarge
            return Transfer(name, directory, key, "refused", 0, f"{where}: {exc}")
        if raw is None:
            return Transfer(name, directory, key, "present", 0, "deleted from the remote since "
                            "listed")
        read_payload_file, payloads = payload_reader(bucket, name)

        try:
            entry = parse_entry(where, name, raw, read_payload_file)
            if function_dir_name(entry.function) != directory:
                raise CorruptEntry(where, f"holds a recording of `{entry.function}`, not of a "
                                          f"function whose directory is `{directory}`")
        except CorruptEntry as exc:
            return Transfer(name, directory, key, "refused", 0,
                            f"{exc} (a remote object is verified like any entry; it was not "
                            f"written to the store)")
        size = len(raw) + sum(len(data) for data in payloads.values())
        if dry_run:
            return Transfer(name, entry.function, key, "download", size)
        if payloads_out_of_git and entry.payload_file is not None:
            # Kept out of git but verified just now: kept in .cache/payloads/ (like a payload
            # fetched on first use), so the clone replays offline right after the pull.
            _keep_payload(store, name, entry.payload_file, payloads[entry.payload_file])
        return _materialize(store, name, entry.function, key, raw,
                            None if entry.payload_file is None or payloads_out_of_git else
                            (entry.payload_file, payloads[entry.payload_file]), size)

    return _run(wanted, one, jobs, progress)


def _payloads_out_of_git(store: Store) -> bool:
    """Whether the project keeps payload files out of git (``payloads = "remote"``): then
    ``pull`` writes entries only, and their payload files are fetched on first use."""
    from memo_replay import config
    from memo_replay.project import find_root, project_config

    setting = getattr(config, "payloads_setting", None)  # with `payloads = "remote"` support
    return setting is not None and \
        setting(project_config(find_root(store.path.resolve()))) == "remote"


def _keep_payload(store: Store, name: str, file: str, data: bytes) -> None:
    """Keep a verified payload file of ``name`` in the store's git-ignored payload cache
    (``payloads = "remote"``); where the cache cannot be written it is fetched on first use."""
    import contextlib

    cache = payload_cache(str(store.path))
    if cache is not None:
        with contextlib.suppress(OSError):
            cache.write(sibling(name, file), data)


def _materialize(store: Store, name: str, function: str, key: str, raw: bytes,
                 payload: tuple[str, bytes] | None, size: int) -> Transfer:
    """Write a verified remote entry into the store (payload file first), under the key's
    record-once lock, unless an entry with that name appeared locally since it was listed."""
    lock = store.lock(function, key)
    if lock is not None:
        lock.acquire(store.lock_timeout)
    try:
        existing = store.backend.read(name, limit=MAX_ENTRY_BYTES)
        if existing is not None:
            if existing == raw:
                return Transfer(name, function, key, "present", size)
            return Transfer(name, function, key, "kept", size,
                            f"{store.backend.where(name)} appeared locally meanwhile and "
                            f"differs; the local entry was kept")
        if payload is not None:
            payload_name = sibling(name, payload[0])
            if store.backend.read(payload_name) != payload[1]:
                store.backend.write(payload_name, payload[1])
        store.backend.write(name, raw)
    finally:
        if lock is not None:
            lock.release()
    return Transfer(name, function, key, "downloaded", size)


# -- ls and stats --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """An entry in the bucket, as its name tells (its content is not read)."""

    name: str
    function: str
    key: str
    payload_files: int


def listing(remote: Remote, function: str | None = None) -> list[Listed]:
    """The entries under the remote's prefix (of one function when given), from the listing
    alone: function directory, key, and how many payload files sit beside it."""
    names = _remote_names(remote.bucket, function)
    payloads: dict[tuple[str, str], int] = {}
    for name in names:
        key = payload_file_key(name)
        if key is not None:
            where = (split(name)[0], key)
            payloads[where] = payloads.get(where, 0) + 1
    found = []
    for name in names:
        key = key_of(name)
        directory = split(name)[0]
        if key is not None and is_entry_file(name) and "/" not in directory:
            found.append(Listed(name, directory, key, payloads.get((directory, key), 0)))
    return found


def stats(remote: Remote, *, jobs: int = DEFAULT_JOBS,
          progress: Progress | None = None) -> RemoteStats:
    """Entries and bytes per function directory, from the bucket's listing alone (the LIST
    responses carry each object's size: one request per 1,000 objects, none per object).
    ``jobs`` is unused (kept for callers); ``progress`` is called once, at the end."""
    listed = list(remote.bucket.listing())
    names = [name for name, _ in listed]
    sizes = dict(listed)
    if progress is not None:
        progress(len(names), len(names))
    result = RemoteStats()
    for name in names:
        directory, _ = split(name)
        if not directory or "/" in directory:
            result.other += 1
            continue
        per = result.functions.setdefault(directory, FunctionStats())
        per.bytes += sizes.get(name, 0)
        result.bytes += sizes.get(name, 0)
        if key_of(name) is not None:
            per.entries += 1
            result.entries += 1
        elif payload_file_key(name) is not None:
            per.payload_files += 1
        else:
            per.other += 1
            result.other += 1
    result.functions = dict(sorted(result.functions.items()))
    return result


def problems(transfers: Iterable[Transfer]) -> Iterator[Transfer]:
    return (t for t in transfers if t.status in PROBLEMS)


__all__ = ["DEFAULT_JOBS", "Listed", "Remote", "RemoteStats", "Transfer", "listing", "pull",
           "push", "remote_of", "stats"]
