"""Why a call does not replay: a component-by-component comparison with the closest recording.

The closest recording is the one of the same function with the fewest differing components
(source, each helper, constant and dependency, each argument, each file). The explanation names
each difference — "file `examples/router.dy` changed", "argument `prompt` differs" — shows a
unified diff of the normalized source when the function's own code changed, and ends with the
command that re-records.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from memo_replay.keys import CallKey
from memo_replay.keys.components import SECTIONS, Components
from memo_replay.keys.observed import Change
from memo_replay.store import Entry
from memo_replay.text import rerecord_command, short, when

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
        if self.closest.key == self.key:  # its observed dependencies changed
            lines = [f"the recording of `{self.function}` for this call (key {self.key}, "
                     f"recorded {when(self.closest.recorded_at, '?')}) no longer serves: what "
                     f"ran or was read during the recording changed:"]
            lines += [f"  - {difference.message}" for difference in self.differences]
            lines.append(f"To re-record: {self.command}")
            return "\n".join(lines)
        lines = [
            f"no recording of `{self.function}` matches this call (key {self.key}; "
            f"{self.recordings} recording{'s' if self.recordings != 1 else ''} of this function).",
            f"The closest recording, {self.closest.path.name} (recorded "
            f"{when(self.closest.recorded_at, '?')}), differs in:",
        ]
        for difference in self.differences:
            lines.append(f"  - {difference.message}")
            lines.extend(f"      {line}" for line in difference.detail.splitlines())
        lines.append(f"To re-record: {self.command}")
        return "\n".join(lines)


def explain(call: CallKey, preview: Mapping[str, Any], entries: Iterable[Entry],
            changed: Callable[[Entry], Sequence[Change]] | None = None) -> Explanation:
    """Compare ``call`` with the recorded ``entries`` of its function; ``changed(entry)`` says
    which observed dependencies of the entry with the call's key changed (if any: it does not
    serve, and they are the differences)."""
    candidates = list(entries)
    same = next((entry for entry in candidates if entry.key == call.key), None)
    if same is not None and same.observed is not None and changed is not None:
        changes = changed(same)
        if changes:
            return Explanation(
                function=call.function, key=call.key, matched=False,
                recordings=len(candidates), closest=same,
                differences=tuple(Difference(f"observed {c.kind}", c.name, c.message)
                                  for c in changes),
                command=rerecord_command())
    matched = same is not None
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
    """Every component in which ``call`` differs from ``entry``: the code, then each argument,
    then each named section (helpers, constants, deps, files) the way vcrpy runs matchers."""
    recorded, current = entry.components, call.components
    found = _code_differences(call.function, current, recorded)
    for name in sorted(set(recorded.arguments) | set(current.arguments)):
        if name not in current.arguments:
            found.append(Difference("argument", name, f"argument `{name}` was recorded but is "
                                    f"not part of the call any more"))
        elif name not in recorded.arguments:
            found.append(Difference("argument", name, f"argument `{name}` is new"))
        elif recorded.arguments[name] != current.arguments[name]:
            was, now = entry.arguments.get(name, "?"), preview.get(name, "?")
            shown = (f": recorded {short(was)}, now {short(now)}" if was != now
                     else " (beyond what the preview shows)")
            found.append(Difference("argument", name, f"argument `{name}` differs{shown}"))
    found.extend(_section_differences(("files",), recorded, current))
    if recorded.serializer != current.serializer:
        found.append(Difference("serializer", "serializer",
                                f"serializer option changed from {recorded.serializer!r}"
                                f" to {current.serializer!r}"))
    return found


def compare_entries(first: Entry, second: Entry) -> list[Difference]:
    """What changed from recording ``first`` to recording ``second`` (``memo-replay diff``);
    "recorded" in the messages is ``first``, "now" is ``second``."""
    found = [] if first.function == second.function else [Difference(
        "function", "function", f"function `{first.function}` vs `{second.function}`")]
    call = CallKey(second.function, second.key, second.components)
    return found + compare(call, second.arguments, first)


def _code_differences(function: str, current: Components, recorded: Components
                      ) -> list[Difference]:
    code, was = current.code, recorded.code
    if was.hash == code.hash:
        return []
    if was.framing != code.framing:
        # Every other difference would be noise: what goes into a key changed, not the code.
        return [Difference("code", "framing", f"recorded by an older memo_replay (key format "
                                              f"{was.framing}, now {code.framing}): what goes "
                                              f"into a key changed, not your code; re-record it "
                                              f"once")]
    found: list[Difference] = []
    if was.kind != code.kind:
        found.append(Difference("code", "kind", f"the code of `{function}` is now "
                                f"fingerprinted by {code.kind} (was {was.kind})"))
    if was.source_hash != code.source_hash:
        diff = "\n".join(difflib.unified_diff(
            was.source.splitlines(), code.source.splitlines(),
            "recorded", "current", lineterm="", n=2))
        found.append(Difference("source", function, f"source of `{function}` changed",
                                _clip(diff)))
    found.extend(_section_differences(_CODE_SECTIONS, recorded, current))
    if was.version != code.version:
        found.append(Difference("version", "version", f"version= changed from "
                                f"{was.version!r} to {code.version!r}"))
    if not found:
        found.append(Difference("code", function, f"the code fingerprint of "
                                f"`{function}` changed (a newer key framing?)"))
    return found


_CODE_SECTIONS = tuple(section.field for section in SECTIONS if section.field != "files")


def _section_differences(fields: tuple[str, ...], recorded: Components, current: Components
                         ) -> list[Difference]:
    found = []
    was, now = recorded.sections(), current.sections()
    for section in SECTIONS:
        if section.field not in fields:
            continue
        before, after = was[section.field], now[section.field]
        for name in sorted(set(before) | set(after)):
            template = section.gone if name not in after else section.new \
                if name not in before else section.changed if before[name] != after[name] \
                else None
            if template is not None:
                found.append(Difference(section.label, name, template.format(name)))
    return found


def _clip(text: str, limit: int = 40) -> str:
    lines = text.splitlines()
    if len(lines) <= limit:
        return text
    return "\n".join([*lines[:limit], f"… ({len(lines) - limit} more lines)"])
