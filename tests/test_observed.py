"""Observed dependencies: the project code that ran and the project files read while a call was
recorded are checked on every replay (memo_replay/keys/observed.py).

Every step runs in a fresh interpreter inside a real temporary project: record, edit, then
strict replay (``MEMO_MODE=replay``), which must fail naming what changed — or replay, when
what changed was not used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from memo_replay.keys.components import Components
from memo_replay.keys.observed import Observed, ObservedCode
from memo_replay.store.entry import (
    INLINE_FORMAT,
    OBSERVED_FORMAT,
    PAYLOAD_FILE_FORMAT,
    PAYLOAD_FILE_THRESHOLD,
    Payload,
    Recording,
)
from tests.conftest import entry_files

if TYPE_CHECKING:
    from tests.conftest import Project

TRANSLATOR = """
from pathlib import Path

from memo_replay import recorded

from app import handlers

HERE = Path(__file__).resolve().parent


@recorded
def translate(name: str, style: str = "loud") -> str:
    with open(HERE.parent / "calls.log", "a") as log:  # written, not read: not a dependency
        log.write(f"translate {name} {style}\\n")
    text = (HERE.parent / "examples" / name).read_text()
    # Dispatch by name: static analysis of this function cannot tell which handler runs.
    return getattr(handlers, style)(text)


@recorded(observe_files=False)
def unwatched(name: str) -> str:
    with open(HERE.parent / "calls.log", "a") as log:
        log.write(f"unwatched {name}\\n")
    return (HERE.parent / "examples" / name).read_text().upper()


@recorded
def outside(path: str) -> str:
    with open(HERE.parent / "calls.log", "a") as log:
        log.write(f"outside {path}\\n")
    return Path(path).read_text()
"""

HANDLERS = """
def loud(text: str) -> str:
    return text.upper()


def quiet(text: str) -> str:
    return text.lower()
"""

CALL = """
import json, sys
from app.translator import translate
print(json.dumps(translate(*sys.argv[1:])))
"""


def setup(project: Project) -> None:
    project.write("app/__init__.py", "")
    project.write("app/translator.py", TRANSLATOR)
    project.write("app/handlers.py", HANDLERS)
    project.write("examples/door.dy", "machine Door\n")
    project.write("examples/light.dy", "machine Light\n")


def call(project: Project, *args: str, mode: str = "auto", check: bool = True) -> str:
    result = project.run(CALL, args=args, mode=mode, check=check)
    return result.stdout.strip() if result.returncode == 0 else result.stderr


def the_entry(project: Project) -> dict[str, object]:
    [path] = [p for p in entry_files(project.root / "fixtures_store")
              if p.parent.name == "app.translator.translate"]
    document: dict[str, object] = json.loads(path.read_text())
    return document


def test_a_file_read_during_the_recording_is_a_dependency(project: Project) -> None:
    setup(project)
    assert call(project, "door.dy") == json.dumps("MACHINE DOOR\n")
    observed = the_entry(project)["observed"]
    assert isinstance(observed, dict)
    assert list(observed["files"]) == ["examples/door.dy"]  # not calls.log: it was written

    assert call(project, "door.dy", mode="replay") == json.dumps("MACHINE DOOR\n")
    project.write("examples/light.dy", "machine Lamp\n")  # not read by this call
    assert call(project, "door.dy", mode="replay") == json.dumps("MACHINE DOOR\n")

    project.write("examples/door.dy", "machine Gate\n")
    failure = call(project, "door.dy", mode="replay", check=False)
    assert "ReplayMiss" in failure
    assert "file `examples/door.dy` (read during the recording) changed" in failure
    assert project.calls() == ["translate door.dy loud"]  # strict replay never called it

    assert call(project, "door.dy") == json.dumps("MACHINE GATE\n")  # auto: recorded again
    assert project.calls() == ["translate door.dy loud"] * 2
    assert call(project, "door.dy", mode="replay") == json.dumps("MACHINE GATE\n")


def test_code_that_ran_is_a_dependency_even_when_static_analysis_cannot_see_it(
        project: Project) -> None:
    setup(project)
    call(project, "door.dy", "loud")
    observed = the_entry(project)["observed"]
    assert isinstance(observed, dict)
    assert observed["code"] == {"app.handlers.loud": {
        "file": "app/handlers.py", "qualname": "loud",
        "hash": observed["code"]["app.handlers.loud"]["hash"]}}  # type: ignore[index]

    project.replace("app/handlers.py", "return text.lower()", "return text.casefold()")
    assert call(project, "door.dy", "loud", mode="replay") == json.dumps("MACHINE DOOR\n")

    project.replace("app/handlers.py", "return text.upper()", "return text.upper() + '!'")
    failure = call(project, "door.dy", "loud", mode="replay", check=False)
    assert "`app.handlers.loud`, which ran during the recording, changed" in failure


def test_cosmetic_edits_of_code_that_ran_keep_the_recording(project: Project) -> None:
    setup(project)
    call(project, "door.dy")
    project.write("app/handlers.py", '''
        # A comment, a docstring and blank lines are not the code.
        def loud(text: str) -> str:
            """Shout."""

            return text.upper()


        def quiet(text: str) -> str:
            return text.lower()
        ''')
    assert call(project, "door.dy", mode="replay") == json.dumps("MACHINE DOOR\n")


def test_code_that_ran_and_is_gone_is_named(project: Project) -> None:
    setup(project)
    call(project, "door.dy")
    project.replace("app/handlers.py", "def loud(", "def shout(")
    failure = call(project, "door.dy", mode="replay", check=False)
    assert "`app.handlers.loud`, which ran during the recording, no longer exists" in failure


def test_observing_files_can_be_turned_off(project: Project) -> None:
    setup(project)
    project.run("from app.translator import unwatched; unwatched('door.dy')")
    [path] = [p for p in entry_files(project.root / "fixtures_store")
              if p.parent.name == "app.translator.unwatched"]
    assert "observed" not in json.loads(path.read_text())
    project.write("examples/door.dy", "machine Gate\n")
    replayed = project.run("from app.translator import unwatched; print(unwatched('door.dy'))",
                           mode="replay")
    assert replayed.stdout.strip() == "MACHINE DOOR"  # documented: the file is not watched


def test_observing_files_can_be_turned_off_in_the_configuration(project: Project) -> None:
    setup(project)
    with (project.root / "pyproject.toml").open("a") as fh:
        fh.write("\n[tool.memo_replay]\nobserve_files = false\n")
    call(project, "door.dy")
    observed = the_entry(project)["observed"]
    assert isinstance(observed, dict)
    assert observed["files"] == {}
    assert list(observed["code"]) == ["app.handlers.loud"]  # code is always observed


def test_a_file_outside_the_project_is_never_observed(project: Project,
                                                       tmp_path: Path) -> None:
    setup(project)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("far away\n")
    project.run(f"from app.translator import outside; outside({str(outside)!r})")
    [path] = [p for p in entry_files(project.root / "fixtures_store")
              if p.parent.name == "app.translator.outside"]
    assert "observed" not in json.loads(path.read_text())


def test_show_and_explain_name_the_observed_dependencies(project: Project) -> None:
    setup(project)
    call(project, "door.dy")
    key = project.run("from app.translator import translate; "
                      "print(translate.memo.key('door.dy'))").stdout.strip()
    shown = project.run(f"from memo_replay.cli import main; main(['show', '{key}'])").stdout
    assert "ran          app.handlers.loud  (app/handlers.py)" in shown
    assert "read         examples/door.dy" in shown
    as_json = json.loads(project.run(
        f"from memo_replay.cli import main; main(['show', '{key}', '--json'])").stdout)
    assert list(as_json["observed"]["files"]) == ["examples/door.dy"]

    project.write("examples/door.dy", "machine Gate\n")
    explained = project.run(
        "from app.translator import translate\n"
        "e = translate.memo.explain('door.dy')\n"
        "print(e.matched, [d.message for d in e.differences])\n"
        "print(e)").stdout
    assert "False ['file `examples/door.dy` (read during the recording) changed']" in explained
    assert "no longer serves" in explained


def test_an_entry_naming_a_file_outside_the_root_never_replays(project: Project) -> None:
    """A hand-edited (or hostile) entry cannot make a replay read outside the project: a path
    leaving the root counts as changed."""
    setup(project)
    call(project, "door.dy")
    [path] = [p for p in entry_files(project.root / "fixtures_store")
              if p.parent.name == "app.translator.translate"]
    document = json.loads(path.read_text())
    document["observed"]["files"] = {"../secret.txt": "0" * 32}
    document["observed"]["code"]["app.handlers.loud"]["file"] = "../evil.py"
    path.write_text(json.dumps(document, indent=2) + "\n")
    failure = call(project, "door.dy", mode="replay", check=False)
    assert "file `../secret.txt` is outside the project" in failure
    assert "`app.handlers.loud`, which ran during the recording, no longer exists" in failure


@pytest.mark.parametrize(("observed", "payload_size", "expected"), [
    (None, 10, INLINE_FORMAT),
    (None, PAYLOAD_FILE_THRESHOLD + 1, PAYLOAD_FILE_FORMAT),
    (Observed.of({}, {}), 10, INLINE_FORMAT),  # nothing observed: nothing to refuse
    (Observed.of({}, {"a.txt": "0" * 32}), 10, OBSERVED_FORMAT),
    (Observed.of({"m.f": ObservedCode("m.py", "f", "0" * 32)}, {}),
     PAYLOAD_FILE_THRESHOLD + 1, OBSERVED_FORMAT),
])
def test_the_format_is_the_oldest_reader_that_understands_the_entry(
        observed: Observed | None, payload_size: int, expected: int) -> None:
    from memo_replay.keys.code import CodeFingerprint
    from memo_replay.serializers import registry

    serializer, type_path = registry.choose(b"x", None, function="m.f", annotation=None,
                                            pickle_allowed=False)
    payload = Payload.create(serializer, type_path, "binary", b"x" * payload_size)
    code = CodeFingerprint("0" * 32, "source", "def f(): ...", "0" * 32)
    recording = Recording("m.f", "0" * 32, Components(code, {}, {}, None), {}, payload, 0.1,
                          observed)
    document = recording.document()
    assert document["format"] == expected
    assert ("observed" in document) == (expected == OBSERVED_FORMAT)
    if expected == OBSERVED_FORMAT:
        assert observed is not None
        assert Observed.from_document(document["observed"]) == observed


NESTED = """
from pathlib import Path

from memo_replay import recorded

HERE = Path(__file__).resolve().parent


@recorded
def parse(name: str, style: str = "strip") -> str:
    with open(HERE / "calls.log", "a") as log:
        log.write(f"parse {name}\\n")
    import nested_handlers

    return getattr(nested_handlers, style)((HERE / "examples" / name).read_text())


@recorded
def pipeline(name: str) -> str:
    with open(HERE / "calls.log", "a") as log:
        log.write(f"pipeline {name}\\n")
    return parse(name).upper()
"""


def test_what_a_nested_recording_read_is_a_dependency_of_the_outer_one(project: Project) -> None:
    """The outer call replays without running the inner one, so it must carry the inner
    recording's dependencies: whether the inner call was recorded inside it, or replayed."""
    project.write("nested.py", NESTED)
    project.write("nested_handlers.py", "def strip(text):\n    return text.strip()\n")
    project.write("examples/door.dy", "machine Door\n")
    run = "from nested import pipeline; print(pipeline('door.dy'))"
    assert project.run(run).stdout == "MACHINE DOOR\n"  # both recorded, one inside the other
    project.write("examples/door.dy", "machine Gate\n")
    failure = project.run(run, mode="replay", check=False)
    assert "file `examples/door.dy` (read during the recording) changed" in failure.stderr
    # Code that ran only when the inner call was recorded (picked by getattr: no static trace).
    project.write("examples/door.dy", "machine Door\n")
    project.write("nested_handlers.py", "def strip(text):\n    return text.strip() + '.'\n")
    failure = project.run(run, mode="replay", check=False)
    assert "`nested_handlers.strip`, which ran during the recording, changed" in failure.stderr

    # The inner call recorded first and replayed while the outer one is recorded.
    project.write("nested_handlers.py", "def strip(text):\n    return text.strip()\n")
    (project.root / "fixtures_store").rename(project.root / "old_store")
    project.run("from nested import parse; parse('door.dy')")
    assert project.run(run).stdout == "MACHINE DOOR\n"
    assert project.calls()[-2:] == ["parse door.dy", "pipeline door.dy"]  # parse replayed
    project.write("nested_handlers.py", "def strip(text):\n    return text.strip() + '!'\n")
    failure = project.run(run, mode="replay", check=False)
    assert "`nested_handlers.strip`, which ran during the recording, changed" in failure.stderr
    project.write("nested_handlers.py", "def strip(text):\n    return text.strip()\n")
    project.write("examples/door.dy", "machine Gate\n")
    failure = project.run(run, mode="replay", check=False)
    assert "file `examples/door.dy` (read during the recording) changed" in failure.stderr
