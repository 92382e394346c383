"""Where a store's files live: named blobs behind a small protocol.

A backend knows nothing about entries, keys or checksums (that is :class:`~memo_replay.store.
store.Store`'s business); it stores bytes under ``/``-separated names such as
``pkg.translate/<key>.json`` and answers a few questions, in the spirit of Hypothesis's example
databases:

- ``read(name)`` — the bytes, or None when there is no such blob;
- ``stamp(name)`` — a cheap token that changes whenever the blob does (size, mtime and inode
  locally; an ETag remotely), or None when absent: a cached copy is used only while it matches;
- ``write(name, data)`` — atomically: a reader sees the old bytes or the new ones, never half;
- ``delete(name)`` — True when something was removed;
- ``names(prefix)`` — every blob under a prefix, sorted;
- ``size(name)`` and ``where(name)`` — for reports and messages.

Implementations here: :class:`LocalDirectory` (the committed store on disk; never follows a
symlink it reads), :class:`ReadOnly` (refuses writes: a store that must not change), and
:class:`Tiered` (reads from the first tier that has a blob, writes to the first tier — the shape a
remote team cache takes behind the local store).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_module
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from memo_replay.errors import StoreError
from memo_replay.stamps import file_stamp

Stamp = tuple[Any, ...]
"""A token identifying one version of a blob; equal stamps mean the blob is unchanged (locally
:func:`memo_replay.stamps.file_stamp`)."""

TEMP_SUFFIX = ".tmp"
"""Temporary files of writes in flight (or of writers killed mid-write) end with this."""


@runtime_checkable
class Backend(Protocol):
    """Named blobs (see the module docstring)."""

    location: str
    """Where the blobs are, for people: a directory, a URL."""

    def read(self, name: str, *, limit: int | None = None) -> bytes | None:
        """The blob's bytes, or None when absent. A blob larger than ``limit`` raises
        :class:`BlobTooLarge` before it is read."""

    def read_stamped(self, name: str, *, limit: int | None = None
                     ) -> tuple[bytes, Stamp] | None:
        """The blob's bytes and the stamp of what was read (one look, where the storage
        allows), or None when absent."""

    def stamp(self, name: str) -> Stamp | None:
        """The blob's current stamp, or None when absent."""

    def size(self, name: str) -> int | None:
        """The blob's size in bytes, or None when absent."""

    def write(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name`` atomically (a :class:`StoreError` when impossible)."""

    def delete(self, name: str) -> bool:
        """Remove the blob; True when it was there."""

    def names(self, prefix: str = "") -> Iterator[str]:
        """The names of every blob starting with ``prefix``, sorted (and of anything else found
        where a blob could be, so that damage is seen)."""

    def where(self, name: str) -> str:
        """The location of one blob, for people (a path, a URL)."""


class BlobTooLarge(OSError):
    """A blob above the reader's size bound: refused before it is read."""


class NotFollowed(OSError):
    """A symlink or a non-regular file where a blob or its directory should be: refused, never
    followed."""


def _file_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO planted as an entry never blocks


class LocalDirectory:
    """Blobs as files in a directory: ``name`` ``a/b.json`` is the file ``<root>/a/b.json``.

    Writes go to a temporary file in the same directory, are fsync'd and renamed into place.
    Reads open the file itself, never a symlink (``O_NOFOLLOW``), and listing does not descend
    into symlinked directories. Top-level names starting with ``.`` (the ``.cache/`` index, a
    ``.gitignore``) are not blobs.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.location = os.fspath(root)
        self._prefix = self.location + os.sep
        self._real_directories: set[str] = set()

    def __repr__(self) -> str:
        return f"LocalDirectory({self.location!r})"

    def where(self, name: str) -> str:
        return self._prefix + name if os.sep == "/" else self._prefix + name.replace("/", os.sep)

    def stamp(self, name: str) -> Stamp | None:
        # file_stamp() spelled out: this runs on every hit.
        try:
            st = os.stat(self._prefix + name, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ino)

    def size(self, name: str) -> int | None:
        stamp = file_stamp(self._prefix + name, follow_symlinks=False)
        return None if stamp is None else stamp[0]

    def read(self, name: str, *, limit: int | None = None) -> bytes | None:
        read = self.read_stamped(name, limit=limit)
        return None if read is None else read[0]

    def read_stamped(self, name: str, *, limit: int | None = None
                     ) -> tuple[bytes, Stamp] | None:
        path = self.where(name)
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _BINARY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
                raise NotFollowed(errno.ELOOP, f"{path} is a symbolic link; nothing in the "
                                  f"store is followed (delete it, then re-record)") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat_module.S_ISREG(st.st_mode):
                raise NotFollowed(f"{path} is not a regular file (delete it, then re-record)")
            self._check_directory(name, reading=True)
            if limit is not None and st.st_size > limit:
                raise BlobTooLarge(f"{st.st_size} bytes, above the bound of {limit}")
            # One read of one byte more than the size says: getting exactly the size is the
            # whole file (the common case: one syscall); more means it grew while read, less a
            # read cut short (over 2 GiB): read on to the end.
            stamp = (st.st_size, st.st_mtime_ns, st.st_ino)  # as stamp() says, from the fd
            data = os.read(fd, st.st_size + 1)
            if len(data) == st.st_size:
                return data, stamp
            chunks, size = [data], len(data)
            while chunk := os.read(fd, max(st.st_size - size + 1, 65536)):
                chunks.append(chunk)
                size += len(chunk)
                if limit is not None and size > limit:
                    raise BlobTooLarge(f"grew above the bound of {limit} bytes while read")
            return b"".join(chunks), stamp
        finally:
            os.close(fd)

    def _check_directory(self, name: str, *, reading: bool = False) -> None:
        """Refuse a name whose directory is not a real directory of the store (a symlink to
        elsewhere, most likely): O_NOFOLLOW guards only the last component of a path.

        A directory found real when reading is remembered for later reads (listing 100,000
        entries would otherwise ``lstat`` their directory 100,000 times): a store is input
        from a pull request, not a process racing this one. Writing and deleting check
        every time."""
        directory, slash, _ = name.rpartition("/")
        if not slash or (reading and directory in self._real_directories):
            return
        try:
            mode = os.lstat(self._prefix + directory).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return  # nothing there: nothing to follow
        if stat_module.S_ISDIR(mode):
            if reading:
                self._real_directories.add(directory)
        else:
            self._real_directories.discard(directory)
            raise NotFollowed(f"{self._prefix + directory} is not a directory of the store "
                              f"(a symbolic link?); nothing in the store is followed: delete "
                              f"it, then re-record")

    def write(self, name: str, data: bytes) -> None:
        path = self.where(name)
        directory = os.path.dirname(path)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot record {path}: cannot create {directory} in the store "
                             f"{self.location}: {exc.strerror or exc}") from exc
        try:
            self._check_directory(name)
        except NotFollowed as exc:
            raise StoreError(f"cannot record {path}: {exc}; nothing was written") from None
        import tempfile

        stem = os.path.basename(path).rsplit(".", 1)[0]
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{stem}.", suffix=TEMP_SUFFIX, dir=directory)
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

    def delete(self, name: str) -> bool:
        try:
            self._check_directory(name)
        except NotFollowed as exc:
            raise StoreError(f"cannot delete {self.where(name)}: {exc}") from None
        try:
            os.unlink(self.where(name))
        except (FileNotFoundError, NotADirectoryError):
            return False  # another process deleted it first
        return True

    def names(self, prefix: str = "") -> Iterator[str]:
        # Plain strings, sorted once as full names (a directory `m.f` must not be listed as a
        # block before `m.f._locals_.g`: Tiered merges sorted listings); sorting 100,000 Path
        # objects would cost more than reading the directories.
        top, slash, _ = prefix.partition("/")
        found: list[str] = []
        if slash:
            if top.startswith(".") or not self._is_directory(top):
                return iter(())  # the index, or a symlinked directory: not blobs
            directories = [top]
        else:
            try:
                with os.scandir(self.location) as it:
                    entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it
                               if not e.name.startswith(".")]
            except (FileNotFoundError, NotADirectoryError):
                return iter(())
            directories = [name for name, is_directory in entries if is_directory]
            # A file (or a symlink) at the top: not where entries live, listed for verify().
            found += [name for name, is_directory in entries if not is_directory]
        for directory in directories:
            try:
                with os.scandir(self._prefix + directory) as it:
                    # Everything, directories too: one where an entry should be is damage
                    # that verify() must see.
                    found += [f"{directory}/{e.name}" for e in it]
            except (FileNotFoundError, NotADirectoryError):
                continue
        found.sort()
        return iter([name for name in found if name.startswith(prefix)] if prefix else found)

    def _is_directory(self, name: str) -> bool:
        try:
            return stat_module.S_ISDIR(os.stat(self._prefix + name, follow_symlinks=False).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False


class ReadOnly:
    """A backend whose writes and deletions are refused (reads pass through)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.location = inner.location

    def __repr__(self) -> str:
        return f"ReadOnly({self.inner!r})"

    def read(self, name: str, *, limit: int | None = None) -> bytes | None:
        return self.inner.read(name, limit=limit)

    def read_stamped(self, name: str, *, limit: int | None = None
                     ) -> tuple[bytes, Stamp] | None:
        return self.inner.read_stamped(name, limit=limit)

    def stamp(self, name: str) -> Stamp | None:
        return self.inner.stamp(name)

    def size(self, name: str) -> int | None:
        return self.inner.size(name)

    def names(self, prefix: str = "") -> Iterator[str]:
        return self.inner.names(prefix)

    def where(self, name: str) -> str:
        return self.inner.where(name)

    def write(self, name: str, data: bytes) -> None:
        raise StoreError(f"cannot write {self.where(name)}: the store {self.location} is "
                         f"read-only here; nothing was written")

    def delete(self, name: str) -> bool:
        raise StoreError(f"cannot delete {self.where(name)}: the store {self.location} is "
                         f"read-only here")


class Tiered:
    """Several backends as one: reads from the first tier holding a blob, writes and deletes
    in the first tier only (the local store in front of a shared one)."""

    def __init__(self, first: Backend, *others: Backend) -> None:
        self.tiers = (first, *others)
        self.location = first.location

    def __repr__(self) -> str:
        return f"Tiered({', '.join(map(repr, self.tiers))})"

    def _holder(self, name: str) -> tuple[int, Backend, Stamp] | None:
        for index, tier in enumerate(self.tiers):
            stamp = tier.stamp(name)
            if stamp is not None:
                return index, tier, stamp
        return None

    def read(self, name: str, *, limit: int | None = None) -> bytes | None:
        for tier in self.tiers:
            data = tier.read(name, limit=limit)
            if data is not None:
                return data
        return None

    def read_stamped(self, name: str, *, limit: int | None = None
                     ) -> tuple[bytes, Stamp] | None:
        for index, tier in enumerate(self.tiers):
            read = tier.read_stamped(name, limit=limit)
            if read is not None:
                return read[0], (index, *read[1])  # tagged with the tier, as stamp() is
        return None

    def stamp(self, name: str) -> Stamp | None:
        held = self._holder(name)
        # Tagged with the tier: the same stamp in two tiers is not the same blob.
        return None if held is None else (held[0], *held[2])

    def size(self, name: str) -> int | None:
        held = self._holder(name)
        return None if held is None else held[1].size(name)

    def where(self, name: str) -> str:
        held = self._holder(name)
        return (self.tiers[0] if held is None else held[1]).where(name)

    def names(self, prefix: str = "") -> Iterator[str]:
        import heapq

        previous = None
        for name in heapq.merge(*(tier.names(prefix) for tier in self.tiers)):
            if name != previous:
                yield name
            previous = name

    def write(self, name: str, data: bytes) -> None:
        self.tiers[0].write(name, data)

    def delete(self, name: str) -> bool:
        return self.tiers[0].delete(name)


__all__ = ["TEMP_SUFFIX", "Backend", "BlobTooLarge", "LocalDirectory", "NotFollowed", "ReadOnly",
           "Stamp", "Tiered"]
