"""The shared tier: a remote store (``s3://bucket/prefix``) behind the local one.

:class:`RemoteTier` is what a :class:`~memo_replay.store.store.Store` consults on a local miss,
and what it hands a recording to after saving it locally (``remote_mode = "write"``):

- **Lazy.** The :class:`~memo_replay.store.s3.S3Bucket` (and botocore) is created at the first
  local miss: a process whose calls all hit locally never imports the client.
- **Verified.** A remote entry is untrusted input, like a pull request's store: it goes through
  the same entry reader as a local one (format, checksum, key, function id, payload file), and
  one that fails is refused with a :class:`~memo_replay.errors.CorruptEntry` naming the remote
  object; it is never replayed.
- **Cached, never committed.** A verified remote entry is copied (payload file first) into the
  store's git-ignored ``.cache/remote/``, never into the tracked store: a replay leaves
  ``git status`` clean. Later lookups read the copy there, verified again like any entry.
- **Degrading.** An unreachable or slow remote is one warning, then local-only for the rest of
  the process. A remote that answers but refuses (a missing bucket, bad credentials) raises a
  :class:`~memo_replay.errors.RemoteError` naming the setting to fix: it does not heal by
  itself, and a write job silently sharing nothing would go unnoticed.
- **Write-once uploads.** In ``write`` mode a recording is uploaded (payload file, then entry)
  with the bucket's conditional write; a failed upload is a warning, the local recording stays.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import stat
from typing import TYPE_CHECKING

from memo_replay.errors import CorruptEntry, RemoteError, RemoteUnavailable, warn
from memo_replay.store.backend import LocalDirectory
from memo_replay.store.entry import MAX_ENTRY_BYTES, Hit, read_hit
from memo_replay.store.index import cache_directory
from memo_replay.store.layout import sibling

if TYPE_CHECKING:
    from memo_replay.config import RemoteMode
    from memo_replay.store.s3 import S3Bucket

SETTING = "[tool.memo_replay] remote (or MEMO_REMOTE)"
"""How people turn the remote off or point it elsewhere, for messages."""


class RemoteTier:
    """The remote ``url`` of a store at ``store_root``, read (and, in ``write`` mode, written)
    through a cache in ``<store_root>/.cache/remote``."""

    def __init__(self, url: str, mode: RemoteMode, store_root: str) -> None:
        self.url = url
        self.mode = mode
        self.store_root = store_root
        self.unavailable: str | None = None
        """Why the remote is no longer asked (it was unreachable), once it is not."""
        self._bucket: S3Bucket | None = None
        self._cache: LocalDirectory | None = None
        self._lock = _thread.allocate_lock()

    def __repr__(self) -> str:
        return f"RemoteTier({self.url!r}, {self.mode!r})"

    # -- the pieces, made on first use -------------------------------------------------------

    def bucket(self) -> S3Bucket:
        """The bucket (its client is created on the first call: botocore is imported then)."""
        bucket = self._bucket
        if bucket is None:
            from memo_replay.store.s3 import S3Bucket

            with self._lock:
                if self._bucket is None:
                    self._bucket = S3Bucket(self.url)
                bucket = self._bucket
        return bucket

    def cache(self) -> LocalDirectory | None:
        """The local copies of remote entries (None where ``.cache/`` cannot be created)."""
        if self._cache is None:
            try:
                directory = os.path.join(cache_directory(self.store_root), "remote")
                with contextlib.suppress(FileExistsError):
                    os.mkdir(directory)
                # A store from a pull request may force-add `.cache/remote` as a symlink to
                # elsewhere: nothing is read or written through it.
                if not stat.S_ISDIR(os.lstat(directory).st_mode):
                    return None
            except OSError:
                return None  # a read-only checkout: remote hits are not kept
            self._cache = LocalDirectory(directory)
        return self._cache

    # -- reading -----------------------------------------------------------------------------

    def lookup(self, name: str, function: str, key: str) -> Hit | None:
        """The recording of ``key`` from the cached copy, else from the remote (verified, then
        cached); None when neither has it or the remote is unavailable. A damaged copy or
        remote object raises :class:`CorruptEntry` naming it."""
        cache = self.cache()
        if cache is not None:
            try:
                found = cache.read(name, limit=MAX_ENTRY_BYTES)
                if found is not None:
                    hit, _ = read_hit(cache.where(name), function, key, found,
                                      lambda file: cache.read(sibling(name, file)))
                    return hit
            except CorruptEntry:
                raise
            except OSError as exc:  # a symlink planted in the copy, an oversized file
                raise CorruptEntry(cache.where(name), f"unreadable ({exc})") from None
        if self.unavailable is not None:
            return None
        try:
            return self._fetch(name, function, key, cache)
        except RemoteUnavailable as exc:
            self._degrade(exc)
            return None

    def _fetch(self, name: str, function: str, key: str, cache: LocalDirectory | None
               ) -> Hit | None:
        bucket = self.bucket()
        try:
            raw = bucket.read(name, limit=MAX_ENTRY_BYTES)
        except OSError as exc:  # BlobTooLarge
            if isinstance(exc, RemoteError):
                raise
            raise CorruptEntry(bucket.where(name), f"refused from the remote: {exc}") from None
        if raw is None:
            return None
        payloads: dict[str, bytes] = {}

        def read_payload_file(file: str) -> bytes | None:
            data = bucket.read(sibling(name, file))
            if data is not None:
                payloads[file] = data
            return data

        try:
            hit, payload_file = read_hit(bucket.where(name), function, key, raw,
                                         read_payload_file)
        except CorruptEntry as exc:
            raise CorruptEntry(bucket.where(name), f"{exc.reason} (a remote object is "
                               f"verified like any entry, and refused; it was not replayed, "
                               f"nor copied to the local cache)") from exc
        if cache is not None:
            try:
                if payload_file is not None:
                    if payload_file not in payloads:
                        return hit  # read by another path: keep nothing rather than half
                    cache.write(sibling(name, payload_file), payloads[payload_file])
                cache.write(name, raw)
            except OSError:
                pass  # not kept: the next process asks the remote again
        return hit

    def _degrade(self, exc: RemoteUnavailable) -> None:
        with self._lock:  # one warning, however many threads found it unreachable at once
            if self.unavailable is not None:
                return
            self.unavailable = str(exc)
        warn(f"memo_replay: {exc}. The remote is not used for the rest of this process "
             f"(calls use the local store only); fix or unset {SETTING}")

    # -- writing -----------------------------------------------------------------------------

    def upload(self, name: str, raw: bytes, payload: tuple[str, bytes] | None) -> None:
        """Upload a recording just saved locally (``write`` mode only): the payload file
        first, so the remote entry never names an object that is not there. Never raises: a
        failure is a warning, and the local recording stays."""
        if self.mode != "write" or self.unavailable is not None:
            return
        try:
            bucket = self.bucket()
            if payload is not None:
                bucket.write(sibling(name, payload[0]), payload[1])
            try:
                bucket.write(name, raw)
            except RemoteUnavailable:
                raise
            except RemoteError:
                if not self._holds_same(bucket, name, raw):
                    raise
        except RemoteUnavailable as exc:
            self._degrade(exc)
        except RemoteError as exc:
            warn(f"memo_replay: the recording {name} was saved locally but not uploaded to "
                 f"{self.url}: {exc}")


    @staticmethod
    def _holds_same(bucket: S3Bucket, name: str, raw: bytes) -> bool:
        """Whether the remote entry ``name`` is the same recording as ``raw`` but for its
        volatile fields (``recorded_at``, the duration, …): another process recorded the same
        call at the same time, and the remote already holds it. Not an error."""
        from memo_replay.store.entry import read_document, same_recording

        try:
            there = bucket.read(name, limit=MAX_ENTRY_BYTES)
            if there is None:
                return False
            return same_recording(read_document(bucket.where(name), there),
                                  read_document(name, raw))
        except (OSError, CorruptEntry):
            return False


__all__ = ["SETTING", "RemoteTier"]
