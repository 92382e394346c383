"""Record once, and a store that stays whole, under real concurrency.

Processes, threads and asyncio tasks hit one store at once. Nothing here is mocked and nothing
is timed: barriers, events and files order the calls; a short sleep inside a recorded function
only widens the windows in which races could show.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import finish_all
from xxhash import xxh3_128_hexdigest

import memo_replay
from memo_replay import ConfigError, Store, recorded
from memo_replay.config import load_config
from memo_replay.errors import LockTimeout
from memo_replay.store.entry import render

if TYPE_CHECKING:
    from conftest import Project


# -- helpers ----------------------------------------------------------------------------------


def wait_for_file(path: Path, proc: subprocess.Popen[str]) -> None:
    """Block until ``path`` exists (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + 60
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process exited {proc.returncode} early\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{path.name} never appeared")
        time.sleep(0.01)


def entry_files(store: Store) -> list[Path]:
    return sorted(p for p in store.path.glob("*/*.json") if not p.parent.name.startswith("."))


def lock_files(store: Store) -> list[Path]:
    locks = store.path / ".cache" / "locks"
    return sorted(locks.iterdir()) if locks.is_dir() else []


def temp_files(store: Store) -> list[Path]:
    return sorted(p for p in store.path.rglob("*.tmp") if ".cache" not in p.parts)


def checksum(data: str | bytes) -> str:
    """The checksum of a payload, computed here (not taken from the entry that claims it)."""
    return xxh3_128_hexdigest(data.encode() if isinstance(data, str) else data)


def assert_store_holds(store: Store, values: Mapping[str, Any]) -> None:
    """The store holds exactly one whole entry per key of ``values``, replaying that value:
    ``verify()`` finds nothing, every entry file on disk parses as an entry (``entries()``
    would skip a damaged one), the checksum in each file is the checksum of the payload it
    actually stores, and no temp file or lock file is left behind."""
    assert store.verify() == []
    assert sorted(p.stem for p in entry_files(store)) == sorted(values)
    entries = {entry.key: entry for entry in store.entries()}
    assert sorted(entries) == sorted(values)
    for key, value in values.items():
        entry = entries[key]
        stored = json.loads(entry.path.read_bytes())["result"]
        assert stored["checksum"] == entry.payload.checksum == checksum(entry.payload.data)
        assert entry.load() == value
    assert temp_files(store) == []
    assert lock_files(store) == []


# A start line for N processes (after their imports): each drops a file in barrier/ and
# waits for all N.
BARRIER = """
import sys, time
from pathlib import Path
barrier = Path("barrier")
barrier.mkdir(exist_ok=True)
(barrier / sys.argv[1]).touch()
while len(list(barrier.iterdir())) < int(sys.argv[2]):
    time.sleep(0.005)
"""


# -- stress: many processes, mixed operations, one store --------------------------------------


STRESS_MODULE = """
import os, time
from memo_replay import recorded

CALLS = "calls.log"


def expected(n: int) -> dict:
    return {"n": n, "blob": "x" * (n * 1000), "square": n * n}


@recorded
def compute(n: int) -> dict:
    with open(CALLS, "a") as fh:
        fh.write(f"{os.getpid()} {n}\\n")
    time.sleep(0.002)
    return expected(n)
"""

STRESS_WORKER = """
import json, os, random, warnings
import memo_replay
from memo_replay import CorruptEntry, ReplayMiss, Store
import stress
""" + BARRIER + """

worker, workers, seed, operations, keys = map(int, sys.argv[1:6])
store = Store(Path("fixtures_store").resolve())
rng = random.Random(seed)
counts = dict.fromkeys(["auto", "replay", "replay_miss", "delete", "deleted", "record"], 0)
wrong = []
known = set()


def check(n, value, how):
    if value != stress.expected(n):
        wrong.append(f"{how} {n}: {str(value)[:80]}")


with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for _ in range(operations):
        op = rng.choices(["auto", "replay", "delete", "record"], weights=[5, 3, 1, 1])[0]
        if op in ("replay", "delete") and not known:
            op = "auto"
        if op == "auto":
            n = rng.randrange(keys)
            check(n, stress.compute(n), "auto")
            known.add(n)
        elif op == "record":
            n = rng.randrange(keys)
            with memo_replay.mode("record"):
                check(n, stress.compute(n), "record")
            known.add(n)
        elif op == "replay":
            n = rng.choice(sorted(known))
            try:
                with memo_replay.mode("replay"):
                    check(n, stress.compute(n), "replay")
            except ReplayMiss:  # another process deleted it since (even mid-lookup)
                counts["replay_miss"] += 1
                known.discard(n)
        else:
            n = rng.choice(sorted(known))
            counts["deleted"] += store.delete(stress.compute.memo.key(n))
            known.discard(n)
        counts[op] += 1

print(json.dumps({
    "pid": os.getpid(),
    "counts": counts,
    "wrong": wrong,
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    "keys": {n: stress.compute.memo.key(n) for n in range(keys)},
}))
"""


def test_stress_mixed_operations_on_one_store(project: Project) -> None:
    """4 processes × 300 seeded random operations over 6 keys: auto calls, strict replays,
    deletes and re-records. Afterwards the store is whole: every entry parses, passes its
    checksum, is byte-for-byte a complete rendering and holds the value of its argument; and
    every value any process got back was right."""
    workers, operations, keys = 4, 300, 6
    project.write("stress.py", STRESS_MODULE)
    procs = [project.start(STRESS_WORKER, str(i), str(workers), str(1000 + i), str(operations),
                   str(keys)) for i in range(workers)]
    reports = [json.loads(out.strip().splitlines()[-1]) for out in finish_all(procs)]

    store = project.store
    problems = store.verify()
    # What every process saw: right values only, no warning (a delete racing a lookup must be
    # a miss, never "corrupt, re-recording").
    wrong = [w for r in reports for w in r["wrong"]]
    warned = [w for r in reports for w in r["warnings"]]
    # What is on disk.
    key_of = {int(n): key for n, key in reports[0]["keys"].items()}
    assert all(r["keys"] == reports[0]["keys"] for r in reports)
    bad_entries: list[str] = []
    files = entry_files(store)
    for path in files:
        raw = path.read_bytes()
        try:
            document = json.loads(raw)
        except ValueError as exc:
            bad_entries.append(f"{path.name}: partial or not JSON ({exc})")
            continue
        if render(document) != raw:
            bad_entries.append(f"{path.name}: not a complete canonical entry")
    parsed = list(store.entries())
    if len(parsed) != len(files):  # entries() skips a damaged entry: every file must parse
        bad_entries.append(f"{len(files) - len(parsed)} entry files are not valid entries")
    for entry in parsed:
        n = entry.arguments["n"]
        if key_of.get(n) != entry.key:
            bad_entries.append(f"{entry.key}: key does not match its argument n={n}")
        value = entry.load()
        if value != {"n": n, "blob": "x" * (n * 1000), "square": n * n}:
            bad_entries.append(f"{entry.key}: wrong value for n={n}")
        if checksum(entry.payload.data) != entry.payload.checksum:
            bad_entries.append(f"{entry.key}: the checksum does not cover the stored payload")
    leftovers = temp_files(store)

    totals = {name: sum(r["counts"][name] for r in reports) for name in reports[0]["counts"]}
    calls = project.calls()
    corruptions = len(problems) + len(bad_entries) + len(wrong) + len(leftovers)
    done = sum(totals[op] for op in ("auto", "replay", "delete", "record"))
    print(f"\nstress: {workers} processes, {done} operations {totals}, {len(calls)} real calls, "
          f"{len(files)} entries at the end, {corruptions} corruptions, {len(warned)} warnings")

    assert problems == []
    assert bad_entries == []
    assert wrong == []
    assert leftovers == []
    assert warned == []
    assert corruptions == 0
    assert len(lock_files(store)) == 0  # every holder removed its lock file
    pids = {str(r["pid"]) for r in reports}
    assert all(line.split()[0] in pids for line in calls)
    # Every recording that is left was made by a real call; every auto call is a call or a replay.
    assert {entry.arguments["n"] for entry in store.entries()} <= {int(line.split()[1])
                                                                   for line in calls}
    assert totals["record"] <= len(calls) <= totals["auto"] + totals["record"]


# -- record once: processes -------------------------------------------------------------------


SLOW_MODULE = """
import os, time
from memo_replay import recorded


@recorded
def slow(n: int) -> dict:
    with open("calls.log", "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    time.sleep(0.3)
    return {"n": n, "pid": os.getpid()}
"""

SLOW_CALLER = """
import json, memo_replay, slowmod
""" + BARRIER + """
with memo_replay.track() as events:
    value = slowmod.slow(7)
print(json.dumps({"value": value, "outcomes": [e.outcome for e in events],
                  "key": slowmod.slow.memo.key(7)}))
"""


def test_processes_missing_one_key_record_it_once(project: Project) -> None:
    project.write("slowmod.py", SLOW_MODULE)
    workers = 4
    outputs = finish_all([project.start(SLOW_CALLER, str(i), str(workers))
                          for i in range(workers)])
    results = [json.loads(out) for out in outputs]

    calls = project.calls()
    assert len(calls) == 1
    # The value carries the recorder's pid: the three others replayed exactly that recording.
    assert [r["value"] for r in results] == [{"n": 7, "pid": int(calls[0])}] * workers
    assert sorted(o for r in results for o in r["outcomes"]) == \
        ["recorded"] + ["replayed"] * (workers - 1)
    assert_store_holds(project.store, {results[0]["key"]: {"n": 7, "pid": int(calls[0])}})


def test_processes_in_record_mode_each_call_and_leave_one_whole_entry(project: Project) -> None:
    """Record mode calls the function every time, by design; concurrent re-recordings of one
    key still leave one complete entry holding one of the real results."""
    project.write("slowmod.py", SLOW_MODULE)
    workers = 4
    outputs = finish_all([project.start(SLOW_CALLER, str(i), str(workers), mode="record")
                          for i in range(workers)])
    results = [json.loads(out) for out in outputs]

    calls = project.calls()
    assert sorted(calls) == sorted(str(r["value"]["pid"]) for r in results)
    assert len(set(calls)) == workers
    assert [r["outcomes"] for r in results] == [["recorded"]] * workers
    (entry,) = project.store.entries()
    assert entry.load() in [r["value"] for r in results]
    assert_store_holds(project.store, {results[0]["key"]: entry.load()})


# -- record once: threads ---------------------------------------------------------------------


@recorded(ignore=["log"])
def slow_square(n: int, log: list[int]) -> dict[str, int]:
    log.append(n)
    time.sleep(0.3)
    return {"n": n, "square": n * n}


def test_threads_missing_one_key_record_it_once(memo_env: Store) -> None:
    threads = 8
    start_line = threading.Barrier(threads)
    log: list[int] = []
    results: list[Any] = [None] * threads
    outcomes: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            start_line.wait(timeout=30)
            with memo_replay.track() as events:  # context-local: collect in the thread
                results[i] = slow_square(6, log)
            outcomes[i] = [e.outcome for e in events]
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=call, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert errors == []
    assert log == [6]
    assert results == [{"n": 6, "square": 36}] * threads
    assert sorted(o for per_thread in outcomes for o in per_thread) == \
        ["recorded"] + ["replayed"] * (threads - 1)
    assert_store_holds(memo_env, {slow_square.memo.key(6, []): {"n": 6, "square": 36}})


# -- record once: asyncio ---------------------------------------------------------------------


@recorded(ignore=["log"])
async def slow_fetch(n: int, log: list[int]) -> dict[str, int]:
    log.append(n)
    await asyncio.sleep(0.2)
    return {"n": n, "cube": n ** 3}


@dataclass
class Gate:
    """Every call arrives, then waits until ``expected`` calls are in flight at once."""

    expected: int
    arrived: int = 0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)


@recorded(ignore=["gate"])
async def gated(n: int, gate: Gate) -> int:
    gate.arrived += 1
    if gate.arrived == gate.expected:
        gate.all_in.set()
    # Serialized calls would never all arrive: the first would time out here and fail.
    await asyncio.wait_for(gate.all_in.wait(), timeout=20)
    return n * 10


def test_concurrent_awaits_of_one_key_record_it_once(memo_env: Store) -> None:
    awaits = 8
    log: list[int] = []

    async def one() -> tuple[dict[str, int], list[str]]:
        with memo_replay.track() as events:  # task-local: collect inside each task
            value = await slow_fetch(3, log)
        return value, [e.outcome for e in events]

    async def main() -> list[tuple[dict[str, int], list[str]]]:
        return await asyncio.gather(*(one() for _ in range(awaits)))

    results = asyncio.run(main())
    assert log == [3]
    assert [value for value, _ in results] == [{"n": 3, "cube": 27}] * awaits
    assert sorted(o for _, outcomes in results for o in outcomes) == \
        ["recorded"] + ["replayed"] * (awaits - 1)
    assert_store_holds(memo_env, {slow_fetch.memo.key(3, []): {"n": 3, "cube": 27}})


def test_concurrent_awaits_of_different_keys_run_concurrently(memo_env: Store) -> None:
    keys = 5

    async def main() -> list[int]:
        gate = Gate(expected=keys)
        return await asyncio.gather(*(gated(n, gate) for n in range(keys)))

    assert asyncio.run(main()) == [n * 10 for n in range(keys)]
    assert_store_holds(memo_env, {gated.memo.key(n, Gate(0)): n * 10 for n in range(keys)})

    async def replay() -> list[int]:  # recorded now: the gate is never reached
        gate = Gate(expected=keys + 1)
        return await asyncio.gather(*(gated(n, gate) for n in range(keys)))

    with memo_replay.mode("replay"):
        assert asyncio.run(replay()) == [n * 10 for n in range(keys)]


# -- lock timeout and dead holders ------------------------------------------------------------


HOLD_MODULE = """
import os, time
from pathlib import Path
from memo_replay import recorded


@recorded
def hold(n: int) -> dict:
    with open("calls.log", "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    Path("holding").touch()
    deadline = time.monotonic() + 60
    while not Path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"n": n}
"""

HOLDER = """
import json, holdmod
print(json.dumps(holdmod.hold(1)))
"""

WAITER = """
import json, memo_replay, holdmod
from memo_replay.errors import LockTimeout
try:
    with memo_replay.track() as events:
        value = holdmod.hold(1)
except LockTimeout as exc:
    print(json.dumps({"timeout": str(exc), "key": holdmod.hold.memo.key(1),
                      "is_timeout_error": isinstance(exc, TimeoutError),
                      "exported": memo_replay.LockTimeout is LockTimeout}))
else:
    print(json.dumps({"value": value, "outcomes": [e.outcome for e in events],
                      "key": holdmod.hold.memo.key(1)}))
"""


def hold_project(project: Project, lock_timeout: str) -> None:
    project.write("pyproject.toml", f"""
        [project]
        name = "proj"
        version = "0"

        [tool.memo_replay]
        lock_timeout = {lock_timeout}
    """)
    project.write("holdmod.py", HOLD_MODULE)


def test_waiting_past_lock_timeout_raises_then_replays(project: Project) -> None:
    hold_project(project, '"1s"')
    holder = project.start(HOLDER)
    try:
        wait_for_file(project.root / "holding", holder)
        waited = json.loads(project.run(WAITER).stdout)
    finally:
        (project.root / "release").touch()
    assert json.loads(finish_all([holder])[0]) == {"n": 1}

    message = waited["timeout"]
    assert "holdmod.hold" in message
    assert waited["key"] in message
    assert "lock_timeout" in message
    assert waited["is_timeout_error"] is True
    assert waited["exported"] is True
    assert len(project.calls()) == 1  # the waiter never called the function

    after = json.loads(project.run(WAITER).stdout)
    assert after == {"value": {"n": 1}, "outcomes": ["replayed"], "key": waited["key"]}
    assert len(project.calls()) == 1
    assert_store_holds(project.store, {waited["key"]: {"n": 1}})


def test_a_killed_lock_holder_releases_the_lock(project: Project) -> None:
    # With lock_timeout = 5, a lock that outlived its holder would make the second call fail
    # with LockTimeout; it succeeds because the kernel dropped the lock with the process.
    hold_project(project, "5")
    holder = project.start(HOLDER)
    wait_for_file(project.root / "holding", holder)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    assert lock_files(project.store) != []  # the dead holder could not remove its file
    assert entry_files(project.store) == []

    (project.root / "release").touch()
    after = json.loads(project.run(WAITER).stdout)
    assert (after["value"], after["outcomes"]) == ({"n": 1}, ["recorded"])
    calls = project.calls()
    assert len(calls) == 2
    assert calls[0] == str(holder.pid)
    assert calls[1] != calls[0]
    assert_store_holds(project.store, {after["key"]: {"n": 1}})


@pytest.mark.parametrize(("value", "seconds"), [
    ("1", 1.0), ("2.5", 2.5), ('"90s"', 90.0), ('"2m"', 120.0), ('"1h"', 3600.0),
])
def test_lock_timeout_accepts_numbers_and_durations(tmp_path: Path, value: str,
                                                    seconds: float) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[tool.memo_replay]\nlock_timeout = {value}\n")
    assert load_config(pyproject).lock_timeout == seconds


def test_lock_timeout_defaults_to_ten_minutes(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.memo_replay]\n")
    assert load_config(pyproject).lock_timeout == 600.0


@pytest.mark.parametrize("value", ["0", "-1", '"soon"', "true", '""'])
def test_invalid_lock_timeout_is_a_config_error(tmp_path: Path, value: str) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[tool.memo_replay]\nlock_timeout = {value}\n")
    with pytest.raises(ConfigError, match="lock_timeout") as info:
        load_config(pyproject)
    assert str(pyproject) in str(info.value)


def test_lock_timeout_is_exported() -> None:
    assert memo_replay.LockTimeout is LockTimeout
    assert issubclass(LockTimeout, memo_replay.MemoReplayError)
    assert issubclass(LockTimeout, TimeoutError)


# -- races between Store.lookup/delete in several processes ---------------------------------


FLICKER = """
import os, shutil, sys
path, spare = sys.argv[1:]
while True:
    shutil.copyfile(spare, spare + ".new")
    os.replace(spare + ".new", path)
    for _ in range(100):  # the entry stays a moment, so lookups also find it while this runs
        os.stat(spare)
    os.unlink(path)
"""


def one_entry(store: Store) -> tuple[Path, bytes]:
    slow_square(2, [])
    (path,) = entry_files(store)
    return path, path.read_bytes()


def test_an_entry_deleted_during_a_lookup_is_a_miss(memo_env: Store) -> None:
    """Another process makes the entry appear and vanish as fast as it can. Every lookup is
    a miss or the recording exactly as it was made (its payload, checksum and duration, and
    the value it replays), never CorruptEntry or a partial read."""
    path, raw = one_entry(memo_env)
    function, key = slow_square.memo.id, path.stem
    (recorded,) = memo_env.entries()
    expected = recorded.payload
    assert json.loads(raw)["result"]["checksum"] == expected.checksum == checksum(expected.data)
    spare = path.with_name(".spare.tmp")
    spare.write_bytes(raw)
    flicker = subprocess.Popen([sys.executable, "-c", FLICKER, str(path), str(spare)])
    hits = misses = hits_after_a_miss = 0
    lookups = 0
    deadline = time.monotonic() + 120  # a guard against looping for ever, not a timing check
    try:
        # The race shows within a few thousand lookups; go on until a lookup found the entry
        # after another found it gone, so hits during the flicker were checked too.
        while lookups < 20_000 or not hits_after_a_miss:
            assert time.monotonic() < deadline, (lookups, hits, misses)
            hit = memo_env.lookup(function, key)  # a Hit or None, never CorruptEntry
            lookups += 1
            if hit is None:
                misses += 1
                continue
            hits += 1
            hits_after_a_miss += misses > 0
            assert hit.payload == expected
            assert checksum(hit.payload.data) == hit.payload.checksum
            assert hit.duration_s == recorded.duration_s
    finally:
        flicker.kill()
        flicker.wait()
    print(f"\nflicker: {lookups} lookups, {hits} hits ({hits_after_a_miss} after a miss), "
          f"{misses} misses")
    assert misses > 0
    assert expected.load(None, function=function) == {"n": 2, "square": 4}


def test_concurrent_deletes_of_one_key_do_not_raise(memo_env: Store) -> None:
    path, raw = one_entry(memo_env)
    rounds, deleters = 500, 3
    step = threading.Barrier(deleters + 1, timeout=30)
    removed: list[bool] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def delete() -> None:
        while True:
            step.wait()
            if stop.is_set():
                return
            try:
                removed.append(memo_env.delete(path.stem))
            except FileNotFoundError as exc:
                errors.append(exc)
            step.wait()

    threads = [threading.Thread(target=delete) for _ in range(deleters)]
    for thread in threads:
        thread.start()
    done = 0
    try:
        while done < rounds and not errors:
            path.write_bytes(raw)
            step.wait()  # every deleter deletes the same fresh file at once
            step.wait()
            done += 1
    finally:
        stop.set()
        step.wait()
        for thread in threads:
            thread.join()
    assert errors == []
    assert removed.count(True) == done
