"""``payloads = "remote"`` (issue 17): payload files kept out of git, in the remote and the
git-ignored ``.cache/payloads/``, fetched on first use — end to end with real git clones, real
subprocesses and a real S3 API server (moto's, on 127.0.0.1) reached only through
``AWS_ENDPOINT_URL``. The helpers are :mod:`test_remote`'s.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import s3_server
from s3_server import MODULE
from s3_server import bucket as bucket
from s3_server import raw as raw
from s3_server import server as server
from test_remote import PREFIX, Clone, client, git, new_bucket, objects

from memo_replay.config import load_config, payloads_setting
from memo_replay.errors import ConfigError
from memo_replay.store import Store

pytest.importorskip("botocore.session")

MB5 = 20480  # blob(n) is 256 * n bytes: 5 MiB
UNREACHABLE = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}


def make_project(tmp_path: Path, table: str) -> Path:
    """Clone ``a`` of a demo project with ``[tool.memo_replay]`` ``table``, committed."""
    a = tmp_path / "a"
    a.mkdir()
    (a / "pyproject.toml").write_text(
        f'[project]\nname = "demo"\nversion = "0"\n\n[tool.memo_replay]\n{table}\n')
    (a / "demo_mod.py").write_text(MODULE)
    (a / ".gitignore").write_text("__pycache__/\n")
    git(a, "init", "-q")
    commit(a, "demo")
    return a


def commit(path: Path, message: str) -> None:
    git(path, "add", "-A")
    git(path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)


def bins(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.bin"))


def recorded_in_a(tmp_path: Path, endpoint: str, bucket: str) -> tuple[Clone, Clone, str]:
    """A 5 MiB result recorded in clone ``a`` (write) and committed; clone ``b`` of it; the
    payload file's object name."""
    origin = make_project(tmp_path, f'remote = "s3://{bucket}/{PREFIX}"\npayloads = "remote"')
    a = Clone(origin, endpoint, tmp_path)
    out = a.run(f"blob{MB5}", mode="record", remote_mode="write")
    assert out["error"] is None, out["error"]
    assert out["warnings"] == []
    assert out["results"] == [256 * MB5]
    store = a.path / "fixtures_store"
    # The payload file is in the git-ignored cache only; the entry is in the tracked store.
    assert bins(store) == [f".cache/payloads/demo_mod.blob/{bins(store)[0].split('/')[-1]}"]
    (entry,) = list((store / "demo_mod.blob").iterdir())
    assert entry.suffix == ".json"
    assert git(a.path, "status", "--porcelain") == "?? fixtures_store/\n"
    commit(a.path, "recordings")
    assert git(a.path, "status", "--porcelain") == ""
    tracked = git(a.path, "ls-files", "fixtures_store").split()
    assert tracked == [f"fixtures_store/demo_mod.blob/{entry.name}"]  # no .bin, no .cache
    git(tmp_path, "clone", "-q", str(a.path), "b")
    b = Clone(tmp_path / "b", endpoint, tmp_path)
    (payload,) = [name for name in objects(client(endpoint, tmp_path), bucket)
                  if name.endswith(".bin")]
    return a, b, payload


def test_a_5mb_payload_round_trips_through_the_remote_and_stays_out_of_git(
        tmp_path: Path) -> None:
    own = s3_server.start()  # this test stops it
    stopped = False
    try:
        raw = client(own.endpoint, tmp_path)
        bucket = new_bucket(raw)
        a, b, payload = recorded_in_a(tmp_path, own.endpoint, bucket)
        stored = objects(raw, bucket)
        assert len(stored) == 2  # the entry and its payload file, same bytes as on disk
        assert len(stored[payload]) == 256 * MB5
        cached = a.path / "fixtures_store" / ".cache" / "payloads" / payload[len(PREFIX) + 1:]
        assert cached.read_bytes() == stored[payload]

        out = b.run(f"blob{MB5}", mode="replay", remote_mode="read", ci=True)
        assert out["error"] is None, out["error"]
        assert out["warnings"] == []
        assert out["results"] == [256 * MB5]
        assert b.calls() == []  # zero real calls
        assert git(b.path, "status", "--porcelain") == ""
        assert bins(b.path / "fixtures_store") == [f".cache/payloads/{payload[len(PREFIX) + 1:]}"]
        assert objects(raw, bucket) == stored  # a reader writes nothing
    finally:
        own.stop()
        stopped = True
    assert stopped
    # A second process replays from the local cache, the server gone: no warning, no client.
    again = b.run(f"blob{MB5}", mode="replay", remote_mode="read", ci=True)
    assert again["error"] is None, again["error"]
    assert again["warnings"] == []
    assert again["results"] == [256 * MB5]
    assert not again["botocore"]
    assert b.calls() == []
    assert git(b.path, "status", "--porcelain") == ""

    # verify checks a cached remote payload like any, and reports one that is not here.
    assert Store(b.path / "fixtures_store").verify() == []
    c = tmp_path / "c"
    git(tmp_path, "clone", "-q", str(a.path), "c")
    (problem,) = Store(c / "fixtures_store").verify()
    assert problem.kind == "remote-payload"  # a note: not checked locally, not a failure
    assert "payloads = \"remote\"" in problem.message
    assert ".cache/payloads/" in problem.message


def test_a_tampered_remote_payload_is_refused_and_never_replayed(
        server: s3_server.S3Server, raw: Any, bucket: str, tmp_path: Path) -> None:
    a, b, payload = recorded_in_a(tmp_path, server.endpoint, bucket)
    data = bytearray(raw.get_object(Bucket=bucket, Key=payload)["Body"].read())
    data[12345] ^= 0xFF
    raw.put_object(Bucket=bucket, Key=payload, Body=bytes(data))

    out = b.run(f"blob{MB5}", mode="replay", remote_mode="read", ci=True)
    assert out["error"] is not None
    assert out["error"].startswith("CorruptEntry")
    assert f"s3://{bucket}/{payload}" in out["error"]
    assert "not replayed" in out["error"]
    assert b.calls() == []
    assert bins(b.path / "fixtures_store") == []  # never kept
    assert git(b.path, "status", "--porcelain") == ""

    # A tampered local copy is refused too: every read checks the entry's checksum.
    copy = a.path / "fixtures_store" / ".cache" / "payloads" / payload[len(PREFIX) + 1:]
    copy.write_bytes(bytes(data))
    out = a.run(f"blob{MB5}", mode="replay", ci=True)
    assert out["error"] is not None
    assert out["error"].startswith("CorruptEntry")
    assert "checksum mismatch" in out["error"]
    assert a.calls() == [f"blob {MB5}"]  # only the recording


def test_an_unreachable_remote_is_a_clear_miss_in_strict_replay(
        server: s3_server.S3Server, bucket: str, tmp_path: Path) -> None:
    _, b, payload = recorded_in_a(tmp_path, server.endpoint, bucket)
    out = b.run(f"blob{MB5}", mode="replay", remote_mode="read", ci=True, extra=UNREACHABLE)
    assert out["error"] is not None
    assert out["error"].startswith("MissingPayload")
    file = payload.rpartition("/")[2]
    for said in (file, f"s3://{bucket}/{PREFIX}", "payloads", "MEMO_PAYLOADS", "MEMO_REMOTE",
                 "unreachable"):
        assert said in out["error"], said
    (warning,) = out["warnings"]
    assert "unreachable" in warning
    assert b.calls() == []
    assert git(b.path, "status", "--porcelain") == ""

    # In auto mode it is re-recorded (a miss, with the reason), locally and out of git.
    out = b.run(f"blob{MB5}", mode="auto", remote_mode="read", extra=UNREACHABLE)
    assert out["error"] is not None  # recording a payload out of git needs write mode
    assert out["error"].startswith("ConfigError")


def test_recording_needs_a_remote_in_write_mode(server: s3_server.S3Server, raw: Any,
                                                bucket: str, tmp_path: Path) -> None:
    origin = make_project(tmp_path, f'remote = "s3://{bucket}/{PREFIX}"\npayloads = "remote"')
    a = Clone(origin, server.endpoint, tmp_path)
    out = a.run("blob400", mode="record", remote_mode="read")
    assert out["error"] is not None
    assert out["error"].startswith("ConfigError")
    for said in ('payloads', 'remote_mode = "write"', "MEMO_REMOTE_MODE", "read-only",
                 f"s3://{bucket}/{PREFIX}"):
        assert said in out["error"], said
    assert bins(a.path) == []
    assert objects(raw, bucket) == {}
    # Results without a payload file are not affected.
    out = a.run("3", mode="record", remote_mode="read")
    assert out["error"] is None
    assert out["results"] == [{"x": 3, "square": 9}]

    # payloads = "local" (the default) keeps payload files beside their entries, in git.
    out = a.run("blob400", mode="record", remote_mode="write",
                extra={"MEMO_PAYLOADS": "local"})
    assert out["error"] is None
    assert [p.split("/")[0] for p in bins(a.path / "fixtures_store")] == ["demo_mod.blob"]

    # MEMO_PAYLOADS=remote without any remote configured.
    no_remote = tmp_path / "n"
    no_remote.mkdir()
    lone = make_project(no_remote, 'mode = "auto"')
    out = Clone(lone, server.endpoint, no_remote).run(
        "blob400", mode="record", extra={"MEMO_PAYLOADS": "remote"})
    assert out["error"] is not None
    assert out["error"].startswith("ConfigError")
    assert "MEMO_PAYLOADS=remote needs a remote" in out["error"]
    assert "MEMO_REMOTE" in out["error"]


def test_payloads_configuration_is_validated(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEMO_REMOTE", "MEMO_REMOTE_MODE", "MEMO_PAYLOADS"):
        monkeypatch.delenv(name, raising=False)
    pyproject = tmp_path / "pyproject.toml"

    def config(body: str) -> Any:
        pyproject.write_text(f"[tool.memo_replay]\n{body}\n")
        return load_config(pyproject)

    assert payloads_setting(config('mode = "auto"')) == "local"
    assert payloads_setting(config('remote = "s3://b/p"\npayloads = "remote"')) == "remote"
    assert payloads_setting(config('remote = "s3://b/p"\npayloads = "Local"')) == "local"
    with pytest.raises(ConfigError, match=r"`payloads` in .*'lfs'.*\"local\".*\"remote\""):
        config('remote = "s3://b/p"\npayloads = "lfs"')
    with pytest.raises(ConfigError, match=r"`payloads`"):
        config("payloads = true")
    with pytest.raises(ConfigError, match=r"`payload` \(did you mean `payloads`\?\)"):
        config('payload = "remote"')
    with pytest.raises(ConfigError, match=r"payloads = \"remote\" needs a remote.*MEMO_REMOTE"):
        payloads_setting(config('payloads = "remote"'))
    monkeypatch.setenv("MEMO_REMOTE", "s3://b/p")
    assert payloads_setting(config('payloads = "remote"')) == "remote"  # the remote from env
    settings = config('remote = "s3://b/p"')
    monkeypatch.setenv("MEMO_PAYLOADS", "remote")
    assert payloads_setting(settings) == "remote"  # the environment wins
    monkeypatch.setenv("MEMO_PAYLOADS", "git")
    with pytest.raises(ConfigError, match="MEMO_PAYLOADS environment variable"):
        payloads_setting(settings)


def test_a_payload_file_left_beside_its_entry_is_still_read(
        server: s3_server.S3Server, bucket: str, tmp_path: Path) -> None:
    """The same format: a reader that has the payload file beside the entry (copied there by
    hand, or by ``pull``) never looks elsewhere."""
    a, b, payload = recorded_in_a(tmp_path, server.endpoint, bucket)
    source = a.path / "fixtures_store" / ".cache" / "payloads" / payload[len(PREFIX) + 1:]
    (b.path / "fixtures_store" / payload[len(PREFIX) + 1:]).write_bytes(source.read_bytes())
    out = b.run(f"blob{MB5}", mode="replay", ci=True, extra=UNREACHABLE)
    assert out["error"] is None, out["error"]
    assert out["results"] == [256 * MB5]
    assert out["warnings"] == []
    assert not out["botocore"]
    assert not (b.path / "fixtures_store" / ".cache" / "payloads").exists() or \
        bins(b.path / "fixtures_store" / ".cache") == []
    assert subprocess.run(["git", "status", "--porcelain"], cwd=b.path, capture_output=True,
                          text=True, check=True).stdout.startswith("?? ")
