"""The entry file format: one deterministic JSON document per recording.

An entry carries its format version, the function id and key, the key's components (code hash
and normalized source, per-argument hashes, per-file hashes), a bounded argument preview, the
serialized result with its serializer id, version and checksum, ``recorded_at``, the original
call's duration and the Python/package versions. Keys are written sorted, with a fixed indent
and a trailing newline, so the file diffs and merges well in git. The payload keeps the order
the serializer gave it.

A binary payload larger than :data:`SIDECAR_THRESHOLD` is not inflated into base64 inside the
JSON: it is stored beside the entry in ``<key>.<checksum prefix>.bin`` (content-addressed, so a
reader holding an older entry never pairs it with a newer payload), and the entry names it in
``result.file``. Such entries are written as format 2, every other entry as format 1: ``format``
is the oldest reader version that understands the entry, so entries that do not need the sidecar
stay readable by older memo_replay versions and unchanged across the upgrade.

Bump :data:`FORMAT_VERSION` when the document's shape changes; a reader refuses entries from a
newer format rather than misreading them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xxhash import xxh3_128_hexdigest

from memo_replay import __version__
from memo_replay.errors import CorruptEntry, UnsupportedFormat
from memo_replay.keys import CallKey
from memo_replay.serializers import PayloadKind, Serializer, SerializerOption, registry

FORMAT_VERSION = 2
"""The newest entry format this version reads (and writes, for payloads stored beside)."""
INLINE_FORMAT = 1
"""The format of entries whose payload is embedded in the JSON."""
SIDECAR_THRESHOLD = 64 * 1024
"""Binary payloads above this many bytes are stored beside the entry, not base64 inside it."""
SIDECAR_SUFFIX = ".bin"
VOLATILE_FIELDS = ("recorded_at", "duration_s", "versions")
"""Fields that may differ between two recordings of the same result."""


@dataclass(frozen=True)
class Payload:
    """A serialized result in canonical form: what the hot cache holds and the checksum covers.

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
               data: str | bytes) -> Payload:
        if kind == "json":
            text = data.decode() if isinstance(data, bytes) else data
            data = _canonical_json(json.loads(text))
        elif kind == "text" and isinstance(data, bytes):
            data = data.decode()
        elif kind == "binary" and isinstance(data, str):
            data = data.encode()
        return cls(serializer.id, serializer.version, type_path, kind, data, _checksum(data))

    @property
    def beside(self) -> bytes | None:
        """The payload's bytes when they are stored in a file beside the entry, else None."""
        if self.kind == "binary" and isinstance(self.data, bytes) \
                and len(self.data) > SIDECAR_THRESHOLD:
            return self.data
        return None

    def embedded(self) -> Any:
        """The payload as it appears inside the entry file (None when stored beside it)."""
        if self.beside is not None:
            return None
        if self.kind == "json":
            return json.loads(self.data)
        if self.kind == "binary":
            assert isinstance(self.data, bytes)
            return base64.b64encode(self.data).decode()
        return self.data

    def load(self, option: SerializerOption, *, function: str) -> Any:
        serializer = registry.resolve(self.serializer, self.type, option, function=function)
        return serializer.loads(self.data)


def _canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _checksum(data: str | bytes) -> str:
    return xxh3_128_hexdigest(data.encode() if isinstance(data, str) else data)


def sidecar_name(key: str, checksum: str) -> str:
    """The file beside entry ``key`` holding a payload with ``checksum``."""
    return f"{key}.{checksum[:16]}{SIDECAR_SUFFIX}"


def sidecar_of(document: Mapping[str, Any]) -> str | None:
    """The payload file an entry document names (None for an embedded payload)."""
    result = document.get("result")
    name = result.get("file") if isinstance(result, Mapping) else None
    return name if isinstance(name, str) else None


def sidecar_path(path: Path, document: object) -> Path | None:
    """The payload file of the entry at ``path`` — only the one its key and checksum name, so
    an edited entry can never point a reader elsewhere (None when there is no valid one, or the
    document is not an entry at all)."""
    result = document.get("result") if isinstance(document, Mapping) else None
    if not isinstance(result, Mapping):
        return None
    name = result.get("file")
    if not isinstance(name, str) or name != sidecar_name(path.stem, str(result.get("checksum"))):
        return None
    return path.parent / name


def build_document(call: CallKey, *, preview: Mapping[str, Any], payload: Payload,
                   duration_s: float, recorded_at: dt.datetime | None = None) -> dict[str, Any]:
    """The entry document for a fresh recording."""
    import platform

    when = (recorded_at or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    code = call.code
    result = {
        "checksum": payload.checksum,
        "encoding": payload.kind,
        "payload": payload.embedded(),
        "serializer": payload.serializer,
        "serializer_version": payload.serializer_version,
        "size": len(payload.data),
        "type": payload.type,
    }
    if payload.beside is not None:
        result["file"] = sidecar_name(call.key, payload.checksum)
    return {
        "arguments": dict(sorted(preview.items())),
        "components": {
            "arguments": dict(sorted(call.arguments.items())),
            "code": {
                "constants": dict(code.constants),
                "deps": dict(code.deps),
                "hash": code.hash,
                "helpers": dict(code.helpers),
                "kind": code.kind,
                "source": code.source.splitlines(),
                "source_hash": code.source_hash,
                "version": code.version,
            },
            "files": dict(sorted(call.files.items())),
            "serializer": call.serializer,
        },
        "duration_s": round(duration_s, 6),
        "format": INLINE_FORMAT if payload.beside is None else FORMAT_VERSION,
        "function": call.function,
        "key": call.key,
        "recorded_at": timestamp(when),
        "result": dict(sorted(result.items())),
        "versions": {"memo_replay": __version__, "python": platform.python_version()},
    }


def timestamp(value: dt.datetime) -> str:
    """How entries (and the tools reading them) write a UTC time: ``2026-11-21T12:00:00Z``."""
    return value.isoformat().replace("+00:00", "Z")


def render(document: Mapping[str, Any]) -> bytes:
    """The exact bytes of an entry file (envelope keys are already in sorted order)."""
    return (json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def same_recording(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two documents differ at most in :data:`VOLATILE_FIELDS`."""
    return {k: v for k, v in a.items() if k not in VOLATILE_FIELDS} == \
        {k: v for k, v in b.items() if k not in VOLATILE_FIELDS}


@dataclass(frozen=True)
class Entry:
    """One recording, as read from its entry file."""

    path: Path
    key: str
    function: str
    recorded_at: dt.datetime | None
    arguments: Mapping[str, Any]
    files: Mapping[str, str]
    serializer: str
    size: int
    duration_s: float
    payload: Payload = field(repr=False)
    components: Mapping[str, Any] = field(repr=False, default_factory=dict)
    versions: Mapping[str, Any] = field(repr=False, default_factory=dict)
    payload_file: str | None = None
    """The file beside the entry holding its payload (large binary payloads), else None."""

    def load(self, serializer: SerializerOption = None) -> Any:
        """The recorded result, rebuilt by its serializer (the same type that was recorded)."""
        return self.payload.load(serializer, function=self.function)

    @property
    def source(self) -> str:
        """The normalized source of the function when it was recorded."""
        lines = self.components.get("code", {}).get("source", [])
        return "\n".join(lines) if isinstance(lines, list) else str(lines)


def parse_entry(path: Path, raw: bytes) -> Entry:
    """Read and check an entry file's bytes (and its payload file, when it has one); a damaged
    entry raises :class:`CorruptEntry`, one whose payload file is gone :class:`MissingPayload`."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptEntry(path, f"not valid JSON, truncated or edited ({exc})") from None
    if not isinstance(document, dict):
        raise CorruptEntry(path, "not a JSON object")
    version = document.get("format")
    if type(version) is not int:
        raise CorruptEntry(path, "no `format` version")
    if version > FORMAT_VERSION:
        raise UnsupportedFormat(path, version, FORMAT_VERSION)
    if version < 1:
        raise CorruptEntry(path, f"unknown format version {version}")
    try:
        result = document["result"]
        kind = result["encoding"]
        payload = _payload_from(path, result, kind)
        key = _typed(document, "key", str)
        if key != path.stem:
            raise CorruptEntry(path, f"holds key {key} but is named {path.name}")
        recorded_at = document.get("recorded_at")
        return Entry(
            path=path,
            key=key,
            function=_typed(document, "function", str),
            recorded_at=dt.datetime.fromisoformat(recorded_at.replace("Z", "+00:00"))
            if isinstance(recorded_at, str) else None,
            arguments=_typed(document, "arguments", dict),
            files=document.get("components", {}).get("files", {}),
            serializer=payload.serializer,
            size=len(payload.data),
            duration_s=float(document.get("duration_s") or 0.0),
            payload=payload,
            components=_typed(document, "components", dict),
            versions=document.get("versions", {}),
            payload_file=sidecar_of(document),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptEntry(path, f"missing or malformed field ({exc.__class__.__name__}: {exc})"
                           ) from None


def _payload_from(path: Path, result: Mapping[str, Any], kind: str) -> Payload:
    embedded = result["payload"]
    data: str | bytes
    checksum = _typed(result, "checksum", str)
    if result.get("file") is not None:
        data = _read_sidecar(path, _typed(result, "file", str), kind, checksum)
    elif kind == "json":
        data = _canonical_json(embedded)
    elif kind == "text":
        data = _typed(result, "payload", str)
    elif kind == "binary":
        data = base64.b64decode(_typed(result, "payload", str), validate=True)
    else:
        raise ValueError(f"unknown payload encoding {kind!r}")
    if _checksum(data) != checksum:
        raise CorruptEntry(path, "payload checksum mismatch: the payload was edited or damaged")
    return Payload(
        serializer=_typed(result, "serializer", str),
        serializer_version=_typed(result, "serializer_version", int),
        type=result.get("type"),
        kind=kind,  # type: ignore[arg-type]
        data=data,
        checksum=checksum,
    )


def _read_sidecar(path: Path, name: str, kind: str, checksum: str) -> bytes:
    if kind != "binary" or name != sidecar_name(path.stem, checksum):
        # Only the file right beside the entry named after it: an entry never reads elsewhere.
        raise CorruptEntry(path, f"names an invalid payload file {name!r}")
    try:
        return (path.parent / name).read_bytes()
    except FileNotFoundError:
        raise MissingPayload(path, f"its payload file {name} is missing") from None
    except OSError as exc:
        raise CorruptEntry(path, f"its payload file {name} is unreadable "
                                 f"({exc.strerror or exc})") from exc


class MissingPayload(CorruptEntry):
    """An entry whose payload file is gone: damaged, or replaced by a concurrent re-record."""


def _typed(document: Mapping[str, Any], name: str, tp: type) -> Any:
    value = document[name]
    if not isinstance(value, tp):
        raise TypeError(f"`{name}` should be a {tp.__name__}")
    return value
