"""Which store the CLI and ``Store(...)`` look at, said out loud: a relative store path is the
project's (not the working directory's), every report names the store it read in a header line,
a store that does not exist is warned about, ``stats``/``prune --stale`` show what could not be
checked, and ``memo-replay --version``. Real ``python -m memo_replay`` processes, run from the
project root, a subdirectory and a directory outside the project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import memo_replay

if TYPE_CHECKING:
    from conftest import Project

TOOLS = '''
from memo_replay import recorded


@recorded
def greet(name: str) -> str:
    return f"hello {name}"


def make_local():
    @recorded
    def local_square(x: int) -> int:
        return x * x
    return local_square
'''

RECORD = """
import loctools
loctools.greet("ada")
loctools.greet("bob")
loctools.make_local()(3)
"""


@pytest.fixture
def recorded(project: Project) -> Project:
    """A project whose default store holds 3 entries: 2 of ``loctools.greet``, 1 of a function
    defined inside another (which auditing cannot check)."""
    project.write("loctools.py", TOOLS)
    project.run(RECORD)
    assert len(list(project.store.entries())) == 3
    return project


def run(project: Project, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m memo_replay ARGS`` in ``cwd``, the project on the path, no MEMO_* set."""
    return subprocess.run([sys.executable, "-m", "memo_replay", *args], cwd=cwd,
                          env=project.env(None), capture_output=True, text=True, timeout=120)


def test_every_report_names_the_store_it_read_from_a_subdirectory(recorded: Project) -> None:
    sub = recorded.root / "notebooks" / "deep"
    sub.mkdir(parents=True)
    store = recorded.root / "fixtures_store"
    header = f"store: {store} (3 entries)"
    for command in (["ls"], ["stats"], ["verify"], ["scan"], ["prune", "--orphans"]):
        result = run(recorded, sub, *command)
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.splitlines()[0] == header, command
        assert result.stderr == "", command  # the store exists: no warning
    assert run(recorded, sub, "ls").stdout.strip().splitlines()[-1] == "3 recordings"
    # --json keeps its shape: a list stays a list, an object gains "store"
    assert len(json.loads(run(recorded, sub, "ls", "--json").stdout)) == 3
    assert json.loads(run(recorded, sub, "prune", "--orphans", "--json").stdout)["store"] \
        == str(store)
    assert json.loads(run(recorded, sub, "stats", "--json").stdout)["store"] == str(store)


def test_a_missing_store_is_named_and_warned_about(recorded: Project, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = run(recorded, outside, "ls")
    assert result.returncode == 0  # unchanged: an empty listing is not an error
    missing = outside / "fixtures_store"
    assert result.stdout.splitlines()[0] == f"store: {missing} (0 entries)"
    assert result.stderr == (f"memo-replay: warning: the store {missing} does not exist (run "
                             f"inside the project, or pass --store DIR or set MEMO_STORE)\n")
    assert not missing.exists()  # looking does not create it
    for command in (["stats"], ["verify"], ["scan"], ["prune", "--stale"], ["ls", "--json"]):
        result = run(recorded, outside, *command)
        assert result.returncode == 0, command
        assert "does not exist" in result.stderr, command


def test_a_relative_store_option_is_taken_at_the_working_directory(recorded: Project) -> None:
    sub = recorded.root / "sub"
    sub.mkdir()
    result = run(recorded, sub, "ls", "--store", "../fixtures_store")
    assert result.stdout.splitlines()[0] == \
        f"store: {recorded.root / 'fixtures_store'} (3 entries)"
    assert result.stderr == ""


def test_store_with_a_relative_path_is_the_projects_store(recorded: Project) -> None:
    sub = recorded.root / "scripts"
    sub.mkdir()
    (sub / "inspect_store.py").write_text(
        "from memo_replay import Store\n"
        "store = Store('fixtures_store')\n"
        "print(store.path)\n"
        "print(sorted(e.function.rsplit('.', 1)[-1] for e in store.entries()))\n")
    result = subprocess.run([sys.executable, "inspect_store.py"], cwd=sub,
                            env=recorded.env(None), capture_output=True, text=True, timeout=120,
                            check=True)
    path, functions = result.stdout.splitlines()
    assert path == str(recorded.root / "fixtures_store")
    assert functions == "['greet', 'greet', 'local_square']"


def test_stats_and_prune_stale_say_what_was_not_checked_and_why(recorded: Project) -> None:
    why = ("  loctools.make_local.<locals>.local_square (1): "
           "`loctools.make_local.<locals>.local_square` is defined inside a function; not "
           "importable")
    stats = run(recorded, recorded.root, "stats", "--stale")
    assert stats.returncode == 0, stats.stderr
    assert stats.stdout.splitlines()[-1].endswith(
        "; 1 recording not checked, never pruned (why: on stderr)")
    assert stats.stderr.splitlines() == ["memo-replay: 1 recording not checked (never pruned):",
                                         why]

    pruned = run(recorded, recorded.root, "prune", "--stale")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.splitlines()[1:] == [
        "nothing to prune; 1 recording not checked, never pruned (why: on stderr)"]
    assert pruned.stderr.splitlines() == stats.stderr.splitlines()
    as_json = json.loads(run(recorded, recorded.root, "prune", "--stale", "--json").stdout)
    assert as_json["files"] == []
    assert [(u["function"], u["detail"]) for u in as_json["unchecked"]] == [
        ("loctools.make_local.<locals>.local_square", why.split("): ", 1)[1])]
    assert len(list(recorded.store.entries())) == 3  # nothing removed

    # all checked: nothing more is said
    for path in (recorded.root / "fixtures_store").glob("*local_square*/*.json"):
        path.unlink()
    clean = run(recorded, recorded.root, "prune", "--stale")
    assert clean.stdout.splitlines()[1:] == ["nothing to prune"]
    assert clean.stderr == ""


def test_version(project: Project) -> None:
    script = Path(sys.executable).parent / "memo-replay"  # the installed entry point
    for argv in ([sys.executable, "-m", "memo_replay", "--version"],
                 [str(script), "--version"]):
        result = subprocess.run(argv, cwd=project.root,
                                env=project.env(None), capture_output=True, text=True,
                                timeout=120, check=True)
        assert result.stdout.startswith(f"memo-replay {memo_replay.__version__} (Python ")
