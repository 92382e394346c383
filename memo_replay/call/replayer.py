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
    from memo_replay.serializers.stream import Kind
    from memo_replay.store import Hit, Payload, Store

STREAM = "stream"
"""The stream payload's serializer id (:data:`memo_replay.serializers.stream.STREAM`), spelled
out so that a replay of a plain result needs no stream module."""
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
        self._serializers: dict[tuple[str, str | None, bool], Serializer] = {}

    def find(self, store: Store, key: str, ttl: float | None) -> Lookup:
        """What the store holds for ``key`` (``ttl``: how long a recording stays valid)."""
        try:
            hit = store.lookup(self.function, key)
            if hit is None:
                return _ABSENT
            payload = hit.payload
            if (payload.serializer == STREAM) != (self.subject.stream is not None):
                raise CorruptEntry(store.entry_path(self.function, key), self._shape(payload))
            if payload.serializer == STREAM:
                return self._find_stream(store, key, ttl, hit)
            if payload.serializer == EXCEPTION and not self.subject.options.record_exceptions:
                raise CorruptEntry(store.entry_path(self.function, key), self.UNASKED_EXCEPTION)
            serializer = self.serializer_for(payload.serializer, payload.type)
            if serializer.version != payload.serializer_version:
                return Lookup(Found.SERIALIZER_CHANGED, hit)
            if hit.observed is not None:
                changed = self.observed_changes(hit.observed)
                if changed:
                    return Lookup(Found.DEPENDENCIES_CHANGED, hit, changes=changed)
            decoded = hit.decoded
            value = decoded[0] if decoded is not None and serializer.id == "json" \
                else serializer.loads(payload.data)
        except UnsupportedFormat as exc:
            return Lookup(Found.NEWER_FORMAT, error=exc)
        except (CorruptEntry, SerializationError, ValueError, TypeError) as exc:
            return self._corrupt(store, key, exc)
        return self._fresh(store, key, ttl, hit, value)

    def _corrupt(self, store: Store, key: str, exc: Exception) -> Lookup:
        """What a damaged entry (or one whose payload does not load) is found as."""
        if isinstance(exc, CorruptEntry):
            return Lookup(Found.CORRUPT, error=exc)
        if isinstance(exc, SerializationError) and not isinstance(exc, InvalidPayload):
            return Lookup(Found.CORRUPT, error=exc)
        # A payload or type name no serializer wrote (InvalidPayload), or one that does not
        # load (ValueError, TypeError).
        error = CorruptEntry(store.entry_path(self.function, key), str(exc)
                             if isinstance(exc, InvalidPayload)
                             else f"its payload does not load ({exc})")
        error.__cause__ = exc
        return Lookup(Found.CORRUPT, error=error)

    def _fresh(self, store: Store, key: str, ttl: float | None, hit: Hit, value: Any
               ) -> Lookup:
        """A found recording: expired, or found (``value``: its decoded result)."""
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

    def _find_stream(self, store: Store, key: str, ttl: float | None, hit: Hit) -> Lookup:
        """:meth:`find` for a stream's recording: each kind of item is read by its own
        serializer, which must be this process's version of it."""
        from memo_replay.serializers.stream import read_stream

        def serializer(kind: Kind) -> Serializer:
            if kind.serializer == EXCEPTION and not self.subject.options.record_exceptions:
                raise CorruptEntry(store.entry_path(self.function, key), self.UNASKED_EXCEPTION)
            found = self.serializer_for(kind.serializer, kind.type, item=True)
            if found.version != kind.serializer_version:
                raise _SerializerChanged
            return found

        try:
            if hit.observed is not None:
                changes = self.observed_changes(hit.observed)
                if changes:
                    return Lookup(Found.DEPENDENCIES_CHANGED, hit, changes=changes)
            decoded = hit.decoded
            value = read_stream(hit.payload.data, serializer,
                                None if decoded is None else decoded[0])
        except _SerializerChanged:
            return Lookup(Found.SERIALIZER_CHANGED, hit)
        except (CorruptEntry, SerializationError, ValueError, TypeError) as exc:
            return self._corrupt(store, key, exc)
        return self._fresh(store, key, ttl, hit, value)

    def _shape(self, payload: Payload) -> str:
        """Why a recording of the other shape (a stream for a plain function, or a plain
        result for a generator function) is not replayed."""
        if payload.serializer == STREAM:
            return (f"holds a recorded stream (the items a generator yielded), but "
                    f"`{self.function}` is not a generator function; re-record it")
        return (f"holds a single result, but `{self.function}` is a generator function (its "
                f"calls are streams); re-record it")

    def serializer_for(self, serializer_id: str, stored_type: str | None, *,
                       item: bool = False) -> Serializer:
        """The serializer that reads a payload written by ``serializer_id`` for
        ``stored_type`` (``item``: one item of a stream); resolved once per serializer and
        type."""
        cache_key = (serializer_id, stored_type, item)
        serializer = self._serializers.get(cache_key)
        if serializer is None:
            from memo_replay.serializers import registry  # loaded with the first recording

            subject = self.subject
            annotation = subject.return_annotation
            if item:  # the annotation declares the stream (Iterator[Chunk]), not the item
                from memo_replay.call.stream import stream_annotations

                annotation = stream_annotations(annotation)[0]
            serializer = registry.resolve(
                serializer_id, stored_type, subject.options.serializer,
                function=self.function, annotation=annotation,
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
        written = [(payload.serializer, payload.type, payload.serializer_version)]
        what = f"the recording of `{self.function}` for this call (key {key}) was"
        if payload.serializer == STREAM:
            from memo_replay.serializers.stream import stored_stream

            kinds = stored_stream(payload.data).kinds
            written = [(kind.serializer, kind.type, kind.serializer_version) for kind in kinds]
            what = f"the stream recorded by `{self.function}` for this call (key {key}) has items"
        for serializer_id, stored_type, version in written:
            serializer = self.serializer_for(serializer_id, stored_type,
                                             item=payload.serializer == STREAM)
            if serializer.version != version:
                break
        return ReplayMiss(
            f"memo_replay (replay mode): {what} written by version {version} of the "
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


class _SerializerChanged(Exception):
    """A stream item's serializer has another version in this process."""


__all__ = ["EXCEPTION", "STREAM", "Lookup", "Replayer", "span"]
