"""How values and times are shown to people in messages and reports (one way everywhere)."""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datetime as dt


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to about ``limit`` characters (``…`` marks the cut)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def printable(value: object) -> str:
    """``str(value)`` safe to print on any terminal: control characters (ESC, BEL, CR, LF, other
    C0/C1 controls), format characters (bidi overrides, zero-width characters), line separators
    and lone surrogates are shown escaped (``\\x1b``, ``\\u202e``); a byte that was not UTF-8 in a
    file name (decoded with ``surrogateescape``) is shown as ``\\xNN``."""
    text = str(value)
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def json_printable(text: str) -> str:
    """JSON text (as ``json.dumps(..., ensure_ascii=False)`` writes it) with what
    :func:`printable` escapes written as ``\\uXXXX`` escapes instead: still the same JSON value,
    safe on a terminal and encodable as strict UTF-8 (lone surrogates included). Line breaks
    are kept: ``json.dumps`` escapes those inside strings, so the ones left are indentation."""
    return _UNSAFE.sub(_json_escape, text) if _UNSAFE.search(text) else text


# Unicode categories Cc (controls), Cf (format: bidi overrides, zero-width), Cs (surrogates), Zl
# and Zp (line and paragraph separators), as one character class (written out: deriving it from
# `unicodedata` at import would cost 0.1 s of every command's startup; a test checks it still
# covers the running Python's Unicode database).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x0A:
        return "\n"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON writes characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def when(value: dt.datetime | None, missing: str = "-") -> str:
    """A time as entries write it (``2026-11-21T12:00:00Z``), or ``missing`` when unknown."""
    if value is None:
        return missing
    from memo_replay.store.entry import timestamp

    return timestamp(value)


def rerecord_command(node_id: str | None = None) -> str:
    """The command that re-records the pytest test ``node_id``, else what is running now (the
    current pytest test, or this script)."""
    import shlex  # messages only: not on the replay path

    current_test = os.environ.get("PYTEST_CURRENT_TEST")
    if node_id is None and current_test:
        node_id = current_test.rsplit(" (", 1)[0]
    if node_id is not None:
        return f"MEMO_MODE=record python -m pytest {shlex.quote(node_id)}"
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    return "MEMO_MODE=record " + shlex.join(["python", *argv[1:]])
