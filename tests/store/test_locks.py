"""The record-once lock, step by step: the window between an acquirer's ``open`` and ``flock``.

A holder deletes its lock file, then releases the lock. An acquirer that opened the file just
before the delete then locks a file no longer at the path; without the "is the locked file still
the one at the path" check it would believe it holds the lock while the next acquirer creates
and locks a new file, and two recorders would run at once. No timing here: ``flock`` in the
locks module is wrapped so that the holder's release (and, in one case, a third acquirer)
happens exactly between the second acquirer's ``open`` and its ``flock``.
"""

from __future__ import annotations

import fcntl
import os
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from memo_replay.store import locks
from memo_replay.store.locks import KeyLock


def new_lock(path: Path) -> KeyLock:
    return KeyLock(str(path), function="mod.f", key="k" * 32)


def fd_is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def is_free(lock_path: Path) -> bool:
    """Whether a fresh acquirer gets the lock now (it releases it again at once)."""
    probe = new_lock(lock_path)
    if not probe.try_acquire():
        return False
    probe.release()
    return True


def run_in_the_window(monkeypatch: pytest.MonkeyPatch,
                      step: Callable[[], None]) -> list[tuple[int, int]]:
    """Make the next ``flock`` of the locks module run ``step`` just before it locks; returns
    (fd, inode) of each file that ``flock`` was asked to lock while the step was pending."""
    real_flock = fcntl.flock
    pending = [step]
    seen: list[tuple[int, int]] = []

    def flock(fd: int, operation: int) -> None:
        if pending:
            seen.append((fd, os.fstat(fd).st_ino))
            pending.pop()()  # the acquirer has opened its file and not yet locked it
        real_flock(fd, operation)

    monkeypatch.setattr(locks, "fcntl", types.SimpleNamespace(
        flock=flock, LOCK_EX=fcntl.LOCK_EX, LOCK_NB=fcntl.LOCK_NB))
    return seen


def test_holder_releasing_between_open_and_flock_is_not_a_second_holder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The holder deletes the file and releases while the second acquirer is between ``open``
    and ``flock``: the second locks a file no longer at the path, so it must not count as
    holding the lock; a third acquirer then takes it, and is the only holder."""
    path = tmp_path / "key.lock"
    holder, second, third = new_lock(path), new_lock(path), new_lock(path)
    assert holder.try_acquire()
    holder_inode = path.stat().st_ino
    seen = run_in_the_window(monkeypatch, holder.release)

    assert second.try_acquire() is False
    # The window really was exercised: the second opened the holder's file before the delete.
    [(fd, inode)] = seen
    assert inode == holder_inode
    assert not path.exists()  # the holder's release deleted it
    assert not fd_is_open(fd)  # the stale file is closed, not kept as a lock

    monkeypatch.undo()
    assert third.try_acquire() is True
    assert not is_free(path)  # the third is the only holder
    assert second.try_acquire() is False  # ... and a retry of the second waits for it
    third.release()
    assert not path.exists()
    assert second.try_acquire() is True  # free again: the retry takes it
    assert not is_free(path)
    second.release()
    assert is_free(path)  # and it is free at the end
    assert list(tmp_path.iterdir()) == []


def test_a_new_holder_of_the_path_is_not_shared_with_a_stale_acquirer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same window, and a third acquirer creates and locks a new file at the path before the
    second's ``flock``: the second locks the old file, whose inode is no longer the path's, so
    it must not hold the lock too."""
    path = tmp_path / "key.lock"
    holder, second, third = new_lock(path), new_lock(path), new_lock(path)
    assert holder.try_acquire()
    holder_inode = path.stat().st_ino
    third_got: list[bool] = []

    def holder_releases_then_third_acquires() -> None:
        holder.release()
        third_got.append(third.try_acquire())

    seen = run_in_the_window(monkeypatch, holder_releases_then_third_acquires)
    assert second.try_acquire() is False
    assert third_got == [True]
    [(fd, inode)] = seen
    assert inode == holder_inode
    assert path.stat().st_ino != holder_inode  # the third's file is a new one
    assert not fd_is_open(fd)

    monkeypatch.undo()
    assert not is_free(path)  # only the third holds it
    third.release()
    assert second.try_acquire() is True
    assert not is_free(path)
    second.release()
    assert list(tmp_path.iterdir()) == []
