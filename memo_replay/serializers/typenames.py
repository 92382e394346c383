"""Naming a result's type in an entry, and finding it again without importing anything.

An entry records the type a class-bound serializer rebuilds (``result.type``) as text:

- a class: ``module:qualname`` (``examples.dygram.ir:Machine``);
- a parametrized generic — a pydantic ``Page[Item]``, ``list[Item]``, ``dict[str, Item]``,
  ``tuple[int, ...]``, ``Item | None`` — as its origin with its arguments in brackets:
  ``app.models:Page[app.models:Item]``, ``builtins:list[app.models:Item]``,
  ``typing:Union[app.models:Item, builtins:NoneType]``, ``builtins:tuple[builtins:int, ...]``.

Reading a name back only looks at modules already imported (:func:`imported_class`): a
recording is data, and importing a module it names would run that module's code. Nor does it
trigger anything a name could reach: attributes are read statically (no module ``__getattr__``,
no descriptor), only classes are subscripted, and every class must be a value type
(:func:`is_value_type`) — a name that denotes a function (``os:system``), an arbitrary class
(``subprocess:Popen``) or is malformed or nested too deeply raises
:class:`~memo_replay.serializers.base.InvalidPayload` before pydantic sees it.
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

from memo_replay.errors import InvalidPayload
from memo_replay.project import main_module_name, module_name

_NONE = "builtins:NoneType"
_ELLIPSIS = "..."
MAX_TYPE_NAME = 10_000
"""A stored type name longer than this many characters is refused unread."""
MAX_TYPE_DEPTH = 32
"""... and so is one whose brackets nest deeper than this."""
_VALUE_TYPES = frozenset({
    # builtins
    "builtins:bool", "builtins:int", "builtins:float", "builtins:complex", "builtins:str",
    "builtins:bytes", "builtins:bytearray", "builtins:list", "builtins:tuple", "builtins:dict",
    "builtins:set", "builtins:frozenset", "builtins:object", _NONE, "typing:Any",
    # standard-library value types pydantic validates from JSON
    "datetime:date", "datetime:datetime", "datetime:time", "datetime:timedelta",
    "decimal:Decimal", "fractions:Fraction", "uuid:UUID", "zoneinfo:ZoneInfo", "re:Pattern",
    *(f"{module}:{name}" for module in ("pathlib", "pathlib._local")  # 3.13 moved them
      for name in ("Path", "PurePath", "PosixPath", "PurePosixPath", "WindowsPath",
                   "PureWindowsPath")),
    "ipaddress:IPv4Address", "ipaddress:IPv6Address", "ipaddress:IPv4Interface",
    "ipaddress:IPv6Interface", "ipaddress:IPv4Network", "ipaddress:IPv6Network",
    "collections:deque", "collections:OrderedDict", "collections:Counter",
    "collections:defaultdict",
    "collections.abc:Sequence", "collections.abc:MutableSequence", "collections.abc:Mapping",
    "collections.abc:MutableMapping", "collections.abc:Set", "collections.abc:MutableSet",
})
"""Built-in and standard-library classes a ``typed`` recording may name (by their own
``module:qualname``). Other classes must be value classes: see :func:`is_value_type`."""


def imported_class(path: str) -> Any:
    """The object named ``module:qualname`` from modules already imported, else None."""
    if path == _NONE:
        return type(None)
    module_name, _, qualname = path.partition(":")
    value: Any = sys.modules.get(module_name)
    if value is None and module_name == main_module_name():
        value = sys.modules.get("__main__")  # recorded by importing what runs as a script now
    for part in qualname.split(".") if value is not None else ():
        value = _static_attribute(value, part)
    return value


def _static_attribute(owner: Any, name: str) -> Any:
    """``owner.name`` for a module or a class, read from their ``__dict__`` only: never a
    module ``__getattr__`` (which may import) nor a property or other descriptor (code)."""
    if isinstance(owner, types.ModuleType):
        return vars(owner).get(name)
    if isinstance(owner, type):
        for klass in owner.__mro__:
            if name in vars(klass):
                return vars(klass)[name]
    return None


def is_value_type(tp: Any) -> bool:
    """Whether ``tp`` is a class a recording may name as its result's type (or part of it):
    a built-in or standard-library value type (:data:`_VALUE_TYPES`), an Enum, a pydantic
    model, a dataclass, a NamedTuple, a TypedDict, or a class that tells pydantic how to
    validate it (``__get_pydantic_core_schema__``). Never a function, a module, an instance or
    another class (``subprocess.Popen``)."""
    import dataclasses
    import enum

    if not isinstance(tp, type):
        return False
    own = f"{getattr(tp, '__module__', '')}:{getattr(tp, '__qualname__', '')}"
    if own in _VALUE_TYPES and imported_class(own) is tp:
        return True
    if issubclass(tp, enum.Enum) or dataclasses.is_dataclass(tp) or typing.is_typeddict(tp):
        return True
    extensions = sys.modules.get("typing_extensions")  # its TypedDict (pydantic's, < 3.12)
    if extensions is not None and extensions.is_typeddict(tp):
        return True
    if issubclass(tp, tuple) and isinstance(_static_attribute(tp, "_fields"), tuple):
        return True  # a NamedTuple
    return _static_attribute(tp, "__get_pydantic_core_schema__") is not None


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
    the first part that is not there, :class:`InvalidPayload` for a name that is malformed or
    names anything but value types (:func:`is_value_type`)."""
    if not isinstance(name, str):
        raise InvalidPayload(f"the stored type {name!r} is not a string")
    if len(name) > MAX_TYPE_NAME:
        raise InvalidPayload(f"the stored type name is {len(name)} characters long "
                             f"(at most {MAX_TYPE_NAME})")
    tp, rest = _parse(name.replace(" ", ""), 0)
    if rest:
        raise InvalidPayload(f"malformed type name {short_name(name)}")
    return tp


def short_name(name: str) -> str:
    """A stored type name, quoted and cut short for a message."""
    return repr(name if len(name) <= 80 else name[:77] + "...")


def _parse(text: str, depth: int) -> tuple[Any, str]:
    """One type at the start of ``text``, and what follows it."""
    if depth > MAX_TYPE_DEPTH:
        raise InvalidPayload(f"the stored type name nests deeper than {MAX_TYPE_DEPTH} levels")
    end = 0
    while end < len(text) and text[end] not in "[],":
        end += 1
    head, rest = text[:end], text[end:]
    if head == _ELLIPSIS:
        return Ellipsis, rest
    if not rest.startswith("["):
        return _value_type(head), rest
    args: list[Any] = []
    rest = rest[1:]
    while True:
        arg, rest = _parse(rest, depth + 1)
        args.append(arg)
        if rest.startswith(","):
            rest = rest[1:]
            continue
        if not rest.startswith("]"):
            raise InvalidPayload(f"malformed type name near {rest[:20]!r}")
        rest = rest[1:]
        break
    try:
        if head == "typing:Union":
            return typing.Union[tuple(args)], rest  # noqa: UP007 - built from a runtime tuple
        origin = _value_type(head)
        return origin[tuple(args) if len(args) > 1 else args[0]], rest
    except TypeError as exc:  # `builtins:int[...]`, arguments a generic does not take
        raise InvalidPayload(f"the stored type {head!r}[...] cannot be built ({exc})") from None


def _value_type(path: str) -> Any:
    """The class ``path`` names, refused unless it is a value type."""
    if ":" not in path:
        raise InvalidPayload(f"malformed type name part {short_name(path)} (not module:name)")
    value = _lookup(path)
    if not is_value_type(value):
        what = "a class" if isinstance(value, type) else f"a {type(value).__name__}"
        raise InvalidPayload(
            f"the stored type {path!r} is {what}, not a value type a recording can hold "
            f"(a pydantic model, a dataclass, an Enum, a NamedTuple, a TypedDict or a built-in "
            f"value type)")
    return value


def _lookup(path: str) -> Any:
    value = imported_class(path)
    if value is None:
        module_name, _, qualname = path.partition(":")
        if module_name not in sys.modules:
            raise LookupError(f"module {module_name!r} is not imported")
        raise LookupError(f"module {module_name!r} defines no {qualname!r}")
    return value
