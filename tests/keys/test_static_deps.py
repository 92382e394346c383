"""The static code fingerprint's reach (issue 12): decorators of helpers, ``type(self)`` and
``super()``, instances, definition fingerprints, imports inside a function, per-member classes,
user code outside the project, falsy literals.

Each case is a real temporary project: one call is recorded in a fresh interpreter
(``MEMO_MODE=record``), a file is edited, and the call is replayed strictly in another fresh
interpreter (``MEMO_MODE=replay``). An edit that changes behaviour must make the replay raise
``ReplayMiss`` naming what changed; a cosmetic edit must replay.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from memo_replay.keys.code import CodeFingerprint
from memo_replay.keys.components import Components
from memo_replay.keys.normalize import digest

if TYPE_CHECKING:
    from conftest import Project

KEEP = "keep"


@dataclass(frozen=True)
class Case:
    files: dict[str, str]
    call: str
    path: str
    old: str
    new: str
    expected: str
    """KEEP, or a text the ``ReplayMiss`` must contain (the changed component)."""


def _run_case(project: Project, case: Case) -> None:
    for relative, text in case.files.items():
        project.write(relative, text)
    project.run(case.call, mode="record")
    project.replace(case.path, case.old, case.new)
    result = project.run(case.call, mode="replay", check=False)
    output = result.stdout + result.stderr
    if case.expected == KEEP:
        assert result.returncode == 0, output
    else:
        assert result.returncode != 0, f"replayed stale:\n{output}"
        assert "ReplayMiss" in output, output
        assert case.expected in output, output


# -- 1. decorators of helpers ---------------------------------------------------------------------

DECORATED = {
    "deco.py": '''
        import functools


        def repeat(times):
            def decorate(fn):
                @functools.wraps(fn)
                def wrapper(text):
                    return fn(text) * times
                return wrapper
            return decorate


        class Traced:
            def __init__(self, fn):
                self.fn = fn

            def __call__(self, text):
                return "[" + self.fn(text) + "]"
    ''',
    "app.py": '''
        from deco import Traced, repeat
        from memo_replay import recorded

        TIMES = 2


        @repeat(TIMES)
        def shout(text):
            return text.upper()


        @Traced
        def bracket(text):
            return text.strip()


        @recorded
        def f(text):
            return shout(text) + bracket(text)
    ''',
}
CALL = "import app; print(app.f(' hi '))"

DECORATOR_CASES = {
    "decorator-body": Case(DECORATED, CALL, "deco.py", "fn(text) * times",
                           "fn(text) * times + '!'", "helper `deco.repeat` changed"),
    "decorator-factory-argument": Case(DECORATED, CALL, "app.py", "TIMES = 2", "TIMES = 3",
                                       "constant `app.TIMES` changed"),
    "decorator-factory-call": Case(DECORATED, CALL, "app.py", "@repeat(TIMES)",
                                   "@repeat(TIMES + 1)", "helper `app.shout` changed"),
    "class-decorator-call": Case(DECORATED, CALL, "deco.py", '"[" + self.fn(text)',
                                 '"<" + self.fn(text)', "helper `deco.Traced` changed"),
    "function-under-class-decorator": Case(DECORATED, CALL, "app.py", "text.strip()",
                                           "text.lstrip()", "definition `app.bracket` changed"),
    "docstring-under-class-decorator": Case(DECORATED, CALL, "app.py", "def bracket(text):",
                                            'def bracket(text):\n    """Bracket it."""', KEEP),
    "decorated-helper-comment": Case(DECORATED, CALL, "app.py", "def shout(text):",
                                     "def shout(text):  # loud", KEEP),
}


@pytest.mark.parametrize("case", DECORATOR_CASES.values(), ids=DECORATOR_CASES.keys())
def test_decorators_of_helpers(project: Project, case: Case) -> None:
    _run_case(project, case)


# -- 2. type(self) and super() --------------------------------------------------------------------

METHODS = {
    "tools.py": '''
        from memo_replay import recorded


        class Base:
            def step(self, text):
                return text.strip()

            @staticmethod
            def tidy(text):
                return text.lower()


        class Tool(Base):
            def step(self, text):
                return super().step(text) + "."

            @recorded(ignore=["self"])
            def run(self, text):
                return type(self).tidy(self.step(text))
    ''',
}
TOOL = "import tools; print(tools.Tool().run(' Hi '))"

METHOD_CASES = {
    "type-self-static": Case(METHODS, TOOL, "tools.py", "text.lower()", "text.casefold()",
                             "helper `tools.Base.tidy` changed"),
    "super-chain": Case(METHODS, TOOL, "tools.py", "return text.strip()",
                        "return text.strip(' ')", "helper `tools.Base.step` changed"),
    "self-method": Case(METHODS, TOOL, "tools.py", 'super().step(text) + "."',
                        'super().step(text) + "!"', "helper `tools.Tool.step` changed"),
}


@pytest.mark.parametrize("case", METHOD_CASES.values(), ids=METHOD_CASES.keys())
def test_type_self_and_super(project: Project, case: Case) -> None:
    _run_case(project, case)


# -- 3. instances ---------------------------------------------------------------------------------

INSTANCES = {
    "fmt.py": '''
        class Formatter:
            def __init__(self, width):
                self.width = width

            def render(self, text):
                return text.center(self.width, "*")

            def unrelated(self, text):
                return text


        class Normalizer:
            def __call__(self, text):
                return " ".join(text.split())
    ''',
    "config.py": '''
        from fmt import Formatter

        WIDTH = 9
        FORMATTER = Formatter(width=WIDTH)
    ''',
    "app.py": '''
        from config import FORMATTER
        from fmt import Formatter, Normalizer
        from memo_replay import recorded

        NORMALIZE = Normalizer()


        class Owner:
            FMT = Formatter(width=7)

            @recorded(ignore=["self"])
            def run(self, text):
                return self.FMT.render(text)


        @recorded
        def f(text):
            return FORMATTER.render(NORMALIZE(text))
    ''',
}
F = "import app; print(app.f(' a  b '))"
RUN = "import app; print(app.Owner().run('ab'))"

INSTANCE_CASES = {
    "module-instance-method": Case(INSTANCES, F, "fmt.py", 'text.center(self.width, "*")',
                                   'text.center(self.width, "-")',
                                   "helper `fmt.Formatter.render` changed"),
    "module-instance-init": Case(INSTANCES, F, "fmt.py", "self.width = width",
                                 "self.width = width + 1", "helper `fmt.Formatter` changed"),
    "module-instance-statement": Case(INSTANCES, F, "config.py", "Formatter(width=WIDTH)",
                                      "Formatter(width=WIDTH * 2)",
                                      "definition `config.FORMATTER` changed"),
    "module-instance-constant": Case(INSTANCES, F, "config.py", "WIDTH = 9", "WIDTH = 11",
                                     "constant `config.WIDTH` changed"),
    "module-instance-unrelated-method": Case(INSTANCES, F, "fmt.py", "return text\n",
                                             "return text * 2\n", KEEP),
    "module-instance-formatting": Case(INSTANCES, F, "config.py", "Formatter(width=WIDTH)",
                                       "Formatter(\n    width = WIDTH,  # wide\n)", KEEP),
    "callable-instance": Case(INSTANCES, F, "fmt.py", '" ".join(text.split())',
                              '"_".join(text.split())', "helper `fmt.Normalizer` changed"),
    "class-attribute-instance-method": Case(INSTANCES, RUN, "fmt.py",
                                            'text.center(self.width, "*")',
                                            'text.center(self.width, "=")',
                                            "helper `fmt.Formatter.render` changed"),
    "class-attribute-instance-statement": Case(INSTANCES, RUN, "app.py", "Formatter(width=7)",
                                               "Formatter(width=5)",
                                               "helper `app.Owner` changed"),
}


@pytest.mark.parametrize("case", INSTANCE_CASES.values(), ids=INSTANCE_CASES.keys())
def test_instances(project: Project, case: Case) -> None:
    _run_case(project, case)


# -- 4. definition fingerprints -------------------------------------------------------------------

DEFINITIONS = {
    "app.py": r'''
        import re
        import string
        from types import SimpleNamespace

        from memo_replay import recorded

        PATTERN = re.compile(r"\d+")
        CONFIG = SimpleNamespace(sep="-", upper=False)
        GREETING = string.Template("hello $who")
        OTHER = re.compile("unused")


        def shout(text):
            return text.upper()


        HANDLERS = {"up": shout, "low": lambda text: text.lower()}


        @recorded
        def f(text, kind):
            cleaned = PATTERN.sub(CONFIG.sep, text)
            return GREETING.substitute(who=HANDLERS[kind](cleaned))
    ''',
}
D_UP = "import app; print(app.f('a1b22', 'up'))"
D_LOW = "import app; print(app.f('A1B22', 'low'))"

DEFINITION_CASES = {
    "compiled-regex": Case(DEFINITIONS, D_UP, "app.py", r're.compile(r"\d+")',
                           r're.compile(r"\d")', "definition `app.PATTERN` changed"),
    "namespace": Case(DEFINITIONS, D_UP, "app.py", 'sep="-"', 'sep="+"',
                      "definition `app.CONFIG` changed"),
    "string-template": Case(DEFINITIONS, D_UP, "app.py", '"hello $who"', '"hi $who"',
                            "definition `app.GREETING` changed"),
    "dispatch-table-lambda": Case(DEFINITIONS, D_LOW, "app.py", "text.lower()",
                                  "text.lower().strip()", "definition `app.HANDLERS` changed"),
    "dispatch-table-function": Case(DEFINITIONS, D_UP, "app.py", "return text.upper()",
                                    "return text.upper() + '!'", "helper `app.shout` changed"),
    "unused-definition": Case(DEFINITIONS, D_UP, "app.py", 're.compile("unused")',
                              're.compile("still unused")', KEEP),
    "definition-comment": Case(DEFINITIONS, D_UP, "app.py", 'CONFIG = SimpleNamespace(',
                               '# settings\nCONFIG = SimpleNamespace(', KEEP),
}


@pytest.mark.parametrize("case", DEFINITION_CASES.values(), ids=DEFINITION_CASES.keys())
def test_definitions(project: Project, case: Case) -> None:
    _run_case(project, case)


def test_definitions_are_stored_and_explained(project: Project) -> None:
    project.write("app.py", DEFINITIONS["app.py"])
    out = project.run('''
        import json, app
        print(json.dumps(dict(app.f.memo.code.definitions)))
    ''').stdout
    definitions = json.loads(out.strip().splitlines()[-1])
    assert {"app.PATTERN", "app.CONFIG", "app.GREETING", "app.HANDLERS"} <= set(definitions)
    assert "app.OTHER" not in definitions
    project.run(D_UP, mode="record")
    (entry,) = project.store.entries("app.f")
    assert "app.PATTERN" in entry.components.code.definitions


# -- 5. imports inside the function ---------------------------------------------------------------

LAZY = {
    "pkg/__init__.py": "",
    "pkg/lazy.py": '''
        def helper(text):
            return text.title()
    ''',
    "pkg/settings.py": '''
        SUFFIX = "."
    ''',
    "pkg/app.py": '''
        from memo_replay import recorded


        @recorded
        def f(text):
            from .lazy import helper
            import pkg.settings

            return helper(text) + pkg.settings.SUFFIX
    ''',
}
LAZY_CALL = "from pkg import app; print(app.f('hi there'))"

LAZY_CASES = {
    "relative-from-import": Case(LAZY, LAZY_CALL, "pkg/lazy.py", "text.title()",
                                 "text.capitalize()", "helper `pkg.lazy.helper` changed"),
    "dotted-import": Case(LAZY, LAZY_CALL, "pkg/settings.py", 'SUFFIX = "."', 'SUFFIX = "!"',
                          "constant `pkg.settings.SUFFIX` changed"),
}


@pytest.mark.parametrize("case", LAZY_CASES.values(), ids=LAZY_CASES.keys())
def test_imports_inside_the_function(project: Project, case: Case) -> None:
    _run_case(project, case)


# -- 6. false invalidations removed, conservatively ---------------------------------------------

MEMBERS = {
    "shapes.py": '''
        from dataclasses import dataclass


        @dataclass
        class Row:
            name: str
            size: int = 0

            def label(self):
                return f"{self.name}:{self.size}"

            def unused(self):
                return self.name

            @property
            def big(self):
                return self.size > 10
    ''',
    "app.py": '''
        from memo_replay import recorded
        from shapes import Row


        @recorded
        def f(name):
            items: list = []
            row = Row(name, 3)
            items.append(row.label())
            return [items, row.big]
    ''',
}
M_CALL = "import app; print(app.f('x'))"

MEMBER_CASES = {
    "local-annotation-refined": Case(MEMBERS, M_CALL, "app.py", "items: list = []",
                                     "items: list[str] = []", KEEP),
    "unrelated-method": Case(MEMBERS, M_CALL, "shapes.py", "return self.name\n",
                             "return self.name.upper()\n", KEEP),
    "method-of-local-instance": Case(MEMBERS, M_CALL, "shapes.py", 'f"{self.name}:{self.size}"',
                                     'f"{self.name}={self.size}"',
                                     "helper `shapes.Row.label` changed"),
    "property": Case(MEMBERS, M_CALL, "shapes.py", "self.size > 10", "self.size > 2",
                     "helper `shapes.Row.big` changed"),
    "class-field-annotation": Case(MEMBERS, M_CALL, "shapes.py", "size: int = 0",
                                   "size: float = 0", "helper `shapes.Row` changed"),
    "class-field-default": Case(MEMBERS, M_CALL, "shapes.py", "size: int = 0", "size: int = 1",
                                "helper `shapes.Row` changed"),
    "local-value-changed": Case(MEMBERS, M_CALL, "app.py", "items: list = []",
                                "items: list = [0]", "source of `app.f` changed"),
}


@pytest.mark.parametrize("case", MEMBER_CASES.values(), ids=MEMBER_CASES.keys())
def test_members_and_annotations(project: Project, case: Case) -> None:
    _run_case(project, case)


# -- 7. user code outside the project -------------------------------------------------------------

SCRIPT = '''
import re
import sys

from memo_replay import recorded

LIMIT = 3
PATTERN = re.compile("a+")


def helper(text):
    return text.upper()


@recorded
def f(text):
    return PATTERN.sub("-", helper(text))[:LIMIT] + "!"


print(f(sys.argv[1]))
'''


def _run_outside(project: Project, script: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), "banana"], cwd=project.root,
                          env=project.env(mode), capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.mark.parametrize(("old", "new", "expected"), [
    pytest.param("text.upper()", "text.lower()", "helper `__main__.helper` changed",
                 id="helper"),
    pytest.param("LIMIT = 3", "LIMIT = 4", "constant `__main__.LIMIT` changed", id="constant"),
    pytest.param('"a+"', '"a"', "definition `__main__.PATTERN` changed", id="definition"),
    pytest.param('+ "!"', '+ "?"', "source of `__main__.f` changed", id="body"),
    pytest.param("def helper(text):", "def helper(text):  # note", KEEP, id="comment"),
])
def test_script_outside_the_project_root(project: Project, tmp_path: Path, old: str, new: str,
                                         expected: str) -> None:
    script = tmp_path / "outside" / "script.py"
    script.parent.mkdir()
    script.write_text(SCRIPT)
    first = _run_outside(project, script, "record")
    assert first.returncode == 0, first.stderr
    script.write_text(SCRIPT.replace(old, new, 1))
    result = _run_outside(project, script, "replay")
    if expected == KEEP:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0, "replayed stale"
        assert expected in result.stderr, result.stderr


EXEC = '''
import linecache, sys
from memo_replay import recorded

CELLS = {cells!r}
namespace = {{"__name__": "__main__", "recorded": recorded}}
import __main__
namespace = vars(__main__)
namespace["recorded"] = recorded
for number, cell in enumerate(CELLS):
    filename = {filename!r}.format(number)
    if {with_source!r}:  # what IPython does: the cell's source is in linecache
        linecache.cache[filename] = (len(cell), None, cell.splitlines(True), filename)
    exec(compile(cell, filename, "exec"), namespace)
print(namespace["f"]("banana"))
'''

CELLS = [
    'import re\nLIMIT = 3\nPATTERN = re.compile("a+")\n\n\ndef helper(text):\n'
    '    return text.upper()\n',
    '@recorded\ndef f(text):\n    return PATTERN.sub("-", helper(text))[:LIMIT] + "!"\n',
]


@pytest.mark.parametrize("with_source", [True, False], ids=["notebook-cell", "exec-bytecode"])
@pytest.mark.parametrize(("cell", "old", "new", "expected"), [
    pytest.param(0, "text.upper()", "text.lower()", "helper `__main__.helper` changed",
                 id="helper"),
    pytest.param(0, "LIMIT = 3", "LIMIT = 4", "constant `__main__.LIMIT` changed",
                 id="constant"),
    pytest.param(1, '+ "!"', '+ "?"', "`__main__.f`", id="body"),
])
def test_user_code_without_a_project_file(project: Project, with_source: bool, cell: int,
                                          old: str, new: str, expected: str) -> None:
    def code(cells: list[str]) -> str:
        return EXEC.format(cells=cells, with_source=with_source,
                           filename="<ipython-input-{}-0a1b2c>" if with_source else
                           "<generated-{}>")

    project.run(code(CELLS), mode="record", env={"PYTHONWARNINGS": "ignore"})
    edited = list(CELLS)
    edited[cell] = edited[cell].replace(old, new, 1)
    result = project.run(code(edited), mode="replay", check=False,
                         env={"PYTHONWARNINGS": "ignore"})
    assert result.returncode != 0, "replayed stale"
    assert expected in result.stderr, result.stderr
    again = project.run(code(CELLS), mode="replay", check=False, env={"PYTHONWARNINGS": "ignore"})
    assert again.returncode == 0, again.stderr


def test_notebook_cell_definition(project: Project) -> None:
    def code(pattern: str) -> str:
        cells = [CELLS[0].replace('"a+"', pattern), CELLS[1]]
        return EXEC.format(cells=cells, with_source=True, filename="<ipython-input-{}-0a1b2c>")

    project.run(code('"a+"'), mode="record")
    result = project.run(code('"b+"'), mode="replay", check=False)
    assert result.returncode != 0, "replayed stale"
    assert "definition `__main__.PATTERN` changed" in result.stderr, result.stderr


def test_stdlib_and_site_packages_still_count_by_name(project: Project) -> None:
    project.write("app.py", '''
        import json
        import os.path

        from typing import Any, cast

        import packaging.version
        from memo_replay import recorded


        @recorded
        def f(text):
            text = cast(Any, text)  # typing.Any is an object on 3.10, a class on 3.11+
            return json.dumps([os.path.join("a", text), str(packaging.version.parse("1.0"))])
    ''')
    out = project.run('''
        import json, app
        code = app.f.memo.code
        print(json.dumps([*code.helpers, *code.constants, *code.definitions]))
    ''').stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


# -- 8. falsy literals ----------------------------------------------------------------------------

FALSY = ["0", "False", '""', "None", "0.0", "()", "[]"]


def test_falsy_constants_render_distinctly() -> None:
    # A rendering that skipped falsy or None fields would collide here.
    digests = {digest(ast.parse(f"x = {value}")) for value in FALSY}
    assert len(digests) == len(FALSY)
    defaults = {digest(ast.parse(f"def f(n={value}):\n    return n")) for value in FALSY}
    assert len(defaults) == len(FALSY)


@pytest.mark.parametrize("where", ["default", "body"])
def test_falsy_literal_edits_change_the_key(project: Project, where: str) -> None:
    template = ('from memo_replay import recorded\n\n\n@recorded\ndef f(x, n={value}):\n'
                '    return [x, n]\n') if where == "default" else \
        ('from memo_replay import recorded\n\n\n@recorded\ndef f(x):\n'
         '    return [x, {value}]\n')
    hashes = []
    for value in ["0", "False", '""', "None"]:
        project.write("app.py", template.format(value=value))
        hashes.append(project.run("import app; print(app.f.memo.code.hash)").stdout.strip())
    assert len(set(hashes)) == 4
    # and through a replay: the last recording (None) does not serve `0`
    project.run("import app; app.f(1)", mode="record")
    project.write("app.py", template.format(value="0"))
    result = project.run("import app; app.f(1)", mode="replay", check=False)
    assert result.returncode != 0
    assert "source of `app.f` changed" in result.stderr


# -- the entry ------------------------------------------------------------------------------------


def test_definitions_section_round_trips_and_defaults_to_empty() -> None:
    code = CodeFingerprint(hash="h", kind="source", source="def f():\n    pass",
                           source_hash="s", definitions={"app.PATTERN": "d1"})
    components = Components(code, {"x": "a"}, {}, None)
    document = components.document()
    assert list(document["code"]) == sorted(document["code"])
    assert Components.from_document(document) == components
    del document["code"]["definitions"]  # an entry written before definitions existed
    assert Components.from_document(document).code.definitions == {}
