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
- **Payload files out of git** (``payloads = "remote"``). A recording's payload file is kept in
  the git-ignored ``.cache/payloads/`` and uploaded, never written into the tracked store; its
  entry is. A replay that finds the entry but not its payload file beside it reads
  ``.cache/payloads/``, else fetches the file from the remote (checked against the checksum in
  its name before it is kept, and against the entry's full checksum on every read).
"""

from __future__ import annotations

import _thread
import contextlib
import os
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING

from memo_replay.errors import ConfigError, CorruptEntry, RemoteError, RemoteUnavailable, warn
from memo_replay.store.backend import Backend, LocalDirectory
from memo_replay.store.entry import MAX_ENTRY_BYTES, Hit, MissingPayload, read_hit
from memo_replay.store.index import CACHE_DIR, cache_directory
from memo_replay.store.layout import PAYLOAD_FILE_SUFFIX, sibling

if TYPE_CHECKING:
    from memo_replay.config import Payloads, RemoteMode
    from memo_replay.store.s3 import S3Bucket

SETTING = "[tool.memo_replay] remote (or MEMO_REMOTE)"
"""How people turn the remote off or point it elsewhere, for messages."""
PAYLOADS_SETTING = "payloads = \"remote\" ([tool.memo_replay] payloads, or MEMO_PAYLOADS)"
"""Where payload files are kept, for messages."""
PAYLOAD_CACHE = "payloads"
"""The directory of ``.cache/`` holding payload files kept out of git."""


def _cache_subdirectory(store_root: str, name: str) -> LocalDirectory | None:
    """``<store_root>/.cache/<name>`` (created), or None where it cannot be created or is not
    a real directory (a symlink a pull request force-added: nothing goes through it)."""
    try:
        directory = os.path.join(cache_directory(store_root), name)
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory)
        if not stat.S_ISDIR(os.lstat(directory).st_mode):
            return None
    except OSError:
        return None  # a read-only checkout
    return LocalDirectory(directory)


def payload_reader(bucket: Backend, name: str
                   ) -> tuple[Callable[[str], bytes | None], dict[str, bytes]]:
    """What the entry reader reads the payload files beside entry ``name`` of ``bucket`` with,
    and what it read (file name → bytes): a verified payload is then kept without being
    downloaded twice."""
    payloads: dict[str, bytes] = {}

    def read_payload_file(file: str) -> bytes | None:
        data = bucket.read(sibling(name, file))
        if data is not None:
            payloads[file] = data
        return data

    return read_payload_file, payloads


def payload_cache(store_root: str) -> LocalDirectory | None:
    """The git-ignored payload files of a store (``payloads = "remote"``), named like in the
    store (``<function directory>/<key>.<checksum>.bin``)."""
    return _cache_subdirectory(store_root, PAYLOAD_CACHE)


def _checksum_in_name(file: str) -> str:
    """The checksum prefix a payload file's name carries (``<key>.<checksum>.bin``)."""
    return file[:-len(PAYLOAD_FILE_SUFFIX)].rpartition(".")[2] \
        if file.endswith(PAYLOAD_FILE_SUFFIX) else ""


def kept_payload(store_root: str, location: str, remote: RemoteTier | None, name: str,
                 file: str) -> bytes:
    """The payload file ``file`` of the entry ``name`` (at ``location``) that is not beside
    it: from ``.cache/payloads/``, else from the remote (kept there once its bytes match the
    checksum in its name). Called only when the store lacks the file, so a store whose payload
    files are beside their entries never comes here. :class:`MissingPayload` when neither has
    it, naming the file, the remote and the settings."""
    blob = sibling(name, file)
    top = os.path.join(store_root, CACHE_DIR)
    directory = os.path.join(top, PAYLOAD_CACHE)
    try:  # read without creating anything; never through a symlink a pull request planted
        cache = LocalDirectory(directory) if stat.S_ISDIR(os.lstat(top).st_mode) \
            and stat.S_ISDIR(os.lstat(directory).st_mode) else None
    except OSError:
        cache = None
    if cache is not None:
        try:
            data = cache.read(blob)
        except OSError as exc:  # a symlink planted in the cache
            raise CorruptEntry(location, f"its payload file {file} in {cache.where(blob)} is "
                               f"unreadable ({exc})") from None
        if data is not None:
            return data  # checked against the entry's checksum by the reader, like any
    if remote is None:
        raise MissingPayload(location, f"its payload file {file} is missing (not beside the "
                             f"entry, nor in .cache/{PAYLOAD_CACHE}/ where {PAYLOADS_SETTING} "
                             f"keeps it; no remote is configured here to fetch it "
                             f"from: {SETTING})")
    return remote.fetch_payload(location, name, file)


class RemoteTier:
    """The remote ``url`` of a store at ``store_root``, read (and, in ``write`` mode, written)
    through a cache in ``<store_root>/.cache/remote``."""

    def __init__(self, url: str, mode: RemoteMode, store_root: str, *,
                 payloads: Payloads = "local", timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        """Seconds a request may wait for an answer (``remote_timeout``)."""
        self.mode = mode
        self.payloads: Payloads = payloads
        """``remote``: recordings' payload files are kept out of the tracked store."""
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
            from memo_replay.store.s3 import bucket_for

            with self._lock:
                if self._bucket is None:
                    self._bucket = bucket_for(self.url, self.timeout)
                bucket = self._bucket
        return bucket

    def cache(self) -> LocalDirectory | None:
        """The local copies of remote entries (None where ``.cache/`` cannot be created)."""
        if self._cache is None:
            # A store from a pull request may force-add `.cache/remote` as a symlink to
            # elsewhere: nothing is read or written through it (None). A read-only checkout:
            # remote hits are not kept.
            self._cache = _cache_subdirectory(self.store_root, "remote")
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
        read_payload_file, payloads = payload_reader(bucket, name)

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


    # -- payload files kept out of git (payloads = "remote") ---------------------------------

    def keep_payload(self, name: str, file: str, data: bytes) -> None:
        """Keep the payload file ``file`` of the entry ``name`` being recorded out of the
        tracked store: in ``.cache/payloads/`` and in the remote. A :class:`ConfigError` in
        ``read`` mode (nothing is written); a failed upload is a warning (the local copy
        stays)."""
        if self.mode != "write":
            raise ConfigError(
                f"{PAYLOADS_SETTING} keeps payload files out of git and in the "
                f"remote, so recording one needs remote_mode = \"write\" (or "
                f"MEMO_REMOTE_MODE=write); the remote {self.url} is read-only here. Record in a "
                f"job that may write to it, or use payloads = \"local\"")
        cache = payload_cache(self.store_root)
        if cache is None:
            from memo_replay.errors import StoreError

            raise StoreError(f"cannot keep the payload file {file} out of git: the store's "
                             f".cache/{PAYLOAD_CACHE}/ cannot be created ({PAYLOADS_SETTING})")
        cache.write(sibling(name, file), data)
        blob = sibling(name, file)
        problem = self.unavailable
        if problem is None:
            try:
                self.bucket().write(blob, data)
                return
            except RemoteUnavailable as exc:
                self._degrade(exc)
                problem = str(exc)
            except RemoteError as exc:
                problem = str(exc)
        warn(f"memo_replay: the payload file {blob} was kept in {cache.where(blob)} but not "
             f"uploaded to {self.url} ({problem}); with {PAYLOADS_SETTING} other "
             f"clones cannot replay its entry until it is: re-record it with the remote "
             f"reachable")

    def fetch_payload(self, location: str, name: str, file: str) -> bytes:
        """The payload file ``file`` of the entry ``name`` from the remote, checked against
        the checksum in its name, then kept in ``.cache/payloads/``. :class:`MissingPayload`
        when the remote lacks it or cannot be reached; :class:`CorruptEntry` when its bytes do
        not match (never kept, never replayed)."""
        blob = sibling(name, file)
        why = self.unavailable
        if why is None:
            try:
                bucket = self.bucket()
                data = bucket.read(blob)
            except RemoteUnavailable as exc:
                self._degrade(exc)
                why = str(exc)
            else:
                if data is None:
                    why = f"{bucket.where(blob)} does not exist"
                else:
                    from xxhash import xxh3_128_hexdigest

                    if not xxh3_128_hexdigest(data).startswith(_checksum_in_name(file)):
                        raise CorruptEntry(bucket.where(blob), "does not match the checksum "
                                           "its entry names: refused (a remote object is "
                                           "verified like any entry); it was not replayed, "
                                           "nor copied to the local cache")
                    cache = payload_cache(self.store_root)
                    if cache is not None:
                        with contextlib.suppress(OSError):
                            cache.write(blob, data)
                    return data
        raise MissingPayload(location, f"its payload file {file} is kept out of git "
                             f"({PAYLOADS_SETTING}), is not in the local cache "
                             f".cache/{PAYLOAD_CACHE}/, and the remote {self.url} could not "
                             f"provide it: {why} (check {SETTING} and the remote)")

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


__all__ = ["PAYLOADS_SETTING", "SETTING", "RemoteTier", "kept_payload", "payload_cache"]
