"""The store in a real git workflow: deterministic entries, clean re-records, merges, clones and
read-only checkouts.

Everything here runs real ``git`` (isolated from the machine's git configuration) and real
interpreters recording into a throwaway project; the read-only checkout is a real read-only bind
mount in a private mount namespace (``unshare -m``), because we may be root and root ignores
``chmod``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import last_json

from memo_replay import Store

if TYPE_CHECKING:
    from conftest import Project

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

MODULE = '''
import dataclasses
import os
from pathlib import Path

from memo_replay import recorded

HERE = Path(__file__).parent


def _log(line: str) -> None:
    # CALLS_LOG lets a read-only checkout log its real calls somewhere writable.
    with open(os.environ.get("CALLS_LOG") or HERE / "calls.log", "a") as fh:
        fh.write(line + "\\n")


@dataclasses.dataclass
class Point:
    x: int
    y: float


@recorded
def f(n: int) -> dict:
    _log(f"f {n}")
    return {"n": n, "square": n * n, "tags": ["b", "a"], "text": "héllo ✓",
            "nested": {"z": 1, "a": [1.5, None, True]}}


@recorded
def shout(text: str, times: int = 2) -> str:
    _log(f"shout {text}")
    return (text.upper() + "!") * times


@recorded
def blob(n: int) -> bytes:
    _log(f"blob {n}")
    return bytes(range(n))


@recorded
def point(x: int) -> Point:
    _log(f"point {x}")
    return Point(x, x / 3)


@recorded(files=["{path}"])
def count_lines(path: Path) -> int:
    _log(f"count_lines {path.name}")
    return len(path.read_text().splitlines())


@recorded(observe_files=False)
def remote(name: str) -> dict:
    _log(f"remote {name}")
    # service.txt is deliberately NOT part of the key: it stands for a remote service whose
    # answers may drift.
    return {"name": name, "answer": (HERE / "service.txt").read_text().strip()}


@recorded
def untouched(n: int) -> int:
    _log(f"untouched {n}")
    return -n
'''

RECORD_ALL = """
import json
from pathlib import Path
import gitmod
print(json.dumps([
    gitmod.f(0), gitmod.f(1), gitmod.shout("hi"), gitmod.shout("hi", times=3),
    gitmod.blob(40).hex(), str(gitmod.point(7)),
    gitmod.count_lines(Path("data/input.txt").resolve()), gitmod.remote("x"),
]))
"""

CALL_F = """
import json, sys
import gitmod
print(json.dumps([gitmod.f(int(n)) for n in sys.argv[1:]]))
"""


def expected_f(n: int) -> dict[str, Any]:
    return {"n": n, "square": n * n, "tags": ["b", "a"], "text": "héllo ✓",
            "nested": {"z": 1, "a": [1.5, None, True]}}


# -- helpers ----------------------------------------------------------------------------------

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}
GIT_CONFIG = ("-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
              "-c", "init.defaultBranch=main", "-c", "core.autocrlf=false")


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["git", *GIT_CONFIG, *args], cwd=cwd,
                            env={**os.environ, **GIT_ENV}, capture_output=True, text=True,
                            timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: exit {result.returncode}\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def status(cwd: Path) -> str:
    return git(cwd, "status", "--porcelain", "--untracked-files=all").stdout


def setup(project: Project) -> None:
    project.write("gitmod.py", MODULE)
    project.write("data/input.txt", "one\ntwo\nthree\n")
    project.write("service.txt", "42\n")
    project.write(".gitignore", "calls.log\n__pycache__/\n")


def init_repo(project: Project) -> None:
    git(project.root, "init", "-q")
    commit_all(project.root, "project")


def commit_all(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "-m", message)


def entry_files(store_dir: Path) -> dict[str, bytes]:
    """Store-relative path → bytes of every entry file (the index in .cache/ excluded)."""
    return {p.relative_to(store_dir).as_posix(): p.read_bytes()
            for p in sorted(store_dir.glob("*/*.json")) if not p.parent.name.startswith(".")}


_MUST_DIFFER = re.compile(rb'^  "(recorded_at|duration_s)": ')


def without_volatile_lines(raw: bytes) -> bytes:
    return b"\n".join(line for line in raw.split(b"\n") if not _MUST_DIFFER.match(line))


def without_volatile_fields(raw: bytes) -> dict[str, Any]:
    document = json.loads(raw)
    assert isinstance(document, dict)
    del document["recorded_at"], document["duration_s"]
    return document


def assert_same_recordings(first: Mapping[str, bytes], second: Mapping[str, bytes]) -> None:
    assert sorted(first) == sorted(second)  # the same file names
    for name, raw in first.items():
        assert without_volatile_fields(raw) == without_volatile_fields(second[name]), name
        assert without_volatile_lines(raw) == without_volatile_lines(second[name]), name


# -- deterministic entries --------------------------------------------------------------------


def test_two_checkouts_record_byte_identical_entries(project: Project, tmp_path: Path) -> None:
    setup(project)
    other = project.copy_to(tmp_path / "elsewhere" / "checkout")  # another path, same project
    first = last_json(project.run(RECORD_ALL, mode="record").stdout)
    second = last_json(other.run(RECORD_ALL, mode="record").stdout)
    assert first == second
    assert len(project.calls()) == len(other.calls()) == 8  # both really called everything

    recorded_here = entry_files(project.root / "fixtures_store")
    recorded_there = entry_files(other.root / "fixtures_store")
    assert len(recorded_here) == 8
    assert_same_recordings(recorded_here, recorded_there)
    assert str(project.root).encode() not in b"".join(recorded_here.values())


def test_recording_from_scratch_again_gives_byte_identical_entries(project: Project) -> None:
    setup(project)
    project.run(RECORD_ALL, mode="record")
    before = entry_files(project.root / "fixtures_store")
    shutil.rmtree(project.root / "fixtures_store")

    project.run(RECORD_ALL, mode="record")
    after = entry_files(project.root / "fixtures_store")
    assert len(before) == 8
    assert_same_recordings(before, after)
    assert len(project.calls()) == 16


# -- re-recording in a committed repository ---------------------------------------------------


def test_rerecording_unchanged_results_leaves_the_repository_clean(project: Project) -> None:
    setup(project)
    project.run(RECORD_ALL, mode="auto")
    init_repo(project)
    mtimes = {p: p.stat().st_mtime_ns for p in (project.root / "fixtures_store").glob("*/*.json")}

    project.run(RECORD_ALL, mode="record")  # the weekly drift check: call everything for real

    assert len(project.calls()) == 16
    assert git(project.root, "diff", "--exit-code", check=False).returncode == 0
    assert git(project.root, "diff", "--exit-code", "fixtures_store").returncode == 0
    assert status(project.root) == ""
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_drift_shows_as_a_diff_of_exactly_the_drifted_entry(project: Project) -> None:
    # The positive control of the drift check: a remote answer that changed is a failing
    # `git diff --exit-code fixtures_store` touching one entry's result, nothing else.
    setup(project)
    project.run(RECORD_ALL, mode="auto")
    init_repo(project)
    project.write("service.txt", "43\n")

    project.run(RECORD_ALL, mode="record")

    assert git(project.root, "diff", "--exit-code", "fixtures_store",
               check=False).returncode == 1
    [changed] = git(project.root, "diff", "--name-only", "--", "fixtures_store").stdout.split()
    assert changed.startswith("fixtures_store/gitmod.remote/")
    diff = git(project.root, "diff", "-U0", "--", "fixtures_store").stdout
    removed_added = [line for line in diff.splitlines()
                     if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    touched = {re.sub(r'^[+-]\s*"([a-z_]+)".*$', r"\1", line) for line in removed_added}
    assert touched <= {"answer", "checksum", "recorded_at", "duration_s"}, removed_added
    assert {"answer", "checksum"} <= touched


# -- branches and merges ----------------------------------------------------------------------


def test_branches_recording_different_calls_merge_without_conflict(project: Project) -> None:
    setup(project)
    init_repo(project)
    project.run(CALL_F, mode="auto", args=("0",))
    commit_all(project.root, "record f(0)")
    git(project.root, "branch", "b")

    git(project.root, "checkout", "-q", "-b", "a")
    project.run(CALL_F, mode="auto", args=("1",))
    commit_all(project.root, "record f(1)")
    git(project.root, "checkout", "-q", "b")
    project.run(CALL_F, mode="auto", args=("2",))
    commit_all(project.root, "record f(2)")
    assert project.calls() == ["f 0", "f 1", "f 2"]

    git(project.root, "checkout", "-q", "a")
    merge = git(project.root, "merge", "--no-edit", "b", check=False)
    assert merge.returncode == 0, merge.stdout + merge.stderr
    assert git(project.root, "diff", "--name-only", "--diff-filter=U").stdout == ""
    assert status(project.root) == ""
    assert len(entry_files(project.root / "fixtures_store")) == 3

    (project.root / "calls.log").unlink()
    out = project.run(CALL_F, mode="replay", args=("0", "1", "2")).stdout
    assert last_json(out) == [expected_f(0), expected_f(1), expected_f(2)]
    assert project.calls() == []  # all three replayed, the function never ran
    assert project.store.verify() == []
    assert status(project.root) == ""


def test_conflicting_recordings_resolve_by_deleting_and_rerecording(project: Project) -> None:
    # The rare conflict: both branches record the *same* call with different results (here the
    # "remote service" answered differently). docs/recovery.md: delete the entry, re-record.
    setup(project)
    init_repo(project)
    call = "import json, gitmod; print(json.dumps(gitmod.remote('x')))"
    git(project.root, "branch", "b")
    git(project.root, "checkout", "-q", "-b", "a")
    project.run(call, mode="auto")
    commit_all(project.root, "record remote on a")
    git(project.root, "checkout", "-q", "b")
    project.write("service.txt", "43\n")
    project.run(call, mode="auto")
    commit_all(project.root, "record remote on b")

    git(project.root, "checkout", "-q", "a")
    assert git(project.root, "merge", "--no-edit", "b", check=False).returncode != 0
    conflicted = git(project.root, "diff", "--name-only", "--diff-filter=U").stdout.split()
    assert len(conflicted) == 1
    assert conflicted[0].startswith("fixtures_store/gitmod.remote/")
    assert any(p.kind == "corrupt" for p in project.store.verify())  # conflict markers

    git(project.root, "rm", "-q", "-f", conflicted[0])
    project.run(call, mode="record")
    commit_all(project.root, "merge b; re-recorded remote")
    assert status(project.root) == ""
    assert project.store.verify() == []
    assert last_json(project.run(call, mode="replay").stdout) == {"name": "x", "answer": "43"}
    assert project.calls() == ["remote x", "remote x", "remote x"]


# -- clones -----------------------------------------------------------------------------------


def test_replay_in_a_fresh_clone_leaves_git_status_clean(project: Project,
                                                         tmp_path: Path) -> None:
    setup(project)
    project.run(RECORD_ALL, mode="auto")
    init_repo(project)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project.root), str(clone))
    assert not (clone / "fixtures_store" / ".cache").exists()

    expected = last_json(project.run(RECORD_ALL, mode="replay").stdout)
    replayed = type(project)(clone)
    assert last_json(replayed.run(RECORD_ALL, mode="replay").stdout) == expected
    assert replayed.calls() == []

    # A replay writes no index (it would cost more than it saves): nothing new at all.
    assert not (clone / "fixtures_store" / ".cache").exists()
    assert status(clone) == ""
    assert git(clone, "status", "--porcelain", "--ignored").stdout == ""


# -- read-only checkouts ----------------------------------------------------------------------


@functools.cache
def _readonly_mount_problem() -> str | None:
    """None when `unshare -m` + a read-only bind mount works here, else why not."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "unshare/mount not installed"
    with tempfile.TemporaryDirectory() as scratch:
        src, dst = Path(scratch, "src"), Path(scratch, "dst")
        src.mkdir()
        dst.mkdir()
        result = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             f"mount --bind {src} {dst} && mount -o remount,bind,ro {dst} && "
             f"! touch {dst}/probe 2>/dev/null && echo read-only"],
            capture_output=True, text=True, timeout=30)
        if result.returncode != 0 or result.stdout.strip() != "read-only":
            return (f"a read-only bind mount in a private mount namespace is not permitted here "
                    f"(exit {result.returncode}: {result.stderr.strip()})")
    return None


def run_readonly(source: Path, mount_point: Path, code: str, *, mode: str,
                 calls_log: Path) -> subprocess.CompletedProcess[str]:
    """Run a snippet in ``mount_point``: ``source`` bind-mounted there read-only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMO_")}
    env.update(PYTHONPATH=str(mount_point), PYTHONDONTWRITEBYTECODE="1", MEMO_MODE=mode,
               CALLS_LOG=str(calls_log))
    script = (f"mount --bind {source} {mount_point} && "
              f"mount -o remount,bind,ro {mount_point} && cd {mount_point} && "
              f'exec "$0" -c "$1"')
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                           sys.executable, textwrap.dedent(code)],
                          env=env, capture_output=True, text=True, timeout=120)


READONLY_AUTO = """
import json
import gitmod, memo_replay
out = {"hit": gitmod.f(1)}
for name, call in (("miss", lambda: gitmod.f(5)), ("new_function", lambda: gitmod.untouched(3))):
    try:
        call()
    except memo_replay.StoreError as exc:
        out[name] = {"error": type(exc).__name__, "message": str(exc)}
    except BaseException as exc:
        out[name] = {"error": type(exc).__name__, "message": str(exc), "not_a_store_error": 1}
    else:
        out[name] = {"error": None}
out["again"] = gitmod.f(0)
print(json.dumps(out))
"""


def test_readonly_checkout_replays_and_a_miss_is_a_store_error(project: Project,
                                                               tmp_path: Path) -> None:
    problem = _readonly_mount_problem()
    if problem:
        pytest.skip(problem)
    setup(project)
    project.run(CALL_F, mode="auto", args=("0", "1"))
    init_repo(project)
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(project.root), str(checkout))  # no .cache/ in it
    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    calls_log = tmp_path / "ro-calls.log"

    replay = run_readonly(checkout, mount_point, CALL_F.replace(
        "sys.argv[1:]", "['0', '1', '0']"), mode="replay", calls_log=calls_log)
    assert replay.returncode == 0, replay.stderr
    assert last_json(replay.stdout) == [expected_f(0), expected_f(1), expected_f(0)]
    assert not calls_log.exists()  # replayed, never called

    auto = run_readonly(checkout, mount_point, READONLY_AUTO, mode="auto", calls_log=calls_log)
    assert auto.returncode == 0, auto.stderr
    out = last_json(auto.stdout)
    assert out["hit"] == expected_f(1)
    assert out["again"] == expected_f(0)
    for name, directory in (("miss", "gitmod.f"), ("new_function", "gitmod.untouched")):
        assert out[name]["error"] == "StoreError", out[name]
        message = out[name]["message"]
        assert f"{mount_point}/fixtures_store/{directory}/" in message
        assert ".json" in message
        assert "Read-only file system" in message
    assert calls_log.read_text().splitlines() == ["f 5", "untouched 3"]  # only the misses ran

    # Nothing was created in the checkout, not even the index.
    assert not (checkout / "fixtures_store" / ".cache").exists()
    assert status(checkout) == ""
    assert Store(checkout / "fixtures_store").verify() == []
