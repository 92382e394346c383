"""``Encoder(ordered=True)``: a dict's insertion order counts (for constants, whose iteration
order can change what the code does); the default encoding, for arguments, ignores it."""

from __future__ import annotations

from memo_replay.keys.encoding import Encoder

FORWARD = {"temperature": 0.2, "top_p": 0.9}
BACKWARD = {"top_p": 0.9, "temperature": 0.2}


def test_default_encoding_ignores_insertion_order() -> None:
    encoder = Encoder()
    assert encoder.encode(FORWARD) == encoder.encode(BACKWARD)
    assert encoder.encode([FORWARD]) == encoder.encode([BACKWARD])


def test_ordered_encoding_counts_insertion_order_also_nested() -> None:
    encoder = Encoder(ordered=True)
    assert encoder.encode(FORWARD) != encoder.encode(BACKWARD)
    assert encoder.encode([FORWARD]) != encoder.encode([BACKWARD])
    assert encoder.encode({"k": FORWARD}) != encoder.encode({"k": BACKWARD})
    assert encoder.encode(FORWARD) == encoder.encode(dict(FORWARD))


def test_ordered_and_sorted_encodings_never_collide() -> None:
    """Even a dict already in sorted order has a different encoding in each mode: a constant
    and an argument are never confused, and the ordered tag is its own."""
    ordered, plain = Encoder(ordered=True), Encoder()
    assert ordered.encode(FORWARD) != plain.encode(FORWARD)
    assert ordered.encode({}) != plain.encode({})
    assert ordered.encode([1, "a"]) == plain.encode([1, "a"])  # only dicts differ


def test_sets_stay_sorted_in_ordered_mode() -> None:
    ordered = Encoder(ordered=True)
    assert ordered.encode({"b", "a"}) == ordered.encode({"a", "b"})
