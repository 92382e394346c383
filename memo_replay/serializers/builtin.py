"""Built-in serializers: JSON, pydantic models, dataclasses, annotated types, bytes, numpy
arrays and opt-in cloudpickle.

The class-bound ones (pydantic, dataclass, typed) are created per type; the entry records the
type's name (:mod:`memo_replay.serializers.typenames`) so replay returns the same type.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from typing import Any, ClassVar

from memo_replay.optional_types import is_plain_ndarray, is_pydantic_model
from memo_replay.project import module_name
from memo_replay.serializers.base import PayloadKind
from memo_replay.serializers.typenames import imported_class


class JsonSerializer:
    """Plain JSON data: dicts with string keys, lists, strings, numbers, booleans, None.

    Only values that come back equal *and of the same types* are accepted: a tuple would replay
    as a list, so it is refused (return a list, a pydantic model or a dataclass instead).
    """

    id: ClassVar[str] = "json"
    version: ClassVar[int] = 1
    payload: ClassVar[PayloadKind] = "json"

    def dumps(self, value: Any) -> str:
        _check_json_native(value, "result")
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    def loads(self, data: bytes | str) -> Any:
        return json.loads(data)


def _check_json_native(value: Any, where: str) -> None:
    tp = type(value)
    if value is None or tp in (str, int, float, bool):
        return
    if tp is list:
        for index, item in enumerate(value):
            _check_json_native(item, f"{where}[{index}]")
        return
    if tp is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"{where} has a non-string key {key!r}")
            _check_json_native(item, f"{where}[{key!r}]")
        return
    raise TypeError(f"{where} is a `{tp.__module__}.{tp.__qualname__}`, not plain JSON data")


def is_json_native(value: Any) -> bool:
    try:
        _check_json_native(value, "result")
    except (TypeError, RecursionError):
        return False
    return True


class BytesSerializer:
    """Raw ``bytes``, stored base64-encoded."""

    id: ClassVar[str] = "bytes"
    version: ClassVar[int] = 1
    payload: ClassVar[PayloadKind] = "binary"

    def dumps(self, value: Any) -> bytes:
        if type(value) is not bytes:
            raise TypeError(f"expected bytes, got {type(value).__qualname__}")
        return value

    def loads(self, data: bytes | str) -> bytes:
        return data if isinstance(data, bytes) else data.encode()


def deep_same(a: Any, b: Any) -> bool:
    """``a == b`` all the way down, with the same type at every level: what a pydantic-based
    round trip must give back. ``==`` alone misses what validation changes silently — an int in
    a ``float`` field coming back a float, an aware datetime coming back with a fixed-offset
    time zone (same instant, other ``tzname()`` and daylight-saving rules)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (dt.datetime, dt.time)):
        return bool(a == b and a.utcoffset() == b.utcoffset()
                    and (a.tzinfo is None) == (b.tzinfo is None)
                    and _same_zone(a.tzinfo, b.tzinfo))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(deep_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(deep_same(a[k], b[k]) for k in a)
    fields = _field_values(a)
    if fields is not None:
        other = _field_values(b)
        return other is not None and deep_same(fields, other)
    return bool(a == b)


def _same_zone(a: Any, b: Any) -> bool:
    # A named zone (ZoneInfo) must come back as itself; fixed offsets only need equal offsets.
    key_a, key_b = getattr(a, "key", None), getattr(b, "key", None)
    return key_a == key_b


def _field_values(value: Any) -> dict[str, Any] | None:
    if is_pydantic_model(value):
        return {name: getattr(value, name) for name in type(value).model_fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return None


class NumpySerializer:
    """A ``numpy.ndarray`` in the ``.npy`` format: dtype, shape and bytes, never a pickle
    (object arrays are refused). numpy is imported only when an array is recorded or replayed.
    """

    id: ClassVar[str] = "numpy"
    version: ClassVar[int] = 1
    payload: ClassVar[PayloadKind] = "binary"

    def dumps(self, value: Any) -> bytes:
        import numpy

        if not is_plain_ndarray(value):
            raise TypeError(f"expected a numpy.ndarray, got {type(value).__qualname__}")
        out = io.BytesIO()
        numpy.save(out, value, allow_pickle=False)
        return out.getvalue()

    def loads(self, data: bytes | str) -> Any:
        import numpy

        raw = data if isinstance(data, bytes) else data.encode()
        return numpy.load(io.BytesIO(raw), allow_pickle=False)

    @staticmethod
    def same(a: Any, b: Any) -> bool:
        """Bit-for-bit: the same dtype, shape and bytes (NaNs included)."""
        return bool(a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes())


class PydanticSerializer:
    """A pydantic v2 model class (generic ones included, e.g. ``Page[Item]``), through
    ``model_dump_json``/``model_validate_json``."""

    id: ClassVar[str] = "pydantic"
    version: ClassVar[int] = 1
    payload: ClassVar[PayloadKind] = "json"

    same = staticmethod(deep_same)

    def __init__(self, model: type[Any]) -> None:
        self.model = model

    def dumps(self, value: Any) -> str:
        if type(value) is not self.model:
            raise TypeError(f"expected {self.model.__qualname__}, got {type(value).__qualname__}")
        return str(value.model_dump_json())

    def loads(self, data: bytes | str) -> Any:
        return self.model.model_validate_json(data)


class DataclassSerializer:
    """A dataclass (nested dataclasses, datetime, Enum, Path, UUID, Decimal fields…), through
    a pydantic ``TypeAdapter`` built from its type annotations."""

    id: ClassVar[str] = "dataclass"
    version: ClassVar[int] = 1
    payload: ClassVar[PayloadKind] = "json"

    same = staticmethod(deep_same)

    def __init__(self, cls: type[Any]) -> None:
        from pydantic import TypeAdapter

        self.cls = cls
        self._adapter: Any = TypeAdapter(cls)

    def dumps(self, value: Any) -> str:
        if type(value) is not self.cls:
            raise TypeError(f"expected {self.cls.__qualname__}, got {type(value).__qualname__}")
        return bytes(self._adapter.dump_json(value)).decode()

    def loads(self, data: bytes | str) -> Any:
        return self._adapter.validate_json(data)


class TypedSerializer:
    """Any type pydantic can validate, taken from the function's return annotation:
    ``list[Item]``, ``dict[str, Item]``, ``tuple[int, str]``, ``Item | None``… through a
    ``TypeAdapter`` (so a tuple comes back as a tuple)."""

    id: ClassVar[str] = "typed"
    version: ClassVar[int] = 1
    payload: ClassVar[PayloadKind] = "json"

    same = staticmethod(deep_same)

    def __init__(self, annotation: Any) -> None:
        from pydantic import TypeAdapter

        self.annotation = annotation
        self._adapter: Any = TypeAdapter(annotation)

    def dumps(self, value: Any) -> str:
        return bytes(self._adapter.dump_json(value, warnings=False)).decode()

    def loads(self, data: bytes | str) -> Any:
        return self._adapter.validate_json(data)


class PickleSerializer:
    """cloudpickle — only for functions that opt in with ``serializer="pickle"``: loading a
    pickle runs code, so a store changed by someone else must be trusted first."""

    id: ClassVar[str] = "pickle"
    version: ClassVar[int] = 1
    payload: ClassVar[PayloadKind] = "binary"

    def dumps(self, value: Any) -> bytes:
        import cloudpickle

        return bytes(cloudpickle.dumps(value, protocol=5))

    def loads(self, data: bytes | str) -> Any:
        import pickle

        return pickle.loads(data if isinstance(data, bytes) else data.encode())


class ExceptionSerializer:
    """An exception a recorded call raised (``record_exceptions=True``): its type, arguments and
    message. Replay raises the same type with the same message."""

    id: ClassVar[str] = "exception"
    version: ClassVar[int] = 1
    payload: ClassVar[PayloadKind] = "json"

    def dumps(self, value: Any) -> str:
        if not isinstance(value, BaseException):
            raise TypeError(f"expected an exception, got {type(value).__qualname__}")
        args = list(value.args) if is_json_native(list(value.args)) else [str(value)]
        kind = type(value)
        return json.dumps({"type": f"{module_name(kind)}:{kind.__qualname__}", "args": args,
                           "message": str(value)}, ensure_ascii=False, separators=(",", ":"))

    def loads(self, data: bytes | str) -> BaseException:
        document = json.loads(data)
        kind = imported_class(document["type"])
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise ValueError(f"the recorded exception type {document['type']!r} is not an "
                             f"exception imported in this process")
        try:
            error = kind(*document["args"])
            if str(error) == document["message"]:
                return error
        except Exception:  # an exception class with a custom __init__
            pass
        error = kind.__new__(kind)
        error.args = (document["message"],)
        return error
