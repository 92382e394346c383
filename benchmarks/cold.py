"""The cold path: a fresh clone replayed by fresh processes, as CI runs it, against the floors.

``benchmarks/run.py`` runs these cases (``--only cold``, ``--only cold-xdist``,
``--only first-call``) and ``--smoke`` runs :func:`smoke`. The hit cases of ``run.py`` time a warm
call inside one long-lived process; a user's CI does something else: it checks out a fresh
clone (the store's index, ``fixtures_store/.cache/``, is git-ignored, so it is absent), starts
fresh processes (often pytest-xdist workers) and strictly replays every recorded call once.

The project
-----------

For each N (300, 3,000 and 30,000; ``--quick``: 300 and 3,000) a project is built in the run's
temporary directory: ``pyproject.toml``, ``lookups.py`` with ``@recorded def lookup(i)``
returning a small dict ``{"i": i, "square": i * i}``, the peers' versions of the same function,
``benchmarks/cold_child.py`` (the child every contender runs in) and a pytest test file. A
recording process calls ``lookup(0..N-1)`` (``MEMO_MODE=record``); a hand-written recorder's
``results.json`` is written next to it; everything is committed to a git repository. Each
round then ``git clone``\\ s it anew, as CI does (helpers shared with ``compare.py`` in
``gitproject.py``).

The contenders, each one fresh process answering ``lookup(i)`` for i in 0..N-1
---------------------------------------------------------------------------------

- **memo_replay, fresh clone**: ``CI=true MEMO_MODE=replay`` (strict) in a new clone;
- **memo_replay, second run**: the same again on that clone (with the index the first run
  built, if it builds one);
- **memo_replay, .cache impossible**: a new clone whose ``fixtures_store/.cache`` is a regular
  file, so no index can be created (a read-only checkout, a store on a shared volume);
- **floor: json.loads of each entry file**: read and decode every entry file of the store (a
  listing of its directory, then one ``open``/``read``/``json.loads`` per file) — the least a
  store of one JSON file per call can do;
- **floor: one JSON file**: one ``json.loads`` of a file holding every result (as a
  hand-written recorder keeps them), then N dict lookups;
- **diskcache.Cache.get, warm**: a ``diskcache.Cache`` filled by an earlier process;
- **joblib.Memory, cold**: a ``Memory(...).cache``'d function, its cache directory built by a
  recording process;
- **vcrpy**: N recorded HTTP calls (``urllib``) replayed from a cassette with
  ``vcr.use_cassette(path, record_mode="none")``. The cassette is recorded (YAML, vcrpy's
  default) against a local ``http.server`` on 127.0.0.1 that this process starts and stops
  before replaying, so a replay that missed would fail to connect. vcrpy finds a request's
  response by scanning the whole cassette (twice), so its cost per call grows with N: at
  3,000 calls one replay takes about a minute here (and recording the cassette about 45 s),
  so it runs once (see :data:`SLOW_RUN_S`); at 30,000 it would take hours and is skipped
  (``--quick`` skips it at 3,000 too).

Measured per contender: the process's wall time from spawn to exit, and the work over a bare
interpreter: that wall minus the median wall of ``python -c pass`` run in the same rounds (so
imports, opening the store, N answers and exit — the fixed cost per process included). Per call
is that work / N; "× floor" divides it by the json.loads floor's of the same N. Every number is
a median over interleaved rounds whose order rotates, so a burst of load hits all alike.
Before the rounds each contender runs once untimed, so that the bytecode caches exist.

The children's environment drops ``PYTHONDONTWRITEBYTECODE`` (set in this development
environment): installed packages ship bytecode, and with the variable set a checkout's
``memo_replay`` (and ``lookups.py``) would be recompiled at every process start, so start-up
times would measure the compiler. ``MEMO_*`` and ``CI`` are dropped too; each run sets its own.

``cold-xdist``: a test file replaying N = 3,000 calls split over 20 tests, run on a fresh clone
by ``python -m pytest -n 2`` and by ``python -m pytest -n 0`` (the same plugins loaded, no
workers), wall times and their ratio (the target: -n 2 ≤ 0.6× -n 0); both also run the same
tests with N = 0, so that what starting the workers costs can be told from the replay.

``--smoke`` (:func:`smoke`): a fresh clone's replay of N = 300 against the json.loads floor, 5
rounds, over a bare interpreter; a ratio above :data:`SMOKE_LIMIT` is measured again before it
counts.

``first-call``: the 100-module project of issue 15 (``benchmarks/first_call.py``, written
separately): ``python -m benchmarks.first_call --json`` is run as a child when that file exists
and its per-function first-call times are summarized; when it does not, the row says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.gitproject import STORE, ChildFailed, commit_all, entry_files, fresh_clone
from benchmarks.harness import Table, fmt_ms, fmt_ratio, fmt_us

ROOT = Path(__file__).resolve().parents[1]
SIZES = (300, 3_000, 30_000)
QUICK_SIZES = (300, 3_000)
XDIST_N = 3_000
XDIST_TESTS = 20
VCR_MAX_N = 3_000
"""vcrpy's matching is quadratic in the cassette's length: larger N are skipped (``--quick``:
N > 300, which saves about two minutes)."""
VCR_QUICK_MAX_N = 300
SMOKE_N = 300
SMOKE_LIMIT = 12.0
"""``--smoke`` fails when a fresh-clone replay costs more than this many json.loads floors."""
XDIST_TARGET = 0.6
SLOW_RUN_S = 20.0
"""A peer's run slower than this is not repeated (see :func:`measure`)."""

FLOOR = "floor-files"
LABELS = {
    "memo-fresh": "memo_replay, fresh clone",
    "memo-second": "memo_replay, second run on the same clone",
    "memo-nocache": "memo_replay, `.cache` impossible to create",
    FLOOR: "floor: `json.loads` of each entry file",
    "floor-onefile": "floor: one JSON file of all results",
    "diskcache": "diskcache.Cache.get, warm",
    "joblib": "joblib.Memory, cold",
    "vcrpy": "vcrpy, cassette replay (urllib)",
}
MEMO_RUNS = ("memo-fresh", "memo-second", "memo-nocache")
PEERS = {"diskcache": "diskcache", "joblib": "joblib", "vcrpy": "vcr"}
"""Contender → the module it needs; a missing one is skipped with a note."""

PROJECT_FILES = {
    "pyproject.toml": '[project]\nname = "cold-path"\nversion = "0"\n',
    ".gitignore": "__pycache__/\n",
    "lookups.py": '''\
"""The recorded function of the cold-path cases: a small dict per call."""

from memo_replay import recorded


@recorded
def lookup(i: int) -> dict[str, int]:
    return {"i": i, "square": i * i}
''',
    "joblib_lookups.py": '''\
"""The same function memoized by joblib.Memory (its directory: $COLD_JOBLIB_DIR)."""

import os

from joblib import Memory

BODY_RAN = 0
memory = Memory(os.environ["COLD_JOBLIB_DIR"], verbose=0)


@memory.cache
def lookup(i: int) -> dict[str, int]:
    global BODY_RAN
    BODY_RAN += 1
    return {"i": i, "square": i * i}
''',
    "tests/test_replay.py": f'''\
"""N recorded calls (COLD_N) replayed by {XDIST_TESTS} tests: a pytest-xdist worker's share."""

import os

import pytest

from lookups import lookup

N = int(os.environ["COLD_N"])


@pytest.mark.parametrize("part", range({XDIST_TESTS}))
def test_replay(part: int) -> None:
    for i in range(part, N, {XDIST_TESTS}):
        assert lookup(i) == {{"i": i, "square": i * i}}
''',
}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def child_env(**values: str) -> dict[str, str]:
    """No MEMO_*, no CI, and bytecode caching on (see the module's docstring)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEMO_") and k not in ("CI", "PYTHONDONTWRITEBYTECODE")}
    env.update(values)
    return env


def spawn(command: list[str], *, cwd: Path, env: dict[str, str], what: str
          ) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a child; its wall time from spawn to exit. A failure stops the run with its output."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise ChildFailed(what, command, result, "exited non-zero")
    return wall, result


def report_of(result: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise ChildFailed(what, result.args, result, "no JSON report on stdout") from None
    return report


# -- a local HTTP server, for vcrpy to record from ------------------------------------------------

class _Lookup(BaseHTTPRequestHandler):
    """``GET /lookup/<i>`` → ``{"i": i, "square": i * i}`` as JSON."""

    def do_GET(self) -> None:
        i = int(self.path.rsplit("/", 1)[1])
        body = json.dumps({"i": i, "square": i * i}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def http_server() -> Iterator[str]:
    """A local ``http.server`` on 127.0.0.1 (a free port) while the block runs; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Lookup)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/lookup"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- building the projects ----------------------------------------------------------------------

@dataclass
class Project:
    """The recorded project of one N, committed; the peers' caches beside it."""

    n: int
    path: Path
    joblib_dir: Path
    diskcache_dir: Path
    cassette: Path
    url: str = ""
    contenders: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Lab:
    """The cold-path projects of one run (built once, shared by the cases), under ``workdir``."""

    def __init__(self, workdir: Path, *, vcr_max_n: int = VCR_MAX_N) -> None:
        self.workdir = workdir
        self.vcr_max_n = vcr_max_n
        self.projects: dict[tuple[int, bool], Project] = {}
        self.clones = 0

    def project(self, n: int, *, peers: bool = True) -> Project:
        """The project of ``n`` recordings; with ``peers``, the peers' caches too."""
        for (size, with_peers), project in self.projects.items():
            if size == n and (with_peers or not peers):
                return project
        self.workdir.mkdir(parents=True, exist_ok=True)
        base = self.workdir / f"n{n}{'' if peers else '-memo'}"
        path = base / "project"
        project = Project(n, path, base / "joblib", base / "diskcache", base / "cassette.yaml")
        for name, text in PROJECT_FILES.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_text(text)
        shutil.copy2(ROOT / "benchmarks" / "cold_child.py", path / "cold_child.py")
        started = time.perf_counter()
        self.child(project, "memo", record=True, cwd=path, MEMO_MODE="record")
        if (found := entry_files(path / STORE)) != n:
            raise SystemExit(f"cold: recording {n:,} calls wrote {found} entries")
        self.child(project, "floor-onefile", record=True, cwd=path)
        commit_all(path)
        project.contenders = [*MEMO_RUNS, FLOOR, "floor-onefile"]
        progress(f"cold: recorded and committed {n:,} calls "
                 f"({time.perf_counter() - started:.1f} s)")
        if peers:
            self.record_peers(project)
        self.projects[n, peers] = project
        return project

    def record_peers(self, project: Project) -> None:
        n = project.n
        for contender, module in PEERS.items():
            if not available(module):
                project.notes.append(f"{LABELS[contender]}: skipped ({module} is not installed; "
                                     "pip install -e \".[bench]\")")
                continue
            if contender == "vcrpy" and n > VCR_MAX_N:
                project.notes.append(
                    f"{LABELS[contender]}: skipped at N = {n:,}: vcrpy scans the whole "
                    "cassette for every request (twice), so its cost per call grows with N "
                    "(see the smaller N); 10× the calls take about 100× as long, hours here")
                continue
            if contender == "vcrpy" and n > self.vcr_max_n:
                project.notes.append(
                    f"{LABELS[contender]}: skipped at N = {n:,} in a --quick run (recording "
                    "and one replay take about two minutes at N = 3,000; the full run measures "
                    "it)")
                continue
            started = time.perf_counter()
            if contender == "vcrpy":
                with http_server() as url:
                    project.url = url
                    self.child(project, contender, record=True, cwd=project.path)
                # The server is stopped: a replay that missed the cassette cannot connect.
            else:
                self.child(project, contender, record=True, cwd=project.path)
            project.contenders.append(contender)
            progress(f"cold: {contender} recorded {n:,} calls "
                     f"({time.perf_counter() - started:.1f} s)")

    def command(self, project: Project, contender: str, *, record: bool = False) -> list[str]:
        kind = "memo" if contender in MEMO_RUNS else contender
        command = [sys.executable, "cold_child.py", kind, str(project.n)]
        if contender == "diskcache":
            command += ["--dir", str(project.diskcache_dir)]
        if contender == "vcrpy":
            command += ["--dir", str(project.cassette), "--url", project.url]
        return [*command, "--record"] if record else command

    def env(self, project: Project, **values: str) -> dict[str, str]:
        return child_env(**{"COLD_JOBLIB_DIR": str(project.joblib_dir),
                             "COLD_N": str(project.n), **values})

    def child(self, project: Project, contender: str, *, cwd: Path, record: bool = False,
              **values: str) -> tuple[float, dict[str, Any]]:
        """Run one contender's child; its wall time and report."""
        if contender in MEMO_RUNS and not record:
            values = {"CI": "true", "MEMO_MODE": "replay", **values}
        what = f"{contender} ({'record' if record else 'replay'}, N={project.n:,})"
        wall, result = spawn(self.command(project, contender, record=record), cwd=cwd,
                             env=self.env(project, **values), what=what)
        return wall, report_of(result, what)

    def clone(self, project: Project, *, no_index: bool = False) -> Path:
        """A fresh clone of ``project``; with ``no_index``, its ``.cache`` is a regular file."""
        self.clones += 1
        destination = self.workdir / "clones" / f"clone-{self.clones}"
        destination.parent.mkdir(parents=True, exist_ok=True)
        fresh_clone(project.path, destination, project.n)
        if no_index:
            (destination / STORE / ".cache").write_text("not a directory: no index here\n")
        return destination


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# -- the rounds ----------------------------------------------------------------------------------

@dataclass
class Sizes:
    """Per contender: the process walls and in-process work of every round."""

    walls: dict[str, list[float]] = field(default_factory=dict)
    work: dict[str, list[float]] = field(default_factory=dict)
    first: dict[str, list[float]] = field(default_factory=dict)

    def add(self, contender: str, wall: float, report: dict[str, Any] | None = None) -> None:
        self.walls.setdefault(contender, []).append(wall)
        if report is not None:
            self.work.setdefault(contender, []).append(report["work_s"])
            self.first.setdefault(contender, []).append(report["first_s"])


def bare(cwd: Path, env: dict[str, str]) -> float:
    wall, _ = spawn([sys.executable, "-c", "pass"], cwd=cwd, env=env, what="python -c pass")
    return wall


NO_INDEX = ("after the fresh and the second replay, the clone has no index "
            "(`fixtures_store/.cache/` was not created): both ran without one")


def measure(lab: Lab, project: Project, rounds: int, contenders: list[str]) -> Sizes:
    """``rounds`` interleaved rounds of every contender (and a bare interpreter, twice).

    Every contender runs once first, untimed, so that bytecode caches exist and the page cache
    holds the files. A peer whose first run takes more than :data:`SLOW_RUN_S` keeps that run
    as its only sample (vcrpy at N = 3,000 takes about a minute): it is noted, not waited out.
    """
    env = lab.env(project)
    found = Sizes()
    warm = lab.clone(project)
    slow: list[str] = []
    for contender in contenders:
        wall, report = lab.child(project, contender,
                                 cwd=warm if contender in MEMO_RUNS else project.path)
        if contender in PEERS and wall > SLOW_RUN_S:
            slow.append(contender)
            found.add(contender, wall, report)
            project.notes.append(f"{LABELS[contender]}: one run took {wall:,.0f} s (over "
                                 f"{SLOW_RUN_S:g} s), so it ran once")
    remove(warm)
    timed = [c for c in contenders if c not in slow]
    pair = tuple(c for c in ("memo-fresh", "memo-second") if c in timed)
    units: list[tuple[str, ...]] = [("bare",), *([pair] if pair else [])]
    units += [(c,) for c in timed if c not in pair]
    units.append(("bare",))
    for r in range(rounds):
        progress(f"cold: N={project.n:,}, round {r + 1}/{rounds}")
        clone = lab.clone(project) if pair else project.path
        blocked = lab.clone(project, no_index=True) if "memo-nocache" in timed else None
        os.sync()  # the clones' writes are flushed before timing, not during it
        shift = r % len(units)
        for unit in (*units[shift:], *units[:shift]):
            for contender in unit:
                if contender == "bare":
                    found.add("bare", bare(project.path, env))
                    continue
                cwd = blocked if contender == "memo-nocache" else \
                    clone if contender in MEMO_RUNS else project.path
                assert cwd is not None
                wall, report = lab.child(project, contender, cwd=cwd)
                found.add(contender, wall, report)
        if r == 0 and pair and not (clone / STORE / ".cache").is_dir():
            project.notes.append(NO_INDEX)
        remove(clone)
        if blocked is not None:
            remove(blocked)
    return found


@dataclass
class Row:
    n: int
    contender: str
    wall_s: float
    over_bare_s: float
    work_s: float
    first_s: float

    @property
    def per_call_s(self) -> float:
        return self.over_bare_s / self.n


def rows_of(n: int, found: Sizes) -> list[Row]:
    bare_s = statistics.median(found.walls["bare"])
    return [Row(n, c, statistics.median(w), statistics.median(w) - bare_s,
                statistics.median(found.work[c]), statistics.median(found.first[c]))
            for c, w in found.walls.items() if c != "bare"]


def cold_case(lab: Lab, sizes: tuple[int, ...], rounds: int) -> Table:
    """Every contender at every N: process wall, work over bare, per call, × the floor."""
    all_rows: list[Row] = []
    notes: list[str] = []
    bare_walls: list[float] = []
    for n in sizes:
        project = lab.project(n)
        runs = rounds if n < 30_000 else min(rounds, 3)
        found = measure(lab, project, runs, project.contenders)
        all_rows += sorted(rows_of(n, found), key=lambda row: list(LABELS).index(row.contender))
        bare_walls += found.walls["bare"]
        notes += [note if note == NO_INDEX else f"N = {n:,}: {note}"
                  for note in dict.fromkeys(project.notes)]
        if n != XDIST_N:  # kept for cold-xdist; the N = 30,000 project is large
            remove(project.path.parent)
            lab.projects = {k: v for k, v in lab.projects.items() if v is not project}
    table = Table("cold", "cold path: a fresh clone replayed by fresh processes "
                  "(small dict results)",
                  ["contender", "N", "process ms", "over bare ms", "per call µs", "× floor",
                   "1st answer ms"])
    floor = {row.n: row.per_call_s for row in all_rows if row.contender == FLOOR}
    values: dict[str, dict[str, dict[str, float]]] = {}
    for row in all_rows:
        ratio = row.per_call_s / floor[row.n] if floor.get(row.n) else None
        table.rows.append([LABELS[row.contender], f"{row.n:,}", fmt_ms(row.wall_s),
                           fmt_ms(row.over_bare_s), fmt_us(row.per_call_s), fmt_ratio(ratio),
                           fmt_ms(row.first_s)])
        values.setdefault(row.contender, {})[str(row.n)] = {
            "wall_s": row.wall_s, "over_bare_s": row.over_bare_s,
            "per_call_s": row.per_call_s, "ratio_floor": ratio or 0.0, "work_s": row.work_s,
            "first_s": row.first_s}
    table.notes += [
        f"Medians of {rounds} interleaved rounds"
        + (f" ({min(rounds, 3)} at N = 30,000)" if 30_000 in sizes else "") + ", one fresh "
        "process per contender and round; a new `git clone` per round for memo_replay (no "
        "`fixtures_store/.cache/`: it is git-ignored). The second run reuses that clone.",
        "over bare = process wall − a bare `python -c pass` "
        f"({fmt_ms(statistics.median(bare_walls))} ms, same rounds): imports, opening the "
        "store, N answers and exit; per call = over bare / N; × floor = per call ÷ the "
        "json.loads floor's at the same N; 1st answer: script start to the first result, "
        "imports included (in process).",
        "vcrpy: urllib requests replayed from a YAML cassette recorded against a local "
        "http.server (stopped before replaying); diskcache: a cache filled by an earlier "
        "process; joblib: a cache directory built by a recording process. "
        "benchmarks/cold.py explains each contender.",
        *dict.fromkeys(notes),
    ]
    table.values = {"cold": values, "sizes": list(sizes)}
    return table


# -- pytest-xdist --------------------------------------------------------------------------------

def xdist_case(lab: Lab, rounds: int, n: int = XDIST_N) -> Table:
    """``pytest -n 2`` against ``pytest -n 0`` replaying N calls on fresh clones, and both
    replaying nothing (the same tests with N = 0): what starting workers costs by itself."""
    table = Table("cold-xdist", f"pytest-xdist on a fresh clone: {n:,} recorded calls over "
                  f"{XDIST_TESTS} tests", ["run", "wall ms", "× one process",
                                           "replay ms (over N = 0)", "replay × one process"])
    if not available("xdist"):
        table.notes.append("skipped: pytest-xdist is not installed (pip install pytest-xdist)")
        return table
    project = lab.project(n, peers=False)
    workers = {"pytest -n 0 (one process)": "0", "pytest -n 2 (two workers)": "2"}
    runs = [(name, count) for name in workers for count in (n, 0)]
    walls: dict[tuple[str, int], list[float]] = {run: [] for run in runs}

    def pytest(name: str, count: int, cwd: Path) -> float:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "-n", workers[name], "tests/test_replay.py"]
        env = lab.env(project, CI="true", MEMO_MODE="replay", COLD_N=str(count))
        wall, result = spawn(command, cwd=cwd, env=env, what=f"{name}, N={count:,}")
        if f"{XDIST_TESTS} passed" not in result.stdout:
            raise ChildFailed(name, command, result, f"expected {XDIST_TESTS} passed tests")
        return wall

    warm = lab.clone(project)
    for name, count in runs:
        pytest(name, count, warm)
    remove(warm)
    for r in range(rounds):
        progress(f"cold-xdist: round {r + 1}/{rounds}")
        clones = {run: lab.clone(project) for run in runs}
        os.sync()
        shift = r % len(runs)
        for name, count in (*runs[shift:], *runs[:shift]):
            walls[name, count].append(pytest(name, count, clones[name, count]))
        for clone in clones.values():
            remove(clone)
    median = {run: statistics.median(found) for run, found in walls.items()}
    (one, two) = (median[name, n] for name in workers)
    (one_replay, two_replay) = (median[name, n] - median[name, 0] for name in workers)
    for name in workers:
        replay = median[name, n] - median[name, 0]
        table.rows.append([name, fmt_ms(median[name, n]), fmt_ratio(median[name, n] / one),
                           fmt_ms(replay), fmt_ratio(replay / one_replay)
                           if one_replay > 0 else "—"])
    for name in workers:
        table.rows.append([f"{name}, N = 0", fmt_ms(median[name, 0]),
                           fmt_ratio(median[name, 0] / one), "—", "—"])
    table.notes += [
        f"Medians of {rounds} rounds, a new `git clone` per run (no index), CI=true "
        "MEMO_MODE=replay; the whole pytest process's wall time (start-up, collection, "
        "workers, exit). -n 0 loads the same plugins as -n 2 but runs no workers. N = 0: the "
        "same tests replaying nothing; replay = wall − its N = 0 wall.",
        f"Target (issue 15): two workers ≤ {XDIST_TARGET}× one process; this run: "
        f"{fmt_ratio(two / one)} (the replay alone: "
        f"{fmt_ratio(two_replay / one_replay) if one_replay > 0 else '—'}).",
    ]
    table.values = {"one_s": one, "two_s": two, "ratio": two / one, "n": n,
                    "replay_ratio": two_replay / one_replay if one_replay > 0 else None,
                    "median_s": {f"{name}, N={count}": value
                                 for (name, count), value in median.items()}}
    return table


# -- the 100-module project ----------------------------------------------------------------------

FIRST_CALL_ROWS = (("median_ms", "first call per recorded function: median of the 50"),
                   ("p90_ms", "first call per recorded function: p90"),
                   ("max_ms", "first call per recorded function: max"),
                   ("total_ms", "the 50 first calls of one process: total"),
                   ("warm_up_ms", "warm-up call (per-process costs, reported apart)"))


def first_call_case() -> Table:
    """``python -m benchmarks.first_call --json`` as a child, when that module exists."""
    table = Table("first-call", "first call of each recorded function: 100-module project, "
                  "50 recorded functions, fresh processes",
                  ["measure", "ms (median over processes)"])
    script = ROOT / "benchmarks" / "first_call.py"
    if not script.is_file():
        table.rows.append(["first call per recorded function", "—"])
        table.notes.append("not measured: benchmarks/first_call.py (the project's generator) "
                           "does not exist yet")
        return table
    progress("first-call: python -m benchmarks.first_call --json")
    command = [sys.executable, "-m", "benchmarks.first_call", "--json"]
    _, result = spawn(command, cwd=ROOT, env=child_env(), what="benchmarks.first_call --json")
    try:  # one JSON object, possibly indented over several lines
        report: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        report = report_of(result, "benchmarks.first_call")
    summary = report.get("median_over_processes", report)
    if not isinstance(summary, dict) or not isinstance(summary.get("median_ms"), int | float):
        raise ChildFailed("benchmarks.first_call --json", command, result,
                          "no median_over_processes.median_ms in its report")
    for key, label in FIRST_CALL_ROWS:
        if isinstance(summary.get(key), int | float):
            table.rows.append([label, f"{summary[key]:,.2f}"])
    processes = report.get("processes", "several")
    table.notes.append(f"Measured by benchmarks/first_call.py (see its docstring) in "
                       f"{processes} fresh replay processes; target (issue 15): ≤ 2 ms per "
                       "recorded function.")
    table.values = {"median_s": summary["median_ms"] / 1e3,
                    "max_s": summary.get("max_ms", float("nan")) / 1e3, "report": report}
    return table


# -- the fixed cost per process -----------------------------------------------------------------

FIXED_DEPENDENCIES = "import examples.dygram.ir, examples.dygram.llm, examples.dygram.prompts"
"""The bundled example's own imports (pydantic, its IR, its fake model client): not ours."""
FIXED_FIRST_CALL = (FIXED_DEPENDENCIES + "\n"
                    "from examples.dygram.translator import machine_paths, translate\n"
                    "translate(machine_paths()[0])")
"""The same, then ``import memo_replay`` (through the translator), decorating and the first
replayed call."""
FIXED_LIMIT_S = 0.030


def fixed_cost_case(lab: Lab, rounds: int) -> Table:
    """What a process pays for memo_replay before its first answer: a fresh clone of this
    repository replays the bundled example's first recorded call (strict replay, ``CI=true``)
    in a fresh interpreter; the same interpreter importing only the example's own modules is
    subtracted, so the difference is ``import memo_replay`` + decorating + the first replayed
    call + what exiting costs more."""
    table = Table("fixed-cost", "fixed cost per process: the bundled example's first replayed "
                  "call (examples/dygram, a fresh clone)",
                  ["process", "wall ms (median)", "over the previous row ms"])
    clone = lab.workdir / "fixed-cost-clone"
    remove(clone)
    clone.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True,
                   capture_output=True)
    env = child_env(CI="true", MEMO_MODE="replay")
    programs = {"bare interpreter (python -c pass)": "pass",
                "the example's own imports (pydantic, its IR and model client)":
                    FIXED_DEPENDENCIES,
                "… + memo_replay: import, decorate, replay the first call": FIXED_FIRST_CALL}
    walls: dict[str, list[float]] = {label: [] for label in programs}
    for label, program in programs.items():  # bytecode caches first, and a failure stops here
        spawn([sys.executable, "-c", program], cwd=clone, env=env, what=label)
    progress(f"fixed-cost: {rounds} interleaved rounds")
    for r in range(rounds):
        order = list(programs.items())
        order = order[r % len(order):] + order[:r % len(order)]
        for label, program in order:
            walls[label].append(spawn([sys.executable, "-c", program], cwd=clone, env=env,
                                      what=label)[0])
    remove(clone)
    median = {label: statistics.median(found) for label, found in walls.items()}
    previous: float | None = None
    for label, wall in median.items():
        table.rows.append([label, fmt_ms(wall), "—" if previous is None
                           else fmt_ms(wall - previous)])
        previous = wall
    labels = list(programs)
    fixed = median[labels[2]] - median[labels[1]]
    table.notes += [
        f"Medians of {rounds} interleaved rounds, fresh processes in a fresh `git clone` (no "
        "index), CI=true MEMO_MODE=replay, bytecode caches present. The last row's difference "
        "is memo_replay's fixed cost: its imports, decorating, the code fingerprint and the "
        "first replayed call, and the extra cost of exiting.",
        f"Target (issue 15): ≤ {FIXED_LIMIT_S * 1e3:g} ms over a bare interpreter; this run: "
        f"{fmt_ms(fixed)} ms.",
    ]
    table.values = {"fixed_s": fixed, "median_s": median}
    return table


# -- the smoke guard -----------------------------------------------------------------------------

def smoke(workdir: Path, rounds: int = 5) -> tuple[float, str]:
    """A fresh-clone replay of N = 300 against the json.loads floor: (ratio, the report line).

    Wall times over a bare interpreter are noisier than in-process loops, so a ratio over the
    limit is measured once more (a new clone, more rounds) before it counts.
    """
    lab = Lab(workdir)
    project = lab.project(SMOKE_N, peers=False)

    def ratio_of(runs: int) -> tuple[float, Row, Row]:
        found = measure(lab, project, runs, ["memo-fresh", FLOOR])
        rows = {row.contender: row for row in rows_of(SMOKE_N, found)}
        memo, floor = rows["memo-fresh"], rows[FLOOR]
        return memo.over_bare_s / max(floor.over_bare_s, 1e-4), memo, floor

    ratio, memo, floor = ratio_of(rounds)
    again = ""
    if ratio > SMOKE_LIMIT:
        progress(f"smoke: cold ratio {ratio:.2f}× is over {SMOKE_LIMIT:g}×: measuring again")
        ratio, memo, floor = ratio_of(2 * rounds)
        again = ", measured twice"
    verdict = "ok" if ratio <= SMOKE_LIMIT else "GROSS REGRESSION"
    line = (f"smoke ratio cold-fresh-clone: memo_replay {fmt_ms(memo.over_bare_s)} ms / floor "
            f"{fmt_ms(floor.over_bare_s)} ms over bare (N={SMOKE_N}{again}) = {ratio:.2f}× "
            f"(limit {SMOKE_LIMIT:g}×) {verdict}")
    return ratio, line
