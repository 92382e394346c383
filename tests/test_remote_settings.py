"""Issue 17's remaining gaps, against a real S3 API server (moto's, on 127.0.0.1) reached only
through ``AWS_ENDPOINT_URL``: a configurable ``remote_timeout``, ``remote stats`` from the
LIST responses alone, ``pull`` keeping payload files kept out of git in the local cache, and
``verify`` noting (not failing on) payload files kept on the remote. The helpers are
:mod:`test_remote`'s and :mod:`test_remote_payloads`'s.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import s3_server
from s3_server import bucket as bucket
from s3_server import raw as raw
from s3_server import server as server
from test_remote import PREFIX, Clone, aws, client, git, new_bucket, objects
from test_remote_payloads import bins, commit, make_project

from memo_replay.config import (
    DEFAULT_REMOTE_TIMEOUT_S,
    load_config,
    remote_timeout_setting,
)
from memo_replay.errors import ConfigError
from memo_replay.store.s3 import S3Bucket, bucket_for

pytest.importorskip("botocore.session")


def cli(clone: Clone, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "memo_replay", *args], cwd=clone.path,
                          env=clone.env("replay", None, ci=True), capture_output=True,
                          text=True, timeout=180)


# -- 1. remote_timeout ---------------------------------------------------------------------------


def test_remote_timeout_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMO_REMOTE_TIMEOUT", raising=False)
    pyproject = tmp_path / "pyproject.toml"

    def config(body: str) -> Any:
        pyproject.write_text(f"[tool.memo_replay]\n{body}\n")
        return load_config(pyproject)

    assert remote_timeout_setting(config('remote = "s3://b"')) == DEFAULT_REMOTE_TIMEOUT_S
    assert remote_timeout_setting(config('remote_timeout = "5s"')) == 5.0
    assert remote_timeout_setting(config("remote_timeout = 2.5")) == 2.5
    assert remote_timeout_setting(config('remote_timeout = "1m"')) == 60.0
    with pytest.raises(ConfigError, match=r"invalid duration 'soon' for `remote_timeout`"):
        config('remote_timeout = "soon"')
    with pytest.raises(ConfigError, match=r"invalid duration 0 for `remote_timeout`"):
        config("remote_timeout = 0")
    with pytest.raises(ConfigError,
                       match=r"`remote_timout` \(did you mean `remote_timeout`\?\)"):
        config('remote_timout = "5s"')
    with pytest.raises(ConfigError, match=r"Valid keys: .*`remote_timeout`"):
        config('nope = 1')
    settings = config('remote_timeout = "5s"')
    monkeypatch.setenv("MEMO_REMOTE_TIMEOUT", "1.5")
    assert remote_timeout_setting(settings) == 1.5  # the environment wins
    monkeypatch.setenv("MEMO_REMOTE_TIMEOUT", "-1")
    with pytest.raises(ConfigError, match="MEMO_REMOTE_TIMEOUT environment variable"):
        remote_timeout_setting(settings)


def test_the_bucket_gets_the_timeout() -> None:
    bucket = bucket_for("s3://b/p", 1.0)
    config = bucket._client.meta.config
    assert (config.read_timeout, config.connect_timeout) == (1.0, 1.0)
    config = bucket_for("s3://b/p", 30.0)._client.meta.config
    assert (config.read_timeout, config.connect_timeout) == (30.0, 2.0)


@pytest.fixture
def silent() -> Iterator[str]:
    """An endpoint that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


@pytest.mark.parametrize("where", ["pyproject", "environment"])
def test_a_silent_remote_degrades_within_the_configured_timeout(
        silent: str, tmp_path: Path, where: str) -> None:
    table = f'remote = "s3://bucket/{PREFIX}"'
    if where == "pyproject":
        table += '\nremote_timeout = "1s"'
    origin = make_project(tmp_path, table)
    a = Clone(origin, silent, tmp_path)
    extra = {"MEMO_REMOTE_TIMEOUT": "1"} if where == "environment" else {}
    started = time.monotonic()
    out = a.run("1", "2", "3", mode="auto", remote_mode="read", extra=extra)
    elapsed = time.monotonic() - started
    assert out["error"] is None, out["error"]
    assert out["results"] == [{"x": x, "square": x * x} for x in (1, 2, 3)]
    (warning,) = out["warnings"]  # one warning, then local only
    assert "unreachable" in warning
    assert "ReadTimeoutError" in warning
    assert a.calls() == ["work 1", "work 2", "work 3"]
    # Three attempts of 1 s (two retries), then local: the default of 5 s would take 15 s.
    assert elapsed < 10, elapsed


# -- 2. stats from the listing -------------------------------------------------------------------


def test_listing_gives_sizes_and_stats_makes_no_request_per_object(
        server: s3_server.S3Server, raw: Any, bucket: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    payload = "demo.f/" + "a" * 32 + "." + "0" * 16 + ".bin"
    for name, size in (("demo.f/" + "a" * 32 + ".json", 10), (payload, 3000),
                       ("demo.g/" + "b" * 32 + ".json", 7), ("README.txt", 5)):
        raw.put_object(Bucket=bucket, Key=f"{PREFIX}/{name}", Body=b"z" * size)
    for key, value in aws(server.endpoint, tmp_path).items():
        monkeypatch.setenv(key, value)
    store = S3Bucket(f"s3://{bucket}/{PREFIX}")
    requests: list[str] = []
    store._client.meta.events.register(
        "before-call.s3.*", lambda model, **_: requests.append(model.name))
    assert list(store.listing()) == sorted([
        ("README.txt", 5), ("demo.f/" + "a" * 32 + ".json", 10), (payload, 3000),
        ("demo.g/" + "b" * 32 + ".json", 7)])
    assert list(store.listing("demo.g/")) == [("demo.g/" + "b" * 32 + ".json", 7)]
    assert requests == ["ListObjectsV2", "ListObjectsV2"]

    from memo_replay.store.sync import Remote, stats

    requests.clear()
    found = stats(Remote(f"s3://{bucket}/{PREFIX}", "read", store))
    assert requests == ["ListObjectsV2"]  # no HEAD per object
    assert found.bytes == 10 + 3000 + 7
    assert found.other == 1
    assert found.functions["demo.f"].bytes == 3010
    assert found.functions["demo.f"].payload_files == 1


def test_remote_stats_bytes_are_the_sum_of_object_sizes(
        server: s3_server.S3Server, raw: Any, bucket: str, tmp_path: Path) -> None:
    origin = make_project(tmp_path, f'remote = "s3://{bucket}/{PREFIX}"')
    a = Clone(origin, server.endpoint, tmp_path)
    assert a.run("1", "2", "blob300", mode="auto", remote_mode="write")["error"] is None
    stored = objects(raw, bucket)
    assert len(stored) == 4  # three entries, one payload file
    result = cli(a, "remote", "stats", "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["entries"] == 3
    assert stats["bytes"] == sum(len(v) for v in stored.values())


# -- 3. pull keeps payload files kept out of git ------------------------------------------------


def test_pull_with_remote_payloads_replays_offline(tmp_path: Path) -> None:
    own = s3_server.start()  # this test stops it
    try:
        raw = client(own.endpoint, tmp_path)
        bucket = new_bucket(raw)
        origin = make_project(tmp_path, f'remote = "s3://{bucket}/{PREFIX}"\n'
                                        f'payloads = "remote"')
        a = Clone(origin, own.endpoint, tmp_path)
        out = a.run("blob300", "4", mode="record", remote_mode="write")
        assert out["error"] is None, out["error"]
        git(tmp_path, "clone", "-q", str(origin), "b")  # without the recordings
        b = Clone(tmp_path / "b", own.endpoint, tmp_path)
        result = cli(b, "pull", "--json")
        assert result.returncode == 0, result.stderr
        store = b.path / "fixtures_store"
        (payload,) = [k for k in objects(raw, bucket) if k.endswith(".bin")]
        assert bins(store) == [f".cache/payloads/{payload[len(PREFIX) + 1:]}"]
        assert (store / ".cache" / "payloads" / payload[len(PREFIX) + 1:]).read_bytes() == \
            objects(raw, bucket)[payload]
    finally:
        own.stop()
    out = b.run("blob300", "4", mode="replay", ci=True)  # the server is gone
    assert out["error"] is None, out["error"]
    assert out["warnings"] == []
    assert out["results"] == [256 * 300, {"x": 4, "square": 16}]
    assert not out["botocore"]
    assert b.calls() == []
    # The pulled entries are there to commit; no payload file is.
    assert git(b.path, "status", "--porcelain") == "?? fixtures_store/\n"
    commit(b.path, "pulled")
    assert not [f for f in git(b.path, "ls-files").split() if f.endswith(".bin")]


# -- 4. verify notes payload files kept on the remote -------------------------------------------


def test_verify_notes_a_remote_payload_of_a_fresh_clone(
        server: s3_server.S3Server, bucket: str, tmp_path: Path) -> None:
    origin = make_project(tmp_path, f'remote = "s3://{bucket}/{PREFIX}"\npayloads = "remote"')
    a = Clone(origin, server.endpoint, tmp_path)
    assert a.run("blob300", "4", mode="record", remote_mode="write")["error"] is None
    commit(origin, "recordings")
    git(tmp_path, "clone", "-q", str(origin), "c")
    c = Clone(tmp_path / "c", server.endpoint, tmp_path)

    result = cli(c, "verify", "--json")
    assert result.returncode == 0, result.stdout + result.stderr  # a note, not a failure
    (note,) = json.loads(result.stdout)
    assert note["kind"] == "remote-payload"
    assert note["note"] is True
    assert "kept on the remote" in note["message"]
    assert "not checked locally" in note["message"]
    text = cli(c, "verify")
    assert text.returncode == 0
    assert "remote-payload" in text.stdout
    assert "every entry is intact (1 note" in text.stdout

    # A damaged entry beside it still fails verify.
    work = next((c.path / "fixtures_store" / "demo_mod.work").glob("*.json"))
    work.write_text(work.read_text().replace('"square"', '"squared"'))
    result = cli(c, "verify", "--json")
    assert result.returncode == 1
    assert sorted(p["kind"] for p in json.loads(result.stdout)) == ["corrupt", "remote-payload"]

    # Once fetched (a replay with the remote reachable), it is checked like any payload file.
    work.write_text(work.read_text().replace('"squared"', '"square"'))
    out = c.run("blob300", mode="replay", remote_mode="read", ci=True)
    assert out["error"] is None, out["error"]
    result = cli(c, "verify", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout) == []
