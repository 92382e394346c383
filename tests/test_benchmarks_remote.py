"""``benchmarks/remote.py`` (issue 17) runs end to end with tiny sizes and prints its JSON: its
own moto S3 server on 127.0.0.1, record, push, remote hits, cached remote hits, pull serial and
parallel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("botocore")
pytest.importorskip("moto.moto_server.werkzeug_app")

REPO = Path(__file__).resolve().parents[1]


def test_remote_benchmark_prints_its_json() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMO_", "AWS_"))}
    result = subprocess.run(
        [sys.executable, "benchmarks/remote.py", "--calls", "20", "--rounds", "1",
         "--entries", "60", "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["calls"], report["rounds"], report["entries"]) == (20, 1, 60)
    kinds = {"local", "remote", "cached_remote"}
    assert set(report["hit_us"]) == kinds
    assert set(report["hit_ratio_to_local"]) == kinds
    assert all(len(v) == 1 for v in report["hit_rounds_us"].values())
    assert all(v > 0 for v in report["hit_us"].values())
    pull = report["pull"]
    assert set(pull["wall_s"]) == set(pull["entries_per_s"]) == {"serial", "parallel"}
    assert pull["parallel_jobs"] > 1
    assert pull["serial_over_parallel"] > 0
