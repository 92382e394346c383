"""Every exception memo_replay raises.

All derive from `MemoReplayError`; where the meaning matches a builtin they subclass it
too (an invalid mode is a ``ValueError``, a missing declared file a ``FileNotFoundError``), so
callers can catch either. Each message says what happened, to which function, argument, file or
entry, and what to do about it.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memo_replay.explain import Explanation


class MemoReplayError(Exception):
    """Base class of every memo_replay error: `except MemoReplayError` catches them all."""


class InvalidMode(MemoReplayError, ValueError):
    """A mode value (``MEMO_MODE``, ``mode=``, config) is not one of the valid modes."""


class InvalidOption(MemoReplayError, ValueError):
    """An option given to ``@recorded(...)`` is invalid (unknown parameter, bad pattern, …)."""


class ConfigError(MemoReplayError, ValueError):
    """``[tool.memo_replay]`` in ``pyproject.toml`` holds an unknown key or an invalid value."""


class ReplayMiss(MemoReplayError, LookupError):
    """A call has no matching recording and the mode (`replay`) forbids calling the function.

    Its message says what differs from the closest recording and how to re-record;
    `explanation` holds the same comparison as data.

    ```pycon
    >>> import memo_replay
    >>> @memo_replay.recorded
    ... def add(a: int, b: int) -> int:
    ...     return a + b
    >>> with memo_replay.mode("replay"):
    ...     try:
    ...         add(1, 2)
    ...     except memo_replay.ReplayMiss as miss:
    ...         print(miss.function, miss.explanation.recordings)
    __main__.add 0
    ```
    """

    def __init__(self, message: str, *, function: str, key: str,
                 explanation: Explanation | None = None) -> None:
        super().__init__(message)
        self.function = function
        """The function's id, `module.qualname`."""
        self.key = key
        """The key of the call that missed."""
        self.explanation = explanation
        """The comparison with the function's recordings, an
        [`Explanation`][memo_replay.Explanation]; None when the call's own recording exists
        but cannot serve (it expired, another version of its serializer wrote it, or what it
        observed changed: the message says which)."""


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
        """The function's id, `module.qualname`."""
        self.parameter = parameter
        """The parameter (or constant, or closure variable) whose value cannot be encoded."""
        self.type_name = type_name
        """The type of that value."""


class StreamError(MemoReplayError, TypeError):
    """A recorded stream was driven in a way its replay could not reproduce (``send()`` of a
    value into a recorded generator: what was sent is not part of the key)."""


class MissingDeclaredFile(MemoReplayError, FileNotFoundError):
    """A ``files=`` pattern of a recorded function matched no file."""


class SerializationError(MemoReplayError, TypeError):
    """A result cannot be serialized (or deserialized) faithfully; nothing was written.

    When it is raised by a call that just ran, the call's return value is not lost:
    ``error.result`` holds it (``error.has_result`` is True), so an expensive answer can still
    be used, or saved by hand, while the function is fixed:

    ```python
    try:
        ir = translate(prompt)
    except SerializationError as error:
        ir = error.result
    ```
    """

    result: Any = None
    """The return value of the call that could not be recorded (None when there is none)."""
    has_result: bool = False
    """True when `result` holds a call's return value (the call ran, and only recording it
    failed)."""

    def attach(self, result: Any) -> None:
        """Keep ``result`` (what the recorded call returned) on the error."""
        self.result, self.has_result = result, True

    def __str__(self) -> str:
        text = super().__str__()
        if not self.has_result:
            return text
        return f"{text} The call's return value is kept in `error.result`."


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
        """`location` as a `pathlib.Path`."""
        self.reason = reason
        """What is wrong with it."""
        super().__init__(
            f"corrupt recording {self.location}: {reason}. It will not be replayed. Re-record it "
            f"with MEMO_MODE=record (or delete the file); `memo-replay verify` lists every damaged "
            f"entry."
        )


class UnsupportedFormat(CorruptEntry):
    """An entry was written by a newer memo_replay whose format this version cannot read."""

    def __init__(self, location: str | os.PathLike[str], found: int, supported: int) -> None:
        self.found = found
        """The entry's format version."""
        self.supported = supported
        """The newest format this memo_replay reads."""
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


class RemoteError(StoreError):
    """A remote store (``s3://bucket/prefix``) refused a request: a missing bucket, credentials
    that are absent, wrong or not allowed, an object that differs from what is being written.
    The message names the setting to fix (the bucket, ``AWS_ACCESS_KEY_ID``/``AWS_PROFILE``,
    ``AWS_ENDPOINT_URL``)."""


class RemoteUnavailable(RemoteError):
    """A remote store cannot be reached in time (connection refused, a timeout): nothing was
    read or written there; the local store is intact."""


class MoveError(MemoReplayError, ValueError):
    """``memo-replay mv OLD NEW`` cannot move recordings: ``OLD`` has none, or ``NEW`` is not
    a recorded function of the project that can be imported and fingerprinted."""


class GitError(MemoReplayError, RuntimeError):
    """``memo-replay changes`` cannot read what it compares from git (no repository, an
    unknown revision, no default branch to start from)."""


def hidden_from_pytest(excinfo: Any) -> bool:
    """pytest's ``__tracebackhide__`` for memo_replay's modules (pytest reads it from a frame's
    globals too, and calls it with the failure's ``ExceptionInfo``).

    A user whose call missed, or whose function raised through the wrapper, wants to see their
    own lines, not the wrapper's; so memo_replay's frames are hidden — except when the failure
    is a bug inside memo_replay itself (an exception that is no :class:`MemoReplayError` and
    was raised in one of its modules), where they are what a bug report needs.
    ``pytest --fulltrace`` shows every frame regardless.
    """
    if excinfo is None or isinstance(excinfo.value, MemoReplayError):
        return True
    tb = excinfo.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    origin = str(tb.tb_frame.f_globals.get("__name__", ""))
    return origin.partition(".")[0] != "memo_replay"


class MemoReplayWarning(UserWarning):
    """Something worth knowing that does not stop the call (a corrupt entry re-recorded, a
    function without source fingerprinted by bytecode, an unusable cache).

    A `UserWarning`, not an error: make it one where it must not pass unnoticed, with
    `warnings.simplefilter("error", MemoReplayWarning)` or pytest's
    `-W error::memo_replay.MemoReplayWarning`."""


def warn(message: str) -> None:
    """Issue a :class:`MemoReplayWarning` attributed to the first caller outside memo_replay,
    however deep inside the library it is raised (so it names the user's line, and Python's
    once-per-location filter works per call site)."""
    level, frame = 2, sys._getframe(1)
    while frame.f_back is not None and \
            str(frame.f_globals.get("__name__", "")).partition(".")[0] == "memo_replay":
        frame, level = frame.f_back, level + 1
    warnings.warn(message, MemoReplayWarning, stacklevel=level)
