"""``benchmarks/stream.py`` (issue 18) runs end to end with tiny streams and prints its table and
its JSON: a fresh store per round, recording against the undecorated generator, strict replays
checked against the original items, the memory pass. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO

TINY = ["--rounds", "1", "--scale", "0.001"]  # 10 and 100 tokens, 10 chunks, 1 block of 64 KiB


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # The script sets the modes itself: the outer MEMO_* and CI must not matter.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMO_") and k != "CI"}
    env["MEMO_MODE"] = "replay"  # would make every recording a miss if the script obeyed it
    return subprocess.run([sys.executable, "benchmarks/stream.py", *TINY, *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def test_stream_benchmark_prints_its_table() -> None:
    result = run()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("replay throughput:")
    assert "× list" in lines[1]
    assert "× decode floor" in lines[1]
    for label in ("10 str tokens", "100 str tokens", "10 pydantic chunks",
                  "1 bytes chunks of 64 KiB"):
        rows = [line for line in lines if line.startswith(label + " ")]
        assert len(rows) == 2, (label, result.stdout)  # one row per table
    assert any(line.startswith("recording:") for line in lines)
    assert any(line.startswith("memory (tracemalloc peak") for line in lines)
    assert "round 1/1" in result.stderr


def test_stream_benchmark_prints_its_json() -> None:
    result = run("--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["rounds"], report["scale"]) == (1, 0.001)
    streams = report["streams"]
    assert [row["items"] for row in streams.values()] == [10, 100, 10, 1]
    for row in streams.values():
        assert set(row["median_s"]) >= {"undecorated", "off", "record", "replay", "floor"}
        assert all(len(samples) in (0, 1) for samples in row["rounds_s"].values())
        assert row["replay_items_per_s"] > 0
        assert row["replay_over_floor"] > 0
    assert "replay_over_decode_floor" in streams["chunks-10"]
    assert "record_mb_per_s" in streams["blocks-1"]
    memory = report["memory"]
    assert memory["data_mib"] == 0.0625
    assert memory["record_peak_mib"] > 0
    assert memory["replay_peak_mib"] > 0


def test_a_full_benchmark_report_keeps_the_streams_section() -> None:
    """``run.py --write-docs`` rewrites docs/benchmarks.md; the "Streams" section, measured by
    this script, is found in the page and written back as it is."""
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.report import KEPT_SECTIONS, existing_section, markdown
    finally:
        sys.path.remove(str(REPO))
    section = "<!-- streams:start -->\n## Streams\n\n| a | b |\n<!-- streams:end -->"
    page = f"# Benchmarks\n\n## Results\n\nold\n\n{section}\n\n## Reproduce\n"
    [(start, end)] = KEPT_SECTIONS
    assert existing_section(page, start, end) == section
    info = {"date": "today", "cpus": "2", "processor": "x", "python": "3", "platform": "y"}
    rewritten = markdown([], info, rounds=1, quick=True, only=[], elapsed_s=1.0, notes=[],
                         chart=None, kept_sections=[section])
    assert section in rewritten
    assert rewritten.index(section) < rewritten.index("## Reproduce")
    real = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert existing_section(real, start, end) is not None  # the published page has it
