"""Why a call does not replay: a component-by-component comparison with the closest recording.

The closest recording is the one of the same function with the fewest differing components
(source, each helper, constant and dependency, each argument, each file). The explanation names
each difference — "file `examples/router.dy` changed", "argument `prompt` differs" — shows a
unified diff of the normalized source when the function's own code changed, and ends with the
command that re-records.
"""

from __future__ import annotations

import difflib
import os
import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from memo_replay.keys import CallKey
from memo_replay.keys.code import CodeFingerprint
from memo_replay.store import Entry
from memo_replay.store.entry import timestamp

_MAX_SHOWN = 80
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Difference:
    """One component that differs between a call and a recording."""

    component: str  # source, helper, constant, dependency, version, code, argument, file, …
    name: str
    message: str
    detail: str = ""


@dataclass(frozen=True)
class Explanation:
    """The outcome of comparing a call with the recordings of its function."""

    function: str
    key: str
    matched: bool
    recordings: int
    closest: Entry | None
    differences: tuple[Difference, ...]
    command: str

    def __str__(self) -> str:
        if self.matched:
            return f"`{self.function}` has a recording for this call (key {self.key})."
        if self.closest is None:
            head = (f"no recording of `{self.function}` exists in the store, so this call "
                    f"(key {self.key}) cannot replay.")
            return f"{head}\nTo record it: {self.command}"
        lines = [
            f"no recording of `{self.function}` matches this call (key {self.key}; "
            f"{self.recordings} recording{'s' if self.recordings != 1 else ''} of this function).",
            f"The closest recording, {self.closest.path.name} (recorded "
            f"{_when(self.closest)}), differs in:",
        ]
        for difference in self.differences:
            lines.append(f"  - {difference.message}")
            lines.extend(f"      {line}" for line in difference.detail.splitlines())
        lines.append(f"To re-record: {self.command}")
        return "\n".join(lines)


def explain(call: CallKey, preview: Mapping[str, Any], entries: Iterable[Entry]) -> Explanation:
    """Compare ``call`` with the recorded ``entries`` of its function."""
    candidates = list(entries)
    matched = any(entry.key == call.key for entry in candidates)
    best: tuple[Entry, list[Difference]] | None = None
    for entry in candidates:
        differences = compare(call, preview, entry)
        if best is None or _closer(entry, differences, *best):
            best = (entry, differences)
    return Explanation(
        function=call.function,
        key=call.key,
        matched=matched,
        recordings=len(candidates),
        closest=None if best is None else best[0],
        differences=() if best is None else tuple(best[1]),
        command=rerecord_command(),
    )


def _closer(entry: Entry, differences: list[Difference], best: Entry,
            best_differences: list[Difference]) -> bool:
    if len(differences) != len(best_differences):
        return len(differences) < len(best_differences)
    return (entry.recorded_at or _EPOCH) > (best.recorded_at or _EPOCH)


def compare(call: CallKey, preview: Mapping[str, Any], entry: Entry) -> list[Difference]:
    """Every component in which ``call`` differs from ``entry``."""
    components = entry.components
    found = _code_differences(call, components.get("code", {}), entry)
    recorded_args = components.get("arguments", {})
    for name in sorted(set(recorded_args) | set(call.arguments)):
        if name not in call.arguments:
            found.append(Difference("argument", name, f"argument `{name}` was recorded but is "
                                    f"not part of the call any more"))
        elif name not in recorded_args:
            found.append(Difference("argument", name, f"argument `{name}` is new"))
        elif recorded_args[name] != call.arguments[name]:
            was, now = entry.arguments.get(name, "?"), preview.get(name, "?")
            shown = (f": recorded {_short(was)}, now {_short(now)}" if was != now
                     else " (beyond what the preview shows)")
            found.append(Difference("argument", name, f"argument `{name}` differs{shown}"))
    found.extend(_mapping_differences("file", components.get("files", {}), call.files,
                                      changed="file `{}` changed",
                                      gone="file `{}` is no longer among the declared files",
                                      new="file `{}` is newly declared"))
    if components.get("serializer") != call.serializer:
        found.append(Difference("serializer", "serializer",
                                f"serializer option changed from {components.get('serializer')!r}"
                                f" to {call.serializer!r}"))
    return found


def compare_entries(first: Entry, second: Entry) -> list[Difference]:
    """What changed from recording ``first`` to recording ``second`` (``memo-replay diff``);
    "recorded" in the messages is ``first``, "now" is ``second``."""
    found = [] if first.function == second.function else [Difference(
        "function", "function", f"function `{first.function}` vs `{second.function}`")]
    return found + compare(_call_of(second), second.arguments, first)


def _call_of(entry: Entry) -> CallKey:
    """The call an entry recorded, rebuilt from its stored components."""
    components = entry.components
    code = components.get("code", {})
    fingerprint = CodeFingerprint(
        hash=code.get("hash", ""), kind=code.get("kind", "source"), source=entry.source,
        source_hash=code.get("source_hash", ""), helpers=code.get("helpers", {}),
        constants=code.get("constants", {}), deps=code.get("deps", {}),
        version=code.get("version"))
    return CallKey(entry.function, entry.key, fingerprint, components.get("arguments", {}),
                   components.get("files", {}), components.get("serializer"))


def _code_differences(call: CallKey, recorded: Mapping[str, Any], entry: Entry
                      ) -> list[Difference]:
    code = call.code
    if recorded.get("hash") == code.hash:
        return []
    found: list[Difference] = []
    if recorded.get("kind") != code.kind:
        found.append(Difference("code", "kind", f"the code of `{call.function}` is now "
                                f"fingerprinted by {code.kind} (was {recorded.get('kind')})"))
    if recorded.get("source_hash") != code.source_hash:
        diff = "\n".join(difflib.unified_diff(
            entry.source.splitlines(), code.source.splitlines(),
            "recorded", "current", lineterm="", n=2))
        found.append(Difference("source", call.function,
                                f"source of `{call.function}` changed", _clip(diff)))
    for label, key in (("helper", "helpers"), ("constant", "constants"),
                       ("dependency", "deps")):
        found.extend(_mapping_differences(
            label, recorded.get(key, {}), getattr(code, key),
            changed=label + " `{}` changed", gone=label + " `{}` is no longer used",
            new=label + " `{}` is newly used"))
    if recorded.get("version") != code.version:
        found.append(Difference("version", "version", f"version= changed from "
                                f"{recorded.get('version')!r} to {code.version!r}"))
    if not found:
        found.append(Difference("code", call.function, f"the code fingerprint of "
                                f"`{call.function}` changed (a newer key framing?)"))
    return found


def _mapping_differences(component: str, recorded: Mapping[str, str], current: Mapping[str, str],
                         *, changed: str, gone: str, new: str) -> list[Difference]:
    found = []
    for name in sorted(set(recorded) | set(current)):
        template = gone if name not in current else new if name not in recorded else \
            changed if recorded[name] != current[name] else None
        if template is not None:
            found.append(Difference(component, name, template.format(name)))
    return found


def rerecord_command() -> str:
    """The command that re-records what is running now (the pytest test, or this script)."""
    current_test = os.environ.get("PYTEST_CURRENT_TEST")
    if current_test:
        node_id = current_test.rsplit(" (", 1)[0]
        return f"MEMO_MODE=record python -m pytest {shlex.quote(node_id)}"
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    return "MEMO_MODE=record " + shlex.join(["python", *argv[1:]])


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"


def _clip(text: str, limit: int = 40) -> str:
    lines = text.splitlines()
    if len(lines) <= limit:
        return text
    return "\n".join([*lines[:limit], f"… ({len(lines) - limit} more lines)"])


def _when(entry: Entry) -> str:
    return timestamp(entry.recorded_at) if entry.recorded_at else "?"

