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
    """One component that differs between a call and a recording: an item of
    [`Explanation.differences`][memo_replay.Explanation.differences]."""

    component: str
    """Which part of the key differs: `"source"`, `"helper"`, `"constant"`, `"definition"`,
    `"dependency"`, `"version"`, `"code"`, `"argument"`, `"file"`, `"serializer"`, or, for a
    recording whose observed dependencies changed, `"observed code"` / `"observed file"`."""
    name: str
    """What differs within it: the parameter, file, helper or constant name (the function's
    id for its own source)."""
    message: str
    """One line for people: ``argument `prompt` differs``, ``file `router.dy` changed``."""
    detail: str = ""
    """More lines, when there are: the unified diff of the normalized source, the recorded
    and current values of an argument (empty otherwise)."""


@dataclass(frozen=True)
class Explanation:
    """Whether a call would replay, and if not, what differs from the closest recording.

    [`.memo.explain(...)`][memo_replay.Memo.explain] returns one, and a
    [`ReplayMiss`][memo_replay.ReplayMiss] carries one in `.explanation`. Its `str()` is the
    message a miss shows: each difference on a line, then the command that re-records.

    ```pycon
    >>> from memo_replay import recorded
    >>> @recorded
    ... def greet(name: str) -> str:
    ...     return f"hello {name}"
    >>> greet("Ada")
    'hello Ada'
    >>> explanation = greet.memo.explain("Bob")
    >>> explanation.matched, explanation.recordings
    (False, 1)
    >>> [(d.component, d.name) for d in explanation.differences]
    [('argument', 'name')]
    >>> print(explanation.differences[0].message)
    argument `name` differs: recorded 'Ada', now 'Bob'
    ```
    """

    function: str
    """The function's id, `module.qualname`."""
    key: str
    """The call's key."""
    matched: bool
    """True when a recording has this call's key and serves it: the call replays. (False
    too when that recording's observed dependencies changed: `differences` lists them.)"""
    recordings: int
    """How many recordings of the function the store holds."""
    closest: Entry | None
    """The recording with the fewest differences (the newest of equals): an
    [`Entry`][memo_replay.Entry]; None when the function has none."""
    differences: tuple[Difference, ...]
    """What differs between the call and `closest`, component by component (each a
    [`Difference`][memo_replay.Difference]); empty when it matched."""
    command: str
    """The command that re-records: the current pytest test, or the running script, with
    `MEMO_MODE=record`."""

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


def compare(call: CallKey, preview: Mapping[str, Any], entry: Entry, *,
            live: bool = True) -> list[Difference]:
    """Every component in which ``call`` differs from ``entry``: the code, then each argument,
    then each named section (helpers, constants, deps, files) the way vcrpy runs matchers.
    ``live``: ``call`` is being made in this process (a constant's value now can be read)."""
    recorded, current = entry.components, call.components
    found = [_constant_detail(d, recorded, current, live) if d.component == "constant" else d
             for d in _code_differences(call.function, current, recorded)]
    for name in sorted(set(recorded.arguments) | set(current.arguments)):
        if name not in current.arguments:
            found.append(Difference("argument", name, f"argument `{name}` was recorded but is "
                                    f"not part of the call any more"))
        elif name not in recorded.arguments:
            found.append(Difference("argument", name, f"argument `{name}` is new"))
        elif recorded.arguments[name] != current.arguments[name]:
            found.append(_argument_difference(name, entry, preview, current))
    found.extend(_section_differences(("files",), recorded, current))
    if recorded.serializer != current.serializer:
        found.append(Difference("serializer", "serializer",
                                f"serializer option changed from {recorded.serializer!r}"
                                f" to {current.serializer!r}"))
    return found


def _argument_difference(name: str, entry: Entry, preview: Mapping[str, Any],
                         current: Components) -> Difference:
    """How one argument differs: its previews, and its types when they differ — all a preview
    cannot show (``Path("a.dy")`` and ``"a.dy"`` preview alike; ``2 == 2.0``)."""
    was, now = entry.arguments.get(name, "?"), preview.get(name, "?")
    same_preview = was == now and type(was) is type(now)
    was_type = entry.components.argument_types.get(name) or _json_type(was)
    now_type = (getattr(preview, "types", None) or current.argument_types).get(name) \
        or _json_type(now)
    if was_type is not None and now_type is not None and was_type != now_type:
        if same_preview:
            message = (f"argument `{name}`: recorded a `{was_type}`, now a `{now_type}` (same "
                       f"preview {short(now)})")
        else:
            then, current_ = _pair(was, now)
            message = (f"argument `{name}` differs: recorded {then} (a `{was_type}`), "
                       f"now {current_} (a `{now_type}`)")
    elif not same_preview:
        then, current_ = _pair(was, now)
        message = f"argument `{name}` differs: recorded {then}, now {current_}"
    elif was_type is None and now_type is not None:
        message = (f"argument `{name}` differs beyond what the preview shows ({short(now)}, "
                   f"now a `{now_type}`; the recording predates stored argument types, so "
                   f"its type is not known)")
    else:
        message = f"argument `{name}` differs (beyond what the preview shows)"
    return Difference("argument", name, message)


def _json_type(value: object) -> str | None:
    """The type a JSON preview value proves: JSON keeps ``2`` and ``2.0`` apart (a string
    preview proves nothing: paths, dates, enums and strings all preview as strings)."""
    if type(value) in (bool, int, float):
        return type(value).__name__
    return None


def compare_entries(first: Entry, second: Entry) -> list[Difference]:
    """What changed from recording ``first`` to recording ``second`` (``memo-replay diff``);
    "recorded" in the messages is ``first``, "now" is ``second``."""
    found = [] if first.function == second.function else [Difference(
        "function", "function", f"function `{first.function}` vs `{second.function}`")]
    call = CallKey(second.function, second.key, second.components)
    return found + compare(call, second.arguments, first, live=False)


def _constant_detail(difference: Difference, recorded: Components, current: Components,
                     live: bool) -> Difference:
    """A constant difference with where the constant is defined, its value then and now
    (bounded previews), and, for a mutable container, the FAQ on mutable module state."""
    from memo_replay import constants

    name = difference.name
    defined = constants.defined_in(name) if live else None
    message = difference.message
    if defined is not None:
        message = message.replace(f"`{name}`", f"`{name}` (defined in `{defined}`)", 1)
    if name not in recorded.code.constants or name not in current.code.constants:
        return Difference(difference.component, name, message)
    exists, value = constants.current_value(name) if live else (False, None)
    # Shown in terminals and CI logs: previewed like the stored one (bounded, secrets hidden).
    now = constants.previews([name], None).get(name, _UNKNOWN) if live \
        else current.constant_values.get(name, _UNKNOWN)
    was = recorded.constant_values.get(name, _UNKNOWN)
    if was is not _UNKNOWN and now is not _UNKNOWN:
        then, current_ = _pair(was, now)
        message += f": recorded {then}, now {current_}"
    elif now is not _UNKNOWN:
        message += f": now {_shown(now)} (the recording predates stored constant values)"
    detail = difference.detail
    if exists and constants.is_mutable(value):
        detail = (f"`{name}` is a mutable {type(value).__name__}: if the program changes it "
                  f"while it runs, the calls after the change miss. See "
                  f"{constants.MUTABLE_STATE_FAQ}.")
    return Difference(difference.component, name, message, detail)


_UNKNOWN: Any = object()


def _shown(preview: Any) -> str:
    from memo_replay.constants import HIDDEN

    return HIDDEN if preview == HIDDEN else short(preview)


def _pair(was: Any, now: Any, context: int = 20) -> tuple[str, str]:
    """Two previews, bounded; two long strings that share a beginning are shown from a little
    before their first difference (a reworded prompt template differs at its end, past what
    a bounded preview shows from the start)."""
    if isinstance(was, str) and isinstance(now, str) and was != now \
            and was != _hidden() and now != _hidden():
        same = next((i for i, (a, b) in enumerate(zip(was, now, strict=False)) if a != b),
                    min(len(was), len(now)))  # the length of their common beginning
        start = same - context if same > context * 2 else 0
        if start:
            return "…" + short(was[start:]), "…" + short(now[start:])
    return _shown(was), _shown(now)


def _hidden() -> str:
    from memo_replay.constants import HIDDEN

    return HIDDEN


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
