"""``memo-replay push``, ``pull`` and ``remote ls``/``stats`` (issue 17) in real processes,
against a real S3 API server (moto's, on 127.0.0.1, started by :mod:`s3_server`) reached only
through ``AWS_ENDPOINT_URL``.

Every process gets ``MEMO_MODE``, ``CI`` and the ``MEMO_REMOTE*`` variables set explicitly, with
those (and every ``AWS_*`` variable) stripped from the outer environment, so the tests mean the
same with and without ``CI=true`` around them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import s3_server
from s3_server import MODULE, PREFIX, aws, git, objects
from s3_server import bucket as bucket
from s3_server import raw as raw
from s3_server import server as server

botocore_session = pytest.importorskip("botocore.session")


DRIVER = '''
import json, sys
import demo_mod

out = []
for arg in sys.argv[1:]:
    out.append(len(demo_mod.blob(int(arg[4:]))) if arg.startswith("blob")
               else demo_mod.work(int(arg)))
print(json.dumps(out))
'''


class Project:
    """One clone of the demo project: its calls, and `memo-replay` run in it."""

    def __init__(self, path: Path, endpoint: str, home: Path, remote: str | None) -> None:
        self.path, self.endpoint, self.home, self.remote = path, endpoint, home, remote
        self.log = home / f"calls-{path.name}.log"
        self.driver = home / "driver.py"
        self.driver.write_text(DRIVER)

    @property
    def store(self) -> Path:
        return self.path / "fixtures_store"

    def env(self, mode: str, *, ci: bool, remote: bool = True) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "MEMO_")) and k not in ("CI", "PYTHONPATH")}
        env.update(aws(self.endpoint, self.home))
        env.update(PYTHONPATH=str(self.path), PYTHONDONTWRITEBYTECODE="1", MEMO_MODE=mode,
                   CALL_LOG=str(self.log), MEMO_REMOTE_MODE="read")
        if self.remote is not None and remote:
            env["MEMO_REMOTE"] = self.remote
        if ci:
            env["CI"] = "true"
        return env

    def call(self, *args: str, mode: str, ci: bool = False, remote: bool = True) -> Any:
        result = subprocess.run([sys.executable, str(self.driver), *args], cwd=self.path,
                                env=self.env(mode, ci=ci, remote=remote),
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.splitlines()[-1])

    def cli(self, *args: str, ci: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "memo_replay", *args], cwd=self.path,
                              env=self.env("auto", ci=ci), capture_output=True, text=True,
                              timeout=180)

    def json(self, *args: str, code: int = 0) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == code, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def tree(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.store)): p.read_bytes()
                for p in self.store.rglob("*") if p.is_file() and ".cache" not in p.parts}


def make_clones(tmp_path: Path, endpoint: str, remote: str | None, *names: str
                ) -> list[Project]:
    origin = tmp_path / "origin"
    origin.mkdir()
    (origin / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0"\n')
    (origin / "demo_mod.py").write_text(MODULE)
    (origin / ".gitignore").write_text("__pycache__/\n")
    git(origin, "init", "-q")
    git(origin, "add", ".")
    git(origin, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "demo")
    clones = []
    for name in names:
        git(tmp_path, "clone", "-q", str(origin), name)
        clones.append(Project(tmp_path / name, endpoint, tmp_path, remote))
    return clones


@pytest.fixture
def pair(server: s3_server.S3Server, bucket: str, tmp_path: Path) -> list[Project]:
    return make_clones(tmp_path, server.endpoint, f"s3://{bucket}/{PREFIX}", "a", "b")


def test_push_then_pull_lets_another_clone_replay_offline(pair: list[Project], raw: Any,
                                                          bucket: str) -> None:
    a, b = pair
    recorded = a.call("1", "2", "blob400", mode="auto")
    assert a.calls() == ["work 1", "work 2", "blob 400"]
    assert objects(raw, bucket) == {}  # read mode: recording uploaded nothing

    # A dry run lists, exits 1, and uploads nothing.
    planned = a.json("push", "--dry-run", code=1)
    assert planned["dry_run"] is True
    assert planned["transferred"] == 0
    assert planned["remote"] == f"s3://{bucket}/{PREFIX}"
    assert planned["mode"] == "read"
    assert sorted(e["status"] for e in planned["entries"]) == ["upload"] * 3
    assert set(planned["entries"][0]) == {"name", "function", "key", "status", "bytes",
                                          "detail"}
    assert objects(raw, bucket) == {}

    pushed = a.json("push", "--jobs", "3")  # push is explicit: allowed in read mode
    assert pushed["transferred"] == 3
    assert pushed["problems"] == 0
    stored = objects(raw, bucket)
    assert len(stored) == 4  # three entries, one payload file: the same bytes as on disk
    for name, data in stored.items():
        assert (a.store / name[len(PREFIX) + 1:]).read_bytes() == data
    again = a.cli("push")
    assert again.returncode == 0, again.stderr
    assert "nothing to push" in again.stdout

    # The other clone: a dry run changes nothing; the pull writes the entries for committing.
    before = b.cli("pull", "--dry-run")
    assert before.returncode == 1, before.stderr
    assert before.stdout.count("would pull") == 3
    assert not b.store.exists() or b.tree() == {}
    out = b.json("pull")
    assert out["transferred"] == 3
    assert out["problems"] == 0
    assert {e["status"] for e in out["entries"]} == {"downloaded"}
    assert b.tree() == a.tree()
    assert "fixtures_store/" in git(b.path, "status", "--porcelain", "--untracked-files=all")
    assert b.json("pull")["entries"] == []

    # Strict replay in CI, the remote unset: every call replays from the pulled store.
    assert b.call("1", "2", "blob400", mode="replay", ci=True, remote=False) == recorded
    assert b.calls() == []
    verify = b.cli("verify")
    assert verify.returncode == 0, verify.stdout


def test_pull_of_one_function(pair: list[Project]) -> None:
    a, b = pair
    a.call("1", "blob2", mode="auto")
    assert a.json("push")["transferred"] == 2
    out = b.json("pull", "--function", "demo_mod.work")
    assert [e["function"] for e in out["entries"]] == ["demo_mod.work"]
    assert set(b.tree()) == {name for name in a.tree() if name.startswith("demo_mod.work/")}


def test_pull_refuses_tampered_objects(pair: list[Project], raw: Any, bucket: str) -> None:
    a, b = pair
    a.call("5", "blob300", mode="auto")
    assert a.json("push")["transferred"] == 2
    stored = objects(raw, bucket)
    payload = next(name for name in stored if name.endswith(".bin"))
    flipped = bytearray(stored[payload])
    flipped[10] ^= 0xFF
    raw.put_object(Bucket=bucket, Key=payload, Body=bytes(flipped))
    # An entry copied under another key of the same function.
    work = next(name for name in stored if name.startswith(f"{PREFIX}/demo_mod.work/"))
    raw.put_object(Bucket=bucket, Key=f"{PREFIX}/demo_mod.work/{'0' * 32}.json",
                   Body=stored[work])
    # And under another function's directory, with its own key.
    raw.put_object(Bucket=bucket, Key=work.replace("demo_mod.work", "demo_mod.other"),
                   Body=stored[work])
    raw.delete_object(Bucket=bucket, Key=work)

    result = b.cli("pull")
    assert result.returncode == 1
    assert result.stdout.count("refused") == 3, result.stdout
    assert "checksum" in result.stdout
    assert "not of a function whose directory is `demo_mod.other`" in result.stdout
    out = b.json("pull", code=1)
    assert {e["status"] for e in out["entries"]} == {"refused"}
    assert out["problems"] == 3
    assert b.cli("pull", "--dry-run").returncode == 1
    assert b.tree() == {}  # nothing written, not even the payload file


def test_pull_never_overwrites_a_local_entry(pair: list[Project]) -> None:
    a, b = pair
    a.call("3", mode="auto")
    assert a.json("push")["transferred"] == 1
    b.call("3", mode="auto", remote=False)  # recorded in b too: another recorded_at
    local = b.tree()
    assert len(local) == 1
    assert local != a.tree()
    out = b.json("pull")
    assert out["entries"] == []
    assert b.tree() == local
    # Edited locally by hand: still never replaced by the remote's.
    (name, data), = local.items()
    (b.store / name).write_bytes(data.replace(b'"square": 9', b'"square": 10'))
    assert b.json("pull")["entries"] == []
    assert b"10" in (b.store / name).read_bytes()


def test_push_refuses_damaged_local_entries(pair: list[Project], raw: Any,
                                            bucket: str) -> None:
    a, _ = pair
    a.call("4", mode="auto")
    (entry,) = (a.store / "demo_mod.work").glob("*.json")
    entry.write_bytes(entry.read_bytes().replace(b'"square": 16', b'"square": 17'))
    out = a.json("push", code=1)
    assert [e["status"] for e in out["entries"]] == ["damaged"]
    assert objects(raw, bucket) == {}


def test_remote_ls_and_stats(pair: list[Project], raw: Any, bucket: str) -> None:
    a, _ = pair
    a.call("1", "2", "blob300", mode="auto")
    assert a.json("push")["transferred"] == 3
    raw.put_object(Bucket=bucket, Key=f"{PREFIX}/README.txt", Body=b"notes")
    listed = a.json("remote", "ls")
    assert sorted(item["function"] for item in listed) == ["demo_mod.blob", "demo_mod.work",
                                                           "demo_mod.work"]
    assert set(listed[0]) == {"name", "function", "key", "payload_files"}
    assert [i["payload_files"] for i in listed if i["function"] == "demo_mod.blob"] == [1]
    assert len(a.json("remote", "ls", "--function", "demo_mod.work")) == 2
    text = a.cli("remote", "ls")
    assert text.returncode == 0
    assert "3 recordings" in text.stdout

    stats = a.json("remote", "stats")
    stored = objects(raw, bucket)
    assert stats["entries"] == 3
    assert stats["other"] == 1
    assert stats["bytes"] == sum(len(v) for k, v in stored.items() if not k.endswith(".txt"))
    assert stats["functions"]["demo_mod.work"]["entries"] == 2
    assert stats["functions"]["demo_mod.blob"] == {
        "entries": 1, "payload_files": 1,
        "bytes": sum(len(v) for k, v in stored.items() if "/demo_mod.blob/" in k)}
    text = a.cli("remote", "stats")
    assert text.returncode == 0
    assert "3 recordings" in text.stdout


def test_no_remote_configured(server: s3_server.S3Server, tmp_path: Path) -> None:
    (project,) = make_clones(tmp_path, server.endpoint, None, "solo")
    for command in (["push"], ["pull", "--dry-run"], ["remote", "ls"], ["remote", "stats"]):
        result = project.cli(*command)
        assert result.returncode == 2, (command, result.stderr)
        assert "no remote is configured" in result.stderr
        assert "MEMO_REMOTE" in result.stderr
        assert "remote =" in result.stderr
        assert result.stdout == ""


def test_unreachable_remote_is_exit_2(pair: list[Project]) -> None:
    a, _ = pair
    a.call("1", mode="auto")
    a.endpoint = "http://127.0.0.1:9"
    for command in (["push"], ["pull"], ["remote", "ls"]):
        result = a.cli(*command)
        assert result.returncode == 2, (command, result.stderr)
        assert "unreachable" in result.stderr
        assert "AWS_ENDPOINT_URL" in result.stderr


def test_progress_only_on_a_terminal(pair: list[Project]) -> None:
    a, _ = pair
    a.call(*[str(i) for i in range(60)], mode="auto")
    if sys.platform != "win32":
        import pty

        primary, secondary = pty.openpty()
        try:
            result = subprocess.run([sys.executable, "-m", "memo_replay", "push", "--dry-run"],
                                    cwd=a.path, env=a.env("auto", ci=True), stdout=subprocess.PIPE,
                                    stderr=secondary, text=True, timeout=180)
            os.close(secondary)
            shown = b""
            while True:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # EIO: the terminal's other end is closed
                    break
                if not chunk:
                    break
                shown += chunk
        finally:
            os.close(primary)
        assert result.returncode == 1
        assert b"push: 60/60" in shown
    result = a.cli("push", "--jobs", "8", ci=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not a terminal: no progress noise
    assert "60 recordings uploaded" in result.stdout
