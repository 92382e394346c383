"""memo_replay: record expensive function calls once, replay them deterministically.

>>> from memo_replay import recorded
>>> @recorded
... def translate(prompt: str, model: str = "small") -> str:
...     return f"[{model}] {prompt}"

The first call runs ``translate`` and records its result in ``fixtures_store/``; later calls with
the same code, arguments and declared files replay it. See ``docs/`` for the full story.
"""

from __future__ import annotations

__version__ = "0.1.0"

from memo_replay.decorator import Memo, Recorded, recorded
from memo_replay.errors import (
    ConfigError,
    CorruptEntry,
    ExpiredRecording,
    InvalidMode,
    InvalidOption,
    LockTimeout,
    MemoReplayError,
    MemoReplayWarning,
    MissingDeclaredFile,
    ReplayMiss,
    SecretDetected,
    SerializationError,
    StoreError,
    UnhashableArgument,
    UnsupportedFormat,
)
from memo_replay.events import CallEvent, track
from memo_replay.explain import Difference, Explanation
from memo_replay.modes import Mode, mode
from memo_replay.serializers import Serializer, register_serializer
from memo_replay.store import Entry, Store

__all__ = [
    "CallEvent",
    "ConfigError",
    "CorruptEntry",
    "Difference",
    "Entry",
    "ExpiredRecording",
    "Explanation",
    "InvalidMode",
    "InvalidOption",
    "LockTimeout",
    "Memo",
    "MemoReplayError",
    "MemoReplayWarning",
    "MissingDeclaredFile",
    "Mode",
    "Recorded",
    "ReplayMiss",
    "SecretDetected",
    "SerializationError",
    "Serializer",
    "Store",
    "StoreError",
    "UnhashableArgument",
    "UnsupportedFormat",
    "__version__",
    "mode",
    "recorded",
    "register_serializer",
    "track",
]
