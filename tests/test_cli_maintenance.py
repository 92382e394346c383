"""``memo-replay ls --stale/--expired``, ``stats``, ``prune``, ``diff`` and the pre-commit hooks,
run as real ``python -m memo_replay`` processes in a throwaway project."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from memo_replay import Store
from memo_replay.store.entry import timestamp

if TYPE_CHECKING:
    from conftest import Project

REPO = Path(__file__).resolve().parents[1]

# The module prints when imported, as scripts and notebooks-turned-modules do: auditing imports
# it, and the JSON the CLI prints must still parse.
TOOLS = '''
print("loading cli_tools")

from memo_replay import recorded


def shout(text: str) -> str:
    return text.upper()


@recorded
def greet(name: str) -> str:
    return shout(f"hello {name}")


@recorded
def square(x: int) -> int:
    return x * x
'''

PKG_MOD = '''
from memo_replay import recorded


@recorded
def cube(x: int) -> int:
    return x ** 3
'''

RECORD = """
import json
import cli_tools
import cli_pkg.mod
keys = {
    "ada": cli_tools.greet.memo.key("ada"),
    "bob": cli_tools.greet.memo.key("bob"),
    "square": cli_tools.square.memo.key(3),
    "cube": cli_pkg.mod.cube.memo.key(2),
}
cli_tools.greet("ada")
cli_tools.greet("bob")
cli_tools.square(3)
cli_pkg.mod.cube(2)
print(json.dumps(keys))
"""


def record(project: Project, code: str = RECORD) -> dict[str, str]:
    keys: dict[str, str] = json.loads(project.run(code, mode="auto").stdout.splitlines()[-1])
    return keys


@pytest.fixture
def recorded_project(project: Project) -> tuple[Project, dict[str, str]]:
    """Four recordings: ``greet`` twice and ``square`` in a module, ``cube`` in a package."""
    project.write("cli_tools.py", TOOLS)
    project.write("cli_pkg/__init__.py", "")
    project.write("cli_pkg/mod.py", PKG_MOD)
    keys = record(project)
    assert len(list(project.store.entries())) == 4
    assert project.store.verify() == []
    return project, keys


def cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m memo_replay ARGS`` in the project directory (default store discovery)."""
    return project.run_module("memo_replay", *args, check=False)


def cli_json(project: Project, *args: str, exit_code: int = 0) -> Any:
    result = cli(project, *args, "--json")
    assert result.returncode == exit_code, result.stdout + result.stderr
    return json.loads(result.stdout)


def path_of(store: Store, key: str) -> Path:
    entry = store.get(key)
    assert entry is not None, key
    return entry.path


def backdate(path: Path, age: dt.timedelta) -> None:
    """Move an entry's ``recorded_at`` (volatile, outside the checksum) into the past."""
    document = json.loads(path.read_text(encoding="utf-8"))
    when = (dt.datetime.now(dt.timezone.utc) - age).replace(microsecond=0)
    document["recorded_at"] = timestamp(when)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def stats_rows(output: str) -> dict[str, dict[str, str]]:
    """The ``stats --stale`` table as {function: {column: value}} (values have no spaces but
    SIZE)."""
    lines = output.splitlines()
    assert lines[0].startswith("store: ")
    lines = [line for line in lines[1:] if line.startswith(("FUNCTION", "cli_"))]
    header = lines[0].split()
    assert header[:4] == ["FUNCTION", "ENTRIES", "STALE", "UNCHECKED"]
    rows = {}
    for line in lines[1:]:
        if not line or "recordings" in line:
            continue
        cells = line.split()
        rows[cells[0]] = {"ENTRIES": cells[1], "STALE": cells[2], "UNCHECKED": cells[3]}
    return rows


# -- ls --stale, stats ------------------------------------------------------------------------


def test_ls_stale_and_stats_after_a_body_edit(
        recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    clean = cli_json(project, "stats", "--stale")
    assert {name: f["stale"] for name, f in clean["functions"].items()} == {
        "cli_tools.greet": 0, "cli_tools.square": 0, "cli_pkg.mod.cube": 0}
    assert {f["unchecked"] for f in clean["functions"].values()} == {0}
    # without --stale nothing is imported, so staleness is not known: null, and no column
    unknown = cli_json(project, "stats")
    assert {(f["stale"], f["unchecked"]) for f in unknown["functions"].values()} == {
        (None, None)}
    plain = cli(project, "stats")
    assert plain.returncode == 0, plain.stderr
    assert "STALE" not in plain.stdout
    assert "loading cli_tools" not in plain.stdout + plain.stderr  # not imported

    project.replace("cli_tools.py", "return shout(", "return shout('> ' + ")  # greet's body
    listing = cli_json(project, "ls", "--stale")
    assert sorted(item["key"] for item in listing) == sorted([keys["ada"], keys["bob"]])
    assert {item["function"] for item in listing} == {"cli_tools.greet"}

    text = cli(project, "ls", "--stale")
    assert text.returncode == 0, text.stderr
    assert keys["ada"] in text.stdout
    assert keys["square"] not in text.stdout
    assert text.stdout.strip().splitlines()[-1] == "2 recordings"

    stats = cli_json(project, "stats", "--stale")
    assert {name: f["stale"] for name, f in stats["functions"].items()} == {
        "cli_tools.greet": 2, "cli_tools.square": 0, "cli_pkg.mod.cube": 0}
    table = cli(project, "stats", "--stale")
    assert table.returncode == 0, table.stderr
    rows = stats_rows(table.stdout)
    assert rows["cli_tools.greet"] == {"ENTRIES": "2", "STALE": "2", "UNCHECKED": "0"}
    assert rows["cli_tools.square"] == {"ENTRIES": "1", "STALE": "0", "UNCHECKED": "0"}
    assert rows["cli_pkg.mod.cube"] == {"ENTRIES": "1", "STALE": "0", "UNCHECKED": "0"}


def test_helper_edit_shows_in_stats(recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, _ = recorded_project
    project.replace("cli_tools.py", "return text.upper()", "return text.title()")
    project.replace("cli_pkg/mod.py", "return x ** 3", "return x * x * x")
    stats = cli_json(project, "stats", "--stale")
    assert {name: f["stale"] for name, f in stats["functions"].items()} == {
        "cli_tools.greet": 2, "cli_tools.square": 0, "cli_pkg.mod.cube": 1}


# -- prune --stale ----------------------------------------------------------------------------


def test_prune_stale_dry_run_is_the_default(
        recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    store = project.store
    square = path_of(store, keys["square"])
    project.replace("cli_tools.py", "return x * x", "return x * x + 0")

    for args in (("prune", "--stale"), ("prune", "--stale", "--dry-run")):
        result = cli(project, *args)
        assert result.returncode == 1, result.stdout + result.stderr
        assert str(square) in result.stdout
        assert "would remove" in result.stdout
        assert "`cli_tools.square`" in result.stdout
        assert "1 file to remove; run again with --yes" in result.stdout
        assert square.exists()

    listed = cli_json(project, "prune", "--stale", exit_code=1)
    assert listed["removed"] is False
    assert listed["files"] == [{
        "path": str(square), "reason": "stale",
        "detail": "the code of `cli_tools.square` changed since it was recorded",
        "function": "cli_tools.square", "key": keys["square"]}]
    assert square.exists()
    assert len(list(store.entries())) == 4

    removed = cli(project, "prune", "--stale", "--yes")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "1 file removed" in removed.stdout
    assert not square.exists()
    assert len(list(store.entries())) == 3

    again = cli(project, "prune", "--stale")
    assert again.returncode == 0
    assert "nothing to prune" in again.stdout
    assert cli(project, "verify").returncode == 0


def test_prune_needs_a_category(recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, _ = recorded_project
    project.replace("cli_tools.py", "return x * x", "return x * x + 0")
    for args in (("prune",), ("prune", "--yes"), ("prune", "--json")):
        result = cli(project, *args)
        assert result.returncode == 2
        assert "--stale" in result.stderr
        assert "--expired" in result.stderr
        assert "--orphans" in result.stderr
        assert result.stdout == ""
    both = cli(project, "prune", "--stale", "--dry-run", "--yes")
    assert both.returncode == 2
    assert "not allowed with" in both.stderr
    assert len(list(project.store.entries())) == 4


def test_prune_stale_removes_gone_but_keeps_unchecked(
        recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    store = project.store
    cube = path_of(store, keys["cube"])
    greets = {path_of(store, keys["ada"]), path_of(store, keys["bob"])}
    (project.root / "cli_pkg" / "mod.py").unlink()  # gone: the package still imports
    project.write("cli_tools.py", "import not_installed_dependency\n" + TOOLS)  # unchecked

    listed = cli_json(project, "prune", "--stale", exit_code=1)
    assert [(f["path"], f["reason"]) for f in listed["files"]] == [(str(cube), "gone")]
    assert "`cli_pkg` no longer defines `mod.cube`" in listed["files"][0]["detail"]
    assert [item["key"] for item in cli_json(project, "ls", "--stale")] == [keys["cube"]]

    removed = cli_json(project, "prune", "--stale", "--yes")
    assert removed["removed"] is True
    assert [f["path"] for f in removed["files"]] == [str(cube)]
    assert not cube.exists()
    assert all(p.exists() for p in greets)
    assert path_of(store, keys["square"]).exists()
    assert cli(project, "prune", "--stale").returncode == 0


# -- expired ----------------------------------------------------------------------------------


def test_ls_and_prune_expired(project: Project) -> None:
    project.write("pyproject.toml", '[project]\nname = "proj"\nversion = "0"\n\n'
                  '[tool.memo_replay]\nttl = "1d"\n')
    project.write("cli_ttl.py", '''
        from memo_replay import recorded


        @recorded
        def daily(x: int) -> int:
            return x


        @recorded(ttl=3600)
        def hourly(x: int) -> int:
            return -x
    ''')
    keys = record(project, """
        import json, cli_ttl
        keys = {f"{f.__name__}{n}": f.memo.key(n) for f in (cli_ttl.daily, cli_ttl.hourly)
                for n in (1, 2)}
        for n in (1, 2):
            cli_ttl.daily(n); cli_ttl.hourly(n)
        print(json.dumps(keys))
    """)
    store = project.store
    backdate(path_of(store, keys["daily1"]), dt.timedelta(days=2))
    backdate(path_of(store, keys["daily2"]), dt.timedelta(hours=5))
    backdate(path_of(store, keys["hourly1"]), dt.timedelta(hours=5))
    assert cli(project, "verify").returncode == 0
    expired = {keys["daily1"], keys["hourly1"]}

    assert {item["key"] for item in cli_json(project, "ls", "--expired")} == expired
    text = cli(project, "ls", "--expired")
    assert text.stdout.strip().splitlines()[-1] == "2 recordings"

    dry = cli(project, "prune", "--expired")
    assert dry.returncode == 1
    assert "expired" in dry.stdout
    assert "ttl 1 days" in dry.stdout
    assert len(list(store.entries())) == 4

    removed = cli_json(project, "prune", "--expired", "--yes")
    assert {f["key"] for f in removed["files"]} == expired
    assert {f["reason"] for f in removed["files"]} == {"expired"}
    assert {e.key for e in store.entries()} == {keys["daily2"], keys["hourly2"]}
    assert cli_json(project, "prune", "--expired") == {
        "store": str(project.root / "fixtures_store"), "removed": False, "files": [],
        "unchecked": []}


# -- orphans ----------------------------------------------------------------------------------


def test_prune_orphans(recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    entry = path_of(project.store, keys["square"])
    orphan = entry.parent / f".{keys['square']}.abc123.tmp"
    orphan.write_text('{"truncated": ')
    assert cli(project, "verify").returncode == 1
    # younger than --older-than (default 1h): it may be a write in flight, left alone
    young = cli(project, "prune", "--orphans", "--yes")
    assert young.returncode == 0, young.stdout + young.stderr
    assert "0 files removed" in young.stdout
    assert orphan.exists()
    assert str(orphan) in cli(project, "prune", "--orphans", "--older-than", "0").stdout
    hours_ago = time.time() - 7200
    os.utime(orphan, (hours_ago, hours_ago))

    dry = cli(project, "prune", "--orphans")
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert str(orphan) in dry.stdout
    assert "orphan" in dry.stdout
    assert orphan.exists()
    listed = cli_json(project, "prune", "--orphans", exit_code=1)
    assert [(f["path"], f["reason"]) for f in listed["files"]] == [(str(orphan), "orphan")]
    assert listed["files"][0]["detail"]

    removed = cli(project, "prune", "--orphans", "--yes")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not orphan.exists()
    assert entry.exists()
    verify = cli(project, "verify")
    assert verify.returncode == 0, verify.stdout
    assert "every entry is intact" in verify.stdout
    assert len(list(project.store.entries())) == 4


# -- diff -------------------------------------------------------------------------------------


def test_diff_different_arguments(recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    result = cli(project, "diff", keys["ada"], keys["bob"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{keys['ada']} → {keys['bob']}" in result.stdout
    assert "argument `name` differs: recorded 'ada', now 'bob'" in result.stdout
    assert "(and their results differ)" in result.stdout
    assert "source" not in result.stdout

    reverse = cli(project, "diff", keys["bob"], keys["ada"])
    assert "argument `name` differs: recorded 'bob', now 'ada'" in reverse.stdout

    as_json = cli_json(project, "diff", keys["ada"], keys["bob"], exit_code=1)
    assert as_json["first"] == keys["ada"]
    assert as_json["second"] == keys["bob"]
    assert [(d["component"], d["name"]) for d in as_json["differences"]] == [
        ("argument", "name")]
    assert "recorded 'ada', now 'bob'" in as_json["differences"][0]["message"]


def test_diff_same_entry_and_prefixes(recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    same = cli(project, "diff", keys["square"], keys["square"])
    assert same.returncode == 0, same.stdout + same.stderr
    assert "the two recordings have the same key components" in same.stdout
    assert cli_json(project, "diff", keys["square"], keys["square"])["differences"] == []

    others = [k for k in keys.values() if k != keys["cube"]]
    prefix = next(keys["cube"][:n] for n in range(4, 33)
                  if not any(k.startswith(keys["cube"][:n]) for k in others))
    assert cli(project, "diff", prefix, keys["cube"]).returncode == 0


def test_diff_unknown_key_exits_2(recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    for args in (("0" * 32, keys["ada"]), (keys["ada"], "ffffzzzz")):
        result = cli(project, "diff", *args)
        assert result.returncode == 2
        missing = args[0] if args[0] != keys["ada"] else args[1]
        assert repr(missing) in result.stderr
        assert result.stdout == ""
    ambiguous = cli(project, "diff", "", keys["ada"])  # "" prefixes every key
    assert ambiguous.returncode == 2


def test_diff_before_and_after_a_body_edit(
        recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, keys = recorded_project
    project.replace("cli_tools.py", "return x * x", "return x * x + 1")
    after = record(project, "import json, cli_tools\ncli_tools.square(3)\n"
                   "print(json.dumps({'square': cli_tools.square.memo.key(3)}))")["square"]
    before = keys["square"]
    assert after != before
    assert path_of(project.store, before).exists()

    result = cli(project, "diff", before, after)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "source of `cli_tools.square` changed" in result.stdout
    assert "--- recorded" in result.stdout
    assert "+++ current" in result.stdout
    assert re.search(r"^\s+-\s+return x \* x$", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^\s+\+\s+return x \* x \+ 1$", result.stdout, re.MULTILINE), result.stdout
    assert "argument" not in result.stdout
    assert "(and their results differ)" in result.stdout

    as_json = cli_json(project, "diff", before, after, exit_code=1)
    (source,) = [d for d in as_json["differences"] if d["component"] == "source"]
    assert source["name"] == "cli_tools.square"
    assert "+    return x * x + 1" in source["detail"]

    # the old recording is the stale one
    assert [item["key"] for item in cli_json(project, "ls", "--stale")] == [before]


# -- pre-commit hooks -------------------------------------------------------------------------


def hook_entries() -> dict[str, str]:
    """{id: entry} of ``.pre-commit-hooks.yaml``, read without a YAML library."""
    hooks: dict[str, str] = {}
    current = None
    for line in (REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        if match := re.match(r"^-\s+id:\s*(\S+)\s*$", line):
            current = match[1]
        elif (match := re.match(r"^\s+entry:\s*(.+?)\s*$", line)) and current:
            hooks[current] = match[1]
    return hooks


def test_hooks_point_at_the_console_script() -> None:
    hooks = hook_entries()
    assert set(hooks) == {"memo-replay-verify", "memo-replay-stale"}
    scripts = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'memo-replay = "memo_replay.cli:main"' in scripts
    for entry in hooks.values():
        assert shlex.split(entry)[0] == "memo-replay"


def test_pre_commit_hook_entries_pass_on_a_clean_store(
        recorded_project: tuple[Project, dict[str, str]]) -> None:
    project, _ = recorded_project
    hooks = hook_entries()
    for hook, entry in hooks.items():
        args = shlex.split(entry)[1:]
        result = cli(project, *args)
        assert result.returncode == 0, f"{hook}: {entry}\n{result.stdout}{result.stderr}"

    # and the stale hook fails once a recording no longer matches the code
    project.replace("cli_tools.py", "return x * x", "return x * x + 0")
    stale = cli(project, *shlex.split(hooks["memo-replay-stale"])[1:])
    assert stale.returncode == 1
    assert "cli_tools.square" in stale.stdout
    assert cli(project, *shlex.split(hooks["memo-replay-verify"])[1:]).returncode == 0
