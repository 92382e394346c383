"""Choosing a serializer for a result, and finding it again to replay an entry.

Order for a result: the function's ``serializer=``; a serializer registered for the value's type
(:func:`register_serializer`, most recent first); pydantic models; ``bytes``; dataclasses; plain
JSON data. Nothing else is guessed: a result no serializer accepts is a
:class:`~memo_replay.errors.SerializationError`. cloudpickle is used only with
``serializer="pickle"`` and an entry claiming a pickle payload is refused for any function that
did not opt in — loading a recording never runs code by default.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

from memo_replay.errors import InvalidOption, SerializationError
from memo_replay.serializers.base import PayloadKind, Serializer
from memo_replay.serializers.builtin import (
    BytesSerializer,
    DataclassSerializer,
    ExceptionSerializer,
    JsonSerializer,
    PickleSerializer,
    PydanticSerializer,
    imported_class,
    is_json_native,
)

__all__ = ["EXCEPTION_SERIALIZER", "PayloadKind", "Registry", "Serializer", "payload_kind",
           "register_serializer", "registry"]

_PLAIN: dict[str, Serializer] = {
    s.id: s for s in (JsonSerializer(), BytesSerializer(), PickleSerializer(),
                      ExceptionSerializer())
}
EXCEPTION_SERIALIZER = ExceptionSerializer.id
_CLASS_BOUND: dict[str, Callable[[type], Serializer]] = {
    "pydantic": PydanticSerializer,
    "dataclass": DataclassSerializer,
}
SerializerOption = str | Serializer | None


def type_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


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

    def choose(self, value: Any, option: SerializerOption, *, function: str
               ) -> tuple[Serializer, str | None]:
        """The serializer for ``value`` and the type path to store (class-bound ones)."""
        if option is not None and not isinstance(option, str):
            return option, None
        if option in _PLAIN:
            return _PLAIN[option], None
        tp = type(value)
        if option is None:
            for registered_type, serializer in self._by_type:
                if isinstance(value, registered_type):
                    return serializer, None
        if option in (None, "pydantic") and _is_pydantic_model_class(tp):
            return PydanticSerializer(tp), type_path(tp)
        if option is None and tp is bytes:
            return _PLAIN["bytes"], None
        if option in (None, "dataclass") and dataclasses.is_dataclass(value) \
                and not isinstance(value, type):
            try:
                return DataclassSerializer(tp), type_path(tp)
            except Exception as exc:  # pydantic cannot build a schema for some field types
                raise _unserializable(function, tp, f" ({exc.__class__.__name__}: {exc})"
                                      ) from exc
        if option is None and is_json_native(value):
            return _PLAIN["json"], None
        if option in _CLASS_BOUND:  # a known serializer that does not fit this value
            needs = "a pydantic model" if option == "pydantic" else "a dataclass instance"
            raise _unserializable(function, tp,
                                  f" (@recorded(serializer={option!r}) needs {needs})")
        if option is not None:
            named = self._named(option)
            if named is not None:
                return named, None
            raise InvalidOption(
                f"@recorded(serializer={option!r}) on `{function}`: unknown serializer; use one "
                f"of {', '.join(sorted([*_PLAIN, *_CLASS_BOUND]))}, a registered serializer's id "
                f"or a Serializer instance"
            )
        raise _unserializable(function, tp, "")

    def resolve(self, serializer_id: str, stored_type: str | None, option: SerializerOption,
                *, function: str) -> Serializer:
        """The serializer that reads an entry written by ``serializer_id``."""
        if option is not None and not isinstance(option, str) and option.id == serializer_id:
            return option
        if serializer_id == "pickle" and option != "pickle":
            raise SerializationError(
                f"the recording of `{function}` holds a pickle payload, but `{function}` did "
                f"not opt in with @recorded(serializer=\"pickle\"); it is refused unread because "
                f"unpickling runs code. Re-record it, or opt in if you trust the store."
            )
        if serializer_id in _PLAIN:
            return _PLAIN[serializer_id]
        if serializer_id in _CLASS_BOUND:
            return _CLASS_BOUND[serializer_id](_import_type(serializer_id, stored_type, function))
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


def _is_pydantic_model_class(tp: type) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and issubclass(tp, pydantic.BaseModel)


def _unserializable(function: str, tp: type, detail: str) -> SerializationError:
    name = f"{tp.__module__}.{tp.__qualname__}"
    return SerializationError(
        f"cannot record the result of `{function}`: no serializer accepts a `{name}`{detail}. "
        f"Nothing was written. Fix: return a pydantic model, a dataclass, bytes or plain JSON "
        f"data (lists, not tuples; string keys); or register one with "
        f"memo_replay.register_serializer({tp.__qualname__}, ...); or opt in to cloudpickle "
        f"with @recorded(serializer=\"pickle\") if everyone who can change the store is trusted."
    )


def _import_type(serializer_id: str, stored_type: str | None, function: str) -> type:
    """The class a recording names, from modules already imported — never importing one: a
    recording is data, and importing a module it names would run that module's code."""
    module_name = (stored_type or "").partition(":")[0]
    if module_name not in sys.modules:
        raise SerializationError(
            f"the recording of `{function}` holds a {serializer_id} payload of type "
            f"{stored_type!r}, but module {module_name!r} is not imported in this process. "
            f"memo_replay never imports modules named by a recording (that would run their "
            f"code); import the class before replaying, e.g. at the top of the module that "
            f"defines `{function}`."
        )
    value = imported_class(stored_type or "")
    if value is None:
        raise SerializationError(
            f"the recording of `{function}` holds a {serializer_id} payload of type "
            f"{stored_type!r}, which does not exist; re-record it with MEMO_MODE=record"
        )
    if not isinstance(value, type) or (
        serializer_id == "pydantic" and not _is_pydantic_model_class(value)
    ) or (serializer_id == "dataclass" and not dataclasses.is_dataclass(value)):
        raise SerializationError(
            f"the recording of `{function}` names {stored_type!r} as its {serializer_id} type, "
            f"which is not one; re-record it with MEMO_MODE=record"
        )
    return value


registry = Registry()


def register_serializer(type_: type, serializer: Serializer) -> None:
    """Use ``serializer`` for results of ``type_`` (checked for the protocol right here).

    >>> class Upper:
    ...     id, version = "upper-text", 1
    ...     def dumps(self, value): return value.text
    ...     def loads(self, data): return Shout(data)
    >>> class Shout:
    ...     def __init__(self, text): self.text = text
    >>> register_serializer(Shout, Upper())
    """
    registry.register(type_, serializer)
