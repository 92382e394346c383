"""File stamps: a file's (size, mtime_ns, inode), to tell cheaply whether it may have changed.

Something derived from a file's content (a content hash, a parsed entry) is reused while the
file's stamp is unchanged. An unchanged stamp is not proof of unchanged content — a rewrite in
place of the same size that restores the mtime keeps it — and a file modified very recently is
not trusted at all (:func:`is_racily_clean`).
"""

from __future__ import annotations

import os
import time

Stamp = tuple[int, int, int]
"""(size, mtime_ns, inode) of a file."""

RACY_NS = 2_000_000_000
"""How recently modified a file must be for :func:`is_racily_clean` (two seconds)."""


def stamp_of(st: os.stat_result) -> Stamp:
    """The stamp of a file already stat-ed."""
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def file_stamp(path: str, *, follow_symlinks: bool = True) -> Stamp | None:
    """The stamp of the file at ``path``; None when there is none (the file or a directory on
    its path is absent)."""
    try:
        st = os.stat(path, follow_symlinks=follow_symlinks)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return stamp_of(st)


def is_racily_clean(st_or_stamp: os.stat_result | Stamp, now_ns: int | None = None) -> bool:
    """True when the file was modified within :data:`RACY_NS` of ``now_ns`` (default: now), or
    in the future: its stamp may not change on the next rewrite, so what was read from it must
    not be reused on the strength of the stamp alone."""
    # A file modified this recently is re-read on every use: within the timestamp granularity a
    # rewrite of the same size can keep (size, mtime_ns), the "racily clean" problem git also has.
    # os.stat_result is a tuple too (st_mode, st_ino, …): tell it apart from a Stamp first.
    mtime_ns = st_or_stamp.st_mtime_ns if isinstance(st_or_stamp, os.stat_result) \
        else st_or_stamp[1]
    return (time.time_ns() if now_ns is None else now_ns) - mtime_ns <= RACY_NS
