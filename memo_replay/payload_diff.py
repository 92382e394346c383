"""What an answer changed: a structural diff of two recorded payloads.

A reviewer who sees that a recording was re-recorded wants to know *what* the answer changed,
not that a checksum did. JSON payloads (plain data, pydantic models, dataclasses) are compared
field by field and each difference is named by its path, ``states[2].name: "a" → "b"``; text
payloads by a clipped unified diff; binary payloads (bytes, numpy arrays, pickles) by their
sizes and checksums, since a byte-level diff says nothing to a person.

The comparison is strict about JSON types (``1``, ``1.0`` and ``true`` differ, as they do in
the payload) and bounded: at most ``limit`` differences are kept (the rest only counted), and
every value is shown cut to a preview, so a hostile or huge payload cannot flood a terminal or
a pull-request comment. Lists are compared index by index: an inserted item shows as changes
from there on, which is what the recorded answer's consumers see too.

Two recorded streams (serializer ``stream``: see :mod:`memo_replay.serializers.stream`) are
compared item by item, as stored — without any serializer, so a hostile entry imports nothing:
the item counts (``items 12 → 14``), a change of the return value or the recorded exception
(``returned``, ``raised``: listed first, never cut off behind many changed items), then each
differing item by its path (``items[2].text: "a" → "b"``; bytes items by length and checksum).
A stream against a single result is said to be one.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

from xxhash import xxh3_128_hexdigest

from memo_replay.errors import InvalidPayload
from memo_replay.serializers.stream import STREAM, Kind, StoredStream, stored_stream
from memo_replay.store.entry import Payload

ChangeKind = Literal["added", "removed", "changed"]
PathPart = str | int


class Change(NamedTuple):
    """One field that differs: where, how, and the two values (None for the absent side)."""

    path: tuple[PathPart, ...]
    kind: ChangeKind
    before: Any = None
    after: Any = None

    @property
    def where(self) -> str:
        """The path as text: ``states[2].name``, ``["odd key"]``, ``(root)`` for the whole."""
        return format_path(self.path)

    def line(self, width: int = 60) -> str:
        """``path: before → after`` with both values cut to about ``width`` characters."""
        if self.kind == "added":
            return f"{self.where}: added {preview(self.after, width)}"
        if self.kind == "removed":
            return f"{self.where}: removed (was {preview(self.before, width)})"
        return f"{self.where}: {preview(self.before, width)} → {preview(self.after, width)}"


class Side(NamedTuple):
    """What is shown of one payload when it cannot be compared field by field."""

    serializer: str
    type: str | None
    kind: str
    size: int
    checksum: str


class PayloadDiff(NamedTuple):
    """The outcome of :func:`diff_payloads`.

    ``mode`` says how the payloads were compared: ``same`` (identical checksums), ``fields``
    (JSON, see ``changes``), ``text`` (``text_diff`` holds a clipped unified diff) or
    ``summary`` (binary, different serializers, or nested too deeply: only ``before`` and
    ``after`` say anything). ``total`` counts every field difference, ``changes`` keeps the
    first ``limit`` of them."""

    mode: Literal["same", "fields", "text", "summary"]
    before: Side
    after: Side
    changes: tuple[Change, ...] = ()
    total: int = 0
    text_diff: str = ""
    note: str = ""

    @property
    def same(self) -> bool:
        return self.mode == "same"

    def lines(self, width: int = 60) -> list[str]:
        """The diff for people, one line per item (values unescaped: print through
        :func:`~memo_replay.text.printable`)."""
        if self.mode == "same":
            return ["the same result"]
        out: list[str] = []
        if self.note:
            out.append(self.note)
        if self.mode == "fields":
            out += [change.line(width) for change in self.changes]
            if self.total > len(self.changes):
                out.append(f"… and {self.total - len(self.changes)} more differences")
        elif self.mode == "text":
            out += self.text_diff.splitlines()
        else:
            out += [f"before: {_side(self.before)}", f"after:  {_side(self.after)}"]
        return out

    def document(self) -> dict[str, Any]:
        """The diff as plain JSON data (``--json``)."""
        return {"mode": self.mode, "note": self.note, "total": self.total,
                "before": self.before._asdict(), "after": self.after._asdict(),
                "changes": [{"path": change.where, "kind": change.kind,
                             "before": preview(change.before, 200) if change.kind != "added"
                             else None,
                             "after": preview(change.after, 200) if change.kind != "removed"
                             else None}
                            for change in self.changes],
                "text_diff": self.text_diff}


def diff_payloads(before: Payload, after: Payload, *, limit: int = 20,
                  text_lines: int = 40) -> PayloadDiff:
    """Compare two payloads as read from entries (their checksums were verified on reading)."""
    sides = _describe(before), _describe(after)
    if before.checksum == after.checksum and before.kind == after.kind:
        return PayloadDiff("same", *sides)
    if STREAM in (before.serializer, after.serializer):
        return _diff_streams(before, after, sides, limit)
    note = "" if (before.serializer, before.type) == (after.serializer, after.type) else \
        f"serializer {before.serializer} ({before.type or 'no type'}) → {after.serializer} " \
        f"({after.type or 'no type'})"
    if before.kind == after.kind == "json":
        try:
            old, new = json.loads(before.data), json.loads(after.data)
            total, kept = 0, list[Change]()
            for change in diff_values(old, new):
                total += 1
                if len(kept) < limit:
                    kept.append(change)
        except (RecursionError, ValueError):
            return PayloadDiff("summary", *sides, note="nested too deeply to compare field by "
                                                      "field")
        return PayloadDiff("fields", *sides, changes=tuple(kept), total=total, note=note)
    if before.kind == after.kind == "text":
        old_text, new_text = str(before.data), str(after.data)  # text payloads are str
        lines = list(difflib.unified_diff(old_text.splitlines(), new_text.splitlines(),
                                          "before", "after", lineterm="", n=1))
        if len(lines) > text_lines:
            lines = [*lines[:text_lines], f"… ({len(lines) - text_lines} more lines)"]
        return PayloadDiff("text", *sides, text_diff="\n".join(lines), note=note)
    return PayloadDiff("summary", *sides, note=note)


def diff_values(before: Any, after: Any, path: tuple[PathPart, ...] = ()) -> Iterator[Change]:
    """Every difference between two JSON values, depth first, in a stable order (object
    fields sorted, list items by index). A field whose JSON type changed is one change."""
    if type(before) is not type(after):
        yield Change(path, "changed", before, after)
    elif isinstance(before, dict):
        for name in sorted(before.keys() | after.keys()):
            if name not in after:
                yield Change((*path, name), "removed", before[name], None)
            elif name not in before:
                yield Change((*path, name), "added", None, after[name])
            else:
                yield from diff_values(before[name], after[name], (*path, name))
    elif isinstance(before, list):
        for index in range(max(len(before), len(after))):
            if index >= len(after):
                yield Change((*path, index), "removed", before[index], None)
            elif index >= len(before):
                yield Change((*path, index), "added", None, after[index])
            else:
                yield from diff_values(before[index], after[index], (*path, index))
    elif before != after:
        yield Change(path, "changed", before, after)


def format_path(path: tuple[PathPart, ...]) -> str:
    """``states[2].name``; a field that is not an identifier as ``["a b"]``."""
    if not path:
        return "(root)"
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def preview(value: Any, width: int = 60) -> str:
    """``value`` as compact JSON, cut to about ``width`` characters (``…`` marks the cut)."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    except (RecursionError, ValueError):
        text = "(nested too deeply to show)"
    return text if len(text) <= width else text[:width - 1] + "…"


def _describe(payload: Payload) -> Side:
    size = len(payload.data.encode() if isinstance(payload.data, str) else payload.data)
    return Side(payload.serializer, payload.type, payload.kind, size, payload.checksum)


def _side(side: Side) -> str:
    return (f"{side.size} bytes ({side.kind}, {side.serializer}"
            f"{', ' + side.type if side.type else ''}), checksum {side.checksum}")


# -- streams -------------------------------------------------------------------------------------


def kind_text(kind: Kind) -> str:
    """``pydantic v1 app:Chunk``: a kind for people (unescaped)."""
    return f"{kind.serializer} v{kind.serializer_version}" + (f" {kind.type}" if kind.type
                                                              else "")


def value_preview(kind: Kind, value: Any, width: int = 60) -> str:
    """One stored value of a stream on one line: JSON and text values as compact JSON cut to
    about ``width`` characters, bytes as ``<length> bytes, starting <hex>``, a recorded
    exception as ``type: message``."""
    if isinstance(value, (bytes, memoryview)):
        data = bytes(value[:16])
        return f"{len(value)} bytes" + (f", starting {data.hex(' ')}" if data else "")
    if kind.serializer == "exception" and isinstance(value, dict) \
            and isinstance(value.get("type"), str) and isinstance(value.get("message"), str):
        text = f"{value['type']}: {value['message']}"
        return text if len(text) <= width else text[:width - 1] + "…"
    return preview(value, width)


def _comparable(value: Any) -> Any:
    """A stored value as :func:`diff_values` compares it: bytes by length and checksum."""
    if isinstance(value, (bytes, memoryview)):
        return f"<{len(value)} bytes, xxh3 {xxh3_128_hexdigest(value)[:16]}>"
    return value


def _diff_streams(before: Payload, after: Payload, sides: tuple[Side, Side],
                  limit: int) -> PayloadDiff:
    """Two payloads of which one at least is a stream."""
    if before.serializer != after.serializer:
        single = "a stream vs a single result" if before.serializer == STREAM else \
            "a single result vs a stream"
        return PayloadDiff("summary", *sides, note=single)
    try:
        old, new = stored_stream(before.data), stored_stream(after.data)
        note = f"items {old.end.items:,} → {new.end.items:,}" \
            if old.end.items != new.end.items else f"items {old.end.items:,} (as before)"
        kinds = ({(k.serializer, k.type) for k in old.kinds},
                 {(k.serializer, k.type) for k in new.kinds})
        if kinds[0] != kinds[1]:
            note += "; kinds " + ", ".join(kind_text(k) for k in old.kinds[:5]) + " → " + \
                ", ".join(kind_text(k) for k in new.kinds[:5])
        total, kept = 0, list[Change]()
        for change in _stream_changes(old, new):
            total += 1
            if len(kept) < limit:
                kept.append(change)
    except InvalidPayload as exc:
        return PayloadDiff("summary", *sides, note=f"a stream payload is damaged ({exc})")
    except RecursionError:
        return PayloadDiff("summary", *sides, note="nested too deeply to compare item by item")
    return PayloadDiff("fields", *sides, changes=tuple(kept), total=total, note=note)


def _stream_changes(old: StoredStream, new: StoredStream) -> Iterator[Change]:
    """The differences of two streams: how they ended first (the return value, the exception:
    never cut off by the limit behind many changed items), then item by item (index by index);
    values read one pair at a time."""
    for name, a, b in (("returned", old.returned, new.returned),
                       ("raised", old.raised, new.raised)):
        if a is None and b is None:
            continue
        if b is None:
            assert a is not None
            yield Change((name,), "removed", _comparable(a[1]), None)
        elif a is None:
            yield Change((name,), "added", None, _comparable(b[1]))
        else:
            yield from diff_values(_comparable(a[1]), _comparable(b[1]), (name,))
    for index in range(max(old.end.items, new.end.items)):
        path: tuple[PathPart, ...] = ("items", index)
        if index >= new.end.items:
            yield Change(path, "removed", _comparable(old.value(index)), None)
        elif index >= old.end.items:
            yield Change(path, "added", None, _comparable(new.value(index)))
        else:
            yield from diff_values(_comparable(old.value(index)),
                                   _comparable(new.value(index)), path)
