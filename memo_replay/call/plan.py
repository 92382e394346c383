"""The decision table: what a recorded call does, given the mode and what the store holds.

A pure function of its inputs, tested exhaustively (every mode × every finding). The replayer
says what it found; :func:`decide` says what to do about it; the decorator does it.

============================ ========== ================== ========== =======
found \\ mode                 auto       replay             record     off
============================ ========== ================== ========== =======
``found``                    replay     replay             record     bypass
``absent``                   record     miss               record     bypass
``expired``                  record     replay, warn/fail¹ record     bypass
``serializer-changed``       record     miss               record     bypass
``dependencies-changed``     record     miss               record     bypass
``corrupt``                  record²    fail               record     bypass
``newer-format``             fail       fail               record³    bypass
============================ ========== ================== ========== =======

¹ ``[tool.memo_replay] replay_expired``: ``warn`` replays with a warning, ``fail`` raises
:class:`~memo_replay.errors.ExpiredRecording`. ² with a warning naming the damage. ³ the store
refuses to overwrite an entry of a newer format, so recording fails with that error too.
``record`` and ``off`` do not depend on what the store holds: they never look.
"""

from __future__ import annotations

from enum import Enum

from memo_replay.modes import Mode


class Found(str, Enum):
    """What the replayer found for a call's key. A new reason a recording may not serve (its
    observed dependencies changed, say) is a new member and a new row in :func:`decide`."""

    FOUND = "found"
    ABSENT = "absent"
    EXPIRED = "expired"
    """Older than its ``ttl``."""
    SERIALIZER_CHANGED = "serializer-changed"
    """Written by another version of its serializer."""
    DEPENDENCIES_CHANGED = "dependencies-changed"
    """Code that ran or a file read during the recording changed since (observed
    dependencies, see :mod:`memo_replay.keys.observed`)."""
    CORRUPT = "corrupt"
    """Damaged, or its payload does not load."""
    NEWER_FORMAT = "newer-format"
    """Written by a newer memo_replay."""


class Action(str, Enum):
    """What the call does."""

    REPLAY = "replay"
    REPLAY_WARN = "replay-warn"
    """Replay, with a warning (an expired recording in strict replay)."""
    RECORD = "record"
    """Call the function and record its result (under the key's record-once lock)."""
    RECORD_WARN = "record-warn"
    """Record over a damaged entry, with a warning."""
    MISS = "miss"
    """Raise :class:`~memo_replay.errors.ReplayMiss`; the function is not called."""
    FAIL = "fail"
    """Raise the error the replayer found; the function is not called."""
    BYPASS = "bypass"
    """Call the function; store nothing."""


def looks_up(mode: Mode) -> bool:
    """Whether a call in ``mode`` looks in the store at all."""
    return mode is Mode.AUTO or mode is Mode.REPLAY


def decide(mode: Mode, found: Found, *, replay_expired: str = "warn") -> Action:
    """The table above."""
    if mode is Mode.OFF:
        return Action.BYPASS
    if mode is Mode.RECORD:
        return Action.RECORD
    if found is Found.FOUND:
        return Action.REPLAY
    if found is Found.NEWER_FORMAT:
        return Action.FAIL
    if mode is Mode.AUTO:
        return Action.RECORD_WARN if found is Found.CORRUPT else Action.RECORD
    # strict replay
    if found is Found.EXPIRED:
        return Action.FAIL if replay_expired == "fail" else Action.REPLAY_WARN
    return Action.FAIL if found is Found.CORRUPT else Action.MISS


__all__ = ["Action", "Found", "decide", "looks_up"]
