"""Naming a result's type in an entry, and finding it again without importing anything.

An entry records the type a class-bound serializer rebuilds (``result.type``) as text:

- a class: ``module:qualname`` (``examples.dygram.ir:Machine``);
- a parametrized generic — a pydantic ``Page[Item]``, ``list[Item]``, ``dict[str, Item]``,
  ``tuple[int, ...]``, ``Item | None`` — as its origin with its arguments in brackets:
  ``app.models:Page[app.models:Item]``, ``builtins:list[app.models:Item]``,
  ``typing:Union[app.models:Item, builtins:NoneType]``, ``builtins:tuple[builtins:int, ...]``.

Reading a name back only looks at modules already imported (:func:`imported_class`): a
recording is data, and importing a module it names would run that module's code.
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

from memo_replay.project import main_module_name, module_name

_NONE = "builtins:NoneType"
_ELLIPSIS = "..."


def imported_class(path: str) -> Any:
    """The object named ``module:qualname`` from modules already imported, else None."""
    if path == _NONE:
        return type(None)
    module_name, _, qualname = path.partition(":")
    value: Any = sys.modules.get(module_name)
    if value is None and module_name == main_module_name():
        value = sys.modules.get("__main__")  # recorded by importing what runs as a script now
    for part in qualname.split(".") if value is not None else ():
        value = getattr(value, part, None)
    return value


def type_name(tp: Any) -> str:
    """The text naming ``tp``; ``TypeError`` for what cannot be named (a local class, a
    ``Literal``, a ``TypeVar``…)."""
    if tp is Ellipsis:
        return _ELLIPSIS
    if tp is None or tp is type(None):
        return _NONE
    generic = getattr(tp, "__pydantic_generic_metadata__", None)
    if generic and generic.get("origin") is not None:
        return _with_args(type_name(generic["origin"]), generic["args"])
    origin = typing.get_origin(tp)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return _with_args("typing:Union", typing.get_args(tp))
    if origin is not None and isinstance(origin, type):
        return _with_args(type_name(origin), typing.get_args(tp))
    if isinstance(tp, type):
        # A class of a script run as __main__ is named like the module it is when imported.
        name = f"{module_name(tp)}:{tp.__qualname__}"
        if "<locals>" in tp.__qualname__ or imported_class(name) is not tp:
            raise TypeError(f"{tp.__qualname__} cannot be found again by its name {name!r} "
                            f"(define it at module level)")
        return name
    raise TypeError(f"cannot name the type {tp!r} in a recording")


def _with_args(origin: str, args: tuple[Any, ...]) -> str:
    return f"{origin}[{', '.join(type_name(a) for a in args)}]"


def resolve_type(name: str) -> Any:
    """The type ``name`` denotes, built from already imported modules; ``LookupError`` naming
    the first part that is not there."""
    tp, rest = _parse(name.replace(" ", ""))
    if rest:
        raise LookupError(f"malformed type name {name!r}")
    return tp


def _parse(text: str) -> tuple[Any, str]:
    """One type at the start of ``text``, and what follows it."""
    end = 0
    while end < len(text) and text[end] not in "[],":
        end += 1
    head, rest = text[:end], text[end:]
    if head == _ELLIPSIS:
        return Ellipsis, rest
    if not rest.startswith("["):
        return _lookup(head), rest
    args: list[Any] = []
    rest = rest[1:]
    while True:
        arg, rest = _parse(rest)
        args.append(arg)
        if rest.startswith(","):
            rest = rest[1:]
            continue
        if not rest.startswith("]"):
            raise LookupError(f"malformed type name near {rest[:20]!r}")
        rest = rest[1:]
        break
    if head == "typing:Union":
        return typing.Union[tuple(args)], rest  # noqa: UP007 - built from a runtime tuple
    origin = _lookup(head)
    return origin[tuple(args) if len(args) > 1 else args[0]], rest


def _lookup(path: str) -> Any:
    value = imported_class(path)
    if value is None:
        module_name, _, qualname = path.partition(":")
        if module_name not in sys.modules:
            raise LookupError(f"module {module_name!r} is not imported")
        raise LookupError(f"module {module_name!r} defines no {qualname!r}")
    return value
