"""How values and times are shown to people in messages and reports (one way everywhere)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to about ``limit`` characters (``…`` marks the cut)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def when(value: dt.datetime | None, missing: str = "-") -> str:
    """A time as entries write it (``2026-11-21T12:00:00Z``), or ``missing`` when unknown."""
    if value is None:
        return missing
    from memo_replay.store.entry import timestamp

    return timestamp(value)
