"""What recording costs beyond the call itself and the durable write of its entry.

    python benchmarks/record_cost.py [--calls 300] [--rounds 5] [--json]

Records ``--calls`` fresh calls of a function returning a small dict (its own cost is a
microsecond) into a new store, ``--rounds`` times, and splits each recording's wall time into
the durable write of the entry (``LocalDirectory.write``: a temporary file created, written,
fsync'd and renamed into place — what any recorder that does not lose data pays) and everything
else memo_replay does (the key, serializing and checking the round trip, the secrets scan, the
record-once lock, building and rendering the entry). Issue 15's target: everything else at most
0.3 ms per call. Also prints the floor of the same write done by hand (``open`` + ``write`` +
``fsync`` + ``rename``) for scale. Medians over rounds; everything runs in this process, in a
temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

FUNCTION = """
from memo_replay import recorded


@recorded
def lookup(i: int) -> dict:
    return {"i": i, "name": f"item-{i}", "tags": ["a", "b"], "score": i / 7}
"""


def measure(calls: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="memo-record-cost-") as scratch:
        root = Path(scratch)
        (root / "pyproject.toml").write_text('[project]\nname = "rc"\nversion = "0"\n')
        (root / "record_cost_lookup.py").write_text(textwrap.dedent(FUNCTION))
        sys.path.insert(0, scratch)
        os.environ["MEMO_MODE"] = "record"
        os.environ["MEMO_STORE"] = str(root / "fixtures_store")
        import record_cost_lookup

        from memo_replay.store.backend import LocalDirectory

        written = [0.0]
        real_write = LocalDirectory.write

        def timed_write(self: LocalDirectory, name: str, data: bytes) -> None:
            started = time.perf_counter()
            real_write(self, name, data)
            written[0] += time.perf_counter() - started

        LocalDirectory.write = timed_write  # type: ignore[method-assign]
        record_cost_lookup.lookup(-1)  # fingerprint, store and serializer set up
        totals, writes, floors = [], [], []
        for r in range(rounds):
            written[0] = 0.0
            started = time.perf_counter()
            for i in range(calls):
                record_cost_lookup.lookup(r * calls + i)
            totals.append((time.perf_counter() - started) / calls)
            writes.append(written[0] / calls)
            floors.append(_write_floor(root / f"floor-{r}", calls))
        LocalDirectory.write = real_write  # type: ignore[method-assign]
        sys.path.remove(scratch)
    total, write = statistics.median(totals), statistics.median(writes)
    beyond = statistics.median(t - w for t, w in zip(totals, writes, strict=True))
    return {"calls": calls, "rounds": rounds, "per_call_us": total * 1e6,
            "durable_write_us": write * 1e6, "beyond_write_us": beyond * 1e6,
            "hand_written_floor_us": statistics.median(floors) * 1e6}


def _write_floor(directory: Path, calls: int) -> float:
    directory.mkdir()
    data = b"x" * 1200
    started = time.perf_counter()
    for i in range(calls):
        temp = directory / f".{i}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.replace(temp, directory / f"{i}.json")
    return (time.perf_counter() - started) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.calls, args.rounds)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"recording, per call (medians of {args.rounds} rounds of {args.calls}):\n"
              f"  total                         {result['per_call_us']:8.0f} µs\n"
              f"  durable write of the entry    {result['durable_write_us']:8.0f} µs "
              f"(by hand: {result['hand_written_floor_us']:.0f} µs)\n"
              f"  everything else (target 300)  {result['beyond_write_us']:8.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
