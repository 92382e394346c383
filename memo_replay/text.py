"""How values and times are shown to people in messages and reports (one way everywhere)."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sys
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


def rerecord_command(node_id: str | None = None) -> str:
    """The command that re-records the pytest test ``node_id``, else what is running now (the
    current pytest test, or this script)."""
    current_test = os.environ.get("PYTEST_CURRENT_TEST")
    if node_id is None and current_test:
        node_id = current_test.rsplit(" (", 1)[0]
    if node_id is not None:
        return f"MEMO_MODE=record python -m pytest {shlex.quote(node_id)}"
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    return "MEMO_MODE=record " + shlex.join(["python", *argv[1:]])
