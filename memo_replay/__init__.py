"""memo_replay: record expensive function calls once, replay them deterministically.

```pycon
>>> from memo_replay import recorded
>>> @recorded
... def translate(prompt: str, model: str = "small") -> str:
...     return f"[{model}] {prompt}"
>>> translate("hello")
'[small] hello'
```

The first call runs `translate` and records its result in `fixtures_store/`; later calls with
the same code, arguments and declared files replay it. Every public name is importable from
here (each loads its module on first use). See the documentation site (`docs/`) for the full
story.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing import ...`: typing alone costs more than this module

__version__ = "0.1.0"

# Public name -> the module defining it. `import memo_replay` loads none of them: each module
# loads on first access (PEP 562), so a process pays only for what it uses — the decorator's
# modules when a function is decorated, the store's on the first call, explanations on a miss.
_EXPORTS = {
    "recorded": "decorator", "Memo": "decorator", "Recorded": "decorator",
    "CallEvent": "events", "track": "events",
    "Difference": "explain", "Explanation": "explain",
    "Mode": "modes", "mode": "modes",
    "Serializer": "serializers", "register_serializer": "serializers",
    "Entry": "store", "Store": "store",
    "RecordedStream": "serializers.stream",
    **dict.fromkeys([
        "ConfigError", "CorruptEntry", "ExpiredRecording", "InvalidMode", "InvalidOption",
        "LockTimeout", "MemoReplayError", "MemoReplayWarning", "MissingDeclaredFile",
        "RemoteError", "RemoteUnavailable", "ReplayMiss", "SecretDetected",
        "SerializationError", "StoreError", "StreamError",
        "UnhashableArgument", "UnsupportedFormat",
    ], "errors"),
}

if TYPE_CHECKING:
    from typing import Any

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
        RemoteError,
        RemoteUnavailable,
        ReplayMiss,
        SecretDetected,
        SerializationError,
        StoreError,
        StreamError,
        UnhashableArgument,
        UnsupportedFormat,
    )
    from memo_replay.events import CallEvent, track
    from memo_replay.explain import Difference, Explanation
    from memo_replay.modes import Mode, mode
    from memo_replay.serializers import Serializer, register_serializer
    from memo_replay.serializers.stream import RecordedStream
    from memo_replay.store import Entry, Store


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'memo_replay' has no attribute {name!r}")
    value = getattr(__import__(f"memo_replay.{module}", fromlist=[name]), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


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
    "RecordedStream",
    "RemoteError",
    "RemoteUnavailable",
    "ReplayMiss",
    "SecretDetected",
    "SerializationError",
    "Serializer",
    "Store",
    "StoreError",
    "StreamError",
    "UnhashableArgument",
    "UnsupportedFormat",
    "__version__",
    "mode",
    "recorded",
    "register_serializer",
    "track",
]
