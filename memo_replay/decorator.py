"""``@recorded`` and :class:`Memo`, the facade that runs one function's calls through the
pipeline: key (:mod:`memo_replay.keys.builder`) → plan (:mod:`memo_replay.call.plan`) → replay
(:mod:`memo_replay.call.replayer`) or record (:mod:`memo_replay.call.recorder`) → store. It owns
the options, the function's identity and project root, and which store a call uses.

```pycon
>>> from memo_replay import recorded
>>> @recorded(version="1")
... def shout(text: str) -> str:
...     return text.upper()
>>> shout.memo.key("hi") == shout.memo.key(text="hi")
True
```
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import os
import sys
import time
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    Literal,
    NamedTuple,
    ParamSpec,
    Protocol,
    TypeVar,
    overload,
)

from memo_replay.call.plan import Action, Found, decide, looks_up
from memo_replay.call.replayer import EXCEPTION, Lookup, Replayer
from memo_replay.config import payloads_setting, remote_setting, remote_timeout_setting
from memo_replay.errors import (
    ConfigError,
    InvalidOption,
    MemoReplayError,
    ReplayMiss,
    hidden_from_pytest,
    warn,
)
from memo_replay.events import CallEvent, emit, listening
from memo_replay.keys.arguments import ArgumentSpec
from memo_replay.keys.builder import KeyBuilder
from memo_replay.keys.files import DeclaredFiles
from memo_replay.modes import Mode, parse_mode, resolve_mode
from memo_replay.project import (
    find_root,
    is_project_file,
    module_dir,
    module_name,
    project_config,
    store_path,
)

# pytest hides this module's frames from a failing test's traceback (see hidden_from_pytest).
__tracebackhide__ = hidden_from_pytest

if TYPE_CHECKING:
    import datetime as dt

    from memo_replay.bound import BoundMemo
    from memo_replay.call.recorder import Capture, Recorder
    from memo_replay.config import Config, Payloads, RemoteMode, ReplayTiming
    from memo_replay.explain import Explanation
    from memo_replay.keys import CallKey
    from memo_replay.keys.code import CodeFingerprint
    from memo_replay.keys.observed import Change
    from memo_replay.serializers import Serializer, SerializerOption
    from memo_replay.store import Entry, Store
    from memo_replay.store.locks import KeyLock

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
R2 = TypeVar("R2")
S = TypeVar("S")
P2 = ParamSpec("P2")

class Recorded(Protocol[P, R_co]):
    """The type of a `@recorded` function: the same call signature, plus `.memo`.

    [`recorded`][memo_replay.recorded] returns a `Recorded[P, R]` for a function of parameters
    `P` returning `R`, so a type checker checks calls to the decorated function as it checks
    calls to the original, and knows its [`.memo`][memo_replay.Memo]. Spell it out to annotate
    a wrapped callable (a protocol: not for `isinstance`):

    ```pycon
    >>> from memo_replay import Recorded, recorded
    >>> def shout(text: str) -> str:
    ...     return text.upper()
    >>> loud: Recorded[[str], str] = recorded(shout)
    >>> loud("hello")
    'HELLO'
    >>> len(loud.memo.key("hello"))
    32
    ```

    On a method, the type binds `self` as a method's does (`__get__` is spelled out for
    type checkers).
    """

    memo: Memo[P, Any]
    """The function's [`Memo`][memo_replay.Memo]: its keys, explanations and recordings."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Recorded[P, R_co]: ...

    @overload
    def __get__(self: Recorded[Concatenate[S, P2], R2], instance: S,
                owner: type[Any] | None = None) -> RecordedBound[P2, R2]: ...

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any: ...


class RecordedBound(Protocol[P, R_co]):
    """The type of a ``@recorded`` method reached through an instance: its call signature
    without ``self``, and a ``.memo`` whose ``key``/``explain`` bind the instance."""

    memo: BoundMemo[P]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


class Options(NamedTuple):
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
    observe_files: bool | None = None
    replay_timing: ReplayTiming | None = None


@overload
def recorded(
    fn: Callable[P, R],
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
    observe_files: bool | None = None,
    replay_timing: ReplayTiming | None = None,
) -> Recorded[P, R]: ...


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
    observe_files: bool | None = None,
    replay_timing: ReplayTiming | None = None,
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
    observe_files: bool | None = None,
    replay_timing: ReplayTiming | None = None,
) -> Any:
    """Record the first call of a function and replay it while code, arguments and files match.

    Use it bare (`@recorded`), with options (`@recorded(files=["examples/*.dy"])`), or around a
    callable you do not own, at the call site (`recorded(some_lib.translate)`). It returns a
    [`Recorded`][memo_replay.Recorded]: the function, with the same signature, plus
    [`.memo`][memo_replay.Memo]. On a method, `inst.translate.memo` has `self` bound
    (`inst.translate.memo.explain(p)`), and `Translator.translate.memo` takes it first
    (`.explain(inst, p)`).

    On a generator function (`def ...: yield`, or `async def ...: yield`) it records the
    stream: each item passes through as it arrives and the stream is recorded once exhausted;
    a replay yields the same items (see [Streaming responses](guides/streaming.md)).

    What the call does is the [mode][memo_replay.Mode]'s choice: `auto` replays a recording or
    records a new one, `replay` raises [`ReplayMiss`][memo_replay.ReplayMiss] instead of
    calling, `record` always calls and records, `off` only calls.

    ```pycon
    >>> import memo_replay
    >>> from memo_replay import recorded
    >>> @recorded
    ... def translate(text: str, model: str = "small") -> str:
    ...     return f"[{model}] {text.upper()}"
    >>> with memo_replay.track() as calls:
    ...     first = translate("hello")
    ...     second = translate("hello")
    >>> second, [call.outcome for call in calls]
    ('[small] HELLO', ['recorded', 'replayed'])
    ```

    :param fn: the function to record, when used bare (`@recorded`) or called on a callable.
    :param files: globs relative to the project root, or templates over the arguments
        (`"{path}"`); each matched file's content is part of the key.
    :param ignore: parameters left out of the key and out of everything stored (clients,
        API keys).
    :param deps: extra functions or values the result depends on.
    :param version: a manual salt: change it to re-record.
    :param mode: this function's default mode (`MEMO_MODE`, the pytest option and
        [`mode()`][memo_replay.mode] beat it).
    :param store: its store directory (default: `fixtures_store/` at the project root).
    :param serializer: `"json"`, `"pydantic"`, `"dataclass"`, `"bytes"`, `"pickle"` (opt-in:
        loading runs code), a registered id, or a [`Serializer`][memo_replay.Serializer];
        default: chosen from the result's type.
    :param ttl: how long a recording stays valid (seconds, a `timedelta` or `"30d"`); an
        expired one is re-recorded in `auto`/`record` and, in `replay`, replayed with a warning
        or refused as `[tool.memo_replay] replay_expired` says.
    :param record_exceptions: also record an exception the call raises (type and message);
        it is raised again on replay. By default exceptions propagate and nothing is recorded.
    :param redact: `redact(value, *, field)` rewrites what is stored: each argument's preview
        (`field` is the parameter name) and the result (`field="return"`; a recorded
        exception too). The call that records returns (or raises) the rewritten result, as
        every replay of it does, so code never sees a value its replays will not give back;
        in mode `off` nothing is stored, and the real result is returned. Every entry is also
        scanned for secret-shaped strings before it is written; a match raises
        [`SecretDetected`][memo_replay.SecretDetected] and nothing is written.
    :param observe_files: whether project files the call reads while it is recorded count as
        dependencies of the recording (default: `[tool.memo_replay] observe_files`, true);
        the project code that runs is always observed.
    :param replay_timing: for a generator function, `"instant"` (default:
        `[tool.memo_replay] replay_timing`) replays its items at once, `"recorded"` waits the
        recorded gaps between them (tests of streaming UIs and timeouts).
    :returns: the recorded function (a [`Recorded`][memo_replay.Recorded]); called with
        options only, a decorator that makes one.
    :raises InvalidOption: an option is invalid (an unknown parameter in `ignore`, a bad
        `ttl`, `replay_timing` on a function that does not yield).
    """
    if replay_timing is not None and replay_timing not in ("instant", "recorded"):
        raise InvalidOption(f"@recorded(replay_timing={replay_timing!r}): use \"instant\" "
                            f"(replay a stream's items at once) or \"recorded\" (wait the "
                            f"recorded gaps between them)")
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
        observe_files=observe_files,
        replay_timing=replay_timing,
    )
    call_site = _call_site()

    def decorate(target: Callable[..., Any], *, bindable: bool = True) -> Any:
        if isinstance(target, (staticmethod, classmethod)):
            return type(target)(decorate(target.__func__, bindable=False))
        if not callable(target):
            raise InvalidOption(f"@recorded can only wrap a callable, not {target!r}")
        memo = Memo(target, options, call_site=call_site)
        if bindable and type(target) is types.FunctionType \
                and "." in target.__qualname__.rpartition("<locals>.")[2]:
            # Defined in a class body: `inst.method.memo` must bind `self` (see bound.py).
            from memo_replay.bound import RecordedMethod

            return RecordedMethod(memo.wrapper)
        return memo.wrapper

    return decorate if fn is None else decorate(fn)


class Memo(Generic[P, R]):
    """The `.memo` of a recorded function: its key, explanation and recordings.

    `translate.memo.key(...)` and `translate.memo.explain(...)` take the same arguments as
    `translate` and never call it:

    ```pycon
    >>> from memo_replay import recorded
    >>> @recorded
    ... def translate(text: str) -> str:
    ...     return text.upper()
    >>> translate("hello")
    'HELLO'
    >>> memo = translate.memo
    >>> memo.explain("hello").matched, memo.explain("bye").matched
    (True, False)
    >>> [entry.key for entry in memo.entries()] == [memo.key("hello")]
    True
    ```

    (Inside, it composes the call pipeline: a `KeyBuilder` makes the key, `decide()` picks
    what to do, a `Replayer` finds and decodes the recording, a `Recorder` records around the
    real call.)
    """

    def __init__(self, function: Callable[P, R], options: Options, *,
                 call_site: str | None = None) -> None:
        self.function = function
        """The function it records (the original, undecorated)."""
        self.options = options
        self.id = function_id(function)
        """The function's id, `module.qualname`: its recordings' directory name in the store
        (never a file path)."""
        source_file = _source_file(function)
        self.root = find_root(module_dir(getattr(function, "__module__", "") or "",
                                         source_file))
        if not is_project_file(source_file, self.root):
            # A callable we do not own (stdlib, an installed package, a builtin), wrapped at the
            # call site: its recordings belong to the project that wraps it, not to the place
            # the library is installed in.
            self.root = find_root(Path(call_site).resolve().parent if call_site
                                  else Path.cwd().resolve())
        arguments = ArgumentSpec(function, function_id=self.id, ignore=options.ignore,
                                 root=self.root)
        files = DeclaredFiles(options.files, function_id=self.id, root=self.root,
                              parameters=arguments.parameter_names)
        self.stream: StreamKind | None = _stream_kind(function)
        """``"sync"``/``"async"`` for a generator/async-generator function, else None."""
        if options.replay_timing is not None and self.stream is None:
            raise InvalidOption(f"@recorded(replay_timing=...) on `{self.id}`: it applies to "
                                f"generator functions (streams), and `{self.id}` does not "
                                f"yield")
        serializer = options.serializer
        self.keys = KeyBuilder(arguments, files, lambda: self.code,
                               serializer if serializer is None or isinstance(serializer, str)
                               else serializer.id)
        """Builds the keys of this function's calls."""
        self._check_ignore()
        self.replayer = Replayer(self)
        self._code: CodeFingerprint | None = None
        self._annotation: Any = _UNKNOWN
        self._config: Config | None = None
        self._store_setting: tuple[tuple[str | None, str | None], Store] | None = None
        self._lock = _thread.allocate_lock()
        self.wrapper = self._wrap()

    def __repr__(self) -> str:
        return f"<memo of {self.id}>"

    @functools.cached_property
    def recorder(self) -> Recorder:
        """Records around the real call (made on the first call that records: a process that
        only replays never imports the recording code)."""
        from memo_replay.call.recorder import Recorder

        return Recorder(self)

    # -- public API ---------------------------------------------------------------------------

    @property
    def code(self) -> CodeFingerprint:
        """The code fingerprint: the normalized source of the function and of what it uses
        (computed once per process, on first use; see
        [What goes into a key](keys.md))."""
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
        """`[tool.memo_replay]` of the function's project (read once per process)."""
        config = self._config
        if config is None:
            config = self._config = project_config(self.root)
        return config

    @property
    def mode(self) -> Mode:
        """The [`Mode`][memo_replay.Mode] a call made now would use."""
        return resolve_mode(self.options.mode, self.config.mode)

    @property
    def replay_timing(self) -> ReplayTiming:
        """How a stream replays: `instant` or `recorded` (`replay_timing=`, else the
        project's)."""
        return self.options.replay_timing or self.config.replay_timing

    @property
    def ttl(self) -> float | None:
        """How long a recording stays valid, in seconds (`ttl=`, else the project's; None:
        forever)."""
        return self.options.ttl if self.options.ttl is not None else self.config.ttl

    @property
    def store(self) -> Store:
        """The [`Store`][memo_replay.Store] a call made now would use: the first of the pytest
        option `--memo-store`, `MEMO_STORE`, `store=`, `[tool.memo_replay] store`, and
        `fixtures_store/` at the project root."""
        env = _session_store or os.environ.get("MEMO_STORE") or None
        # Resolved once per setting, not per call; a relative MEMO_STORE follows the cwd.
        setting = (env, os.getcwd() if env and not os.path.isabs(env) else None)
        cached = self._store_setting
        if cached is not None and cached[0] == setting:
            return cached[1]
        store = open_store(store_path(env, root=self.root,
                                      configured=self.options.store).resolve(),
                           remote=remote_setting(self.config),
                           payloads=payloads_setting(self.config),
                           remote_timeout=remote_timeout_setting(self.config))
        self._store_setting = (setting, store)
        return store

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key a call with these arguments (the function's own) has: 32 hex digits. The
        function is not called."""
        return self.keys.key(self.keys.bind(args, kwargs)).key

    def explain(self, *args: P.args, **kwargs: P.kwargs) -> Explanation:
        """Whether a call with these arguments would replay, and if not, what differs from
        the closest recording: an [`Explanation`][memo_replay.Explanation] (its `str()` is
        the message a [`ReplayMiss`][memo_replay.ReplayMiss] shows)."""
        bound = self.keys.bind(args, kwargs)
        from memo_replay.explain import explain  # explaining is rare: imported on demand

        return explain(self.keys.key(bound), self.keys.preview(bound), self.store.entries(self.id),
                       changed=self._observed_changes)

    def _observed_changes(self, entry: Entry) -> list[Change]:
        return [] if entry.observed is None else self.replayer.observed_changes(entry.observed)

    def entries(self) -> Iterator[Entry]:
        """The recordings of this function in its store (each an [`Entry`][memo_replay.Entry])."""
        return self.store.entries(self.id)

    @property
    def return_annotation(self) -> Any:
        """The function's return annotation (None without one, or when it cannot be
        resolved): it chooses the serializer for results like `list[Item]`."""
        if self._annotation is _UNKNOWN:
            try:
                hints = typing.get_type_hints(self.function)
            except Exception:  # a forward reference that does not resolve, a C function
                hints = {}
            self._annotation = hints.get("return")
        return self._annotation

    # -- the pipeline -------------------------------------------------------------------------

    def _wrap(self) -> Callable[P, R]:
        # A call that does not replay runs under its key's record-once lock; whoever waited
        # for the lock looks again first and replays what the holder recorded (see
        # store/locks.py). The two wrappers differ only in what they await.
        function: Any = self.function
        begin, lock_for, recording = self._begin, self._lock_for, self._recording
        if self.stream is not None:
            from memo_replay.call.stream import stream_wrapper

            wrapper: Any = stream_wrapper(self)
        elif _is_coroutine_function(function):
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                call = begin(args, kwargs)
                if call.lookup is None:
                    lock = lock_for(call)
                    if lock is not None:
                        await lock.acquire_async(self.config.lock_timeout)
                    with recording(call, lock) as capture:
                        if capture is not None:
                            capture.value = await function(*args, **kwargs)
                    if capture is not None:  # what was recorded, as in sync_wrapper
                        return capture.value
                return call.replayed()

            wrapper = async_wrapper
        else:
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                call = begin(args, kwargs)
                if call.lookup is None:
                    lock = lock_for(call)
                    if lock is not None:
                        lock.acquire(self.config.lock_timeout)
                    with recording(call, lock) as capture:
                        if capture is not None:
                            capture.value = function(*args, **kwargs)
                    # Read after the block: recording it set the value every replay returns
                    # (a redact= hook's rewrite of the result), and this call returns the same.
                    if capture is not None:
                        return capture.value
                return call.replayed()

            wrapper = sync_wrapper
        functools.update_wrapper(wrapper, function)
        wrapper.memo = self
        return wrapper  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def _recording(self, call: _Call, lock: KeyLock | None, *,
                   stream: bool = False) -> Iterator[Capture | None]:
        """Holding ``lock`` (released at the end): None when the call was recorded meanwhile
        and now replays, else the capture to run the real call in (``stream``: a
        :class:`~memo_replay.call.stream.StreamCapture`)."""
        try:
            if lock is not None and self._look_again(call):
                yield None
            else:
                bound = call.bound
                with self.recorder.around(call.key, lambda: self.keys.preview(bound or {}),
                                          call.store, stream=stream) as capture:
                    yield capture
        finally:
            if lock is not None:
                lock.release()

    def _begin(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
        """Key the call and look it up: replayed (``lookup`` set), or to be called."""
        mode = self.mode
        if mode is _OFF:
            return _Call(mode)
        bound = self.keys.bind(args, kwargs)
        call = _Call(mode, self.keys.key(bound), bound, self.store)
        if (mode is _AUTO or mode is _REPLAY_MODE) and self._look(call) is not None:
            assert call.missed is not None
            action, lookup = call.missed
            if action is Action.RECORD_WARN:
                warn(f"memo_replay: {lookup.error} — re-recording it")
            elif action is Action.MISS or action is Action.FAIL:
                error = self._refusal(call, action, lookup)
                if isinstance(error, ReplayMiss) and listening():
                    emit(CallEvent(self.id, error.key, "missed", 0.0, 0.0, call.where,
                                   str(error)))
                raise error
        return call

    def _lock_for(self, call: _Call) -> KeyLock | None:
        """The key's record-once lock (None in ``off``, or where the store cannot be written)."""
        if call.key is None or call.store is None:
            return None
        return call.store.lock(self.id, call.key.key)

    def _look_again(self, call: _Call) -> bool:
        """After waiting for the lock: True when another process recorded the call meanwhile
        (it is then replayed into ``call``)."""
        if not looks_up(call.mode):
            return False
        if self._look(call) is Action.FAIL:
            assert call.missed is not None
            raise self._refusal(call, *call.missed)
        return call.lookup is not None

    def _look(self, call: _Call) -> Action | None:
        """Look the call up and decide: None when it replays (the value is then in
        ``call.lookup``), else what to do instead (``call.missed`` holds what was found)."""
        assert call.key is not None
        assert call.store is not None
        started = time.perf_counter()
        lookup = self.replayer.find(call.store, call.key.key, self.ttl)
        # The table's first row, spelled out (this runs on every hit): a hit replays in every
        # mode that looks.
        if lookup.found is _FOUND:
            action = _REPLAY
        else:
            action = decide(call.mode, lookup.found, replay_expired=self.config.replay_expired)
            if action is Action.REPLAY_WARN:
                warn(self.replayer.expired(lookup, call.key.key)[0])
            elif action is not _REPLAY:
                call.missed = (action, lookup)
                return action
        call.lookup = lookup
        observed = lookup.hit.observed  # type: ignore[union-attr]
        if observed is not None:
            from memo_replay.keys.observed import note_replay

            note_replay(observed, self.root)
        if listening():
            assert lookup.hit is not None
            emit(CallEvent(self.id, call.key.key, "replayed", time.perf_counter() - started,
                           lookup.hit.duration_s, call.where,
                           items=None if self.stream is None else len(lookup.value.items)))
        return None


    def _refusal(self, call: _Call, action: Action, lookup: Lookup) -> MemoReplayError:
        """The error a call that must not run raises."""
        assert call.key is not None
        assert call.store is not None
        assert call.bound is not None
        key = call.key.key
        if lookup.found is Found.EXPIRED:
            return self.replayer.expired(lookup, key)[1]
        if action is Action.FAIL:
            assert lookup.error is not None
            return lookup.error
        if lookup.found is Found.SERIALIZER_CHANGED:
            return self.replayer.serializer_changed(lookup, key)
        if lookup.found is Found.DEPENDENCIES_CHANGED:
            return self.replayer.dependencies_changed(lookup, key)
        from memo_replay.explain import explain

        explanation = explain(call.key, self.keys.preview(call.bound),
                              call.store.entries(self.id))
        moved = "" if explanation.closest is not None \
            else self.replayer.moved_hint(call.store, call.key)
        remote = call.store.remote
        if remote is not None:
            moved += f"\nThe remote {remote.url} was not asked: {remote.unavailable}" \
                if remote.unavailable else f"\nThe remote {remote.url} has no recording of it."
        return ReplayMiss(f"memo_replay (replay mode): {explanation}{moved}", function=self.id,
                          key=key, explanation=explanation)

    def _check_ignore(self) -> None:
        names = self.keys.arguments.parameter_names
        unknown = sorted(self.options.ignore - set(names))
        if unknown and not self.keys.arguments.accepts_any_keyword:
            raise InvalidOption(
                f"@recorded(ignore={unknown!r}) on `{self.id}`: no parameter named "
                f"{', '.join(unknown)}; parameters are: {', '.join(names) or '(none)'}"
            )


class _Call:
    """One call's way through the pipeline (``key``/``bound``/``store`` are None in ``off``)."""

    __slots__ = ("bound", "key", "lookup", "missed", "mode", "store")

    def __init__(self, mode: Mode, key: CallKey | None = None,
                 bound: dict[str, Any] | None = None, store: Store | None = None) -> None:
        self.mode = mode
        self.key = key
        self.bound = bound
        self.store = store
        self.lookup: Lookup | None = None
        """Set when the call replays."""
        self.missed: tuple[Action, Lookup] | None = None
        """Set when it does not: what to do instead, and what was found."""

    @property
    def where(self) -> str | None:
        return None if self.store is None else str(self.store.path)

    def replayed(self) -> Any:
        """The replayed value (a recorded exception is raised again)."""
        lookup = self.lookup
        assert lookup is not None
        if lookup.hit.payload.serializer == EXCEPTION:  # type: ignore[union-attr]
            raise lookup.value
        return lookup.value


_UNKNOWN: Any = object()
# Enum members bound once: `Mode.OFF` costs an attribute lookup on the class (~50 ns) and the
# hit path compares several.
_OFF, _AUTO, _REPLAY_MODE = Mode.OFF, Mode.AUTO, Mode.REPLAY
_FOUND, _REPLAY = Found.FOUND, Action.REPLAY


def function_id(function: Callable[..., Any]) -> str:
    """``module.qualname`` — never a file path (see :func:`~memo_replay.project.module_name`)."""
    qualname = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{module_name(function)}.{qualname}"


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
    """``inspect.getsourcefile(function)``, without importing ``inspect`` (a few ms of every
    process's start) for the common case: a function whose ``.py`` file exists."""
    code = getattr(function, "__code__", None)
    filename = getattr(code, "co_filename", None)
    if type(function) is types.FunctionType and isinstance(filename, str) \
            and filename.endswith(".py") and os.path.isfile(filename):
        return filename
    import inspect  # a notebook cell, a zip import, a callable object, a C function…

    try:
        return inspect.getsourcefile(function)
    except TypeError:
        return None


_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE


def _is_coroutine_function(function: Callable[..., Any]) -> bool:
    """``inspect.iscoroutinefunction(function)``, without importing ``inspect`` for a plain
    function (which is one exactly when its code has the coroutine flag)."""
    if type(function) is types.FunctionType and "inspect" not in sys.modules:
        # Nothing can have marked it (inspect.markcoroutinefunction) without importing inspect.
        return bool(function.__code__.co_flags & _CO_COROUTINE)
    import inspect

    return inspect.iscoroutinefunction(function)


_CO_GENERATOR = 0x20  # inspect.CO_GENERATOR
_CO_ASYNC_GENERATOR = 0x200  # inspect.CO_ASYNC_GENERATOR
StreamKind = Literal["sync", "async"]


def _stream_kind(function: Callable[..., Any]) -> StreamKind | None:
    """``"sync"`` for a generator function, ``"async"`` for an async-generator function (its
    calls are streams: see :mod:`memo_replay.call.stream`), else None — from the code's flags
    for a plain function, without importing ``inspect``."""
    if type(function) is types.FunctionType:
        flags = function.__code__.co_flags
        if flags & _CO_ASYNC_GENERATOR:
            return "async"
        return "sync" if flags & _CO_GENERATOR else None
    import inspect  # a method, a callable object, a partial, a C function

    for candidate in (function, getattr(function, "__call__", None)):  # noqa: B004
        if inspect.isasyncgenfunction(candidate):
            return "async"
        if inspect.isgeneratorfunction(candidate):
            return "sync"
    return None


_session_store: str | None = None


def set_session_store(path: str | os.PathLike[str] | None) -> None:
    """Set the session-wide store directory (the pytest plugin's ``--memo-store``)."""
    global _session_store
    _session_store = None if path is None else os.fspath(Path(path).resolve())


_stores: dict[Path, Store] = {}
_stores_lock = _thread.allocate_lock()


def open_store(path: Path, *, remote: tuple[str, RemoteMode] | None = None,
               payloads: Payloads = "local", remote_timeout: float = 5.0) -> Store:
    """One :class:`Store` per directory per process, so its index connection is shared.
    ``remote`` (url, mode) puts the shared tier behind it, if it has none yet; ``payloads``
    says where its payload files go (``remote``: out of git, see ``payloads`` in the docs)."""
    store = _stores.get(path)
    if store is None:
        from memo_replay.store import Store  # the store's modules load with the first call

        with _stores_lock:
            store = _stores.setdefault(path, Store(path))
    if remote is not None and store.remote is None:
        from memo_replay.store.remote import RemoteTier  # only with a remote configured

        with _stores_lock:
            if store.remote is None:
                store.remote = RemoteTier(remote[0], remote[1], str(store.path),
                                          payloads=payloads, timeout=remote_timeout)
    return store


__all__ = ["Memo", "Options", "Recorded", "recorded"]
