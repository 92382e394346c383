"""The recording store: entry files committed to git, indexed by a local diskcache."""

from typing import TYPE_CHECKING, Any

from memo_replay.store.entry import FORMAT_VERSION, Entry, Payload
from memo_replay.store.store import FunctionStats, Hit, Problem, Store, StoreStats

if TYPE_CHECKING:
    from memo_replay.store.audit import Audit, Finding


def __getattr__(name: str) -> Any:
    if name in ("Audit", "Finding"):  # auditing imports user modules: loaded when asked for
        from memo_replay.store import audit

        return getattr(audit, name)
    raise AttributeError(f"module 'memo_replay.store' has no attribute {name!r}")


__all__ = ["FORMAT_VERSION", "Audit", "Entry", "Finding", "FunctionStats", "Hit", "Payload",
           "Problem", "Store", "StoreStats"]
