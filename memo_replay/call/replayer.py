"""Finding a call's recording: lookup, expiry, serializer version, damage, decoding.

:meth:`Replayer.find` looks the key up in the store and says what it found
(:class:`~memo_replay.call.plan.Found`) with the decoded value when there is one; it never
decides what to do about it (that is :func:`~memo_replay.call.plan.decide`) and never writes.
The errors and warnings a finding turns into are built here too, so their wording lives in one
place.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from memo_replay.call.plan import Found
from memo_replay.errors import (
    CorruptEntry,
    ExpiredRecording,
    InvalidPayload,
    MemoReplayError,
    ReplayMiss,
    SerializationError,
    UnsupportedFormat,
)

if TYPE_CHECKING:
    from memo_replay.call.subject import Subject
    from memo_replay.keys import CallKey
    from memo_replay.keys.observed import Change, Observed
    from memo_replay.serializers import Serializer
    from memo_replay.store import Hit, Payload, Store

EXCEPTION = "exception"
"""ExceptionSerializer.id, spelled out so that a replay needs no serializer module to tell a
recorded exception (raised again) from a recorded result."""


class Lookup:
    """What :meth:`Replayer.find` found."""

    __slots__ = ("changes", "error", "found", "hit", "value")

    def __init__(self, found: Found, hit: Hit | None = None, value: Any = None,
                 error: MemoReplayError | None = None, changes: list[Change] | None = None
                 ) -> None:
        self.found = found
        self.hit = hit
        self.value = value
        """The decoded result (``found`` and ``expired``)."""
        self.error = error
        """Why the entry cannot be replayed (``corrupt``, ``newer-format``)."""
        self.changes = changes
        """The observed dependencies that changed (``dependencies-changed``)."""


_ABSENT = Lookup(Found.ABSENT)
_FOUND = Found.FOUND  # bound once: every hit is one (an enum member lookup costs ~50 ns)


class Replayer:
    """Looks up one function's recordings and decodes them."""

    UNASKED_EXCEPTION = ("holds a recorded exception, but the function does not record "
                         "exceptions (@recorded(record_exceptions=True)): it is never raised. "
                         "If record_exceptions was turned off, re-record or delete it")

    def __init__(self, subject: Subject) -> None:
        self.subject = subject
        self.function = subject.id  # bound once: every lookup names it
        self._serializers: dict[tuple[str, str | None], Serializer] = {}

    def find(self, store: Store, key: str, ttl: float | None) -> Lookup:
        """What the store holds for ``key`` (``ttl``: how long a recording stays valid)."""
        try:
            hit = store.lookup(self.function, key)
            if hit is None:
                return _ABSENT
            if hit.payload.serializer == EXCEPTION and not self.subject.options.record_exceptions:
                raise CorruptEntry(store.entry_path(self.function, key), self.UNASKED_EXCEPTION)
            serializer = self.serializer_for(hit.payload)
            if serializer.version != hit.payload.serializer_version:
                return Lookup(Found.SERIALIZER_CHANGED, hit)
            if hit.observed is not None:
                changed = self.observed_changes(hit.observed)
                if changed:
                    return Lookup(Found.DEPENDENCIES_CHANGED, hit, changes=changed)
            decoded = hit.decoded
            value = decoded[0] if decoded is not None and serializer.id == "json" \
                else serializer.loads(hit.payload.data)
        except UnsupportedFormat as exc:
            return Lookup(Found.NEWER_FORMAT, error=exc)
        except (CorruptEntry, SerializationError) as exc:
            if isinstance(exc, InvalidPayload):  # a payload or type name no serializer wrote
                error = CorruptEntry(store.entry_path(self.function, key), str(exc))
                error.__cause__ = exc
                return Lookup(Found.CORRUPT, error=error)
            return Lookup(Found.CORRUPT, error=exc)
        except (ValueError, TypeError) as exc:
            error = CorruptEntry(store.entry_path(self.function, key),
                                 f"its payload does not load ({exc})")
            error.__cause__ = exc
            return Lookup(Found.CORRUPT, error=error)
        if ttl is not None and hit.recorded_at is not None:
            from memo_replay.store.entry import epoch_seconds  # loaded with the store

            try:
                age = time.time() - epoch_seconds(hit.recorded_at)
            except ValueError:
                return Lookup(Found.CORRUPT, error=CorruptEntry(
                    store.entry_path(self.function, key),
                    f"its `recorded_at` ({hit.recorded_at!r}) is not a time, so its age for "
                    f"the ttl is unknown"))
            if age > ttl:
                return Lookup(Found.EXPIRED, hit, value)
        return Lookup(_FOUND, hit, value)

    def serializer_for(self, payload: Payload) -> Serializer:
        """The serializer that reads ``payload`` (resolved once per serializer and type)."""
        cache_key = (payload.serializer, payload.type)
        serializer = self._serializers.get(cache_key)
        if serializer is None:
            from memo_replay.serializers import registry  # loaded with the first recording

            subject = self.subject
            serializer = registry.resolve(
                payload.serializer, payload.type, subject.options.serializer,
                function=self.function, annotation=subject.return_annotation,
                pickle_allowed=subject.config.allows_pickle(self.function))
            self._serializers[cache_key] = serializer
        return serializer

    def observed_changes(self, observed: Observed) -> list[Change]:
        """Which of a recording's observed dependencies changed (empty: none)."""
        from memo_replay.keys.observed import changes, context

        return changes(observed, *context(self.subject.root))

    # -- what findings turn into -------------------------------------------------------------

    def dependencies_changed(self, lookup: Lookup, key: str) -> ReplayMiss:
        assert lookup.changes
        listed = "\n".join(f"  - {change.message}" for change in lookup.changes)
        return ReplayMiss(
            f"memo_replay (replay mode): the recording of `{self.function}` for this call (key "
            f"{key}) depends on code that ran or files read during the recording, and they "
            f"changed since:\n{listed}\nTo re-record: {_rerecord_command()}",
            function=self.function, key=key)

    def expired(self, lookup: Lookup, key: str) -> tuple[str, ExpiredRecording]:
        """The warning for replaying an expired recording, and the error for refusing it."""
        assert lookup.hit is not None
        assert lookup.hit.recorded_at is not None  # an expired hit's time was read
        from memo_replay.store.entry import epoch_seconds

        ttl = self.subject.ttl or 0.0
        age = f"recorded {span(time.time() - epoch_seconds(lookup.hit.recorded_at))} ago, " \
              f"ttl {span(ttl)}"
        command = _rerecord_command()
        warning = (f"memo_replay: replaying an expired recording of `{self.function}` ({age}); "
                   f"re-record it with {command}")
        error = ExpiredRecording(
            f"memo_replay (replay mode): the recording of `{self.function}` for this call (key "
            f"{key}) has expired ({age}); [tool.memo_replay] replay_expired = \"fail\"."
            f"\nTo re-record: {command}", function=self.function, key=key)
        return warning, error

    def moved_hint(self, store: Store, call: CallKey) -> str:
        """For a miss that found no recording of this function at all: the lines saying that
        the store holds this very call under another function id (it was moved or renamed),
        and the command that moves those recordings; empty when it holds none. Cheap (a
        ``stat`` per function directory: :func:`memo_replay.moves.moved_from`)."""
        from memo_replay.moves import moved_from, mv_command  # misses only

        lines = [f"\nThis call was recorded under `{other}` (same code, arguments and files): "
                 f"if the function was moved or renamed, move its recordings instead of "
                 f"re-recording them: {mv_command(other, self.function, store)}"
                 for other in moved_from(store, call)]
        return "".join(lines)

    def serializer_changed(self, lookup: Lookup, key: str) -> ReplayMiss:
        assert lookup.hit is not None
        payload = lookup.hit.payload
        serializer = self.serializer_for(payload)
        return ReplayMiss(
            f"memo_replay (replay mode): the recording of `{self.function}` for this call "
            f"(key {key}) was written by version {payload.serializer_version} of the "
            f"{serializer.id!r} serializer; this process has version {serializer.version}, so "
            f"it is not replayed.\nTo re-record: {_rerecord_command()}",
            function=self.function, key=key)


def span(seconds: float) -> str:
    """A duration as people write it: ``45 s``, ``12 min``, ``3.5 h``, ``30 days``."""
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _rerecord_command() -> str:
    from memo_replay.text import rerecord_command  # messages only: not loaded by a replay

    return rerecord_command()


__all__ = ["EXCEPTION", "Lookup", "Replayer", "span"]
