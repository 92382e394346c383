"""The S3 backend against a real S3 API server (moto's, started on 127.0.0.1 by
:mod:`s3_server`): the client reaches it only through ``AWS_ENDPOINT_URL``, as it would reach
MinIO or AWS. Every test gets its own bucket and its own AWS environment (monkeypatched, with
``~/.aws`` and the instance metadata service out of reach), so nothing leaks between tests and
nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import s3_server
from s3_server import server as server

from memo_replay.errors import RemoteError, RemoteUnavailable, StoreError
from memo_replay.store import Backend, LocalDirectory, ReadOnly, Tiered
from memo_replay.store.backend import BlobTooLarge
from memo_replay.store.s3 import S3Bucket

botocore_session = pytest.importorskip("botocore.session")

REPO = Path(__file__).resolve().parents[2]
SECRET = "wJalrXUtnFEMI-not-a-real-secret-K7MDENG"
QUICK = 15.0
"""Seconds within which a failing remote must have answered (generous: the bound is ~2 s)."""


def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str,
            key: str = "testing", secret: str = SECRET) -> None:
    """The standard AWS variables for ``endpoint``, and nothing else of the AWS chain."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254


@pytest.fixture
def env(server: s3_server.S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    aws_env(monkeypatch, tmp_path, server.endpoint)


@pytest.fixture
def raw(env: None) -> Any:
    """A plain botocore client of the same server, to look behind the backend's back."""
    return botocore_session.Session().create_client("s3")


@pytest.fixture
def bucket_name(raw: Any) -> str:
    name = f"memo-{uuid.uuid4().hex[:16]}"
    raw.create_bucket(Bucket=name)
    return name


@pytest.fixture
def bucket(bucket_name: str) -> S3Bucket:
    return S3Bucket(f"s3://{bucket_name}/team/cache")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the protocol --------------------------------------------------------------------------


def test_every_method_round_trips(bucket: S3Bucket, bucket_name: str) -> None:
    assert isinstance(bucket, Backend)
    name = "pkg.translate/0123456789abcdef.json"
    assert bucket.location == f"s3://{bucket_name}/team/cache"
    assert bucket.where(name) == f"s3://{bucket_name}/team/cache/{name}"
    assert (bucket.read(name), bucket.read_stamped(name), bucket.stamp(name),
            bucket.size(name), list(bucket.names())) == (None, None, None, None, [])
    assert bucket.delete(name) is False

    bucket.write(name, b'{"a": 1}\n')
    assert bucket.read(name) == b'{"a": 1}\n'
    read = bucket.read_stamped(name)
    assert read is not None
    assert read[0] == b'{"a": 1}\n'
    assert read[1] == bucket.stamp(name)
    etag, size = read[1]
    assert size == bucket.size(name) == 9
    assert isinstance(etag, str)
    assert etag

    bucket.write("pkg.translate/ffff.bin", b"\x00\xff")
    bucket.write("pkg.other/1.json", b"{}")
    assert list(bucket.names()) == ["pkg.other/1.json", "pkg.translate/0123456789abcdef.json",
                                    "pkg.translate/ffff.bin"]
    assert list(bucket.names("pkg.translate/")) == [name, "pkg.translate/ffff.bin"]
    assert list(bucket.names("pkg.translate/f")) == ["pkg.translate/ffff.bin"]
    assert list(bucket.names("pkg.nothing/")) == []

    assert bucket.delete(name) is True
    assert bucket.read(name) is None
    assert bucket.stamp(name) is None
    assert bucket.delete(name) is False


def test_layout_mirrors_the_store_byte_for_byte(bucket: S3Bucket, bucket_name: str,
                                                raw: Any) -> None:
    data = bytes(range(256)) * 10
    bucket.write("pkg.f/abc.bin", data)
    listed = raw.list_objects_v2(Bucket=bucket_name)["Contents"]
    assert [item["Key"] for item in listed] == ["team/cache/pkg.f/abc.bin"]
    assert raw.get_object(Bucket=bucket_name, Key="team/cache/pkg.f/abc.bin")["Body"].read() \
        == data


def test_a_bucket_without_prefix(bucket_name: str, raw: Any) -> None:
    root = S3Bucket(f"s3://{bucket_name}")
    assert root.location == f"s3://{bucket_name}"
    root.write("pkg.f/k.json", b"x")
    assert raw.list_objects_v2(Bucket=bucket_name)["Contents"][0]["Key"] == "pkg.f/k.json"
    assert root.where("pkg.f/k.json") == f"s3://{bucket_name}/pkg.f/k.json"
    assert list(root.names()) == ["pkg.f/k.json"]


def test_folder_markers_are_not_blobs(bucket: S3Bucket, bucket_name: str, raw: Any) -> None:
    raw.put_object(Bucket=bucket_name, Key="team/cache/m.f/", Body=b"")  # "Create folder"
    bucket.write("m.f/k.json", b"x")
    assert list(bucket.names()) == ["m.f/k.json"]


def test_the_stamp_changes_with_the_object(bucket: S3Bucket, bucket_name: str,
                                           raw: Any) -> None:
    bucket.write("m.f/k.json", b"one")
    before = bucket.stamp("m.f/k.json")
    raw.put_object(Bucket=bucket_name, Key="team/cache/m.f/k.json", Body=b"two")
    assert bucket.stamp("m.f/k.json") != before


def test_a_tampered_object_is_just_bytes_here(bucket: S3Bucket, bucket_name: str,
                                              raw: Any) -> None:
    # The backend moves bytes; the Store verifies entries (format, checksum, key) later.
    raw.put_object(Bucket=bucket_name, Key="team/cache/m.f/k.json", Body=b"not json")
    assert bucket.read("m.f/k.json") == b"not json"


def test_composes_as_a_read_only_tier_behind_a_local_store(bucket: S3Bucket,
                                                           tmp_path: Path) -> None:
    bucket.write("m.f/shared.json", b"shared")
    local = LocalDirectory(tmp_path / "store")
    tiered = Tiered(local, ReadOnly(bucket))
    assert tiered.read("m.f/shared.json") == b"shared"
    assert tiered.where("m.f/shared.json") == bucket.where("m.f/shared.json")
    tiered.write("m.f/local.json", b"local")
    assert list(tiered.names()) == ["m.f/local.json", "m.f/shared.json"]
    assert bucket.read("m.f/local.json") is None  # writes go to the first tier only
    with pytest.raises(StoreError, match="read-only"):
        ReadOnly(bucket).write("m.f/x.json", b"x")


# -- write once ----------------------------------------------------------------------------


def test_the_server_honours_if_none_match(bucket: S3Bucket, bucket_name: str,
                                          raw: Any) -> None:
    """What the backend relies on: a second conditional put of a key is refused (412)."""
    bucket.write("m.f/k.json", b"first")
    with pytest.raises(Exception, match="PreconditionFailed") as caught:
        raw.put_object(Bucket=bucket_name, Key="team/cache/m.f/k.json", Body=b"second",
                       IfNoneMatch="*")
    error: Any = caught.value  # a botocore ClientError
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_write_is_write_once(bucket: S3Bucket) -> None:
    bucket.write("m.f/k.json", b"recording")
    stamp = bucket.stamp("m.f/k.json")
    bucket.write("m.f/k.json", b"recording")  # identical: not an error, not rewritten
    assert bucket.stamp("m.f/k.json") == stamp
    with pytest.raises(RemoteError) as caught:
        bucket.write("m.f/k.json", b"something else")
    message = str(caught.value)
    assert bucket.where("m.f/k.json") in message
    assert "different object is already there" in message
    assert "nothing was overwritten" in message
    assert bucket.read("m.f/k.json") == b"recording"


WRITER = """
import json, sys, time
from memo_replay.errors import RemoteError
from memo_replay.store.s3 import S3Bucket

url, start, body = sys.argv[1], float(sys.argv[2]), sys.argv[3].encode()
bucket = S3Bucket(url)
time.sleep(max(0.0, start - time.time()))
outcomes = []
for k in range(8):
    try:
        bucket.write(f"m.f/key{k}.json", body)
        outcomes.append("ok")
    except RemoteError as exc:
        outcomes.append("refused" if "different object is already there" in str(exc)
                        else f"other: {exc}")
print(json.dumps(outcomes))
"""


@pytest.mark.parametrize("same_body", [False, True], ids=["different", "identical"])
def test_four_processes_write_one_key(bucket: S3Bucket, bucket_name: str,
                                      same_body: bool) -> None:
    start = time.time() + 3.0  # every process imported and connected by then: they collide
    bodies = [b"same" if same_body else f"body of writer {i}".encode() for i in range(4)]
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, bucket.location, str(start),
                                   body.decode()], cwd=REPO, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for body in bodies]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results.append(json.loads(out.splitlines()[-1]))
    for k in range(8):
        outcomes = [result[k] for result in results]
        stored = bucket.read(f"m.f/key{k}.json")
        if same_body:
            assert outcomes == ["ok"] * 4
            assert stored == b"same"
        else:
            assert sorted(outcomes) == ["ok", "refused", "refused", "refused"], outcomes
            assert stored == bodies[outcomes.index("ok")]


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../escape.json", "m.f/../../escape.json", "/abs.json",
                                  "m.f//k.json", "m.f/./k.json", "", "m.f/", "m.f\\k.json",
                                  "m.f/k\n.json"])
def test_a_name_escaping_the_prefix_is_refused(bucket: S3Bucket, bucket_name: str, raw: Any,
                                               name: str) -> None:
    for attempt in (lambda: bucket.write(name, b"x"), lambda: bucket.read(name),
                    lambda: bucket.read_stamped(name), lambda: bucket.stamp(name),
                    lambda: bucket.size(name), lambda: bucket.delete(name)):
        with pytest.raises(StoreError, match="refused the blob name"):
            attempt()
    assert "Contents" not in raw.list_objects_v2(Bucket=bucket_name)


def test_a_listing_prefix_escaping_is_refused(bucket: S3Bucket) -> None:
    with pytest.raises(StoreError, match="refused the blob name"):
        list(bucket.names("../"))


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "https://bucket/prefix", "bucket",
                                 "s3://bucket/a/../b"])
def test_a_bad_url_is_refused(env: None, url: str) -> None:
    with pytest.raises(RemoteError, match="s3://bucket"):
        S3Bucket(url)


def test_names_follows_pagination(bucket: S3Bucket, bucket_name: str, raw: Any) -> None:
    names = [f"m.f/{i:05d}.json" for i in range(1_050)] + ["m.g/0.json"]

    def put(name: str) -> None:
        raw.put_object(Bucket=bucket_name, Key=f"team/cache/{name}", Body=b"{}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, names))
    first = raw.list_objects_v2(Bucket=bucket_name, Prefix="team/cache/")
    assert first["IsTruncated"]  # the server pages at 1,000: names() must follow
    assert len(first["Contents"]) == 1_000
    assert list(bucket.names()) == sorted(names)
    assert list(bucket.names("m.f/")) == sorted(names)[:-1]
    assert list(bucket.names("m.f/0104")) == [f"m.f/{i:05d}.json" for i in range(1040, 1050)]


# -- size bound ----------------------------------------------------------------------------


class CountingProxy:
    """A TCP relay to ``target`` counting the bytes it delivers to the client."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.delivered = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, False),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True),
                             daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, count: bool) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
                if count:
                    with self._lock:
                        self.delivered += len(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self.listener.close()


def test_read_limit_refuses_a_large_object_without_downloading_it(
        server: s3_server.S3Server, bucket_name: str, raw: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    size = 48 << 20
    raw.put_object(Bucket=bucket_name, Key="team/cache/m.f/big.bin", Body=b"\x01" * size)
    host, port = server.endpoint.removeprefix("http://").split(":")
    proxy = CountingProxy((host, int(port)))
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
        bucket = S3Bucket(f"s3://{bucket_name}/team/cache")
        with pytest.raises(BlobTooLarge, match=f"{size} bytes, above the bound of 1024"):
            bucket.read("m.f/big.bin", limit=1024)
        with pytest.raises(BlobTooLarge):
            bucket.read_stamped("m.f/big.bin", limit=size - 1)
        time.sleep(0.5)  # let the relay notice the closed connection
        refused = proxy.delivered
        assert refused < size // 4, refused  # the headers and what socket buffers held
        assert bucket.read("m.f/big.bin", limit=size) == b"\x01" * size
        assert proxy.delivered - refused >= size  # the proxy does see a whole download
    finally:
        proxy.close()


# -- failures ------------------------------------------------------------------------------


def timed(action: Any) -> tuple[BaseException, float]:
    began = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        action()
    return caught.value, time.monotonic() - began


def test_a_missing_bucket_names_the_bucket(env: None) -> None:
    bucket = S3Bucket("s3://no-such-bucket-here/team")
    for action in (lambda: bucket.read("m.f/k.json"), lambda: bucket.stamp("m.f/k.json"),
                   lambda: bucket.size("m.f/k.json"), lambda: bucket.write("m.f/k.json", b"x"),
                   lambda: list(bucket.names()), lambda: bucket.delete("m.f/k.json")):
        error, seconds = timed(action)
        assert type(error) is RemoteError
        assert "'no-such-bucket-here'" in str(error)
        assert "does not exist" in str(error)
        assert "bucket name" in str(error)
        assert seconds < QUICK


@pytest.fixture(scope="module")
def checking_server() -> Iterator[s3_server.S3Server]:
    running = s3_server.start(check_credentials=True)
    yield running
    running.stop()


def test_wrong_credentials_name_the_credentials(
        checking_server: s3_server.S3Server, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    aws_env(monkeypatch, tmp_path, checking_server.endpoint, key="AKIANOTAREALKEY00000")
    bucket = S3Bucket("s3://some-bucket/team")
    for action in (lambda: bucket.read("m.f/k.json"), lambda: bucket.write("m.f/k.json", b"x"),
                   lambda: list(bucket.names())):
        error, seconds = timed(action)
        assert type(error) is RemoteError
        assert "AWS_ACCESS_KEY_ID" in str(error)
        assert "refused" in str(error)
        assert seconds < QUICK
        # Nothing secret in what is shown, chained exceptions included.
        shown = [str(error), repr(error), str(error.__cause__), repr(error.__cause__)]
        assert not [text for text in shown if SECRET in text]


def test_no_credentials_at_all_name_the_credentials(
        server: s3_server.S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    aws_env(monkeypatch, tmp_path, server.endpoint)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    error, seconds = timed(lambda: S3Bucket("s3://some-bucket/team").read("m.f/k.json"))
    assert type(error) is RemoteError
    assert "no usable AWS credentials" in str(error)
    assert "AWS_ACCESS_KEY_ID" in str(error)
    assert seconds < QUICK


def test_an_unknown_profile_names_the_profile(env: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(RemoteError, match=r"'no-such-profile'.*AWS_PROFILE"):
        S3Bucket("s3://some-bucket/team")


def test_an_unreachable_endpoint_is_remote_unavailable(
        server: s3_server.S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    aws_env(monkeypatch, tmp_path, f"http://127.0.0.1:{port}")
    bucket = S3Bucket("s3://some-bucket/team")
    for action in (lambda: bucket.read("m.f/k.json"), lambda: bucket.write("m.f/k.json", b"x"),
                   lambda: bucket.stamp("m.f/k.json"), lambda: list(bucket.names())):
        error, seconds = timed(action)
        assert isinstance(error, RemoteUnavailable)
        assert "unreachable" in str(error)
        assert "AWS_ENDPOINT_URL" in str(error)
        assert f"127.0.0.1:{port}" in str(error)
        assert seconds < QUICK


def test_a_silent_endpoint_times_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A server that accepts connections and never answers: the read timeout bounds the wait."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as silent:
        aws_env(monkeypatch, tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}")
        bucket = S3Bucket("s3://some-bucket/team", read_timeout=0.5, retries=1)
        error, seconds = timed(lambda: bucket.read("m.f/k.json"))
    assert isinstance(error, RemoteUnavailable)
    assert "ReadTimeout" in str(error)
    assert seconds < QUICK


def test_a_server_stopped_mid_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    own = s3_server.start()
    try:
        aws_env(monkeypatch, tmp_path, own.endpoint)
        botocore_session.Session().create_client("s3").create_bucket(Bucket="short-lived")
        bucket = S3Bucket("s3://short-lived/team")
        bucket.write("m.f/k.json", b"x")
    finally:
        own.stop()
    error, seconds = timed(lambda: bucket.read("m.f/k.json"))
    assert isinstance(error, RemoteUnavailable)
    assert seconds < QUICK


# -- imports -------------------------------------------------------------------------------


def test_the_client_is_imported_only_by_an_s3_bucket(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import json, sys
        import memo_replay
        from memo_replay.store import Store
        import memo_replay.store.store, memo_replay.store.backend
        print(json.dumps(sorted(m for m in sys.modules
                                if m.partition(".")[0] in ("botocore", "boto3", "obstore")
                                or m == "memo_replay.store.s3")))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
