"""Child process of ``benchmarks/compare.py``: one warm case of one revision, one round.

    PYTHONPATH=<copy of a revision>:<copy of benchmarks/> COMPARE_EXPECT_PACKAGE=<that copy> \\
        python -m benchmarks.compare_child hit-small --workdir DIR

``compare.py`` starts it with ``PYTHONPATH`` naming a copy of one revision's ``memo_replay``
first and ``COMPARE_EXPECT_PACKAGE`` naming that copy: importing any other ``memo_replay`` (the
editable install in ``.venv``, the repository's) is an error.

The child prepares its case — the call is made once for real (recording it) and, for a hit,
replayed and checked against the real result — warms it up and calibrates an inner loop so that
a sample takes at least ``--min-sample-s`` (``benchmarks/harness.py``, as ``benchmarks/run.py``
times its hit cases: a tight loop, garbage collection paused). Then it waits for commands on
stdin, so that the parent can alternate samples of the BASE and NEW children one by one:

- ``sample``: take one sample, print ``{"sample_s": <mean seconds per call>}``;
- ``done``: print the report and exit.

Every answer is one JSON line on stdout; the first, ``{"ready": true, ...}``, says the case is
prepared. By hand: ``printf 'sample\\nsample\\ndone\\n' | python -m benchmarks.compare_child ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import cases
from benchmarks.contenders import MEMO, hit_contender, memoizer
from benchmarks.harness import Contender, calibrate, environment, sample, settle_allocator

EXPECT_ENV = "COMPARE_EXPECT_PACKAGE"
"""The environment variable naming the directory ``memo_replay`` must be imported from."""


@dataclass(frozen=True)
class HitCase:
    """A call that hits on every timed invocation (strict ``replay`` mode: a miss raises)."""

    body: Callable[..., Any]
    arguments: Callable[[], tuple[Any, ...]]
    why: str


HIT_CASES: dict[str, HitCase] = {
    "hit-small": HitCase(cases.small, lambda: (3, "x"),
                         "the fixed cost of a hit: mode, key of a remembered argument set, "
                         "lookup, one stat, decoding a tiny payload"),
    "hit-dict-arg": HitCase(cases.dict_argument, lambda: (cases.thousand_items(),),
                            "binding and identifying a 1,000-item container argument"),
    "hit-bytes-arg": HitCase(cases.bytes_argument, lambda: (cases.big_bytes(),),
                             "identifying a 1 MB argument (hashed in place)"),
    "hit-pydantic-result": HitCase(cases.pydantic_result, lambda: (1000,),
                                   "rebuilding a rich result: 1,000 nested pydantic models"),
}
MISS_CASE = "miss"
CASES = (*HIT_CASES, MISS_CASE)


def check_origin() -> str:
    """The imported ``memo_replay``'s ``__init__.py``; exits when it is not the expected copy."""
    import memo_replay

    return verify_origin(memo_replay.__file__)


def verify_origin(file: str | None) -> str:
    expected = os.environ.get(EXPECT_ENV)
    if not expected:
        sys.exit(f"compare_child: {EXPECT_ENV} is not set (run benchmarks/compare.py instead)")
    location = os.path.realpath(file or "")
    if not location.startswith(os.path.realpath(expected) + os.sep):
        sys.exit(f"compare_child: memo_replay was imported from {location}, not from the copy "
                 f"under {expected} (check PYTHONPATH: {os.environ.get('PYTHONPATH')!r})")
    return location


@dataclass
class Prepared:
    """A case ready to be sampled: what one timed call does, in which mode, how to check it."""

    contender: Contender
    mode: str
    warmup: int
    check: Callable[[], None] = lambda: None
    """Run after the last sample: raises when the case did not do what it claims."""


def prepare_hit(case: HitCase, workdir: Path) -> Prepared:
    """A warm hit, timed in strict ``replay`` mode (a miss would raise, never call)."""
    args = case.arguments()
    expected = case.body(*args)
    # Records the call (MEMO_MODE=record), then checks a replay returns the real result.
    return Prepared(hit_contender(MEMO, case.body, args, workdir, expected), "replay", 3)


def prepare_miss(workdir: Path) -> Prepared:
    """A call on fresh arguments in ``auto`` mode: look up, miss, call, write one fsync'd entry
    file. The check: every call wrote its entry."""
    memo = memoizer(MEMO, cases.small, workdir)
    made = [0]

    def call() -> object:
        made[0] += 1
        return memo.fn(made[0], "fresh")

    def check() -> None:
        written = sum(1 for path in memo.directory.glob("*/*.json")
                      if not path.parent.name.startswith("."))
        if written != made[0]:
            raise AssertionError(f"{made[0]} fresh calls wrote {written} entry files")

    return Prepared(Contender(MISS_CASE, call), "auto", 1, check)


def emit(report: dict[str, Any]) -> None:
    print(json.dumps(report), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=CASES)
    parser.add_argument("--workdir", type=Path, required=True,
                        help="an existing directory for this child's temporary store")
    parser.add_argument("--min-sample-s", type=float, default=0.02)
    args = parser.parse_args(argv)

    origin = check_origin()
    os.environ.pop("MEMO_STORE", None)
    settle_allocator()
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix=f"{args.case}-", dir=args.workdir) as scratch:
        prepared = (prepare_miss(Path(scratch)) if args.case == MISS_CASE
                    else prepare_hit(HIT_CASES[args.case], Path(scratch)))
        contender = prepared.contender
        with environment(MEMO_MODE=prepared.mode):
            for _ in range(prepared.warmup):
                contender.call()
            inner = calibrate(contender, args.min_sample_s)
            emit({"ready": True, "memo_replay": origin, "inner": inner})
            for line in sys.stdin:
                command = line.strip()
                if command == "done":
                    break
                if command != "sample":
                    sys.exit(f"compare_child: unknown command {command!r}")
                samples.append(sample(contender, inner))
                emit({"sample_s": samples[-1]})
        prepared.check()
    emit({"case": args.case, "memo_replay": origin, "inner": inner, "samples_s": samples})
    return 0


if __name__ == "__main__":
    sys.exit(main())
