"""The key of a call: function identity, code fingerprint, arguments, declared files.

A recording is addressed by an ``xxh3_128`` hex digest over a versioned, type-tagged framing of
these components. Each component is kept apart (per argument, per file, per helper) so that a
miss can be explained component by component.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from xxhash import xxh3_128

from memo_replay.keys.code import CodeFingerprint

KEY_FRAMING_VERSION = 1


@dataclass(frozen=True)
class CallKey:
    """Everything that addresses one call's recording."""

    function: str
    key: str
    code: CodeFingerprint
    arguments: Mapping[str, str]
    files: Mapping[str, str]
    serializer: str | None


def compose(function: str, code: CodeFingerprint, arguments: Mapping[str, str],
            files: Mapping[str, str], serializer: str | None) -> CallKey:
    """Combine the components into a :class:`CallKey`."""
    h = xxh3_128(b"memo-replay-key\x00%d\x00" % KEY_FRAMING_VERSION)
    h.update(b"%s\x00%s\x00%s\x00" % (function.encode(), code.hash.encode(),
                                        (serializer or "").encode()))
    for tag, mapping in ((b"a", arguments), (b"f", files)):
        for name in sorted(mapping):
            h.update(b"%s%s=%s\x00" % (tag, name.encode("utf-8", "surrogatepass"),
                                        mapping[name].encode()))
    return CallKey(function, h.hexdigest(), code, arguments, files, serializer)
