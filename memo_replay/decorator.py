"""``@recorded``: the call → key → mode → store → serializer pipeline around one function.

>>> from memo_replay import recorded
>>> @recorded(version="1")
... def shout(text: str) -> str:
...     return text.upper()
>>> shout.memo.key("hi") == shout.memo.key(text="hi")
True
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import os
import sys
import threading
import time
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from memo_replay.errors import (
    ConfigError,
    CorruptEntry,
    ExpiredRecording,
    InvalidOption,
    ReplayMiss,
    SecretDetected,
    SerializationError,
    UnsupportedFormat,
    warn,
)
from memo_replay.events import CallEvent, emit, listening
from memo_replay.keys import CallKey, compose
from memo_replay.keys.arguments import ArgumentSpec
from memo_replay.keys.files import DeclaredFiles
from memo_replay.modes import Mode, parse_mode, resolve_mode
from memo_replay.project import (
    find_root,
    is_project_file,
    module_dir,
    module_name,
    project_config,
)

if TYPE_CHECKING:
    from memo_replay.config import Config
    from memo_replay.explain import Explanation
    from memo_replay.keys.code import CodeFingerprint
    from memo_replay.serializers import Serializer, SerializerOption
    from memo_replay.store import Entry, Hit, Payload, Store
    from memo_replay.store.locks import KeyLock

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
R2 = TypeVar("R2")
S = TypeVar("S")
P2 = ParamSpec("P2")

DEFAULT_STORE = "fixtures_store"


class Recorded(Protocol[P, R_co]):
    """The type of a ``@recorded`` function: the same call signature, plus ``.memo``.

    ``__get__`` is spelled out so type checkers bind ``self`` when it decorates a method.
    """

    memo: Memo[P, Any]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Recorded[P, R_co]: ...

    @overload
    def __get__(self: Recorded[Concatenate[S, P2], R2], instance: S,
                owner: type[Any] | None = None) -> Callable[P2, R2]: ...

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any: ...


@dataclass(frozen=True)
class Options:
    """What ``@recorded(...)`` was given."""

    files: tuple[str, ...] = ()
    ignore: frozenset[str] = frozenset()
    deps: tuple[object, ...] = ()
    version: str | None = None
    mode: Mode | None = None
    store: str | None = None
    serializer: SerializerOption = None
    ttl: float | None = None
    record_exceptions: bool = False
    redact: Callable[..., Any] | None = None


@overload
def recorded(fn: Callable[P, R], /) -> Recorded[P, R]: ...


@overload
def recorded(
    *,
    files: Sequence[str] | str = (),
    ignore: Sequence[str] = (),
    deps: Sequence[object] = (),
    version: str | int | None = None,
    mode: str | Mode | None = None,
    store: str | os.PathLike[str] | None = None,
    serializer: str | Serializer | None = None,
    ttl: float | dt.timedelta | str | None = None,
    record_exceptions: bool = False,
    redact: Callable[..., Any] | None = None,
) -> Callable[[Callable[P, R]], Recorded[P, R]]: ...


def recorded(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    files: Sequence[str] | str = (),
    ignore: Sequence[str] = (),
    deps: Sequence[object] = (),
    version: str | int | None = None,
    mode: str | Mode | None = None,
    store: str | os.PathLike[str] | None = None,
    serializer: str | Serializer | None = None,
    ttl: float | dt.timedelta | str | None = None,
    record_exceptions: bool = False,
    redact: Callable[..., Any] | None = None,
) -> Any:
    """Record the first call of a function and replay it while code, arguments and files match.

    Use it bare (``@recorded``), with options (``@recorded(files=["examples/*.dy"])``), or
    around a callable you do not own, at the call site (``recorded(some_lib.translate)``).

    ``files``: globs relative to the project root, or templates over the arguments
    (``"{path}"``); each matched file's content is part of the key.
    ``ignore``: parameters left out of the key and out of everything stored (clients, keys).
    ``deps``: extra functions or values the result depends on. ``version``: a manual salt.
    ``mode``: this function's default mode. ``store``: its store directory.
    ``serializer``: ``"json"``, ``"pydantic"``, ``"dataclass"``, ``"bytes"``, ``"pickle"``
    (opt-in: loading runs code), a registered id, or a :class:`Serializer`.
    ``ttl``: how long a recording stays valid (seconds, a ``timedelta`` or ``"30d"``); an expired
    one is re-recorded in ``auto``/``record`` and, in ``replay``, replayed with a warning or
    refused as ``[tool.memo_replay] replay_expired`` says.
    ``record_exceptions``: also record an exception the call raises (type and message); it is
    raised again on replay. By default exceptions propagate and nothing is recorded.
    ``redact``: ``redact(value, *, field)`` rewrites what is stored: each argument's preview
    (``field`` is the parameter name) and the result (``field="return"``; replays return the
    rewritten result). Every entry is also scanned for secret-shaped strings before it is
    written; a match raises :class:`SecretDetected` and nothing is written.
    """
    options = Options(
        files=(files,) if isinstance(files, str) else tuple(files),
        ignore=frozenset((ignore,) if isinstance(ignore, str) else ignore),
        deps=tuple(deps),
        version=None if version is None else str(version),
        mode=None if mode is None else parse_mode(mode, source="@recorded(mode=...)"),
        store=None if store is None else os.fspath(store),
        serializer=serializer,
        ttl=None if ttl is None else _option_duration(ttl),
        record_exceptions=record_exceptions,
        redact=redact,
    )
    call_site = _call_site()

    def decorate(target: Callable[..., Any]) -> Any:
        if isinstance(target, (staticmethod, classmethod)):
            return type(target)(decorate(target.__func__))
        if not callable(target):
            raise InvalidOption(f"@recorded can only wrap a callable, not {target!r}")
        memo = Memo(target, options, call_site=call_site)
        return memo.wrapper

    return decorate if fn is None else decorate(fn)


class Memo(Generic[P, R]):
    """The ``.memo`` of a recorded function: its key, explanation and recordings."""

    def __init__(self, function: Callable[P, R], options: Options, *,
                 call_site: str | None = None) -> None:
        self.function = function
        self.options = options
        self.id = function_id(function)
        source_file = _source_file(function)
        self.root = find_root(module_dir(getattr(function, "__module__", "") or "",
                                         source_file))
        if not is_project_file(source_file, self.root):
            # A callable we do not own (stdlib, an installed package, a builtin), wrapped at the
            # call site: its recordings belong to the project that wraps it, not to the place
            # the library is installed in.
            self.root = find_root(Path(call_site).resolve().parent if call_site
                                  else Path.cwd().resolve())
        self._arguments = ArgumentSpec(function, function_id=self.id, ignore=options.ignore,
                                       root=self.root)
        self._files = DeclaredFiles(options.files, function_id=self.id, root=self.root,
                                    parameters=self._arguments.parameter_names)
        self._check_ignore()
        self._code: CodeFingerprint | None = None
        self._serializers: dict[tuple[str, str | None], Serializer] = {}
        self._annotation: Any = _UNKNOWN
        self._config: Config | None = None
        self._recent_keys: dict[bytes, CallKey] = {}
        self._store_setting: tuple[tuple[str | None, str | None], Store] | None = None
        self._lock = threading.Lock()
        self.wrapper = self._wrap()

    def __repr__(self) -> str:
        return f"<memo of {self.id}>"

    # -- public API ---------------------------------------------------------------------------

    @property
    def code(self) -> CodeFingerprint:
        """The code fingerprint (computed once per process, on first use)."""
        if self._code is None:
            from memo_replay.keys.code import fingerprint  # parses source: first call only

            with self._lock:
                if self._code is None:
                    self._code = fingerprint(self.function, function_id=self.id, root=self.root,
                                             deps=self.options.deps,
                                             version=self.options.version)
        return self._code

    @property
    def config(self) -> Config:
        """``[tool.memo_replay]`` of the function's project (read once per process)."""
        config = self._config
        if config is None:
            config = self._config = project_config(self.root)
        return config

    @property
    def mode(self) -> Mode:
        """The mode a call made now would use."""
        return resolve_mode(self.options.mode, self.config.mode)

    @property
    def store(self) -> Store:
        """The store a call made now would use (``--memo-store`` > ``MEMO_STORE`` > ``store=``
        > config > ``fixtures_store/`` at the project root)."""
        env = _session_store or os.environ.get("MEMO_STORE") or None
        # Resolved once per setting, not per call; a relative MEMO_STORE follows the cwd.
        setting = (env, os.getcwd() if env and not os.path.isabs(env) else None)
        cached = self._store_setting
        if cached is not None and cached[0] == setting:
            return cached[1]
        if env:
            store = open_store(Path(env).resolve())
        else:
            configured = self.options.store or self.config.store or DEFAULT_STORE
            store = open_store(self.root / configured)
        self._store_setting = (setting, store)
        return store

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key a call with these arguments has."""
        return self._call_key(self._arguments.bind(args, kwargs)).key

    def explain(self, *args: P.args, **kwargs: P.kwargs) -> Explanation:
        """Whether a call with these arguments would replay, and if not, what differs."""
        bound = self._arguments.bind(args, kwargs)
        call = self._call_key(bound)
        from memo_replay.explain import explain  # explaining is rare: imported on demand

        return explain(call, self._arguments.preview(bound), self.store.entries(self.id))

    def entries(self) -> Iterator[Entry]:
        """The recordings of this function in its store."""
        return self.store.entries(self.id)

    # -- the pipeline -------------------------------------------------------------------------

    def _wrap(self) -> Callable[P, R]:
        # On a miss the real call runs under the key's record-once lock; whoever waited for it
        # re-checks the store first and replays what the holder recorded (see store/locks.py).
        function: Any = self.function
        prepare, lock_for, recheck = self._prepare, self._lock_for, self._recheck
        finish, finish_raised = self._finish, self._finish_raised
        if inspect.iscoroutinefunction(function):
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                plan = prepare(args, kwargs)
                if plan.replayed:
                    return _replayed(plan)
                lock = lock_for(plan)
                if lock is not None:
                    await lock.acquire_async(plan.lock_timeout)
                try:
                    if lock is not None and recheck(plan):
                        return _replayed(plan)
                    started = time.perf_counter()
                    try:
                        result = await function(*args, **kwargs)
                    except BaseException as error:
                        finish_raised(plan, error, time.perf_counter() - started)
                        raise
                    finish(plan, result, time.perf_counter() - started)
                    return result
                finally:
                    if lock is not None:
                        lock.release()

            wrapper: Any = async_wrapper
        else:
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                plan = prepare(args, kwargs)
                if plan.replayed:
                    return _replayed(plan)
                lock = lock_for(plan)
                if lock is not None:
                    lock.acquire(plan.lock_timeout)
                try:
                    if lock is not None and recheck(plan):
                        return _replayed(plan)
                    started = time.perf_counter()
                    try:
                        result = function(*args, **kwargs)
                    except BaseException as error:
                        finish_raised(plan, error, time.perf_counter() - started)
                        raise
                    finish(plan, result, time.perf_counter() - started)
                    return result
                finally:
                    if lock is not None:
                        lock.release()

            wrapper = sync_wrapper
        functools.update_wrapper(wrapper, function)
        wrapper.memo = self
        return wrapper  # type: ignore[no-any-return]

    def _call_key(self, bound: dict[str, Any]) -> CallKey:
        if self._files.patterns:  # declared files can change between calls: compose anew
            return self._compose(bound)
        # Same code, same arguments, no files: the same key. Remembering the keys of recent
        # argument sets skips hashing each argument apart and composing them on a repeat call.
        digest = self._arguments.identity(bound)
        call = self._recent_keys.get(digest)
        if call is None:
            call = self._compose(bound)
            if len(self._recent_keys) >= _RECENT_KEYS:
                self._recent_keys.clear()
            self._recent_keys[digest] = call
        return call

    def _compose(self, bound: dict[str, Any]) -> CallKey:
        serializer = self.options.serializer
        return compose(
            self.id,
            self.code,
            self._arguments.hashes(bound),
            self._files.hashes(bound),
            serializer if serializer is None or isinstance(serializer, str) else serializer.id,
        )

    def _prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Plan:
        mode = self.mode
        if mode is Mode.OFF:
            return _Plan(mode)
        bound = self._arguments.bind(args, kwargs)
        plan = _Plan(mode, self._call_key(bound), bound, self.store)
        try:
            if mode is not Mode.RECORD and not self._recheck(plan) and mode is Mode.REPLAY:
                raise self._miss(plan, bound)
        except ReplayMiss as miss:
            if listening():
                emit(CallEvent(self.id, miss.key, "missed", 0.0, 0.0, _where(plan), str(miss)))
            raise
        return plan

    def _miss(self, plan: _Plan, bound: dict[str, Any]) -> ReplayMiss:
        call, store = plan.call, plan.store
        if call is None or store is None:  # pragma: no cover - only plans of `off` lack them
            raise AssertionError("a miss needs a key and a store")
        from memo_replay.explain import explain

        explanation = explain(call, self._arguments.preview(bound), store.entries(self.id))
        return ReplayMiss(f"memo_replay (replay mode): {explanation}", function=self.id,
                          key=call.key, explanation=explanation)

    def _recheck(self, plan: _Plan) -> bool:
        """Replay into ``plan`` if the store has the call (again, after waiting for the lock)."""
        if plan.mode is Mode.RECORD or plan.call is None or plan.store is None:
            return False
        started = time.perf_counter()
        value = self._replay(plan.store, plan.call, plan.mode)
        if value is _MISS:
            return False
        hit, plan.value = value
        plan.replayed = True
        plan.raises = hit.payload.serializer == _EXCEPTION
        if listening():
            emit(CallEvent(self.id, plan.call.key, "replayed", time.perf_counter() - started,
                           hit.duration_s, _where(plan)))
        return True

    def _lock_for(self, plan: _Plan) -> KeyLock | None:
        if plan.call is None or plan.store is None:
            return None
        plan.lock_timeout = self.config.lock_timeout
        return plan.store.lock(self.id, plan.call.key)

    def _ttl(self) -> float | None:
        return self.options.ttl if self.options.ttl is not None else \
            self.config.ttl

    def _expired(self, hit: Hit, mode: Mode, call: CallKey, ttl: float) -> bool:
        """True when ``hit`` is past ``ttl`` and must not replay (strict replay may warn)."""
        if hit.recorded_at is None or time.time() - hit.recorded_at <= ttl:
            return False
        if mode is not Mode.REPLAY:
            return True
        age = f"recorded {_span(time.time() - hit.recorded_at)} ago, ttl {_span(ttl)}"
        if self.config.replay_expired == "fail":
            raise ExpiredRecording(
                f"memo_replay (replay mode): the recording of `{self.id}` for this call (key "
                f"{call.key}) has expired ({age}); [tool.memo_replay] replay_expired = \"fail\"."
                f"\nTo re-record: {_rerecord_command()}", function=self.id, key=call.key)
        warn(f"memo_replay: replaying an expired recording of `{self.id}` ({age}); "
             f"re-record it with {_rerecord_command()}")
        return False

    def _replay(self, store: Store, call: CallKey, mode: Mode) -> Any:
        try:
            hit = store.lookup(self.id, call.key)
            if hit is None:
                return _MISS
            ttl = self._ttl()
            if ttl is not None and self._expired(hit, mode, call, ttl):
                return _MISS
            serializer = self._serializer_for(hit.payload)
            if serializer.version != hit.payload.serializer_version:
                if mode is Mode.REPLAY:
                    raise ReplayMiss(
                        f"memo_replay (replay mode): the recording of `{self.id}` for this call "
                        f"(key {call.key}) was written by version "
                        f"{hit.payload.serializer_version} of the {serializer.id!r} serializer; "
                        f"this process has version {serializer.version}, so it is not "
                        f"replayed.\nTo re-record: {_rerecord_command()}",
                        function=self.id, key=call.key)
                return _MISS  # written by another serializer version: re-record
            return hit, serializer.loads(hit.payload.data)
        except UnsupportedFormat:
            raise  # written by a newer memo_replay: never overwrite it with an older format
        except (CorruptEntry, SerializationError, ValueError, TypeError) as exc:
            if mode is Mode.REPLAY:
                if isinstance(exc, (CorruptEntry, SerializationError)):
                    raise
                raise CorruptEntry(store.entry_path(self.id, call.key),
                                   f"its payload does not load ({exc})") from exc
            warn(f"memo_replay: {exc} — re-recording it")
            return _MISS

    def _serializer_for(self, payload: Payload) -> Serializer:
        cache_key = (payload.serializer, payload.type)
        serializer = self._serializers.get(cache_key)
        if serializer is None:
            from memo_replay.serializers import registry  # loaded with the first recording

            serializer = registry.resolve(payload.serializer, payload.type,
                                          self.options.serializer, function=self.id,
                                          annotation=self.return_annotation,
                                          pickle_allowed=self._pickle_allowed())
            self._serializers[cache_key] = serializer
        return serializer

    def _finish(self, plan: _Plan, result: Any, duration: float) -> None:
        if plan.call is None or plan.bound is None or plan.store is None:
            if listening():
                emit(CallEvent(self.id, None, "bypassed", duration, duration))
            return
        redact = self._redactor()
        preview = self._arguments.preview(plan.bound)
        if redact is not None:
            result = redact(result, field="return")
            preview = {name: redact(value, field=name) for name, value in preview.items()}
        payload = self._serialize(result)
        from memo_replay.store.entry import build_document

        document = build_document(plan.call, preview=preview, payload=payload,
                                  duration_s=duration)
        self._refuse_secrets(document, payload)
        ttl = self._ttl()
        plan.store.save(self.id, plan.call.key, document, payload=payload,
                        stale_before=None if ttl is None else time.time() - ttl)
        if listening():
            emit(CallEvent(self.id, plan.call.key, "recorded", duration, duration,
                           _where(plan)))

    def _redactor(self) -> Callable[..., Any] | None:
        if self.options.redact is not None:
            return self.options.redact
        path = self.config.redact
        return None if path is None else _import_hook(path, self.root)

    def _refuse_secrets(self, document: dict[str, Any], payload: Payload) -> None:
        config = self.config
        from memo_replay.secrets import scanner

        leaks = scanner(config.secret_patterns, config.allow_secrets).scan_document(
            document, payload.beside)
        if leaks:
            found = "; ".join(f"{leak.field} contains {leak.kind} ({leak.excerpt})"
                              for leak in leaks[:3])
            raise SecretDetected(
                f"refusing to record `{self.id}`: {found}. Nothing was written. Fix: leave the "
                f"argument out with @recorded(ignore=[...]) if it does not affect the result; "
                f"rewrite it with a redact= hook (per function, or [tool.memo_replay] redact); "
                f"move a secret out of the source into the environment; or, if it is not a "
                f"secret (a test fixture), allow it in [tool.memo_replay] allow_secrets.")

    def _finish_raised(self, plan: _Plan, error: BaseException, duration: float) -> None:
        """Record an exception the call raised, when the function opted in. One that cannot be
        rebuilt on replay (a pydantic ``ValidationError``) is not recorded, with a warning:
        the caller still gets the original exception, and the next call runs again."""
        if self.options.record_exceptions and isinstance(error, Exception):
            try:
                self._finish(plan, error, duration)
            except SerializationError as exc:
                warn(f"memo_replay: the {type(error).__qualname__} raised by `{self.id}` was not "
                     f"recorded: {exc.__cause__ or exc}. Raise an exception type that can be "
                     f"rebuilt from its message (e.g. wrap it in your own) to record it.")

    @property
    def return_annotation(self) -> Any:
        """The function's return annotation (None without one, or when it cannot be
        resolved): a fallback serializer for results like ``list[Item]``."""
        if self._annotation is _UNKNOWN:
            try:
                hints = typing.get_type_hints(self.function)
            except Exception:  # a forward reference that does not resolve, a C function
                hints = {}
            self._annotation = hints.get("return")
        return self._annotation

    def _pickle_allowed(self) -> bool:
        return self.config.allows_pickle(self.id)

    def _serialize(self, result: Any) -> Payload:
        from memo_replay.serializers import payload_kind, registry, round_trips
        from memo_replay.store import Payload

        serializer, type_path = registry.choose(
            result, _EXCEPTION if isinstance(result, BaseException)
            else self.options.serializer, function=self.id,
            annotation=self.return_annotation, pickle_allowed=self._pickle_allowed())
        try:
            data = serializer.dumps(result)
            payload = Payload.create(serializer, type_path, payload_kind(serializer, data), data)
            replayed = serializer.loads(payload.data)
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"cannot record the result of `{self.id}` with the {serializer.id!r} serializer: "
                f"{exc.__class__.__name__}: {exc}. Nothing was written. Return a value it "
                f"supports, or choose another with @recorded(serializer=...)."
            ) from exc
        if not round_trips(serializer, result, replayed):
            raise SerializationError(
                f"cannot record the result of `{self.id}`: the {serializer.id!r} serializer does "
                f"not give back an equal `{type(result).__qualname__}`, so a replay would differ "
                f"from the real call (returned {_short(result)}, would replay "
                f"{_short(replayed)}). Nothing was written. Return plain JSON data, a pydantic "
                f"model or a dataclass, or choose another serializer with @recorded(serializer="
                f"...)."
            )
        return payload

    def _check_ignore(self) -> None:
        names = self._arguments.parameter_names
        unknown = sorted(self.options.ignore - set(names))
        if unknown and not self._arguments.accepts_any_keyword:
            raise InvalidOption(
                f"@recorded(ignore={unknown!r}) on `{self.id}`: no parameter named "
                f"{', '.join(unknown)}; parameters are: {', '.join(names) or '(none)'}"
            )


@dataclass
class _Plan:
    """One call's way through the pipeline (``call``/``bound``/``store`` are None in ``off``)."""

    mode: Mode
    call: CallKey | None = None
    bound: dict[str, Any] | None = None
    store: Store | None = None
    replayed: bool = False
    raises: bool = False
    """The replayed value is an exception the original call raised (``record_exceptions``)."""
    value: Any = None
    lock_timeout: float = 0.0


def _replayed(plan: _Plan) -> Any:
    if plan.raises:
        raise plan.value
    return plan.value


def _where(plan: _Plan) -> str | None:
    return None if plan.store is None else str(plan.store.path)


def _span(seconds: float) -> str:
    """A duration as people write it: ``45 s``, ``12 min``, ``3.5 h``, ``30 days``."""
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _rerecord_command() -> str:
    from memo_replay.explain import rerecord_command

    return rerecord_command()


_RECENT_KEYS = 4096
"""How many argument sets' keys a function remembers (per process)."""
_MISS: Any = object()
_UNKNOWN: Any = object()


def function_id(function: Callable[..., Any]) -> str:
    """``module.qualname`` — never a file path (see :func:`~memo_replay.project.module_name`)."""
    qualname = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{module_name(function)}.{qualname}"


def _import_hook(path: str, root: Path) -> Callable[..., Any]:
    """The project's ``module:function`` hook from ``[tool.memo_replay]`` (project code)."""
    import importlib

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


def _option_duration(value: float | dt.timedelta | str) -> float:
    from memo_replay.config import parse_duration

    try:
        return parse_duration(value, source="@recorded(ttl=...)")
    except ConfigError as exc:
        raise InvalidOption(str(exc)) from None


def _call_site() -> str | None:
    """The file of the code that called :func:`recorded` (outside memo_replay itself)."""
    frame = sys._getframe(2)
    while frame is not None and str(frame.f_globals.get("__name__", "")).partition(".")[0] \
            == "memo_replay":
        frame = frame.f_back  # type: ignore[assignment]
    file = frame.f_globals.get("__file__") if frame is not None else None
    return file if isinstance(file, str) else None


def _source_file(function: Callable[..., Any]) -> str | None:
    try:
        return inspect.getsourcefile(function)
    except TypeError:
        return None


_session_store: str | None = None


def set_session_store(path: str | os.PathLike[str] | None) -> None:
    """Set the session-wide store directory (the pytest plugin's ``--memo-store``)."""
    global _session_store
    _session_store = None if path is None else os.fspath(Path(path).resolve())


_EXCEPTION = "exception"
"""ExceptionSerializer.id, spelled out so that a replay needs no serializer module to tell a
recorded exception (raised again) from a recorded result."""
_stores: dict[Path, Store] = {}
_stores_lock = threading.Lock()


def open_store(path: Path) -> Store:
    """One :class:`Store` per directory per process, so its index connection is shared."""
    store = _stores.get(path)
    if store is None:
        from memo_replay.store import Store  # the store's modules load with the first call

        with _stores_lock:
            store = _stores.setdefault(path, Store(path))
    return store


__all__ = ["Memo", "Options", "Recorded", "recorded"]
