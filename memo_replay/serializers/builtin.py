"""Built-in serializers: JSON, pydantic models, dataclasses, annotated types, bytes, numpy
arrays and opt-in cloudpickle.

The class-bound ones (pydantic, dataclass, typed) are created per type; the entry records the
type's name (:mod:`memo_replay.serializers.typenames`) so replay returns the same type.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from typing import Any, ClassVar

from memo_replay.errors import InvalidPayload
from memo_replay.optional_types import (
    dataclass_fields,
    is_plain_ndarray,
    is_pydantic_model,
    is_temporal,
)
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
        return _json_document(data)


def _json_document(data: bytes | str) -> Any:
    """``json.loads(data)``; nesting too deep for the interpreter is an :class:`InvalidPayload`
    (the entry file itself may hold the payload as a string, which nothing parsed yet)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise InvalidPayload("the JSON payload is nested too deeply to be read") from None


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
    if is_temporal(a, "datetime", "time"):
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
    return dataclass_fields(value)


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
        """The array, read only once its header is checked (:func:`npy_header`): nothing is
        allocated beyond the data present, nothing but a plain ``.npy`` array is read."""
        from numpy.lib import format as npy

        raw = data if isinstance(data, bytes) else data.encode()
        npy_header(raw)
        try:
            return npy.read_array(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, TypeError, OverflowError, EOFError, OSError) as exc:
            raise InvalidPayload(f"the .npy payload does not load ({exc})") from None

    @staticmethod
    def same(a: Any, b: Any) -> bool:
        """Bit-for-bit: the same dtype, shape and bytes (NaNs included)."""
        return bool(a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes())


NPY_MAGIC = b"\x93NUMPY"
MAX_NPY_HEADER = 10_000
"""The longest ``.npy`` header read (numpy's own default bound)."""
MAX_NPY_DIMENSIONS = 64
"""numpy's limit on an array's number of dimensions."""


def npy_header(raw: bytes) -> tuple[int, Any, tuple[int, ...], bool]:
    """Check that ``raw`` is one plain ``.npy`` array — magic, version 1 to 3, a header that
    is a literal dict of ``descr``, ``fortran_order`` and ``shape``, a dtype holding no Python
    objects, and exactly as many data bytes as the shape and dtype declare — and return the
    data offset, dtype, shape and order. Anything else (an ``.npz`` archive, a pickle, a header
    declaring more data than there is) is an :class:`InvalidPayload`."""
    import ast

    from numpy.lib import format as npy

    if raw[:4] == b"PK\x03\x04":
        raise InvalidPayload("the numpy payload is an .npz archive, not one .npy array")
    if raw[:len(NPY_MAGIC)] != NPY_MAGIC or len(raw) < len(NPY_MAGIC) + 2:
        raise InvalidPayload("the numpy payload is not a .npy array (no .npy magic; a pickle or "
                             "other data)")
    version = (raw[6], raw[7])
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise InvalidPayload(f"the .npy payload has unknown format version {version}")
    size_bytes = 2 if version == (1, 0) else 4
    start = 8 + size_bytes
    length = int.from_bytes(raw[8:start], "little")
    if len(raw) < start or length > MAX_NPY_HEADER or start + length > len(raw):
        raise InvalidPayload(f"the .npy header is truncated or longer than {MAX_NPY_HEADER} "
                             f"bytes")
    try:
        text = raw[start:start + length].decode("utf-8" if version == (3, 0) else "latin1")
        header = ast.literal_eval(text)
    except (UnicodeDecodeError, ValueError, TypeError, SyntaxError, MemoryError,
            RecursionError):
        raise InvalidPayload("the .npy header is not a Python literal") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise InvalidPayload("the .npy header is not a dict of descr, fortran_order and shape")
    shape, fortran = header["shape"], header["fortran_order"]
    if type(fortran) is not bool:
        raise InvalidPayload(f"the .npy header's fortran_order is {fortran!r}, not a bool")
    if type(shape) is not tuple or len(shape) > MAX_NPY_DIMENSIONS or not all(
            type(n) is int and n >= 0 for n in shape):
        raise InvalidPayload(f"the .npy header's shape {str(shape)[:80]} is not a tuple of "
                             f"at most {MAX_NPY_DIMENSIONS} non-negative ints")
    try:
        dtype = npy.descr_to_dtype(header["descr"])
    except Exception:  # numpy's many ways of refusing a dtype description
        raise InvalidPayload(f"the .npy header's dtype {str(header['descr'])[:80]} is not a "
                             f"numpy dtype") from None
    if dtype.hasobject:
        raise InvalidPayload(f"the .npy payload has dtype {dtype}, which holds Python objects "
                             f"(read only by unpickling)")
    declared = math.prod(shape) * dtype.itemsize
    present = len(raw) - start - length
    if declared != present:
        raise InvalidPayload(f"the .npy header declares shape {shape} of {dtype} "
                             f"({declared} bytes), but the payload holds {present} bytes of "
                             f"data")
    return start + length, dtype, shape, fortran


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
        return sets_sorted(str(value.model_dump_json()), lambda: value.model_dump())

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
        return sets_sorted(bytes(self._adapter.dump_json(value)).decode(),
                           lambda: self._adapter.dump_python(value))

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
        return sets_sorted(bytes(self._adapter.dump_json(value, warnings=False)).decode(),
                           lambda: self._adapter.dump_python(value, warnings=False))

    def loads(self, data: bytes | str) -> Any:
        return self._adapter.validate_json(data)


def sets_sorted(text: str, python: Callable[[], Any]) -> str:
    """``text`` (pydantic's JSON dump of a value) with every JSON list that was a ``set`` or
    ``frozenset`` in the value sorted, canonically (by each element's sorted-key JSON text).

    pydantic writes a set in iteration order, and the order of a set of strings depends on
    ``PYTHONHASHSEED``: the same result would record different bytes in each process (a
    re-recording would show as a change in git). The JSON text no longer says which lists were
    sets, so ``python()`` — the same value dumped in pydantic's ``python`` mode, where sets stay
    sets — is walked beside it: both dumps come from the same objects, so they have the same
    shape and list a set's elements in the same order. Where the shapes part (a custom
    serializer for JSON only) the JSON is left as it is. Replay is unchanged: validating a list
    into a ``set[...]`` field gives a set, whatever its order."""
    dumped = python()
    if not _has_set(dumped):
        return text  # the common case: nothing to sort, the text as pydantic wrote it
    document = _json_document(text)
    return json.dumps(_sorted_sets(dumped, document), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))


def _has_set(value: Any) -> bool:
    if isinstance(value, (set, frozenset)):
        return True
    if isinstance(value, dict):
        return any(map(_has_set, value.values()))
    if isinstance(value, (list, tuple)):
        return any(map(_has_set, value))
    return False


def _sorted_sets(python: Any, document: Any) -> Any:
    """``document`` with the lists that are sets in ``python`` sorted (see :func:`sets_sorted`)."""
    if isinstance(python, dict) and isinstance(document, dict) and len(python) == len(document):
        # Paired by position: keys may differ in type (an int key is a string in JSON).
        return {key: _sorted_sets(value, item) for value, (key, item)
                in zip(python.values(), document.items(), strict=True)}
    if isinstance(python, (list, tuple, set, frozenset)) and isinstance(document, list) \
            and len(python) == len(document):
        items = [_sorted_sets(value, item) for value, item in zip(python, document,
                                                                   strict=True)]
        if isinstance(python, (set, frozenset)):
            items.sort(key=_canonical_text)
        return items
    return document


def _canonical_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


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
        name = f"{module_name(kind)}:{kind.__qualname__}"
        if imported_class(name) is not kind:
            raise TypeError(f"the exception type {name!r} cannot be found again by its name "
                            f"(define it at module level)")
        return json.dumps({"type": name, "args": args, "message": str(value)},
                          ensure_ascii=False, separators=(",", ":"))

    def loads(self, data: bytes | str) -> BaseException:
        document = _json_document(data)
        if not isinstance(document, dict) or not isinstance(document.get("type"), str) \
                or not isinstance(document.get("args"), list) \
                or not isinstance(document.get("message"), str):
            raise InvalidPayload("the exception payload is not an object with a `type` string, "
                                 "an `args` list and a `message` string")
        kind = imported_class(document["type"])
        if not (isinstance(kind, type) and issubclass(kind, Exception)):
            # Only Exception subclasses are ever recorded: never SystemExit, KeyboardInterrupt
            # or GeneratorExit, which would end a CI run (with status 0) or a loop.
            raise InvalidPayload(f"the recorded exception type {document['type'][:120]!r} is "
                                 f"not an Exception class imported in this process")
        try:
            error = kind(*document["args"])
            if str(error) == document["message"]:
                return error
        except Exception:  # an exception class with a custom __init__
            pass
        error = kind.__new__(kind)
        error.args = (document["message"],)
        return error
