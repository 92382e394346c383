"""A project class passed as an argument counts by its fingerprint, not only by its name.

`extract(text, Invoice)` — a structured-output schema — is the commonest LLM pattern: adding a
field to `Invoice` changes the answer, so strict replay must miss and name the argument. Every
step runs in a fresh interpreter of a real throwaway project.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Project

EXTRACT = '''
from memo_replay import recorded


@recorded
def extract(text, schema):
    with open("calls.log", "a") as log:
        log.write(text + "\\n")
    return {"text": text, "schema": str(schema)}
'''

PYDANTIC_SCHEMAS = '''
from pydantic import BaseModel, Field


class Invoice(BaseModel):
    number: str = Field(description="the invoice number")
    total: float
'''

DATACLASS_SCHEMAS = '''
import dataclasses


@dataclasses.dataclass
class Row:
    name: str
    size: int = 0
'''

CALL = '''
import sys
from memo_replay import ReplayMiss
import app, schemas
try:
    print(app.extract("Invoice 7, total 12.5", {target}))
except ReplayMiss as miss:
    print("MISS", miss)
    sys.exit(3)
'''


def _setup(project: Project, schemas: str) -> None:
    project.write("app.py", EXTRACT)
    project.write("schemas.py", schemas)


def _replay(project: Project, target: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = project.run(CALL.format(target=target), mode="replay", env=env, check=False)
    assert result.returncode in (0, 3), result.stderr
    return result.returncode, result.stdout


def _record(project: Project, target: str, env: dict[str, str] | None = None) -> None:
    project.run(CALL.format(target=target), mode="record", env=env)


@pytest.mark.parametrize(("old", "new"), [
    ("    total: float\n", "    total: float\n    currency: str = 'EUR'\n"),  # a new field
    ("total: float", "total: int"),  # a field's type
    ('description="the invoice number"', 'description="the invoice id"'),  # what the LLM sees
], ids=["new-field", "field-type", "field-description"])
def test_pydantic_schema_edit_misses_naming_the_argument(project: Project, old: str,
                                                         new: str) -> None:
    _setup(project, PYDANTIC_SCHEMAS)
    _record(project, "schemas.Invoice")
    assert _replay(project, "schemas.Invoice")[0] == 0  # unchanged class: replays
    project.replace("schemas.py", old, new)
    code, out = _replay(project, "schemas.Invoice")
    assert code == 3, out
    assert "argument `schema` differs" in out
    # The preview shows the start of the class's fingerprint: the two differ.
    shown = re.findall(r"<class schemas\.Invoice (\w+)…>", out)
    assert len(shown) == 2, out
    assert shown[0] != shown[1]


def test_unchanged_class_replays_and_cosmetic_edits_keep(project: Project) -> None:
    _setup(project, PYDANTIC_SCHEMAS)
    _record(project, "schemas.Invoice")
    project.replace("schemas.py", "class Invoice(BaseModel):\n",
                    "class Invoice(BaseModel):  # the schema\n\n")
    project.replace("schemas.py", 'Field(description="the invoice number")',
                    "Field(\n        description='the invoice number',\n    )")
    for seed in ("0", "1", "random"):  # another process, another hash seed: the same key
        assert _replay(project, "schemas.Invoice", env={"PYTHONHASHSEED": seed})[0] == 0
    assert project.calls() == ["Invoice 7, total 12.5"]  # recorded once, replayed after


def test_pydantic_docstring_counts_it_is_the_schema_description(project: Project) -> None:
    """A model's docstring is its JSON schema's description, which the model is shown."""
    _setup(project, PYDANTIC_SCHEMAS)
    _record(project, "schemas.Invoice")
    project.replace("schemas.py", "class Invoice(BaseModel):\n",
                    "class Invoice(BaseModel):\n    \"\"\"An invoice.\"\"\"\n\n")
    code, out = _replay(project, "schemas.Invoice")
    assert code == 3, out
    assert "argument `schema` differs" in out


def test_dataclass_docstring_and_comment_keep(project: Project) -> None:
    _setup(project, DATACLASS_SCHEMAS)
    _record(project, "schemas.Row")
    project.replace("schemas.py", "class Row:\n", "class Row:  # a row\n    \"\"\"A row.\"\"\"\n")
    assert _replay(project, "schemas.Row")[0] == 0


def test_dataclass_field_edit_misses(project: Project) -> None:
    _setup(project, DATACLASS_SCHEMAS)
    _record(project, "schemas.Row")
    assert _replay(project, "schemas.Row")[0] == 0
    project.replace("schemas.py", "    size: int = 0\n", "    size: int = 0\n    unit: str = ''\n")
    code, out = _replay(project, "schemas.Row")
    assert code == 3, out
    assert "argument `schema` differs" in out


def test_helper_of_the_class_counts(project: Project) -> None:
    """A validator's helper is part of the class's fingerprint."""
    _setup(project, '''
        from pydantic import BaseModel, field_validator

        from norm import clean


        class Invoice(BaseModel):
            number: str

            @field_validator("number")
            @classmethod
            def _clean(cls, value: str) -> str:
                return clean(value)
    ''')
    project.write("norm.py", "def clean(value):\n    return value.strip()\n")
    _record(project, "schemas.Invoice")
    project.replace("norm.py", "value.strip()", "value.strip().upper()")
    code, out = _replay(project, "schemas.Invoice")
    assert code == 3, out
    assert "argument `schema` differs" in out


def test_same_qualname_in_two_modules_does_not_collide(project: Project) -> None:
    _setup(project, PYDANTIC_SCHEMAS)
    project.write("other/schemas.py", PYDANTIC_SCHEMAS.replace("total: float", "total: int"))
    out = project.run('''
        import app, schemas
        from other import schemas as other
        key = app.extract.memo.key
        print(key("t", schemas.Invoice) != key("t", other.Invoice))
    ''', mode="off").stdout
    assert out.strip() == "True"


def test_dynamic_models_with_one_name_differ_by_schema(project: Project) -> None:
    """Two pydantic models built at run time under one name have no source: the schema tells
    them apart."""
    _setup(project, '''
        from pydantic import create_model

        A = create_model("Invoice", total=(float, ...))
        B = create_model("Invoice", total=(int, ...))
    ''')
    out = project.run('''
        import app, schemas
        print(app.extract.memo.key("t", schemas.A) != app.extract.memo.key("t", schemas.B))
    ''', mode="off").stdout
    assert out.strip() == "True"


def test_classes_with_one_name_and_one_source_differ_by_their_values(project: Project) -> None:
    """A class redefined under the same name, and classes made by a factory (one source, one
    qualname): their own plain class attributes tell them apart, like a closure's values."""
    _setup(project, '''
        class Config:
            retries = 1


        Old = Config


        class Config:
            retries = 2


        def make(limit):
            class Limits:
                maximum = limit
            return Limits


        Small, Large = make(10), make(1000)
    ''')
    out = project.run('''
        import app, schemas
        key = app.extract.memo.key
        print(key("t", schemas.Old) != key("t", schemas.Config),
              key("t", schemas.Small) != key("t", schemas.Large))
    ''', mode="off").stdout.split()
    assert out == ["True", "True"]


@pytest.mark.parametrize("target", ["dict", "int", "schemas.Enumish"])
def test_stdlib_class_argument_is_stable_across_processes_and_hash_seeds(
        project: Project, target: str) -> None:
    _setup(project, "import enum\n\n\nclass Enumish(enum.Enum):\n    A = 1\n")
    _record(project, target, env={"PYTHONHASHSEED": "1"})
    for seed in ("2", "random", "0"):
        assert _replay(project, target, env={"PYTHONHASHSEED": seed})[0] == 0
    keys = {project.run(f"import app, schemas; print(app.extract.memo.key('t', {target}))",
                        mode="off", env={"PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2", "3")}
    assert len(keys) == 1


def test_stdlib_and_third_party_classes_count_by_name(project: Project) -> None:
    """Classes that are not the project's keep today's encoding: by name only."""
    _setup(project, "")
    out = project.run('''
        import collections, pydantic
        from pathlib import Path
        from memo_replay.keys.encoding import Encoder
        encoder = Encoder(Path.cwd())
        print(encoder.encode(dict), encoder.encode(collections.OrderedDict),
              encoder.encode(pydantic.BaseModel))
    ''', mode="off").stdout.split()
    assert out == ["b'Cbuiltins.dict;'", "b'Ccollections.OrderedDict;'",
                   "b'Cpydantic.main.BaseModel;'"]


def test_class_in_a_container_and_a_self_referencing_registry(project: Project) -> None:
    """A class inside a list argument counts by fingerprint too, and a class whose code reads a
    registry holding the class itself terminates."""
    _setup(project, '''
        REGISTRY = {}


        class Node:
            kinds = REGISTRY

            def register(self):
                return REGISTRY


        REGISTRY["node"] = Node
    ''')
    project.run("import app, schemas; app.extract('t', [schemas.Node])", mode="record")
    call = "import app, schemas; print(app.extract('t', [schemas.Node]))"
    assert project.run(call, mode="replay", check=False).returncode == 0
    project.replace("schemas.py", "return REGISTRY", "return dict(REGISTRY)")
    result = project.run(call, mode="replay", check=False)
    assert result.returncode != 0
    assert "argument `schema` differs" in result.stderr


def test_constant_holding_project_classes_counts_their_fingerprints(project: Project) -> None:
    """The code fingerprint encodes constants with the same encoder: a table of schemas counts
    each schema's fingerprint."""
    _setup(project, PYDANTIC_SCHEMAS)
    project.write("router.py", '''
        from memo_replay import recorded

        from schemas import Invoice

        SCHEMAS = {"invoice": Invoice}


        @recorded
        def route(kind):
            return sorted(SCHEMAS[kind].model_fields)
    ''')
    call = "import router; print(router.route('invoice'))"
    project.run(call, mode="record")
    assert project.run(call, mode="replay", check=False).returncode == 0
    project.replace("schemas.py", "    total: float\n", "    total: float\n    due: str = ''\n")
    result = project.run(call, mode="replay", check=False)
    assert result.returncode != 0
    assert "SCHEMAS`" in result.stderr


def test_fast_path_does_not_bypass_the_class_encoding(project: Project) -> None:
    """The remembered key of a class argument (found again by the arguments' identity) is the
    fingerprinted one, and a name-only encoding would differ from it."""
    _setup(project, PYDANTIC_SCHEMAS)
    out = project.run('''
        from xxhash import xxh3_128_hexdigest
        import app, schemas
        first = app.extract.memo.key("t", schemas.Invoice)  # composed
        again = app.extract.memo.key("t", schemas.Invoice)  # remembered
        keys = app.extract.memo.keys
        hashes = keys.arguments.hashes(keys.bind(("t", schemas.Invoice), {}))
        print(first == again, hashes["schema"] != xxh3_128_hexdigest(b"Cschemas.Invoice;"))
    ''', mode="off").stdout.split()
    assert out == ["True", "True"]


def test_pydantic_model_without_a_json_schema_counts_by_its_code(project: Project) -> None:
    """A field type with no JSON schema (arbitrary_types_allowed): the class's fingerprint
    alone counts, stably across processes."""
    _setup(project, '''
        from pydantic import BaseModel, ConfigDict


        class Opaque:
            pass


        class Holder(BaseModel):
            model_config = ConfigDict(arbitrary_types_allowed=True)
            thing: Opaque
    ''')
    _record(project, "schemas.Holder")
    assert _replay(project, "schemas.Holder", env={"PYTHONHASHSEED": "7"})[0] == 0
    project.replace("schemas.py", "    thing: Opaque\n", "    thing: Opaque\n    size: int = 0\n")
    code, out = _replay(project, "schemas.Holder")
    assert code == 3, out
    assert "argument `schema` differs" in out
