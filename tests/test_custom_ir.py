"""A custom IR the way a user registers it: lark parse trees through a `TreeSerializer`, keyed
on the grammar file; and a pydantic IR typed only by the return annotation (`list[Node]`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from conftest import entry_files, last_json

if TYPE_CHECKING:
    from conftest import Project


GRAMMAR = r"""
start: assign+
assign: NAME "=" expr ";"
?expr: NUMBER -> number
     | NAME -> var
     | expr "+" expr -> add
     | "(" expr ")"
%import common.CNAME -> NAME
%import common.NUMBER
%import common.WS
%ignore WS
"""

IR = r'''
"""Parse trees recorded with a serializer registered at import."""

from __future__ import annotations

import json
from pathlib import Path

import lark
from lark import Lark, Token, Tree

import memo_replay
from memo_replay import recorded


class TreeSerializer:
    """A lark Tree as JSON: rule names (kept as Tokens when lark made them Tokens) and, for
    each token, its type and value."""

    id = "lark-tree"
    version = 1
    payload = "json"

    def dumps(self, value: Tree) -> str:
        return json.dumps(_to_json(value), ensure_ascii=False)

    def loads(self, data: str | bytes) -> Tree:
        return _from_json(json.loads(data))


def _to_json(node):
    if isinstance(node, Tree):
        data = [node.data.type, str(node.data)] if isinstance(node.data, Token) else node.data
        return {"tree": data, "children": [_to_json(child) for child in node.children]}
    return {"token": node.type, "value": str(node)}


def _from_json(doc):
    if "tree" in doc:
        data = Token(*doc["tree"]) if isinstance(doc["tree"], list) else doc["tree"]
        return Tree(data, [_from_json(child) for child in doc["children"]])
    return Token(doc["token"], doc["value"])


memo_replay.register_serializer(lark.Tree, TreeSerializer())


@recorded(files=["grammar.lark"])
def parse(text: str) -> lark.Tree:
    with open(Path(__file__).with_name("calls.log"), "a") as fh:
        fh.write("parse\n")
    grammar = Path(__file__).with_name("grammar.lark").read_text()
    return Lark(grammar, parser="lalr").parse(text)
'''

SOURCE = "x = 1 + (y + 22); total = x + 3;"

CHECK = f"""
import json
from pathlib import Path

import lark
from lark import Lark, Token

import ir

tree = ir.parse({SOURCE!r})
direct = Lark(Path("grammar.lark").read_text(), parser="lalr").parse({SOURCE!r})
leaves = list(tree.scan_values(lambda v: True))
print(json.dumps({{
    "repr": repr(tree),
    "is_tree": type(tree) is lark.Tree,
    "equal": tree == direct,
    "same_repr_as_direct": repr(tree) == repr(direct),
    "leaves": [[type(v).__name__, v.type, str(v)] for v in leaves],
}}))
"""

STRICT = f"""
import ir
from memo_replay import ReplayMiss, SerializationError
try:
    ir.parse({SOURCE!r})
except (ReplayMiss, SerializationError) as exc:
    print(type(exc).__name__ + ":", str(exc).replace("\\n", " "))
else:
    print("REPLAYED")
"""


def _lark_project(project: Project) -> None:
    project.write("grammar.lark", GRAMMAR)
    project.write("ir.py", IR)


def test_parse_tree_records_and_replays_strictly(project: Project) -> None:
    _lark_project(project)
    recorded_run = last_json(project.run(CHECK, mode="record").stdout)
    assert recorded_run["is_tree"]
    assert recorded_run["equal"]
    assert ["Token", "NAME", "y"] in recorded_run["leaves"]
    assert project.calls() == ["parse"]

    [path] = entry_files(project.root / "fixtures_store")
    document = json.loads(path.read_text())
    result = document["result"]
    assert (result["serializer"], result["serializer_version"]) == ("lark-tree", 1)
    assert result["encoding"] == "json"
    assert result["payload"]["tree"] == ["RULE", "start"]  # readable JSON in the entry
    assert list(document["components"]["files"]) == ["grammar.lark"]

    replayed = last_json(project.run(CHECK, mode="replay").stdout)
    assert replayed == recorded_run  # same repr, Tokens with their types, equal to a re-parse
    assert replayed["same_repr_as_direct"]
    assert project.calls() == ["parse"]  # the parser never ran again


def test_editing_the_grammar_misses_strictly_and_rerecords_in_auto(project: Project) -> None:
    _lark_project(project)
    project.run(CHECK, mode="record")
    [old_path] = entry_files(project.root / "fixtures_store")

    project.replace("grammar.lark", '     | expr "+" expr -> add\n',
                    '     | expr "+" expr -> add\n     | expr "-" expr -> sub\n')
    strict = project.run(STRICT, mode="replay").stdout
    assert strict.startswith("ReplayMiss:")
    assert "file `grammar.lark` changed" in strict
    assert project.calls() == ["parse"]

    auto = last_json(project.run(CHECK, mode="auto").stdout)
    assert auto["is_tree"]
    assert auto["equal"]
    assert project.calls() == ["parse", "parse"]  # re-recorded against the new grammar
    paths = entry_files(project.root / "fixtures_store")
    assert len(paths) == 2
    assert old_path in paths

    assert project.run(STRICT, mode="replay").stdout.strip() == "REPLAYED"
    assert project.calls() == ["parse", "parse"]


def test_replaying_without_the_registration_says_to_register(project: Project) -> None:
    _lark_project(project)
    project.run(CHECK, mode="record")
    [path] = entry_files(project.root / "fixtures_store")
    recorded_bytes = path.read_bytes()

    # the same module, minus the registration (the key does not change: it is not the
    # function's code)
    project.replace("ir.py", "memo_replay.register_serializer(lark.Tree, TreeSerializer())\n",
                    "")
    strict = project.run(STRICT, mode="replay").stdout
    assert strict.startswith("SerializationError:"), strict
    assert "'lark-tree'" in strict
    assert "not registered in this process" in strict
    assert "memo_replay.register_serializer(" in strict
    assert project.calls() == ["parse"]

    # auto cannot replay it either, and cannot record a Tree without the serializer: it says
    # so instead of writing anything
    auto = project.run(STRICT, mode="auto", env={"PYTHONWARNINGS": "always"})
    assert "lark-tree" in auto.stderr  # the warning about the unreadable recording
    assert auto.stdout.startswith("SerializationError:")
    assert "register_serializer(Tree" in auto.stdout
    assert path.read_bytes() == recorded_bytes


NODES = r'''
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from memo_replay import recorded


class Node(BaseModel):
    kind: str
    name: str
    children: list[Node] = []


@recorded
def lower(source: str) -> list[Node]:
    with open(Path(__file__).with_name("calls.log"), "a") as fh:
        fh.write("lower\n")
    return [Node(kind="machine", name=line.split()[0],
                 children=[Node(kind="state", name=s) for s in line.split()[1:]])
            for line in source.splitlines()]
'''

CHECK_NODES = """
import json
import nodes

ir = nodes.lower("door open closed\\nlight on off dim")
expected = [
    nodes.Node(kind="machine", name="door", children=[
        nodes.Node(kind="state", name="open"), nodes.Node(kind="state", name="closed")]),
    nodes.Node(kind="machine", name="light", children=[
        nodes.Node(kind="state", name=s) for s in ("on", "off", "dim")]),
]
print(json.dumps({
    "list": type(ir) is list,
    "nodes": all(type(n) is nodes.Node for n in ir)
             and all(type(c) is nodes.Node for n in ir for c in n.children),
    "equal": ir == expected,
    "repr": repr(ir),
}))
"""


def test_pydantic_ir_typed_by_return_annotation(project: Project) -> None:
    project.write("nodes.py", NODES)
    recorded_run = last_json(project.run(CHECK_NODES, mode="record").stdout)
    assert recorded_run["list"]
    assert recorded_run["nodes"]
    assert recorded_run["equal"]
    [path] = entry_files(project.root / "fixtures_store")
    result = json.loads(path.read_text())["result"]
    assert (result["serializer"], result["type"]) == ("typed", "builtins:list[nodes:Node]")
    assert result["payload"][1]["children"][2] == {"kind": "state", "name": "dim",
                                                    "children": []}

    assert last_json(project.run(CHECK_NODES, mode="replay").stdout) == recorded_run
    assert project.calls() == ["lower"]
