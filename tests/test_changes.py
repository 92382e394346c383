"""``memo-replay changes [BASE]`` and the payload part of ``memo-replay diff``: real git
repositories in temporary directories, real recordings, the CLI as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from xxhash import xxh3_128_hexdigest

from memo_replay.store.entry import render

if TYPE_CHECKING:
    from conftest import Project

TRANS = '''
from memo_replay import recorded

LABEL = "b"


@recorded
def translate(prompt: str) -> dict:
    return {"prompt": prompt, "states": [{"name": "a"}, {"name": LABEL}]}


@recorded
def blob(n: int) -> bytes:
    return bytes(range(n)) * 3
'''

KEYS = """
import json, trans
print(json.dumps({p: trans.translate.memo.key(p) for p in ("x", "y", "z")}
                 | {"blob": trans.blob.memo.key(4)}))
"""


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` with a fixed identity and no user or system configuration."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True,
                          check=True)
    return done.stdout


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def changes(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return project.run_module("memo_replay", "changes", *args, check=False)


def keys(project: Project) -> dict[str, str]:
    found: dict[str, str] = json.loads(project.run(KEYS).stdout.splitlines()[-1])
    return found


@pytest.fixture
def repo(project: Project) -> Project:
    """A git repository on ``main`` whose last commit holds recordings of ``translate("x")``,
    ``translate("y")`` and ``blob(4)``."""
    git(project.root, "init", "-q", "-b", "main")
    project.write("trans.py", TRANS)
    project.run("import trans\ntrans.translate('x'); trans.translate('y'); trans.blob(4)",
                mode="record")
    assert len(list(project.store.entries())) == 3
    commit(project.root, "record")
    return project


def rerecord_with_new_label(project: Project) -> dict[str, str]:
    """LABEL "b" → "B"; ``translate("x")`` re-recorded, ``translate("z")`` new, the old
    recordings of ``translate`` deleted (as ``prune --stale --yes`` would)."""
    before = keys(project)
    project.replace("trans.py", 'LABEL = "b"', 'LABEL = "B"')
    project.run("import trans\ntrans.translate('x'); trans.translate('z')", mode="record")
    for name in ("x", "y"):
        assert project.store.delete(before[name])
    return before


def test_changes_reports_added_removed_and_changed_with_why_and_what(repo: Project) -> None:
    before = rerecord_with_new_label(repo)
    after = keys(repo)
    head = git(repo.root, "rev-parse", "HEAD").strip()
    status = git(repo.root, "status", "--porcelain")

    result = changes(repo)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"in fixtures_store: the merge base of HEAD and main ({head[:12]}) → the working " \
        f"tree" in out
    assert "trans.translate: 1 added, 1 removed, 1 changed" in out
    assert f"changed {before['x'][:12]} → {after['x'][:12]}  prompt=\"x\"" in out
    assert "why the key changed:" in out
    assert "- constant `trans.LABEL` changed" in out
    assert "what the answer changed:" in out
    assert 'states[1].name: "b" → "B"' in out
    assert f"added {after['z'][:12]}  prompt=\"z\"" in out
    assert f"removed {before['y'][:12]}  prompt=\"y\"" in out
    assert "trans.blob" not in out  # unchanged recordings are not mentioned
    assert out.rstrip().endswith("1 added, 1 removed, 1 changed")
    # Read from git, never checked out or written: HEAD, index and work tree as they were.
    assert git(repo.root, "rev-parse", "HEAD").strip() == head
    assert git(repo.root, "status", "--porcelain") == status


def test_changes_json(repo: Project) -> None:
    before = rerecord_with_new_label(repo)
    after = keys(repo)
    result = changes(repo, "--json")
    assert result.returncode == 1, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["counts"] == {"added": 1, "removed": 1, "changed": 1, "damaged": 0}
    assert report["store"] == "fixtures_store"
    (function,) = report["functions"]
    assert function == "trans.translate"
    found = report["functions"][function]
    assert [e["key"] for e in found["added"]] == [after["z"]]
    assert [e["key"] for e in found["removed"]] == [before["y"]]
    (changed,) = found["changed"]
    assert (changed["old"]["key"], changed["new"]["key"]) == (before["x"], after["x"])
    assert changed["old"]["arguments"] == {"prompt": "x"}
    assert any("LABEL" in d["message"] for d in changed["differences"])
    assert changed["payload"]["mode"] == "fields"
    assert changed["payload"]["changes"] == [
        {"path": "states[1].name", "kind": "changed", "before": '"b"', "after": '"B"'}]


def test_changes_markdown_for_a_pull_request_comment(repo: Project) -> None:
    rerecord_with_new_label(repo)
    result = changes(repo, "--markdown")
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert out.startswith("### recordings in `fixtures_store`: ")
    assert "#### `trans.translate`: 1 added, 1 removed, 1 changed" in out
    assert "```text" in out
    assert '  states[1].name: "b" → "B"' in out
    assert out.count("```") % 2 == 0  # every fence is closed


def test_changes_nothing_changed_exits_0(repo: Project) -> None:
    result = changes(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("no recording changed")
    assert json.loads(changes(repo, "--json").stdout)["functions"] == {}


def test_changes_default_base_is_the_merge_base_with_main(repo: Project) -> None:
    main = git(repo.root, "rev-parse", "HEAD").strip()
    git(repo.root, "switch", "-q", "-c", "feature")
    rerecord_with_new_label(repo)
    commit(repo.root, "re-record on a branch")
    report = json.loads(changes(repo, "--json").stdout)
    assert report["commit"] == main
    assert report["counts"]["changed"] == 1
    # An explicit BASE: the branch's own commit has everything, nothing changed since.
    same = changes(repo, "HEAD")
    assert same.returncode == 0, same.stdout + same.stderr


def test_changes_binary_payloads_show_sizes_and_checksums(repo: Project) -> None:
    old = keys(repo)["blob"]
    repo.replace("trans.py", "bytes(range(n)) * 3", "bytes(range(n)) * 5")
    repo.run("import trans\ntrans.blob(4)", mode="record")
    assert repo.store.delete(old)
    report = json.loads(changes(repo, "--json").stdout)
    (changed,) = report["functions"]["trans.blob"]["changed"]
    payload = changed["payload"]
    assert payload["mode"] == "summary"
    assert (payload["before"]["size"], payload["after"]["size"]) == (12, 20)
    assert payload["before"]["checksum"] != payload["after"]["checksum"]
    text = changes(repo).stdout
    assert "before: 12 bytes (binary, bytes" in text
    assert "after:  20 bytes (binary, bytes" in text


def test_changes_rerecorded_under_the_same_key(repo: Project) -> None:
    """An entry rewritten in place (a new answer for the same call) is a change, not noise."""
    entry = next(e for e in repo.store.entries("trans.translate")
                 if e.arguments == {"prompt": "x"})
    document = json.loads(entry.path.read_text(encoding="utf-8"))
    document["result"]["payload"]["states"][0]["name"] = "A"
    canonical = json.dumps(document["result"]["payload"], ensure_ascii=False,
                           separators=(",", ":"))
    document["result"]["checksum"] = xxh3_128_hexdigest(canonical.encode())
    entry.path.write_bytes(render(document))
    assert repo.store.verify() == []
    result = changes(repo)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "re-recorded under the same key" in result.stdout
    assert 'states[0].name: "a" → "A"' in result.stdout


def test_changes_reports_a_damaged_old_entry_instead_of_crashing(repo: Project) -> None:
    """The base revision is untrusted: a damaged entry is reported; a symlink is not followed."""
    store = repo.root / "fixtures_store" / "trans.translate"
    (store / ("0" * 32 + ".json")).write_text('{"format": 1, "key": "not closed"')
    outside = repo.root.parent / "secret.json"
    outside.write_text('{"format": 1}')
    (store / ("1" * 32 + ".json")).symlink_to(outside)
    commit(repo.root, "a damaged entry and a symlink")
    (store / ("0" * 32 + ".json")).unlink()
    (store / ("1" * 32 + ".json")).unlink()
    result = changes(repo, "HEAD")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "damaged entries:" in result.stdout
    assert f"HEAD: trans.translate/{'0' * 32}.json: not valid JSON" in result.stdout
    assert "1" * 32 not in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("setup", "args", "message"), [
    ("no-git", (), "is not inside a git repository"),
    ("trunk", (), "found no default branch to compare with"),
    ("main", ("no-such-branch",), "unknown revision 'no-such-branch'"),
    ("main", ("--upload-pack=touch",), "unrecognized arguments"),
])
def test_changes_git_problems_exit_2(project: Project, setup: str, args: tuple[str, ...],
                                     message: str) -> None:
    project.write("trans.py", TRANS)
    project.run("import trans\ntrans.translate('x')", mode="record")
    if setup != "no-git":
        git(project.root, "init", "-q", "-b", setup)
        commit(project.root, "record")
    result = changes(project, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_diff_shows_what_the_answer_changed(repo: Project) -> None:
    before = keys(repo)["x"]
    repo.replace("trans.py", 'LABEL = "b"', 'LABEL = "B"')
    repo.run("import trans\ntrans.translate('x')", mode="record")
    after = keys(repo)["x"]
    result = repo.run_module("memo_replay", "diff", before, after, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "(and their results differ):" in result.stdout
    assert 'states[1].name: "b" → "B"' in result.stdout
    as_json = json.loads(repo.run_module("memo_replay", "diff", before, after, "--json",
                                         check=False).stdout)
    assert as_json["payload"]["changes"][0]["path"] == "states[1].name"


MODELS = '''
from dataclasses import dataclass

from pydantic import BaseModel

from memo_replay import recorded

NAMES = ("idle", "run")


class State(BaseModel):
    name: str


class IR(BaseModel):
    states: list[State]


@dataclass
class Stats:
    count: int
    label: str


@recorded
def parse(text: str) -> IR:
    return IR(states=[State(name=n) for n in NAMES])


@recorded
def measure(text: str) -> Stats:
    return Stats(len(NAMES), NAMES[-1])
'''


def test_changes_compares_pydantic_and_dataclass_results_field_by_field(
        project: Project) -> None:
    git(project.root, "init", "-q", "-b", "main")
    project.write("models.py", MODELS)
    record = "import models\nmodels.parse('m'); models.measure('m')"
    project.run(record, mode="record")
    commit(project.root, "record")
    old = {e.function: e.key for e in project.store.entries()}
    project.replace("models.py", '("idle", "run")', '("idle", "walk", "stop")')
    project.run(record, mode="record")
    for key in old.values():
        assert project.store.delete(key)
    result = changes(project)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert 'states[1].name: "run" → "walk"' in out
    assert 'states[2]: added {"name": "stop"}' in out
    assert "count: 2 → 3" in out
    assert 'label: "run" → "stop"' in out
    assert "models.measure: 1 changed" in out
    assert "models.parse: 1 changed" in out


def test_changes_output_escapes_what_an_entry_says(repo: Project) -> None:
    """Arguments and values come from a pull request's store: on a terminal they cannot write
    escape sequences, and in Markdown they stay inside code (backticks cannot close it)."""
    repo.run("import trans\ntrans.translate('a`b\\x1b[31m\\u202e')", mode="record")
    text = changes(repo).stdout
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert 'prompt="a`b\\u001b[31m\\u202e"' in text
    markdown = changes(repo, "--markdown").stdout
    assert "\x1b" not in markdown
    assert "\u202e" not in markdown
    assert '- ``added ' in markdown
    assert 'prompt="a`b\\u001b[31m\\u202e"``' in markdown


def test_a_call_rerecorded_beside_its_unpruned_old_recording_is_a_change(repo: Project) -> None:
    """The usual state after recording in auto mode: the new entry is new to git, the old one
    untouched. The review still pairs them and shows why and what."""
    before = keys(repo)
    repo.replace("trans.py", 'LABEL = "b"', 'LABEL = "B"')
    repo.run("import trans\ntrans.translate('x')", mode="auto")
    after = keys(repo)
    result = changes(repo)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"changed {before['x'][:12]} → {after['x'][:12]}  prompt=\"x\"  (the old recording " \
           f"is still in the store)" in result.stdout
    assert 'states[1].name: "b" → "B"' in result.stdout
    assert result.stdout.rstrip().endswith("0 added, 0 removed, 1 changed")
    (changed,) = json.loads(changes(repo, "--json").stdout)["functions"]["trans.translate"][
        "changed"]
    assert changed["old_kept"] is True
