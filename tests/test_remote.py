"""The shared remote tier (issue 17) end to end: real git clones, real subprocesses, and a real
S3 API server (moto's, on 127.0.0.1, started by :mod:`s3_server`) reached only through
``AWS_ENDPOINT_URL``.

Every run sets ``MEMO_MODE``, ``CI`` and the ``MEMO_REMOTE*`` variables explicitly, and strips
those (and every ``AWS_*`` variable) from the outer environment, so the tests mean the same
with and without ``CI=true`` around them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import s3_server
from s3_server import MODULE, PREFIX, aws, client, git, new_bucket, objects
from s3_server import bucket as bucket
from s3_server import raw as raw
from s3_server import server as server

from memo_replay.config import load_config, remote_setting
from memo_replay.errors import ConfigError
from memo_replay.store.entry import same_recording

botocore_session = pytest.importorskip("botocore.session")


DRIVER = '''
import json, os, sys, time, warnings
import demo_mod

out = {"results": [], "error": None}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        for arg in sys.argv[1:]:
            if arg == "pause":
                print("ready", flush=True)
                while not os.path.exists(os.environ["GO_FILE"]):
                    time.sleep(0.05)
            elif arg.startswith("blob"):
                out["results"].append(len(demo_mod.blob(int(arg[4:]))))
            else:
                out["results"].append(demo_mod.work(int(arg)))
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
out["warnings"] = [str(w.message) for w in caught if "memo_replay" in str(w.message)]
out["botocore"] = "botocore" in sys.modules
print(json.dumps(out))
'''


class Clone:
    """One clone of the demo project, and how to run calls in it."""

    def __init__(self, path: Path, endpoint: str, home: Path) -> None:
        self.path = path
        self.endpoint = endpoint
        self.home = home
        self.log = home / f"calls-{path.name}.log"
        self.driver = home / "driver.py"
        self.driver.write_text(textwrap.dedent(DRIVER))

    def env(self, mode: str, remote_mode: str | None, *, ci: bool,
            extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "MEMO_")) and k not in ("CI", "PYTHONPATH")}
        env.update(aws(self.endpoint, self.home))
        env.update(PYTHONPATH=str(self.path), PYTHONDONTWRITEBYTECODE="1", MEMO_MODE=mode,
                   CALL_LOG=str(self.log), GO_FILE=str(self.home / "go"))
        if ci:
            env["CI"] = "true"
        if remote_mode is not None:
            env["MEMO_REMOTE_MODE"] = remote_mode
        env.update(extra or {})
        return env

    def run(self, *args: str, mode: str, remote_mode: str | None = None, ci: bool = False,
            extra: dict[str, str] | None = None) -> dict[str, Any]:
        result = subprocess.run([sys.executable, str(self.driver), *args], cwd=self.path,
                                env=self.env(mode, remote_mode, ci=ci, extra=extra),
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
        out: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
        return out

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def make_origin(tmp_path: Path, remote: str | None) -> Path:
    origin = tmp_path / "origin"
    origin.mkdir()
    table = "" if remote is None else f'\n[tool.memo_replay]\nremote = "{remote}"\n'
    (origin / "pyproject.toml").write_text(f'[project]\nname = "demo"\nversion = "0"\n{table}')
    (origin / "demo_mod.py").write_text(MODULE)
    (origin / ".gitignore").write_text("__pycache__/\n")
    git(origin, "init", "-q")
    git(origin, "add", ".")
    git(origin, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "demo")
    return origin


def clone(origin: Path, name: str, endpoint: str, home: Path) -> Clone:
    git(origin.parent, "clone", "-q", str(origin), name)
    return Clone(origin.parent / name, endpoint, home)


@pytest.fixture
def clones(server: s3_server.S3Server, bucket: str, tmp_path: Path) -> tuple[Clone, Clone]:
    origin = make_origin(tmp_path, f"s3://{bucket}/{PREFIX}")
    return (clone(origin, "a", server.endpoint, tmp_path),
            clone(origin, "b", server.endpoint, tmp_path))


def test_two_clones_share_recordings_without_committing(clones: tuple[Clone, Clone], raw: Any,
                                                        bucket: str) -> None:
    a, b = clones
    recorded = a.run("1", "2", "blob400", mode="auto", remote_mode="write")
    assert recorded["error"] is None
    assert recorded["warnings"] == []
    assert a.calls() == ["work 1", "work 2", "blob 400"]
    stored = objects(raw, bucket)
    # The bucket mirrors the store: same names under the prefix, same bytes as on disk.
    assert len(stored) == 4
    assert any(name.endswith(".bin") for name in stored)
    for name, data in stored.items():
        assert name.startswith(f"{PREFIX}/demo_mod.")
        assert (a.path / "fixtures_store" / name[len(PREFIX) + 1:]).read_bytes() == data

    replayed = b.run("1", "2", "blob400", mode="replay", remote_mode="read", ci=True)
    assert replayed["error"] is None, replayed["error"]
    assert replayed["results"] == recorded["results"]
    assert b.calls() == []  # zero real calls
    assert git(b.path, "status", "--porcelain") == ""  # nothing written into the tracked store
    assert not [p for p in (b.path / "fixtures_store").iterdir() if p.name != ".cache"]
    assert objects(raw, bucket) == stored

    # Later processes find the copies in .cache/remote: they replay with the remote unreachable,
    # without a warning and without even importing the client.
    again = b.run("1", "2", "blob400", mode="replay", ci=True,
                  extra={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert again["error"] is None
    assert again["warnings"] == []
    assert again["results"] == recorded["results"]
    assert not again["botocore"]
    assert b.calls() == []


def test_a_read_only_client_never_writes(clones: tuple[Clone, Clone], raw: Any,
                                         bucket: str) -> None:
    a, _ = clones
    out = a.run("7", "blob300", mode="auto", remote_mode="read")
    assert out["error"] is None
    assert out["warnings"] == []
    assert a.calls() == ["work 7", "blob 300"]
    assert objects(raw, bucket) == {}
    out = a.run("8", mode="record", ci=True)  # read is the default mode
    assert out["error"] is None
    assert objects(raw, bucket) == {}
    assert len(list((a.path / "fixtures_store" / "demo_mod.work").glob("*.json"))) == 2


def test_concurrent_writers_of_one_key_upload_it_once(
        server: s3_server.S3Server, raw: Any, bucket: str, tmp_path: Path) -> None:
    origin = make_origin(tmp_path, f"s3://{bucket}/{PREFIX}")
    writers = [clone(origin, f"w{i}", server.endpoint, tmp_path) for i in range(4)]
    processes = [subprocess.Popen([sys.executable, str(w.driver), "blob300", "6"], cwd=w.path,
                                  env=w.env("record", "write", ci=False), text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for w in writers]
    outs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr
        outs.append(json.loads(stdout.splitlines()[-1]))
    for out in outs:
        assert out["error"] is None
        assert out["warnings"] == []  # an identical object already there is success
    stored = objects(raw, bucket)
    assert len(stored) == 3  # blob's entry and payload file, work's entry
    for w in writers:  # each has the recording locally; they differ only in recorded_at, …
        for name, data in stored.items():
            local = (w.path / "fixtures_store" / name.partition("/")[2]).read_bytes()
            if name.endswith(".bin"):
                assert local == data
            else:
                assert same_recording(json.loads(local), json.loads(data))


def test_a_tampered_remote_object_is_refused_and_never_replayed(
        clones: tuple[Clone, Clone], raw: Any, bucket: str) -> None:
    a, b = clones
    keys = []
    for x in ("1", "2", "3"):
        before = set(objects(raw, bucket))
        assert a.run(x, mode="record", remote_mode="write")["error"] is None
        (new,) = set(objects(raw, bucket)) - before
        keys.append(new)
    one, two, three = keys
    # The payload of work(1) flipped; work(2)'s object replaced by work(3)'s entry.
    entry = json.loads(raw.get_object(Bucket=bucket, Key=one)["Body"].read())
    entry["result"]["payload"]["square"] = 999
    tampered = json.dumps(entry, indent=2, sort_keys=True).encode() + b"\n"
    raw.put_object(Bucket=bucket, Key=one, Body=tampered)
    raw.put_object(Bucket=bucket, Key=two,
                   Body=raw.get_object(Bucket=bucket, Key=three)["Body"].read())
    before = objects(raw, bucket)

    for x, key in (("1", one), ("2", two)):
        out = b.run(x, mode="replay", remote_mode="read", ci=True)
        assert out["error"] is not None
        assert out["error"].startswith("CorruptEntry")
        assert f"s3://{bucket}/{key}" in out["error"]
        assert "not replayed" in out["error"]
    assert b.calls() == []
    assert not (b.path / "fixtures_store" / ".cache" / "remote" / one.partition("/")[2]).exists()

    # In auto mode a refused object is a miss: re-recorded locally, never uploaded over it.
    out = b.run("1", mode="auto", remote_mode="write")
    assert out["error"] is None
    assert out["results"] == [{"x": 1, "square": 1}]
    assert b.calls() == ["work 1"]
    assert any(f"s3://{bucket}/{one}" in w and "re-recording" in w for w in out["warnings"])
    assert any("not uploaded" in w and "different object" in w for w in out["warnings"])
    assert objects(raw, bucket) == before

    # A tampered local copy of a remote object is refused like any entry.
    assert b.run("3", mode="replay", remote_mode="read", ci=True)["error"] is None
    copy = b.path / "fixtures_store" / ".cache" / "remote" / three.partition("/")[2]
    assert copy.exists()
    copy.write_bytes(copy.read_bytes().replace(b'"square": 9', b'"square": 8'))
    out = b.run("3", mode="replay", ci=True)
    assert out["error"] is not None
    assert str(copy) in out["error"]
    assert b.calls() == ["work 1"]


def test_the_server_stopped_mid_run_degrades_to_local_with_one_warning(tmp_path: Path) -> None:
    own = s3_server.start()
    try:
        raw = client(own.endpoint, tmp_path)
        bucket = new_bucket(raw)
        origin = make_origin(tmp_path, f"s3://{bucket}/{PREFIX}")
        a = clone(origin, "a", own.endpoint, tmp_path)
        b = clone(origin, "b", own.endpoint, tmp_path)
        assert a.run("1", mode="auto", remote_mode="write")["error"] is None
        process = subprocess.Popen(
            [sys.executable, str(b.driver), "1", "pause", "2", "3", "4"], cwd=b.path,
            env=b.env("auto", "read", ci=False), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    finally:
        own.stop()
    (tmp_path / "go").touch()
    started = time.monotonic()
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    out = json.loads(stdout.splitlines()[-1])
    assert out["error"] is None
    assert out["results"] == [{"x": x, "square": x * x} for x in (1, 2, 3, 4)]
    assert b.calls() == ["work 2", "work 3", "work 4"]  # 1 came from the remote
    (warning,) = out["warnings"]
    assert f"s3://{bucket}/{PREFIX}" in warning
    assert "unreachable" in warning
    assert "MEMO_REMOTE" in warning
    assert "local store only" in warning
    assert time.monotonic() - started < 60
    assert git(b.path, "status", "--porcelain") == "?? fixtures_store/\n"  # auto recorded

    # Strict replay of a miss says the remote was not reached.
    out = b.run("5", mode="replay", ci=True)
    assert out["error"] is not None
    assert out["error"].startswith("ReplayMiss")
    assert "was not asked" in out["error"]
    assert "unreachable" in out["error"]


def test_a_missing_bucket_is_a_clear_error_naming_the_setting(
        server: s3_server.S3Server, tmp_path: Path) -> None:
    origin = make_origin(tmp_path, "s3://no-such-bucket-here/x")
    a = clone(origin, "a", server.endpoint, tmp_path)
    out = a.run("1", mode="auto")
    assert out["error"] is not None
    assert out["error"].startswith("RemoteError")
    assert "'no-such-bucket-here'" in out["error"]
    assert "does not exist" in out["error"]
    assert a.calls() == []


def test_no_remote_configured_imports_nothing_of_s3(tmp_path: Path) -> None:
    origin = make_origin(tmp_path, None)
    a = clone(origin, "a", "http://127.0.0.1:9", tmp_path)
    for mode in ("auto", "replay"):
        out = a.run("1", "blob300", mode=mode, ci=mode == "replay")
        assert out["error"] is None
        assert out["warnings"] == []
        assert not out["botocore"]
    assert a.calls() == ["work 1", "blob 300"]


def test_remote_configuration_is_validated(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMO_REMOTE", raising=False)
    monkeypatch.delenv("MEMO_REMOTE_MODE", raising=False)
    pyproject = tmp_path / "pyproject.toml"

    def config(body: str) -> Any:
        pyproject.write_text(f"[tool.memo_replay]\n{body}\n")
        return load_config(pyproject)

    assert remote_setting(config('mode = "auto"')) is None
    assert remote_setting(config('remote = "s3://b/p"')) == ("s3://b/p", "read")
    assert remote_setting(config('remote = "s3://b"\nremote_mode = "write"')) == \
        ("s3://b", "write")
    with pytest.raises(ConfigError, match=r"`remote_mode`.*'push'.*\"read\".*\"write\""):
        config('remote = "s3://b"\nremote_mode = "push"')
    with pytest.raises(ConfigError, match=r"`remote` in .*not an S3 URL.*s3://bucket/prefix"):
        config('remote = "https://b/p"')
    with pytest.raises(ConfigError, match=r"`remote_mod` \(did you mean `remote_mode`\?\)"):
        config('remote_mod = "write"')
    settings = config('remote = "s3://b/p"')
    monkeypatch.setenv("MEMO_REMOTE", "s3://other/q")
    monkeypatch.setenv("MEMO_REMOTE_MODE", "write")
    assert remote_setting(settings) == ("s3://other/q", "write")  # the environment wins
    monkeypatch.setenv("MEMO_REMOTE_MODE", "rw")
    with pytest.raises(ConfigError, match="MEMO_REMOTE_MODE environment variable"):
        remote_setting(settings)
    monkeypatch.setenv("MEMO_REMOTE", "s3:///nobucket")
    with pytest.raises(ConfigError, match="MEMO_REMOTE environment variable"):
        remote_setting(settings)


def test_a_symlinked_local_copy_directory_is_never_followed(clones: tuple[Clone, Clone],
                                                            tmp_path: Path) -> None:
    a, b = clones
    assert a.run("4", "blob300", mode="record", remote_mode="write")["error"] is None
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache = b.path / "fixtures_store" / ".cache"
    cache.mkdir(parents=True)
    (cache / "remote").symlink_to(elsewhere)  # as a pull request could force-add it
    for _ in range(2):
        out = b.run("4", "blob300", mode="replay", remote_mode="read", ci=True)
        assert out["error"] is None
        assert out["results"] == [{"x": 4, "square": 16}, 300 * 256]
    assert list(elsewhere.iterdir()) == []  # nothing written through it: asked the remote
    assert b.calls() == []
