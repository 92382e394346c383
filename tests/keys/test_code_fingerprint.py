"""The code fingerprint (memo_replay.keys.code), observed through ``fn.memo.code``.

Source code has to live in real files for ``inspect`` to find it, so most tests write a small
project, print the fingerprint from a fresh interpreter, edit a file and print it again.
"""

from __future__ import annotations

import functools
import json
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import packaging.version
import pytest

from memo_replay import MemoReplayWarning, recorded

if TYPE_CHECKING:
    from conftest import Project

_PRINT_CODE = """
import json
import {module}
code = {target}.memo.code
print(json.dumps({{"hash": code.hash, "kind": code.kind, "source": code.source,
                  "helpers": code.helpers, "constants": code.constants, "deps": code.deps,
                  "version": code.version}}))
"""


def code_of(project: Project, target: str = "mod.f") -> dict[str, Any]:
    """The fingerprint of ``target`` as computed by a fresh interpreter in ``project``."""
    module = target.split(".")[0]
    out = project.run(_PRINT_CODE.format(module=module, target=target)).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def rewrite(project: Project, relative: str, old: str, new: str) -> None:
    """Replace every occurrence of ``old`` (which must occur) in a project file."""
    text = project.read(relative)
    assert old in text, f"{old!r} not in {relative}"
    (project.root / relative).write_text(text.replace(old, new), encoding="utf-8")


# -- the function's own source -------------------------------------------------------------------

SIMPLE = '''
from memo_replay import recorded


@recorded
def f(text, times=2):
    """Repeat the text."""
    # say it louder
    result = text * times
    return result + "!"
'''


@pytest.mark.parametrize(("old", "new"), [
    pytest.param("# say it louder", "# a different comment  # and more", id="comment"),
    pytest.param('"""Repeat the text."""', '"""Repeat it.\n\n    Many lines.\n    """',
                 id="docstring-edited"),
    pytest.param('    """Repeat the text."""\n', "", id="docstring-removed"),
    pytest.param("    result = text * times\n", "\n    result = text * times\n\n\n",
                 id="blank-lines"),
    pytest.param('"!"', "'!'", id="quote-style"),
    pytest.param("text * times", "(text)*times", id="spacing-and-parentheses"),
    pytest.param("def f(text, times=2):", "def f(\n    text,\n    times = 2,\n):",
                 id="signature-layout"),
    pytest.param("@recorded\n", "@recorded()\n", id="decorator-called"),
    pytest.param("from memo_replay import recorded\n",
                 "from memo_replay import recorded\n\nUNUSED = 1\n\n\ndef unused():\n"
                 "    return 2\n", id="unrelated-module-code"),
])
def test_cosmetic_edits_keep_the_hash(project: Project, old: str, new: str) -> None:
    project.write("mod.py", SIMPLE)
    before = code_of(project)
    project.replace("mod.py", old, new)
    after = code_of(project)
    assert after["hash"] == before["hash"]
    assert after["source"] == before["source"]


@pytest.mark.parametrize(("old", "new"), [
    pytest.param('return result + "!"', 'return result + "!!"', id="changed-literal"),
    pytest.param("text * times", "times * text", id="body-edit"),
    pytest.param("result", "out", id="renamed-variable"),
    pytest.param("times=2", "times=3", id="changed-default"),
    pytest.param("def f(text, times=2):", "def f(text, times=2, sep=''):", id="new-parameter"),
    pytest.param("def f(text, times=2):", "async def f(text, times=2):", id="made-async"),
])
def test_code_edits_change_the_hash(project: Project, old: str, new: str) -> None:
    project.write("mod.py", SIMPLE)
    before = code_of(project)
    rewrite(project, "mod.py", old, new)
    after = code_of(project)
    assert after["hash"] != before["hash"]
    assert after["source"] != before["source"]


def test_source_is_normalized_without_docstring_or_decorator(project: Project) -> None:
    project.write("mod.py", SIMPLE)
    code = code_of(project)
    assert code["kind"] == "source"
    assert code["source"] == "def f(text, times=2):\n    result = text * times\n    return " \
                             "result + '!'"
    assert code["helpers"] == {}
    assert code["constants"] == {}


# -- helpers and constants -----------------------------------------------------------------------

APP = '''
import json
import logging

import xxhash
from xxhash import xxh3_64_hexdigest

import helpers
import prompts
from helpers import shout
from memo_replay import recorded

LIMIT = 3
MODELS = ("small", "large")
log = logging.getLogger(__name__)


def local_helper(text):
    return text.strip()


@recorded
def f(text):
    log.debug("translating")
    cleaned = local_helper(helpers.normalize(text))
    digest = xxhash.xxh3_64_hexdigest(cleaned.encode()) + xxh3_64_hexdigest(b"")
    return json.dumps([prompts.TEMPLATE.format(text=cleaned), shout(cleaned), LIMIT, MODELS,
                       digest])
'''

HELPERS = '''
from deep import deeper

SUFFIX = "."


def normalize(text):
    return deeper(text.lower()) + SUFFIX


def shout(text):
    return text.upper()


def unused(text):
    return text
'''

DEEP = '''
def deeper(text):
    return " ".join(text.split())
'''

PROMPTS = '''
TEMPLATE = "Translate: {text}"
OTHER = "not used"
'''


@pytest.fixture
def app(project: Project) -> Project:
    project.write("mod.py", APP)
    project.write("helpers.py", HELPERS)
    project.write("deep.py", DEEP)
    project.write("prompts.py", PROMPTS)
    return project


def test_helpers_and_constants_are_named(app: Project) -> None:
    code = code_of(app)
    assert set(code["helpers"]) == {"mod.local_helper", "helpers.normalize", "helpers.shout",
                                    "deep.deeper"}
    assert set(code["constants"]) == {"mod.LIMIT", "mod.MODELS", "prompts.TEMPLATE",
                                      "helpers.SUFFIX"}


def test_stdlib_and_third_party_code_is_not_hashed(app: Project) -> None:
    code = code_of(app)
    for name in [*code["helpers"], *code["constants"]]:
        assert not name.startswith(("json.", "xxhash", "logging.")), name
        assert "xxh3" not in name
    assert "mod.log" not in code["constants"]  # a logger is an object, not a constant
    assert "mod.xxh3_64_hexdigest" not in code["helpers"]


@pytest.mark.parametrize(("path", "old", "new", "component", "name"), [
    pytest.param("mod.py", "return text.strip()", "return text.strip(' ')", "helpers",
                 "mod.local_helper", id="same-module-helper"),
    pytest.param("helpers.py", "text.lower()", "text.casefold()", "helpers",
                 "helpers.normalize", id="other-module-helper"),
    pytest.param("helpers.py", "text.upper()", "text.upper() + '!'", "helpers",
                 "helpers.shout", id="imported-from-helper"),
    pytest.param("deep.py", '" ".join', '"_".join', "helpers", "deep.deeper",
                 id="helper-of-a-helper"),
    pytest.param("mod.py", "LIMIT = 3", "LIMIT = 4", "constants", "mod.LIMIT",
                 id="module-constant"),
    pytest.param("mod.py", '("small", "large")', '("small", "xl")', "constants",
                 "mod.MODELS", id="tuple-constant"),
    pytest.param("prompts.py", "Translate: {text}", "Translate to French: {text}",
                 "constants", "prompts.TEMPLATE", id="constant-via-module-attribute"),
    pytest.param("helpers.py", 'SUFFIX = "."', 'SUFFIX = "!"', "constants", "helpers.SUFFIX",
                 id="constant-read-by-helper"),
])
def test_reachable_changes_change_the_hash(app: Project, path: str, old: str, new: str,
                                           component: str, name: str) -> None:
    before = code_of(app)
    rewrite(app, path, old, new)
    after = code_of(app)
    assert after["hash"] != before["hash"]
    assert after["source"] == before["source"]
    changed = {n for n in after[component] if after[component][n] != before[component].get(n)}
    assert changed == {name}


@pytest.mark.parametrize(("path", "old", "new"), [
    pytest.param("helpers.py", "return text\n", "return text * 2\n", id="unused-helper"),
    pytest.param("prompts.py", '"not used"', '"still not used"', id="unused-constant"),
    pytest.param("helpers.py", "def normalize(text):",
                 "def normalize(text):\n    # just a comment", id="helper-comment"),
])
def test_unreachable_or_cosmetic_changes_keep_the_hash(app: Project, path: str, old: str,
                                                       new: str) -> None:
    before = code_of(app)
    rewrite(app, path, old, new)
    assert code_of(app)["hash"] == before["hash"]


def test_constant_imported_by_name(project: Project) -> None:
    project.write("prompts.py", PROMPTS)
    project.write("mod.py", '''
        from memo_replay import recorded
        from prompts import TEMPLATE


        @recorded
        def f(text):
            return TEMPLATE.format(text=text)
    ''')
    before = code_of(project)
    assert set(before["constants"]) == {"mod.TEMPLATE"}
    rewrite(project, "prompts.py", "Translate:", "Say:")
    assert code_of(project)["hash"] != before["hash"]


def test_miss_explanation_names_the_changed_constant(app: Project) -> None:
    app.run("import mod; mod.f('Hello  World')")
    rewrite(app, "prompts.py", "Translate: {text}", "Translate to French: {text}")
    out = app.run("import mod; print(mod.f.memo.explain('Hello  World'))").stdout
    assert "constant `prompts.TEMPLATE` changed" in out
    assert "source of" not in out


def test_helper_cycle_terminates_and_covers_both(project: Project) -> None:
    project.write("mod.py", '''
        from memo_replay import recorded


        def even(n):
            return True if n == 0 else odd(n - 1)


        def odd(n):
            return False if n == 0 else even(n - 1)


        @recorded
        def f(n):
            return even(n) and f is not None
    ''')
    before = code_of(project)
    assert set(before["helpers"]) == {"mod.even", "mod.odd"}
    rewrite(project, "mod.py", "return False if n == 0", "return n < 0 if n == 0")
    after = code_of(project)
    assert after["hash"] != before["hash"]
    assert after["helpers"]["mod.odd"] != before["helpers"]["mod.odd"]
    assert after["helpers"]["mod.even"] == before["helpers"]["mod.even"]


def test_another_recorded_function_counts_as_a_helper(project: Project) -> None:
    project.write("mod.py", '''
        from memo_replay import recorded


        @recorded
        def inner(x):
            return x + 1


        @recorded
        def f(x):
            return inner(x) * 2
    ''')
    before = code_of(project)
    assert set(before["helpers"]) == {"mod.inner"}
    rewrite(project, "mod.py", "x + 1", "x + 2")
    assert code_of(project)["hash"] != before["hash"]


def test_method_called_through_self(project: Project) -> None:
    project.write("mod.py", '''
        from memo_replay import recorded


        class Translator:
            prefix = ">> "

            def prepare(self, text):
                return self.prefix + text.strip()

            @staticmethod
            def tidy(text):
                return text.rstrip()

            @recorded
            def run(self, text):
                return self.tidy(self.prepare(text))
    ''')
    before = code_of(project, "mod.Translator.run")
    assert {"mod.Translator.prepare", "mod.Translator.tidy"} <= set(before["helpers"])
    assert "mod.Translator.prefix" in before["constants"]

    rewrite(project, "mod.py", "text.strip()", "text.lstrip()")
    after = code_of(project, "mod.Translator.run")
    assert after["hash"] != before["hash"]
    assert after["helpers"]["mod.Translator.prepare"] != before["helpers"][
        "mod.Translator.prepare"]

    rewrite(project, "mod.py", 'prefix = ">> "', 'prefix = "> "')
    assert code_of(project, "mod.Translator.run")["hash"] != after["hash"]

    rewrite(project, "mod.py", "text.rstrip()", "text.rstrip('.')")
    assert code_of(project, "mod.Translator.run")["hash"] != after["hash"]


def test_closure_value(project: Project) -> None:
    project.write("mod.py", '''
        from memo_replay import recorded


        def make(factor):
            @recorded
            def scaled(x):
                return x * factor

            return scaled


        f = make(3)
    ''')
    before = code_of(project)
    assert list(before["constants"]) == ["mod.make.<locals>.scaled.<closure>.factor"]
    rewrite(project, "mod.py", "make(3)", "make(4)")
    after = code_of(project)
    assert after["hash"] != before["hash"]
    assert after["source"] == before["source"]


def test_deps_and_version(project: Project) -> None:
    project.write("mod.py", '''
        from memo_replay import recorded


        def pricing(x):
            return x * 2


        @recorded(deps=[pricing, "table-7"], version="1")
        def f(x):
            return x
    ''')
    before = code_of(project)
    assert set(before["deps"]) == {"mod.pricing", "deps[1]"}
    assert before["version"] == "1"
    hashes = {before["hash"]}
    for old, new in [("x * 2", "x * 3"), ("table-7", "table-8"), ('version="1"', 'version="2"'),
                     ('version="2"', "version=2")]:
        rewrite(project, "mod.py", old, new)
        hashes.add(code_of(project)["hash"])
    # version=2 and version="2" are the same salt.
    assert len(hashes) == 4


def test_helper_behind_lru_cache_or_partial(project: Project) -> None:
    project.write("mod.py", '''
        import functools

        from memo_replay import recorded


        @functools.lru_cache(maxsize=None)
        def cached(x):
            return x + 1


        def scale(x, factor):
            return x * factor


        triple = functools.partial(scale, factor=3)


        @recorded
        def f(x):
            return cached(x) + triple(x)
    ''')
    before = code_of(project)
    assert set(before["helpers"]) == {"mod.cached", "mod.scale"}
    assert set(before["constants"]) == {"mod.triple"}  # the partial's bound arguments
    hashes = {before["hash"]}
    for old, new in [("x + 1", "x + 2"), ("x * factor", "factor * x"),
                     ("factor=3", "factor=4")]:
        rewrite(project, "mod.py", old, new)
        hashes.add(code_of(project)["hash"])
    assert len(hashes) == 4


def test_namespace_package_module_attributes(project: Project) -> None:
    # `pkg` has no __init__.py: a namespace package, whose module object has no __file__.
    project.write("pkg/prompts.py", '''
        TEMPLATE = "Translate: {text}"


        def build(text):
            return TEMPLATE.format(text=text)
    ''')
    project.write("mod.py", '''
        import pkg.prompts
        from memo_replay import recorded


        @recorded
        def f(text):
            return pkg.prompts.build(text) + pkg.prompts.TEMPLATE
    ''')
    before = code_of(project)
    assert set(before["helpers"]) == {"pkg.prompts.build"}
    assert set(before["constants"]) == {"pkg.prompts.TEMPLATE"}
    rewrite(project, "pkg/prompts.py", "Translate:", "Say:")
    assert code_of(project)["hash"] != before["hash"]


@functools.cache
def _cached_helper(x: int) -> int:
    return x + 1


def test_deps_accepts_a_cached_function() -> None:
    def f(x: int) -> int:
        return x

    code = recorded(deps=[_cached_helper])(f).memo.code
    (name,) = code.deps
    assert name.endswith("._cached_helper")


def test_recursive_function_terminates(project: Project) -> None:
    project.write("mod.py", '''
        from memo_replay import recorded


        @recorded
        def f(n):
            return 1 if n <= 1 else n * f(n - 1)
    ''')
    code = code_of(project)
    assert code["helpers"] == {}
    assert project.run("import mod; print(mod.f(5))").stdout.strip() == "120"


# -- code without source, code we do not own -----------------------------------------------------


def test_function_without_source_uses_bytecode_and_warns_once(project: Project) -> None:
    # Code compiled from a string has no source on any Python (3.13 keeps `python -c` source,
    # so a plain -c snippet would be fingerprinted by source there).
    out = project.run('''
        import json, warnings
        from memo_replay import MemoReplayWarning, recorded

        namespace = {"recorded": recorded, "__name__": "__main__"}
        exec(compile("@recorded\\ndef f(x):\\n    return x + 1\\n", "<generated>", "exec"),
             namespace)
        f = namespace["f"]

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = f.memo.code
            second = f.memo.code
            f.memo.key(1)
        print(json.dumps({
            "kind": first.kind, "same": first is second, "source": first.source,
            "warnings": [str(w.message) for w in caught
                         if issubclass(w.category, MemoReplayWarning)],
        }))
    ''').stdout
    result = json.loads(out)
    assert result["kind"] == "bytecode"
    assert result["same"] is True
    assert result["source"].startswith("<bytecode>")
    assert len(result["warnings"]) == 1
    assert "no source code for `__main__.f`" in result["warnings"][0]


def test_bytecode_fingerprint_follows_the_code(project: Project) -> None:
    snippet = '''
        from memo_replay import recorded

        @recorded
        def f(x):
            return x + {n}

        print(f.memo.code.hash)
    '''

    def run(n: int) -> str:
        return project.run(snippet.format(n=n), env={"PYTHONWARNINGS": "ignore"}).stdout.strip()

    assert run(1) == run(1)
    assert run(1) != run(2)


@pytest.mark.parametrize(("before", "after"), [
    ("LIMIT = 1", "LIMIT = 2"),
    ("LIMIT = (1, 2)", "LIMIT = (1, 3)"),
    ("LIMIT = {'a': 1}", "LIMIT = {'a': 2}"),
    ("LIMIT = 1", "LIMIT = 1.0"),
    ("LIMIT = object()", "LIMIT = []"),
    ("limit = property(lambda self: 1)", "limit = property(lambda self: 2)"),
])
def test_a_class_without_source_counts_its_attributes(project: Project, before: str,
                                                      after: str) -> None:
    """Regression: for a class with no source, only its functions' bytecode counted, so
    ``LIMIT = 1`` becoming ``LIMIT = 2`` kept the key and replayed the stale answer."""
    snippet = '''
        from memo_replay import recorded

        namespace = {{"recorded": recorded, "__name__": "__main__"}}
        exec(compile("class C:\\n    {line}\\n    def m(self):\\n        return 0\\n"
                     "@recorded\\ndef f(x):\\n    return C().m() + x\\n", "<generated>", "exec"),
             namespace)
        print(namespace["f"].memo.key(10))
    '''

    def key(line: str) -> str:
        return project.run(snippet.format(line=line),
                           env={"PYTHONWARNINGS": "ignore"}).stdout.strip()

    assert key(before) == key(before)
    assert key(before) != key(after)


def test_third_party_callable_is_fingerprinted_by_its_package() -> None:
    code = recorded(packaging.version.parse).memo.code
    assert code.kind == "package"
    assert code.source == (f"<package packaging=={metadata.version('packaging')}> "
                           f"packaging.version.parse")
    assert code.helpers == {}


def test_stdlib_callable_is_fingerprinted_by_name() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", MemoReplayWarning)
        code = recorded(json.dumps).memo.code
    assert code.kind == "package"
    assert code.source == "<stdlib> json.dumps"


# -- location independence -----------------------------------------------------------------------


def test_keys_do_not_depend_on_where_the_project_lives(app: Project, tmp_path: Path) -> None:
    app.write("data/input.txt", "some input\n")
    app.write("keyed.py", '''
        import pathlib

        from memo_replay import recorded

        import mod


        @recorded(files=["data/*.txt"])
        def g(text, where):
            return mod.f(text), where
    ''')
    snippet = '''
        import pathlib, keyed, mod
        print(mod.f.memo.code.hash, keyed.g.memo.code.hash,
              keyed.g.memo.key("hi", pathlib.Path.cwd() / "data" / "input.txt"))
    '''
    here = app.run(snippet).stdout
    moved = app.copy_to(tmp_path / "elsewhere" / "deeper")
    assert moved.run(snippet).stdout == here
