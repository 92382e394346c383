"""Recording a stream: the items of a generator function's call, as they arrive.

:func:`drive` runs the real generator and passes each item to the caller through a
:class:`StreamCapture`, which serializes it at once
(:class:`~memo_replay.serializers.stream.StreamWriter`), keeps its offset in the generator's
own time — the time spent producing, not the time the consumer took between items — and, once
the stream is exhausted, saves the recording like any other (redacted, scanned for secrets,
written atomically). A stream the consumer abandons (``break``, ``close()``, ``aclose()``,
garbage collection, ``throw()``) or that raises is not recorded (with ``record_exceptions``,
one that raises is: its items and the exception); nothing partial is ever written. While the
consumer runs between items the recording's observer is paused, so the consumer's code and
files are not taken for the stream's dependencies.
"""

from __future__ import annotations

import logging
import time
from array import array
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from memo_replay.call.recorder import Capture
from memo_replay.call.stream import sent_error, stream_annotations
from memo_replay.errors import SerializationError, hidden_from_pytest, warn
from memo_replay.events import CallEvent, emit, listening
from memo_replay.serializers.stream import STREAM, STREAM_VERSION, Kind, StreamWriter, json_text
from memo_replay.store.entry import Payload, checksum

# pytest hides this module's frames from a failing test's traceback (see hidden_from_pytest).
__tracebackhide__ = hidden_from_pytest

if TYPE_CHECKING:
    from memo_replay.call.recorder import Recorder
    from memo_replay.keys import CallKey
    from memo_replay.serializers import Serializer
    from memo_replay.store import Store

T = TypeVar("T")
_SCALARS = (str, int, float, bool, type(None))
_log = logging.getLogger("memo_replay")


class StreamCapture(Capture):
    """One real stream in progress: what :meth:`Recorder.around(stream=True)
    <memo_replay.call.recorder.Recorder.around>` gives :func:`drive`."""

    def __init__(self, recorder: Recorder, call: CallKey | None,
                 preview: Callable[[], Mapping[str, Any]], store: Store | None) -> None:
        super().__init__(recorder, call, preview, store)
        recording = call is not None and store is not None
        self.writer = StreamWriter() if recording else None
        self.offsets = array("d")
        """Each item's offset in seconds of the generator's own time."""
        self.elapsed = 0.0
        """The generator's own time so far."""
        self.abandoned: BaseException | None = None
        """Why the consumer stopped the stream early (set: it is not recorded)."""
        self._failed: SerializationError | None = None
        self._redact = recorder.redactor() if recording else None
        self._item_type: Any
        self._return_type: Any
        self._item_type, self._return_type = stream_annotations(
            recorder.subject.return_annotation) if recording else (None, None)
        self._chosen: dict[type, tuple[Serializer, str | None]] = {}

    @property
    def count(self) -> int:
        """How many items the stream has yielded so far."""
        return len(self.offsets)

    # -- what the driver reports ----------------------------------------------------------------

    def resume(self) -> float:
        """The generator is about to run: observe it; returns the clock to pass to
        :meth:`produced`."""
        observer = self._observer
        if observer is not None:
            observer.resume()
        return time.perf_counter()

    def produced(self, started: float) -> None:
        """The generator stopped running (it yielded, returned or raised)."""
        self.elapsed += time.perf_counter() - started
        observer = self._observer
        if observer is not None:
            observer.pause()

    def item(self, value: T) -> T:
        """The next item: recorded, and returned as the caller gets it (as ``redact`` rewrote
        it, which is what every replay will yield)."""
        self.offsets.append(self.elapsed)
        writer = self.writer
        if writer is None:
            return value
        if self._redact is not None:
            value = self._redact(value, field="return")
        if self._failed is None:
            try:
                writer.add(*self._encoded(value, self._item_type,
                                          f"item {self.count} of the stream"))
            except SerializationError as exc:
                # The caller still gets every item; the error is raised when the stream ends,
                # and nothing is written. The values kept so far are let go.
                self._failed, self.writer = exc, None
        return value

    def returned(self, value: T) -> T:
        """The generator's return value (None: it returned nothing worth storing)."""
        writer = self.writer
        if writer is None or value is None:
            return value
        if self._redact is not None:
            value = self._redact(value, field="return")
        try:
            writer.end(*self._encoded(value, self._return_type, "the return value"),
                       raised=False)
        except SerializationError as exc:
            self._failed = exc
        return value

    def abandon(self, reason: BaseException) -> None:
        """The consumer stopped the stream (``close``, ``throw``, garbage collection)."""
        self.abandoned = reason

    def _encoded(self, value: Any, annotation: Any, what: str) -> tuple[Kind, Any]:
        tp = type(value)
        chosen = self._chosen.get(tp)
        if tp is str and chosen is not None and chosen[0].id == "json":
            # A token: its JSON text is its data, and it loads back equal (no round trip).
            return Kind("json", chosen[0].version, None, "json"), json_text(value)
        recorder = self.recorder
        if chosen is None:
            try:
                chosen = recorder.choose(value, annotation)
            except SerializationError as exc:
                raise SerializationError(f"{what}: {exc}") from exc
            if tp in _SCALARS or chosen[0].id not in ("json", "numpy", "typed", "pickle"):
                self._chosen[tp] = chosen  # the choice depends on the type alone
        serializer, type_path, kind, data = recorder.encode(value, chosen, what=what)
        return Kind(serializer.id, serializer.version, type_path, kind), data

    # -- the end --------------------------------------------------------------------------------

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: Any) -> Literal[False]:
        if self._observer is not None:
            self._observer.stop()
        function = self.recorder.function
        call, store, writer = self.call, self.store, self.writer
        if self.abandoned is not None or (error is not None and not isinstance(error, Exception)):
            _log.debug("memo_replay: the stream of `%s` was not recorded: %s after %d item(s) "
                       "(%s)", function, "the consumer stopped it" if self.abandoned is not None
                       else "it was interrupted", self.count,
                       type(self.abandoned or error).__name__)
            return False
        if call is None or store is None:  # mode off: nothing is stored
            recordable = error is None or self.recorder.record_exceptions
            if recordable and listening():
                emit(CallEvent(function, None, "bypassed", self.elapsed, self.elapsed,
                               items=self.count))
            return False
        if self._failed is not None:
            if error is not None:
                return False  # the function's own exception is the one to see
            raise self._failed
        assert writer is not None
        if error is not None:
            if not self.recorder.record_exceptions:
                _log.debug("memo_replay: the stream of `%s` was not recorded: it raised %s "
                           "after %d item(s)", function, type(error).__name__, self.count)
                return False
            return self._record_stream_raised(error, writer, call, store)
        self._save(writer, call, store)
        return False

    def _record_stream_raised(self, error: Exception, writer: StreamWriter, call: CallKey,
                              store: Store) -> Literal[False]:
        raised: BaseException = error
        if self._redact is not None:
            rewritten = self._redact(error, field="return")
            raised = rewritten if isinstance(rewritten, BaseException) else error
        try:
            writer.end(*self._encoded(raised, None, "the exception"), raised=True)
        except SerializationError as exc:
            warn(f"memo_replay: the stream of `{self.recorder.function}` raised a "
                 f"{type(error).__qualname__} that cannot be recorded: {exc.__cause__ or exc}. "
                 f"Nothing was written. Raise an exception type that can be rebuilt from its "
                 f"message (e.g. wrap it in your own) to record it.")
            return False
        self._save(writer, call, store)
        if raised is not error:
            raise raised from None  # what a replay raises; the original may hold secrets
        return False

    def _save(self, writer: StreamWriter, call: CallKey, store: Store) -> None:
        encoding, data = writer.finish()
        self.writer = None  # the payload holds the data now
        payload = Payload(STREAM, STREAM_VERSION, None, encoding, data, checksum(data))
        self.recorder.save(call, self._preview(), store, payload, self.elapsed,
                           self._observed(), self.offsets)
        if listening():
            emit(CallEvent(self.recorder.function, call.key, "recorded", self.elapsed,
                           self.elapsed, str(store.path), items=self.count))


# -- driving the real generator -----------------------------------------------------------------


def drive(inner: Generator[Any, Any, Any], capture: StreamCapture
          ) -> Generator[Any, Any, Any]:
    """Pass ``inner``'s items through ``capture`` to the caller; return its return value."""
    try:
        while True:
            started = capture.resume()
            try:
                item = next(inner)
            except StopIteration as stop:
                capture.produced(started)
                return capture.returned(stop.value)
            except BaseException:
                capture.produced(started)
                raise
            capture.produced(started)
            item = capture.item(item)
            try:
                sent = yield item
            except BaseException as exc:  # close(), throw(), garbage collection
                capture.abandon(exc)
                raise
            if sent is not None:
                error = sent_error(capture.recorder.function)
                capture.abandon(error)
                raise error
    finally:
        inner.close()  # an abandoned stream's own finally blocks run now


__all__ = ["StreamCapture", "drive"]
