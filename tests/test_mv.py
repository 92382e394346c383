"""Moving a recorded function: the miss hint and ``memo-replay mv OLD NEW``.

Every scenario is a real project in a real git repository: recorded, committed, refactored with
``git mv``, replayed strictly (by pytest in CI mode, or a script in ``replay`` mode), moved with
the CLI in a subprocess, and inspected with ``git status``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Project

OLD = "pkg.translate.translate"
NEW = "pkg.translate_core.translate"

PROMPTS = '''
def build(text: str) -> str:
    return f"Translate: {text}"
'''

TRANSLATE = '''
import time

from memo_replay import recorded
from pkg.prompts import build


@recorded
def translate(text: str, model: str = "small") -> dict:
    with open("calls.log", "a") as log:
        log.write(f"{text}\\n")
    return {"ir": build(text).upper(), "model": model, "at": time.time_ns()}
'''

CALLS = """
import json, sys
from {module} import translate
print(json.dumps([translate("door"), translate("lamp", model="large")]))
"""

TEST_FILE = '''
from pkg.translate_core import translate


def test_translate():
    assert translate("door")["ir"] == "TRANSLATE: DOOR"
'''


def git(project: Project, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com",
         "-c", "commit.gpgsign=false", *args],
        cwd=project.root, capture_output=True, text=True, check=True)
    return result.stdout


def status(project: Project) -> list[str]:
    return git(project, "status", "--porcelain", "--untracked-files=all").splitlines()


def mv(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return project.run_module("memo_replay", "mv", *args, mode=None, check=False)


def calls(project: Project, module: str, mode: str = "replay"
          ) -> subprocess.CompletedProcess[str]:
    return project.run(CALLS.format(module=module), mode=mode, check=False)


def entries(project: Project, function: str) -> dict[str, dict[str, object]]:
    """The entry documents of ``function``, by file name."""
    directory = project.root / "fixtures_store" / function
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


@pytest.fixture
def committed(project: Project) -> Project:
    """A project whose `pkg.translate.translate` has two committed recordings."""
    project.write("pkg/__init__.py", "")
    project.write("pkg/prompts.py", PROMPTS)
    project.write("pkg/translate.py", TRANSLATE)
    project.write(".gitignore", "calls.log\n__pycache__/\n")
    calls(project, "pkg.translate", mode="auto").check_returncode()
    assert len(project.calls()) == 2
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "translator with recordings")
    return project


def moved(project: Project) -> Project:
    """`git mv pkg/translate.py pkg/translate_core.py`: the function's id changes, its code
    does not."""
    git(project, "mv", "pkg/translate.py", "pkg/translate_core.py")
    project.write("tests/test_translate.py", TEST_FILE)
    return project


def test_a_moved_function_is_found_moved_then_mv_makes_strict_replay_pass(
        committed: Project) -> None:
    project = moved(committed)
    before = entries(project, OLD)
    assert len(before) == 2

    # CI: strict replay under pytest fails, naming where the recordings are and the command.
    run = project.run_module("pytest", "-q", "-p", "no:cacheprovider", "tests", mode=None,
                             env={"CI": "true"}, check=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"no recording of `{NEW}` exists in the store" in run.stdout
    assert f"This call was recorded under `{OLD}` (same code, arguments and files)" in run.stdout
    assert f"memo-replay mv {OLD} {NEW} --yes" in run.stdout
    assert len(project.calls()) == 2  # nothing ran for real

    # The dry run lists both recordings and changes nothing.
    dry = mv(project, OLD, NEW)
    assert dry.returncode == 1, dry.stderr
    assert dry.stdout.count("would move") == 2
    assert "2 recordings to move" in dry.stdout
    assert "--yes" in dry.stdout
    assert entries(project, OLD) == before
    assert not (project.root / "fixtures_store" / NEW).exists()

    done = mv(project, OLD, NEW, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 recordings moved" in done.stdout
    assert not (project.root / "fixtures_store" / OLD).exists()
    after = entries(project, NEW)
    assert len(after) == 2
    for name, document in after.items():
        assert document["function"] == NEW
        assert document["key"] == name.removesuffix(".json")
    # The recordings themselves are kept: same answers, same recording times.
    assert sorted(json.dumps(d["result"]) for d in after.values()) == \
        sorted(json.dumps(d["result"]) for d in before.values())
    assert sorted(d["recorded_at"] for d in after.values()) == \
        sorted(d["recorded_at"] for d in before.values())  # type: ignore[type-var]
    # ...and what explains a later miss: the argument types and constant previews.
    for field in ("argument_types", "constant_values"):
        kept = sorted(json.dumps(d["components"].get(field)) for d in before.values())  # type: ignore[attr-defined]
        assert kept == sorted(json.dumps(d["components"].get(field))  # type: ignore[attr-defined]
                              for d in after.values())
    assert all(d["components"].get("argument_types") for d in after.values())  # type: ignore[attr-defined]

    # Strict replay passes, under pytest and from a script, with nothing called for real.
    run = project.run_module("pytest", "-q", "-p", "no:cacheprovider", "tests", mode=None,
                             env={"CI": "true"}, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    replayed = calls(project, "pkg.translate_core")
    assert replayed.returncode == 0, replayed.stderr
    assert [r["model"] for r in json.loads(replayed.stdout)] == ["small", "large"]
    assert len(project.calls()) == 2
    assert project.run_module("memo_replay", "verify", mode=None, check=False).returncode == 0

    # git sees the store change: the old entries deleted, the new ones to add.
    changed = status(project)
    assert sum(line.startswith(f" D fixtures_store/{OLD}/") for line in changed) == 2
    assert sum(line.startswith(f"?? fixtures_store/{NEW}/") for line in changed) == 2

    again = mv(project, OLD, NEW, "--yes")
    assert again.returncode == 2
    assert f"no recordings of OLD `{OLD}`" in again.stderr
    assert f"NEW `{NEW}` has 2 (already moved?)" in again.stderr


def test_recordings_of_other_code_are_not_moved_unless_forced(committed: Project) -> None:
    project = moved(committed)
    project.replace("pkg/translate_core.py", ".upper()", ".lower()")
    before = entries(project, OLD)

    run = calls(project, "pkg.translate_core")
    assert run.returncode == 1
    assert "memo-replay mv" not in run.stderr  # the code differs: not this call's recording

    refused = mv(project, OLD, NEW, "--yes")
    assert refused.returncode == 1
    assert refused.stdout.count("(code-differs)") == 2
    assert f"source of `{NEW}` changed" in refused.stdout
    assert "--force" in refused.stdout
    assert "0 recordings moved" in refused.stdout
    assert entries(project, OLD) == before
    assert not (project.root / "fixtures_store" / NEW).exists()

    forced = mv(project, OLD, NEW, "--force", "--yes")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "2 recordings moved" in forced.stdout
    # Forced, they take the current code's fingerprint: the edited function replays them.
    replayed = calls(project, "pkg.translate_core")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)[0]["ir"] == "TRANSLATE: DOOR"
    assert len(project.calls()) == 2


def test_an_interrupted_move_is_finished_by_running_it_again(committed: Project) -> None:
    project = moved(committed)
    assert mv(project, OLD, NEW, "--yes").returncode == 0
    written = {name: (project.root / "fixtures_store" / NEW / name).read_bytes()
               for name in entries(project, NEW)}
    # The state a crash between writing the new entries and deleting the old ones leaves.
    git(project, "checkout", "--", f"fixtures_store/{OLD}")
    assert len(entries(project, OLD)) == 2

    dry = mv(project, OLD, NEW)
    assert dry.returncode == 1
    assert dry.stdout.count("would remove") == 2
    assert "already holds this recording" in dry.stdout

    done = mv(project, OLD, NEW, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (project.root / "fixtures_store" / OLD).exists()
    assert {name: (project.root / "fixtures_store" / NEW / name).read_bytes()
            for name in entries(project, NEW)} == written


def test_a_different_recording_under_the_new_key_is_a_conflict(committed: Project) -> None:
    project = moved(committed)
    # Recorded again under the new id (auto mode): same key as a move would give, another
    # answer (the result carries the time of the call).
    calls(project, "pkg.translate_core", mode="auto").check_returncode()
    assert len(project.calls()) == 4
    before_old, before_new = entries(project, OLD), entries(project, NEW)

    result = mv(project, OLD, NEW, "--yes")
    assert result.returncode == 1
    assert result.stdout.count("(conflict)") == 2
    assert "already holds a different recording of this call" in result.stdout
    assert "memo-replay diff" in result.stdout
    assert entries(project, OLD) == before_old
    assert entries(project, NEW) == before_new


BLOBS = '''
from memo_replay import recorded


@recorded
def render(size: int) -> bytes:
    return bytes(range(256)) * (size // 256)
'''


def test_entries_with_payload_files_move_with_them(project: Project) -> None:
    project.write("media/__init__.py", "")
    project.write("media/old.py", BLOBS)
    project.run("from media.old import render; render(256 * 1024)")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "blobs")
    git(project, "mv", "media/old.py", "media/new.py")
    old_dir = project.root / "fixtures_store" / "media.old.render"
    assert len(list(old_dir.glob("*.bin"))) == 1

    result = mv(project, "media.old.render", "media.new.render", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not old_dir.exists()
    new_dir = project.root / "fixtures_store" / "media.new.render"
    (entry,) = new_dir.glob("*.json")
    (payload,) = new_dir.glob("*.bin")
    key = entry.stem
    assert payload.name.startswith(key + ".")
    assert json.loads(entry.read_text())["result"]["file"] == payload.name
    replayed = project.run("from media.new import render\n"
                           "assert render(256 * 1024) == bytes(range(256)) * 1024",
                           mode="replay", check=False)
    assert replayed.returncode == 0, replayed.stderr
    verified = project.run_module("memo_replay", "verify", mode=None, check=False)
    assert verified.returncode == 0, verified.stdout


def test_mv_json_lists_each_entry(committed: Project) -> None:
    project = moved(committed)
    result = mv(project, OLD, NEW, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["from"] == OLD
    assert report["to"] == NEW
    assert report["moved"] is False
    assert [e["status"] for e in report["entries"]] == ["move", "move"]
    for e in report["entries"]:
        assert Path(e["path"]).exists()
        assert not Path(e["new_path"]).exists()
        assert e["new_key"] == Path(e["new_path"]).stem


@pytest.mark.parametrize(("old", "new", "message"), [
    ("pkg.translate.translat", NEW, "did you mean `pkg.translate.translate`?"),
    (OLD, OLD, "OLD and NEW are both"),
    (OLD, "pkg.nowhere.translate", "is not a recorded function: `pkg` does not define "
                                   "`nowhere.translate`"),
    (OLD, "pkg.prompts.build", "is not a recorded function: `pkg.prompts.build` is not "
                               "@recorded"),
    (OLD, "nowhere.translate", "cannot be checked: no module of `nowhere.translate`"),
    (OLD, "json.dumps", "`json` is a standard-library module"),
])
def test_mv_refuses_clearly(committed: Project, old: str, new: str, message: str) -> None:
    project = moved(committed)
    result = mv(project, old, new, "--yes")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(entries(project, OLD)) == 2


def test_the_hint_names_the_store_when_the_cli_would_not_find_it(committed: Project) -> None:
    project = moved(committed)
    git(project, "mv", "fixtures_store", "recordings")
    project.replace("pkg/translate_core.py", "@recorded", '@recorded(store="recordings")')
    run = calls(project, "pkg.translate_core")
    assert run.returncode == 1
    assert f"memo-replay mv {OLD} {NEW} --yes --store " in run.stderr
    command = run.stderr.split("re-recording them: ")[1].splitlines()[0]
    store = command.split("--store ")[1]
    assert Path(store).resolve() == (project.root / "recordings").resolve()
    # Moving into a store with many other functions: the hint still finds the one.
    for i in range(300):
        (project.root / "recordings" / f"other.module{i}.function").mkdir()
    run = calls(project, "pkg.translate_core")
    assert f"This call was recorded under `{OLD}`" in run.stderr


def test_a_damaged_entry_is_listed_and_left_in_place(committed: Project) -> None:
    project = moved(committed)
    damaged, intact = sorted((project.root / "fixtures_store" / OLD).glob("*.json"))
    damaged.write_text(damaged.read_text()[:40])
    result = mv(project, OLD, NEW, "--yes")
    assert result.returncode == 1
    assert f"{damaged.stem}  (damaged)" in result.stdout
    assert "run `memo-replay verify`" in result.stdout
    assert "1 recording moved" in result.stdout
    assert damaged.exists()
    assert not intact.exists()
    assert len(entries(project, NEW)) == 1
