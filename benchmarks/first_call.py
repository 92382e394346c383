"""The first call of each recorded function in a larger project (issue 15).

    python benchmarks/first_call.py                 # 5 replay processes, a table
    python benchmarks/first_call.py --processes 9   # more processes
    python benchmarks/first_call.py --json          # one JSON object
    python benchmarks/first_call.py --keep DIR      # generate into DIR and keep it

It generates a project into a temporary directory: a package of 100 modules of 100–300 lines
each (helper functions, a dataclass and a class with methods, constants of several kinds, a
compiled regex, imports of other project modules) and 50 ``@recorded`` functions, one in each
module of the upper half, each calling 3–5 helpers of other modules drawn from a pool of 40, so
that many helpers are reached by several recorded functions (and each helper reaches others,
transitively: about 45 helpers and 40 constants per recorded function). Generation is seeded
and deterministic.

One child process records one call of each recorded function (``MEMO_MODE=record``); then each
of several fresh child processes replays one call of each (``MEMO_MODE=replay``, strict), timing
each function's *first* call — the code fingerprint plus the lookup — with
:func:`time.perf_counter`. Importing the project is not timed, and before the 50 a recorded
function with no helpers is called once (``warm-up``, reported apart): it pays for what any
first call pays once per process (memo_replay's lazy imports, opening the store), which is not
the fingerprint's cost.

The children run with ``PYTHONDONTWRITEBYTECODE`` unset (this environment sets it), so the
recording child writes ``__pycache__`` and the replaying children import from bytecode, as a
CI run of a checkout does after its first import: the fingerprint then has to read and parse
each module's source itself. ``MEMO_STORE`` and ``CI`` are unset in the children.

Reported per process: the median, p90 and max of the per-function first-call times and their
total; then the median of each over the processes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

MODULES = 100
RECORDED = 50
PACKAGE = "proj"
SEED = 15


# -- the generated project ------------------------------------------------------------------------

def _mod(i: int) -> str:
    return f"m{i:03d}"


class _Module:
    """What one generated module defines (names other modules may use)."""

    def __init__(self, index: int, helpers: int) -> None:
        self.index = index
        self.helpers = [f"h{index:03d}_{k}" for k in range(helpers)]


def _helper_body(rng: random.Random, index: int, k: int, imports: list[_Module],
                 same: list[str]) -> list[str]:
    """The body of one helper (str -> str), 8–22 lines, calling 0–2 other helpers."""
    m = _mod(index)
    lines = ["text = str(x)"]
    calls: list[str] = []
    if same and rng.random() < 0.5:
        calls.append(f"{rng.choice(same)}(text)")
    if imports and rng.random() < 0.55:
        other = rng.choice(imports)
        calls.append(f"{_mod(other.index)}.{rng.choice(other.helpers)}(text)")
    for call in calls:
        lines.append(f"text = {call}[:40]")
    choices = [
        [f"for key, value in TABLE_{m}.items():",
         "    if key in text:",
         "        text = text.replace(key, str(value))"],
        [f"parts = [p for p in PATTERN_{m}.split(text) if p]",
         f"text = SEPARATOR_{m}.join(parts[:LIMITS_{m}[0]])"],
        [f"record = Record{m}(text, len(text) % {rng.randint(3, 17)})",
         "text = record.render()"],
        [f"processor = Processor{m}({rng.randint(1, 5)})",
         "text = processor.run(text)"],
        ["total = 0",
         "for i, char in enumerate(text):",
         f"    total += (ord(char) * (i + {rng.randint(1, 9)})) % {rng.randint(11, 97)}",
         "text = f\"{text}:{total}\""],
        ["if len(text) > 24:",
         "    text = text[:12] + text[-12:]",
         "else:",
         f"    text = text.ljust(24, \"{rng.choice('abcxyz')}\")"],
        [f"words = [w.capitalize() for w in text.split(\"-\") if w not in STOPWORDS_{m}]",
         f"text = \"-\".join(words) or PREFIX_{m}"],
        ["counts: dict[str, int] = {}",
         "for char in text:",
         "    counts[char] = counts.get(char, 0) + 1",
         "text = \"\".join(sorted(counts))[:16] + text"],
    ]
    for block in rng.sample(choices, rng.randint(2, 4)):
        lines.extend(block)
    lines.append(f"return f\"{k}{{text}}\"[:{rng.randint(40, 80)}]")
    return lines


def _module_source(rng: random.Random, module: _Module, imports: list[_Module],
                   recorded: list[tuple[_Module, str]] | None,
                   calls: list[list[tuple[int, str]]] | None) -> str:
    """One module: imports, constants, a dataclass, a class, helpers, maybe a recorded one."""
    m = _mod(module.index)
    out = [f'"""Module {module.index} of a generated project."""', "",
           "from __future__ import annotations", "", "import re",
           "from dataclasses import dataclass", ""]
    if recorded is not None:
        out.append("from memo_replay import recorded")
    for other in imports:
        out.append(f"from {PACKAGE} import {_mod(other.index)}")
    out.append("")
    words = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "theta", "zeta"]
    out += [
        f'PREFIX_{m} = "{rng.choice(words)}-{module.index}"',
        f'SEPARATOR_{m} = "{rng.choice(["-", "_", ":", "/"])}"',
        f"LIMITS_{m} = ({rng.randint(2, 6)}, {rng.randint(10, 50)}, {rng.randint(60, 99)})",
        f"STOPWORDS_{m} = frozenset({sorted(rng.sample(words, 3))!r})",
        f"TABLE_{m} = {{",
        *(f'    "{w}": {rng.randint(0, 999)},' for w in rng.sample(words, rng.randint(3, 6))),
        "}",
        f'PATTERN_{m} = re.compile(r"[{rng.choice(["-_", ":/", "-:", "_/"])}]+")',
        "",
        "",
        "@dataclass",
        f"class Record{m}:",
        f'    """A record of module {module.index}."""',
        "",
        "    name: str",
        "    weight: int = 0",
        "",
        "    def render(self) -> str:",
        f'        return f"{{PREFIX_{m}}}{{SEPARATOR_{m}}}{{self.name}}#{{self.weight}}"',
        "",
        "    def score(self) -> int:",
        f"        return sum(TABLE_{m}.get(part, 1) for part in self.name.split(SEPARATOR_{m}))",
        "",
        "",
        f"class Processor{m}:",
        f'    """Rewrites text in {module.index}."""',
        "",
        "    def __init__(self, rounds: int) -> None:",
        "        self.rounds = rounds",
        "",
        "    def run(self, text: str) -> str:",
        "        for _ in range(self.rounds):",
        "            text = self._step(text)",
        "        return text",
        "",
        "    def _step(self, text: str) -> str:",
        f"        if len(text) > LIMITS_{m}[1]:",
        f"            return text[: LIMITS_{m}[1]]",
        "        return text[::-1] + str(len(text))",
        "",
        "    def unused(self, text: str) -> str:",
        "        return text.upper()",
        "",
    ]
    for k, name in enumerate(module.helpers):
        same = module.helpers[:k]
        out += ["", f"def {name}(x: str) -> str:",
                f'    """Helper {k} of module {module.index}."""']
        out += ["    " + line for line in _helper_body(rng, module.index, k, imports, same)]
        out.append("")
    for (_, name), targets in zip(recorded or (), calls or (), strict=True):
        out += ["", "@recorded", f"def {name}(n: int) -> dict[str, object]:",
                f'    """Recorded function {name}."""', "    text = f\"input-{n}\"",
                "    parts = []"]
        for owner, helper in targets:
            out.append(f"    parts.append({_mod(owner)}.{helper}(text))")
        out += ["    return {\"n\": n, \"parts\": parts}", ""]
    return "\n".join(out) + "\n"


def generate(root: Path, seed: int = SEED) -> list[str]:
    """Write the project into ``root``; return the recorded functions (``module:name``)."""
    rng = random.Random(seed)
    modules = [_Module(i, rng.randint(6, 11)) for i in range(MODULES)]
    # The helpers recorded functions call: a pool of 40, from the lower 50 modules, so several
    # recorded functions share each.
    pool = sorted({(i, rng.choice(modules[i].helpers)) for i in rng.sample(range(50), 40)})
    placed: dict[int, list[tuple[_Module, str]]] = {}
    hosts = sorted(rng.sample(range(MODULES // 2, MODULES), RECORDED))
    for n, host in enumerate(hosts):
        placed.setdefault(host, []).append((modules[host], f"entry_{n:02d}"))
    package = root / PACKAGE
    package.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "first-call-bench"\n'
                                         'version = "0"\n')
    (package / "__init__.py").write_text('"""A generated project."""\n')
    (package / "warm.py").write_text(_WARM)
    functions: list[str] = []
    for module in modules:
        i = module.index
        # Imports of lower modules only (no cycles); a recorded function's module also imports
        # the pool modules its recorded functions call.
        imports = [modules[j] for j in sorted(rng.sample(range(i), min(i, rng.randint(2, 5))))]
        calls = None
        if i in placed:  # each recorded function calls 3-5 helpers of the pool
            calls = [rng.sample(pool, rng.randint(3, 5)) for _ in placed[i]]
            needed = {owner for targets in calls for owner, _ in targets}
            imports = [modules[j] for j in sorted({m.index for m in imports} | needed)]
        source = _module_source(rng, module, imports, placed.get(i), calls)
        (package / f"{_mod(i)}.py").write_text(source)
        functions += [f"{PACKAGE}.{_mod(i)}:{name}" for _, name in placed.get(i, ())]
    rng.shuffle(functions)  # called in an order unrelated to the modules'
    (root / "functions.json").write_text(json.dumps(functions))
    (root / "drive.py").write_text(_DRIVER)
    return functions


_WARM = textwrap.dedent('''\
    """A recorded function with no helpers: its first call opens the store."""
    from memo_replay import recorded


    @recorded
    def ping(n: int) -> int:
        return n
''')

_DRIVER = textwrap.dedent('''\
    """Call each recorded function once; print each first call's time (JSON)."""
    import importlib
    import json
    import time

    functions = json.load(open("functions.json"))
    targets = []
    for spec in functions:
        module, name = spec.split(":")
        targets.append((spec, getattr(importlib.import_module(module), name)))
    from proj.warm import ping

    started = time.perf_counter()
    ping(0)  # imports what a call needs and opens the store: not the fingerprint's cost
    times = {"warm-up": time.perf_counter() - started}
    for n, (spec, fn) in enumerate(targets):
        started = time.perf_counter()
        fn(n)
        times[spec] = time.perf_counter() - started
    print(json.dumps(times))
''')


# -- running it -----------------------------------------------------------------------------------

def _child_env(mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "MEMO_STORE", "CI")}
    env["MEMO_MODE"] = mode
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (".", str(Path(__file__).resolve().parent.parent)) if p)
    env["PYTHONHASHSEED"] = "0"
    return env


def _run(root: Path, mode: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "drive.py"], cwd=root, env=_child_env(mode),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{done.stdout}\n{done.stderr}")
    times: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return times


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(root: Path, processes: int) -> dict[str, Any]:
    """Record once, replay in ``processes`` fresh processes; the per-process statistics."""
    _run(root, "record")
    runs = []
    for _ in range(processes):
        reported = _run(root, "replay")
        warm_up = reported.pop("warm-up")
        times = list(reported.values())
        runs.append({"median_ms": statistics.median(times) * 1e3,
                     "p90_ms": _quantile(times, 0.9) * 1e3,
                     "max_ms": max(times) * 1e3,
                     "total_ms": sum(times) * 1e3,
                     "warm_up_ms": warm_up * 1e3})
    summary = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    return {"modules": MODULES, "recorded_functions": RECORDED, "processes": processes,
            "per_process": runs, "median_over_processes": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=5, help="replay processes (5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--keep", type=Path, help="generate into this (new) directory, keep it")
    args = parser.parse_args(argv)
    if args.keep:
        root = args.keep.resolve()
        cleanup = None
    else:
        cleanup = tempfile.mkdtemp(prefix="memo-first-call-")
        root = Path(cleanup).resolve()
    try:
        generate(root)
        result = measure(root, args.processes)
    finally:
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"first call per recorded function: {MODULES} modules, {RECORDED} recorded "
          f"functions, {args.processes} replay processes")
    print(f"{'process':>8} {'median ms':>10} {'p90 ms':>8} {'max ms':>8} {'total ms':>9} "
          f"{'warm-up ms':>11}")
    rows = [*enumerate(result["per_process"], 1), ("median", result["median_over_processes"])]
    for n, run in rows:
        print(f"{n:>8} {run['median_ms']:>10.2f} {run['p90_ms']:>8.2f} {run['max_ms']:>8.2f} "
              f"{run['total_ms']:>9.1f} {run['warm_up_ms']:>11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
