"""The repository's own recordings (`fixtures_store/`) of the DyGram translator replay strictly.

They are committed; a test never writes them. To re-record after changing the translator, its
prompt or an example machine, run from the repository root:

    MEMO_MODE=record DYGRAM_LLM_LATENCY=0.4 python -m examples.dygram.run
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import memo_replay
from memo_replay import ReplayMiss, Store
from memo_replay.store.layout import function_dir_name

if TYPE_CHECKING:
    from conftest import Project

REPO = Path(__file__).resolve().parents[1]
STORE = REPO / "fixtures_store"
FUNCTION = "examples.dygram.translator.translate"

EXPECTED = {
    "examples/dygram/machines/checkout.dy": (
        "Checkout", ["cart", "payment", "confirmed", "failed"], 3),
    "examples/dygram/machines/onboarding.dy": (
        "Onboarding", ["signup", "verify_email", "profile", "done"], 4),
    "examples/dygram/machines/router.dy": (
        "Tool Router", ["start", "classify", "option_a", "option_b", "done"], 5),
    "examples/dygram/machines/traffic_light.dy": (
        "Traffic Light", ["red", "green", "yellow"], 3),
}

RERECORD = "MEMO_MODE=record DYGRAM_LLM_LATENCY=0.4 python -m examples.dygram.run"


@pytest.fixture(autouse=True)
def _committed_recordings() -> None:
    """Missing recordings fail every test here (never a skip, which a green run would hide)."""
    directory = STORE / function_dir_name(FUNCTION)
    if not any(directory.glob("*.json")):
        pytest.fail(f"the committed recordings of `{FUNCTION}` are missing: no entry in "
                    f"{directory}. Restore them from git (`git checkout -- fixtures_store`), or "
                    f"re-record them by running `{RERECORD}` at the repository root, and "
                    f"commit fixtures_store/.", pytrace=False)


@pytest.fixture
def llm_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Strict replay against the repository store; the fake LLM logs every real call here."""
    log = tmp_path / "llm-calls.log"
    monkeypatch.setenv("MEMO_MODE", "replay")
    monkeypatch.delenv("MEMO_STORE", raising=False)
    monkeypatch.setenv("DYGRAM_LLM_CALL_LOG", str(log))
    monkeypatch.setenv("DYGRAM_LLM_LATENCY", "0")
    return log


def entry_snapshot() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (STORE / function_dir_name(FUNCTION)).glob("*.json")}


def test_committed_recordings_replay_strictly(llm_log: Path) -> None:
    from examples.dygram.ir import Machine, StateKind
    from examples.dygram.translator import machine_paths, translate

    assert translate.memo.store.path == STORE
    paths = machine_paths()
    assert paths == sorted(EXPECTED)
    before = entry_snapshot()

    with memo_replay.track() as events:
        machines = {path: translate(path) for path in paths}

    for path, machine in machines.items():
        title, states, transitions = EXPECTED[path]
        assert isinstance(machine, Machine)
        assert machine.title == title
        assert [s.name for s in machine.states] == states
        assert len(machine.transitions) == transitions
        assert machine.model == "small"
        assert machine.states[0].kind is StateKind.start
    router = machines["examples/dygram/machines/router.dy"]
    assert router.successors("classify") == ["option_a", "option_b"]
    assert [t.label for t in router.transitions if t.source == "classify"] == ["option_a",
                                                                               "option_b"]

    assert [e.outcome for e in events] == ["replayed"] * len(paths)
    assert {e.function for e in events} == {FUNCTION}
    assert all(e.recorded_duration_s > 0 for e in events)
    assert not llm_log.exists() or llm_log.read_text() == ""
    assert entry_snapshot() == before  # replay never writes tracked files


def test_every_committed_recording_is_used_and_intact(llm_log: Path) -> None:
    from examples.dygram.translator import machine_paths, translate

    store = Store(STORE)
    assert store.verify() == []
    recorded_keys = {entry.key for entry in store.entries(FUNCTION)}
    assert recorded_keys == {translate.memo.key(path) for path in machine_paths()}
    for path in machine_paths():
        assert translate.memo.explain(path).matched


def test_another_model_is_a_strict_miss(llm_log: Path) -> None:
    from examples.dygram.translator import translate

    path = "examples/dygram/machines/router.dy"
    with pytest.raises(ReplayMiss) as info:
        translate(path, model="large")
    text = str(info.value)
    assert f"no recording of `{FUNCTION}` matches this call" in text
    assert "argument `model` differs: recorded 'small', now 'large'" in text
    assert not llm_log.exists()


def copy_dogfood(project: Project) -> None:
    shutil.copytree(REPO / "examples", project.root / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(STORE, project.root / "fixtures_store",
                    ignore=shutil.ignore_patterns(".cache"))


@pytest.mark.parametrize("how", ["MEMO_MODE=replay", "CI=true"])
def test_copy_elsewhere_replays_strictly(project: Project, tmp_path: Path, how: str) -> None:
    copy_dogfood(project)
    log = tmp_path / "llm-calls.log"
    env = {"DYGRAM_LLM_CALL_LOG": str(log), "DYGRAM_LLM_LATENCY": "0"}
    mode = "replay" if how == "MEMO_MODE=replay" else None
    if mode is None:
        env["CI"] = "true"
    result = project.run_module("examples.dygram.run", "--jsonl", mode=mode, env=env)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    done = {e["path"]: e for e in events if e["event"] == "done"}
    assert sorted(done) == sorted(EXPECTED)
    for path, event in done.items():
        assert event["outcome"] == "replayed", event
        assert event["title"] == EXPECTED[path][0]
        assert event["states"] == len(EXPECTED[path][1])
    assert not log.exists()
    # The copy's keys are the repository's keys: no new entry was written.
    copied = sorted(p.name for p in (project.root / "fixtures_store").rglob("*.json")
                    if ".cache" not in p.parts)
    assert copied == sorted(entry_snapshot())


def test_copy_with_an_edited_prompt_fails_with_an_explanation(project: Project,
                                                              tmp_path: Path) -> None:
    copy_dogfood(project)
    project.replace("examples/dygram/prompts.py", "- Output JSON only",
                    "- Be brief.\n- Output JSON only")
    log = tmp_path / "llm-calls.log"
    result = project.run_module("examples.dygram.run", mode="replay", check=False,
                                env={"DYGRAM_LLM_CALL_LOG": str(log), "DYGRAM_LLM_LATENCY": "0"})
    assert result.returncode == 1
    assert result.stdout.count("constant `examples.dygram.prompts.TEMPLATE` changed") == 4
    assert not log.exists()


def test_missing_recordings_fail_instead_of_skipping(tmp_path: Path) -> None:
    """This file run in a copy of the repository without `fixtures_store/`: every test fails,
    saying how to re-record; none is skipped (a skip would leave the run green)."""
    copy = tmp_path / "repository"
    (copy / "tests").mkdir(parents=True)
    for name in ("pyproject.toml", "tests/conftest.py", "tests/test_dogfood.py"):
        shutil.copyfile(REPO / name, copy / name)
    shutil.copytree(REPO / "examples", copy / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MEMO_", "DYGRAM_")) and k not in ("CI", "PYTHONPATH")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
         "tests/test_dogfood.py", "-k", "not test_missing_recordings_fail_instead_of_skipping"],
        cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert not (copy / "fixtures_store").exists()
    summary = output.strip().splitlines()[-1]
    assert "skipped" not in summary, output
    assert "passed" not in summary, output
    assert "6 errors" in summary, output
    assert output.count(f"the committed recordings of `{FUNCTION}` are missing") >= 6, output
    assert RERECORD in output
