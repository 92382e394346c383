"""The benchmark smoke mode: memo_replay's hit path against the raw floor, in one run, and a
fresh clone's strict replay (N = 300, fresh processes) against the json.loads floor.

It fails only on a gross regression (a hit slower than 5× the raw floor measured in the same
interleaved rounds, a fresh-clone replay slower than 12× reading and decoding each entry file):
ratios, never absolute times, so a slow or busy machine does not fail it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HIT_CASES = ("hit-small", "hit-bytes-arg", "hit-dict-arg", "hit-bytes-result",
             "hit-pydantic-result")
COLD_CASES = ("cold-fresh-clone",)


def test_smoke_mode_keeps_hits_near_the_raw_floor() -> None:
    # The script sets MEMO_MODE itself for its record and replay phases; CI is inherited as is.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMO_")}
    result = subprocess.run([sys.executable, "benchmarks/run.py", "--smoke"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    report = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    ratios = dict(re.findall(r"^smoke ratio (\S+): .* = ([0-9.]+)×", result.stdout, re.M))
    assert sorted(ratios) == sorted(HIT_CASES + COLD_CASES), report
    assert result.returncode == 0, report
