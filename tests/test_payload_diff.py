"""The structural diff of two payloads (``memo-replay diff`` and ``changes``): checked against
an independent reference — applying the reported changes to the old value must give the new
one, type for type — and pinned on the shapes reviewers read."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from xxhash import xxh3_128_hexdigest

from memo_replay.payload_diff import Change, diff_payloads, diff_values, format_path
from memo_replay.store.entry import Payload

# Few keys and scalars, so that two drawn values overlap often (shared fields, equal items).
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 2),
                    st.sampled_from([0.0, 1.0, 2.5, -1.0]), st.sampled_from(["", "a", "b", "é"]))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["a", "b", "c", "d e"]), inner,
                                            max_size=4)),
    max_leaves=20)


def strict(value: Any) -> str:
    """JSON text: tells ``1``, ``1.0`` and ``true`` apart, unlike ``==``."""
    return json.dumps(value, sort_keys=True)


def apply(value: Any, changes: list[Change]) -> Any:
    """The reference: set every added or changed path, then delete the removed ones (deepest
    and highest indices first, so earlier deletions do not shift later ones)."""
    root = [copy.deepcopy(value)]
    for change in changes:
        if change.kind != "removed":
            *parents, last = (0, *change.path)
            target: Any = root
            for part in parents:
                target = target[part]
            if isinstance(target, list) and last == len(target):
                target.append(copy.deepcopy(change.after))
            else:
                target[last] = copy.deepcopy(change.after)
    for change in sorted((c for c in changes if c.kind == "removed"),
                         key=lambda c: [str(p) if isinstance(p, str) else p for p in c.path],
                         reverse=True):
        *parents, last = (0, *change.path)
        target = root
        for part in parents:
            target = target[part]
        del target[last]
    return root[0]


@settings(max_examples=400, deadline=None)
@given(values, values)
def test_applying_the_changes_to_the_old_value_gives_the_new_one(old: Any, new: Any) -> None:
    changes = list(diff_values(old, new))
    assert strict(apply(old, changes)) == strict(new)
    assert (changes == []) == (strict(old) == strict(new))


@settings(max_examples=200, deadline=None)
@given(values, values)
def test_every_change_names_a_real_path_with_the_values_found_there(old: Any, new: Any) -> None:
    def at(value: Any, path: tuple[str | int, ...]) -> Any:
        for part in path:
            value = value[part]
        return value

    for change in diff_values(old, new):
        if change.kind != "added":
            assert strict(at(old, change.path)) == strict(change.before)
        if change.kind != "removed":
            assert strict(at(new, change.path)) == strict(change.after)


def json_payload(value: Any, type_: str | None = "proj:IR") -> Payload:
    data = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return Payload("pydantic", 1, type_, "json", data, xxh3_128_hexdigest(data.encode()))


def test_field_paths_and_values_as_a_reviewer_reads_them() -> None:
    old = {"states": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "n": 1, "odd key": True}
    new = {"states": [{"name": "a"}, {"name": "b"}, {"name": "x"}], "n": 1.0, "extra": None}
    diff = diff_payloads(json_payload(old), json_payload(new))
    assert diff.mode == "fields"
    assert diff.lines() == [
        "extra: added null",
        "n: 1 → 1.0",
        '["odd key"]: removed (was true)',
        'states[2].name: "c" → "x"',
    ]
    assert diff.total == 4


def test_same_payload_and_type_changes() -> None:
    same = diff_payloads(json_payload([1, 2]), json_payload([1, 2]))
    assert same.same
    assert same.lines() == ["the same result"]
    assert [c.line() for c in diff_values(1, True)] == ["(root): 1 → true"]
    assert [c.line() for c in diff_values({"a": [1]}, {"a": {"0": 1}})] == [
        'a: [1] → {"0": 1}']


def test_the_diff_is_bounded_in_count_and_width() -> None:
    old = {"items": list(range(500)), "text": "x" * 10_000}
    new = {"items": [i + 1 for i in range(500)], "text": "y" * 10_000}
    diff = diff_payloads(json_payload(old), json_payload(new), limit=5)
    assert diff.total == 501
    lines = diff.lines()
    assert len(lines) == 6
    assert lines[-1] == "… and 496 more differences"
    assert max(len(line) for line in lines) < 150
    assert len(json.dumps(diff.document())) < 5_000


def test_binary_payloads_by_size_and_checksum() -> None:
    def binary(data: bytes) -> Payload:
        return Payload("bytes", 1, None, "binary", data, xxh3_128_hexdigest(data))

    old, new = binary(b"\x00" * 10), binary(b"\x01" * 12)
    diff = diff_payloads(old, new)
    assert diff.mode == "summary"
    assert diff.lines() == [f"before: 10 bytes (binary, bytes), checksum {old.checksum}",
                            f"after:  12 bytes (binary, bytes), checksum {new.checksum}"]


def test_a_serializer_change_is_named() -> None:
    diff = diff_payloads(json_payload({"a": 1}, "proj:Old"), json_payload({"a": 2}, "proj:New"))
    assert diff.lines()[0] == "serializer pydantic (proj:Old) → pydantic (proj:New)"
    assert diff.lines()[1] == "a: 1 → 2"


def test_text_payloads_as_a_clipped_unified_diff() -> None:
    def text(value: str) -> Payload:
        return Payload("text", 1, None, "text", value, xxh3_128_hexdigest(value.encode()))

    diff = diff_payloads(text("one\ntwo\nthree"), text("one\n2\nthree"))
    assert diff.mode == "text"
    assert "-two" in diff.lines()
    assert "+2" in diff.lines()
    long = diff_payloads(text("\n".join(map(str, range(200)))), text(""), text_lines=10)
    assert long.lines()[-1] == "… (193 more lines)"  # ---, +++, @@ and 200 removals


def test_a_payload_nested_too_deeply_is_summarized_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    payload = Payload("json", 1, None, "json", deep, xxh3_128_hexdigest(deep.encode()))
    diff = diff_payloads(payload, json_payload([]))
    assert diff.mode == "summary"
    assert diff.note == "nested too deeply to compare field by field"


def test_format_path() -> None:
    assert format_path(()) == "(root)"
    assert format_path(("states", 2, "name")) == "states[2].name"
    assert format_path((0, "a b", "x")) == '[0]["a b"].x'
