"""What each recorded call did, for tests, the demo and reports: a
[`CallEvent`][memo_replay.CallEvent] per call, collected by
[`track()`][memo_replay.track] (its docstring has an example)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, NamedTuple

Outcome = Literal["replayed", "recorded", "bypassed", "missed"]


class CallEvent(NamedTuple):
    """One call of a recorded function, as [`track()`][memo_replay.track] collects it.

    ```pycon
    >>> import memo_replay
    >>> @memo_replay.recorded
    ... def double(x: int) -> int:
    ...     return 2 * x
    >>> with memo_replay.track() as calls:
    ...     double(2), double(2)
    (4, 4)
    >>> [(call.function, call.outcome) for call in calls]
    [('__main__.double', 'recorded'), ('__main__.double', 'replayed')]
    ```
    """

    function: str
    """The recorded function's id, `module.qualname` (as `.memo.id` says)."""
    key: str | None
    """The call's key (None for a `bypassed` call: mode `off` makes no key)."""
    outcome: Outcome
    """What the call did: `"replayed"` (a recording was returned; the function did not run),
    `"recorded"` (the function ran and its result was recorded), `"bypassed"` (the function
    ran and nothing was stored: mode `off`) or `"missed"` (no recording, and mode `replay`
    raised [`ReplayMiss`][memo_replay.ReplayMiss] instead of calling)."""
    duration_s: float
    """This call's own time, in seconds (a replay's is how long replaying took)."""
    recorded_duration_s: float
    """How long the original call took when it was recorded, in seconds: for a replay, the
    time it saved; for a call that ran, its own time again (0.0 for a miss)."""
    store: str | None = None
    """The store directory the call used (None in mode `off`)."""
    detail: str | None = None
    """For a `missed` call: the explanation of the miss (the error's message)."""
    items: int | None = None
    """For a stream (a generator function's call): how many items it yielded (None for
    other calls)."""


_listeners: ContextVar[tuple[list[CallEvent], ...]] = ContextVar("memo_replay_listeners",
                                                                 default=())


@contextmanager
def track() -> Iterator[list[CallEvent]]:
    """Collect a [`CallEvent`][memo_replay.CallEvent] for every recorded call made inside the
    block (in this thread or task), in the order they finish.

    ```pycon
    >>> import memo_replay
    >>> with memo_replay.track() as calls:
    ...     pass
    >>> calls
    []
    ```
    """
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
