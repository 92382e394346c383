"""Translate every example machine and report what each call did.

    python -m examples.dygram.run            # a readable line per machine
    python -m examples.dygram.run --jsonl    # one JSON object per event (used by the demo)
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import memo_replay

from .translator import machine_paths, translate


def main(argv: list[str]) -> int:
    as_json = "--jsonl" in argv
    failures = 0
    for path in machine_paths():
        if as_json:
            print(json.dumps({"event": "start", "path": path}), flush=True)
        # What a recording would be made for: no recording yet, or the first thing that changed.
        before = translate.memo.explain(path) if as_json else None
        started = time.perf_counter()
        report: dict[str, Any]
        with memo_replay.track() as calls:
            try:
                machine = translate(path)
            except memo_replay.ReplayMiss as miss:
                failures += 1
                report = {"event": "done", "path": path, "outcome": "missed",
                          "explanation": str(miss)}
            else:
                report = {"event": "done", "path": path, "outcome": calls[-1].outcome,
                          "title": machine.title, "states": len(machine.states),
                          "recorded_s": calls[-1].recorded_duration_s}
        report["elapsed_s"] = time.perf_counter() - started
        if before is not None and report["outcome"] == "recorded":
            # Other arguments make another call (its declared file differs too): not a change.
            new_call = not before.differences or any(
                d.component == "argument" for d in before.differences)
            report["why"] = "first call with these arguments" if new_call \
                else before.differences[0].message
        if as_json:
            print(json.dumps(report), flush=True)
        else:
            detail = report.get("title") or report.get("explanation")
            print(f"{report['outcome']:>9}  {path}  {report['elapsed_s'] * 1000:8.2f} ms  {detail}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
