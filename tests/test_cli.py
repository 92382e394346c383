"""``memo-replay`` / ``python -m memo_replay``: ls, show, stats, verify on a real store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from memo_replay import Store
from memo_replay.cli import main

if TYPE_CHECKING:
    from conftest import Project

TOOLS = '''
from memo_replay import recorded


@recorded
def greet(name: str, punctuation: str = "!") -> str:
    return f"Hello, {name}{punctuation}"


@recorded
def histogram(words: list) -> dict:
    counts = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    return counts
'''

RECORD = """
import json, clitools
keys = {
    "greet_ada": clitools.greet.memo.key("Ada"),
    "greet_bob": clitools.greet.memo.key("Bob", "?"),
    "histogram": clitools.histogram.memo.key(["a", "b", "a"]),
}
clitools.greet("Ada")
clitools.greet("Bob", "?")
clitools.histogram(["a", "b", "a"])
print(json.dumps(keys))
"""


@pytest.fixture
def recorded_project(project: Project) -> tuple[Project, dict[str, str]]:
    """A project whose default store holds three recordings of two functions."""
    project.write("clitools.py", TOOLS)
    keys = json.loads(project.run(RECORD).stdout.strip().splitlines()[-1])
    assert len(project.store.verify()) == 0
    return project, keys


def cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m memo_replay ARGS`` in the project directory (default store discovery)."""
    return project.run_module("memo_replay", *args, check=False)


def corrupt(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def test_ls_lists_recordings(recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    result = cli(project, "ls")
    assert result.returncode == 0, result.stderr
    for key in keys.values():
        assert key in result.stdout
    assert "clitools.greet" in result.stdout
    assert "clitools.histogram" in result.stdout
    header, columns = result.stdout.splitlines()[:2]
    assert header == f"store: {project.root / 'fixtures_store'} (3 entries)"
    assert "KEY" in columns
    assert result.stdout.strip().splitlines()[-1] == "3 recordings"
    assert 'name="Ada"' in result.stdout


def test_ls_json_parses(recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    result = cli(project, "ls", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert sorted(item["key"] for item in listing) == sorted(keys.values())
    by_key = {item["key"]: item for item in listing}
    ada = by_key[keys["greet_ada"]]
    assert ada["function"] == "clitools.greet"
    assert ada["arguments"] == {"name": "Ada", "punctuation": "!"}
    assert ada["serializer"] == "json"
    assert Path(ada["path"]).name == f"{keys['greet_ada']}.json"
    assert Path(ada["path"]).is_file()
    assert ada["recorded_at"].endswith("Z")

    only = json.loads(cli(project, "ls", "--json", "--function", "clitools.histogram").stdout)
    assert [item["key"] for item in only] == [keys["histogram"]]


def test_show_by_key_and_prefix(recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    key = keys["histogram"]
    others = [k for k in keys.values() if k != key]
    prefix = next(key[:n] for n in range(4, 33) if not any(k.startswith(key[:n]) for k in others))

    result = cli(project, "show", prefix)
    assert result.returncode == 0, result.stderr
    assert key in result.stdout
    assert "clitools.histogram" in result.stdout
    assert "payload" in result.stdout
    assert '"a": 2' in result.stdout
    assert "words" in result.stdout

    shown = json.loads(cli(project, "show", key, "--json").stdout)
    assert shown["key"] == key
    assert shown["function"] == "clitools.histogram"
    assert shown["payload"] == {"a": 2, "b": 1}
    assert shown["arguments"] == {"words": ["a", "b", "a"]}
    assert "code" in shown["components"]


def test_show_unknown_or_ambiguous_key_exits_1(
        recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, _ = recorded_project
    unknown = cli(project, "show", "zzzzzzzz")
    assert unknown.returncode == 1
    assert "zzzzzzzz" in unknown.stderr
    assert unknown.stdout == ""
    ambiguous = cli(project, "show", "")
    assert ambiguous.returncode == 1


def test_stats(recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, _ = recorded_project
    text = cli(project, "stats")
    assert text.returncode == 0, text.stderr
    assert "clitools.greet" in text.stdout
    assert "3 recordings" in text.stdout
    assert "damaged" not in text.stdout

    stats = json.loads(cli(project, "stats", "--json").stdout)
    assert stats["entries"] == 3
    assert stats["problems"] == 0
    assert stats["functions"]["clitools.greet"]["entries"] == 2
    assert stats["functions"]["clitools.histogram"]["serializers"] == {"json": 1}
    store_files = sorted((project.root / "fixtures_store").glob("clitools.*/*.json"))
    assert stats["bytes"] == sum(p.stat().st_size for p in store_files)
    assert Path(stats["store"]).resolve() == (project.root / "fixtures_store").resolve()


def test_verify_clean_store_exits_0(recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, _ = recorded_project
    result = cli(project, "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intact" in result.stdout
    as_json = cli(project, "verify", "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == []


def test_verify_corrupted_store_exits_1(recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    entry = project.store.get(keys["greet_bob"])
    assert entry is not None
    corrupt(entry.path)
    orphan = entry.path.parent / f".{entry.path.stem}.abcdef.tmp"
    orphan.write_text("{")

    result = cli(project, "verify")
    assert result.returncode == 1
    assert str(entry.path) in result.stdout
    assert "corrupt" in result.stdout
    assert "orphan" in result.stdout
    assert "2 problems" in result.stdout

    as_json = cli(project, "verify", "--json")
    assert as_json.returncode == 1
    problems = json.loads(as_json.stdout)
    assert {(p["path"], p["kind"]) for p in problems} == {(str(entry.path), "corrupt"),
                                                         (str(orphan), "orphan")}
    assert all(p["fix"] for p in problems)

    # the other commands keep working and point at `verify`
    stats = cli(project, "stats")
    assert stats.returncode == 0
    assert "1 damaged" in stats.stdout
    listing = json.loads(cli(project, "ls", "--json").stdout)
    assert len(listing) == 2


def test_store_option_and_env(recorded_project: tuple[Project, dict[str, str]],
                              tmp_path: Path) -> None:
    project, keys = recorded_project
    store = str(project.root / "fixtures_store")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEMO_") and k not in ("CI", "PYTHONPATH")}

    def run(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "memo_replay", *args], cwd=elsewhere,
                              env={**env, **(extra or {})}, capture_output=True, text=True,
                              timeout=120)

    by_option = json.loads(run("ls", "--json", "--store", store).stdout)
    by_env = json.loads(run("ls", "--json", extra={"MEMO_STORE": store}).stdout)
    assert sorted(i["key"] for i in by_option) == sorted(keys.values())
    assert by_env == by_option


def test_store_pointing_at_a_file_exits_2(project: Project) -> None:
    bogus = project.write("not_a_store.txt", "hello\n")
    for command in ("ls", "stats", "verify"):
        result = cli(project, command, "--store", str(bogus))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "is a file" in result.stderr
        assert str(bogus) in result.stderr
        assert "Traceback" not in result.stderr
    result = cli(project, "show", "abc", "--store", str(bogus))
    assert result.returncode == 2
    assert bogus.read_text() == "hello\n"


def test_no_command_prints_help_and_exits_2(project: Project) -> None:
    result = cli(project)
    assert result.returncode == 2
    assert "ls" in result.stdout
    assert "verify" in result.stdout


def test_empty_store(project: Project) -> None:
    result = cli(project, "ls")
    assert result.returncode == 0
    assert "0 recordings" in result.stdout
    assert cli(project, "verify").returncode == 0
    assert json.loads(cli(project, "stats", "--json").stdout)["entries"] == 0
    assert not (project.root / "fixtures_store").exists()


def _console_script() -> str | None:
    found = shutil.which("memo-replay")
    if found:
        return found
    beside = Path(sys.executable).with_name("memo-replay")
    return str(beside) if beside.exists() else None


def test_console_script_matches_python_m(
        recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    script = _console_script()
    if script is None:
        pytest.skip("the memo-replay console script is not installed")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEMO_") and k not in ("CI", "PYTHONPATH")}
    result = subprocess.run([script, "ls", "--json"], cwd=project.root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(cli(project, "ls", "--json").stdout)
    verify = subprocess.run([script, "verify"], cwd=project.root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0
    corrupt(project.root / "fixtures_store" / "clitools.greet" / f"{keys['greet_ada']}.json")
    verify = subprocess.run([script, "verify"], cwd=project.root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 1


def test_main_in_process(recorded_project: tuple[Project, dict[str, str]],
                         capsys: pytest.CaptureFixture[str]) -> None:
    project, keys = recorded_project
    store = str(project.root / "fixtures_store")
    assert main(["show", keys["greet_ada"], "--json", "--store", store]) == 0
    shown: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert shown["payload"] == "Hello, Ada!"
    assert main(["verify", "--store", store]) == 0
    capsys.readouterr()
    assert main(["show", "0" * 32, "--store", store]) == 1
    assert "no single recording" in capsys.readouterr().err
    assert Store(store).stats().entries == 3
