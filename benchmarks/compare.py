"""Did a change to memo_replay/ make anything slower? BASE against NEW, side by side.

    python benchmarks/compare.py BASE [NEW]      # NEW defaults to the working tree
    python benchmarks/compare.py HEAD --quick    # 3 rounds, N=300: a fast check
    python benchmarks/compare.py main HEAD --rounds 11 --json compare.json

BASE and NEW are git revisions; without NEW, the working tree's ``memo_replay/`` is used,
uncommitted and untracked files included (copied once, when the run starts). Run it from the
virtualenv of the repository (its Python and installed dependencies run both sides). It prints
a table — case, BASE median, NEW median, NEW/BASE, the spread of the per-round ratios and a
verdict ("slower" above 1.05) — on stdout, progress on stderr, and exits 0 (it is a report)
unless a child process fails (1; its stderr is printed).

How it works
------------

1. **Materialize.** Each side's ``memo_replay`` package is copied into a temporary directory:
   ``git archive REV memo_replay | tar -x`` for a revision (nothing is registered in ``.git``,
   unlike a worktree), a copy of ``memo_replay/`` for the working tree. The benchmark code the
   children import (``benchmarks/cases.py``, ``harness.py``, ``contenders.py``,
   ``compare_child.py``) is copied once from the working tree and shared by both sides, so only
   memo_replay differs. Everything lives under one temporary directory, removed at the end,
   on Ctrl-C and on SIGTERM: nothing is written into the repository, bytecode included.
2. **Isolate.** Every measurement runs in a child process whose ``PYTHONPATH`` starts with that
   side's copy, so it imports that copy and not the editable install of ``.venv``. Every child
   checks where ``memo_replay`` came from (``COMPARE_EXPECT_PACKAGE``) and fails loudly when it
   is anything else; a probe prints the location once per side before timing starts.
   ``PYTHONDONTWRITEBYTECODE`` is removed from the children's environment and each copy is
   byte-compiled (``python -m compileall``) before timing: installed packages ship bytecode, and
   with the variable set a checkout would be recompiled from source at every process start —
   start-up times would measure the compiler, not memo_replay. ``MEMO_*`` and ``CI`` are removed
   too; each case sets what it needs. The two copies' paths have the same length, so the
   children's environments have the same size (it moves the stack, and with it loop timings).
3. **Interleave.** The machine is noisy (two shared cores), so no single number is trusted. A
   *round* runs every case for both sides, back to back; which side goes first alternates
   from round to round (BASE NEW, NEW BASE, ...) so neither profits from going first, and a
   burst of load hits both alike. Rounds run one after another over the whole run rather than
   case by case, so a slow minute spoils one round of every case, not every round of one case.
   In each round every warm and cold case runs in ``--processes`` fresh processes per side
   (default 2): a process's memory layout alone moves a tight loop by several percent here,
   so that luck has to be averaged, not kept for a whole run.
4. **Summarize.** A side's number for a case is the *median over rounds*; NEW/BASE divides
   the two medians. The ratios of the rounds (NEW and BASE of the same round) are shown by
   their quartiles: where identical code lands (``compare.py HEAD HEAD``) is the noise floor
   for reading the other rows, and a verdict whose rounds disagree is marked ``(noisy)``.

The cases
---------

``hit-small``, ``hit-dict-arg``, ``hit-bytes-arg``, ``hit-pydantic-result`` (µs per call)
    A warm hit in one process: the call is recorded, replayed once and checked against the real
    result, warmed up, then timed in a tight loop (``benchmarks/harness.py``: inner loops of at
    least 20 ms, gc paused, strict ``replay`` so every timed call is a true hit), as
    ``benchmarks/run.py`` does. Small args ``f(3, "x")`` is the fixed cost of the hit path;
    a dict of 1,000 items and 1 MB of ``bytes`` exercise argument identification; a pydantic
    result with 1,000 nested models exercises payload decoding. The children of both sides
    are prepared first; then their ``--samples`` samples alternate one by one (BASE NEW NEW
    BASE ...), so that load which comes and goes within the round hits both alike. A child's
    value is its *fastest* sample: the loop does the same work every time and noise only ever
    adds to it, so under a busy neighbour (a test suite on both cores) the fastest sample
    stays put while the median drifts with the load; the medians over processes and rounds
    then take care of the rest.
``miss`` (µs per call)
    A call on fresh arguments in ``auto`` mode: look up, miss, run, write one fsync'd entry
    file — the recording path (the child checks every call wrote its entry). Timed like the
    hits, with samples of at least 100 ms.
``cold-*`` (the path CI runs)
    A project (``pyproject.toml``, a module with ``@recorded def lookup(i)`` returning a small
    dict, and a script calling ``lookup(0..N-1)``) is recorded once per side — each side
    records its own store, since key formats may differ — and committed to a git repository.
    Each round clones it anew (``git clone``), so ``fixtures_store/.cache/`` (git-ignored: the
    index) is absent, as in CI, and runs ONE fresh process with ``CI=true MEMO_MODE=replay``
    that imports the module and calls all N: ``cold-fresh-wall`` is that process's wall time
    from start to exit, ``cold-fresh-cpu`` its user + system CPU time, ``cold-fresh-first`` the
    first call (code fingerprint, opening the store) and ``cold-fresh-call`` the mean of calls
    2..N, both timed inside the child. The same clone is then run again, its index now built:
    ``cold-second-wall``, ``-cpu`` and ``-call``. A round makes ``--processes`` clones per side
    and takes the median. Why the CPU time: a process that waits for a core held by a
    neighbour (a test suite on both cores) gets a longer wall time but not more CPU time, so
    on a busy machine the CPU rows stay readable when the wall rows scatter; a slowdown that
    is waiting (I/O, fsync, locks) shows in the wall rows only.
``import`` (ms over a bare interpreter)
    ``python -c "import memo_replay"`` plus decorating one function, against ``python -c pass``:
    the start-up cost every process using memo_replay pays. Each round runs
    ``--import-runs`` rotating triples (bare, BASE, NEW) and takes, per side, the median
    wall time minus the median bare wall time. This child reports only where memo_replay came
    from (without importing json, which would be measured too).

Every child reports one JSON line on stdout (the warm children one per command, see
``compare_child.py``); a child that fails, or imports the wrong memo_replay, stops the run with
its stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.dont_write_bytecode = True  # this process leaves no __pycache__ in benchmarks/
# Run as a script, Python puts benchmarks/ first on sys.path; the helpers live in the
# `benchmarks` package at the repository root. This process never imports memo_replay.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "benchmarks":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.gitproject import (  # noqa: E402
    STORE,
    ChildFailed,
    commit_all,
    entry_files,
    fresh_clone,
    run,
)
from benchmarks.harness import Table, fmt_ms, fmt_us  # noqa: E402

EXPECT_ENV = "COMPARE_EXPECT_PACKAGE"
"""Names the copy every child must import ``memo_replay`` from (read by compare_child.py and
the cold project's script too)."""

SLOWER = 1.05
"""A NEW/BASE ratio above this is flagged "slower" (below 1/SLOWER: "faster")."""
HARNESS_FILES = ("__init__.py", "cases.py", "harness.py", "contenders.py", "compare_child.py")
"""The benchmark modules warm children import, copied once and shared by both sides."""
WARM_CASES = ("hit-small", "hit-dict-arg", "hit-bytes-arg", "hit-pydantic-result", "miss")
GROUPS = (*WARM_CASES, "cold", "import")
"""What ``--only`` selects: a warm case, the cold-replay cases, the import case."""
MIN_SAMPLE_S = {"miss": 0.1}
"""Minimum seconds per in-child sample (default 0.02): a miss costs milliseconds (an fsync),
so its samples are longer to hold enough calls."""

# -- the cold-replay project: what a user's repository would hold ------------------------------

PROJECT_FILES = {
    "pyproject.toml": '[project]\nname = "compare-cold-replay"\nversion = "0"\n',
    ".gitignore": "__pycache__/\n",
    "lookups.py": '''\
"""The recorded function of the cold-replay case: a small dict per call."""

from memo_replay import recorded


@recorded
def lookup(i: int) -> dict[str, int]:
    return {"i": i, "square": i * i}
''',
    "call_all.py": '''\
"""Call lookup(0..N-1) once each in this fresh process; report timings as one JSON line."""

import os
import sys
import time

started = time.perf_counter()
import memo_replay

origin = os.path.realpath(memo_replay.__file__)
expected = os.path.realpath(os.environ["COMPARE_EXPECT_PACKAGE"])
if not origin.startswith(expected + os.sep):
    sys.exit(f"memo_replay was imported from {origin}, not from the copy under {expected}")

from lookups import lookup

imported = time.perf_counter()
n = int(sys.argv[1])
cpu_imported = time.process_time()
results = [lookup(0)]
first, cpu_first = time.perf_counter(), time.process_time()
results += [lookup(i) for i in range(1, n)]
done, cpu_done = time.perf_counter(), time.process_time()
if results != [{"i": i, "square": i * i} for i in range(n)]:
    sys.exit("a replayed result differs from the real one")

import json

print(json.dumps({"memo_replay": origin, "n": n, "import_s": imported - started,
                  "first_call_s": first - imported, "rest_s": done - first,
                  "first_call_cpu_s": cpu_first - cpu_imported,
                  "rest_cpu_s": cpu_done - cpu_first}))
''',
}

IMPORT_CODE = f"""\
import os, memo_replay
origin = os.path.realpath(memo_replay.__file__)
if not origin.startswith(os.path.realpath(os.environ["{EXPECT_ENV}"]) + os.sep):
    raise SystemExit("memo_replay was imported from " + origin)
@memo_replay.recorded
def f(x): return x
print('{{"memo_replay": "' + origin + '"}}')
"""
"""The import child: import, check the origin, decorate. It reports without importing json
(that would add to what is measured); temporary paths need no JSON escaping."""


# -- what is measured ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    key: str
    title: str
    unit: str
    """``µs/call`` or ``ms``: how the seconds are shown."""


def cases(n: int) -> list[Case]:
    us, ms = "µs/call", "ms"
    return [
        Case("hit-small", 'warm hit, small args f(3, "x")', us),
        Case("hit-dict-arg", "warm hit, dict of 1,000 items argument", us),
        Case("hit-bytes-arg", "warm hit, 1 MB bytes argument", us),
        Case("hit-pydantic-result", "warm hit, pydantic result (1,000 nested models)", us),
        Case("miss", "miss that records (fresh key each call, auto)", us),
        Case("cold-fresh-wall", f"cold replay, fresh clone: process wall ({n:,} calls)", ms),
        Case("cold-fresh-cpu", "cold replay, fresh clone: process CPU (user+sys)", ms),
        Case("cold-fresh-first", "cold replay, fresh clone: first call", ms),
        Case("cold-fresh-call", "cold replay, fresh clone: per call (2..N)", us),
        Case("cold-second-wall", f"cold replay, second run: process wall ({n:,} calls)", ms),
        Case("cold-second-cpu", "cold replay, second run: process CPU (user+sys)", ms),
        Case("cold-second-call", "cold replay, second run: per call (2..N)", us),
        Case("import", "import memo_replay + @recorded, over bare python", ms),
    ]


@dataclass
class Revision:
    """One side of the comparison and its materialized copy of ``memo_replay``."""

    label: str
    """``BASE`` or ``NEW``."""
    spec: str | None
    """The git revision, or None for the working tree."""
    description: str = ""
    commit: str | None = None
    path: Path = Path()
    """The directory holding the copy's ``memo_replay/`` (first on the children's path)."""
    origin: str = ""
    """``memo_replay.__file__`` as a child imported it."""

    @property
    def slug(self) -> str:
        """``a`` or ``b``: the sides' paths have equal lengths, so that their children's
        environments (PYTHONPATH, ...) have equal sizes — the size of the environment moves the
        stack, which can shift a tight loop's speed by itself."""
        return "a" if self.label == "BASE" else "b"

    def env(self, *extra_path: Path, **values: str) -> dict[str, str]:
        """The environment of a child that must import this side's copy."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("MEMO_") and k not in ("CI", "PYTHONDONTWRITEBYTECODE")}
        path = [str(self.path), *map(str, extra_path)]
        if env.get("PYTHONPATH"):
            path.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(path)
        env[EXPECT_ENV] = str(self.path)
        env.update(values)
        return env


@dataclass
class Config:
    rounds: int
    calls: int
    samples: int
    processes: int
    import_runs: int
    groups: tuple[str, ...]
    workdir: Path


@dataclass
class Results:
    """Per-round values (seconds) of every case and side, and every child's raw report."""

    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    raw: list[dict[str, Any]] = field(default_factory=list)

    def add(self, case: str, side: str, value: float) -> None:
        self.values.setdefault(case, {}).setdefault(side, []).append(value)


def progress(message: str) -> None:
    print(f"compare: {message}", file=sys.stderr, flush=True)


# -- running things ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ran:
    """What a measuring child cost and reported."""

    wall_s: float
    """From just before it was started to just after it exited."""
    cpu_s: float
    """Its user + system CPU time: unlike the wall time, it does not grow while the child
    waits for a core another process holds, so it stays readable on a busy machine."""
    report: dict[str, Any]


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child(command: Sequence[str], *, cwd: Path, env: dict[str, str], what: str) -> Ran:
    """Run a measuring child (no other child of this process runs meanwhile, so the growth of
    RUSAGE_CHILDREN is its CPU time); its JSON report is the last line of its stdout. Its
    ``memo_replay`` must be the copy ``env`` names."""
    cpu_before = cpu_of_children()
    started = time.perf_counter()
    result = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True,
                            check=False)
    wall = time.perf_counter() - started
    cpu = cpu_of_children() - cpu_before
    if result.returncode != 0:
        raise ChildFailed(what, command, result, "exited non-zero")
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise ChildFailed(what, command, result, "no JSON report on stdout") from None
    origin = str(report.get("memo_replay", ""))
    if not origin.startswith(os.path.realpath(env[EXPECT_ENV]) + os.sep):
        raise ChildFailed(what, command, result, f"memo_replay came from {origin!r}")
    return Ran(wall, cpu, report)


class WarmChild:
    """A running ``benchmarks.compare_child``: prepared on creation (it prints ``ready``), then
    sampled on command. Its stderr goes to a file, so it can never block on a full pipe."""

    def __init__(self, command: Sequence[str], *, cwd: Path, env: dict[str, str],
                 what: str) -> None:
        self.command, self.what = list(command), what
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(self.command, cwd=cwd, env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr)
        ready = self.read()
        if not ready.get("ready") or not str(ready.get("memo_replay", "")).startswith(
                os.path.realpath(env[EXPECT_ENV]) + os.sep):
            self.fail(f"unexpected first report {ready!r}")

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.fail("exited before reporting")
        try:
            report: dict[str, Any] = json.loads(line)
        except ValueError:
            self.fail(f"printed {line!r}, not a JSON report")
        return report

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            self.fail("exited before its last command")

    def sample(self) -> float:
        self.send("sample")
        return float(self.read()["sample_s"])

    def finish(self) -> dict[str, Any]:
        self.send("done")
        report = self.read()
        if self.process.wait() != 0:
            self.fail("exited non-zero after its report")
        return report

    def fail(self, problem: str) -> NoReturn:
        self.stop()
        self.stderr.seek(0)
        stdout = self.process.stdout.read() if self.process.stdout else ""
        result = subprocess.CompletedProcess(self.command, self.process.returncode, stdout,
                                             self.stderr.read().decode(errors="replace"))
        raise ChildFailed(self.what, self.command, result, problem)

    def stop(self) -> None:
        """Kill the child unless it has exited."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def close(self) -> None:
        self.stop()
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


# -- setup ---------------------------------------------------------------------------------------

def resolve(spec: str) -> str:
    """The commit a revision names; exits with a usage error when it names none."""
    result = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"compare: {spec!r} is not a git revision of {ROOT}")
    return result.stdout.strip()


def materialize(side: Revision, workdir: Path) -> None:
    """Copy ``side``'s ``memo_replay`` package under ``workdir`` and byte-compile it."""
    side.path = workdir / f"side-{side.slug}"
    side.path.mkdir()
    if side.spec is None:
        shutil.copytree(ROOT / "memo_replay", side.path / "memo_replay",
                        ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]"))
        changed = subprocess.run(["git", "status", "--porcelain", "--", "memo_replay"], cwd=ROOT,
                                 capture_output=True, text=True, check=False).stdout.splitlines()
        side.description = ("working tree, " + (f"{len(changed)} file(s) differ from HEAD"
                                                if changed else "same as HEAD"))
    else:
        side.commit = resolve(side.spec)
        archive = run(["git", "archive", "--format=tar", side.commit, "memo_replay"], cwd=ROOT,
                      what=f"git archive {side.spec}").stdout
        run(["tar", "-x", "-C", str(side.path)], cwd=ROOT, stdin=archive, what="tar -x")
        side.description = f"{side.spec} = {side.commit[:10]}"
    if not (side.path / "memo_replay" / "__init__.py").is_file():
        raise SystemExit(f"compare: {side.description} has no memo_replay package")
    compile_tree(side.path, side.env())
    probe = child([sys.executable, "-c", IMPORT_CODE], cwd=workdir, env=side.env(),
                  what=f"{side.label}: import memo_replay")
    side.origin = probe.report["memo_replay"]
    progress(f"{side.label} ({side.description}): memo_replay imported from {side.origin}")


def compile_tree(path: Path, env: dict[str, str]) -> None:
    run([sys.executable, "-m", "compileall", "-q", str(path)], cwd=path, env=env,
        what=f"compileall {path}")


def copy_harness(workdir: Path) -> Path:
    """The benchmark modules the warm children import, as a ``benchmarks`` package of their own
    (with a ``pyproject.toml`` marking it as the recorded functions' project root)."""
    harness = workdir / "harness"
    (harness / "benchmarks").mkdir(parents=True)
    for name in HARNESS_FILES:
        shutil.copy2(ROOT / "benchmarks" / name, harness / "benchmarks" / name)
    (harness / "pyproject.toml").write_text('[project]\nname = "compare-harness"\n'
                                            'version = "0"\n')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    compile_tree(harness, env)
    return harness


def build_project(side: Revision, config: Config) -> Path:
    """The cold-replay project recorded by ``side`` and committed to a git repository."""
    project = config.workdir / f"project-{side.slug}"
    project.mkdir()
    for name, text in PROJECT_FILES.items():
        (project / name).write_text(text)
    progress(f"{side.label}: recording {config.calls:,} calls of the cold-replay project")
    child([sys.executable, "call_all.py", str(config.calls)], cwd=project,
          env=side.env(MEMO_MODE="record"), what=f"{side.label}: record the cold project")
    if (found := entry_files(project / STORE)) != config.calls:
        raise SystemExit(f"compare: {side.label} recorded {found} entries for "
                         f"{config.calls} calls")
    commit_all(project)
    return project


# -- one round of each case ----------------------------------------------------------------------

class Runner:
    def __init__(self, config: Config, sides: tuple[Revision, Revision]) -> None:
        self.config = config
        self.sides = sides
        self.results = Results()
        self.harness = Path()
        self.projects: dict[str, Path] = {}
        self.scratch = config.workdir / "scratch"
        self.scratch.mkdir()

    def setup(self) -> None:
        for side in self.sides:
            materialize(side, self.config.workdir)
        if any(group in WARM_CASES for group in self.config.groups):
            self.harness = copy_harness(self.config.workdir)
        if "cold" in self.config.groups:
            for side in self.sides:
                self.projects[side.label] = build_project(side, self.config)

    def order(self, round_index: int) -> tuple[Revision, ...]:
        """BASE first in even rounds, NEW first in odd ones."""
        return self.sides if round_index % 2 == 0 else self.sides[::-1]

    def round(self, r: int) -> None:
        for group in self.config.groups:
            if group in WARM_CASES:
                self.warm(group, r)
            elif group == "cold":
                self.cold(r)
            else:
                self.imports(r)

    def warm(self, case: str, r: int) -> None:
        """``--processes`` fresh children per side, prepared one after the other; then their
        samples alternate one by one (BASE NEW NEW BASE ...), so that noise which comes and
        goes within the round — a neighbour's burst, a slow fsync — hits both sides alike. A
        side's value for the round: the median over its children of each child's fastest
        sample (seconds per call; see the module's docstring for why the fastest)."""
        command = [sys.executable, "-m", "benchmarks.compare_child", case,
                   "--workdir", str(self.scratch),
                   "--min-sample-s", str(MIN_SAMPLE_S.get(case, 0.02))]
        processes = range(self.config.processes)
        children: dict[tuple[str, int], WarmChild] = {}
        try:
            for i in processes:
                for side in self.order(r + i):
                    children[side.label, i] = WarmChild(
                        command, cwd=self.scratch, env=side.env(self.harness),
                        what=f"{side.label}: {case}, round {r + 1}, process {i + 1}")
            for k in range(self.config.samples):
                for i in processes:
                    for side in self.order(r + k + i):
                        children[side.label, i].sample()
            for side in self.sides:
                fastest: list[float] = []
                for i in processes:
                    report = children[side.label, i].finish()
                    fastest.append(min(report["samples_s"]))
                    self.results.raw.append({"round": r, "process": i, "side": side.label,
                                             **report})
                self.results.add(case, side.label, statistics.median(fastest))
        finally:
            for warm_child in children.values():
                warm_child.close()

    def cold(self, r: int) -> None:
        """``--processes`` new clones per side; on each, one strict-replay process, then (after
        the fresh runs of all clones) a second one. A side's value for the round: the median
        over its clones."""
        processes = range(self.config.processes)
        clones: dict[tuple[str, int], Path] = {}
        for i in processes:
            for side in self.order(r + i):
                clones[side.label, i] = self.scratch / f"clone-{side.slug}-{r}-{i}"
                fresh_clone(self.projects[side.label], clones[side.label, i], self.config.calls)
        os.sync()  # the clones' writes are flushed before timing, not during it
        for run_name in ("fresh", "second"):
            values: dict[tuple[str, str], list[float]] = {}
            for i in processes:
                for side in self.order(r + i):
                    ran = child(
                        [sys.executable, "call_all.py", str(self.config.calls)],
                        cwd=clones[side.label, i], env=side.env(CI="true", MEMO_MODE="replay"),
                        what=f"{side.label}: cold replay ({run_name} run), round {r + 1}, "
                             f"clone {i + 1}")
                    report = ran.report
                    measured = {"wall": ran.wall_s, "cpu": ran.cpu_s,
                                "first": report["first_call_s"],
                                "call": report["rest_s"] / max(1, report["n"] - 1)}
                    for name, value in measured.items():
                        values.setdefault((name, side.label), []).append(value)
                    self.results.raw.append({"round": r, "process": i, "side": side.label,
                                             "case": f"cold-{run_name}", "wall_s": ran.wall_s,
                                             "cpu_s": ran.cpu_s, **report})
            for (name, label), found in values.items():
                if run_name == "fresh" or name != "first":
                    self.results.add(f"cold-{run_name}-{name}", label, statistics.median(found))
        if not (clones[self.sides[0].label, 0] / STORE / ".cache").exists():
            progress("note: the replay did not create the store's index")
        for clone in clones.values():
            shutil.rmtree(clone, ignore_errors=True)

    def imports(self, r: int) -> None:
        """``--import-runs`` rotating triples (bare, BASE, NEW) of fresh interpreters."""
        bare_env = self.sides[0].env()
        runs: list[tuple[str, list[str], dict[str, str]]] = [
            ("bare", [sys.executable, "-c", "pass"], bare_env),
            *((side.label, [sys.executable, "-c", IMPORT_CODE], side.env())
              for side in self.sides),
        ]
        walls: dict[str, list[float]] = {name: [] for name, _, _ in runs}
        for i in range(self.config.import_runs):
            shift = (i + r) % len(runs)
            for name, command, env in (*runs[shift:], *runs[:shift]):
                if name == "bare":
                    started = time.perf_counter()
                    run(command, cwd=self.scratch, env=env, what="python -c pass")
                    walls[name].append(time.perf_counter() - started)
                else:
                    walls[name].append(child(command, cwd=self.scratch, env=env,
                                             what=f"{name}: import, round {r + 1}").wall_s)
        bare = statistics.median(walls["bare"])
        for side in self.sides:
            self.results.add("import", side.label, statistics.median(walls[side.label]) - bare)
        self.results.raw.append({"round": r, "case": "import", "walls_s": walls})


# -- the report ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    case: Case
    base: float
    new: float
    round_ratios: list[float]

    @property
    def ratio(self) -> float:
        return self.new / self.base if self.base > 0 else float("nan")

    @property
    def verdict(self) -> str:
        """``slower`` above the threshold, ``faster`` below its inverse, else ``ok``; a
        ``(noisy)`` suffix when the rounds disagree — fewer than three quarters of them on
        the side of 1.0 the medians are on: rerun before believing it."""
        lo, hi = quartiles(self.round_ratios)
        if self.ratio > SLOWER:
            return "slower" if lo > 1.0 else "slower (noisy)"
        if self.ratio < 1 / SLOWER:
            return "faster" if hi < 1.0 else "faster (noisy)"
        return "ok"


def rows(results: Results, all_cases: list[Case]) -> list[Row]:
    out: list[Row] = []
    for case in all_cases:
        values = results.values.get(case.key)
        if not values:
            continue
        base, new = values["BASE"], values["NEW"]
        ratios = [n / b for b, n in zip(base, new, strict=True) if b > 0]
        out.append(Row(case, statistics.median(base), statistics.median(new), ratios))
    return out


def fmt_value(seconds: float, unit: str) -> str:
    return fmt_us(seconds) if unit.startswith("µs") else fmt_ms(seconds)


def quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def table(table_rows: list[Row], sides: tuple[Revision, Revision], config: Config,
          elapsed_s: float, load: tuple[float, float]) -> Table:
    out = Table("compare", "memo_replay: NEW against BASE (medians of interleaved rounds)",
                ["case", "unit", "BASE", "NEW", "NEW/BASE", "rounds p25–p75", "verdict"])
    for row in table_rows:
        lo, hi = quartiles(row.round_ratios)
        out.rows.append([row.case.title, row.case.unit, fmt_value(row.base, row.case.unit),
                         fmt_value(row.new, row.case.unit), f"{row.ratio:.3f}",
                         f"{lo:.3f}–{hi:.3f}", row.verdict])
    base, new = sides
    out.notes += [
        f"BASE: {base.description}; NEW: {new.description}.",
        f"{config.rounds} rounds (sides alternating first), each with {config.processes} "
        f"processes per side: warm cases the fastest of {config.samples} alternating samples "
        f"each, cold cases a clone each (N={config.calls:,});",
        f"import: {config.import_runs} interpreter starts per side per round. "
        f"Took {elapsed_s:.0f} s.",
        "NEW/BASE divides the medians; 'rounds p25–p75': quartiles of the per-round ratios; "
        f"verdict 'slower' above {SLOWER:.2f}, 'faster' below {1 / SLOWER:.3f}, '(noisy)' when "
        "the quartiles straddle 1.0.",
        f"load average (1 min) at start / end: {load[0]:.2f} / {load[1]:.2f} on "
        f"{os.cpu_count()} CPUs; when it is high, wall times scatter: read the CPU rows and "
        "the warm hits first.",
    ]
    if table_rows:
        worst = max(table_rows, key=lambda row: abs(row.ratio - 1))
        out.notes.append(f"largest deviation from 1.0: {worst.ratio:.3f} ({worst.case.key}).")
    return out


def write_json(path: Path, results: Results, table_rows: list[Row],
               sides: tuple[Revision, Revision], config: Config, elapsed_s: float,
               load: tuple[float, float]) -> None:
    document = {
        "sides": {side.label: {"spec": side.spec, "commit": side.commit,
                               "description": side.description, "memo_replay": side.origin}
                  for side in sides},
        "config": {"rounds": config.rounds, "calls": config.calls, "samples": config.samples,
                   "processes": config.processes,
                   "import_runs": config.import_runs, "groups": list(config.groups)},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
        "elapsed_s": elapsed_s,
        "load_average_start_end": list(load),
        "threshold": SLOWER,
        "cases": {row.case.key: {"title": row.case.title, "unit": row.case.unit,
                                 "base_median_s": row.base, "new_median_s": row.new,
                                 "ratio": row.ratio, "verdict": row.verdict,
                                 "round_ratios": row.round_ratios,
                                 "base_rounds_s": results.values[row.case.key]["BASE"],
                                 "new_rounds_s": results.values[row.case.key]["NEW"]}
                  for row in table_rows},
        "children": results.raw,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    progress(f"wrote {path}")


# -- command line --------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare memo_replay's speed at two git revisions (NEW defaults to the "
                    "working tree): interleaved rounds of child processes, medians, ratios.")
    parser.add_argument("base", metavar="BASE", help="git revision to compare against")
    parser.add_argument("new", metavar="NEW", nargs="?", default=None,
                        help="git revision (default: the working tree, uncommitted changes "
                             "included)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds (default 7; --quick 3)")
    parser.add_argument("--quick", action="store_true", help="3 rounds and N=300 recordings")
    parser.add_argument("--calls", type=int, default=None,
                        help="N, the recordings of the cold-replay cases (default 1000; "
                             "--quick 300)")
    parser.add_argument("--samples", type=int, default=5,
                        help="timed samples in each warm child, alternating with the other "
                             "side's (default 5)")
    parser.add_argument("--processes", type=int, default=2,
                        help="child processes per side per round in the warm and cold cases "
                             "(default 2): a process's memory layout moves a tight loop by "
                             "several percent, so more processes average it better")
    parser.add_argument("--import-runs", type=int, default=10,
                        help="interpreter starts per side per round in the import case "
                             "(default 10)")
    parser.add_argument("--only", action="append", choices=GROUPS, metavar="CASE",
                        help=f"run only these (repeatable): {', '.join(GROUPS)}")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write every number (per round, per child) to PATH")
    args = parser.parse_args(argv)
    for name in ("rounds", "calls", "samples", "processes", "import_runs"):
        value = getattr(args, name)
        if value is not None and value < (2 if name == "calls" else 1):
            parser.error(f"--{name.replace('_', '-')} is too small")
    return args


@contextmanager
def terminated_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C does, so the temporary directory is removed either way."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    calls = args.calls or (300 if args.quick else 1000)
    groups = tuple(g for g in GROUPS if not args.only or g in args.only)
    sides = (Revision("BASE", args.base), Revision("NEW", args.new))
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    try:
        with terminated_as_exit(), tempfile.TemporaryDirectory(
                prefix="memo-replay-compare-", ignore_cleanup_errors=True) as workdir:
            config = Config(rounds=rounds, calls=calls, samples=args.samples,
                            processes=args.processes,
                            import_runs=args.import_runs, groups=groups,
                            workdir=Path(workdir).resolve())
            runner = Runner(config, sides)
            runner.setup()
            for r in range(rounds):
                progress(f"round {r + 1}/{rounds} ({', '.join(groups)}), "
                         f"{time.perf_counter() - started:.0f} s so far")
                runner.round(r)
    except ChildFailed as failure:
        print(failure.report(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress("interrupted; temporary files removed")
        return 130
    elapsed = time.perf_counter() - started
    table_rows = rows(runner.results, cases(calls))
    load = (load_at_start, os.getloadavg()[0])
    print(table(table_rows, sides, config, elapsed, load).text(), flush=True)
    if args.json:
        write_json(args.json, runner.results, table_rows, sides, config, elapsed, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
