"""Choosing a serializer for a result, and finding it again to replay an entry.

Order for a result: the function's ``serializer=``; a serializer registered for the value's type
(:func:`register_serializer`, most recent first); pydantic models (generic ones included);
``bytes``; numpy arrays; dataclasses; plain JSON data; and last the function's return annotation
(``list[Item]``, ``tuple[int, str]``…, through a pydantic ``TypeAdapter``). Nothing else is
guessed: a result no serializer accepts is a :class:`~memo_replay.errors.SerializationError`.

cloudpickle is used only with ``serializer="pickle"`` (or ``[tool.memo_replay] pickle_functions``)
and an entry claiming a pickle payload is refused for any function that did not opt in —
loading a recording never runs code by default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from memo_replay.errors import InvalidOption, InvalidPayload, SerializationError, hidden_from_pytest
from memo_replay.optional_types import (
    is_dataclass_class,
    is_plain_ndarray,
    is_pydantic_model_class,
)
from memo_replay.serializers.base import PayloadKind, Serializer
from memo_replay.serializers.builtin import (
    BytesSerializer,
    DataclassSerializer,
    ExceptionSerializer,
    JsonSerializer,
    NumpySerializer,
    PickleSerializer,
    PydanticSerializer,
    TypedSerializer,
    is_json_native,
)
from memo_replay.serializers.typenames import resolve_type, short_name, type_name

# pytest hides this module's frames from a failing test's traceback (see hidden_from_pytest).
__tracebackhide__ = hidden_from_pytest

__all__ = ["InvalidPayload", "PayloadKind", "Registry", "Serializer", "payload_kind",
           "register_serializer", "registry", "round_trips"]

_PLAIN: dict[str, Serializer] = {
    s.id: s for s in (JsonSerializer(), BytesSerializer(), NumpySerializer(),
                      PickleSerializer(), ExceptionSerializer())
}
_CLASS_BOUND: dict[str, Callable[[Any], Serializer]] = {
    "pydantic": PydanticSerializer,
    "dataclass": DataclassSerializer,
    "typed": TypedSerializer,
}
SerializerOption = str | Serializer | None
_NO_ANNOTATION: Any = object()


def payload_kind(serializer: Serializer, data: bytes | str) -> PayloadKind:
    kind = getattr(serializer, "payload", None)
    if kind in ("json", "text", "binary"):
        return kind  # type: ignore[no-any-return]
    return "binary" if isinstance(data, bytes) else "text"


class Registry:
    """Serializers registered for user types (an IR class, a parse tree, …)."""

    def __init__(self) -> None:
        self._by_type: list[tuple[type, Serializer]] = []

    def register(self, type_: type, serializer: Serializer) -> None:
        """Use ``serializer`` for results that are instances of ``type_``."""
        if not isinstance(type_, type):
            raise InvalidOption(f"register_serializer: {type_!r} is not a type")
        problems = _protocol_problems(serializer)
        if problems:
            raise InvalidOption(
                f"register_serializer({type_.__qualname__}, {serializer!r}): {problems}; a "
                f"serializer needs `id: str`, `version: int`, `dumps(value)` and `loads(data)`"
            )
        if serializer.id in _PLAIN or serializer.id in _CLASS_BOUND:
            raise InvalidOption(
                f"register_serializer: the id {serializer.id!r} is a built-in serializer's; "
                f"choose another id"
            )
        self._by_type = [(t, s) for t, s in self._by_type if t is not type_]
        self._by_type.insert(0, (type_, serializer))

    def choose(self, value: Any, option: SerializerOption, *, function: str,
               annotation: Any = None, pickle_allowed: bool = False
               ) -> tuple[Serializer, str | None]:
        """The serializer for ``value`` and the type name to store (class-bound ones).

        ``annotation`` is the function's return annotation (None when it has none);
        ``pickle_allowed`` (``[tool.memo_replay] pickle_functions``) makes cloudpickle the last
        resort instead of an error."""
        if option is not None and not isinstance(option, str):
            return option, None
        if option in _PLAIN:
            return _PLAIN[option], None
        tp = type(value)
        if option is None:
            for registered_type, serializer in self._by_type:
                if isinstance(value, registered_type):
                    return serializer, None
        if option in (None, "pydantic") and is_pydantic_model_class(tp):
            return _class_bound("pydantic", tp, function)
        if option is None and tp is bytes:
            return _PLAIN["bytes"], None
        if option is None and is_plain_ndarray(value):
            return _PLAIN["numpy"], None
        if option in (None, "dataclass") and is_dataclass_class(tp):
            return _class_bound("dataclass", tp, function)
        if option is None and is_json_native(value):
            return _PLAIN["json"], None
        if option in (None, "typed") and annotation not in (None, Any, object):
            try:
                return _class_bound("typed", annotation, function, value)
            except SerializationError:
                if option is not None or not pickle_allowed:
                    raise
        if option is None and pickle_allowed:
            return _PLAIN["pickle"], None
        if option in _CLASS_BOUND:  # a known serializer that does not fit this value
            needs = {"pydantic": "a pydantic model", "dataclass": "a dataclass instance",
                     "typed": "a return annotation"}[option]
            raise _unserializable(function, tp,
                                  f" (@recorded(serializer={option!r}) needs {needs})", value)
        if option is not None:
            named = self._named(option)
            if named is not None:
                return named, None
            raise InvalidOption(
                f"@recorded(serializer={option!r}) on `{function}`: unknown serializer; use one "
                f"of {', '.join(sorted([*_PLAIN, *_CLASS_BOUND]))}, a registered serializer's id "
                f"or a Serializer instance"
            )
        raise _unserializable(function, tp, "", value)

    def resolve(self, serializer_id: str, stored_type: str | None, option: SerializerOption,
                *, function: str, annotation: Any = _NO_ANNOTATION,
                pickle_allowed: bool = False) -> Serializer:
        """The serializer that reads an entry written by ``serializer_id``.

        A ``typed`` entry is read with ``annotation`` (the function's current return annotation)
        when it names the same type, without parsing the stored name. A stored type that is not
        a value type (a function, an arbitrary class) or that the serializer cannot read raises
        :class:`InvalidPayload` before any schema is built."""
        if option is not None and not isinstance(option, str) and option.id == serializer_id:
            return option
        if serializer_id == "pickle" and option != "pickle" and not pickle_allowed:
            raise SerializationError(
                f"the recording of `{function}` holds a pickle payload, but `{function}` did "
                f"not opt in with @recorded(serializer=\"pickle\") or [tool.memo_replay] "
                f"pickle_functions; it is refused unread because unpickling runs code. Re-record "
                f"it, or opt in if you trust everyone who can change the store."
            )
        if serializer_id in _PLAIN:
            return _PLAIN[serializer_id]
        if serializer_id in _CLASS_BOUND:
            if annotation is not _NO_ANNOTATION and serializer_id == "typed" \
                    and _name_or_none(annotation) == stored_type:
                return TypedSerializer(annotation)
            stored = _stored_type(serializer_id, stored_type, function)
            try:
                return _CLASS_BOUND[serializer_id](stored)
            except Exception as exc:  # a type pydantic cannot build a schema for
                raise InvalidPayload(
                    f"the recording of `{function}` names {short_name(str(stored_type))} as its "
                    f"{serializer_id} type, which cannot be read back ({exc.__class__.__name__})"
                ) from None
        named = self._named(serializer_id)
        if named is None:
            raise SerializationError(
                f"the recording of `{function}` was written by serializer {serializer_id!r}, "
                f"which is not registered in this process; call "
                f"memo_replay.register_serializer(...) before replaying"
            )
        return named

    def _named(self, serializer_id: str) -> Serializer | None:
        return next((s for _, s in self._by_type if s.id == serializer_id), None)


def _protocol_problems(serializer: object) -> str:
    problems = []
    if not isinstance(getattr(serializer, "id", None), str) or not getattr(serializer, "id", ""):
        problems.append("`id` must be a non-empty str")
    if type(getattr(serializer, "version", None)) is not int:
        problems.append("`version` must be an int")
    for method in ("dumps", "loads"):
        if not callable(getattr(serializer, method, None)):
            problems.append(f"`{method}` must be callable")
    return "; ".join(problems)


def round_trips(serializer: Serializer, value: Any, replayed: Any) -> bool:
    """True when ``replayed`` (``value`` dumped and loaded back) is the same type and equal —
    what every recording is checked for before it is written. A serializer may define
    ``same(a, b)`` where ``==`` does not say it (numpy arrays)."""
    if type(replayed) is not type(value):
        return False
    if isinstance(value, BaseException):
        return str(replayed) == str(value)
    if serializer.id == "pickle":
        return True  # arbitrary objects: equality is often identity
    same = getattr(serializer, "same", None)
    try:
        return bool(same(value, replayed)) if callable(same) else bool(replayed == value)
    except Exception:  # an `==` that does not give a truth value
        return False


def _class_bound(serializer_id: str, tp: Any, function: str, value: Any = _NO_ANNOTATION
                 ) -> tuple[Serializer, str]:
    try:
        return _CLASS_BOUND[serializer_id](tp), type_name(tp)
    except Exception as exc:  # a type pydantic cannot handle, or one that cannot be named
        # Only the exception's name: pydantic's paragraph (arbitrary_types_allowed, handler(),
        # a docs URL) is about pydantic models, not about what to do here. It stays chained.
        raise _unserializable(function, tp, f" (the {serializer_id} serializer cannot handle "
                              f"it: {exc.__class__.__name__}, in `error.__cause__`)", value
                              ) from exc


def _name_or_none(tp: Any) -> str | None:
    try:
        return type_name(tp)
    except TypeError:
        return None


def _unserializable(function: str, tp: Any, detail: str, value: Any = _NO_ANNOTATION
                    ) -> SerializationError:
    name = f"{tp.__module__}.{tp.__qualname__}" if isinstance(tp, type) else repr(tp)
    if isinstance(value, (Iterator, AsyncIterator)):
        return SerializationError(
            f"cannot record the result of `{function}`: it returned a `{name}`, an iterator "
            f"that can be consumed once. Nothing was written. Only generator functions are "
            f"recorded as streams: write `{function.rpartition('.')[2]}` with `yield` (or "
            f"`yield from` the iterator), or wrap the call in a generator function that "
            f"yields plain data (see \"Streaming responses\" in the docs); or return a list.")
    annotation = None if value is _NO_ANNOTATION else suggested_annotation(value)
    if annotation is not None and detail == "":
        # JSON has no tuple or set: without an annotation the replay would return a list.
        short = function.rpartition(".")[2]
        return SerializationError(
            f"cannot record the result of `{function}`: it returned a `{type(value).__name__}` "
            f"and has no return annotation saying so (JSON would give it back as a list). "
            f"Nothing was written. Fix: annotate the return type, e.g. "
            f"`def {short}(...) -> {annotation}:`, and the recording replays a "
            f"`{type(value).__name__}` again; or return a list."
        )
    annotate = "" if "typed" in detail else \
        ", or annotate the return type (-> list[Item], -> tuple[int, str])"
    return SerializationError(
        f"cannot record the result of `{function}`: no serializer accepts a `{name}`{detail}. "
        f"Nothing was written. Fix: return a pydantic model, a dataclass, bytes, a numpy array "
        f"or plain JSON data (lists, not tuples; string keys){annotate}; or register one with "
        f"memo_replay.register_serializer({getattr(tp, '__qualname__', tp)}, ...); or opt in "
        f"to cloudpickle "
        f"with @recorded(serializer=\"pickle\") if everyone who can change the store is trusted."
    )


def suggested_annotation(value: Any) -> str | None:
    """The return annotation that would let a tuple or set result round-trip (from the value
    itself: ``(1, "a")`` → ``tuple[int, str]``), or None for other values.

    ```pycon
    >>> from memo_replay.serializers import suggested_annotation
    >>> suggested_annotation((1, "a"))
    'tuple[int, str]'
    >>> suggested_annotation(frozenset({2, 3}))
    'frozenset[int]'
    ```
    """
    if type(value) not in (tuple, set, frozenset):
        return None
    return _annotation_of(value, 0)


def _annotation_of(value: Any, depth: int) -> str:
    tp = type(value)
    if value is None:
        return "None"
    if depth > 2 or tp not in (tuple, list, set, frozenset, dict):
        return tp.__name__ if tp.__module__ == "builtins" else tp.__qualname__
    if tp is dict:
        keys = _union(value.keys(), depth)
        return f"dict[{keys}, {_union(value.values(), depth)}]" if value else "dict[str, Any]"
    if tp is tuple:
        items = [_annotation_of(item, depth + 1) for item in value]
        if not items:
            return "tuple[()]"
        if len(items) <= 6:
            return f"tuple[{', '.join(items)}]"
        return f"tuple[{_union(value, depth)}, ...]"
    return f"{tp.__name__}[{_union(value, depth)}]" if value else f"{tp.__name__}[Any]"


def _union(values: Any, depth: int) -> str:
    names = sorted({_annotation_of(item, depth + 1) for item in list(values)[:100]})
    return " | ".join(names) if len(names) <= 4 else "Any"


def _stored_type(serializer_id: str, stored_type: str | None, function: str) -> Any:
    """The type a recording names, from modules already imported — never importing one: a
    recording is data, and importing a module it names would run that module's code."""
    try:
        value = resolve_type(stored_type or "")
    except LookupError as exc:
        raise SerializationError(
            f"the recording of `{function}` holds a {serializer_id} payload of type "
            f"{short_name(str(stored_type))}, which cannot be found in this process: {exc}. "
            f"memo_replay never "
            f"imports modules named by a recording (that would run their code); import the "
            f"type before replaying (e.g. at the top of the module that defines `{function}`), "
            f"or re-record it with MEMO_MODE=record if it no longer exists."
        ) from None
    except InvalidPayload as exc:
        raise InvalidPayload(f"the recording of `{function}` cannot be read: {exc}") from None
    model = getattr(value, "__pydantic_generic_metadata__", {}).get("origin") or value
    if serializer_id != "typed" and (not isinstance(model, type) or (
        serializer_id == "pydantic" and not is_pydantic_model_class(model)
    ) or (serializer_id == "dataclass" and not is_dataclass_class(model))):
        raise InvalidPayload(
            f"the recording of `{function}` names {short_name(str(stored_type))} as its "
            f"{serializer_id} type, which is not one"
        )
    return value


registry = Registry()


def register_serializer(type_: type, serializer: Serializer) -> None:
    """Use `serializer` for results that are instances of `type_` (the
    [`Serializer`][memo_replay.Serializer] protocol is checked right here). Register it at
    import time, before the first call records or replays such a result. A result is recorded
    only when it comes back equal (`==`) from `dumps` then `loads`.

    ```pycon
    >>> from memo_replay import recorded, register_serializer
    >>> class Shout:
    ...     def __init__(self, text: str) -> None:
    ...         self.text = text
    ...     def __eq__(self, other: object) -> bool:
    ...         return isinstance(other, Shout) and other.text == self.text
    >>> class ShoutSerializer:
    ...     id, version = "shout-text", 1
    ...     def dumps(self, value: Shout) -> str:
    ...         return value.text
    ...     def loads(self, data: str) -> Shout:
    ...         return Shout(data)
    >>> register_serializer(Shout, ShoutSerializer())
    >>> @recorded
    ... def shout(text: str) -> Shout:
    ...     return Shout(text.upper())
    >>> shout("hi").text, shout("hi").text
    ('HI', 'HI')
    >>> [entry.serializer for entry in shout.memo.entries()]
    ['shout-text']
    ```

    See [Serializers](serializers.md).
    """
    registry.register(type_, serializer)
