"""Child process of the memory case: replay the first N entries of a scale store, report RSS.

    python -m benchmarks.replay_all --store benchmarks/.data/store-100000 --count 100000

Prints one JSON line: peak RSS (KiB) after the first call and after the replays, and the time
the replays took. The parent sets ``MEMO_MODE=replay``: a missing entry fails loudly.

On Linux the peak is ``VmHWM`` from ``/proc/self/status``, the high-water mark of this process's
own memory. ``getrusage(RUSAGE_SELF).ru_maxrss`` is reported too, but on Linux it also counts
the parent's RSS at the moment it started this process (the kernel carries it across ``exec``),
so it measures the benchmark runner as much as the replays.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def maxrss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB elsewhere


def peak_rss_kib() -> int:
    """This process's peak RSS: VmHWM where /proc has it, else ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return maxrss_kib()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)

    from benchmarks.cases import scale_entry
    from memo_replay import recorded

    fn = recorded(store=args.store)(scale_entry)
    fn(0)  # the first call fingerprints the code and opens the store's index
    after_first = peak_rss_kib()
    started = time.perf_counter()
    for i in range(args.count):
        fn(i)
    elapsed = time.perf_counter() - started
    print(json.dumps({"count": args.count, "after_first_call_kib": after_first,
                      "peak_kib": peak_rss_kib(), "ru_maxrss_kib": maxrss_kib(),
                      "seconds": elapsed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
