"""File stamps (memo_replay.stamps): (size, mtime_ns, inode) and the racily-clean rule."""

from __future__ import annotations

import os
from pathlib import Path

from memo_replay.stamps import RACY_NS, file_stamp, is_racily_clean, stamp_of


def test_a_stamp_is_size_mtime_and_inode(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_bytes(b"12345")
    os.utime(path, ns=(7, 1_000_000_007))
    st = path.stat()
    assert stamp_of(st) == (5, 1_000_000_007, st.st_ino)
    assert file_stamp(str(path)) == stamp_of(st)


def test_an_absent_file_has_no_stamp(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("a file, not a directory")
    assert file_stamp(str(tmp_path / "missing.json")) is None
    assert file_stamp(str(tmp_path / "plain" / "below.json")) is None  # NotADirectoryError


def test_a_symlink_is_followed_unless_asked_not_to(tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    target.write_text("content")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert file_stamp(str(link)) == file_stamp(str(target))
    assert file_stamp(str(link), follow_symlinks=False) == stamp_of(link.lstat())
    target.unlink()
    assert file_stamp(str(link)) is None
    assert file_stamp(str(link), follow_symlinks=False) is not None


def test_racily_clean_within_the_window_or_in_the_future() -> None:
    now = 10 * RACY_NS
    assert is_racily_clean((1, now, 1), now_ns=now)
    assert is_racily_clean((1, now - RACY_NS, 1), now_ns=now)
    assert not is_racily_clean((1, now - RACY_NS - 1, 1), now_ns=now)
    assert is_racily_clean((1, now + RACY_NS * 5, 1), now_ns=now)  # a clock skewed ahead


def test_racily_clean_reads_the_mtime_of_a_stat_result(tmp_path: Path) -> None:
    # os.stat_result is a tuple whose item [1] is the inode: the mtime must come from its field.
    now = 10**18
    st = os.stat_result((0o100644, now, 0, 1, 0, 0, 5, 0, 0, 0), {"st_mtime_ns": 1_000})
    assert not is_racily_clean(st, now_ns=now)  # [1] == now would be racy
    assert is_racily_clean(stamp_of(st), now_ns=1_000)
    path = tmp_path / "data.txt"
    path.write_text("x")
    assert is_racily_clean(path.stat())  # just written
    os.utime(path, ns=(0, 1_000))
    assert not is_racily_clean(path.stat())  # 1 µs after the epoch: long ago
