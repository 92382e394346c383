"""Building one function's call keys: bind the arguments, hash them and the declared files, and
compose them with the code fingerprint.

A :class:`KeyBuilder` remembers the keys of its function's recent argument sets (by an identity
of the arguments, see :meth:`~memo_replay.keys.arguments.ArgumentSpec.identity`): a repeat call
with the same code and arguments skips hashing each argument apart and composing them. Never
with declared files, whose content can change between two calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from memo_replay.keys import CallKey, compose
from memo_replay.keys.arguments import ArgumentSpec
from memo_replay.keys.files import DeclaredFiles

if TYPE_CHECKING:
    from memo_replay.keys.code import CodeFingerprint

REMEMBERED_KEYS = 4096
"""How many argument sets' keys a function remembers (per process)."""


class KeyBuilder:
    """The keys of one recorded function's calls."""

    def __init__(self, arguments: ArgumentSpec, files: DeclaredFiles,
                 code: Callable[[], CodeFingerprint], serializer: str | None) -> None:
        self.arguments = arguments
        self.files = files
        self._code = code
        self._serializer = serializer
        self._remembered: dict[bytes, CallKey] = {}
        # Bound once: these run on every call.
        self.bind: Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]] = arguments.bind
        """The arguments bound to the signature, defaults applied."""
        self._identity = arguments.identity
        self._fresh_each_call = bool(files.patterns)

    def preview(self, bound: dict[str, Any]) -> Mapping[str, Any]:
        """The bounded, JSON-ready preview of the arguments that an entry keeps, with their
        types (only computed when recording or explaining a miss, never on a hit)."""
        from memo_replay.keys.components import ArgumentPreview, type_label

        shown = self.arguments.preview(bound)
        return ArgumentPreview(shown, {name: type_label(bound[name]) for name in shown})

    def key(self, bound: dict[str, Any]) -> CallKey:
        """The key of a call with these (bound) arguments."""
        if self._fresh_each_call:  # declared files can change between calls: compose anew
            return self.compose(bound)
        digest = self._identity(bound)
        call = self._remembered.get(digest)
        if call is None:
            call = self.compose(bound)
            if len(self._remembered) >= REMEMBERED_KEYS:
                self._remembered.clear()
            self._remembered[digest] = call
        return call

    def compose(self, bound: dict[str, Any]) -> CallKey:
        """The key of a call, composed afresh from its components (nothing remembered)."""
        return compose(self.arguments.function_id, self._code(), self.arguments.hashes(bound),
                       self.files.hashes(bound), self._serializer)

    @property
    def remembered(self) -> int:
        """How many argument sets' keys are remembered now."""
        return len(self._remembered)


__all__ = ["REMEMBERED_KEYS", "KeyBuilder"]
