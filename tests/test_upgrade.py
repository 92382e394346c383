"""Keys across checkouts and releases: where the project is checked out never counts, and a
recording made by a release with another key format is a miss that says so (never a silent
replay)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from memo_replay.keys.code import CODE_FRAMING_VERSION
from tests.conftest import entry_files

if TYPE_CHECKING:
    from tests.conftest import Project

MODULE = """
from pathlib import Path

from memo_replay import recorded

PROMPTS = Path(__file__).parent / "prompts"


@recorded
def greet(name: str) -> str:
    template = (Path(__file__).parent / "prompts" / "greet.txt").read_text()
    return template.format(name=name) + str(PROMPTS.name)
"""

CALL = "from app import greet; print(greet('Ada'))"


def test_a_function_reading_its_own_path_replays_in_another_checkout(project: Project,
                                                                      tmp_path: Path) -> None:
    project.write("app.py", MODULE)
    project.write("prompts/greet.txt", "Hello, {name}! ")
    assert project.run(CALL).stdout == "Hello, Ada! prompts\n"
    elsewhere = project.copy_to(tmp_path / "another" / "checkout")
    # `__file__` is an absolute path: it counts relative to the project root, or every clone
    # at another path would miss everything.
    assert elsewhere.run(CALL, mode="replay").stdout == "Hello, Ada! prompts\n"


def test_a_recording_of_an_older_key_format_misses_and_says_why(project: Project) -> None:
    project.write("app.py", MODULE)
    project.write("prompts/greet.txt", "Hello, {name}! ")
    project.run(CALL)
    [path] = entry_files(project.root / "fixtures_store")
    # What an older release wrote: no `framing` field (format 1), another code hash, so
    # another key.
    document = json.loads(path.read_text())
    del document["components"]["code"]["framing"]
    document["components"]["code"]["hash"] = "0" * 32
    old_key = "1" * 32
    document["key"] = old_key
    path.unlink()
    (path.parent / f"{old_key}.json").write_text(json.dumps(document, indent=2) + "\n")

    failure = project.run(CALL, mode="replay", check=False)
    assert failure.returncode != 0
    assert "ReplayMiss" in failure.stderr
    assert f"recorded by an older memo_replay (key format 1, now {CODE_FRAMING_VERSION})" \
        in failure.stderr
    assert "not your code" in failure.stderr
    assert project.run(CALL, mode="auto").stdout == "Hello, Ada! prompts\n"  # re-recorded once
