"""Crash safety of recordings: a full disk and SIGKILL in the middle of a write.

Real processes, real resource limits, real signals: a child interpreter records into a store in
a throwaway project and is made to fail (``RLIMIT_FSIZE`` stands for a full disk) or killed with
SIGKILL at many points of its run. Whatever happens, every entry file in the store is complete
and replays, and the only leftovers are temporary files that ``Store.verify()`` reports as
``orphan``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from memo_replay import Store

if TYPE_CHECKING:
    from conftest import Project


def child_env(mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEMO_") and k != "PYTHONPATH"}
    env.update(PYTHONDONTWRITEBYTECODE="1", MEMO_MODE=mode)
    return env


def entry_files(store: Store) -> list[Path]:
    return sorted(p for p in store.path.glob("*/*.json") if not p.parent.name.startswith("."))


def temp_files(store: Store) -> list[Path]:
    return sorted(p for p in store.path.glob("*/*") if p.name.endswith(".tmp")
                  and not p.parent.name.startswith("."))


# -- a full disk ------------------------------------------------------------------------------

FULL_MODULE = '''
import os
from pathlib import Path

from memo_replay import recorded

HERE = Path(__file__).parent


@recorded
def big(n: int) -> str:
    with open(HERE / "calls.log", "a") as fh:
        fh.write(f"big {n}\\n")
    # BIG_SIZE is not part of the key: it stands for a remote answer that grew.
    return chr(ord("a") + n) * int(os.environ.get("BIG_SIZE", "1000"))
'''

FULL_DISK = """
import json, resource, signal
import fullmod, memo_replay

LIMIT = 1_000_000
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))
out = {}
for n in (0, 1):  # 0 re-records over an existing entry, 1 is a new one
    key = fullmod.big.memo.key(n)
    try:
        fullmod.big(n)
    except memo_replay.StoreError as exc:
        out[n] = {"key": key, "error": str(exc)}
    except BaseException as exc:
        out[n] = {"key": key, "error": f"not a StoreError: {type(exc).__name__}: {exc}"}
    else:
        out[n] = {"key": key, "error": None}
print(json.dumps(out))
"""


def test_full_disk_while_recording_raises_store_error_and_leaves_nothing(
        project: Project) -> None:
    project.write("fullmod.py", FULL_MODULE)
    project.run("import fullmod; fullmod.big(0); fullmod.big(2)", mode="auto")
    store = project.store
    [first, other] = entry_files(store)
    before = {p: p.read_bytes() for p in (first, other)}

    result = project.run(FULL_DISK, mode="record", env={"BIG_SIZE": str(2_000_000)})
    out = json.loads(result.stdout.strip().splitlines()[-1])

    assert project.calls() == ["big 0", "big 2", "big 0", "big 1"]  # both really called
    for n in ("0", "1"):
        entry = project.root / "fixtures_store" / "fullmod.big" / f"{out[n]['key']}.json"
        assert out[n]["error"] is not None, f"big({n}) of 2 MB was written under a 1 MB limit"
        assert out[n]["error"].startswith("cannot write the recording"), out[n]["error"]
        assert str(entry) in out[n]["error"]
    assert temp_files(store) == []
    assert entry_files(store) == [first, other]  # no partial entry of big(1)
    assert {p: p.read_bytes() for p in (first, other)} == before  # big(0) untouched
    assert store.verify() == []

    replay = project.run("import fullmod; print(fullmod.big(0)); print(fullmod.big(2))",
                         mode="replay", env={"BIG_SIZE": str(2_000_000)})
    assert replay.stdout.split() == ["a" * 1000, "c" * 1000]
    assert len(project.calls()) == 4  # replayed, not called


# -- SIGKILL in the middle of recording -------------------------------------------------------

BIG_MODULE = '''
from memo_replay import recorded

REPEAT = 2_500_000  # 8 characters each: a 20 MB entry, so a write takes measurable time


@recorded
def big(i: int) -> str:
    return f"{i:08d}" * REPEAT
'''

RECORD_LOOP = """
import sys
import bigmod

start = int(sys.argv[1])
bigmod.big.memo.key(start)  # the code fingerprint, once: what follows is recording only
print("ready", flush=True)
for i in range(start, start + 200):
    print("start", i, bigmod.big.memo.key(i), flush=True)
    bigmod.big(i)
    print("done", i, flush=True)
"""

SPREAD_KILLS = 15  # after a sleep of increasing length, spread over the first few recordings
SPREAD_SECONDS = 0.9
WRITE_KILLS = 10  # as soon as a new temporary file appears, plus a growing few milliseconds


def expected(i: int) -> str:
    return f"{i:08d}" * 2_500_000


def start_child(project: Project, start: int) -> subprocess.Popen[str]:
    env = child_env("record")
    env["PYTHONPATH"] = str(project.root)
    child = subprocess.Popen([sys.executable, "-c", RECORD_LOOP, str(start)], cwd=project.root,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.kill()
        finish(child)
        assert child.stderr is not None
        raise AssertionError(f"the recording child did not start: {line!r}\n"
                             f"{child.stderr.read()}")
    return child


def finish(child: subprocess.Popen[str]) -> str:
    """The rest of a (killed) child's output. Not `communicate()`: it would skip what
    `readline()` has already buffered."""
    assert child.stdout is not None
    out = child.stdout.read()
    child.wait(timeout=60)
    return out


def wait_for_new_temp_file(store: Store, child: subprocess.Popen[str],
                           known: set[Path]) -> None:
    """Return once the child has a temporary file of its own open (or has tried for long)."""
    directory = store.path / "bigmod.big"
    deadline = time.monotonic() + 20  # a guard against a hang, not a timing assertion
    while time.monotonic() < deadline and child.poll() is None:
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            names = []
        if any(n.endswith(".tmp") and directory / n not in known for n in names):
            return
        time.sleep(0.0005)


def check_store(store: Store, seed: Path, seed_bytes: bytes) -> tuple[list[Path], list[Path]]:
    """Everything a user relies on after a crash; returns (big entries, orphan temp files)."""
    files = entry_files(store)
    entries = list(store.entries())  # skips damaged entries: compare with every file on disk
    assert sorted(e.path for e in entries) == files, "an entry file does not read back"
    for entry in entries:
        if entry.path == seed:
            continue
        i = entry.arguments["i"]
        value = entry.load()
        assert value == expected(i), f"{entry.path} holds a wrong or partial result"
    assert seed.read_bytes() == seed_bytes
    problems = store.verify()
    assert [p for p in problems if p.kind != "orphan"] == []
    orphans = sorted(p.path for p in problems)
    assert orphans == temp_files(store)
    for orphan in orphans:
        assert orphan.name.startswith(".")
        assert orphan.name.endswith(".tmp")
    return [f for f in files if f != seed], orphans


def test_sigkill_at_many_points_of_recording_never_leaves_a_partial_entry(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.write("bigmod.py", BIG_MODULE)
    project.write("seedmod.py", """
        from memo_replay import recorded

        @recorded
        def seed(n: int) -> dict:
            return {"seed": n}
    """)
    project.run("import seedmod; seedmod.seed(1)", mode="record")
    store = project.store
    [seed] = entry_files(store)
    seed_bytes = seed.read_bytes()

    kills = orphaned_kills = completed = 0
    orphans: set[Path] = set()
    interrupted: list[tuple[int, str]] = []  # (argument, key) of calls killed mid-recording
    plans = [("spread", n * SPREAD_SECONDS / (SPREAD_KILLS - 1)) for n in range(SPREAD_KILLS)]
    plans += [("write", n * 0.002) for n in range(WRITE_KILLS)]
    try:
        for round_, (how, delay) in enumerate(plans):
            child = start_child(project, start=1000 * (round_ + 1))
            if how == "write":
                wait_for_new_temp_file(store, child, orphans)
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
            out = finish(child)
            assert child.returncode == -signal.SIGKILL
            kills += 1

            done = {int(line.split()[1]) for line in out.splitlines() if line.startswith("done")}
            # The kill may cut the last line short: only whole "start <i> <key>" lines count.
            started = [(int(fields[1]), fields[2]) for fields in map(str.split, out.splitlines())
                       if len(fields) == 3 and fields[0] == "start" and len(fields[2]) == 32]
            big_entries, now_orphans = check_store(store, seed, seed_bytes)
            # Every call that returned is on disk, complete; nothing else is but the call cut
            # short at the moment it had renamed its file.
            recorded_args = {json.loads(p.read_bytes())["arguments"]["i"] for p in big_entries}
            assert done <= recorded_args
            assert recorded_args - done <= {i for i, _ in started[-1:]}
            completed += len(recorded_args)
            new_orphans = set(now_orphans) - orphans
            if new_orphans:
                orphaned_kills += 1
                assert len(new_orphans) == 1
                [(i, key)] = started[-1:]
                assert next(iter(new_orphans)).name.startswith(f".{key}.")
                interrupted.append((i, key))
            orphans |= new_orphans
            for path in big_entries:  # keep the store small: the next check reads everything
                assert store.delete(path.stem)
    finally:
        with capsys.disabled():
            print(f"\n[crash safety] {kills} SIGKILLs, {orphaned_kills} left an orphan temp "
                  f"file, {completed} recordings completed in between")

    # A store with orphans still records and replays, and the orphans never count as entries.
    retried = [i for i, _ in interrupted[:2]] or [1]
    code = f"import bigmod; [bigmod.big(i) for i in {retried!r}]; print('ok')"
    assert project.run(code, mode="auto").stdout.strip() == "ok"
    assert project.run(code, mode="replay").stdout.strip() == "ok"
    big_entries, final_orphans = check_store(store, seed, seed_bytes)
    assert len(big_entries) == len(retried)
    assert set(final_orphans) == orphans
    for orphan in final_orphans:  # 20 MB each; `memo-replay prune --orphans` does this for users
        orphan.unlink()
    assert store.verify() == []
