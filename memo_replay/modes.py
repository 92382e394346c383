"""What a recorded call does on a hit and on a miss, and where that choice comes from.

Sources, strongest first: :func:`mode` (a context manager, thread- and task-local), the pytest
option ``--memo-mode``, the ``MEMO_MODE`` environment variable, ``@recorded(mode=...)``,
``[tool.memo_replay] mode`` in ``pyproject.toml``, and the default: ``replay`` when ``CI`` is set,
``auto`` otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import Enum

from memo_replay.errors import InvalidMode


class Mode(str, Enum):
    """The four modes: what a recorded call does with a recording (a hit) and without one
    (a miss).

    A `str` enum: `Mode("replay") is Mode.REPLAY`, and `Mode.REPLAY == "replay"`. Where a mode
    is accepted (`@recorded(mode=...)`, [`mode()`][memo_replay.mode]) the string works too.
    Where a call's mode comes from, strongest first: [`mode()`][memo_replay.mode], the pytest
    option `--memo-mode`, the `MEMO_MODE` environment variable, `@recorded(mode=...)`,
    `[tool.memo_replay] mode`, and the default: `replay` when `CI` is set, `auto` otherwise
    (see [Modes](modes.md)).
    """

    AUTO = "auto"
    """Replay a hit; on a miss call the function, record and return."""
    RECORD = "record"
    """Always call the function and (re-)record."""
    REPLAY = "replay"
    """Replay a hit; on a miss raise [`ReplayMiss`][memo_replay.ReplayMiss], never call."""
    OFF = "off"
    """Always call the function; read and store nothing."""

    def __str__(self) -> str:
        return self.value


_VALID = ", ".join(m.value for m in Mode)
_BY_TEXT = {m.value: m for m in Mode}
_FALSY = {"", "0", "false", "no", "off"}

_context_mode: ContextVar[Mode | None] = ContextVar("memo_replay_mode", default=None)
# Process-wide, not a ContextVar: a session mode (``--memo-mode``) must also reach the threads a
# test starts, which begin with an empty context.
_session_mode: Mode | None = None


def parse_mode(value: str | Mode, *, source: str) -> Mode:
    """Turn ``value`` into a :class:`Mode`, or raise :class:`InvalidMode` naming ``source``.

    ```pycon
    >>> from memo_replay.modes import parse_mode
    >>> parse_mode(" Replay ", source="MEMO_MODE")
    <Mode.REPLAY: 'replay'>
    ```
    """
    if isinstance(value, Mode):
        return value
    known = _BY_TEXT.get(value)  # the hot path: MEMO_MODE is read on every call
    if known is not None:
        return known
    try:
        return Mode(str(value).strip().lower())
    except ValueError:
        raise InvalidMode(
            f"invalid memo_replay mode {value!r} from {source}; valid modes are: {_VALID}"
        ) from None


def ci_is_set() -> bool:
    """True when the ``CI`` environment variable says we run in CI (``CI=true``, ``CI=1``…)."""
    return os.environ.get("CI", "").strip().lower() not in _FALSY


def default_mode() -> Mode:
    """``replay`` in CI, ``auto`` elsewhere."""
    return Mode.REPLAY if ci_is_set() else Mode.AUTO


def resolve_mode(decorator_mode: Mode | None, config_mode: Mode | None) -> Mode:
    """The mode in force for one call, following the documented precedence."""
    forced = _context_mode.get() or _session_mode
    if forced is not None:
        return forced
    env = os.environ.get("MEMO_MODE")
    if env:
        return parse_mode(env, source="the MEMO_MODE environment variable")
    return decorator_mode or config_mode or default_mode()


@contextmanager
def mode(value: str | Mode) -> Iterator[Mode]:
    """Force a mode for the calls made inside the block (thread- and task-local); it beats
    every other setting (`MEMO_MODE`, `--memo-mode`, `@recorded(mode=...)`, the config).

    `value` is a [`Mode`][memo_replay.Mode] or its name (`"auto"`, `"record"`, `"replay"`,
    `"off"`; an invalid one raises [`InvalidMode`][memo_replay.InvalidMode]); the block gets
    the `Mode`.

    ```pycon
    >>> import memo_replay
    >>> with memo_replay.mode("off") as m:
    ...     print(m)
    off
    ```
    """
    parsed = parse_mode(value, source="memo_replay.mode()")
    token = _context_mode.set(parsed)
    try:
        yield parsed
    finally:
        _context_mode.reset(token)


def set_session_mode(value: str | Mode | None, *, source: str) -> None:
    """Set the session-wide mode (used by the pytest plugin's ``--memo-mode``)."""
    global _session_mode
    _session_mode = None if value is None else parse_mode(value, source=source)
