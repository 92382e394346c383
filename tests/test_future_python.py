"""What Python 3.14 and 3.15 change, checked on the Pythons installed here.

Neither can be installed on these machines. docs/decisions.md ("Python 3.14 and 3.15") lists
what they change and where memo_replay meets it; these tests pin the properties that keep those
changes from producing a *wrong* key: AST node types and fields memo_replay has never seen count
in the canonical rendering (and what they read is followed), the AST classes 3.14 removes are not
used, nothing pickled depends on the default protocol, the bytecode fallback does not see the
adaptive interpreter, and the classifiers claim only the versions tox runs. The test marked for
3.14 runs as soon as the suite does.
"""

from __future__ import annotations

import ast
import configparser
import copy
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from memo_replay.keys.normalize import _dump, analyze, bytecode_text, digest, render

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PACKAGE = REPO / "memo_replay"


# -- AST nodes this Python does not have ---------------------------------------------------------
# Shaped like 3.14's t-strings (PEP 750): t"{x!r}" is TemplateStr(values=[Interpolation(
# value=Name("x"), str="x", conversion=114, format_spec=None)]).

class TemplateStr(ast.expr):
    _fields = ("values",)


class Interpolation(ast.expr):
    _fields = ("value", "str", "conversion", "format_spec")


def template(expression: str, conversion: int = -1) -> TemplateStr:
    value = ast.parse(expression, mode="eval").body
    return TemplateStr(values=[ast.Constant(value="Hi "),
                               Interpolation(value=value, str=expression,
                                             conversion=conversion, format_spec=None)])


def function_returning(value: ast.expr) -> ast.FunctionDef:
    """``def greet(name): return <value>`` with ``value`` put in by hand."""
    tree = ast.parse("def greet(name):\n    return None\n")
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    assert isinstance(function.body[0], ast.Return)
    function.body[0].value = value
    return function


def both_digests(node: ast.FunctionDef) -> str:
    """The digest of the one-pass walk (what keys use), checked against the plain rendering."""
    one_pass = analyze(copy.deepcopy(node), {}).digest
    assert one_pass == render(copy.deepcopy(node), {}).digest == digest(node)
    return one_pass


@pytest.mark.parametrize(("left", "right"), [
    (template("name"), template("title")),                       # what is interpolated
    (template("name"), template("name", conversion=ord("r"))),   # t"{name}" / t"{name!r}"
    (template("name"), ast.JoinedStr(values=[                    # a t-string / an f-string
        ast.Constant(value="Hi "), ast.FormattedValue(value=ast.Name(id="name", ctx=ast.Load()),
                                                      conversion=-1, format_spec=None)])),
])
def test_unknown_node_types_count_in_the_key(left: ast.expr, right: ast.expr) -> None:
    assert both_digests(function_returning(left)) != both_digests(function_returning(right))


def test_unknown_node_types_are_rendered_by_name_and_field() -> None:
    # Never skipped or rendered as something known: the node's class name and every set field.
    out: list[str] = []
    _dump(template("name"), out)
    assert "".join(out) == (
        "TemplateStr(values=[Constant(value=str:'Hi ',),Interpolation(value=Name(id=str:'name',"
        "ctx=Load(),),str=str:'name',conversion=int:-1,),],)")


def test_what_an_unknown_node_reads_is_followed() -> None:
    # A helper called only inside a t-string still belongs to the function's code.
    analysis = analyze(function_returning(template("shout(name)")), {})
    assert ("shout",) in analysis.chains
    assert ("name",) not in analysis.chains  # a parameter: local


def test_a_new_field_on_a_known_node_counts() -> None:
    # PEP 810 (3.15) marks lazy imports (module level only) with a flag on Import/ImportFrom;
    # any new field that is set counts, so `lazy import json` and `import json` cannot share a
    # key. Statements render alike wherever they are: a function body is the shortest carrier.
    lazy_import = type("Import", (ast.Import,), {"_fields": (*ast.Import._fields, "is_lazy")})
    tree = ast.parse("def load(path):\n    import json\n    return json.loads(path)\n")
    eager = tree.body[0]
    assert isinstance(eager, ast.FunctionDef)
    lazy = copy.deepcopy(eager)
    lazy.body[0] = lazy_import(names=[ast.alias(name="json")], is_lazy=1)
    not_lazy = copy.deepcopy(eager)
    not_lazy.body[0] = lazy_import(names=[ast.alias(name="json")], is_lazy=0)
    assert len({digest(eager), digest(lazy), digest(not_lazy)}) == 3


REMOVED_IN_3_14 = frozenset({"Num", "Str", "Bytes", "NameConstant", "Ellipsis"})


def package_trees() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
            for path in sorted(PACKAGE.rglob("*.py"))]


def test_the_ast_classes_removed_in_3_14_are_not_used() -> None:
    uses = []
    for path, tree in package_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in REMOVED_IN_3_14 \
                    and isinstance(node.value, ast.Name) and node.value.id == "ast":
                uses.append(f"{path.relative_to(REPO)}:{node.lineno}: ast.{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module == "ast":
                uses.extend(f"{path.relative_to(REPO)}:{node.lineno}: from ast import {a.name}"
                            for a in node.names if a.name in REMOVED_IN_3_14)
    assert not uses, "removed in Python 3.14 (use ast.Constant):\n" + "\n".join(uses)


def test_nothing_is_pickled_with_the_default_protocol() -> None:
    # 3.14 makes protocol 5 the default. The fast path of the key encoding writes pickle bytes
    # into keys (tests/keys/test_fast_paths.py pins them), so every pickler names its protocol.
    picklers = {"Pickler"}
    for _, tree in package_trees():
        picklers |= {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                     and any(isinstance(base, ast.Attribute) and base.attr == "Pickler"
                             for base in node.bases)}
    calls = []
    for path, tree in package_trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else \
                func.id if isinstance(func, ast.Name) else ""
            owner = func.value.id if isinstance(func, ast.Attribute) and \
                isinstance(func.value, ast.Name) else ""
            pickling = name in picklers or (name in {"dumps", "dump"}
                                             and owner in {"pickle", "cloudpickle"})
            if pickling:
                calls.append(node)
                assert any(k.arg == "protocol" for k in node.keywords), \
                    f"{path.relative_to(REPO)}:{node.lineno} pickles with the default protocol"
    assert len(calls) >= 2  # the key encoding's fast path and the opt-in pickle serializer


# -- the bytecode fallback -----------------------------------------------------------------------

def test_the_bytecode_fallback_does_not_see_the_adaptive_interpreter() -> None:
    # Where no source exists, the code object's bytes stand in for it. Since 3.11 the
    # interpreter rewrites a hot function's instructions in place (and 3.12's sys.monitoring
    # instruments them); co_code must keep showing the original ones, or a function would
    # change its key by running.
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent("""\
        def total(n):
            t = 0
            for i in range(n):
                t += i * 2
            return t
        """), "<no source>", "exec"), namespace)
    total = namespace["total"]
    before = bytecode_text(total)
    for _ in range(5000):
        total(10)
    assert bytecode_text(total) == before
    if sys.version_info >= (3, 12):
        monitoring = sys.monitoring
        tool = next(i for i in range(6) if monitoring.get_tool(i) is None)
        monitoring.use_tool_id(tool, "test_future_python")
        try:
            monitoring.register_callback(tool, monitoring.events.PY_START, lambda *_: None)
            monitoring.set_local_events(tool, total.__code__,
                                        monitoring.events.PY_START | monitoring.events.LINE)
            total(3)
            assert bytecode_text(total) == before
        finally:
            monitoring.set_local_events(tool, total.__code__, 0)
            monitoring.free_tool_id(tool)


# -- deferred annotations (3.14, PEP 649/749) ----------------------------------------------------

@pytest.mark.skipif(sys.version_info < (3, 14), reason="annotations are deferred from 3.14 on")
def test_an_annotation_naming_a_type_checking_import_does_not_break_binding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Legal from 3.14 on without `from __future__ import annotations`: the annotation is never
    # evaluated unless asked for. Keyword-only parameters make the key go through
    # inspect.signature, which evaluates annotations unless told not to.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "deferred"\nversion = "0"\n')
    (tmp_path / "deferred_mod.py").write_text(textwrap.dedent("""\
        from typing import TYPE_CHECKING

        from memo_replay import recorded

        if TYPE_CHECKING:
            from decimal import Decimal as OnlyForTypeCheckers


        @recorded
        def scale(x: int, *, by: OnlyForTypeCheckers = 2) -> int:
            return x * by
        """))
    monkeypatch.setenv("MEMO_MODE", "auto")
    monkeypatch.setenv("MEMO_STORE", str(tmp_path / "store"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import deferred_mod  # type: ignore[import-not-found]

    assert deferred_mod.scale.memo.key(3) == deferred_mod.scale.memo.key(3, by=2)
    assert deferred_mod.scale.memo.key(3) != deferred_mod.scale.memo.key(3, by=3)


# -- what the package claims ---------------------------------------------------------------------

def tox_pythons() -> list[str]:
    tox = configparser.ConfigParser()
    tox.read(REPO / "tox.ini", encoding="utf-8")
    envs = [e.strip() for e in tox["tox"]["envlist"].split(",")]
    return [f"3.{m[1]}" for e in envs if (m := re.fullmatch(r"py3(\d+)", e))]


def test_the_classifiers_claim_the_versions_tox_runs() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    claimed = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"]
               if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    tested = tox_pythons()
    assert claimed == tested, "pyproject.toml's classifiers and tox.ini's envlist disagree"
    assert project["requires-python"] == f">={tested[0]}"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"Python {tested[0]}–{tested[-1]}" in readme
