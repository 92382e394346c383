"""Record once: an exclusive lock per key, across processes, threads and asyncio tasks.

When several pytest-xdist workers (or threads, or concurrent awaits) miss the same key, one of
them calls the function and records; the others wait for the lock, find the fresh recording and
replay it. The lock is ``flock`` on a file in the store's ``.cache/locks/``:

- the kernel releases it when its holder dies, even by SIGKILL, so a crashed recorder never
  leaves others waiting for an expiry (diskcache's spin lock would, for as long as the slowest
  call might take);
- every attempt opens the file anew, so threads and tasks of one process exclude each other too
  (``flock`` belongs to the open file, not the process);
- the holder deletes the file before releasing it, and an acquirer checks that the file it locked
  is still the one at the path, so lock files do not pile up and a deleted file is never trusted.

Acquiring is a non-blocking attempt; the caller waits between attempts (``time.sleep`` or
``asyncio.sleep``), so an event loop is never blocked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator

from memo_replay.errors import LockTimeout, StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock, recording still atomic
    fcntl = None  # type: ignore[assignment]


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class KeyLock:
    """The lock for recording one key."""

    def __init__(self, path: str, *, function: str, key: str) -> None:
        self.path = path
        self.function = function
        self.key = key
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits."""
        if fcntl is None:
            return True
        try:
            # O_NOFOLLOW: a lock file planted as a symlink never creates or opens its target.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o666)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise StoreError(f"cannot lock `{self.function}` (key {self.key}): the lock file "
                             f"{self.path} is a symbolic link, never followed; delete it (the "
                             f".cache/ directory is derived data, safe to delete)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        try:
            current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if not current:  # the holder we waited for deleted it: lock the new file instead
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def acquire(self, timeout: float) -> None:
        """Wait for the lock (sleeping between attempts); :class:`LockTimeout` at the end."""
        for delay in self._waits(timeout):
            if self.try_acquire():
                return
            time.sleep(delay)

    async def acquire_async(self, timeout: float) -> None:
        """Like :meth:`acquire`, yielding to the event loop between attempts."""
        import asyncio  # only async callers pay for importing it
        for delay in self._waits(timeout):
            if self.try_acquire():
                return
            await asyncio.sleep(delay)

    def _waits(self, timeout: float) -> Iterator[float]:
        """Delays to sleep between attempts; raises :class:`LockTimeout` at the deadline."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"waited {timeout:g} s for another process recording `{self.function}` "
                    f"(key {self.key}, lock {self.path}); it is still running. Raise "
                    f"`lock_timeout` in [tool.memo_replay], or find the process that holds it."
                )
            yield delay
            delay = min(delay * 2, 0.05)
