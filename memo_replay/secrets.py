"""Secret scanning: well-known token shapes never reach a store.

Every entry is scanned before it is written — the argument preview, the payload (decoded when it
is binary, so base64 hides nothing), a recorded exception's text and the normalized source — and
a match refuses the write with :class:`~memo_replay.errors.SecretDetected`, naming the function,
the field and the fixes. ``[tool.memo_replay] secret_patterns`` adds patterns;
``allow_secrets`` lists patterns for strings that look like secrets but are not (test fixtures);
a pattern must match a whole secret-shaped token, and allows that token only.
``memo-replay scan`` runs the same scanner over an existing store.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memo_replay.store.entry import Payload

DEFAULT_PATTERNS: Mapping[str, str] = {
    "an OpenAI/Anthropic-style API key": r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}",
    "an AWS access key id": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "a GitHub token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
    "a bearer token": r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*",
    "a private key block": r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----",
    "a Slack token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
}

_NEEDLES: Mapping[str, tuple[str, ...]] = {
    # Literal text every match of a default pattern contains (lowercase: checked against the
    # lowercased text), so a megabyte of payload is searched with `in`, not six regexes.
    "an OpenAI/Anthropic-style API key": ("sk-",),
    "an AWS access key id": ("akia", "asia"),
    "a GitHub token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "a bearer token": ("bearer",),
    "a private key block": ("private key-----",),
    "a Slack token": ("xox",),
}


@dataclass(frozen=True)
class Leak:
    """A secret-shaped string in one field of an entry (``excerpt`` is masked)."""

    field: str
    kind: str
    excerpt: str


class Scanner:
    """The default patterns plus a project's own, minus its allow-list."""

    def __init__(self, extra: Sequence[str] = (), allow: Sequence[str] = ()) -> None:
        self._patterns = [(kind, re.compile(p), _NEEDLES[kind])
                          for kind, p in DEFAULT_PATTERNS.items()]
        self._patterns += [(f"a match of secret_patterns {p!r}", re.compile(p), ())
                           for p in extra]
        self._allow = [re.compile(p) for p in allow]

    def scan_text(self, text: str, field: str) -> list[Leak]:
        leaks = []
        lowered = text.lower()
        for kind, pattern, needles in self._patterns:
            if needles and not any(needle in lowered for needle in needles):
                continue
            for match in pattern.finditer(text):
                found = match.group(0)
                if not self.allowed(found):
                    leaks.append(Leak(field, kind, found[:6] + "…"))
        return leaks

    def allowed(self, token: str) -> bool:
        """Whether one secret-shaped token is on the allow-list: an ``allow_secrets`` pattern
        must match the whole token. Never the field around it (a field holding an allowed
        fixture *and* a real key is refused), and never just part of the token: the token
        patterns run through ``-`` and ``_``, so a fixture joined to a real key
        (``sk-test-AAAA-sk-…``) is one token that a pattern for the fixture alone does not
        cover."""
        return any(allowed.fullmatch(token) for allowed in self._allow)

    def scan(self, arguments: Mapping[str, Any], payload: Payload, source: str) -> list[Leak]:
        """Every leak in what a recording stores, field by field: the argument preview, the
        payload (also one stored in a payload file) and the function's normalized source."""
        leaks: list[Leak] = []
        for field, text in _fields(arguments, payload, source):
            leaks += self.scan_text(text, field)
        return leaks


_WINDOW = 1 << 20
_OVERLAP = 4096
_ASCII = bytes(range(128)) + bytes(128)


@functools.lru_cache(maxsize=32)
def scanner(extra: tuple[str, ...] = (), allow: tuple[str, ...] = ()) -> Scanner:
    """A compiled :class:`Scanner` for a project's settings (compiled once per process)."""
    return Scanner(extra, allow)


def _fields(arguments: Mapping[str, Any], payload: Payload, source: str
            ) -> Iterator[tuple[str, str]]:
    for name, value in arguments.items():
        yield f"argument `{name}`", json.dumps(value, ensure_ascii=False)
    label = "the recorded exception" if payload.serializer == "exception" else "the result"
    data = payload.data
    if isinstance(data, bytes) and len(data) > _WINDOW:
        # A large binary payload (audio chunks, an array) is scanned a window at a time, so the
        # scan never holds its text whole (as text, 50 MB of random bytes is ~200 MB); windows
        # overlap by more than any secret is long, so none is cut in two unseen.
        for start in range(0, len(data), _WINDOW):
            # Bytes beyond ASCII become NUL rather than U+FFFD: to the patterns both are a
            # non-word character that no token holds, and the text stays one byte a character.
            yield label, data[start:start + _WINDOW + _OVERLAP].translate(_ASCII).decode("ascii")
    else:
        yield label, payload.as_text()
    if source:
        yield "the function's source", source
