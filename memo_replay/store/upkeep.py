"""Keeping a store healthy: :func:`verify` (what is damaged, misplaced, left over or not what it
should be) and :func:`prune` (removing stale, expired and left-over files, carefully).

Both work through a :class:`~memo_replay.store.store.Store`'s public methods; the store's
``verify()`` and ``prune()`` call them. Pruning never races a writer: entries are removed under
their key's record-once lock, and a leftover is removed only when it is older than a threshold
and its key's lock is free.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from memo_replay.errors import CorruptEntry, UnsupportedFormat
from memo_replay.serializers.stream import STREAM
from memo_replay.store.backend import TEMP_SUFFIX, LocalDirectory, NotFollowed
from memo_replay.store.entry import MissingPayload, duplicate_fields
from memo_replay.store.index import CACHE_DIR, check_cache_directory
from memo_replay.store.layout import (
    entry_stem,
    function_dir_name,
    key_of,
    payload_file_key,
    sibling,
    split,
    temp_file_key,
)

if TYPE_CHECKING:
    from memo_replay.audit import Finding
    from memo_replay.store.store import Store


@dataclass(frozen=True)
class Problem:
    """Something :meth:`Store.verify` found, and what to do about it."""

    path: Path
    kind: str
    message: str
    fix: str
    name: str | None = None
    """The file's name in the store (``<function directory>/<file>``)."""


def prune(store: Store, *, stale: bool, expired: bool, orphans: bool, dry_run: bool,
          older_than: float) -> list[Finding]:
    """Remove (or, by default, only list) stale/gone entries, expired entries and files
    left by killed recordings. Entries that cannot be checked are never removed, nor are
    leftovers younger than ``older_than`` seconds or of a key whose recording is in
    flight (a payload file is written an instant before its entry)."""
    from memo_replay.audit import Finding

    findings: list[Finding] = []
    if stale or expired:
        report = store.audit()
        findings += (report.stale if stale else []) + (report.expired if expired else [])
    if orphans:
        findings += [Finding(p.path, "orphan", p.message, name=p.name) for p in verify(store)
                     if p.kind == "orphan" and p.name is not None
                     and _age(store, p.name) >= older_than]
    by_path: dict[Path, Finding] = {}
    for finding in findings:  # an entry both stale and expired is reported as stale
        by_path.setdefault(finding.path, finding)
    unique = list(by_path.values())
    if dry_run:
        return unique
    removed = []
    for finding in unique:
        if finding.name is None:
            continue
        if finding.reason != "orphan":
            store.remove_named(finding.name)
        elif not _remove_orphan(store, finding.name):
            continue
        removed.append(finding)
    return removed


def _age(store: Store, name: str) -> float:
    """Seconds since the file ``name`` was last written (0 when gone, or not a local file:
    never old enough to prune)."""
    try:
        return time.time() - os.lstat(store.backend.where(name)).st_mtime
    except OSError:
        return 0.0


def _remove_orphan(store: Store, name: str) -> bool:
    """Delete a leftover unless its key's recording is in flight (its lock is held) or an
    entry refers to it by now; True when it was deleted."""
    directory, file = split(name)
    key = payload_file_key(name) or temp_file_key(file)
    lock = None if key is None else store.lock(directory, key)
    if lock is not None and not lock.try_acquire():
        return False  # a writer is at work on this key: its files are not leftovers
    try:
        if payload_file_key(name) is not None:
            entry = sibling(name, f"{key}.json")
            try:
                current = store.read(entry)
            except CorruptEntry:
                current = None
            if current is not None and current.payload_file == file:
                return False  # its entry was written since it was listed
        return store.backend.delete(name)
    finally:
        if lock is not None:
            lock.release()


REMOTE_PAYLOAD = "remote-payload"
NOTES: frozenset[str] = frozenset({REMOTE_PAYLOAD})
"""Kinds ``verify`` lists as notes, not problems: they do not make ``memo-replay verify`` fail."""


def _payloads_kept_remote(store: Store) -> bool:
    """Whether the project around ``store`` keeps payload files out of git (``payloads =
    "remote"``, or ``MEMO_PAYLOADS=remote``); asked only for an entry whose payload file is
    missing."""
    from memo_replay.config import check_payloads
    from memo_replay.errors import ConfigError
    from memo_replay.project import find_root, project_config

    try:
        env = os.environ.get("MEMO_PAYLOADS") or None
        if env is not None:
            return check_payloads(env, source="MEMO_PAYLOADS") == "remote"
        return project_config(find_root(store.path.resolve())).payloads == "remote"
    except ConfigError:
        return False


def verify(store: Store) -> list[Problem]:
    """Integrity check of every file in the store: parse, checksum, placement, leftovers,
    and anything that is not what it should be (a symlink, a directory, a FIFO)."""
    problems: list[Problem] = []
    by_directory: dict[str, list[str]] = {}
    problems += _check_cache(store)
    for name in store.backend.names():
        directory, _ = split(name)
        if not directory:
            problems.append(_problem(store,
                name, "stray", "a symbolic link or a file at the top of the store (nothing "
                "in a store is followed)", "move or delete it"))
        else:
            by_directory.setdefault(directory, []).append(name)
    for directory, names in by_directory.items():
        referenced: set[str] = set()  # payload files in use, and keys of damaged entries
        for name in names:  # entries first: they say which payload files are in use
            if payload_file_key(name) is None:
                problems.extend(_check(store, directory, name, referenced))
        problems.extend(
            _problem(store, name, "orphan", "a payload file no entry refers to (left by an "
                          "interrupted recording or a deleted entry)", "delete it")
            for name in names if (key := payload_file_key(name)) is not None
            and split(name)[1] not in referenced and key not in referenced)
    return sorted(problems, key=lambda p: p.path)


def _check_cache(store: Store) -> list[Problem]:
    """``.cache`` and the files memo_replay keeps in it, when they are not what they should
    be (a symlink committed in a pull request): never used, reported here."""
    directory = os.path.join(store.path, CACHE_DIR)
    if not isinstance(store.backend, LocalDirectory) or not os.path.lexists(directory):
        return []
    try:
        check_cache_directory(directory)
    except NotFollowed as exc:
        return [Problem(Path(directory), "unsafe", str(exc),
                        "delete it (derived data: it is rebuilt)", None)]
    return []


def _problem(store: Store, name: str, kind: str, message: str, fix: str) -> Problem:
    return Problem(Path(store.backend.where(name)), kind, message, fix, name)


def _check(store: Store, directory: str, name: str, referenced: set[str]) -> list[Problem]:
    if name.endswith(TEMP_SUFFIX):
        return [_problem(store, name, "orphan", "a temporary file left by an interrupted "
                              "recording", "delete it")]
    if key_of(name) is None:
        return [_problem(store, name, "stray", "not an entry file", "move or delete it")]
    try:
        entry, raw = store.read_with_bytes(name)
    except (UnsupportedFormat, CorruptEntry) as exc:
        # The payload files of an entry that cannot be read go with it, not as orphans.
        referenced.add(entry_stem(name))
        if isinstance(exc, MissingPayload) and _payloads_kept_remote(store):
            return [_problem(store, name, REMOTE_PAYLOAD, "payload file kept on the remote by "
                             "payloads = \"remote\"; not checked locally (not in "
                             ".cache/payloads/ yet)", "nothing to fix; `memo-replay pull` or a "
                             "first replay with the remote reachable fetches and checks it")]
        if isinstance(exc, UnsupportedFormat):
            return [_problem(store, name, "newer-format", exc.reason,
                                  "upgrade memo_replay (pip install -U memo-replay) to read "
                                  "it")]
        return [_problem(store, name, "corrupt", exc.reason,
                              "re-record it with MEMO_MODE=record, or delete it")]
    if entry is None or raw is None:
        return []
    if entry.payload_file is not None:
        referenced.add(entry.payload_file)
    if function_dir_name(entry.function) != directory:
        return [_problem(store, name, "misplaced", f"entry of `{entry.function}` in "
                              f"{directory}/ (never replayed there)", f"move it to "
                              f"{function_dir_name(entry.function)}/, or delete it")]
    duplicated = duplicate_fields(raw)
    if duplicated:
        return [_problem(store, name, "corrupt", f"the field(s) {', '.join(duplicated)} "
                              f"appear twice (JSON keeps the last silently: edited by hand "
                              f"or by a merge)", "re-record it with MEMO_MODE=record, or "
                              "delete it")]
    if entry.serializer == STREAM:
        damage = _stream_damage(entry.payload.data)
        if damage is not None:
            return [_problem(store, name, "corrupt", f"its stream payload is damaged "
                             f"({damage})", "re-record it with MEMO_MODE=record, or delete it")]
    return []


def _stream_damage(data: str | bytes) -> str | None:
    """What is wrong with a stream payload's structure (its checksum holds: a hand-edited
    header whose checksum was recomputed), read as stored, without any serializer; None when
    every value is where its header says (the values themselves are decoded at replay)."""
    from memo_replay.errors import InvalidPayload
    from memo_replay.serializers.stream import stored_stream

    try:
        stored_stream(data).check()
    except InvalidPayload as exc:
        return str(exc)
    except RecursionError:
        return "nested too deeply to be read"
    return None


__all__ = ["NOTES", "REMOTE_PAYLOAD", "Problem", "prune", "verify"]
