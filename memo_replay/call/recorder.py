"""Recording a call: around the real call, then serialize, redact, scan, save.

:meth:`Recorder.around` is a context manager around the call to the real function; it measures
the call, and when the block ends it records the result (or, with ``record_exceptions``, the
exception) — or, for a call that must not be stored (mode ``off``), only reports it. This is the
place where anything that must watch the real call runs.

Recording refuses rather than writes something wrong: a result no serializer gives back equal
(:class:`~memo_replay.errors.SerializationError`) or an entry holding a secret-shaped string
(:class:`~memo_replay.errors.SecretDetected`) leaves the store untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from memo_replay.call.replayer import EXCEPTION
from memo_replay.errors import SecretDetected, SerializationError, hidden_from_pytest, warn
from memo_replay.events import CallEvent, emit, listening
from memo_replay.serializers import payload_kind, registry, round_trips
from memo_replay.store.entry import Payload, Recording, canonical_data
from memo_replay.text import short

# pytest hides this module's frames from a failing test's traceback (see hidden_from_pytest).
__tracebackhide__ = hidden_from_pytest

if TYPE_CHECKING:
    from memo_replay.call.subject import Subject
    from memo_replay.keys import CallKey
    from memo_replay.keys.observed import Observed, Observer
    from memo_replay.serializers import PayloadKind, Serializer
    from memo_replay.store import Store


class Recorder:
    """Records one function's calls."""

    def __init__(self, subject: Subject) -> None:
        self.subject = subject
        self.function = subject.id
        self.record_exceptions = subject.options.record_exceptions

    def around(self, call: CallKey | None, preview: Callable[[], Mapping[str, Any]],
               store: Store | None, *, stream: bool = False) -> Capture:
        """The context manager around the real call (``call``/``store`` None: store nothing).
        Set :attr:`Capture.value` to the call's result inside the block; for a ``stream``, it
        is a :class:`~memo_replay.call.stream_recorder.StreamCapture` that records the items
        :func:`~memo_replay.call.stream_recorder.drive` passes through it."""
        if stream:
            from memo_replay.call.stream_recorder import StreamCapture

            return StreamCapture(self, call, preview, store)
        return Capture(self, call, preview, store)

    def observer(self, store: Store) -> Observer:
        """What watches the real call of a recording (see :mod:`memo_replay.keys.observed`)."""
        from memo_replay.keys.observed import Observer

        subject = self.subject
        files = subject.options.observe_files
        if files is None:
            files = subject.config.observe_files
        # The recorded function's own code is covered by its fingerprint: not observed. The
        # store path of a recorded function is already resolved (Memo.store).
        return Observer(subject.root, exclude=getattr(subject.function, "__code__", None),
                        store=store.path, files=files)

    def observed(self, observer: Observer) -> Observed:
        from memo_replay.keys.observed import context

        sources, hasher, _ = context(self.subject.root)
        return observer.result(sources, hasher)

    def record(self, call: CallKey, preview: Mapping[str, Any], store: Store, result: Any,
               duration: float, observed: Observed | None = None) -> Any:
        """Serialize, redact, scan and save one result; return what was recorded (the result
        as the ``redact`` hook rewrote it): the recording call returns that too, so that it
        and every replay of it return the same value."""
        redact = self.redactor()
        if redact is not None:
            result = redact(result, field="return")
        self.save(call, preview, store, self.serialize(result), duration, observed)
        return result

    def save(self, call: CallKey, preview: Mapping[str, Any], store: Store, payload: Payload,
             duration: float, observed: Observed | None = None,
             offsets: Sequence[float] | None = None) -> None:
        """Redact the argument preview, scan the entry for secrets and write it (``offsets``:
        a stream's per-item timing)."""
        # The argument types ride on the preview; take them before a redact hook rebuilds it.
        call = call._replace(components=call.components.with_types(preview))
        redact = self.redactor()
        if redact is not None:
            preview = {name: redact(value, field=name) for name, value in preview.items()}
        recording = Recording(self.function, call.key, call.components, preview, payload,
                              duration, observed, offsets)
        self.refuse_secrets(recording)
        ttl = self.subject.ttl
        store.save(recording, stale_before=None if ttl is None else time.time() - ttl)

    def redactor(self) -> Callable[..., Any] | None:
        subject = self.subject
        redact: Callable[..., Any] | None = subject.options.redact
        if redact is not None:
            return redact
        path = subject.config.redact
        return None if path is None else _import_hook(path, subject.root)

    def refuse_secrets(self, recording: Recording) -> None:
        config = self.subject.config
        from memo_replay.secrets import scanner

        leaks = scanner(config.secret_patterns, config.allow_secrets).scan(
            recording.preview, recording.payload, recording.components.code.source)
        if leaks:
            found = "; ".join(f"{leak.field} contains {leak.kind} ({leak.excerpt})"
                              for leak in leaks[:3])
            raise SecretDetected(
                f"refusing to record `{self.function}`: {found}. Nothing was written. Fix: leave "
                f"the argument out with @recorded(ignore=[...]) if it does not affect the "
                f"result; rewrite it with a redact= hook (per function, or [tool.memo_replay] "
                f"redact); move a secret out of the source into the environment; or, if it is "
                f"not a secret (a test fixture), allow it in [tool.memo_replay] allow_secrets.")

    def serialize(self, result: Any) -> Payload:
        """The payload of ``result``, checked to replay as an equal value of the same type.

        A :class:`SerializationError` carries ``result`` (``error.result``): the call that
        produced it may have been slow or paid for, and it ran; only recording it failed."""
        try:
            return self._serialize(result)
        except SerializationError as exc:
            if not isinstance(result, BaseException):  # a raised exception is re-raised anyway
                exc.attach(result)
            raise

    def _serialize(self, result: Any) -> Payload:
        serializer, type_path, kind, data = self.encode(
            result, self.choose(result, self.subject.return_annotation))
        return Payload.create(serializer, type_path, kind, data, canonical=True)

    def choose(self, value: Any, annotation: Any) -> tuple[Serializer, str | None]:
        """The serializer for ``value`` (an exception: the exception serializer) and the type
        name to store; ``annotation``: the type the function declares for it."""
        subject = self.subject
        return registry.choose(
            value, EXCEPTION if isinstance(value, BaseException)
            else subject.options.serializer, function=self.function, annotation=annotation,
            pickle_allowed=subject.config.allows_pickle(self.function))

    def encode(self, value: Any, chosen: tuple[Serializer, str | None], *,
               what: str = "the result") -> tuple[Serializer, str | None, PayloadKind, Any]:
        """``value`` dumped by the ``chosen`` serializer, checked to load back as an equal value
        of the same type: the serializer, type name, payload kind and data (``what``: how the
        error names the value, e.g. ``item 3 of the stream``)."""
        serializer, type_path = chosen
        try:
            data = serializer.dumps(value)
            kind = payload_kind(serializer, data)
            data = canonical_data(kind, data)
            replayed = serializer.loads(data)
        except SerializationError:
            raise
        except Exception as exc:
            # Only the first line of the serializer's error (pydantic's run to paragraphs);
            # the whole of it stays chained as __cause__.
            raise SerializationError(
                f"cannot record {what} of `{self.function}` (a "
                f"`{type(value).__qualname__}`) with the {serializer.id!r} serializer: "
                f"{exc.__class__.__name__}: {_first_line(exc)}. Nothing was written. "
                f"{_what_to_return(serializer.id)}, or choose another serializer with "
                f"@recorded(serializer=...)."
            ) from exc
        if not round_trips(serializer, value, replayed):
            raise SerializationError(
                f"cannot record {what} of `{self.function}`: the {serializer.id!r} "
                f"serializer does not give back an equal `{type(value).__qualname__}`, so a "
                f"replay would differ from the real call (returned {short(value, 120)}, would "
                f"replay {short(replayed, 120)}). Nothing was written. Return plain JSON data, a "
                f"pydantic model or a dataclass, or choose another serializer with "
                f"@recorded(serializer=...)."
            )
        return serializer, type_path, kind, data


class Capture:
    """One real call in progress (see :meth:`Recorder.around`)."""

    def __init__(self, recorder: Recorder, call: CallKey | None,
                 preview: Callable[[], Mapping[str, Any]], store: Store | None) -> None:
        self.recorder = recorder
        self.call = call
        self.store = store
        self.value: Any = None
        """The call's result: set it inside the block."""
        self._preview = preview
        self._started = 0.0
        self._observer: Observer | None = None

    def __enter__(self) -> Capture:
        call = self.call
        if call is not None and self.store is not None and call.components.code.constants:
            # Before the call runs: a counter dict it updates must be shown as the key saw it.
            from memo_replay.constants import previews

            subject = self.recorder.subject
            self.call = call._replace(components=call.components.with_constants(previews(
                call.components.code.constants, subject.root,
                secret_patterns=subject.config.secret_patterns,
                allow_secrets=subject.config.allow_secrets)))
        if self.call is not None and self.store is not None:
            self._observer = self.recorder.observer(self.store)
            self._observer.start()
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> Literal[False]:
        duration = time.perf_counter() - self._started
        if self._observer is not None:
            self._observer.stop()
        call, store = self.call, self.store
        if call is None or store is None:
            recordable = error is None or (self.recorder.record_exceptions
                                           and isinstance(error, Exception))
            if recordable and listening():
                emit(CallEvent(self.recorder.function, None, "bypassed", duration, duration))
            return False
        if error is None:
            # The caller gets what was recorded (redacted), as every replay will.
            self.value = self.recorder.record(call, self._preview(), store, self.value,
                                              duration, self._observed())
        elif self.recorder.record_exceptions and isinstance(error, Exception):
            recorded = self._record_raised(error, duration, self._observed())
            if recorded is not None and recorded is not error:
                # The redact hook rewrote the exception: raise what a replay will raise. The
                # original stays out of the traceback (it may hold what was redacted).
                raise recorded from None
            return False
        else:
            return False
        if listening():
            emit(CallEvent(self.recorder.function, call.key, "recorded", duration, duration,
                           str(store.path)))
        return False

    def _observed(self) -> Observed | None:
        observer = self._observer
        return None if observer is None else self.recorder.observed(observer)

    def _record_raised(self, error: Exception, duration: float,
                       observed: Observed | None) -> BaseException | None:
        """Record an exception the call raised and return the exception recorded (as a
        ``redact`` hook rewrote it; None when it was not recorded). One that cannot be rebuilt
        on replay (a pydantic ``ValidationError``) is not recorded, with a warning: the caller
        still gets the original exception, and the next call runs again."""
        assert self.call is not None
        assert self.store is not None
        try:
            recorded = self.recorder.record(self.call, self._preview(), self.store, error,
                                            duration, observed)
        except SerializationError as exc:
            warn(f"memo_replay: the {type(error).__qualname__} raised by "
                 f"`{self.recorder.function}` was not recorded: {exc.__cause__ or exc}. Raise an "
                 f"exception type that can be rebuilt from its message (e.g. wrap it in your "
                 f"own) to record it.")
            return None
        if listening():
            emit(CallEvent(self.recorder.function, self.call.key, "recorded", duration,
                           duration, str(self.store.path)))
        return recorded if isinstance(recorded, BaseException) else None


def _what_to_return(serializer: str) -> str:
    if serializer == "typed":
        return "Return a value that matches the return annotation (or fix the annotation)"
    return f"Return a value the {serializer!r} serializer supports"


def _first_line(error: BaseException, limit: int = 160) -> str:
    """The gist of a serializer's error: pydantic's validation errors by where and what (their
    first line only counts them), anything else by its first line; bounded either way."""
    line = str(error).partition("\n")[0].strip().rstrip(".")
    errors = getattr(error, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                            for part in first.get("loc", ())).lstrip(".") or "the top level"
            line = f"at {where}: {str(first.get('msg', '')).rstrip('.')}"
        except Exception:  # not pydantic's shape after all: keep the first line
            pass
    return line if len(line) <= limit else line[:limit] + "…"


def _import_hook(path: str, root: Path) -> Callable[..., Any]:
    """The project's ``module:function`` hook from ``[tool.memo_replay]`` (project code)."""
    import importlib

    from memo_replay.errors import ConfigError

    module_name, _, name = path.partition(":")
    try:
        hook = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"`redact = {path!r}` in [tool.memo_replay] of "
                          f"{root / 'pyproject.toml'} cannot be imported: {exc}") from None
    if not callable(hook):
        raise ConfigError(f"`redact = {path!r}` in [tool.memo_replay] of "
                          f"{root / 'pyproject.toml'} is not callable")
    return hook  # type: ignore[no-any-return]
