"""Recorded streams: generator and async-generator functions, as the caller sees them.

``@recorded`` on a ``def ...: yield`` function gives a function that returns a generator (on an
``async def ...: yield`` one, an async generator). The call is keyed and looked up when it is
made, so a strict replay's miss raises there, not at the first ``next()``; the function itself
runs only when the stream is iterated, as it would undecorated.

Recording (:mod:`memo_replay.call.stream_recorder`, loaded by the first stream that records)
passes each item through as it arrives and records the stream once it is exhausted; a stream
the consumer abandons, or that raises, is not recorded, and nothing partial is ever written.
Replay yields the recorded items, in order, then returns the return value or raises the
recorded exception; with ``replay_timing="recorded"`` it first waits each recorded gap.

Streams only iterate: a value passed to ``send()`` would reach the function when it records
and be lost when it replays (it is not part of the key), so it raises :class:`StreamError`.
"""

from __future__ import annotations

import time
import typing
from collections import abc
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

from memo_replay.errors import StreamError, hidden_from_pytest

# pytest hides this module's frames from a failing test's traceback (see hidden_from_pytest).
__tracebackhide__ = hidden_from_pytest

if TYPE_CHECKING:
    from memo_replay.call.stream_recorder import StreamCapture
    from memo_replay.decorator import Memo
    from memo_replay.decorator import _Call as Call
    from memo_replay.serializers.stream import RecordedStream
    from memo_replay.store import Hit

_MIN_SLEEP = 0.0005
"""Gaps are slept once they add up to this: ``time.sleep`` of a few µs sleeps far longer."""


# -- the wrappers -------------------------------------------------------------------------------


def stream_wrapper(memo: Memo[Any, Any]) -> Callable[..., Any]:
    """The function ``@recorded`` gives for a generator function ``memo.function``: keyed and
    looked up at the call, it returns a generator that replays or records."""
    function: Any = memo.function
    name = memo.id
    begin, lock_for, recording = memo._begin, memo._lock_for, memo._recording

    def pace(call: Call) -> Pace | None:
        if memo.replay_timing != "recorded":
            return None
        assert call.lookup is not None
        assert call.lookup.hit is not None
        return pace_of(call.lookup.hit)

    if memo.stream == "async":
        async def record_async(call: Call, args: Any, kwargs: Any) -> AsyncIterator[Any]:
            lock = lock_for(call)
            if lock is not None:
                await lock.acquire_async(memo.config.lock_timeout)
            with recording(call, lock, stream=True) as capture:
                if capture is not None:
                    stream: StreamCapture = capture  # type: ignore[assignment]
                    inner = function(*args, **kwargs)
                    try:
                        while True:
                            started = stream.resume()
                            try:
                                item = await inner.__anext__()
                            except StopAsyncIteration:
                                stream.produced(started)
                                break
                            except BaseException:
                                stream.produced(started)
                                raise
                            stream.produced(started)
                            item = stream.item(item)
                            try:
                                sent = yield item
                            except BaseException as exc:  # aclose(), athrow(), collection
                                stream.abandon(exc)
                                raise
                            if sent is not None:
                                error = sent_error(name)
                                stream.abandon(error)
                                raise error
                    finally:
                        await inner.aclose()  # an abandoned stream's finally blocks run now
                    return
            async for item in replay_async(call.replayed(), name, pace(call)):
                yield item  # recorded by another process while this one waited

        def async_stream_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            call = begin(args, kwargs)
            if call.lookup is not None:
                return replay_async(call.replayed(), name, pace(call))
            return record_async(call, args, kwargs)

        return async_stream_wrapper

    def record(call: Call, args: Any, kwargs: Any) -> Generator[Any, Any, Any]:
        lock = lock_for(call)
        if lock is not None:
            lock.acquire(memo.config.lock_timeout)
        with recording(call, lock, stream=True) as capture:
            if capture is not None:
                from memo_replay.call.stream_recorder import drive

                return (yield from drive(function(*args, **kwargs),
                                         capture))  # type: ignore[arg-type]
        # Recorded by another process while this one waited for the lock.
        return (yield from replay(call.replayed(), name, pace(call)))

    def sync_stream_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        call = begin(args, kwargs)
        if call.lookup is not None:
            return replay(call.replayed(), name, pace(call))
        return record(call, args, kwargs)

    return sync_stream_wrapper


def stream_annotations(annotation: Any) -> tuple[Any, Any]:
    """The item type and the return type a stream's return annotation declares
    (``Iterator[Chunk]`` → ``(Chunk, None)``; ``Generator[Chunk, None, Summary]`` →
    ``(Chunk, Summary)``); None where it says nothing."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if not args:
        return None, None
    if origin in (abc.Iterator, abc.Iterable, abc.AsyncIterator, abc.AsyncIterable,
                  abc.AsyncGenerator):
        return args[0], None
    if origin is abc.Generator:
        return args[0], args[2] if len(args) == 3 else None
    return None, None


def sent_error(function: str, *, recording: bool = True) -> StreamError:
    """What ``send()`` of a value into a recorded stream raises (``recording``: the stream was
    being recorded, and now will not be)."""
    return StreamError(f"a value was sent into the recorded stream of `{function}` with "
                       f"send(): a replay cannot give it to the function (what is sent is "
                       f"not part of the key), so recorded streams only support iteration. "
                       f"Pass what the generator needs as arguments instead."
                       + (" The stream was not recorded." if recording else ""))


# -- replaying ----------------------------------------------------------------------------------


class Pace:
    """The recorded gaps between a stream's items (``replay_timing="recorded"``): the generator's
    own time, so a replay waits what the function took to produce each item and the consumer's
    own time adds to it as it did when recorded. Oversleeping is paid back by later gaps."""

    def __init__(self, offsets: Sequence[float], total: float) -> None:
        ends = [*offsets, max(total, offsets[-1] if offsets else 0.0)]
        self.gaps = [max(0.0, b - a) for a, b in zip([0.0, *ends[:-1]], ends, strict=True)]
        self.debt = 0.0

    def due(self, index: int) -> float:
        """Seconds to wait before item ``index`` (the stream's end: ``len(items)``); 0 while the
        gaps add up to less than is worth a sleep."""
        if index < len(self.gaps):
            self.debt += self.gaps[index]
        return self.debt if self.debt >= _MIN_SLEEP else 0.0

    def slept(self, seconds: float) -> None:
        self.debt -= seconds


def pace_of(hit: Hit) -> Pace | None:
    """The pace a hit replays at with ``replay_timing="recorded"`` (None: no timing recorded)."""
    if not hit.offsets_ms:
        return None
    try:
        offsets = [float(part) / 1000 for part in hit.offsets_ms.split()]
    except ValueError:
        return None  # a damaged timing field replays instantly rather than failing a test
    return Pace(offsets, hit.duration_s)


def replay(stream: RecordedStream, function: str, pace: Pace | None
           ) -> Generator[Any, Any, Any]:
    """The recorded stream as a generator."""
    if pace is None:
        for item in stream.items:
            if (yield item) is not None:
                raise sent_error(function, recording=False)
    else:
        for index, item in enumerate(stream.items):
            _wait(pace, index)
            if (yield item) is not None:
                raise sent_error(function, recording=False)
        _wait(pace, len(stream.items))
    if stream.raised is not None:
        raise stream.raised
    return stream.returned


async def replay_async(stream: RecordedStream, function: str, pace: Pace | None
                       ) -> AsyncIterator[Any]:
    """The recorded stream as an async generator."""
    sleep = None
    if pace is not None:
        import asyncio

        sleep = asyncio.sleep
    for index, item in enumerate(stream.items):
        if pace is not None:
            wait = pace.due(index)
            if wait:
                assert sleep is not None
                started = time.perf_counter()
                await sleep(wait)
                pace.slept(time.perf_counter() - started)
        if (yield item) is not None:
            raise sent_error(function, recording=False)
    if pace is not None and sleep is not None:
        wait = pace.due(len(stream.items))
        if wait:
            await sleep(wait)
    if stream.raised is not None:
        raise stream.raised


def _wait(pace: Pace, index: int) -> None:
    wait = pace.due(index)
    if wait:
        started = time.perf_counter()
        time.sleep(wait)
        pace.slept(time.perf_counter() - started)


__all__ = ["Pace", "pace_of", "replay", "replay_async", "sent_error", "stream_annotations",
           "stream_wrapper"]
