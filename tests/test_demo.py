"""`python -m memo_replay demo`: the whole story, in a scratch project it cleans up."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_demo(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMO_", "DYGRAM_"))}
    env["TMPDIR"] = str(tmp)  # the scratch project goes here, so leftovers are visible
    env.pop("CI", None)
    return subprocess.run([sys.executable, "-m", "memo_replay", "demo", "--latency", "0.05",
                           *args], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=300)


def scratch_dirs(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("memo-replay-demo-*"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str],
                                                             Path]:
    tmp = tmp_path_factory.mktemp("demo")
    return run_demo(tmp), tmp


def test_demo_succeeds(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, _ = demo
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_demo_tells_the_five_steps(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    out = demo[0].stdout
    steps = [out.index(f"\n{n}. ") for n in range(1, 6)]
    assert steps == sorted(steps)
    assert "1. First run (MEMO_MODE=auto)" in out
    assert "2. A fresh interpreter in strict replay" in out
    assert "3. Edit examples/dygram/machines/router.dy" in out
    assert "4. Edit the prompt constant prompts.TEMPLATE" in out
    assert "5. The store" in out
    assert "\033[" not in out  # no colour when not a terminal


def test_demo_outcomes(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    out = demo[0].stdout
    sections = re.split(r"\n\d\. ", out)
    first, second, third, fourth = sections[1:5]
    assert "→ 4 recorded" in first
    assert "→ 4 replayed" in second
    assert "→ 1 recorded, 3 replayed" in third
    assert re.search(r"recorded\s+router\.dy", third)
    assert "4 of 4 calls raise ReplayMiss" in fourth
    assert "constant `examples.dygram.prompts.TEMPLATE` changed" in fourth
    assert "To re-record: MEMO_MODE=record python -m examples.dygram.run" in fourth
    for title in ("Checkout", "Onboarding", "Tool Router", "Traffic Light"):
        assert title in first
        assert title in second


def test_demo_shows_the_store_stats(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    stats = demo[0].stdout.split("\n5. ")[1]
    assert re.search(r"FUNCTION\s+ENTRIES\s+STALE\s+SERIALIZERS", stats)
    assert "5 recordings are stale" in stats
    assert re.search(r"examples\.dygram\.translator\.translate\s+5\s+5\s", stats)
    assert "pydantic" in stats
    assert "Done." in stats


def test_demo_leaves_no_scratch_dir(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, tmp = demo
    assert "scratch project: " in result.stdout
    assert scratch_dirs(tmp) == []
    assert "kept at" not in result.stdout


def repository_entries() -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in (REPO / "fixtures_store").rglob("*.json")
            if ".cache" not in p.parts}


def test_demo_keep(tmp_path: Path) -> None:
    before = repository_entries()
    result = run_demo(tmp_path, "--keep")
    assert repository_entries() == before  # the demo works on its own copy
    assert result.returncode == 0, result.stdout + result.stderr
    (kept,) = scratch_dirs(tmp_path)
    try:
        assert f"The scratch project is kept at {kept}" in result.stdout
        assert (kept / "examples" / "dygram" / "translator.py").is_file()
        entries = list((kept / "fixtures_store").rglob("*.json"))
        assert len([p for p in entries if ".cache" not in p.parts]) == 5
    finally:
        shutil.rmtree(kept)
