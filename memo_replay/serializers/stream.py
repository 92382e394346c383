"""The payload of a recorded stream: what a generator yielded, in order, and how it ended.

A stream is stored as one payload (serializer id :data:`STREAM`) holding a list of *values* —
the items, then the generator's return value when it returned one, then the exception it
raised when that was recorded. Each value is serialized on its own by the serializer the
registry chooses for it (a pydantic chunk replays as the same class); the distinct
``(serializer, version, type, encoding)`` combinations are listed once, in ``kinds``, and
``value_kinds`` says which kind each value has when there is more than one.

Two forms, chosen when the stream ends:

- **JSON** (no value is binary): a JSON object embedded in the entry as it is, so a reviewer
  reads the tokens or chunks in the pull request::

      {"count": 3, "kinds": [{"encoding": "json", "serializer": "json", ...}],
       "values": ["Hel", "lo", "!"]}

- **binary** (some value is bytes or another binary payload): the values' bytes one after the
  other, then the JSON header (``lengths`` instead of ``values``), then the header's length as
  8 big-endian bytes. Above the payload-file threshold it is written beside the entry like any
  large binary payload, so 50 MB of audio chunks never becomes base64 in git.

:class:`StreamWriter` builds either form as the values arrive (binary values go straight into
one growing buffer, never copied again); :func:`read_stream` checks a payload's structure and
gives back a :class:`RecordedStream` whose binary items are cut from the payload only as they
are replayed. Item timing is not part of the payload: it changes with every recording of the
same answer, so it is a volatile field of the entry (``offsets``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, overload

from memo_replay.errors import InvalidPayload
from memo_replay.serializers.base import PayloadKind, Serializer

STREAM = "stream"
"""The serializer id of a stream's payload."""
STREAM_VERSION = 1
"""The version of the stream payload's layout."""
_TRAILER = 8
_MAX_HEADER = 1 << 31
_CANONICAL = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_ENCODINGS = ("json", "text", "binary")
_UNREAD: Any = object()


class Kind(NamedTuple):
    """How the values of one kind were serialized."""

    serializer: str
    serializer_version: int
    type: str | None
    encoding: PayloadKind

    def document(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "serializer": self.serializer,
                "serializer_version": self.serializer_version, "type": self.type}


class StreamEnd(NamedTuple):
    """How a stream ended, as the payload says: ``items`` values are items; ``returned`` /
    ``raised`` are True when the values after them are the return value / the exception."""

    items: int
    returned: bool
    raised: bool


class StreamWriter:
    """Collects a stream's values, serialized, as they arrive; :meth:`finish` gives the payload.

    Until a binary value arrives the values are kept as canonical JSON texts; from then on
    every value's bytes go into one buffer (``BytesIO.getvalue`` hands that buffer over without
    a copy), so a recording holds about one copy of the stream's data."""

    def __init__(self) -> None:
        self.count = 0
        """How many items were added."""
        self._kinds: dict[Kind, int] = {}
        self._value_kinds: list[int] = []
        self._texts: list[str] | None = []
        self._blob: io.BytesIO | None = None
        self._lengths: list[int] = []
        self._returned = False
        self._raised = False

    def add(self, kind: Kind, data: str | bytes) -> None:
        """Add the next item (``data`` as its serializer dumped it, canonical for JSON)."""
        self._add(kind, data)
        self.count += 1

    def end(self, kind: Kind, data: str | bytes, *, raised: bool) -> None:
        """Add the return value (``raised``: the recorded exception) after the items."""
        self._add(kind, data)
        if raised:
            self._raised = True
        else:
            self._returned = True

    def _add(self, kind: Kind, data: str | bytes) -> None:
        if self._returned or self._raised:
            raise ValueError("the stream has ended")
        index = self._kinds.setdefault(kind, len(self._kinds))
        self._value_kinds.append(index)
        if kind.encoding == "binary" and self._texts is not None:
            self._to_binary()
        texts = self._texts
        if texts is not None:
            text = data.decode() if isinstance(data, bytes) else data
            texts.append(text if kind.encoding == "json" else _CANONICAL.encode(text))
            return
        raw = data.encode() if isinstance(data, str) else data
        assert self._blob is not None
        self._blob.write(raw)
        self._lengths.append(len(raw))

    def _to_binary(self) -> None:
        """From the first binary value on, every value's bytes go into the buffer."""
        assert self._texts is not None
        self._blob = io.BytesIO()
        kinds = list(self._kinds)
        for text, index in zip(self._texts, self._value_kinds, strict=False):
            # A text value is stored as its text, not as its JSON string literal.
            raw = (json.loads(text) if kinds[index].encoding == "text" else text).encode()
            self._blob.write(raw)
            self._lengths.append(len(raw))
        self._texts = None

    def finish(self) -> tuple[PayloadKind, str | bytes]:
        """The payload's encoding and data (JSON text, or the binary form's bytes)."""
        header: dict[str, Any] = {"count": self.count,
                                  "kinds": [kind.document() for kind in self._kinds]}
        if self._raised:
            header["raised"] = True
        if self._returned:
            header["returned"] = True
        if len(self._kinds) > 1:
            header["value_kinds"] = self._value_kinds
        texts, blob = self._texts, self._blob
        self._texts, self._blob = [], None  # handed over: the writer keeps no second copy
        if texts is not None:
            head = _CANONICAL.encode(dict(sorted(header.items())))
            # `values` sorts last of the keys: the canonical text of the whole object, without
            # parsing the values again.
            return "json", f'{head[:-1]},"values":[{",".join(texts)}]}}'
        assert blob is not None
        header["lengths"] = self._lengths
        raw = _CANONICAL.encode(dict(sorted(header.items()))).encode()
        blob.write(raw)
        blob.write(len(raw).to_bytes(_TRAILER, "big"))
        return "binary", blob.getvalue()


def json_text(value: str) -> str:
    """A string as the JSON form stores it (what the ``json`` serializer dumps, canonical)."""
    return _CANONICAL.encode(value)


class RecordedStream(NamedTuple):
    """A recorded stream, decoded: what [`Entry.load()`][memo_replay.Entry.load] gives for the
    recording of a generator function's call (a replay yields its `items` instead).

    ```pycon
    >>> from memo_replay import RecordedStream, recorded
    >>> @recorded
    ... def count(n: int):
    ...     yield from range(n)
    ...     return "done"
    >>> list(count(3))
    [0, 1, 2]
    >>> [entry] = count.memo.entries()
    >>> stream = entry.load()
    >>> isinstance(stream, RecordedStream), list(stream.items), stream.returned
    (True, [0, 1, 2], 'done')
    ```
    """

    items: Sequence[Any]
    """What the generator yielded, in order, each rebuilt by its serializer (binary items are
    cut from the payload only when read)."""
    returned: Any = None
    """The generator's return value (its `StopIteration.value`; None when it returned none)."""
    raised: BaseException | None = None
    """The exception the generator raised, when `record_exceptions=True` recorded it (None
    otherwise)."""


class StoredStream(NamedTuple):
    """A stream payload's structure, checked, and its values as stored (no serializer runs):
    a JSON value (``json`` kinds), a ``str`` (``text``) or the bytes (``binary``).

    Every reader starts here — replay, ``Entry.load``, ``show``, ``diff``, ``verify`` — so a
    hand-edited header (counts, kinds, lengths, a binary value in the JSON form) is refused the
    same way everywhere, before any value is decoded."""

    kinds: list[Kind]
    value_kinds: list[int]
    """The index in :attr:`kinds` of each value (items, then return value, then exception)."""
    end: StreamEnd
    values: list[Any] | memoryview
    """The JSON form's ``values`` list, or the binary form's values' bytes, one after the
    other."""
    starts: list[int] | None
    """The binary form's offset of each value in :attr:`values` (and the end), else None."""

    @property
    def binary(self) -> bool:
        return self.starts is not None

    def kind(self, index: int) -> Kind:
        return self.kinds[self.value_kinds[index]]

    def value(self, index: int) -> Any:
        """The value at ``index`` as stored (a ``memoryview`` for a ``binary`` kind)."""
        if self.starts is None:
            assert isinstance(self.values, list)
            return self.values[index]
        raw = self.values[self.starts[index]:self.starts[index + 1]]
        assert isinstance(raw, memoryview)
        encoding = self.kind(index).encoding
        if encoding == "binary":
            return raw
        try:
            text = str(raw, "utf-8")
            return text if encoding == "text" else _json(text)
        except ValueError as exc:
            raise InvalidPayload(f"the stream payload's value {index} is not valid "
                                 f"{encoding} ({exc})") from None

    def stored(self, start: int, stop: int) -> Iterator[tuple[Kind, Any]]:
        """The values from ``start`` to ``stop`` with their kinds, read one at a time."""
        for index in range(start, min(stop, len(self.value_kinds))):
            yield self.kind(index), self.value(index)

    @property
    def returned(self) -> tuple[Kind, Any] | None:
        """The return value with its kind, as stored (None: the stream did not return one)."""
        if not self.end.returned:
            return None
        return self.kind(self.end.items), self.value(self.end.items)

    @property
    def raised(self) -> tuple[Kind, Any] | None:
        """The recorded exception with its kind, as stored (None: none was recorded)."""
        if not self.end.raised:
            return None
        index = self.end.items + self.end.returned
        return self.kind(index), self.value(index)

    def check(self) -> None:
        """Every value readable as stored (``verify``): each JSON or text value of the binary
        form decodes (the JSON form's were checked by :func:`stored_stream`)."""
        if self.binary:
            for index in range(len(self.value_kinds)):
                if self.kind(index).encoding != "binary":
                    self.value(index)


def stored_stream(data: str | bytes, decoded: Any = None) -> StoredStream:
    """The structure of a stream payload, checked, without decoding any value (``decoded``:
    the JSON form as the entry's own parse already built it); damage raises
    :class:`InvalidPayload`."""
    if isinstance(data, str):
        header = decoded if decoded is not None else _json(data)
        if not isinstance(header, dict) or not isinstance(header.get("values"), list):
            raise InvalidPayload("the stream payload is not an object with a `values` list")
        values: list[Any] | memoryview = header["values"]
    else:
        if len(data) < _TRAILER:
            raise InvalidPayload("the stream payload is too short to hold its header")
        size = int.from_bytes(data[-_TRAILER:], "big")
        if size > min(len(data) - _TRAILER, _MAX_HEADER):
            raise InvalidPayload("the stream payload's header length is out of range")
        at = len(data) - _TRAILER - size
        header = _json(data[at:at + size])
        if not isinstance(header, dict) or not isinstance(header.get("lengths"), list):
            raise InvalidPayload("the stream payload's header has no `lengths` list")
        values = memoryview(data)[:at]
    raw_kinds = header.get("kinds")
    count = header.get("count")
    if not isinstance(raw_kinds, list) or type(count) is not int or count < 0:
        raise InvalidPayload("the stream payload has no `kinds` list or `count`")
    kinds = [_kind(raw) for raw in raw_kinds]
    end = StreamEnd(count, header.get("returned") is True, header.get("raised") is True)
    total = count + end.returned + end.raised
    listed = header["values"] if isinstance(values, list) else header["lengths"]
    value_kinds = header.get("value_kinds", [0] * total)
    if len(listed) != total or not isinstance(value_kinds, list) \
            or len(value_kinds) != total or any(
            type(index) is not int or not 0 <= index < len(kinds) for index in value_kinds):
        raise InvalidPayload(f"the stream payload's values do not match its count ({count}) "
                             f"and kinds")
    if isinstance(values, list):
        for index, k in enumerate(value_kinds):
            encoding = kinds[k].encoding
            if encoding == "binary" or (encoding == "text" and not isinstance(values[index],
                                                                              str)):
                raise InvalidPayload(f"the JSON form of the stream payload holds a "
                                     f"{'binary' if encoding == 'binary' else 'non-text'} "
                                     f"value at {index}")
        return StoredStream(kinds, value_kinds, end, values, None)
    if any(type(n) is not int or n < 0 for n in listed) or sum(listed) != len(values):
        raise InvalidPayload("the stream payload's lengths do not add up to its data")
    starts = [0]
    for n in listed:
        starts.append(starts[-1] + n)
    return StoredStream(kinds, value_kinds, end, values, starts)


def read_stream(data: str | bytes, resolve: Callable[[Kind], Serializer],
                decoded: Any = None) -> RecordedStream:
    """Decode a stream payload; ``resolve`` gives the serializer of each kind (it raises for
    one that must not be read). Damage raises :class:`InvalidPayload`."""
    stream = stored_stream(data, decoded)
    serializers = [resolve(kind) for kind in stream.kinds]
    end, value_kinds = stream.end, stream.value_kinds
    items: Sequence[Any]
    if isinstance(stream.values, list):  # the JSON form: every value decoded (checked) now
        if all(s.id == "json" and k.encoding == "json" for s, k in zip(serializers, stream.kinds,
                                                                         strict=True)):
            values = stream.values  # plain JSON data: the parsed values are the items
        else:
            kinds = stream.kinds
            values = [_load(serializers[k], kinds[k], value)
                      for value, k in zip(stream.values, value_kinds, strict=True)]
        items, tail = values[:end.items], values[end.items:]
    else:
        lazy = _Values(stream, [serializers[k] for k in value_kinds])
        for index in range(len(value_kinds)):  # everything but raw bytes is decoded now
            if lazy.serializers[index].id != "bytes":
                lazy.get(index)
        items = _Items(lazy, end.items)
        tail = [lazy.get(index) for index in range(end.items, len(value_kinds))]
    returned = tail[0] if end.returned else None
    raised = tail[-1] if end.raised else None
    if end.raised and not isinstance(raised, BaseException):
        raise InvalidPayload("the stream payload's recorded exception is not an exception")
    return RecordedStream(items, returned, raised)


def kind_types(data: str | bytes) -> list[str | None]:
    """The type names a stream payload's kinds store (``[]`` when it cannot be read: loading
    it then says why)."""
    try:
        return [kind.type for kind in stored_stream(data).kinds]
    except InvalidPayload:
        return []


class _Values:
    """The binary form's values, decoded by their serializers on first use (raw bytes items
    are cut from the payload each time they are read, never kept: a replay holds the payload
    once, not every item twice)."""

    def __init__(self, stream: StoredStream, serializers: list[Serializer]) -> None:
        self.stream = stream
        self.serializers = serializers
        self.decoded: list[Any] = [_UNREAD] * len(stream.value_kinds)

    def get(self, index: int) -> Any:
        value = self.decoded[index]
        if value is not _UNREAD:
            return value
        serializer, stream = self.serializers[index], self.stream
        kind, value = stream.kind(index), stream.value(index)
        if kind.encoding == "binary":
            value = bytes(value)
            if serializer.id == "bytes":
                return value
            value = serializer.loads(value)
        else:  # a JSON or text value, parsed by value(): loaded like the JSON form's
            value = _load(serializer, kind, value)
        self.decoded[index] = value
        return value


class _Items(Sequence[Any]):
    """The items of a binary-form stream (bytes items are cut from the payload when read)."""

    def __init__(self, values: _Values, count: int) -> None:
        self._values = values
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("stream item index out of range")
        return self._values.get(index)

    def __iter__(self) -> Iterator[Any]:
        get = self._values.get
        for index in range(self._count):
            yield get(index)


def _load(serializer: Serializer, kind: Kind, value: Any) -> Any:
    """One value of the JSON form: a JSON value (a text value is its string)."""
    if kind.encoding == "json":
        if serializer.id == "json":
            return value  # already the parsed JSON value
        return serializer.loads(_CANONICAL.encode(value))
    if kind.encoding == "text" and isinstance(value, str):
        return serializer.loads(value)
    raise InvalidPayload("the JSON form of a stream payload holds a binary value")


def _kind(raw: Any) -> Kind:
    if not isinstance(raw, dict) or not isinstance(raw.get("serializer"), str) \
            or type(raw.get("serializer_version")) is not int \
            or raw.get("encoding") not in _ENCODINGS \
            or not isinstance(raw.get("type"), (str, type(None))):
        raise InvalidPayload("the stream payload has a malformed entry in `kinds`")
    return Kind(raw["serializer"], raw["serializer_version"], raw["type"], raw["encoding"])


def _json(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise InvalidPayload("the stream payload is nested too deeply to be read") from None
    except ValueError as exc:
        raise InvalidPayload(f"the stream payload is not valid JSON ({exc})") from None


__all__ = ["STREAM", "STREAM_VERSION", "Kind", "RecordedStream", "StoredStream", "StreamEnd",
           "StreamWriter", "json_text", "kind_types", "read_stream", "stored_stream"]
