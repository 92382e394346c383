"""What the replayer and the recorder know of the function they serve (its ``Memo``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from memo_replay.config import Config
    from memo_replay.decorator import Options


class Subject(Protocol):
    """A recorded function: its identity, options and project (read when they are needed,
    so that the project's configuration is still read once, on first use)."""

    @property
    def id(self) -> str: ...

    @property
    def root(self) -> Path: ...

    @property
    def function(self) -> Callable[..., Any]: ...

    @property
    def options(self) -> Options: ...

    @property
    def config(self) -> Config: ...

    @property
    def ttl(self) -> float | None: ...

    @property
    def return_annotation(self) -> Any: ...

    @property
    def stream(self) -> Literal["sync", "async"] | None:
        """Whether the function's calls are streams (a generator function)."""
