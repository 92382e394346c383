"""A real S3 API server for tests: moto's, in a subprocess on 127.0.0.1 and a free port.

The server answers one request at a time. moto checks a conditional write (``If-None-Match:
*``) and then stores the object in two steps; AWS S3 (and MinIO) make that atomic. Serving
requests one by one gives the tests S3's guarantee, so concurrent writers test memo_replay's
side of the protocol and not a race inside the test server. (Every response closes its
connection then — HTTP/1.0 — so one client never holds the server.)

``INITIAL_NO_AUTH_ACTION_COUNT=0`` in the server's environment makes moto check credentials
(its IAM emulation: only keys it issued itself are accepted).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SERVE = """
import sys
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                          create_backend_app)

app = DomainDispatcherApplication(create_backend_app)
server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=MotoRequestHandler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@dataclass
class S3Server:
    """A running server: its endpoint, and the process to stop."""

    endpoint: str
    process: subprocess.Popen[str]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(*, check_credentials: bool = False) -> S3Server:
    """Start a server and wait until it listens (it prints its port)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONUNBUFFERED"] = "1"
    if check_credentials:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    process = subprocess.Popen([sys.executable, "-c", SERVE], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    line = process.stdout.readline()  # blocks until the port is printed (or the process dies)
    if not line.strip().isdigit() or time.monotonic() > deadline:
        process.kill()
        raise RuntimeError(f"the moto S3 server did not start (printed {line!r})")
    return S3Server(f"http://127.0.0.1:{int(line)}", process)


# -- shared by the remote tests ------------------------------------------------------------------

SECRET = "wJalrXUtnFEMI-not-a-real-secret-K7MDENG"
PREFIX = "team"

MODULE = '''
import os
from memo_replay import recorded


def _log(what):
    with open(os.environ["CALL_LOG"], "a") as fh:
        fh.write(what + "\\n")


@recorded
def work(x: int) -> dict:
    _log(f"work {x}")
    return {"x": x, "square": x * x}


@recorded
def blob(n: int) -> bytes:
    _log(f"blob {n}")
    return bytes(range(256)) * n
'''


def aws(endpoint: str, home: Path) -> dict[str, str]:
    """The standard AWS variables for ``endpoint``, and nothing else of the AWS chain."""
    return {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def client(endpoint: str, home: Path) -> Any:
    """A plain botocore client of the server, to look behind memo_replay's back."""
    import botocore.session  # the test extra's: imported where a test needs it

    session = botocore.session.Session()
    env = aws(endpoint, home)
    return session.create_client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def new_bucket(raw: Any) -> str:
    name = f"memo-{uuid.uuid4().hex[:16]}"
    raw.create_bucket(Bucket=name)
    return name


def objects(raw: Any, bucket: str) -> dict[str, bytes]:
    listed = raw.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: raw.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            for item in listed}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


# -- fixtures: a test module takes them with `from s3_server import bucket, raw, server` --------


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    """A server for the module's tests (each bucket is new, so they share it)."""
    running = start()
    yield running
    running.stop()


@pytest.fixture
def raw(server: S3Server, tmp_path: Path) -> Any:
    """A plain client of the server."""
    return client(server.endpoint, tmp_path)


@pytest.fixture
def bucket(raw: Any) -> str:
    """A new, empty bucket."""
    return new_bucket(raw)
