"""Recorded streams (issue 18): replay throughput against consuming a plain list, and the cost
of recording per item.

    python benchmarks/stream.py                # defaults: --rounds 7
    python benchmarks/stream.py --quick        # 3 rounds
    python benchmarks/stream.py --json         # one JSON object
    python benchmarks/stream.py --scale 0.01   # every stream 100× shorter (a smoke run)

The streams, each a generator function in a small project written to a temporary directory
(``pyproject.toml`` and a module; the recorded functions are ``recorded(fn)`` of plain generator
functions, so the undecorated generator is at hand):

- **tokens**: N ``str`` tokens (``f"tok{i} "``), N = 10,000 and 100,000;
- **chunks**: N pydantic models (``Chunk(index=i, text=...)``), N = 10,000;
- **blocks**: 800 ``bytes`` chunks of 64 KiB (50 MiB: the binary form, in a payload file).

Every round starts from a **fresh store** (a new directory and module; one short call of each
function is recorded and replayed first, untimed, as the first call of a recorded function pays
once for its code fingerprint and memo_replay's lazy imports), and for each stream:

1. **recording** (``MEMO_MODE=record``: call, pass every item through, serialize, scan, write
   the entry and its payload file, fsync) against iterating the **undecorated** generator, and
   against the decorated one in mode ``off`` (the wrapper, recording nothing). The overhead per
   item is (recording − undecorated) / N: the fixed cost of one call (the key, the write) is
   spread over the items. For the 64 KiB blocks, recording's MB/s as well.
2. **replay** (strict ``replay`` mode: a miss raises), timed from the call — lookup, reading
   the entry, decoding the items — to the end of the ``for`` loop that consumes it, against the
   **floor**: the same ``for`` loop over a plain Python list of the same items. Also against a
   **decode floor**, the least a replay from JSON must do: ``json.loads`` of the items' JSON
   list (tokens), pydantic's ``TypeAdapter(list[Chunk]).validate_json`` (chunks). Every replay
   is checked to be one (``memo_replay.track()``) and to yield items equal to the originals.

Results are medians over the rounds; ratios are of the medians. Garbage is collected before
each timing. Everything runs in this process (no children), with ``MEMO_*`` and ``CI`` removed
from its environment; the temporary directory is removed at the end. Finally, outside the timed
rounds, ``tracemalloc`` measures the peak memory that recording and replaying the 50 MiB stream
allocate while the consumer keeps no item: about one copy of the data (the payload being built,
then the payload read back).
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

TOKENS = (10_000, 100_000)
CHUNKS = 10_000
BLOCKS = 800
BLOCK_SIZE = 64 * 1024

MODULE = textwrap.dedent('''\
    from collections.abc import Iterator

    from pydantic import BaseModel

    from memo_replay import recorded


    class Chunk(BaseModel):
        index: int
        text: str


    def tokens(n: int) -> Iterator[str]:
        for i in range(n):
            yield f"tok{i} "


    def chunks(n: int) -> Iterator[Chunk]:
        for i in range(n):
            yield Chunk(index=i, text=f"tok{i} ")


    def blocks(n: int, size: int) -> Iterator[bytes]:
        for i in range(n):
            yield bytes((i % 251,)) * size


    recorded_tokens = recorded(tokens)
    recorded_chunks = recorded(chunks)
    recorded_blocks = recorded(blocks)
''')


def consume(items: Iterable[Any]) -> None:
    """What a consumer does, least of all: a ``for`` loop over the stream."""
    for _ in items:
        pass


def timed(action: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


class Case:
    """One stream: its name, arguments and item count, and the samples of every measure."""

    def __init__(self, name: str, label: str, function: str, args: tuple[Any, ...], n: int,
                 item_bytes: int | None = None) -> None:
        self.name, self.label, self.function, self.args, self.n = name, label, function, args, n
        self.item_bytes = item_bytes
        self.samples: dict[str, list[float]] = {
            m: [] for m in ("undecorated", "off", "record", "replay", "floor", "decode")}


def cases(scale: float) -> list[Case]:
    def sized(n: int) -> int:
        return max(1, round(n * scale))

    found = [Case(f"tokens-{sized(n)}", f"{sized(n):,} str tokens", "tokens", (sized(n),),
                  sized(n)) for n in TOKENS]
    found.append(Case(f"chunks-{sized(CHUNKS)}", f"{sized(CHUNKS):,} pydantic chunks", "chunks",
                      (sized(CHUNKS),), sized(CHUNKS)))
    blocks = sized(BLOCKS)
    found.append(Case(f"blocks-{blocks}", f"{blocks:,} bytes chunks of 64 KiB "
                      f"({blocks * BLOCK_SIZE / 2**20:,.4g} MiB)", "blocks",
                      (blocks, BLOCK_SIZE), blocks, BLOCK_SIZE))
    return found


def project(root: Path, name: str) -> Any:
    """A fresh project (its own empty store) and its module, imported."""
    path = root / name
    path.mkdir()
    (path / "pyproject.toml").write_text('[project]\nname = "stream-bench"\nversion = "0"\n')
    (path / f"{name}.py").write_text(MODULE)
    sys.path.insert(0, str(path))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(path))


def decode_floor(case: Case, module: Any, items: list[Any]) -> Callable[[], object] | None:
    """The least a replay from JSON must do for ``case`` (None: no such floor)."""
    if case.function == "tokens":
        text = json.dumps(items)
        return lambda: consume(json.loads(text))
    if case.function == "chunks":
        from pydantic import TypeAdapter

        adapter = TypeAdapter(list[module.Chunk])
        encoded = adapter.dump_json(items)
        return lambda: consume(adapter.validate_json(encoded))
    return None


def warm_up(module: Any) -> None:
    """Record and replay one short call of each function, untimed: the first call of a recorded
    function pays once for its code fingerprint and for memo_replay's lazy imports."""
    import memo_replay

    for function, args in (("tokens", (1,)), ("chunks", (1,)), ("blocks", (1, 16))):
        for mode in ("record", "replay"):
            with memo_replay.mode(mode):
                consume(getattr(module, f"recorded_{function}")(*args))


def measure_round(root: Path, number: int, found: list[Case]) -> None:
    import memo_replay

    module = project(root, f"stream_bench_{number}")
    warm_up(module)
    for case in found:
        raw = getattr(module, case.function)
        wrapped = getattr(module, f"recorded_{case.function}")
        args = case.args

        def undecorated(raw: Any = raw, args: tuple[Any, ...] = args) -> None:
            consume(raw(*args))

        def in_mode(mode: str, wrapped: Any = wrapped, args: tuple[Any, ...] = args
                    ) -> Callable[[], None]:
            def run() -> None:
                with memo_replay.mode(mode):
                    consume(wrapped(*args))
            return run

        # The undecorated generator and recording, in an order alternating between rounds.
        first, second = ("undecorated", "record") if number % 2 == 0 \
            else ("record", "undecorated")
        for measure in (first, second, "off"):
            action = undecorated if measure == "undecorated" else in_mode(measure)
            with memo_replay.track() as calls:
                case.samples[measure].append(timed(action))
            if measure == "record" and [c.outcome for c in calls] != ["recorded"]:
                raise SystemExit(f"{case.name}: the recording call was {calls}")
        with memo_replay.track() as calls:
            case.samples["replay"].append(timed(in_mode("replay")))
        if [(c.outcome, c.items) for c in calls] != [("replayed", case.n)]:
            raise SystemExit(f"{case.name}: the replay was {calls}")
        items = list(raw(*args))
        with memo_replay.mode("replay"):
            if list(wrapped(*args)) != items:
                raise SystemExit(f"{case.name}: the replayed items differ from the originals")
        case.samples["floor"].append(timed(functools.partial(consume, items)))
        floor = decode_floor(case, module, items)
        if floor is not None:
            case.samples["decode"].append(timed(floor))
        del items


def memory(root: Path, blocks: int) -> dict[str, float]:
    """Peak traced allocations (MiB) recording and replaying ``blocks`` 64 KiB chunks."""
    import memo_replay

    module = project(root, "stream_bench_memory")
    warm_up(module)
    gc.collect()
    tracemalloc.start()
    try:
        with memo_replay.mode("record"):
            consume(module.recorded_blocks(blocks, BLOCK_SIZE))
        _, record_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        gc.collect()
        before, _ = tracemalloc.get_traced_memory()
        with memo_replay.mode("replay"):
            consume(module.recorded_blocks(blocks, BLOCK_SIZE))
        _, replay_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {"data_mib": blocks * BLOCK_SIZE / 2**20, "record_peak_mib": record_peak / 2**20,
            "replay_peak_mib": (replay_peak - before) / 2**20}


def summarize(found: list[Case], rounds: int, scale: float, mem: dict[str, float],
              elapsed_s: float) -> dict[str, Any]:
    result: dict[str, Any] = {"rounds": rounds, "scale": scale, "elapsed_s": elapsed_s,
                              "memory": mem, "streams": {}}
    for case in found:
        med = {k: statistics.median(v) for k, v in case.samples.items() if v}
        n = case.n
        row: dict[str, Any] = {
            "label": case.label, "items": n,
            "median_s": med,
            "rounds_s": case.samples,
            "replay_items_per_s": n / med["replay"],
            "floor_items_per_s": n / med["floor"],
            "replay_over_floor": med["replay"] / med["floor"],
            "record_overhead_us_per_item": (med["record"] - med["undecorated"]) / n * 1e6,
            "off_overhead_us_per_item": (med["off"] - med["undecorated"]) / n * 1e6,
            "record_over_undecorated": med["record"] / med["undecorated"],
        }
        if "decode" in med:
            row["replay_over_decode_floor"] = med["replay"] / med["decode"]
        if case.item_bytes is not None:
            megabytes = n * case.item_bytes / 1e6
            row["record_mb_per_s"] = megabytes / med["record"]
            row["replay_mb_per_s"] = megabytes / med["replay"]
        result["streams"][case.name] = row
    return result


def _rate(value: float) -> str:
    return f"{value / 1e6:,.2f} M" if value >= 1e6 else f"{value / 1e3:,.0f} k"


def table(result: dict[str, Any]) -> str:
    streams = result["streams"].values()
    lines = [f"replay throughput: call + consume with a for loop, strict replay; medians of "
             f"{result['rounds']} rounds, a fresh store each round",
             f"{'stream':40} {'replay items/s':>15} {'list items/s':>13} {'× list':>8} "
             f"{'× decode floor':>15} {'MB/s':>7}"]
    for row in streams:
        decode = row.get("replay_over_decode_floor")
        rate = row.get("replay_mb_per_s")
        lines.append(f"{row['label']:40} {_rate(row['replay_items_per_s']):>15} "
                     f"{_rate(row['floor_items_per_s']):>13} {row['replay_over_floor']:>7.0f}× "
                     f"{'—' if decode is None else f'{decode:.1f}×':>15} "
                     f"{'—' if rate is None else f'{rate:,.0f}':>7}")
    lines += ["", "recording: call + consume + write, against iterating the undecorated "
              "generator", f"{'stream':40} {'undecorated ms':>15} {'off ms':>9} "
              f"{'record ms':>10} {'µs/item':>8} {'off µs/item':>12} {'MB/s':>7}"]
    for row in streams:
        med = row["median_s"]
        rate = row.get("record_mb_per_s")
        lines.append(f"{row['label']:40} {med['undecorated'] * 1e3:>15.1f} "
                     f"{med['off'] * 1e3:>9.1f} {med['record'] * 1e3:>10.1f} "
                     f"{row['record_overhead_us_per_item']:>8.2f} "
                     f"{row['off_overhead_us_per_item']:>12.2f} "
                     f"{'—' if rate is None else f'{rate:,.0f}':>7}")
    mem = result["memory"]
    lines += ["", f"memory (tracemalloc peak, the consumer keeping no item): "
              f"{mem['data_mib']:,.1f} MiB of bytes chunks: recording "
              f"{mem['record_peak_mib']:,.1f} MiB, replaying {mem['replay_peak_mib']:,.1f} MiB",
              f"(the run took {result['elapsed_s']:.0f} s; load average "
              f"{os.getloadavg()[0]:.2f})"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=None, help="rounds (7; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every stream's length (1.0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else 3 if args.quick else 7
    if rounds < 1 or not 0 < args.scale <= 10:
        parser.error("need --rounds >= 1 and 0 < --scale <= 10")
    for name in [k for k in os.environ if k.startswith("MEMO_") or k == "CI"]:
        del os.environ[name]  # the modes are set per phase; the store is the temporary one
    found = cases(args.scale)
    tmp = tempfile.mkdtemp(prefix="memo-stream-bench-")
    started = time.perf_counter()
    try:
        root = Path(tmp).resolve()
        for number in range(rounds):
            print(f"round {number + 1}/{rounds}", file=sys.stderr, flush=True)
            measure_round(root, number, found)
        mem = memory(root, found[-1].n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = summarize(found, rounds, args.scale, mem, time.perf_counter() - started)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
