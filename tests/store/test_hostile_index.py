"""A `.cache/` index that memo_replay did not write — committed to a pull request, or damaged —
never runs code or reads a file: its rows are refused unread, the index is dropped and rebuilt,
and the entry files answer (part of issue 14).

A process that only replays a few entries never opens the index at all (issue 15: opening it
costs more than it saves them); one that records does, and reads it for its later lookups —
:func:`_replay_after_recording` is such a process."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.conftest import Project

MODULE = """
from memo_replay import recorded


@recorded
def answer(n: int) -> dict:
    with open("calls.log", "a") as log:
        log.write(f"answer {n}\\n")
    return {"n": n, "double": n * 2, "pad": "x" * 5000}  # large enough to be indexed
"""

CALL = """
import json, sys, warnings
from app import answer
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for n in sys.argv[1:]:
        answer(int(n))  # recorded first: the recording opens the index
    value = {k: v for k, v in answer(21).items() if k != "pad"}
print(json.dumps({"value": value, "warnings": [str(w.message) for w in caught],
                  "index opened": "diskcache" in sys.modules}))
"""


def _setup(project: Project) -> tuple[Path, str]:
    project.write("app.py", MODULE)
    project.run(CALL)  # recorded
    project.run(CALL, mode="replay")  # replayed once: the index now holds the entry
    store = project.root / "fixtures_store"
    [entry] = [p for p in store.glob("*/*.json") if not p.parent.name.startswith(".")]
    return store / ".cache", f"{entry.parent.name}/{entry.name}"


def _replay(project: Project) -> dict[str, object]:
    """A strict replay of the one entry: the index is not opened, whatever it holds."""
    import json

    result: dict[str, object] = json.loads(project.run(CALL, mode="replay").stdout)
    assert result["index opened"] is False
    assert result["warnings"] == []
    return result


_recorded = iter(range(100, 1000))


def _replay_after_recording(project: Project) -> dict[str, object]:
    """``auto``: record a new call (which opens the index), then replay the entry from it."""
    import json

    result: dict[str, object] = json.loads(
        project.run(CALL, args=(str(next(_recorded)),)).stdout)
    assert result["index opened"] is True
    return result


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def test_a_pickled_index_row_never_runs(project: Project, tmp_path: Path) -> None:
    diskcache = pytest.importorskip("diskcache")
    index, name = _setup(project)
    marker = tmp_path / "pwned"
    with diskcache.Cache(str(index)) as cache:
        cache.set(name, _Evil(str(marker)))  # stored in pickle mode
    assert _replay(project)["value"] == {"n": 21, "double": 42}  # not even opened
    out = _replay_after_recording(project)
    assert out["value"] == {"n": 21, "double": 42}
    assert not marker.exists()  # the pickle was never loaded
    assert any("dropped and is rebuilt" in w for w in out["warnings"])  # type: ignore[union-attr]
    assert [c for c in project.calls() if c == "answer 21"] == ["answer 21"]  # never re-run
    # Rebuilt: the next process replays from a clean index, silently.
    again = _replay_after_recording(project)
    assert (again["value"], again["warnings"]) == ({"n": 21, "double": 42}, [])
    assert not marker.exists()


@pytest.mark.parametrize("filename", ["/etc/hostname", "../../../outside.bin", "sub/../../x"])
def test_an_index_row_naming_a_file_outside_the_index_is_refused(project: Project,
                                                                 filename: str) -> None:
    index, name = _setup(project)
    with sqlite3.connect(index / "cache.db") as db:
        changed = db.execute("UPDATE Cache SET mode = 2, filename = ?, value = NULL "
                             "WHERE key = ?", (filename, name)).rowcount
    assert changed == 1
    assert _replay(project)["value"] == {"n": 21, "double": 42}  # not even opened
    out = _replay_after_recording(project)
    assert out["value"] == {"n": 21, "double": 42}
    assert any("dropped and is rebuilt" in w for w in out["warnings"])  # type: ignore[union-attr]


def test_a_damaged_index_payload_is_not_used(project: Project) -> None:
    index, name = _setup(project)
    with sqlite3.connect(index / "cache.db") as db:
        [(value,)] = db.execute("SELECT value FROM Cache WHERE key = ?", (name,)).fetchall()
        forged = bytes(value).replace(b'"double":42', b'"double":43')
        assert forged != bytes(value)
        db.execute("UPDATE Cache SET value = ? WHERE key = ?", (forged, name))
    # The forged payload no longer matches the checksum in its own header: never returned.
    assert _replay(project)["value"] == {"n": 21, "double": 42}
    assert _replay_after_recording(project)["value"] == {"n": 21, "double": 42}
