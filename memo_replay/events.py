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
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["replayed", "recorded", "bypassed"]


@dataclass(frozen=True)
class CallEvent:
    """One call of a recorded function.

    ``duration_s`` is this call's own time; ``recorded_duration_s`` is how long the original
    call took when it was recorded (the time a replay saved).
    """

    function: str
    key: str | None
    outcome: Outcome
    duration_s: float
    recorded_duration_s: float


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


def listening() -> bool:
    return bool(_listeners.get())


def emit(event: CallEvent) -> None:
    for log in _listeners.get():
        log.append(event)
