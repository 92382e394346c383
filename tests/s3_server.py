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
from dataclasses import dataclass

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
