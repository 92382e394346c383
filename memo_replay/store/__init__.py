"""The recording store: entry files committed to git, indexed by a local diskcache."""

from memo_replay.store.audit import Audit, Finding
from memo_replay.store.entry import FORMAT_VERSION, Entry, Payload
from memo_replay.store.store import FunctionStats, Hit, Problem, Store, StoreStats

__all__ = ["FORMAT_VERSION", "Audit", "Entry", "Finding", "FunctionStats", "Hit", "Payload",
           "Problem", "Store", "StoreStats"]
