"""The entry file format: one deterministic JSON document per recording — written here, and
read back and validated here (the one way in and out of an entry file).

An entry carries its format version, the function id and key, the key's components (see
:mod:`memo_replay.keys.components`), a bounded argument preview, the serialized result with its
serializer id, version and checksum, ``recorded_at``, the original call's duration and the
Python/package versions. Keys are written sorted, with a fixed indent and a trailing newline, so
the file diffs and merges well in git. The payload keeps the order the serializer gave it.

A binary payload larger than :data:`PAYLOAD_FILE_THRESHOLD` is not inflated into base64 inside
the JSON: it is stored in a payload file beside the entry (see :mod:`memo_replay.store.layout`)
and the entry names it in ``result.file``. Such entries are written as format 2, every other
entry as format 1: ``format`` is the oldest reader version that understands the entry, so entries
that do not need a payload file stay readable by older memo_replay versions and unchanged across
the upgrade.

Bump :data:`FORMAT_VERSION` when the document's shape changes; a reader refuses entries from a
newer format rather than misreading them.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from xxhash import xxh3_128_hexdigest

if TYPE_CHECKING:
    import datetime as dt

from memo_replay import __version__
from memo_replay.errors import CorruptEntry, MemoReplayError, UnsupportedFormat
from memo_replay.keys.components import Components
from memo_replay.keys.observed import Observed
from memo_replay.serializers import PayloadKind, Serializer, SerializerOption, registry
from memo_replay.store.layout import PAYLOAD_FILE_SUFFIX, entry_stem, payload_file_name

FORMAT_VERSION = 4
"""The newest entry format this version reads (and writes, for streams)."""
INLINE_FORMAT = 1
"""The format of entries whose payload is embedded in the JSON."""
PAYLOAD_FILE_FORMAT = 2
"""The format of entries whose payload is in a payload file."""
OBSERVED_FORMAT = 3
"""The format of entries with observed dependencies (an older reader must refuse them, not
replay them without checking)."""
STREAM_FORMAT = 4
"""The format of entries recording a stream (what a generator yielded: see
:mod:`memo_replay.serializers.stream`), with their per-item ``offsets_ms``."""
PAYLOAD_FILE_THRESHOLD = 64 * 1024
"""Binary payloads above this many bytes are stored in a payload file, not base64 inside."""
MAX_ENTRY_BYTES = 256 * 1024 * 1024
"""Entry files above this size are refused before they are read (large results belong in a
payload file, which has no such bound)."""
VOLATILE_FIELDS = ("recorded_at", "duration_s", "offsets_ms", "versions")
"""Fields that may differ between two recordings of the same result."""
__all__ = [
    "FORMAT_VERSION",
    "INLINE_FORMAT",
    "MAX_ENTRY_BYTES",
    "PAYLOAD_FILE_SUFFIX",
    "PAYLOAD_FILE_THRESHOLD",
    "STREAM_FORMAT",
    "VOLATILE_FIELDS",
    "Entry",
    "Envelope",
    "Hit",
    "Listing",
    "MissingPayload",
    "Payload",
    "Recording",
    "Summary",
    "canonical_data",
    "checksum",
    "duplicate_fields",
    "duration",
    "parse_entry",
    "parse_timestamp",
    "read_document",
    "read_envelope",
    "read_hit",
    "read_listing",
    "read_summary",
    "render",
    "same_recording",
    "timestamp",
]


class Payload(NamedTuple):
    """A serialized result in canonical form: what the index holds and the checksum covers.

    ``data`` is ``str`` for ``json``/``text`` payloads and ``bytes`` for ``binary`` ones.
    """

    serializer: str
    serializer_version: int
    type: str | None
    kind: PayloadKind
    data: str | bytes
    checksum: str

    @classmethod
    def create(cls, serializer: Serializer, type_path: str | None, kind: PayloadKind,
               data: str | bytes, *, canonical: bool = False) -> Payload:
        """The payload of ``data`` as ``serializer`` dumped it (``canonical``: already in the
        form :func:`canonical_data` gives)."""
        if not canonical:
            data = canonical_data(kind, data)
        return cls(serializer.id, serializer.version, type_path, kind, data, checksum(data))

    @property
    def in_file(self) -> bytes | None:
        """The payload's bytes when it is stored in a payload file beside the entry, else None."""
        if self.kind == "binary" and isinstance(self.data, bytes) \
                and len(self.data) > PAYLOAD_FILE_THRESHOLD:
            return self.data
        return None

    def embedded(self) -> Any:
        """The payload as it appears inside the entry file (None when in a payload file)."""
        if self.in_file is not None:
            return None
        if self.kind == "json":
            return json.loads(self.data)
        if self.kind == "binary":
            assert isinstance(self.data, bytes)
            import base64  # binary payloads only

            return base64.b64encode(self.data).decode()
        return self.data

    def as_text(self) -> str:
        """The payload as text, for people and for the secret scan (binary bytes that are not
        ASCII become U+FFFD, so they never join a neighbouring token)."""
        if isinstance(self.data, bytes):
            return self.data.decode("ascii", errors="replace")
        return self.data

    def load(self, option: SerializerOption, *, function: str) -> Any:
        from memo_replay.serializers.stream import STREAM, read_stream

        if self.serializer == STREAM:  # a RecordedStream: its items, return value, exception
            return read_stream(self.data, lambda kind: registry.resolve(
                kind.serializer, kind.type, option, function=function))
        serializer = registry.resolve(self.serializer, self.type, option, function=function)
        return serializer.loads(self.data)


class Hit(NamedTuple):
    """What a lookup returns: the payload, the original call's duration and when it was made."""

    payload: Payload
    duration_s: float
    recorded_at: str | None
    """As the entry writes it (``2026-11-21T12:00:00Z``; None when it does not say): unchecked
    until a ``ttl`` needs it (:func:`epoch_seconds`)."""
    observed: Observed | None = None
    """The code that ran and the files read during the recording (None: nothing observed)."""
    decoded: tuple[Any] | None = None
    """``(value,)``: a JSON payload as the entry file's parse already built it — what the
    ``json`` serializer's ``loads`` would return — on the hit a lookup has just read from its
    file only. Cached hits never carry it: it is handed out once, never shared between two
    replays."""
    offsets_ms: str | None = None
    """A stream's per-item offsets as the entry writes them (None: not a stream, or an entry
    that does not say); parsed only to replay with ``replay_timing="recorded"``."""


class Recording(NamedTuple):
    """A call just made, as the decorator hands it to the store (which writes the entry)."""

    function: str
    key: str
    components: Components
    preview: Mapping[str, Any]
    """The redacted, bounded preview of the arguments."""
    payload: Payload
    duration_s: float
    observed: Observed | None = None
    offsets: Sequence[float] | None = None
    """A stream's items' offsets in seconds of the generator's own time (None: not a
    stream)."""

    def document(self, recorded_at: dt.datetime | None = None) -> dict[str, Any]:
        """The entry document (``recorded_at`` defaults to now, to the second)."""
        import datetime as dt
        import platform

        when = (recorded_at or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
        payload = self.payload
        result = {
            "checksum": payload.checksum,
            "encoding": payload.kind,
            "payload": payload.embedded(),
            "serializer": payload.serializer,
            "serializer_version": payload.serializer_version,
            "size": len(payload.data),
            "type": payload.type,
        }
        if payload.in_file is not None:
            result["file"] = payload_file_name(self.key, payload.checksum)
        observed = self.observed if self.observed and (self.observed.code
                                                       or self.observed.files) else None
        document = {
            "arguments": dict(sorted(self.preview.items())),
            "components": self.components.document(),
            "duration_s": round(self.duration_s, 6),
            "format": STREAM_FORMAT if self.offsets is not None else OBSERVED_FORMAT
            if observed is not None else INLINE_FORMAT if payload.in_file is None
            else PAYLOAD_FILE_FORMAT,
            "function": self.function,
            "key": self.key,
            "recorded_at": timestamp(when),
            "result": dict(sorted(result.items())),
            "versions": {"memo_replay": __version__, "python": platform.python_version()},
        }
        if observed is not None:
            document["observed"] = observed.document()
        if self.offsets is not None:
            document["offsets_ms"] = " ".join(f"{offset * 1000:.3f}" for offset in self.offsets)
        return dict(sorted(document.items()))


class Entry(NamedTuple):
    """One recording, as read from its entry file: what
    [`Store.entries()`][memo_replay.Store.entries], [`Store.get()`][memo_replay.Store.get] and
    [`.memo.entries()`][memo_replay.Memo.entries] give.

    ```pycon
    >>> from memo_replay import recorded
    >>> @recorded
    ... def square(x: int) -> int:
    ...     return x * x
    >>> square(12)
    144
    >>> [entry] = square.memo.entries()
    >>> entry.function, dict(entry.arguments), entry.serializer, entry.load()
    ('__main__.square', {'x': 12}, 'json', 144)
    >>> entry.key == square.memo.key(12)
    True
    ```

    (A `NamedTuple` like the store's other records, not a dataclass: `dataclasses` imports
    `inspect`, several ms of the start of every process that replays.)"""

    location: str
    """Where the entry file is (a path for a local store)."""
    name: str
    """Its name in the store's backend (`<function directory>/<key>.json`)."""
    key: str
    """The recorded call's key (the entry file is named after it)."""
    function: str
    """The recorded function's id, `module.qualname`."""
    recorded_at: dt.datetime | None
    """When it was recorded (UTC, to the second; None when the entry does not say)."""
    arguments: Mapping[str, Any]
    """The preview of the arguments (redacted and bounded: not the arguments themselves)."""
    files: Mapping[str, str]
    """Each declared file (relative to the project root) → the hash of its content when
    the call was recorded."""
    serializer: str
    """The id of the serializer that wrote the result (`json`, `pydantic`, `stream`, …)."""
    size: int
    """The size of the serialized result (bytes, or characters of a text payload)."""
    duration_s: float
    """How long the original call took, in seconds (the time each replay saves)."""
    payload: Payload
    """The serialized result, as stored (see [`load()`][memo_replay.Entry.load] for the
    value)."""
    components: Components
    """The parts the key was made of: the code fingerprint, each argument's hash, each
    declared file's hash and the `serializer=` option (what an explanation compares)."""
    versions: Mapping[str, Any] = MappingProxyType({})
    """The memo_replay and Python versions that recorded it."""
    payload_file: str | None = None
    """The file beside the entry holding its payload (large binary payloads), else None."""
    observed: Observed | None = None
    """The code that ran and the files read during the recording (None: nothing observed)."""

    def __repr__(self) -> str:
        # The payload, components, versions and observed code are long; the rest says which.
        shown = ("location", "name", "key", "function", "recorded_at", "arguments", "files",
                 "serializer", "size", "duration_s", "payload_file")
        return f"Entry({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"

    @property
    def path(self) -> Path:
        """The entry file's path (its `location` as a `pathlib.Path`)."""
        return Path(self.location)

    def load(self, serializer: SerializerOption = None) -> Any:
        """The recorded result, rebuilt by its serializer (the same type that was recorded);
        a payload that does not load is a [`CorruptEntry`][memo_replay.CorruptEntry] naming
        the entry. A stream's recording loads as a
        [`RecordedStream`][memo_replay.RecordedStream]. `serializer` is the recorded
        function's `serializer=` option, where loading needs it: a
        [`Serializer`][memo_replay.Serializer] instance that is not registered, or `"pickle"`
        (a pickle payload is refused without it).

        A result type whose module is not imported yet (an inspection script that imports only
        `Store`) is imported first when that module is a source file of the project around
        the store — the rule `memo-replay ls --stale` follows; a standard-library, installed,
        symlinked or otherwise foreign module never is, and loading then fails, saying to
        import the type first. (A replay never imports: the recorded function's module has
        imported its result type.)"""
        types = [self.payload.type]
        if self.payload.serializer == "stream":  # each kind of item names its own type
            from memo_replay.serializers.stream import kind_types

            types = kind_types(self.payload.data)
        for type_name in types:
            if isinstance(type_name, str):  # anything else is refused by loading
                self._import_result_modules(type_name)
        try:
            return self.payload.load(serializer, function=self.function)
        except MemoReplayError:
            raise
        except (ValueError, TypeError, RecursionError) as exc:  # a validation error, say
            raise CorruptEntry(self.location, f"its payload does not load ({exc})") from exc

    @property
    def source(self) -> str:
        """The normalized source of the function when it was recorded."""
        return self.components.code.source

    def _import_result_modules(self, type_name: str) -> None:
        """Import the not yet imported modules ``type_name`` names (``pkg.models:Page[...]``)
        that are project source (see :meth:`load`)."""
        import sys

        if len(type_name) > 10_000:  # refused unread by the serializer's own check
            return
        names = {part.partition(":")[0] for part in re.split(r"[\[\],\s]+", type_name)
                 if ":" in part}
        missing = sorted(name for name in names if name not in sys.modules)
        if not missing:
            return
        from memo_replay.audit import import_project_modules

        # The entry file is <store>/<function directory>/<key>.json.
        refused = import_project_modules(missing, self.path.parent.parent)
        if refused:  # loading says what is missing; this says why it stays missing
            import logging

            for name, why in refused.items():
                logging.getLogger(__name__).info("not importing %s for %s: %s", name,
                                                 self.location, why)


class Envelope(NamedTuple):
    """What an entry says about itself, read without checking its payload (``stats``)."""

    key: str
    function: str
    recorded_at: dt.datetime | None
    duration_s: float
    serializer: str
    payload_file: str | None
    """The payload file it names (only ever its own key's: see :func:`read_envelope`)."""
    observed: Observed | None
    """What the recording depended on beyond its key."""


class Summary(NamedTuple):
    """What listing an entry needs (``stats``, removal), read without parsing all of it."""

    key: str
    function: str
    recorded_at: str | None
    """As the entry writes it (``2026-11-21T12:00:00Z``: these sort as the times do)."""
    serializer: str
    payload_file: str | None
    """The payload file it names (only ever its own key's)."""

    @classmethod
    def parsed(cls, key: str, function: str, when: dt.datetime | None, serializer: str,
               payload_file: str | None) -> Summary:
        """A summary of fields already parsed (the time written as entries write it, in UTC,
        so that summaries sort by time)."""
        if when is not None and when.tzinfo is not None:
            import datetime as dt  # imported already: `when` is a datetime

            when = when.astimezone(dt.timezone.utc)
        return cls(key, function, None if when is None else timestamp(when), serializer,
                   payload_file)


# An entry memo_replay wrote is sorted JSON indented by two spaces, and a JSON string never
# holds a raw newline: a line starting with exactly two spaces and a quote is a top-level key,
# one with four inside the last top-level `"result"` object is one of the result's.
_TOP_FIELD = re.compile(rb'\n  "(format|function|key|recorded_at)": ("[^"\\\n]*"|\d+)')
_RESULT_FIELD = re.compile(rb'\n    "(serializer|file)": ("[^"\\\n]*")')
_RESULT = b'\n  "result": {'
_FORMAT = b'\n  "format": '
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def read_summary(location: str, key: str, raw: bytes) -> Summary:
    """The :class:`Summary` of the entry file of ``key``: found by scanning the layout
    memo_replay writes (a few µs, a third of parsing the JSON), else — any field missing, an
    escaped string, another layout — from the parsed document. It says what the entry says
    about itself; only :func:`parse_entry` (``verify``, replay) checks the rest."""
    at = raw.rfind(_RESULT)  # the last one: JSON keeps the last of duplicate keys too
    if at > 0 and raw.startswith(b'{\n  "') and raw.endswith(b"}\n"):
        # Sorted, the four fields follow the last `format` (the first of them): scanning from
        # there skips the components (most of an entry) and finds the same last occurrences;
        # an unsorted file is scanned whole.
        top = dict(_TOP_FIELD.findall(raw, max(raw.rfind(_FORMAT, 0, at), 0), at))
        if len(top) != 4:
            top = dict(_TOP_FIELD.findall(raw, 0, at))
        result = dict(_RESULT_FIELD.findall(raw, at))
        try:
            if len(top) == 4 and b"serializer" in result \
                    and int(top[b"format"]) <= FORMAT_VERSION \
                    and top[b"key"][1:-1].decode() == key:
                when = top[b"recorded_at"][1:-1].decode()
                file = result.get(b"file")
                name = None if file is None else file[1:-1].decode()
                if _TIMESTAMP.fullmatch(when) and (name is None or name == payload_file_name(
                        key, _checksum_field(raw, at))):
                    return Summary(key, top[b"function"][1:-1].decode(), when,
                                   result[b"serializer"][1:-1].decode(), name)
        except (ValueError, UnicodeDecodeError):
            pass  # read the document the slow way, which says what is wrong
    envelope = read_envelope(location, key, read_document(location, raw))
    return Summary.parsed(key, envelope.function, envelope.recorded_at, envelope.serializer,
                          envelope.payload_file)


class Listing(NamedTuple):
    """What ``memo-replay ls`` shows of an entry, read without parsing all of it."""

    summary: Summary
    size: int
    """The payload's size in bytes, as the entry says."""
    arguments: dict[str, Any]
    """The argument preview."""


_ARGUMENTS = b'{\n  "arguments": '
_COMPONENTS = b',\n  "components": '
_SIZE_FIELD = re.compile(rb'\n    "size": (\d{1,18})[,\n]')
"""A size of more digits than any file has is left to the parse (``int`` refuses 4,301)."""
_RAW_DECODE = json.JSONDecoder().raw_decode


def read_listing(location: str, key: str, raw: bytes) -> Listing | None:
    """The :class:`Listing` of the entry file of ``key``, by scanning the layout memo_replay
    writes (the argument preview is the first field: only it is parsed); None when the entry
    is not in that layout (:func:`parse_entry` then reads it whole)."""
    end = raw.find(_COMPONENTS)
    at = raw.rfind(_RESULT)
    size = None if at < 0 else _SIZE_FIELD.search(raw, at)
    if end < 0 or size is None or not raw.startswith(_ARGUMENTS) \
            or raw.find(b'\n  "arguments": ', end) >= 0:  # a second one: JSON keeps the last
        return None  # not the layout: parsed once, whole, by the caller
    try:  # what json.loads(bytes) does, minus its encoding detection (the layout is UTF-8)
        text = raw[len(_ARGUMENTS):end].decode("utf-8", "surrogatepass")
        arguments, at_end = _RAW_DECODE(text)
    except (ValueError, RecursionError):
        return None
    if at_end != len(text) or not isinstance(arguments, dict):
        return None
    return Listing(read_summary(location, key, raw), int(size.group(1)), arguments)


def _checksum_field(raw: bytes, at: int) -> str:
    """The result's checksum field (at ``at``) as the summary scan finds it."""
    match = _CHECKSUM_FIELD.search(raw, at)
    return "" if match is None else match.group(1).decode()


_CHECKSUM_FIELD = re.compile(rb'\n    "checksum": "([0-9a-f]*)"')


def canonical_data(kind: PayloadKind, data: str | bytes) -> str | bytes:
    """A serializer's output in the form payloads hold and checksum: a JSON payload re-encoded
    compactly (``ValueError`` when it is not JSON, or holds NaN), text as ``str``, binary as
    ``bytes``."""
    if kind == "json":
        return _canonical_json(json.loads(data.decode() if isinstance(data, bytes) else data))
    if kind == "text" and isinstance(data, bytes):
        return data.decode()
    if kind == "binary" and isinstance(data, str):
        return data.encode()
    return data


def timestamp(value: dt.datetime) -> str:
    """How entries (and the tools reading them) write a UTC time: ``2026-11-21T12:00:00Z``."""
    return value.isoformat().replace("+00:00", "Z")


def parse_timestamp(value: str) -> dt.datetime:
    """The inverse of :func:`timestamp` (``ValueError`` for anything else)."""
    import datetime as dt  # not on the replay path (see Hit.recorded_at)

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def epoch_seconds(value: str) -> float:
    """A hit's ``recorded_at`` in seconds since the epoch (``ValueError`` if it is not a time).

    Only a ``ttl`` needs it: a hit keeps the text, so that replaying without one never imports
    ``datetime`` (~1.4 ms of a process's start on Python 3.11) nor parses a time per hit."""
    return parse_timestamp(value).timestamp()


def render(document: Mapping[str, Any]) -> bytes:
    """The exact bytes of an entry file (envelope keys are already in sorted order)."""
    return (json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def same_recording(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two documents differ at most in :data:`VOLATILE_FIELDS`."""
    return {k: v for k, v in a.items() if k not in VOLATILE_FIELDS} == \
        {k: v for k, v in b.items() if k not in VOLATILE_FIELDS}


# -- reading -------------------------------------------------------------------------------------


class MissingPayload(CorruptEntry):
    """An entry whose payload file is gone: damaged, or replaced by a concurrent re-record."""


def read_document(location: str, raw: bytes) -> dict[str, Any]:
    """An entry file's bytes as a JSON object of a format this version reads;
    :class:`CorruptEntry` / :class:`UnsupportedFormat` naming ``location`` otherwise."""
    try:
        document = json.loads(raw)
    except ValueError as exc:  # not JSON, not UTF-8, or an integer over Python's digit limit
        raise CorruptEntry(location, f"not valid JSON, truncated or edited ({exc})") from None
    except RecursionError:
        raise CorruptEntry(location, "nested too deeply to be an entry") from None
    if not isinstance(document, dict):
        raise CorruptEntry(location, "not a JSON object")
    version = document.get("format")
    if type(version) is not int:
        raise CorruptEntry(location, "no `format` version")
    if version > FORMAT_VERSION:
        raise UnsupportedFormat(location, version, FORMAT_VERSION)
    if version < 1:
        raise CorruptEntry(location, f"unknown format version {version}")
    return document


def read_envelope(location: str, key: str, document: Mapping[str, Any]) -> Envelope:
    """The envelope of a document read from the entry file of ``key``."""
    try:
        return _envelope(location, key, document)
    except _MALFORMED as exc:
        raise _malformed(location, exc) from None


def parse_entry(location: str, name: str, raw: bytes,
                read_payload_file: Callable[[str], bytes | None]) -> Entry:
    """Read and check the entry file ``name`` (and its payload file, through
    ``read_payload_file(file name)``): a damaged entry raises :class:`CorruptEntry`, one whose
    payload file is gone :class:`MissingPayload`."""
    document = read_document(location, raw)
    key = entry_stem(name)
    try:
        envelope = _envelope(location, key, document)
        payload = _payload(location, key, document["result"], read_payload_file)
        components = Components.from_document(document.get("components"))
        versions = document.get("versions", {})
        if not isinstance(versions, dict):
            raise TypeError("`versions` should be an object")
        return Entry(
            location=location,
            name=name,
            key=key,
            function=envelope.function,
            recorded_at=envelope.recorded_at,
            arguments=_typed(document, "arguments", dict),
            files=components.files,
            serializer=payload.serializer,
            size=len(payload.data),
            duration_s=envelope.duration_s,
            payload=payload,
            components=components,
            versions=versions,
            payload_file=envelope.payload_file,
            observed=envelope.observed,
        )
    except _MALFORMED as exc:
        raise _malformed(location, exc) from None


def read_hit(location: str, function: str, key: str, raw: bytes,
             read_payload_file: Callable[[str], bytes | None]) -> tuple[Hit, str | None]:
    """What a lookup of ``function`` needs of the entry file of ``key``: the checked payload,
    the duration and the time of the recording (the components and argument preview are not
    read), and the payload file's name if it has one. An entry recorded for another function
    is refused: it is never another function's answer."""
    document = read_document(location, raw)
    try:
        envelope = _envelope(location, key, document, timed=False)
        if envelope.function != function:
            raise CorruptEntry(location, f"holds a recording of `{envelope.function}`, not of "
                                         f"`{function}` whose directory it is in")
        result = document["result"]
        payload = _payload(location, key, result, read_payload_file)
    except _MALFORMED as exc:
        raise _malformed(location, exc) from None
    when = document.get("recorded_at")
    offsets = document.get("offsets_ms")
    return Hit(payload, envelope.duration_s, when if isinstance(when, str) else None,
               envelope.observed, (result["payload"],) if payload.kind == "json"
               else None, offsets if isinstance(offsets, str) else None), envelope.payload_file


_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, RecursionError)
"""What reading a hand-edited document's fields can raise (a payload nested too deeply to be
re-encoded raises RecursionError)."""


def _malformed(location: str, exc: Exception) -> CorruptEntry:
    if isinstance(exc, RecursionError):
        return CorruptEntry(location, "nested too deeply to be an entry")
    return CorruptEntry(location, f"missing or malformed field ({exc.__class__.__name__}: {exc})")


def duplicate_fields(raw: bytes) -> list[str]:
    """The names of fields that appear twice in one object of an entry file (JSON keeps the
    last silently; memo_replay never writes such a file, so someone edited it)."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for name, _ in items:
            if name in seen:
                found.append(name)
            seen.add(name)
        return dict(items)

    with contextlib.suppress(ValueError, RecursionError):  # not JSON: damaged anyway
        json.loads(raw, object_pairs_hook=pairs)
    return found


def _envelope(location: str, key: str, document: Mapping[str, Any], *,
              timed: bool = True) -> Envelope:
    """The envelope's fields, checked; without ``timed`` its ``recorded_at`` is left None
    (a hit keeps the text: see :attr:`Hit.recorded_at`)."""
    stored_key = _typed(document, "key", str)
    if stored_key != key:
        raise CorruptEntry(location, f"holds key {stored_key} but is named {key}.json")
    result = _typed(document, "result", dict)
    recorded_at = document.get("recorded_at")
    file = result.get("file")
    if file is not None and (not isinstance(file, str) or file != payload_file_name(
            key, str(result.get("checksum")))):
        # Only the file right beside the entry named after it: an entry never reads elsewhere.
        raise CorruptEntry(location, f"names an invalid payload file {file!r}")
    return Envelope(
        key=key,
        function=_typed(document, "function", str),
        recorded_at=parse_timestamp(recorded_at) if timed and isinstance(recorded_at, str)
        else None,
        duration_s=duration(document.get("duration_s")),
        serializer=_typed(result, "serializer", str),
        payload_file=file,
        observed=None if "observed" not in document
        else Observed.from_document(document["observed"]),
    )


def duration(value: object) -> float:
    """A recorded call's duration as an entry (or the index) states it: seconds, finite and not
    negative. Anything else — a hand-edited `-1e20`, `Infinity` (which `json` reads), a string
    — is unknown, 0: it is only ever reported (the time a replay saved), never trusted."""
    if type(value) not in (int, float):
        return 0.0
    seconds = float(value)  # type: ignore[arg-type]
    return seconds if 0.0 <= seconds < 1e9 else 0.0


def _payload(location: str, key: str, result: Mapping[str, Any],
             read_payload_file: Callable[[str], bytes | None]) -> Payload:
    kind = result["encoding"]
    embedded = result["payload"]
    data: str | bytes
    stored = _typed(result, "checksum", str)
    file = result.get("file")
    if file is not None:
        if kind != "binary":
            raise CorruptEntry(location, f"names an invalid payload file {file!r}")
        data = _read_payload_file(location, file, read_payload_file)
    elif kind == "json":
        data = _canonical_json(embedded)
    elif kind == "text":
        data = _typed(result, "payload", str)
    elif kind == "binary":
        import base64  # binary payloads only

        data = base64.b64decode(_typed(result, "payload", str), validate=True)
    else:
        raise ValueError(f"unknown payload encoding {kind!r}")
    if checksum(data) != stored:
        raise CorruptEntry(location, "payload checksum mismatch: the payload was edited or "
                                     "damaged")
    return Payload(
        serializer=_typed(result, "serializer", str),
        serializer_version=_typed(result, "serializer_version", int),
        type=result.get("type"),
        kind=kind,
        data=data,
        checksum=stored,
    )


def _read_payload_file(location: str, file: str,
                       read_payload_file: Callable[[str], bytes | None]) -> bytes:
    try:
        data = read_payload_file(file)
    except OSError as exc:
        raise CorruptEntry(location, f"its payload file {file} is unreadable "
                                     f"({exc.strerror or exc})") from exc
    if data is None:
        raise MissingPayload(location, f"its payload file {file} is missing")
    return data


_CANONICAL = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
"""Built once: ``json.dumps`` with options builds an encoder per call (a microsecond a read)."""


def _canonical_json(value: Any) -> str:
    return _CANONICAL.encode(value)


def checksum(data: str | bytes) -> str:
    """The checksum of a payload's data (what ``result.checksum`` holds)."""
    return xxh3_128_hexdigest(data.encode() if isinstance(data, str) else data)


def _typed(document: Mapping[str, Any], name: str, tp: type) -> Any:
    value = document[name]
    if not isinstance(value, tp):
        raise TypeError(f"`{name}` should be a {tp.__name__}")
    return value
