"""The entry file format: deterministic, self-describing, machine-independent JSON.

Every recording here is made by a real ``@recorded`` function in a throwaway project, run in a
fresh interpreter (``project.run``), and the entry file is then read back byte for byte.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xxhash import xxh3_128_hexdigest

import memo_replay
from memo_replay import Store
from memo_replay.store.entry import OBSERVED_FORMAT

if TYPE_CHECKING:
    from conftest import Project

MODULE = '''
from pathlib import Path

from memo_replay import recorded

HERE = Path(__file__).parent


def _log(name: str) -> None:
    with open(HERE / "calls.log", "a") as fh:
        fh.write(name + "\\n")


@recorded(files=["{path}"])
def measure(path: Path, factor: int = 2) -> dict:
    _log("measure")
    return {"lines": len(path.read_text().splitlines()) * factor, "name": path.name}


@recorded
def answer(question: str) -> dict:
    _log("answer")
    # value.txt is deliberately NOT part of the key: it stands for a changing remote service.
    return {"question": question, "value": (HERE / "value.txt").read_text().strip()}


@recorded
def summarize(text: str, blob: bytes) -> list:
    _log("summarize")
    return [len(text), len(blob)]
'''

RUN_MEASURE = """
import json
from pathlib import Path
import entry_mod
result = entry_mod.measure(Path("data/input.txt").resolve())
print(json.dumps({"result": result,
                  "key": entry_mod.measure.memo.key(Path("data/input.txt").resolve())}))
"""

RUN_ANSWER = """
import json
import entry_mod
print(json.dumps(entry_mod.answer("life")))
"""

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def _setup(project: Project) -> None:
    project.write("entry_mod.py", MODULE)
    project.write("data/input.txt", "one\ntwo\nthree\n")
    project.write("value.txt", "42\n")


def _entries(project: Project) -> list[Path]:
    store = project.root / "fixtures_store"
    return sorted(p for p in store.glob("*/*.json") if not p.parent.name.startswith("."))


def _last_json(stdout: str) -> Any:
    return json.loads(stdout.strip().splitlines()[-1])


def _assert_sorted(mapping: dict[str, Any], where: str) -> None:
    assert list(mapping) == sorted(mapping), f"keys of {where} are not sorted: {list(mapping)}"


def test_entry_file_is_deterministic_json(project: Project) -> None:
    _setup(project)
    project.run(RUN_MEASURE)
    [path] = _entries(project)
    raw = path.read_bytes()
    document = json.loads(raw)

    # Exactly the canonical rendering: indent 2, key order as written, one trailing newline.
    assert raw == (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    assert raw.endswith(b"}\n")
    assert not raw.endswith(b"\n\n")
    assert b"\r" not in raw
    assert b"\t" not in raw
    assert raw.splitlines()[1].startswith(b'  "')  # indent of 2 at the envelope level

    _assert_sorted(document, "the envelope")
    _assert_sorted(document["components"], "components")
    _assert_sorted(document["components"]["code"], "components.code")
    _assert_sorted(document["components"]["arguments"], "components.arguments")
    _assert_sorted(document["result"], "result")
    _assert_sorted(document["versions"], "versions")


def test_entry_is_self_describing(project: Project) -> None:
    _setup(project)
    out = _last_json(project.run(RUN_MEASURE).stdout)
    [path] = _entries(project)
    document = json.loads(path.read_text())

    assert set(document) >= {"format", "function", "key", "components", "arguments", "result",
                             "recorded_at", "duration_s", "versions"}
    # format 3: the code that ran during the recording is observed (2: a payload file, 1: none)
    assert document["format"] == OBSERVED_FORMAT
    assert list(document["observed"]["code"]) == ["entry_mod._log"]
    assert document["function"] == "entry_mod.measure"
    assert path.parent.name == "entry_mod.measure"
    assert document["key"] == out["key"] == path.stem
    assert HEX32.match(document["key"])

    components = document["components"]
    code = components["code"]
    assert HEX32.match(code["hash"])
    assert isinstance(code["source"], list)
    assert all(isinstance(line, str) and "\n" not in line for line in code["source"])
    assert code["source"][0].startswith("def measure(")  # normalized: decorator stripped
    assert any("_log('measure')" in line or '_log("measure")' in line for line in code["source"])
    assert set(components["arguments"]) == {"path", "factor"}
    assert all(HEX32.match(h) for h in components["arguments"].values())
    assert list(components["files"]) == ["data/input.txt"]
    assert HEX32.match(components["files"]["data/input.txt"])

    assert document["arguments"] == {"path": "data/input.txt", "factor": 2}

    result = document["result"]
    assert result["serializer"] == "json"
    assert result["serializer_version"] == 1
    assert result["encoding"] == "json"
    assert result["payload"] == out["result"] == {"lines": 6, "name": "input.txt"}
    canonical = json.dumps(result["payload"], ensure_ascii=False, separators=(",", ":"))
    assert result["checksum"] == xxh3_128_hexdigest(canonical.encode())
    assert result["size"] == len(canonical)

    recorded_at = document["recorded_at"]
    assert recorded_at.endswith("Z")
    parsed = dt.datetime.fromisoformat(recorded_at.replace("Z", "+00:00"))
    assert parsed.utcoffset() == dt.timedelta(0)
    assert isinstance(document["duration_s"], float)
    assert document["duration_s"] >= 0
    assert document["versions"]["python"] == platform.python_version()
    assert document["versions"]["memo_replay"] == memo_replay.__version__


def test_entry_reads_back_through_the_store_api(project: Project) -> None:
    _setup(project)
    out = _last_json(project.run(RUN_MEASURE).stdout)
    [path] = _entries(project)
    entry = Store(project.root / "fixtures_store").get(out["key"])
    assert entry is not None
    assert entry.path == path
    assert entry.key == out["key"]
    assert entry.function == "entry_mod.measure"
    assert entry.recorded_at is not None
    assert entry.recorded_at.tzinfo is not None
    assert dict(entry.arguments) == {"path": "data/input.txt", "factor": 2}
    assert list(entry.files) == ["data/input.txt"]
    assert entry.serializer == "json"
    assert entry.size == len(json.dumps(out["result"], separators=(",", ":")))
    assert entry.duration_s >= 0
    assert entry.load() == out["result"]
    assert entry.source.startswith("def measure(")


def test_entry_holds_no_absolute_path_of_the_machine(project: Project, tmp_path: Path) -> None:
    _setup(project)
    project.run(RUN_MEASURE)  # the argument is an *absolute* Path inside the project
    [path] = _entries(project)
    text = path.read_text()
    for forbidden in {str(tmp_path), os.path.realpath(tmp_path), str(project.root),
                      os.path.realpath(project.root)}:
        assert forbidden not in text
    assert '"data/input.txt"' in text


def test_argument_preview_is_bounded(project: Project) -> None:
    _setup(project)
    project.run("""
        import entry_mod
        entry_mod.summarize("x" * 100_000, b"\\x00" * 50_000)
    """)
    [path] = _entries(project)
    document = json.loads(path.read_text())
    preview = document["arguments"]
    assert isinstance(preview["text"], str)
    assert len(preview["text"]) < 1_000
    assert "100000" in preview["text"]
    assert isinstance(preview["blob"], str)
    assert "50000" in preview["blob"]
    assert path.stat().st_size < 10_000  # neither argument is copied whole


def test_rerecord_of_identical_result_leaves_bytes_and_mtime(project: Project) -> None:
    _setup(project)
    first = _last_json(project.run(RUN_ANSWER).stdout)
    [path] = _entries(project)
    before_bytes, before = path.read_bytes(), path.stat()

    second = _last_json(project.run(RUN_ANSWER, mode="record").stdout)
    assert second == first
    assert project.calls() == ["answer", "answer"]  # really called again
    after = path.stat()
    assert path.read_bytes() == before_bytes
    assert after.st_mtime_ns == before.st_mtime_ns
    assert after.st_ino == before.st_ino
    assert _entries(project) == [path]
    assert not list(path.parent.glob(".*.tmp"))


def test_replay_never_touches_the_entry_file(project: Project) -> None:
    _setup(project)
    project.run(RUN_ANSWER)
    [path] = _entries(project)
    before_bytes, before = path.read_bytes(), path.stat()
    project.run(RUN_ANSWER, mode="replay")
    project.run(RUN_ANSWER, mode="auto")
    assert project.calls() == ["answer"]
    assert path.read_bytes() == before_bytes
    assert path.stat().st_mtime_ns == before.st_mtime_ns


def test_rerecord_of_changed_result_rewrites_entry(project: Project) -> None:
    _setup(project)
    project.run(RUN_ANSWER)
    [path] = _entries(project)
    old = json.loads(path.read_text())

    project.write("value.txt", "43\n")
    project.run(RUN_ANSWER, mode="record")
    assert _entries(project) == [path]  # same key, same file
    new_raw = path.read_bytes()
    new = json.loads(new_raw)
    assert new["result"]["payload"] == {"question": "life", "value": "43"}
    assert new["result"]["checksum"] != old["result"]["checksum"]
    assert new_raw == (json.dumps(new, indent=2, ensure_ascii=False) + "\n").encode()
    assert Store(project.root / "fixtures_store").verify() == []

    replayed = _last_json(project.run(RUN_ANSWER, mode="replay").stdout)
    assert replayed == {"question": "life", "value": "43"}
    assert project.calls() == ["answer", "answer"]
