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
        self.size = 0
        """The bytes of all values so far."""
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
            self.size += len(text)
            return
        raw = data.encode() if isinstance(data, str) else data
        assert self._blob is not None
        self._blob.write(raw)
        self._lengths.append(len(raw))
        self.size += len(raw)

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
        if self._texts is not None:
            head = _CANONICAL.encode(dict(sorted(header.items())))
            # `values` sorts last of the keys: the canonical text of the whole object, without
            # parsing the values again.
            return "json", f'{head[:-1]},"values":[{",".join(self._texts)}]}}'
        assert self._blob is not None
        header["lengths"] = self._lengths
        raw = _CANONICAL.encode(dict(sorted(header.items()))).encode()
        blob = self._blob
        blob.write(raw)
        blob.write(len(raw).to_bytes(_TRAILER, "big"))
        return "binary", blob.getvalue()


def json_text(value: str) -> str:
    """A string as the JSON form stores it (what the ``json`` serializer dumps, canonical)."""
    return _CANONICAL.encode(value)


class RecordedStream(NamedTuple):
    """A recorded stream, decoded: ``items`` (a sequence whose binary items are cut from the
    payload only when read), the generator's return value, and the recorded exception."""

    items: Sequence[Any]
    returned: Any = None
    raised: BaseException | None = None


def stream_header(data: str | bytes, decoded: Any = None) -> tuple[dict[str, Any], Any]:
    """The header of a stream payload and its values: the JSON form's ``values`` list (from
    ``decoded``, the entry's own parse, when given) or the binary form's bytes."""
    if isinstance(data, str):
        document = decoded if decoded is not None else _json(data)
        if not isinstance(document, dict) or not isinstance(document.get("values"), list):
            raise InvalidPayload("the stream payload is not an object with a `values` list")
        return document, document["values"]
    if len(data) < _TRAILER:
        raise InvalidPayload("the stream payload is too short to hold its header")
    size = int.from_bytes(data[-_TRAILER:], "big")
    if size > min(len(data) - _TRAILER, _MAX_HEADER):
        raise InvalidPayload("the stream payload's header length is out of range")
    end = len(data) - _TRAILER
    header = _json(data[end - size:end])
    if not isinstance(header, dict) or not isinstance(header.get("lengths"), list):
        raise InvalidPayload("the stream payload's header has no `lengths` list")
    return header, memoryview(data)[:end - size]


def stream_layout(header: dict[str, Any]) -> tuple[list[Kind], list[int], StreamEnd]:
    """The kinds, each value's kind and how the stream ended, checked for consistency (a
    hand-edited header is refused here, before any value is decoded)."""
    raw_kinds = header.get("kinds")
    count = header.get("count")
    if not isinstance(raw_kinds, list) or type(count) is not int or count < 0:
        raise InvalidPayload("the stream payload has no `kinds` list or `count`")
    kinds = [_kind(raw) for raw in raw_kinds]
    end = StreamEnd(count, header.get("returned") is True, header.get("raised") is True)
    total = count + end.returned + end.raised
    values = header.get("values", header.get("lengths"))
    value_kinds = header.get("value_kinds", [0] * total)
    if not isinstance(values, list) or len(values) != total or not isinstance(
            value_kinds, list) or len(value_kinds) != total or any(
            type(index) is not int or not 0 <= index < len(kinds) for index in value_kinds):
        raise InvalidPayload(f"the stream payload's values do not match its count ({count}) "
                             f"and kinds")
    return kinds, value_kinds, end


def read_stream(data: str | bytes, resolve: Callable[[Kind], Serializer],
                decoded: Any = None) -> RecordedStream:
    """Decode a stream payload; ``resolve`` gives the serializer of each kind (it raises for
    one that must not be read). Damage raises :class:`InvalidPayload`."""
    header, values = stream_header(data, decoded)
    kinds, value_kinds, end = stream_layout(header)
    serializers = [resolve(kind) for kind in kinds]
    items: Sequence[Any]
    if isinstance(values, list):
        decoded_values = [_load(serializers[k], kinds[k], value)
                          for value, k in zip(values, value_kinds, strict=True)]
        items = decoded_values[:end.items]
        tail = decoded_values[end.items:]
    else:
        lengths: list[Any] = header["lengths"]
        if any(type(n) is not int or n < 0 for n in lengths) or sum(lengths) != len(values):
            raise InvalidPayload("the stream payload's lengths do not add up to its data")
        starts = [0]
        for n in lengths:
            starts.append(starts[-1] + n)
        lazy = _Values(values, starts, [serializers[k] for k in value_kinds],
                       [kinds[k] for k in value_kinds])
        items = _Items(lazy, end.items)
        tail = [lazy.get(index) for index in range(end.items, len(lengths))]
        for index in range(end.items):  # everything but raw bytes is decoded (checked) now
            if serializers[value_kinds[index]].id != "bytes":
                lazy.get(index)
    returned = tail[0] if end.returned else None
    raised = tail[-1] if end.raised else None
    if end.raised and not isinstance(raised, BaseException):
        raise InvalidPayload("the stream payload's recorded exception is not an exception")
    return RecordedStream(items, returned, raised)


def kind_types(data: str | bytes) -> list[str | None]:
    """The type names a stream payload's kinds store (``[]`` when it cannot be read: loading
    it then says why)."""
    try:
        return [kind.type for kind in stream_layout(stream_header(data)[0])[0]]
    except InvalidPayload:
        return []


def item_texts(data: str | bytes, limit: int) -> tuple[list[tuple[Kind, Any]], StreamEnd]:
    """The first ``limit`` items as stored (JSON values, texts, or bytes for binary values),
    with their kinds, and how the stream ended — for ``show`` and ``diff``, without any
    serializer."""
    header, values = stream_header(data)
    kinds, value_kinds, end = stream_layout(header)
    shown: list[tuple[Kind, Any]] = []
    if isinstance(values, list):
        shown = [(kinds[k], value) for value, k in zip(values[:limit], value_kinds, strict=False)]
    else:
        start = 0
        for length, k in zip(header["lengths"][:limit], value_kinds, strict=False):
            raw = bytes(values[start:start + length])
            start += length
            kind = kinds[k]
            shown.append((kind, raw if kind.encoding == "binary" else _json(raw)
                          if kind.encoding == "json" else raw.decode("utf-8", "replace")))
    return shown[:min(limit, end.items)], end


class _Values:
    """The binary form's values, decoded on first use."""

    def __init__(self, data: memoryview, starts: list[int], serializers: list[Serializer],
                 kinds: list[Kind]) -> None:
        self.data = data
        self.starts = starts
        self.serializers = serializers
        self.kinds = kinds
        self.decoded: dict[int, Any] = {}

    def get(self, index: int) -> Any:
        if index in self.decoded:
            return self.decoded[index]
        raw = bytes(self.data[self.starts[index]:self.starts[index + 1]])
        serializer, kind = self.serializers[index], self.kinds[index]
        if serializer.id == "bytes":
            return raw  # not kept: a replay holds the payload once, not every item twice
        value = serializer.loads(raw if kind.encoding == "binary" else raw.decode())
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


__all__ = ["STREAM", "STREAM_VERSION", "Kind", "RecordedStream", "StreamEnd", "StreamWriter",
           "item_texts", "json_text", "kind_types", "read_stream", "stream_header", "stream_layout"]
