"""Record in one interpreter, replay in another: what keeps a recording and what invalidates it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Project

WORK = '''
"""The project's slow function."""

from memo_replay import recorded

from . import helpers, prompts


@recorded(files=["data/{name}.txt"])
def translate(name: str, model: str = "small", options: dict | None = None) -> dict:
    """Translate the data file `name`."""
    with open("calls.log", "a") as fh:
        fh.write(f"translate {name} {model}\\n")
    with open(f"data/{name}.txt") as fh:
        text = fh.read()
    prompt = prompts.PROMPT.format(text=helpers.normalize(text), model=model)
    return {"prompt": prompt, "length": len(text), "options": options or {}}
'''

HELPERS = '''
def normalize(text):
    return text.strip()
'''

PROMPTS = '''
PROMPT = "Translate for {model}: {text}"
'''

CALL = "from pkg.work import translate; print(translate('a')['prompt'])"


@pytest.fixture
def app(project: Project) -> Project:
    """A project with `pkg.work.translate`, its helper, its prompt constant and a data file."""
    project.write("pkg/__init__.py", "")
    project.write("pkg/work.py", WORK)
    project.write("pkg/helpers.py", HELPERS)
    project.write("pkg/prompts.py", PROMPTS)
    project.write("data/a.txt", "  hello  \n")
    project.write("data/b.txt", "other\n")
    return project


def entry_files(project: Project, store: str = "fixtures_store") -> list[Path]:
    root = project.root / store
    return sorted(p for p in root.rglob("*.json") if ".cache" not in p.parts)


def record(project: Project, code: str = CALL) -> str:
    out = project.run(code, mode="auto")
    return out.stdout


def test_record_then_replay_in_another_interpreter(app: Project) -> None:
    assert record(app) == "Translate for small: hello\n"
    assert app.calls() == ["translate a small"]
    (entry,) = entry_files(app)
    assert entry.parent.name == "pkg.work.translate"
    document = json.loads(entry.read_text())
    assert document["function"] == "pkg.work.translate"
    assert document["components"]["files"].keys() == {"data/a.txt"}

    replayed = app.run(CALL, mode="replay")
    assert replayed.stdout == "Translate for small: hello\n"
    assert app.calls() == ["translate a small"]  # not called again
    assert entry_files(app) == [entry]


def test_replay_miss_in_a_fresh_interpreter(app: Project) -> None:
    # Outside pytest (no PYTEST_CURRENT_TEST), the command re-runs the script itself.
    result = app.run(CALL, mode="replay", check=False, env={"PYTEST_CURRENT_TEST": ""})
    assert result.returncode != 0
    assert "memo_replay.errors.ReplayMiss" in result.stderr
    assert "no recording of `pkg.work.translate`" in result.stderr
    assert result.stderr.rstrip().endswith(
        f"To record it: MEMO_MODE=record python -c {shlex.quote(CALL)}")
    assert app.calls() == []
    assert entry_files(app) == []


@pytest.mark.parametrize(("old", "new"), [
    ('    """Translate the data file `name`."""\n', '    """Reworded docstring."""\n'),
    ('    """Translate the data file `name`."""\n', ""),
    ("    with open(f\"data/{name}.txt\") as fh:\n",
     "    # read the input\n\n    with open(f'data/{name}.txt') as fh:  # same thing\n"),
    ('def translate(name: str, model: str = "small", options: dict | None = None) -> dict:\n',
     'def translate(\n    name: str,\n    model: str = "small",\n    options: dict | None = None,\n'
     ') -> dict:\n'),
], ids=["docstring", "no-docstring", "comment-quotes-blank-line", "formatting"])
def test_cosmetic_edits_keep_replaying(app: Project, old: str, new: str) -> None:
    record(app)
    app.replace("pkg/work.py", old, new)
    app.replace("pkg/helpers.py", "def normalize(text):\n",
                "def normalize(text):\n    '''Strip.'''  # a comment\n")
    replayed = app.run(CALL, mode="replay")
    assert replayed.stdout == "Translate for small: hello\n"
    assert app.calls() == ["translate a small"]
    assert len(entry_files(app)) == 1


EDITS = {
    "body": ("pkg/work.py", '"length": len(text)', '"length": len(text) + 1',
             "source of `pkg.work.translate` changed"),
    "helper": ("pkg/helpers.py", "text.strip()", "text.strip().upper()",
               "helper `pkg.helpers.normalize` changed"),
    "constant": ("pkg/prompts.py", "Translate for", "Please translate for",
                 "constant `pkg.prompts.PROMPT` changed"),
    "signature": ("pkg/work.py", "options: dict | None = None)",
                  "options: dict | None = None, temperature: float = 0.0)",
                  "source of `pkg.work.translate` changed"),
    "default": ("pkg/work.py", 'model: str = "small"', 'model: str = "large"',
                "source of `pkg.work.translate` changed"),
    "declared-file": ("data/a.txt", "hello", "hello there", "file `data/a.txt` changed"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edits_invalidate(app: Project, edit: str) -> None:
    path, old, new, message = EDITS[edit]
    record(app)
    (first,) = entry_files(app)
    app.replace(path, old, new)

    strict = app.run(CALL, mode="replay", check=False)
    assert strict.returncode != 0
    assert "ReplayMiss" in strict.stderr
    assert message in strict.stderr
    assert "The closest recording" in strict.stderr
    assert "To re-record: MEMO_MODE=record python" in strict.stderr
    assert app.calls() == ["translate a small"]  # strict replay never calls

    again = app.run(CALL, mode="auto")
    assert len(app.calls()) == 2  # auto re-records
    entries = entry_files(app)
    assert len(entries) == 2
    assert first in entries

    assert app.run(CALL, mode="replay").stdout == again.stdout
    assert len(app.calls()) == 2


def test_source_miss_shows_a_diff(app: Project) -> None:
    record(app)
    app.replace("pkg/work.py", '"length": len(text)', '"size": len(text)')
    stderr = app.run(CALL, mode="replay", check=False).stderr
    assert "--- recorded" in stderr
    assert "+++ current" in stderr
    assert "-    return {'prompt': prompt, 'length': len(text)" in stderr
    assert "+    return {'prompt': prompt, 'size': len(text)" in stderr


def test_only_the_edited_input_re_records(app: Project) -> None:
    both = ("from pkg.work import translate\n"
            "print(translate('a')['length'], translate('b')['length'])")
    record(app, both)
    assert sorted(app.calls()) == ["translate a small", "translate b small"]
    app.replace("data/b.txt", "other", "another")
    app.run(both, mode="auto")
    assert sorted(app.calls()) == ["translate a small", "translate b small",
                                   "translate b small"]


def test_binding_variants_share_one_entry(app: Project) -> None:
    calls = """
        from pkg.work import translate
        results = [
            translate("a"),
            translate(name="a"),
            translate("a", "small"),
            translate("a", model="small"),
            translate(model="small", name="a", options=None),
        ]
        assert all(r == results[0] for r in results)
        print(translate.memo.key("a") == translate.memo.key(name="a", model="small"))
    """
    out = app.run(calls, mode="auto")
    assert out.stdout == "True\n"
    assert app.calls() == ["translate a small"]
    assert len(entry_files(app)) == 1
    # `1`, `1.0`, `True`, `"1"` would differ; so does an explicit non-default value.
    app.run("from pkg.work import translate; translate('a', model='large')", mode="auto")
    assert len(entry_files(app)) == 2


def test_dict_and_set_order_and_hash_seed_do_not_matter(app: Project) -> None:
    app.replace("pkg/work.py", '"options": options or {}', '"options": sorted(options or {})')
    recording = """
        from pkg.work import translate
        options = {"temperature": 0, "tags": {"x", "y", "z", "w"}, "stop": ["a", "b"]}
        print(translate("a", options=options)["options"])
    """
    replaying = """
        from pkg.work import translate
        options = {}
        options["stop"] = ["a", "b"]
        options["tags"] = set(reversed(["x", "y", "z", "w"]))
        options["temperature"] = 0
        print(translate("a", options=options)["options"])
    """
    first = app.run(recording, mode="auto", env={"PYTHONHASHSEED": "1"})
    second = app.run(replaying, mode="replay", env={"PYTHONHASHSEED": "2"})
    assert first.stdout == second.stdout == "['stop', 'tags', 'temperature']\n"
    assert app.calls() == ["translate a small"]
    assert len(entry_files(app)) == 1


def test_a_copy_at_another_path_replays_strictly(app: Project, tmp_path: Path) -> None:
    record(app)
    (app.root / "calls.log").unlink()
    copy = app.copy_to(tmp_path / "elsewhere" / "checkout")
    assert not (copy.root / "fixtures_store" / ".cache").exists()
    result = copy.run(CALL, mode="replay")
    assert result.stdout == "Translate for small: hello\n"
    assert copy.calls() == []
    assert [p.name for p in entry_files(copy)] == [p.name for p in entry_files(app)]


def test_replay_writes_nothing_into_entry_files(app: Project) -> None:
    record(app)
    (entry,) = entry_files(app)
    before = entry.read_bytes(), entry.stat().st_mtime_ns
    app.run(CALL, mode="replay")
    app.run(CALL, mode="auto")
    assert (entry.read_bytes(), entry.stat().st_mtime_ns) == before


def test_re_recording_an_identical_result_changes_no_byte(app: Project) -> None:
    record(app)
    (entry,) = entry_files(app)
    before = entry.read_bytes()
    app.run(CALL, mode="record")
    assert app.calls() == ["translate a small"] * 2
    assert entry.read_bytes() == before


def test_truncated_entry_is_never_replayed(app: Project) -> None:
    record(app)
    (entry,) = entry_files(app)
    original = entry.read_bytes()
    entry.write_bytes(original[: len(original) // 2])

    strict = app.run(CALL, mode="replay", check=False)
    assert strict.returncode != 0
    assert "CorruptEntry" in strict.stderr
    assert f"corrupt recording {entry}" in strict.stderr
    assert app.calls() == ["translate a small"]

    auto = app.run(CALL, mode="auto")
    assert auto.stdout == "Translate for small: hello\n"
    assert "MemoReplayWarning" in auto.stderr
    assert "re-recording it" in auto.stderr
    assert app.calls() == ["translate a small"] * 2
    assert json.loads(entry.read_text())["key"] == entry.stem  # whole again

    assert app.run(CALL, mode="replay").stdout == "Translate for small: hello\n"
    assert len(app.calls()) == 2


def test_edited_payload_is_never_replayed(app: Project) -> None:
    record(app)
    (entry,) = entry_files(app)
    document = json.loads(entry.read_text())
    document["result"]["payload"]["length"] = 999
    entry.write_text(json.dumps(document, indent=2) + "\n")
    strict = app.run(CALL, mode="replay", check=False)
    assert strict.returncode != 0
    assert "checksum" in strict.stderr
    assert "999" not in strict.stdout


def test_ci_without_memo_mode_replays_strictly(app: Project) -> None:
    missing = app.run(CALL, mode=None, env={"CI": "true"}, check=False)
    assert missing.returncode != 0
    assert "ReplayMiss" in missing.stderr
    assert "(replay mode)" in missing.stderr
    assert app.calls() == []

    record(app)
    replayed = app.run(CALL, mode=None, env={"CI": "true"})
    assert replayed.stdout == "Translate for small: hello\n"
    assert app.calls() == ["translate a small"]

    app.replace("pkg/prompts.py", "Translate for", "Translate, for")
    stale = app.run(CALL, mode=None, env={"CI": "true"}, check=False)
    assert stale.returncode != 0
    assert "constant `pkg.prompts.PROMPT` changed" in stale.stderr
    assert app.calls() == ["translate a small"]


def test_no_ci_without_memo_mode_is_auto(app: Project) -> None:
    app.run(CALL, mode=None)
    app.run(CALL, mode=None, env={"CI": "false"})
    assert app.calls() == ["translate a small"]


def test_missing_declared_file_is_an_error(app: Project) -> None:
    result = app.run("from pkg.work import translate; translate('nope')", check=False)
    assert result.returncode != 0
    assert "MissingDeclaredFile" in result.stderr
    assert "data/{name}.txt" in result.stderr
    assert app.calls() == []


def test_script_run_as_main_and_imported_share_recordings(project: Project) -> None:
    project.write("tools/__init__.py", "")
    project.write("tools/job.py", '''
        from memo_replay import recorded

        @recorded
        def job(x: int) -> int:
            with open("calls.log", "a") as fh:
                fh.write(f"job {x}\\n")
            return x + 1

        if __name__ == "__main__":
            print(job(1))
    ''')
    project.run_module("tools.job", mode="auto")
    assert project.calls() == ["job 1"]
    out = project.run("from tools.job import job; print(job(1))", mode="replay")
    assert out.stdout == "2\n"
    assert project.calls() == ["job 1"]


def test_callable_we_do_not_own_records_into_the_calling_project(project: Project) -> None:
    # Regression: the root (and so the store) of `recorded(json.dumps)` was found from the
    # library's location, e.g. `<python install>/fixtures_store`, not from the project using it.
    project.write("pkg/__init__.py", "")
    project.write("pkg/client.py", '''
        import json
        import secrets

        from memo_replay import recorded

        dumps = recorded(json.dumps)
        token = recorded(secrets.token_hex)
    ''')
    code = """
        from pkg.client import dumps, token
        print(dumps({"b": 1, "a": 2}, sort_keys=True), token(8), dumps.memo.store.path)
    """
    first = project.run(code, mode="auto")
    assert str(project.root / "fixtures_store") in first.stdout
    assert sorted(p.parent.name for p in entry_files(project)) == ["json.dumps",
                                                                  "secrets.token_hex"]
    second = project.run(code, mode="replay")
    assert second.stdout == first.stdout  # the random token was replayed, not drawn again
    # Wrapped in `python -c` (no file): the working directory's project.
    inline = project.run("import json; from memo_replay import recorded; "
                         "print(recorded(json.dumps).memo.store.path)")
    assert inline.stdout.strip() == str(project.root / "fixtures_store")
