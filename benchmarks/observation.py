"""What observing a recording costs: a miss that records, with and without observation.

Each miss records a fresh key (auto mode, a fsync'd entry); the only difference between the two
contenders is whether the recorded call is watched (the project code that runs and the files it
reads, memo_replay/keys/observed.py) — the "without" side replaces the observer with one that
does nothing. Two bodies: a 1 ms call that waits (the shape of a model call) and about 1 ms of
pure-Python work in ~2,000 small function calls (the worst case before Python 3.12, where
observing uses cProfile's hook on every call).

    python benchmarks/observation.py [--rounds 9]

Medians of interleaved rounds; child processes are not used (one process, warm imports).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BODY = '''
import time
from memo_replay import recorded


def step(i):
    return i * 2 + 1


@recorded
def waits(n):
    time.sleep(0.001)
    return n


@recorded
def works(n):
    total = 0
    for i in range(2000):
        total += step(i)
    return total + n
'''


class _Blind:
    """An observer that sees nothing (the "without observation" contender)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def result(self, *args: Any) -> Any:
        from memo_replay.keys.observed import Observed

        return Observed.of({}, {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=60)
    options = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="memo-observe-"))
    (project / "pyproject.toml").write_text('[project]\nname = "obs"\n')
    (project / "obsbench.py").write_text(BODY)
    os.chdir(project)
    sys.path.insert(0, str(project))
    os.environ["MEMO_MODE"] = "auto"
    import obsbench

    import memo_replay.keys.observed as observed

    real = observed.Observer
    fresh = iter(range(10**9))
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(options.rounds):
        for body in ("waits", "works"):
            for side, observer in (("observed", real), ("not observed", _Blind)):
                observed.Observer = observer  # type: ignore[misc]
                fn = getattr(obsbench, body)
                started = time.perf_counter()
                for _ in range(options.calls):
                    fn(next(fresh))
                per_call = (time.perf_counter() - started) / options.calls
                results.setdefault((body, side), []).append(per_call)
    observed.Observer = real  # type: ignore[misc]
    print(f"{'recorded call':<34}{'observed':>12}{'not observed':>14}{'ratio':>8}")
    for body, label in (("waits", "1 ms wait (a model call)"),
                        ("works", "~1 ms of Python, 2,000 calls")):
        on = statistics.median(results[(body, "observed")])
        off = statistics.median(results[(body, "not observed")])
        print(f"{label:<34}{on * 1e3:>10.3f} ms{off * 1e3:>12.3f} ms{on / off:>8.3f}")
    print(f"Python {sys.version.split()[0]}; {options.rounds} interleaved rounds of "
          f"{options.calls} recording misses each; medians per call (fsync'd entries included)")


if __name__ == "__main__":
    main()
