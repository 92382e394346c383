"""What each recorded call did, for tests, the demo and reports.

>>> import memo_replay
>>> with memo_replay.track() as calls:
...     pass
>>> calls
[]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, NamedTuple

Outcome = Literal["replayed", "recorded", "bypassed", "missed"]


class CallEvent(NamedTuple):
    """One call of a recorded function.

    ``duration_s`` is this call's own time; ``recorded_duration_s`` is how long the original
    call took when it was recorded (the time a replay saved).
    """

    function: str
    key: str | None
    outcome: Outcome
    duration_s: float
    recorded_duration_s: float
    store: str | None = None
    """The store directory the call used (None in ``off`` mode)."""
    detail: str | None = None
    """For a ``missed`` call: the explanation of the miss."""
    items: int | None = None
    """For a stream (a generator function's call): how many items it yielded."""


_listeners: ContextVar[tuple[list[CallEvent], ...]] = ContextVar("memo_replay_listeners",
                                                                 default=())


@contextmanager
def track() -> Iterator[list[CallEvent]]:
    """Collect a :class:`CallEvent` for every recorded call made inside the block."""
    log: list[CallEvent] = []
    token = _listeners.set((*_listeners.get(), log))
    try:
        yield log
    finally:
        _listeners.reset(token)


# Process-wide logs (the pytest plugin's session log): they also see calls made in threads,
# which start with an empty context.
_process_logs: list[list[CallEvent]] = []


@contextmanager
def track_process() -> Iterator[list[CallEvent]]:
    """Like :func:`track`, for every call in the process, in any thread or task."""
    log: list[CallEvent] = []
    _process_logs.append(log)
    try:
        yield log
    finally:
        # By identity: list.remove compares with ==, and two empty logs are equal.
        _process_logs[:] = [other for other in _process_logs if other is not log]


def listening() -> bool:
    return bool(_process_logs) or bool(_listeners.get())


def emit(event: CallEvent) -> None:
    for log in (*_process_logs, *_listeners.get()):
        log.append(event)
