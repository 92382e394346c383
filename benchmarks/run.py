"""memo_replay against its peers, in one run: interleaved rounds, medians, ratios.

    python benchmarks/run.py                  # everything (builds benchmarks/.data/ once)
    python benchmarks/run.py --quick          # fewer rounds, no 100,000-entry cases
    python benchmarks/run.py --only hit-small --only import
    python benchmarks/run.py --write-docs     # also writes docs/benchmarks.md and its chart
    python benchmarks/run.py --only cold --only cold-xdist --only first-call --only fixed-cost
    python benchmarks/run.py --smoke          # CI guard: exit 1 on a gross hit or cold regression

Tables go to stdout, progress to stderr. See benchmarks/README.md for what each case measures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, Python puts benchmarks/ first on sys.path; the modules live in the
# `benchmarks` package at the repository root instead (and memo_replay finds the project there).
if sys.path and Path(sys.path[0]).resolve() == ROOT / "benchmarks":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import cases, cold, stores  # noqa: E402
from benchmarks.contenders import (  # noqa: E402
    ALL,
    LRU,
    MEMO,
    RAW,
    available,
    hashable,
    hit_contender,
    memoizer,
)
from benchmarks.gitproject import ChildFailed  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    Contender,
    Measurement,
    Table,
    environment,
    fmt_ms,
    fmt_ratio,
    fmt_us,
    interleaved,
    rounds_of,
    settle_allocator,
    timed,
)
from memo_replay import Store, recorded  # noqa: E402

SMOKE_LIMIT = 5.0
"""The smoke mode fails when a memo_replay hit is slower than this many raw floors."""
MIN_SAMPLE_S = 0.02
SLOW_RUN_S = 20.0
"""An inspection run (stats, ls) slower than this runs once; larger stores are skipped."""


@dataclass(frozen=True)
class HitCase:
    key: str
    title: str
    body: Callable[..., Any]
    arguments: Callable[[], tuple[Any, ...]]
    references: Callable[[tuple[Any, ...]], dict[str, Callable[[], object]]] | None = None
    """Parts of the raw floor timed in the same rounds, to explain a ratio below 1×."""
    why: str = ""


def _pickle_alone(args: tuple[Any, ...]) -> dict[str, Callable[[], object]]:
    return {"pickle.dumps(args) alone": lambda: pickle.dumps(args, protocol=5)}


def _model_loads(args: tuple[Any, ...]) -> dict[str, Callable[[], object]]:
    model = cases.pydantic_result(*args)
    pickled, text = pickle.dumps(model, protocol=5), model.model_dump_json()
    return {"pickle.loads(model) alone": lambda: pickle.loads(pickled),
            "Document.model_validate_json alone": lambda: cases.Document.model_validate_json(text)}


HIT_CASES = (
    HitCase("hit-small", "hit, small args: f(3, \"abc\")", cases.small, lambda: (3, "abc")),
    HitCase("hit-bytes-arg", "hit, 1 MB bytes argument", cases.bytes_argument,
            lambda: (cases.big_bytes(),), _pickle_alone,
            "The raw floor pickles the 1 MB argument before hashing it; memo_replay hashes the "
            "bytes in place."),
    HitCase("hit-dict-arg", "hit, dict of 1,000 items argument", cases.dict_argument,
            lambda: (cases.thousand_items(),)),
    HitCase("hit-bytes-result", "hit, 1 MB bytes result", cases.bytes_result,
            lambda: (cases.MB,)),
    HitCase("hit-pydantic-result", "hit, pydantic result (1,000 nested models)",
            cases.pydantic_result, lambda: (1000,), _model_loads,
            "The raw floor (and the pickling peers) unpickle the model; memo_replay validates "
            "its JSON with pydantic."),
)
OTHER_CASES = ("miss", "scale", "stats", "ls", "import", "rss", "translator")
COLD_CASES = ("cold", "cold-xdist", "first-call", "fixed-cost")
"""The cold path (benchmarks/cold.py): fresh clones replayed by fresh processes."""
CASES = (*(c.key for c in HIT_CASES), *OTHER_CASES, *COLD_CASES)


@dataclass
class Config:
    rounds: int
    quick: bool
    workdir: Path
    min_sample_s: float = MIN_SAMPLE_S
    notes: list[str] = field(default_factory=list)

    @property
    def slow_rounds(self) -> int:
        """Rounds for operations that take a second or more each."""
        return max(3, self.rounds // 3)

    @property
    def sizes(self) -> tuple[int, ...]:
        return (100, 10_000) if self.quick else (100, 10_000, 100_000)

    @property
    def cold_sizes(self) -> tuple[int, ...]:
        return cold.QUICK_SIZES if self.quick else cold.SIZES

    def contenders(self) -> list[str]:
        names = [name for name in ALL if available(name)]
        for name in ALL:
            if name not in names:
                self.note(f"{name} is not installed: skipped (pip install -e \".[bench]\")")
        return names

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)
            stores.log(f"note: {message}")


def progress(message: str) -> None:
    stores.log(message)


def clean_env() -> dict[str, str]:
    """The environment for child processes: no MEMO_* settings leaking in, and bytecode
    caching on — installed packages (the peers) ship compiled; with PYTHONDONTWRITEBYTECODE
    set, a checkout's memo_replay would be recompiled from source on every start."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("MEMO_") and k != "PYTHONDONTWRITEBYTECODE"}


# -- hit cases -----------------------------------------------------------------------------------

def hit_case(case: HitCase, config: Config, names: list[str]) -> Table:
    """Median latency of a hit, for every contender, on the same call."""
    progress(f"{case.key}: preparing {', '.join(names)}")
    args = case.arguments()
    expected = case.body(*args)
    skipped: list[str] = []
    contenders: list[Contender] = []
    for name in names:
        if name == LRU and not hashable(args):
            skipped.append(name)
            continue
        contenders.append(hit_contender(name, case.body, args, config.workdir / case.key,
                                        expected))
    references = [Contender(name, call) for name, call in
                  (case.references(args) if case.references else {}).items()]
    progress(f"{case.key}: {config.rounds} interleaved rounds")
    with environment(MEMO_MODE="replay"):
        results = interleaved([*contenders, *references], rounds=config.rounds,
                              min_sample_s=config.min_sample_s)
    table = latency_table(case.key, case.title, names, results)
    for name in skipped:
        table.notes.append(f"{name}: not applicable (the argument is unhashable)")
    if references:
        timed_parts = "; ".join(f"{r.name}: {fmt_us(results[r.name].median)} µs"
                                for r in references)
        table.notes.append(f"{case.why} Timed in the same rounds — {timed_parts}.")
    return table


def latency_table(key: str, title: str, names: list[str],
                  results: dict[str, Measurement]) -> Table:
    raw = results[RAW].median if RAW in results else None
    memo = results[MEMO].median if MEMO in results else None
    table = Table(key, title, ["contender", "median µs", "p25–p75 µs", "× raw floor",
                               "× memo_replay", "calls/sample"])
    medians: dict[str, float | None] = {}
    for name in names:
        m = results.get(name)
        medians[name] = m.median if m else None
        if m is None:
            table.rows.append([name, "—", "", "—", "—", ""])
            continue
        lo, hi = m.quartiles
        table.rows.append([
            name, fmt_us(m.median), f"{fmt_us(lo)}–{fmt_us(hi)}",
            fmt_ratio(m.median / raw) if raw else "—",
            fmt_ratio(m.median / memo) if memo and name != MEMO else "—",
            f"{m.inner:,}" if m.inner else "",
        ])
    table.values = {
        "median_s": medians,
        "ratio_raw": {n: (v / raw if v is not None and raw else None)
                      for n, v in medians.items()},
    }
    return table


# -- misses --------------------------------------------------------------------------------------

def miss_case(config: Config, names: list[str]) -> Table:
    """A call on fresh arguments: look up, miss, call, store. memo_replay runs in ``auto``."""
    progress(f"miss: {', '.join(names)}")
    contenders: list[Contender] = []
    made: dict[str, list[int]] = {}
    memo_store: Path | None = None
    for offset, name in enumerate(names):
        memo = memoizer(name, cases.small, config.workdir / "miss")
        if name == MEMO:
            memo_store = memo.directory
        made[name] = [0]

        def call(fn: Callable[..., Any] = memo.fn, counter: list[int] = made[name],
                 base: int = offset * 10_000_000) -> object:
            counter[0] += 1
            return fn(base + counter[0], "fresh")

        contenders.append(Contender(name, call))
    with environment(MEMO_MODE="auto"):
        results = interleaved(contenders, rounds=config.rounds, min_sample_s=config.min_sample_s,
                              warmup=1)
    if memo_store is not None:
        recorded_entries = sum(1 for _ in Store(memo_store).entries())
        if recorded_entries != made[MEMO][0]:
            raise AssertionError(f"memo_replay recorded {recorded_entries} entries for "
                                 f"{made[MEMO][0]} fresh calls")
    table = latency_table("miss", "miss with recording (fresh arguments, small result)",
                          names, results)
    table.notes.append("Each call has new arguments: look up, miss, run the function, store. "
                       "memo_replay writes one entry file per call with an fsync; diskcache "
                       "commits to SQLite; joblib writes a directory of files; cachier rewrites "
                       "one pickle holding every entry of the function.")
    return table


# -- store size ----------------------------------------------------------------------------------

def scale_case(config: Config) -> Table:
    """Hit latency of memo_replay in stores of 100 / 10,000 / 100,000 entries."""
    contenders: list[Contender] = []
    built: list[str] = []
    for size in config.sizes:
        progress(f"scale: store of {size:,} entries")
        scale = stores.ensure(size)
        manifest = scale.manifest
        built.append(f"{size:,} entries: {manifest['recorded']:,} recorded "
                     f"({manifest['record_ms_per_entry']} ms each, fsync'd)"
                     + (f" + {manifest['generated']:,} generated" if manifest["generated"]
                        else "")
                     + (" — built in this run" if scale.built_now else " — reused"))
        fn = stores.scale_function(scale.path)
        ids = stores.sample_ids(size)

        def sweep(fn: Callable[[int], Any] = fn, ids: list[int] = ids) -> None:
            for i in ids:
                fn(i)

        contenders.append(Contender(f"{size:,} entries", sweep, None, len(ids)))
    with environment(MEMO_MODE="replay"):
        results = interleaved(contenders, rounds=config.rounds,
                              min_sample_s=config.min_sample_s)
    base = results[contenders[0].name].median
    table = Table("scale", f"memo_replay hit latency by store size ({stores.SAMPLE} distinct "
                  "calls spread over the store)",
                  ["store", "median µs", "p25–p75 µs", "× at 100 entries"])
    for c in contenders:
        m = results[c.name]
        lo, hi = m.quartiles
        table.rows.append([c.name, fmt_us(m.median), f"{fmt_us(lo)}–{fmt_us(hi)}",
                           fmt_ratio(m.median / base)])
    table.notes += [f"store of {line}" for line in built]
    table.notes.append("Generated entries follow docs/store-format.md; every one was replayed "
                       "strictly (hit, same result) when the store was built. See "
                       "benchmarks/stores.py.")
    table.values = {"median_s": {c.name: results[c.name].median for c in contenders},
                    "sizes": list(config.sizes)}
    return table


def inspection_sizes(config: Config) -> tuple[int, ...]:
    return tuple(s for s in config.sizes if s >= 10_000)


def stats_case(config: Config) -> Table:
    """``Store(path).stats()`` (a fresh Store object each time, as a script would): without a
    catalog (a fresh clone: each run starts without ``.cache/catalog``, removed untimed) and
    with the one the previous run wrote."""
    runs: list[tuple[str, Callable[[], float]]] = []
    for size in inspection_sizes(config):
        path = stores.ensure(size).path

        def stats(path: Path = path, size: int = size) -> None:
            entries = Store(path).stats().entries
            if entries != size:
                raise AssertionError(f"stats() counted {entries} entries, expected {size}")

        runs += catalog_runs(f"{size:,} entries", path, timed(stats))
    progress(f"stats: {config.slow_rounds} rounds")
    results, notes = probed_rounds(runs, config.slow_rounds)
    return seconds_table("stats", "Store(path).stats()", results,
                         ["Store.stats() reads every entry file's envelope (verify() checks "
                          "payloads); \"with catalog\": a second run, which lstat()s each entry "
                          "and reads only those changed since (none here).", *notes])


def ls_case(config: Config) -> Table:
    """``python -m memo_replay ls --store DIR``: wall time of the whole process, without and
    with the catalog (as :func:`stats_case`)."""
    runs: list[tuple[str, Callable[[], float]]] = []
    empty = config.workdir / "empty-store"
    empty.mkdir(exist_ok=True)
    targets = [("empty store", empty)] + [(f"{size:,} entries", stores.ensure(size).path)
                                          for size in inspection_sizes(config)]
    for label, path in targets:
        command = [sys.executable, "-m", "memo_replay", "ls", "--store", str(path)]

        def run(command: list[str] = command) -> None:
            subprocess.run(command, cwd=ROOT, env=clean_env(), check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        runs += [(label, timed(run))] if path == empty else catalog_runs(label, path, timed(run))
    progress(f"ls: {config.slow_rounds} rounds")
    results, notes = probed_rounds(runs, config.slow_rounds)
    return seconds_table("ls", "python -m memo_replay ls --store DIR (subprocess wall time)",
                         results, ["Includes interpreter start-up and imports (the empty-store "
                                   "row); output goes to /dev/null; \"with catalog\" as in the "
                                   "stats table.", *notes])


def catalog_runs(label: str, store: Path, run: Callable[[], float]
                 ) -> list[tuple[str, Callable[[], float]]]:
    """``run`` on ``store`` without its catalog (removed before each run, untimed: a fresh
    clone) and with the catalog the previous run left (``label, with catalog``)."""
    import shutil

    def fresh() -> float:
        shutil.rmtree(store / ".cache" / "catalog", ignore_errors=True)
        return run()

    return [(label, fresh), (f"{label}, with catalog", run)]


def probed_rounds(runs: list[tuple[str, Callable[[], float]]], rounds: int
                  ) -> tuple[dict[str, Measurement], list[str]]:
    """Interleaved rounds of ``runs`` (smallest store first), each probed once beforehand.

    A probe slower than :data:`SLOW_RUN_S` becomes that store's only sample and the larger
    stores are skipped: a pathological (e.g. quadratic) slowdown is reported, not waited out.
    """
    kept: list[tuple[str, Callable[[], float]]] = []
    slow: dict[str, Measurement] = {}
    notes: list[str] = []
    for index, (name, run) in enumerate(runs):
        seconds = run()
        if seconds > SLOW_RUN_S:
            slow[name] = Measurement(name, [seconds], inner=1)
            skipped = [n for n, _ in runs[index + 1:]]
            notes.append(f"{name}: one run took {seconds:,.0f} s (over {SLOW_RUN_S:g} s), so it "
                         "ran once" + (f" and {', '.join(skipped)} was skipped" if skipped
                                       else ""))
            break
        kept.append((name, run))
    results = rounds_of(kept, rounds) if kept else {}
    return {**results, **slow}, notes


def seconds_table(key: str, title: str, results: dict[str, Measurement], notes: list[str]
                  ) -> Table:
    table = Table(key, title, ["store", "median ms", "min–max ms", "runs"])
    for name, m in results.items():
        table.rows.append([name, fmt_ms(m.median),
                           f"{fmt_ms(min(m.samples))}–{fmt_ms(max(m.samples))}",
                           str(len(m.samples))])
    table.notes += notes
    table.values = {"median_s": {name: m.median for name, m in results.items()}}
    return table


# -- processes -----------------------------------------------------------------------------------

IMPORTS = (("bare interpreter", "pass"), ("memo_replay", "import memo_replay"),
           # What decorating costs: the decorator, key, store and serializer modules load.
           ("memo_replay + @recorded", "from memo_replay import recorded\n"
                                       "@recorded\ndef f(x):\n    return x"),
           ("diskcache", "import diskcache"), ("joblib", "import joblib"),
           ("cachier", "import cachier"))


def import_case(config: Config) -> Table:
    """``python -c "import X"`` against ``python -c "pass"``, interleaved subprocess runs."""
    runs: list[tuple[str, Callable[[], float]]] = []
    for label, statement in IMPORTS:
        if label in ("joblib", "cachier") and not available_module(label):
            continue

        def run(statement: str = statement) -> None:
            subprocess.run([sys.executable, "-c", statement], cwd=ROOT, env=clean_env(),
                           check=True)

        runs.append((label, timed(run)))
    rounds = max(7, config.rounds)
    for _, run_once in runs:  # write bytecode caches first, as an installation would
        run_once()
    progress(f"import: {rounds} interleaved rounds of {len(runs)} interpreters")
    results = rounds_of(runs, rounds)
    bare = results["bare interpreter"].median
    table = Table("import", "import over a bare interpreter (python -c, wall time)",
                  ["module", "median ms", "over bare ms", "p25–p75 ms"])
    over: dict[str, float] = {}
    for name, m in results.items():
        lo, hi = m.quartiles
        over[name] = m.median - bare
        table.rows.append([name, fmt_ms(m.median), "—" if name == "bare interpreter"
                           else fmt_ms(over[name]), f"{fmt_ms(lo)}–{fmt_ms(hi)}"])
    table.notes.append(f"{rounds} runs each; `python benchmarks/run.py --profile-import` shows "
                       "where memo_replay's import time goes (python -X importtime).")
    table.values = {"median_s": {n: m.median for n, m in results.items()}, "over_bare_s": over}
    return table


def profile_import() -> None:
    """Print the 25 slowest imports (cumulative) of ``import memo_replay``."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import memo_replay"],
                            cwd=ROOT, env=clean_env(), capture_output=True, text=True, check=True)
    rows: list[tuple[int, int, str]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, module = (part.strip() for part in
                                          line.removeprefix("import time:").split("|"))
        rows.append((int(cumulative_us), int(self_us), module))
    print("== python -X importtime -c 'import memo_replay': slowest 25 (cumulative)")
    print(f"{'cumulative ms':>14} {'self ms':>8}  module")
    for cumulative, own, module in sorted(rows, reverse=True)[:25]:
        print(f"{cumulative / 1e3:>14.2f} {own / 1e3:>8.2f}  {module}")


def rss_case(config: Config) -> Table:
    """Peak RSS of one process replaying every entry of a store, against replaying 100."""
    largest = config.sizes[-1]
    scale = stores.ensure(largest)
    table = Table("rss", "memory: peak RSS of one process replaying N entries "
                  f"(store of {largest:,})",
                  ["replayed entries", "peak RSS MiB", "after 1st call MiB", "growth MiB",
                   "replay s"])
    values: dict[str, dict[str, float]] = {}
    runs: list[tuple[int, str | None]] = [(100, None), (10_000, None)] if largest > 10_000 \
        else [(100, None)]
    runs += [(largest, None), (largest, "16"), (largest, "0")]
    for count, hot_mb in runs:
        progress(f"rss: replaying {count:,} entries in a child process")
        env = {**clean_env(), "MEMO_MODE": "replay"}
        if hot_mb is not None:
            env["MEMO_HOT_CACHE_MB"] = hot_mb
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.replay_all", "--store", str(scale.path),
             "--count", str(count)], cwd=ROOT, env=env, check=True, capture_output=True,
            text=True)
        report = json.loads(result.stdout.strip().splitlines()[-1])
        peak, base = report["peak_kib"] / 1024, report["after_first_call_kib"] / 1024
        label = f"{count:,}" + ("" if hot_mb is None else f", MEMO_HOT_CACHE_MB={hot_mb}")
        values[label] = {"peak_mib": peak, "growth_mib": peak - base}
        table.rows.append([label, f"{peak:.1f}", f"{base:.1f}", f"{peak - base:.1f}",
                           f"{report['seconds']:.2f}"])
    table.notes.append("A fresh process per row (python -m benchmarks.replay_all); peak RSS is "
                       "VmHWM from /proc/self/status (getrusage's ru_maxrss of a child also "
                       "counts the parent's RSS on Linux); the store's index is warm. Without "
                       "MEMO_HOT_CACHE_MB the hot cache is bounded at 64 MiB; the index's sqlite "
                       "memory (24 MiB) and the remembered keys (4,096 per function) are fixed.")
    table.values = values
    return table


def translator_case(config: Config) -> Table:
    """sqlglot.transpile over generated queries: the real calls vs their replay."""
    queries = cases.sql_queries(300)
    fn = recorded(store=config.workdir / "translator")(cases.translate)
    cases.translate(queries[0])  # sqlglot builds its dialect tables on first use
    progress(f"translator: recording {len(queries)} queries")
    with environment(MEMO_MODE="record"):
        record_s = timed(lambda: [fn(q) for q in queries])()
    expected = [cases.translate(q) for q in queries]

    def replay() -> None:
        if [fn(q) for q in queries] != expected:
            raise AssertionError("a replayed translation differs from the real one")

    progress(f"translator: {config.slow_rounds} rounds")
    with environment(MEMO_MODE="replay"):
        results = rounds_of([("real (sqlglot.transpile)", timed(lambda: [
            cases.translate(q) for q in queries])), ("memo_replay replay", timed(replay))],
            config.slow_rounds)
    real = results["real (sqlglot.transpile)"].median
    replayed = results["memo_replay replay"].median
    n = len(queries)
    table = Table("translator", f"a real translator: sqlglot.transpile(q, read=\"duckdb\", "
                  f"write=\"spark\") over {n} queries",
                  ["run", "batch ms", "per query µs", "× replay"])
    table.rows += [
        ["real (sqlglot.transpile)", fmt_ms(real), fmt_us(real / n), fmt_ratio(real / replayed)],
        ["first run, recording", fmt_ms(record_s), fmt_us(record_s / n),
         fmt_ratio(record_s / replayed)],
        ["memo_replay replay", fmt_ms(replayed), fmt_us(replayed / n), fmt_ratio(1.0)],
    ]
    table.notes.append(f"Real and replay: medians of {config.slow_rounds} interleaved batches; "
                       "recording: one batch (MEMO_MODE=record, an fsync'd entry per query).")
    table.values = {"real_s": real, "replay_s": replayed, "record_s": record_s, "queries": n}
    return table


# -- modes ---------------------------------------------------------------------------------------

def run_full(config: Config, only: set[str], profile: bool) -> list[Table]:
    names = config.contenders()
    tables: list[Table] = []

    def emit(table: Table) -> None:
        tables.append(table)
        print(table.text() + "\n", flush=True)

    for case in HIT_CASES:
        if not only or case.key in only:
            emit(hit_case(case, config, names))
    runners: dict[str, Callable[[], Table]] = {
        "miss": lambda: miss_case(config, names),
        "scale": lambda: scale_case(config),
        "stats": lambda: stats_case(config),
        "ls": lambda: ls_case(config),
        "import": lambda: import_case(config),
        "rss": lambda: rss_case(config),
        "translator": lambda: translator_case(config),
        "cold": lambda: cold.cold_case(lab(), config.cold_sizes, config.slow_rounds),
        "cold-xdist": lambda: cold.xdist_case(lab(), config.slow_rounds),
        "first-call": cold.first_call_case,
        "fixed-cost": lambda: cold.fixed_cost_case(lab(), max(15, config.slow_rounds)),
    }
    labs: list[cold.Lab] = []

    def lab() -> cold.Lab:
        """The cold-path projects, built once and shared by the cold cases."""
        if not labs:
            labs.append(cold.Lab(config.workdir / "cold", vcr_max_n=cold.VCR_QUICK_MAX_N
                                 if config.quick else cold.VCR_MAX_N))
        return labs[0]

    for key, runner in runners.items():
        if only and key not in only:
            continue
        if key == "translator" and not available_module("sqlglot"):
            config.note("sqlglot is not installed: the translator case is skipped")
            continue
        case_started = time.perf_counter()
        emit(runner())
        progress(f"{key}: took {time.perf_counter() - case_started:,.0f} s")
    if profile:
        profile_import()
    return tables


def available_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def run_smoke(config: Config) -> int:
    """memo_replay against the raw floor on every hit case; 1 on a gross regression."""
    for module in ("joblib", "cachier", "sqlglot", "matplotlib"):
        if not available_module(module):
            config.note(f"{module} is not installed (the smoke mode does not need it)")
    failures = 0
    lines: list[str] = []
    for case in HIT_CASES:
        table = hit_case(case, config, [RAW, MEMO])
        median, ratio = table.values["median_s"], table.values["ratio_raw"][MEMO]
        verdict = "ok" if ratio <= SMOKE_LIMIT else "GROSS REGRESSION"
        failures += ratio > SMOKE_LIMIT
        lines.append(f"smoke ratio {case.key}: memo_replay {fmt_us(median[MEMO])} µs / raw "
                     f"floor {fmt_us(median[RAW])} µs = {ratio:.2f}× (limit {SMOKE_LIMIT:g}×) "
                     f"{verdict}")
        print(lines[-1], flush=True)
    print(f"smoke: {len(HIT_CASES) - failures}/{len(HIT_CASES)} hit cases within "
          f"{SMOKE_LIMIT:g}× the raw floor ({config.rounds} interleaved rounds, medians)")
    # The cold path: a fresh clone's strict replay, in fresh processes, against the floor.
    progress(f"smoke: cold path, N={cold.SMOKE_N} in a fresh clone")
    ratio, line = cold.smoke(config.workdir / "cold")
    print(line, flush=True)
    failures += ratio > cold.SMOKE_LIMIT
    return 1 if failures else 0


def machine() -> dict[str, str]:
    return {
        "cpus": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark memo_replay against lru_cache, the raw floor, diskcache, "
                    "joblib and cachier (interleaved rounds, medians, ratios).")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per case (default 15; --quick 5; --smoke 9)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds, no 100,000-entry cases; cold: N = 300 and 3,000")
    parser.add_argument("--only", action="append", choices=CASES, metavar="CASE",
                        help=f"run only this case (repeatable): {', '.join(CASES)}")
    parser.add_argument("--write-docs", action="store_true",
                        help="write docs/benchmarks.md and its SVG charts (a run of "
                             "only cold, cold-xdist, first-call, fixed-cost rewrites only the "
                             "page's cold-path section and docs/img/benchmarks-cold.svg)")
    parser.add_argument("--smoke", action="store_true",
                        help="memo_replay vs the raw floor on the hit cases and a fresh "
                             "clone's replay vs the json.loads floor; exit 1 when a hit is "
                             f"slower than {SMOKE_LIMIT:g}× the raw floor or the replay than "
                             f"{cold.SMOKE_LIMIT:g}× its floor")
    parser.add_argument("--profile-import", action="store_true",
                        help="also print python -X importtime for import memo_replay")
    args = parser.parse_args(argv)
    if args.smoke and (args.only or args.write_docs or args.quick):
        parser.error("--smoke takes no --only, --quick or --write-docs")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A terminated run still removes its temporary directory (the `with` below unwinds).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    os.environ.pop("MEMO_STORE", None)  # it would override every store= below
    os.environ["MEMO_MODE"] = "off"  # each phase sets its own mode; CI=true changes nothing
    settle_allocator()
    rounds = args.rounds or (9 if args.smoke else 5 if args.quick else 15)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memo-replay-bench-") as workdir:
        config = Config(rounds=rounds, quick=args.quick, workdir=Path(workdir))
        try:
            if args.smoke:
                status = run_smoke(config)
                progress(f"smoke mode took {time.perf_counter() - started:.1f} s")
                return status
            tables = run_full(config, set(args.only or ()), args.profile_import)
        except ChildFailed as failure:
            print(failure.report("run"), file=sys.stderr)
            return 1
    elapsed = time.perf_counter() - started
    info = machine()
    print(f"machine: {info['cpus']} CPUs, {info['python']}, {info['platform']}; "
          f"{rounds} rounds; took {elapsed:.0f} s")
    if args.write_docs:
        from benchmarks import report

        written = report.write(tables, info, rounds=rounds, quick=args.quick,
                               only=sorted(args.only or ()), elapsed_s=elapsed,
                               notes=config.notes, root=ROOT)
        for path in written:
            progress(f"wrote {path.relative_to(ROOT)}")
    targets_summary(tables)
    return 0


def targets_summary(tables: list[Table]) -> None:
    from benchmarks import report

    for target in [*report.targets(tables), *report.cold_targets(tables)]:
        print(f"target: {target.verdict:<12} {target.name}: {target.measured}")


if __name__ == "__main__":
    sys.exit(main())

