"""The large stores (100 / 10,000 / 100,000 entries) under ``benchmarks/.data/`` (git-ignored).

Recording writes each entry file with an ``fsync`` (about 2–4 ms an entry on the reference
machine), so recording 100,000 entries by calling the function would take several minutes,
each time the key derivation changes. A store is therefore built once and reused, like this:

1. the first ``min(n, 1,000)`` entries are recorded for real (``MEMO_MODE=record``);
2. the others are generated from the entry of ``scale_entry(0)`` following the documented entry
   format (``docs/store-format.md``): the file is named by ``fn.memo.key(i)`` and gets that
   ``key``, the argument preview ``{"i": i}``, the real result ``scale_entry(i)`` as payload with
   its ``xxh3_128`` checksum and size. Only ``components.arguments`` (the argument's own hash,
   read by ``explain`` and never by a hit) keeps the template's value;
3. every entry, generated or not, is then replayed once in strict ``replay`` mode, which checks
   that it hits and returns ``scale_entry(i)``, and warms the store's index like a full test run
   would.

A store is reused while its manifest (``.data/store-N.json``) matches: entry count, the keys of
the first and last calls (they change when memo_replay's key derivation or ``scale_entry``
changes) and a strict replay of a sample. Otherwise it is rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xxhash import xxh3_128_hexdigest

from benchmarks import cases
from benchmarks.harness import environment
from memo_replay import Recorded, ReplayMiss, recorded

DATA = Path(__file__).resolve().parent / ".data"
REAL_RECORDINGS = 1_000
SAMPLE = 100
"""How many distinct calls the scale case sweeps (spread evenly over the store)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ScaleStore:
    path: Path
    entries: int
    manifest: dict[str, Any]
    built_now: bool


def scale_function(path: Path) -> Recorded[[int], dict[str, int]]:
    return recorded(store=path)(cases.scale_entry)


def sample_ids(entries: int, count: int = SAMPLE) -> list[int]:
    """``count`` call arguments spread evenly over a store of ``entries`` entries."""
    count = min(count, entries)
    return [i * entries // count for i in range(count)]


def function_directory(store: Path) -> Path:
    fn = cases.scale_entry
    return store / f"{fn.__module__}.{fn.__qualname__}"


def _entry_count(store: Path) -> int:
    directory = function_directory(store)
    if not directory.is_dir():
        return 0
    with os.scandir(directory) as it:
        return sum(1 for e in it if e.name.endswith(".json") and not e.name.startswith("."))


def _replays(fn: Callable[[int], dict[str, int]], ids: Sequence[int]) -> bool:
    with environment(MEMO_MODE="replay"):
        try:
            return all(fn(i) == cases.scale_entry(i) for i in ids)
        except ReplayMiss:
            return False


def _still_valid(store: Path, entries: int, fn: Recorded[[int], dict[str, int]]
                 ) -> dict[str, Any] | None:
    manifest_path = DATA / f"store-{entries}.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("entries") != entries or manifest.get("key_first") != fn.memo.key(0) \
            or manifest.get("key_last") != fn.memo.key(entries - 1) \
            or _entry_count(store) != entries:
        return None
    ids = sample_ids(entries, 200)
    return manifest if _replays(fn, [*ids, entries - 1]) else None


def _generate(fn: Recorded[[int], dict[str, int]], directory: Path,
              template: dict[str, Any], ids: range) -> None:
    """Entry files for ``ids`` written from ``template`` per the documented entry format."""
    for i in ids:
        key = fn.memo.key(i)
        result = cases.scale_entry(i)
        canonical = json.dumps(result, ensure_ascii=False, allow_nan=False,
                               separators=(",", ":"))
        document = {
            **template,
            "arguments": {"i": i},
            "key": key,
            "result": {**template["result"], "payload": result,
                       "checksum": xxh3_128_hexdigest(canonical.encode()),
                       "size": len(canonical)},
        }
        text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        (directory / f"{key}.json").write_text(text, encoding="utf-8")


def build(store: Path, entries: int) -> dict[str, Any]:
    """(Re)build the store of ``entries`` entries; returns its manifest."""
    shutil.rmtree(store, ignore_errors=True)
    fn = scale_function(store)
    real = min(entries, REAL_RECORDINGS)
    log(f"  building {store.name}: recording {real:,} entries for real ...")
    started = time.perf_counter()
    with environment(MEMO_MODE="record"):
        for i in range(real):
            fn(i)
    record_s = time.perf_counter() - started
    directory = function_directory(store)
    generated = entries - real
    started = time.perf_counter()
    if generated:
        log(f"  building {store.name}: generating {generated:,} entries ...")
        template = json.loads((directory / f"{fn.memo.key(0)}.json").read_text("utf-8"))
        _generate(fn, directory, template, range(real, entries))
    generate_s = time.perf_counter() - started
    log(f"  building {store.name}: replaying all {entries:,} entries (strict) ...")
    started = time.perf_counter()
    if not _replays(fn, range(entries)):
        raise AssertionError(f"{store}: an entry did not replay its call's result")
    verify_s = time.perf_counter() - started
    if _entry_count(store) != entries:
        raise AssertionError(f"{store}: expected {entries} entry files")
    manifest = {
        "entries": entries,
        "recorded": real,
        "generated": generated,
        "record_ms_per_entry": round(record_s / real * 1e3, 3),
        "generate_ms_per_entry": round(generate_s / generated * 1e3, 3) if generated else None,
        "first_replay_us_per_entry": round(verify_s / entries * 1e6, 1),
        "key_first": fn.memo.key(0),
        "key_last": fn.memo.key(entries - 1),
    }
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / f"store-{entries}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def ensure(entries: int) -> ScaleStore:
    """The store of ``entries`` entries, reused when still valid, else (re)built."""
    store = DATA / f"store-{entries}"
    fn = scale_function(store)
    manifest = _still_valid(store, entries, fn)
    if manifest is not None:
        return ScaleStore(store, entries, manifest, built_now=False)
    return ScaleStore(store, entries, build(store, entries), built_now=True)
