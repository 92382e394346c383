"""The key of a call: function identity, code fingerprint, arguments, declared files.

A recording is addressed by an ``xxh3_128`` hex digest over a versioned, type-tagged framing of
these components. Each component is kept apart (per argument, per file, per helper) so that a
miss can be explained component by component.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from xxhash import xxh3_128

if TYPE_CHECKING:
    from memo_replay.keys.code import CodeFingerprint
    from memo_replay.keys.components import Components

KEY_FRAMING_VERSION = 2


class CallKey(NamedTuple):
    """Everything that addresses one call's recording: the key and what it was composed of."""

    function: str
    key: str
    components: Components


@functools.lru_cache(maxsize=1024)
def _prefix(function: str, code_hash: str, serializer: str | None) -> Any:
    h = xxh3_128(b"memo-replay-key\x00%d\x00" % KEY_FRAMING_VERSION)
    h.update(_framed(function) + _framed(code_hash) + _framed(serializer or ""))
    return h


def _framed(text: str) -> bytes:
    """``<length>:<text>``: every variable-length field of the key is self-delimiting."""
    data = text.encode("utf-8", "surrogatepass")
    return b"%d:%s" % (len(data), data)


def compose(function: str, code: CodeFingerprint, arguments: Mapping[str, str],
            files: Mapping[str, str], serializer: str | None) -> CallKey:
    """Combine the components into a :class:`CallKey`."""
    h = _prefix(function, code.hash, serializer).copy()
    # One update of the concatenation hashes the same bytes as one update per item. Names are
    # length-prefixed (a **kwargs name or a file name may hold anything); hashes are fixed-size.
    material = "".join([f"a{len(name)}:{name}{arguments[name]}" for name in sorted(arguments)])
    if files:
        material += "".join([f"f{len(name)}:{name}{files[name]}" for name in sorted(files)])
    h.update(material.encode("utf-8", "surrogatepass"))
    from memo_replay.keys.components import Components

    return CallKey(function, h.hexdigest(), Components(code, arguments, files, serializer))
