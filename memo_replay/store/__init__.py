"""The recording store: entry files committed to git, over a backend, behind an index.

- :mod:`~memo_replay.store.layout` — the names of things in a store;
- :mod:`~memo_replay.store.entry` — the entry file format, written and read in one place;
- :mod:`~memo_replay.store.backend` — where the files live (a directory, read-only, tiered);
- :mod:`~memo_replay.store.index` — what is remembered of entries already read;
- :mod:`~memo_replay.store.locks` — record once across processes;
- :mod:`~memo_replay.store.store` — :class:`Store`, the record-level logic over all of these;
- :mod:`~memo_replay.store.catalog` — what ``stats`` and ``ls`` remember of entries;
- :mod:`~memo_replay.store.upkeep` — ``verify`` and ``prune``.
"""

from typing import TYPE_CHECKING, Any

from memo_replay.store.backend import Backend, LocalDirectory, ReadOnly, Tiered
from memo_replay.store.entry import FORMAT_VERSION, Entry, Hit, Payload, Recording
from memo_replay.store.store import Store

if TYPE_CHECKING:
    from memo_replay.store.catalog import FunctionStats, StoreStats
    from memo_replay.store.upkeep import Problem


def __getattr__(name: str) -> Any:
    if name == "Problem":  # verify()'s report type: its module loads with the first verify()
        from memo_replay.store.upkeep import Problem

        return Problem
    if name in ("FunctionStats", "StoreStats"):  # stats()'s types: loaded with the first stats()
        from memo_replay.store import catalog

        return getattr(catalog, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["FORMAT_VERSION", "Backend", "Entry", "FunctionStats", "Hit", "LocalDirectory",
           "Payload", "Problem", "ReadOnly", "Recording", "Store", "StoreStats", "Tiered"]
