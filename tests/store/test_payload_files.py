"""Large binary payloads stored beside their entry: ``<key>.<checksum prefix>.bin``.

A binary payload above ``PAYLOAD_FILE_THRESHOLD`` (64 KiB) is not base64-inflated into the JSON: it
lives in a content-addressed file beside its entry, which is written as format 2 and names the
file in ``result.file``. Everything here runs real interpreters recording into a throwaway
project, real ``git`` (isolated from the machine's git configuration) and the real
``memo-replay`` command line; files are damaged, copied and edited by hand the way a person or a
bad merge would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import finish_all, last_json
from xxhash import xxh3_128_hexdigest

from memo_replay import CorruptEntry, Store
from memo_replay.store.entry import OBSERVED_FORMAT, PAYLOAD_FILE_THRESHOLD, render
from memo_replay.store.layout import payload_file_name

if TYPE_CHECKING:
    from conftest import Project

MB = 1 << 20
BIG = 128 * 1024
"""Above the threshold, for tests where the exact size does not matter (every recording runs the
secret scan over its whole payload)."""

MODULE = '''
import os
import random
from pathlib import Path

from memo_replay import recorded

HERE = Path(__file__).parent


def _log(line: str) -> None:
    with open(HERE / "calls.log", "a") as fh:
        fh.write(line + "\\n")


def _seed() -> int:
    # seed.txt is deliberately NOT part of the key: it stands for a remote answer that drifts.
    path = HERE / "seed.txt"
    return int(path.read_text()) if path.exists() else 0


def pattern(size: int, seed: int) -> bytes:
    return random.Random(f"{seed}:{size}").randbytes(size)


@recorded(observe_files=False)  # seed.txt stands for a remote answer: not a dependency
def blob(size: int, tag: str = "") -> bytes:
    _log(f"blob {size} {tag}".rstrip())
    seed = _seed()
    # A negative seed stands for an answer that shrank below the threshold.
    return pattern(size if seed >= 0 else 1024, seed)


@recorded(observe_files=False)
def array(n: int):
    import numpy

    _log(f"array {n}")
    return numpy.arange(n, dtype=numpy.float64) * 0.5 + _seed()


@recorded
def leaky(size: int) -> bytes:
    _log(f"leaky {size}")
    canary = os.environ["CANARY"].encode()
    half = (size - len(canary)) // 2
    return b"." * half + canary + b"." * (size - half - len(canary))


@recorded(ignore=["which"])
def flip(name: str, which: int) -> bytes:
    # `which` is not part of the key: concurrent re-records of one key alternate results.
    return pattern(200 * 1024, which)
'''

BLOB = """
import hashlib, json, sys, warnings
import memo_replay, sidemod

out = []
for spec in sys.argv[1:]:
    size, _, tag = spec.partition(":")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = sidemod.blob(int(size), tag)
        except memo_replay.MemoReplayError as exc:
            result = {"error": type(exc).__name__, "message": str(exc),
                      "corrupt": isinstance(exc, memo_replay.CorruptEntry),
                      "path": str(getattr(exc, "path", ""))}
        else:
            result = {"size": len(value), "sha": hashlib.sha256(value).hexdigest()}
    result["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    out.append(result)
print(json.dumps(out))
"""

ARRAY = """
import hashlib, json, sys
import sidemod
a = sidemod.array(int(sys.argv[1]))
print(json.dumps({"type": f"{type(a).__module__}.{type(a).__qualname__}", "dtype": str(a.dtype),
                  "shape": list(a.shape), "sha": hashlib.sha256(a.tobytes()).hexdigest()}))
"""

LEAKY = """
import json, sys
import memo_replay, sidemod
try:
    value = sidemod.leaky(int(sys.argv[1]))
except memo_replay.SecretDetected as exc:
    print(json.dumps({"refused": str(exc)}))
else:
    print(json.dumps({"size": len(value)}))
"""

# Assembled at runtime, so this file itself holds no secret shape.
CANARY = "sk-" + "ant-api03-" + "".join(random.Random(7).choices("abcXYZ0123456789", k=40))
ALLOW_CANARY = "sk-" + "ant-api03-[A-Za-z0-9]+"


# -- helpers ----------------------------------------------------------------------------------


def pattern(size: int, seed: int = 0) -> bytes:
    return random.Random(f"{seed}:{size}").randbytes(size)


def expected_blob(size: int, seed: int = 0) -> dict[str, Any]:
    value = pattern(size if seed >= 0 else 1024, seed)
    return {"size": len(value), "sha": hashlib.sha256(value).hexdigest(), "warnings": []}


def setup(project: Project) -> None:
    project.write("sidemod.py", MODULE)
    project.write("seed.txt", "0\n")
    project.write(".gitignore", "calls.log\n__pycache__/\n")


def call_blob(project: Project, *specs: object, mode: str = "auto") -> list[dict[str, Any]]:
    """``sidemod.blob`` for each ``size`` or ``size:tag`` in a fresh interpreter."""
    result: list[dict[str, Any]] = last_json(
        project.run(BLOB, mode=mode, args=tuple(str(s) for s in specs)).stdout)
    return result


def store_dir(project: Project) -> Path:
    return project.root / "fixtures_store"


def function_dir(project: Project, function: str = "sidemod.blob") -> Path:
    return store_dir(project) / function


def names(directory: Path) -> list[str]:
    """Every file in a function directory (temporary dot-files included)."""
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def the_pair(directory: Path) -> tuple[Path, Path]:
    """The one entry file and the one payload file of a function directory."""
    entries, payloads = sorted(directory.glob("*.json")), sorted(directory.glob("*.bin"))
    assert len(entries) == 1, names(directory)
    assert len(payloads) == 1, names(directory)
    assert names(directory) == sorted([entries[0].name, payloads[0].name])
    return entries[0], payloads[0]


def entry_for(directory: Path, **arguments: object) -> Path:
    """The entry file whose argument preview matches ``arguments``."""
    found = [p for p in directory.glob("*.json")
             if all(json.loads(p.read_bytes())["arguments"].get(k) == v
                    for k, v in arguments.items())]
    assert len(found) == 1, (arguments, names(directory))
    return found[0]


def payload_of(entry: Path) -> Path:
    return entry.parent / json.loads(entry.read_bytes())["result"]["file"]


def snapshot(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes())
            for p in sorted(directory.iterdir())}


def kinds(store: Store) -> list[tuple[Path, str]]:
    return [(p.path, p.kind) for p in store.verify()]


def cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m memo_replay ...`` in the project, no mode set."""
    return project.run_module("memo_replay", *args, mode=None, check=False)


def flip_a_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# -- where payloads go ------------------------------------------------------------------------


def test_a_large_bytes_result_is_stored_beside_a_small_entry(project: Project) -> None:
    setup(project)
    assert call_blob(project, MB) == [expected_blob(MB)]

    entry, payload = the_pair(function_dir(project))
    raw = entry.read_bytes()
    assert len(raw) < 4096
    assert not re.search(rb"[A-Za-z0-9+/=]{200,}", raw)  # no base64 blob in the JSON
    document = json.loads(raw)
    assert render(document) == raw
    # format 3, not 2: the helpers that ran during the recording are observed dependencies
    assert document["format"] == OBSERVED_FORMAT
    result = document["result"]
    assert result["file"] == payload.name
    assert result["payload"] is None
    assert result["size"] == MB
    assert (result["encoding"], result["serializer"]) == ("binary", "bytes")
    assert result["checksum"] == xxh3_128_hexdigest(pattern(MB))
    assert payload.name == f"{entry.stem}.{result['checksum'][:16]}.bin" \
        == payload_file_name(entry.stem, result["checksum"])
    assert payload.read_bytes() == pattern(MB)

    store = project.store
    assert store.verify() == []
    recorded_entry = store.get(entry.stem)
    assert recorded_entry is not None
    assert recorded_entry.payload_file == payload.name
    assert recorded_entry.size == MB
    assert recorded_entry.load() == pattern(MB)


def test_a_small_binary_result_stays_inline(project: Project) -> None:
    setup(project)
    assert call_blob(project, 1024) == [expected_blob(1024)]

    directory = function_dir(project)
    (entry,) = directory.glob("*.json")
    assert names(directory) == [entry.name]  # no payload file
    document = json.loads(entry.read_bytes())
    assert document["format"] == OBSERVED_FORMAT  # the helpers that ran are observed
    assert "file" not in document["result"]
    assert base64.b64decode(document["result"]["payload"]) == pattern(1024)
    assert project.store.verify() == []


def test_exactly_the_threshold_stays_inline_one_byte_more_goes_beside(project: Project) -> None:
    assert PAYLOAD_FILE_THRESHOLD == 64 * 1024
    setup(project)
    sizes = (PAYLOAD_FILE_THRESHOLD, PAYLOAD_FILE_THRESHOLD + 1)
    assert call_blob(project, *sizes) == [expected_blob(n) for n in sizes]

    directory = function_dir(project)
    at, above = (entry_for(directory, size=n) for n in sizes)
    at_doc, above_doc = json.loads(at.read_bytes()), json.loads(above.read_bytes())
    assert at_doc["format"] == above_doc["format"] == OBSERVED_FORMAT
    assert "file" not in at_doc["result"]
    assert base64.b64decode(at_doc["result"]["payload"]) == pattern(PAYLOAD_FILE_THRESHOLD)
    assert above_doc["result"]["payload"] is None
    assert names(directory) == sorted([at.name, above.name, above_doc["result"]["file"]])
    assert project.store.verify() == []
    assert call_blob(project, *sizes, mode="replay") == [expected_blob(n) for n in sizes]
    assert project.calls() == [f"blob {n}" for n in sizes]


# -- replay -----------------------------------------------------------------------------------


def test_strict_replay_in_a_fresh_process_returns_identical_bytes(project: Project) -> None:
    setup(project)
    call_blob(project, MB)
    assert project.calls() == [f"blob {MB}"]

    # The first replay reads the entry and its payload file, the second one the index.
    assert call_blob(project, MB, mode="replay") == [expected_blob(MB)]
    assert call_blob(project, MB, mode="replay") == [expected_blob(MB)]
    assert project.calls() == [f"blob {MB}"]  # never called again
    assert project.store.verify() == []


def test_a_large_numpy_array_goes_beside_and_replays_equal(project: Project) -> None:
    numpy = pytest.importorskip("numpy")
    setup(project)
    n = MB // 8
    wanted = numpy.arange(n, dtype=numpy.float64) * 0.5
    described = {"type": "numpy.ndarray", "dtype": "float64", "shape": [n],
                 "sha": hashlib.sha256(wanted.tobytes()).hexdigest()}
    assert last_json(project.run(ARRAY, args=(str(n),)).stdout) == described

    entry, payload = the_pair(function_dir(project, "sidemod.array"))
    document = json.loads(entry.read_bytes())
    assert document["format"] == OBSERVED_FORMAT  # the helpers that ran are observed
    assert document["result"]["serializer"] == "numpy"
    assert document["result"]["file"] == payload.name
    assert payload.stat().st_size > MB  # the .npy header and the raw data
    assert len(entry.read_bytes()) < 4096

    assert last_json(project.run(ARRAY, mode="replay", args=(str(n),)).stdout) == described
    assert project.calls() == [f"array {n}"]
    replayed = project.store.get(entry.stem)
    assert replayed is not None
    value = replayed.load()
    assert value.dtype == wanted.dtype
    assert numpy.array_equal(value, wanted)


# -- re-recording -----------------------------------------------------------------------------


def test_an_identical_rerecord_writes_nothing(project: Project) -> None:
    setup(project)
    call_blob(project, MB)
    directory = function_dir(project)
    the_pair(directory)
    before = snapshot(directory)

    assert call_blob(project, MB, mode="record") == [expected_blob(MB)]

    assert project.calls() == [f"blob {MB}"] * 2  # really called again...
    assert snapshot(directory) == before  # ...and neither file was touched


def test_a_changed_rerecord_replaces_the_payload_file(project: Project) -> None:
    setup(project)
    call_blob(project, BIG)
    directory = function_dir(project)
    entry, old_payload = the_pair(directory)
    old_document = json.loads(entry.read_bytes())

    project.write("seed.txt", "1\n")
    assert call_blob(project, BIG, mode="record") == [expected_blob(BIG, seed=1)]

    new_entry, new_payload = the_pair(directory)  # one entry, one payload file
    assert new_entry == entry
    assert new_payload != old_payload
    assert not old_payload.exists()
    document = json.loads(entry.read_bytes())
    assert document["result"]["file"] == new_payload.name
    assert document["result"]["checksum"] == xxh3_128_hexdigest(pattern(BIG, 1)) \
        != old_document["result"]["checksum"]
    assert new_payload.read_bytes() == pattern(BIG, 1)
    assert project.store.verify() == []
    assert call_blob(project, BIG, mode="replay") == [expected_blob(BIG, seed=1)]

    # The answer shrinks below the threshold: back inline, and the payload file goes.
    project.write("seed.txt", "-1\n")
    assert call_blob(project, BIG, mode="record") == [expected_blob(BIG, seed=-1)]
    assert names(directory) == [entry.name]
    document = json.loads(entry.read_bytes())
    assert "file" not in document["result"]
    assert base64.b64decode(document["result"]["payload"]) == pattern(1024, -1)
    assert project.store.verify() == []


# -- git --------------------------------------------------------------------------------------

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}
GIT_CONFIG = ("-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main",
              "-c", "core.autocrlf=false")
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *GIT_CONFIG, *args], cwd=cwd,
                            env={**os.environ, **GIT_ENV}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def status(cwd: Path) -> list[str]:
    return git(cwd, "status", "--porcelain", "--untracked-files=all").splitlines()


def commit_all(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "-m", message)


@needs_git
def test_a_fresh_clone_replays_and_stays_clean(project: Project, tmp_path: Path) -> None:
    setup(project)
    call_blob(project, MB)
    git(project.root, "init", "-q")
    commit_all(project.root, "record")
    entry, payload = the_pair(function_dir(project))
    tracked = git(project.root, "ls-files", "fixtures_store").split()
    assert tracked == sorted(p.relative_to(project.root).as_posix() for p in (entry, payload))

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project.root), str(clone))
    checkout = type(project)(clone)
    assert (clone / payload.relative_to(project.root)).read_bytes() == pattern(MB)
    assert call_blob(checkout, MB, mode="replay") == [expected_blob(MB)]
    assert call_blob(checkout, MB, mode="replay") == [expected_blob(MB)]  # from the index
    assert checkout.calls() == []
    assert status(clone) == []
    assert checkout.store.verify() == []


@needs_git
def test_a_changed_rerecord_shows_in_git_as_payload_replaced_entry_modified(
        project: Project) -> None:
    setup(project)
    call_blob(project, BIG)
    git(project.root, "init", "-q")
    commit_all(project.root, "record")
    entry, old_payload = the_pair(function_dir(project))

    project.write("seed.txt", "1\n")
    call_blob(project, BIG, mode="record")

    _, new_payload = the_pair(function_dir(project))
    rel = {p: p.relative_to(project.root).as_posix() for p in (entry, old_payload, new_payload)}
    changed = sorted(line for line in status(project.root) if " fixtures_store/" in line)
    assert changed == sorted([f" D {rel[old_payload]}", f" M {rel[entry]}",
                              f"?? {rel[new_payload]}"])
    commit_all(project.root, "re-record")
    assert status(project.root) == []
    assert call_blob(project, BIG, mode="replay") == [expected_blob(BIG, seed=1)]
    assert status(project.root) == []


# -- damage -----------------------------------------------------------------------------------

DAMAGES = {
    "deleted": (lambda payload: payload.unlink(), "is missing"),
    "flipped": (lambda payload: flip_a_byte(payload, BIG // 2), "checksum mismatch"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_payload_file_makes_the_entry_corrupt(project: Project, damage: str) -> None:
    setup(project)
    call_blob(project, BIG)
    entry, payload = the_pair(function_dir(project))
    do, says = DAMAGES[damage]
    do(payload)

    problems = project.store.verify()
    assert [(p.path, p.kind) for p in problems] == [(entry, "corrupt")]
    assert says in problems[0].message
    if damage == "deleted":
        assert payload.name in problems[0].message

    (strict,) = call_blob(project, BIG, mode="replay")
    assert strict["corrupt"] is True, strict
    assert Path(strict["path"]).name == entry.name
    assert entry.name in strict["message"]
    assert "will not be replayed" in strict["message"]
    assert project.calls() == [f"blob {BIG}"]  # never called, never replayed

    (auto,) = call_blob(project, BIG, mode="auto")
    assert {k: auto[k] for k in ("size", "sha")} == \
        {k: v for k, v in expected_blob(BIG).items() if k != "warnings"}
    assert any("re-recording" in w and entry.name in w for w in auto["warnings"]), auto
    assert project.calls() == [f"blob {BIG}"] * 2
    assert the_pair(function_dir(project)) == (entry, payload)  # both files back
    assert payload.read_bytes() == pattern(BIG)
    assert project.store.verify() == []


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_payload_file_is_not_replayed_from_a_warm_index(project: Project,
                                                                  damage: str) -> None:
    setup(project)
    call_blob(project, BIG)
    assert call_blob(project, BIG, mode="replay") == [expected_blob(BIG)]  # warms the index
    _, payload = the_pair(function_dir(project))
    DAMAGES[damage][0](payload)
    assert [kind for _, kind in kinds(project.store)] == ["corrupt"]

    (strict,) = call_blob(project, BIG, mode="replay")
    assert strict.get("corrupt") is True, strict


ORPHANS = ("copy with another checksum", "entry deleted by hand")


@pytest.mark.parametrize("how", ORPHANS)
def test_an_orphan_payload_file_is_reported_and_pruned(project: Project, how: str) -> None:
    setup(project)
    call_blob(project, BIG, f"{BIG}:other")
    directory = function_dir(project)
    healthy = entry_for(directory, tag="other")
    healthy_payload = payload_of(healthy)
    entry = entry_for(directory, tag="")
    payload = payload_of(entry)
    if how == ORPHANS[0]:
        suffix = "0123456789abcdef"
        if payload.name.endswith(f".{suffix}.bin"):
            suffix = "fedcba9876543210"
        orphan = directory / f"{entry.stem}.{suffix}.bin"
        shutil.copyfile(payload, orphan)
        kept = [entry, payload, healthy, healthy_payload]
    else:
        entry.unlink()
        orphan = payload
        kept = [healthy, healthy_payload]
    before = {p: p.read_bytes() for p in kept}

    problems = project.store.verify()
    assert [(p.path, p.kind) for p in problems] == [(orphan, "orphan")]
    young = cli(project, "prune", "--orphans", "--yes", "--store", str(store_dir(project)))
    assert young.returncode == 0
    assert orphan.exists()
    yesterday = time.time() - 86400
    os.utime(orphan, (yesterday, yesterday))

    listed = cli(project, "prune", "--orphans", "--store", str(store_dir(project)))
    assert listed.returncode == 1, listed.stdout + listed.stderr
    assert str(orphan) in listed.stdout
    assert orphan.exists()

    pruned = cli(project, "prune", "--orphans", "--yes", "--store", str(store_dir(project)))
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert str(orphan) in pruned.stdout
    assert not orphan.exists()
    assert names(directory) == sorted(p.name for p in kept)
    assert {p: p.read_bytes() for p in kept} == before
    assert project.store.verify() == []
    assert call_blob(project, f"{BIG}:other", mode="replay") == [expected_blob(BIG)]


TARGETS = ("../../outside.bin", "absolute path", "another key's payload file")


@pytest.mark.parametrize("target", TARGETS)
def test_an_entry_naming_a_file_elsewhere_is_corrupt_and_never_reads_it(
        project: Project, tmp_path: Path, target: str) -> None:
    setup(project)
    call_blob(project, f"{BIG}:a", f"{BIG}:b")  # the same payload under two keys
    directory = function_dir(project)
    entry, other = entry_for(directory, tag="a"), entry_for(directory, tag="b")
    own_payload, other_payload = payload_of(entry), payload_of(other)
    assert own_payload.read_bytes() == other_payload.read_bytes() == pattern(BIG)
    # Somewhere else, a file holding exactly the bytes the checksum wants.
    if target == TARGETS[0]:
        outside = project.root / "outside.bin"
        name = target
        assert (directory / name).resolve() == outside
    elif target == TARGETS[1]:
        outside = tmp_path / "elsewhere" / "outside.bin"
        outside.parent.mkdir()
        name = str(outside)
    else:
        outside = other_payload
        name = other_payload.name
    if outside != other_payload:
        outside.write_bytes(pattern(BIG))
    document = json.loads(entry.read_bytes())
    document["result"]["file"] = name
    entry.write_bytes(render(document))
    own_payload.unlink()

    problems = project.store.verify()
    assert [(p.path, p.kind) for p in problems] == [(entry, "corrupt")]  # no orphan either
    assert "invalid payload file" in problems[0].message
    with pytest.raises(CorruptEntry) as error:
        project.store.get(entry.stem)
    assert error.value.path == entry

    strict, fine = call_blob(project, f"{BIG}:a", f"{BIG}:b", mode="replay")
    assert strict["corrupt"] is True, strict
    assert Path(strict["path"]).name == entry.name
    assert fine == expected_blob(BIG)
    assert project.calls() == [f"blob {BIG} a", f"blob {BIG} b"]

    (auto,) = call_blob(project, f"{BIG}:a", mode="auto")  # re-recorded in its own file
    assert auto["sha"] == expected_blob(BIG)["sha"]
    assert payload_of(entry) == own_payload
    assert own_payload.read_bytes() == pattern(BIG)
    assert outside.read_bytes() == pattern(BIG)  # untouched, not removed
    assert project.store.verify() == []


def test_scan_never_reads_a_file_an_edited_entry_names_elsewhere(project: Project) -> None:
    setup(project)
    call_blob(project, BIG)
    entry, payload = the_pair(function_dir(project))
    outside = project.root / "outside.bin"
    outside.write_bytes(b"x " + CANARY.encode() + b" y")
    document = json.loads(entry.read_bytes())
    document["result"]["file"] = "../../outside.bin"
    entry.write_bytes(render(document))
    payload.unlink()
    assert [kind for _, kind in kinds(project.store)] == ["corrupt"]

    result = cli(project, "scan", "--store", str(store_dir(project)))
    assert "the result contains" not in result.stdout, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


# -- delete, prune, stats ---------------------------------------------------------------------


def test_store_delete_removes_the_payload_file(project: Project) -> None:
    setup(project)
    call_blob(project, BIG, 1024)
    directory = function_dir(project)
    big, small = entry_for(directory, size=BIG), entry_for(directory, size=1024)
    assert len(names(directory)) == 3

    store = project.store
    assert store.delete(big.stem) is True
    assert names(directory) == [small.name]
    assert store.delete(big.stem) is False
    assert store.verify() == []


def test_prune_stale_removes_the_payload_file(project: Project) -> None:
    pytest.importorskip("numpy")
    setup(project)
    call_blob(project, BIG)
    project.run(ARRAY, args=(str(BIG // 8),))
    entry, payload = the_pair(function_dir(project))
    arrays = snapshot(function_dir(project, "sidemod.array"))
    assert len(arrays) == 2

    project.replace("sidemod.py", '_log(f"blob {size} {tag}".rstrip())',
                    '_log(f"blob: {size} {tag}".rstrip())')
    listed = cli(project, "prune", "--stale", "--store", str(store_dir(project)))
    assert listed.returncode == 1, listed.stdout + listed.stderr
    assert str(entry) in listed.stdout
    assert "sidemod.array" not in listed.stdout

    pruned = cli(project, "prune", "--stale", "--yes", "--store", str(store_dir(project)))
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert names(function_dir(project)) == []
    assert not payload.exists()
    assert snapshot(function_dir(project, "sidemod.array")) == arrays  # the other function
    assert project.store.verify() == []


def test_stats_count_the_payload_file_bytes(project: Project) -> None:
    setup(project)
    call_blob(project, BIG, 1024)
    files = sorted(function_dir(project).iterdir())
    assert len(files) == 3
    on_disk = sum(p.stat().st_size for p in files)
    assert on_disk > BIG

    stats = project.store.stats()
    assert (stats.entries, stats.problems) == (2, 0)
    assert stats.functions["sidemod.blob"].bytes == stats.bytes == on_disk


# -- secrets ----------------------------------------------------------------------------------


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def test_a_secret_inside_a_large_payload_refuses_the_write(project: Project) -> None:
    setup(project)
    out = last_json(project.run(LEAKY, args=(str(MB),), env={"CANARY": CANARY}).stdout)

    assert "refused" in out, out
    message = out["refused"]
    assert "refusing to record `sidemod.leaky`" in message
    assert "the result contains" in message
    assert "Nothing was written" in message
    assert CANARY not in message  # masked
    assert project.calls() == [f"leaky {MB}"]
    everything = files_under(store_dir(project))
    index = store_dir(project) / ".cache"
    assert [p for p in everything if index not in p.parents] == []  # no .json, .bin or .tmp
    assert not [p for p in everything if p.name.endswith(".tmp")]
    assert not any(CANARY.encode() in p.read_bytes() for p in everything)


def test_scan_finds_a_secret_in_a_payload_file(project: Project) -> None:
    setup(project)
    pyproject = project.read("pyproject.toml")
    project.write("pyproject.toml", pyproject
                  + f'\n[tool.memo_replay]\nallow_secrets = ["{ALLOW_CANARY}"]\n')
    out = last_json(project.run(LEAKY, args=(str(MB),), env={"CANARY": CANARY}).stdout)
    assert out == {"size": MB}
    entry, payload = the_pair(function_dir(project, "sidemod.leaky"))
    assert CANARY.encode() in payload.read_bytes()
    assert CANARY.encode() not in entry.read_bytes()  # only in the payload file
    store = str(store_dir(project))

    allowed = cli(project, "scan", "--store", store)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "no secret-shaped strings" in allowed.stdout

    project.write("pyproject.toml", pyproject)  # the allow-list is gone
    found = cli(project, "scan", "--store", store)
    assert found.returncode == 1, found.stdout + found.stderr
    assert str(entry) in found.stdout
    assert "the result contains an OpenAI/Anthropic-style API key" in found.stdout
    assert CANARY not in found.stdout
    as_json = cli(project, "scan", "--store", store, "--json")
    assert as_json.returncode == 1
    assert [(Path(leak["path"]), leak["field"]) for leak in json.loads(as_json.stdout)] == \
        [(entry, "the result")]


def test_this_file_holds_no_secret_shape() -> None:
    from memo_replay.secrets import scanner

    text = Path(__file__).read_text(encoding="utf-8")
    assert scanner().scan_text(text, Path(__file__).name) == []


# -- concurrency ------------------------------------------------------------------------------

ROUNDS = 20
"""Re-records per writer: each one runs the secret scan over 200 KiB under the key's lock."""

WRITER = """
import sys
import sidemod
rounds, first = int(sys.argv[1]), int(sys.argv[2])
for i in range(rounds):
    sidemod.flip("k", 1 + (first + i) % 2)
print("done")
"""

READER = """
import hashlib, json, sys, time
from pathlib import Path
import sidemod
allowed, ready, stop = sys.argv[1].split(","), Path(sys.argv[2]), Path(sys.argv[3])
reads, seen, wrong, errors = 0, set(), [], []
while True:
    stopping = stop.exists()
    try:
        value = sidemod.flip("k", 0)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    else:
        digest = hashlib.sha256(value).hexdigest()
        (seen.add(digest) if digest in allowed else wrong.append(digest))
    reads += 1
    if reads == 1:
        ready.touch()
    if stopping and reads >= 20:
        break
    time.sleep(0.002)  # leave the writers some CPU
print(json.dumps({"reads": reads, "seen": len(seen), "wrong": len(wrong), "errors": errors}))
"""


def test_concurrent_rerecords_never_break_strict_readers(project: Project,
                                                         tmp_path: Path) -> None:
    """3 processes re-record one key 20 times each, alternating two 200 KiB results, while 2
    processes replay it strictly in a loop: every read is whole and one of the two results, and
    the store ends with one entry and one payload file."""
    setup(project)
    values = {which: pattern(200 * 1024, which) for which in (1, 2)}
    allowed = ",".join(hashlib.sha256(v).hexdigest() for v in values.values())
    project.run("import sidemod; sidemod.flip('k', 1)", mode="auto")
    directory = function_dir(project, "sidemod.flip")
    the_pair(directory)

    stop = tmp_path / "stop"
    readers = [project.start(READER, allowed, str(tmp_path / f"ready{i}"), str(stop),
                     mode="replay") for i in range(2)]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
            assert all(r.poll() is None for r in readers), "a reader exited early"
            assert time.monotonic() < deadline, "the readers never started"
            time.sleep(0.01)
        writers = [project.start(WRITER, str(ROUNDS), str(i), mode="record") for i in range(3)]
        assert finish_all(writers) == ["done\n"] * 3
    finally:
        stop.touch()
    reports = [json.loads(out) for out in finish_all(readers)]

    assert [r["errors"] for r in reports] == [[], []]
    assert [r["wrong"] for r in reports] == [0, 0]
    assert any(r["seen"] == 2 for r in reports), reports  # the readers did see re-records
    entry, payload = the_pair(directory)  # one entry, one payload file, nothing left over
    store = project.store
    assert store.verify() == []
    replayed = store.get(entry.stem)
    assert replayed is not None
    assert replayed.load() in values.values()
    assert replayed.payload_file == payload.name
    assert not list((store.path / ".cache" / "locks").iterdir())
