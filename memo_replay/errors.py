"""Every exception memo_replay raises.

All derive from :class:`MemoReplayError`; where the meaning matches a builtin they subclass it
too (an invalid mode is a ``ValueError``, a missing declared file a ``FileNotFoundError``), so
callers can catch either. Each message says what happened, to which function, argument, file or
entry, and what to do about it.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memo_replay.explain import Explanation


class MemoReplayError(Exception):
    """Base class of every memo_replay error."""


class InvalidMode(MemoReplayError, ValueError):
    """A mode value (``MEMO_MODE``, ``mode=``, config) is not one of the valid modes."""


class InvalidOption(MemoReplayError, ValueError):
    """An option given to ``@recorded(...)`` is invalid (unknown parameter, bad pattern, …)."""


class ConfigError(MemoReplayError, ValueError):
    """``[tool.memo_replay]`` in ``pyproject.toml`` holds an unknown key or an invalid value."""


class ReplayMiss(MemoReplayError, LookupError):
    """A call has no matching recording and the mode forbids calling the function.

    ``explanation`` holds the structured comparison with the closest recording.
    """

    def __init__(self, message: str, *, function: str, key: str,
                 explanation: Explanation | None = None) -> None:
        super().__init__(message)
        self.function = function
        self.key = key
        self.explanation = explanation


class ExpiredRecording(ReplayMiss):
    """Strict replay found a recording older than its ``ttl`` and the project says to fail
    (``[tool.memo_replay] replay_expired = "fail"``)."""


class LockTimeout(MemoReplayError, TimeoutError):
    """A call waited longer than ``lock_timeout`` for another process recording the same key."""


class SecretDetected(MemoReplayError, ValueError):
    """A recording would store something shaped like a secret; nothing was written."""


class UnhashableArgument(MemoReplayError, TypeError):
    """An argument (or constant, or closure value) cannot be encoded into a stable key."""

    def __init__(self, message: str, *, function: str, parameter: str, type_name: str) -> None:
        super().__init__(message)
        self.function = function
        self.parameter = parameter
        self.type_name = type_name


class MissingDeclaredFile(MemoReplayError, FileNotFoundError):
    """A ``files=`` pattern of a recorded function matched no file."""


class SerializationError(MemoReplayError, TypeError):
    """A result cannot be serialized (or deserialized) faithfully; nothing was written."""


class InvalidPayload(SerializationError, ValueError):
    """A stored payload or type name that no serializer ever wrote: refused before anything is
    allocated, imported or built from it (a ``.npy`` header declaring more data than there is,
    an ``.npz`` archive, a ``result.type`` naming a function). The replayer reports it as a
    :class:`~memo_replay.errors.CorruptEntry` naming the entry."""


class CorruptEntry(MemoReplayError):
    """An entry file is truncated, edited, unreadable or from an unknown format version.

    A corrupt entry is never replayed.
    """

    def __init__(self, location: str | os.PathLike[str], reason: str) -> None:
        self.location = os.fspath(location)
        """Where the entry is: a path, or a URL for a remote store."""
        self.path = Path(self.location)
        self.reason = reason
        super().__init__(
            f"corrupt recording {self.location}: {reason}. It will not be replayed. Re-record it "
            f"with MEMO_MODE=record (or delete the file); `memo-replay verify` lists every damaged "
            f"entry."
        )


class UnsupportedFormat(CorruptEntry):
    """An entry was written by a newer memo_replay whose format this version cannot read."""

    def __init__(self, location: str | os.PathLike[str], found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        self.location = os.fspath(location)
        self.path = Path(self.location)
        MemoReplayError.__init__(
            self,
            f"recording {self.location} uses entry format {found}, newer than this memo_replay "
            f"reads (format {supported}); it was not read. Upgrade memo_replay "
            f"(pip install -U memo-replay) to replay it.",
        )
        self.reason = f"entry format {found} is newer than supported format {supported}"


class StoreError(MemoReplayError, OSError):
    """The store directory cannot be used (it is a file, it is not writable, …)."""


class MemoReplayWarning(UserWarning):
    """Something worth knowing that does not stop the call (a corrupt entry re-recorded, a
    function without source fingerprinted by bytecode, an unusable cache)."""


def warn(message: str) -> None:
    """Issue a :class:`MemoReplayWarning` attributed to the first caller outside memo_replay,
    however deep inside the library it is raised (so it names the user's line, and Python's
    once-per-location filter works per call site)."""
    level, frame = 2, sys._getframe(1)
    while frame.f_back is not None and \
            str(frame.f_globals.get("__name__", "")).partition(".")[0] == "memo_replay":
        frame, level = frame.f_back, level + 1
    warnings.warn(message, MemoReplayWarning, stacklevel=level)
