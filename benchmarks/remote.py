"""The team cache (issue 17): remote hit latency against a local hit, and ``memo-replay pull``
parallel against serial, against one real S3 API server, in one run.

    python benchmarks/remote.py                       # defaults: --calls 200 --rounds 3
    python benchmarks/remote.py --calls 500 --rounds 5
    python benchmarks/remote.py --json                # one JSON object
    python benchmarks/remote.py --entries 3000        # entries recorded, pushed and pulled

It starts moto's S3 server (``moto[server]``) in a subprocess on 127.0.0.1 and a free port, as
``tests/s3_server.py`` does, but *threaded*: the tests serve one request at a time to get S3's
atomic conditional write, which a benchmark of parallel transfers must not serialize. The server
is stopped at the end (also on an error). The endpoint and credentials (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``...) are set only in the children's environments, never in this process.

In a temporary directory it writes a project (``pyproject.toml`` and ``bench_mod.py`` with
``@recorded def small(i)`` returning a small dict), records ``--entries`` calls in one child
(``MEMO_MODE=record``) and uploads them with ``memo-replay push``. Then, in ``--rounds``
interleaved rounds, each in fresh processes (``MEMO_MODE=replay``, strict: a miss raises):

1. **hit latency**, µs per call, over ``--calls`` distinct keys:
   - *local*: in the recording project, a warm in-process loop over keys its store holds;
   - *remote*: in a fresh project (empty store), the first lookup of each key, which only the
     bucket holds: local miss, GET, verified, copied into ``.cache/remote/``;
   - *cached remote*: a later process in that project, the first lookup of each key, read from
     ``.cache/remote/`` (verified again).
   In each child one other key is looked up first, untimed: it pays for what the first call of
   a process pays once (memo_replay's lazy imports, opening the store; for a remote, importing
   botocore and creating the client).
2. **pull**: ``memo-replay pull --json`` of all entries into a fresh project, ``--jobs 1``
   (serial) against the default (parallel) jobs; the wall time of the process (interpreter
   start and botocore import included), entries/s, and the CPU time the server process used
   meanwhile (moto is pure Python: on a small machine it, not the network, can be what a
   parallel pull waits for). The order of the two alternates.

Results are medians over the rounds; ratios are of the medians. The children run with
``PYTHONDONTWRITEBYTECODE`` unset (this environment sets it): installed packages ship bytecode,
and with it set a checkout would be recompiled at every start. ``MEMO_*``, ``CI``,
``PYTHONPATH`` and every ``AWS_*`` variable of the outer environment are not passed on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

SERVE = """
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                          create_backend_app)

app = DomainDispatcherApplication(create_backend_app)
server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

SECRET = "wJalrXUtnFEMI-not-a-real-secret-K7MDENG"

MODULE = textwrap.dedent('''\
    from memo_replay import recorded


    @recorded
    def small(i: int) -> dict:
        return {"i": i, "name": f"item-{i}", "tags": ["a", "b"], "score": i * 0.5}
''')

HIT_CHILD = textwrap.dedent('''\
    import json, statistics, sys, time
    import bench_mod

    kind, calls, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    bench_mod.small(warm)  # what the first call of any process pays: not timed
    keys = range(calls)
    if kind == "local":
        for i in keys:
            bench_mod.small(i)
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            for i in keys:
                bench_mod.small(i)
            samples.append((time.perf_counter() - started) / calls)
        per_call = statistics.median(samples)
    else:
        started = time.perf_counter()
        for i in keys:
            bench_mod.small(i)
        per_call = (time.perf_counter() - started) / calls
    for i in keys:
        assert bench_mod.small(i)["name"] == f"item-{i}"
    print(json.dumps({"per_call_s": per_call}))
''')

RECORD_CHILD = textwrap.dedent('''\
    import sys
    import bench_mod

    for i in range(int(sys.argv[1])):
        bench_mod.small(i)
''')


# -- the server and the projects ------------------------------------------------------------------

class Server:
    """moto's S3 server in a subprocess (threaded), on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen([sys.executable, "-c", SERVE], env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the port, or "" if the process died
        if not line.strip().isdigit():
            self.stop()
            raise SystemExit(f"the moto S3 server did not start (printed {line!r}); "
                             "pip install \"moto[server]\"")
        self.endpoint = f"http://127.0.0.1:{int(line)}"

    def cpu_s(self) -> float:
        """The server's CPU time so far (user + system, from ``/proc``; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2]
        except OSError:
            return 0.0
        utime, stime = fields.split()[11:13]
        return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def aws_env(endpoint: str, home: Path) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def create_bucket(endpoint: str) -> str:
    import botocore.session

    client = botocore.session.Session().create_client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key=SECRET)
    name = f"memo-bench-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


class Bench:
    """The temporary directory: projects, and children run in them."""

    def __init__(self, root: Path, server: Server, remote: str) -> None:
        self.root, self.server, self.remote = root, server, remote
        endpoint = server.endpoint
        self.aws = aws_env(endpoint, root)
        (root / "hit_child.py").write_text(HIT_CHILD)
        (root / "record_child.py").write_text(RECORD_CHILD)
        self.made = 0

    def project(self, name: str) -> Path:
        """A fresh project with an empty store."""
        self.made += 1
        path = self.root / f"{name}-{self.made}"
        path.mkdir()
        (path / "pyproject.toml").write_text('[project]\nname = "remote-bench"\nversion = "0"\n')
        (path / "bench_mod.py").write_text(MODULE)
        return path

    def env(self, path: Path, mode: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "MEMO_"))
               and k not in ("CI", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
        env.update(self.aws)
        env.update(PYTHONPATH=str(path), MEMO_MODE=mode, MEMO_REMOTE=self.remote,
                   MEMO_REMOTE_MODE="read")
        return env

    def run(self, path: Path, args: list[str], mode: str) -> tuple[str, float]:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, *args], cwd=path, env=self.env(path, mode),
                              capture_output=True, text=True, check=False, timeout=600)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"child {args} failed ({done.returncode}):\n{done.stdout}\n"
                             f"{done.stderr}")
        return done.stdout, wall

    def hit(self, path: Path, kind: str, calls: int, warm: int) -> float:
        out, _ = self.run(path, [str(self.root / "hit_child.py"), kind, str(calls), str(warm)],
                          "replay")
        per_call: float = json.loads(out.strip().splitlines()[-1])["per_call_s"]
        return per_call

    def pull(self, jobs: int | None, entries: int) -> tuple[float, float]:
        """The wall time of one ``pull`` process, and the server's CPU time meanwhile."""
        path = self.project("pull")
        args = ["-m", "memo_replay", "pull", "--json"]
        if jobs is not None:
            args += ["--jobs", str(jobs)]
        cpu = self.server.cpu_s()
        out, wall = self.run(path, args, "auto")
        cpu = self.server.cpu_s() - cpu
        report = json.loads(out)
        if report.get("transferred") != entries or report.get("problems"):
            raise SystemExit(f"pull transferred {report.get('transferred')} of {entries}, "
                             f"problems {report.get('problems')}")
        return wall, cpu


def remote_copies(path: Path) -> int:
    cache = path / "fixtures_store" / ".cache" / "remote"
    return sum(1 for p in cache.rglob("*.json")) if cache.is_dir() else 0


# -- the measurement ------------------------------------------------------------------------------

def measure(bench: Bench, calls: int, rounds: int, entries: int) -> dict[str, Any]:
    origin = bench.project("origin")
    started = time.perf_counter()
    bench.run(origin, [str(bench.root / "record_child.py"), str(entries)], "record")
    record_s = time.perf_counter() - started
    out, push_s = bench.run(origin, ["-m", "memo_replay", "push", "--json"], "auto")
    if json.loads(out).get("transferred") != entries:
        raise SystemExit(f"push did not upload {entries} entries:\n{out}")
    warm = entries - 1  # the untimed first call of each hit child
    hits: dict[str, list[float]] = {"local": [], "remote": [], "cached_remote": []}
    pulls: dict[str, list[float]] = {"serial": [], "parallel": []}
    server_cpu: dict[str, list[float]] = {"serial": [], "parallel": []}
    for r in range(rounds):
        print(f"round {r + 1}/{rounds}", file=sys.stderr, flush=True)
        fresh = bench.project("hits")
        order = ["local", "remote"] if r % 2 == 0 else ["remote", "local"]
        for kind in order:
            if kind == "local":
                hits["local"].append(bench.hit(origin, "local", calls, warm))
            else:
                hits["remote"].append(bench.hit(fresh, "remote", calls, warm))
                if remote_copies(fresh) < calls + 1:
                    raise SystemExit("the remote hits were not kept in .cache/remote/")
                hits["cached_remote"].append(bench.hit(fresh, "cached", calls, warm))
        for kind in (["serial", "parallel"] if r % 2 == 0 else ["parallel", "serial"]):
            wall, cpu = bench.pull(1 if kind == "serial" else None, entries)
            pulls[kind].append(wall)
            server_cpu[kind].append(cpu)
    hit_us = {k: statistics.median(v) * 1e6 for k, v in hits.items()}
    pull_s = {k: statistics.median(v) for k, v in pulls.items()}
    from memo_replay.store.sync import DEFAULT_JOBS

    return {
        "calls": calls, "rounds": rounds, "entries": entries,
        "record_s": record_s, "push_s": push_s,
        "hit_us": hit_us,
        "hit_rounds_us": {k: [x * 1e6 for x in v] for k, v in hits.items()},
        "hit_ratio_to_local": {k: hit_us[k] / hit_us["local"] for k in hit_us},
        "pull": {
            "parallel_jobs": DEFAULT_JOBS,
            "wall_s": pull_s,
            "rounds_s": pulls,
            "entries_per_s": {k: entries / v for k, v in pull_s.items()},
            "server_cpu_s": {k: statistics.median(v) for k, v in server_cpu.items()},
            "serial_over_parallel": pull_s["serial"] / pull_s["parallel"],
        },
    }


def table(result: dict[str, Any]) -> str:
    hit, ratio, pull = result["hit_us"], result["hit_ratio_to_local"], result["pull"]
    labels = {"local": "local hit (warm loop)", "remote": "remote hit (first lookup)",
              "cached_remote": "cached remote (.cache/remote)"}
    lines = [f"hit latency: small dict, {result['calls']} keys, medians of "
             f"{result['rounds']} rounds",
             f"{'':32} {'µs/call':>10} {'× local':>9}"]
    lines += [f"{labels[k]:32} {hit[k]:>10.1f} {ratio[k]:>8.1f}×" for k in labels]
    lines += ["",
              f"pull of {result['entries']} entries into a fresh store "
              f"(process wall, medians of {result['rounds']} rounds)",
              f"{'':32} {'wall s':>10} {'entries/s':>10} {'server CPU s':>13}"]
    for k, label in (("serial", "--jobs 1"), ("parallel", f"--jobs {pull['parallel_jobs']} "
                                                           "(default)")):
        lines.append(f"{label:32} {pull['wall_s'][k]:>10.2f} {pull['entries_per_s'][k]:>10.0f} "
                     f"{pull['server_cpu_s'][k]:>13.2f}")
    lines.append(f"{'serial / parallel':32} {pull['serial_over_parallel']:>9.2f}×")
    lines.append(f"\n(setup: record {result['record_s']:.1f} s, push {result['push_s']:.1f} s; "
                 f"load average {os.getloadavg()[0]:.2f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="keys timed per hit child (200)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--entries", type=int, default=3000,
                        help="entries recorded, pushed and pulled (3000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not 1 <= args.calls < args.entries or args.rounds < 1:
        parser.error("need 1 <= --calls < --entries and --rounds >= 1")
    server = Server()
    tmp = tempfile.mkdtemp(prefix="memo-remote-bench-")
    try:
        bench = Bench(Path(tmp).resolve(), server,
                      f"s3://{create_bucket(server.endpoint)}/bench")
        result = measure(bench, args.calls, args.rounds, args.entries)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
