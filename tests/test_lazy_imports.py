"""Lazy imports: ``import memo_replay`` loads nothing else, decorating loads only the key
machinery, and every public name still resolves on first access (PEP 562).

Each check runs in a fresh interpreter (``sys.executable``, cwd a temporary directory, no
``PYTHONPATH``) that compares ``sys.modules`` before and after, so modules the interpreter
loaded at startup do not count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import memo_replay

if TYPE_CHECKING:
    from conftest import Project

HEAVY = ("pydantic", "diskcache", "numpy", "asyncio", "sqlite3")
"""Never loaded by importing memo_replay or decorating a function."""
RARE = ("tempfile", "logging", "tomllib", "uuid", "decimal", "cloudpickle",
        "memo_replay.explain", "memo_replay.audit", "memo_replay.keys.code")
"""Loaded only where used: recording, a miss, a config file, auditing, the first call."""


def fresh(tmp_path: Path, code: str, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a fresh interpreter; it prints one JSON document as its last line."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("MEMO_") and k not in ("CI", "PYTHONPATH")}
    full_env["PYTHONDONTWRITEBYTECODE"] = "1"
    full_env.update(env or {})
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path,
                            env=full_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_import_loads_no_submodule_and_nothing_heavy(tmp_path: Path) -> None:
    out = fresh(tmp_path, """
        import json, sys
        before = set(sys.modules)
        import memo_replay
        print(json.dumps({"new": sorted(set(sys.modules) - before),
                          "file": memo_replay.__file__}))
    """)
    new = set(out["new"])
    assert not [m for m in new if m.startswith("memo_replay.")]
    assert not new & {*HEAVY, *RARE}
    # Nothing else at all: `from __future__ import annotations` is the only import it runs.
    assert new - {"__future__"} == {"memo_replay"}
    # The interpreter imported the installed package (a checkout or site-packages under tox),
    # not something in the temporary cwd.
    imported = Path(out["file"]).resolve()
    assert imported.parts[-2:] == ("memo_replay", "__init__.py")
    assert tmp_path.resolve() not in imported.parents


def test_version_needs_no_submodule(tmp_path: Path) -> None:
    out = fresh(tmp_path, """
        import json, sys
        import memo_replay
        print(json.dumps([memo_replay.__version__,
                          sorted(m for m in sys.modules if m.startswith("memo_replay."))]))
    """)
    assert out == [memo_replay.__version__, []]


def test_decorating_loads_nothing_heavy(tmp_path: Path) -> None:
    out = fresh(tmp_path, """
        import json, sys
        before = set(sys.modules)
        from memo_replay import recorded

        @recorded
        def translate(text: str, model: str = "small") -> str:
            return text

        @recorded(files=["*.txt"], ignore=["client"], version="2", serializer="json")
        def other(client: object, text: str) -> str:
            return text

        print(json.dumps(sorted(set(sys.modules) - before)))
    """)
    new = set(out)
    assert "memo_replay.decorator" in new
    assert not new & set(HEAVY), sorted(new & set(HEAVY))
    assert not new & set(RARE), sorted(new & set(RARE))


def test_a_key_loads_nothing_heavy(tmp_path: Path) -> None:
    (tmp_path / "keyed.py").write_text(textwrap.dedent("""
        from memo_replay import recorded

        @recorded
        def translate(text: str, options: dict) -> str:
            return text
    """))
    out = fresh(tmp_path, """
        import json, sys
        before = set(sys.modules)
        from keyed import translate
        key = translate.memo.key("hi", {"a": 1, "b": [1, 2]})
        print(json.dumps([key, sorted(set(sys.modules) - before)]))
    """)
    key, new = out[0], set(out[1])
    assert len(key) == 32
    assert not new & {"pydantic", "diskcache", "numpy", "asyncio", "sqlite3", "cloudpickle",
                      "memo_replay.explain", "memo_replay.audit"}


def test_every_public_name_resolves_in_a_fresh_process(tmp_path: Path) -> None:
    out = fresh(tmp_path, """
        import importlib, json
        import memo_replay

        resolved = {}
        for name in memo_replay.__all__:
            value = getattr(memo_replay, name)
            module = getattr(value, "__module__", None)
            home = None if name == "__version__" else \\
                memo_replay._EXPORTS[name]
            same = name == "__version__" or \\
                getattr(importlib.import_module("memo_replay." + home), name) is value
            resolved[name] = [type(value).__name__, module, same]
        print(json.dumps({"all": memo_replay.__all__, "dir": dir(memo_replay),
                          "resolved": resolved}))
    """)
    assert sorted(out["resolved"]) == sorted(out["all"]) == sorted(memo_replay.__all__)
    assert set(out["all"]) <= set(out["dir"])
    for name, (_type_name, module, same) in out["resolved"].items():
        assert same, name
        if name != "__version__":
            assert module.startswith("memo_replay."), (name, module)
    assert out["resolved"]["recorded"][0] == "function"
    assert out["resolved"]["ReplayMiss"][0] == "type"


def test_dir_lists_public_names_before_they_are_loaded(tmp_path: Path) -> None:
    out = fresh(tmp_path, """
        import json, sys
        import memo_replay
        listed = dir(memo_replay)
        print(json.dumps([listed, sorted(m for m in sys.modules
                                         if m.startswith("memo_replay."))]))
    """)
    listed, loaded = out
    assert set(memo_replay.__all__) <= set(listed)
    assert listed == sorted(listed)
    assert loaded == []  # dir() loads nothing


def test_star_import_works(tmp_path: Path) -> None:
    out = fresh(tmp_path, """
        import json
        namespace = {}
        exec("from memo_replay import *", namespace)
        import memo_replay
        print(json.dumps({name: namespace[name] is getattr(memo_replay, name)
                          for name in memo_replay.__all__ if name in namespace}))
    """)
    assert sorted(out) == sorted(memo_replay.__all__)
    assert all(out.values())


def test_an_unknown_attribute_is_an_attribute_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = memo_replay.no_such_thing  # type: ignore[attr-defined]
    assert not hasattr(memo_replay, "recordd")
    with pytest.raises(ImportError, match="recordd"):
        from memo_replay import recordd  # type: ignore[attr-defined]  # noqa: F401
    out = fresh(tmp_path, """
        import json, sys
        import memo_replay
        try:
            memo_replay.Recorder
        except AttributeError as exc:
            error = [type(exc).__name__, str(exc), getattr(exc, "name", None)]
        print(json.dumps([error, sorted(m for m in sys.modules
                                        if m.startswith("memo_replay."))]))
    """)
    error, loaded = out
    assert error[0] == "AttributeError"
    assert "'Recorder'" in error[1]
    assert "memo_replay" in error[1]
    assert loaded == []


def test_explanation_and_difference_load_on_access(tmp_path: Path) -> None:
    out = fresh(tmp_path, """
        import json, sys
        import memo_replay
        from memo_replay import recorded

        @recorded
        def f(x: int) -> int:
            return x

        before = "memo_replay.explain" in sys.modules
        explanation = memo_replay.Explanation
        after = "memo_replay.explain" in sys.modules
        import memo_replay.explain as module
        print(json.dumps([before, after, explanation is module.Explanation,
                          memo_replay.Difference is module.Difference,
                          explanation.__module__]))
    """)
    assert out == [False, True, True, True, "memo_replay.explain"]


MODULE = """
from pathlib import Path
from memo_replay import recorded

HERE = Path(__file__).resolve().parent


@recorded
def translate(text: str, options: dict) -> dict:
    with open(HERE / "calls.log", "a") as log:
        log.write(text + "\\n")
    return {"text": text.upper(), "options": options}
"""

RUN = """
import json, sys
before = set(sys.modules)
from translator import translate
from memo_replay import track

with track() as events:
    value = translate("hi", {"b": 2, "a": [1, 2]})
print(json.dumps({"value": value, "outcomes": [e.outcome for e in events],
                  "new": sorted(set(sys.modules) - before)}))
"""


def test_record_then_replay_end_to_end(project: Project) -> None:
    project.write("translator.py", MODULE)
    expected = {"text": "HI", "options": {"b": 2, "a": [1, 2]}}
    first = json.loads(project.run(RUN, mode="auto").stdout.splitlines()[-1])
    assert first["value"] == expected
    assert first["outcomes"] == ["recorded"]
    assert project.calls() == ["hi"]
    assert len(list(project.store.entries("translator.translate"))) == 1
    for mode in ("auto", "replay"):
        again = json.loads(project.run(RUN, mode=mode).stdout.splitlines()[-1])
        assert again["value"] == expected
        assert again["outcomes"] == ["replayed"]
        # A replay needs neither the explanation code, the audit, numpy nor cloudpickle.
        assert not set(again["new"]) & {"memo_replay.explain", "memo_replay.audit",
                                        "numpy", "asyncio", "cloudpickle"}
    ci = project.run(RUN, mode=None, env={"CI": "true"})
    assert json.loads(ci.stdout.splitlines()[-1])["outcomes"] == ["replayed"]
    assert project.calls() == ["hi"]


def test_a_miss_loads_the_explanation_and_says_what_changed(project: Project) -> None:
    project.write("translator.py", MODULE)
    project.run(RUN, mode="auto")
    result = project.run(RUN.replace('"hi"', '"bye"'), mode="replay", check=False)
    assert result.returncode != 0
    assert "ReplayMiss" in result.stderr
    assert "translator.translate" in result.stderr
    assert "argument `text` differs: recorded 'hi', now 'bye'" in result.stderr
    assert project.calls() == ["hi"]


REPLAY_NEVER = (
    *HEAVY, "tempfile", "logging", "uuid", "decimal", "cloudpickle",
    # what issue 15 took off the replay path: each costs a fresh CI process ~0.5–5 ms
    "inspect", "dataclasses", "datetime", "tomllib", "threading", "textwrap", "tokenize",
    "linecache", "dis", "sysconfig", "glob", "shlex", "base64",
    "memo_replay.text", "memo_replay.call.recorder", "memo_replay.store.locks",
    "memo_replay.explain", "memo_replay.audit", "memo_replay.store.upkeep",
    "memo_replay.call.stream_recorder",
)
"""Not loaded by a process that only replays (a project without [tool.memo_replay])."""


@pytest.mark.parametrize("index", ["fresh clone", "index built"])
def test_a_strict_replay_loads_only_what_it_needs(tmp_path: Path, index: str) -> None:
    """A fresh process replaying recordings — the fresh CI process of issue 15 — imports none
    of :data:`REPLAY_NEVER`, with or without the store's index (large results are put in it
    when recorded)."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (tmp_path / "lookups.py").write_text(textwrap.dedent('''
        from memo_replay import recorded

        @recorded
        def lookup(i: int, scale: int = 2) -> dict[str, object]:
            return {"i": i, "scaled": i * scale, "pad": "x" * (5000 if i == 3 else 1)}

        @recorded(files=["data.txt"])
        def read_data() -> str:
            with open("data.txt") as file:
                return file.read()

        @recorded
        def words(n: int):  # a stream
            yield from ["w"] * n
    '''))
    (tmp_path / "data.txt").write_text("data\n")
    calls = """
        import json, sys
        before = set(sys.modules)
        from lookups import lookup, read_data, words
        results = [lookup(i) for i in range(5)] + [read_data(), list(words(3))]
        print(json.dumps([results, sorted(set(sys.modules) - before)]))
    """
    recorded_results, _ = fresh(tmp_path, calls, {"MEMO_MODE": "record"})
    if index == "fresh clone":
        import shutil

        shutil.rmtree(tmp_path / "fixtures_store" / ".cache", ignore_errors=True)
    replayed, new = fresh(tmp_path, calls, {"MEMO_MODE": "replay", "CI": "true"})
    assert replayed == recorded_results
    never = set(REPLAY_NEVER)
    if sys.version_info >= (3, 13):
        never.discard("glob")  # pathlib itself imports it from Python 3.13 on
    assert not set(new) & never, sorted(set(new) & never)
    assert "memo_replay.store.entry" in new  # it did read the store
