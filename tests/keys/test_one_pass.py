"""The fast paths of a first call's fingerprint give exactly what the slow, obvious ones give.

- :func:`memo_replay.keys.normalize.analyze` renders and reads a definition in one pass over the
  shared tree; the reference is the original pipeline: copy the node, :func:`clean` it, then
  :func:`digest` and :mod:`memo_replay.keys.reads`. Any difference would change keys.
- A module's tree is not kept: a definition is parsed again from its lines
  (:meth:`ModuleTree.definition`); the reference is the node in the whole module's tree.
- A module's source is read without :mod:`linecache`; the reference is what
  :mod:`tokenize` reads (encodings, BOM, line endings).

Checked over real code (standard library modules, memo_replay itself) and over sources written
to catch the edge cases: strings reaching column 0 inside methods, decorators over several
lines, tabs, CRLF and lone CR line endings, characters ``str.splitlines`` would split on.
"""

from __future__ import annotations

import ast
import os
import tokenize
from pathlib import Path
from typing import Any

import pytest

from memo_replay.keys.normalize import analyze, clean, digest
from memo_replay.keys.reads import attribute_names, function_reads, references
from memo_replay.keys.source import _copy, _parse, blocks, read_source
from memo_replay.keys.summaries import _counts_where_used

STDLIB = Path(os.__file__).parent
REAL_SOURCES = [STDLIB / name for name in ("ast.py", "inspect.py", "typing.py", "dataclasses.py",
                                           "argparse.py", "functools.py", "enum.py")]
REAL_SOURCES += sorted((Path(__file__).resolve().parents[2] / "memo_replay").rglob("*.py"))

TRICKY = '''\
import os
from memo_replay import recorded


@recorded
def plain(x: int = 1) -> int:
    """A docstring."""
    y: list[int] = [x]
    from os import path as p, sep
    import json.decoder
    return p.join(sep, json.decoder.__name__) + str(y)


class Outer:
    """Doc."""
    field: int = 0
    TEXT = """
not code:
def fake(): pass
"""

    @property
    def value(self) -> int:
        return self.field

    @staticmethod
    def helper(
        a,
        b,
    ):
        """Doc."""
        text = """
column zero inside a method
"""
        return a + b + len(text)

    def _step(self, t: str) -> str:
        local: dict[str, int] = {}
        class Inner:
            shape: int = 1
            def deep(self):
                z: int = 3
                return z
        return t + str(local) + str(Inner)

    @decorate(
        option=1,
    )
    async def later(self):
        async with self as s:
            yield s

    def render(self): return "r"; x = 1


def outer():
    def inner():
        nonlocal_value = 1
        return lambda q: q + nonlocal_value
    try:
        pass
    except ValueError as exc:
        raise TypeError(getattr(exc, "args")) from None
    return inner


if os.name:
    def platform_specific():
        return "a"
else:
    def platform_specific():
        return "b"
'''


def _reference_function(node: Any) -> tuple[Any, ...]:
    copied = _copy(node)
    clean(copied, {}, text=False)
    chains, imports = function_reads(copied)
    return (digest(copied), tuple(map(tuple, chains)), attribute_names(copied),
            [ast.dump(i) for i in imports])


def _reference_class(node: ast.ClassDef) -> tuple[Any, ...]:
    copied = _copy(node)
    clean(copied, {}, text=False)
    members = {s.name for s in copied.body if isinstance(s, (ast.FunctionDef,
               ast.AsyncFunctionDef)) and _counts_where_used(s)}
    copied.body = [s for s in copied.body if getattr(s, "name", None) not in members or
                   not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))] or [ast.Pass()]
    return (digest(copied), tuple(map(tuple, references(copied))), attribute_names(copied),
            frozenset(members))


def _definitions(tree: ast.AST, prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for child in blocks(tree):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[prefix + child.name] = child
            inner = "." if isinstance(child, ast.ClassDef) else ".<locals>."
            found.update(_definitions(child, prefix + child.name + inner))
        else:
            found.update(_definitions(child, prefix))
    return found


def _sources() -> list[tuple[str, str]]:
    texts = [("tricky", TRICKY), ("tricky-tabs", TRICKY.replace("    ", "\t"))]
    for path in REAL_SOURCES:
        text = read_source(str(path))
        assert text is not None, path
        texts.append((path.name, text))
    return texts


@pytest.mark.parametrize(("name", "text"), _sources(), ids=[n for n, _ in _sources()])
def test_one_pass_equals_the_reference_pipeline(name: str, text: str) -> None:
    checked = 0
    for node in _definitions(ast.parse(text)).values():
        if isinstance(node, ast.ClassDef):
            expected = _reference_class(node)
            members = expected[3]
            found = analyze(node, {}, drop=members)
            assert (found.digest, found.chains, found.attributes, members) == expected
            whole = _copy(node)
            clean(whole, {}, text=False)
            assert analyze(node, {}).digest == digest(whole)
        else:
            found = analyze(node, {})
            assert (found.digest, found.chains, found.attributes,
                    [ast.dump(i) for i in found.imports]) == _reference_function(node)
        checked += 1
    assert checked or "def " not in text


def test_recorded_is_left_out_by_name_or_by_value() -> None:
    node = ast.parse(TRICKY).body[2]
    assert isinstance(node, ast.FunctionDef)
    from memo_replay import recorded

    by_value = analyze(node, {"recorded": recorded})
    by_name = analyze(node, {})
    other = analyze(node, {"recorded": print})  # a decorator that happens to be called so
    assert by_value.digest == by_name.digest != other.digest
    assert ["recorded"] not in [list(chain) for chain in by_name.chains]


@pytest.mark.parametrize(("name", "text"), _sources(), ids=[n for n, _ in _sources()])
def test_a_definition_parsed_from_its_lines_equals_the_whole_modules(name: str,
                                                                     text: str) -> None:
    module = _parse(text)
    assert module is not None
    whole = _definitions(ast.parse(text))
    assert set(module.by_qualname) == set(whole)
    for qualname, span in module.by_qualname.items():
        node = module.definition(span)
        assert node is not None, qualname
        assert analyze(node, {}).digest == analyze(whole[qualname], {}).digest, qualname
        assert ast.dump(node) == ast.dump(whole[qualname]), qualname


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_sources_read_like_tokenize_reads_them(tmp_path: Path, newline: str) -> None:
    text = TRICKY + 'SPECIAL = "\x0c \x0b \x1c \x85 \u2028 é"\n'
    path = tmp_path / "module.py"
    path.write_bytes(text.replace("\n", newline).encode())
    with tokenize.open(path) as file:
        expected = file.read()
    assert read_source(str(path)) == expected
    module = _parse(expected)
    assert module is not None
    node = module.definition(module.by_qualname["Outer._step"])
    assert node is not None
    assert node.name == "_step"


@pytest.mark.parametrize(("encoding", "header"), [
    ("latin-1", b"# -*- coding: latin-1 -*-\n"),
    ("utf-8", b"\xef\xbb\xbf"),
    ("utf-8", b"#!/usr/bin/env python\n# coding: utf-8\n"),
    ("cp1252", b"#!/usr/bin/env python\n# vim: set fileencoding=cp1252 :\n"),
])
def test_encodings_are_decoded_like_tokenize_does(tmp_path: Path, encoding: str,
                                                  header: bytes) -> None:
    body = 'NAME = "caf\u00e9 \u2014"\n' if encoding != "latin-1" else 'NAME = "caf\u00e9"\n'
    path = tmp_path / "module.py"
    path.write_bytes(header + body.encode(encoding))
    with tokenize.open(path) as file:
        expected = file.read()
    assert read_source(str(path)) == expected


def test_undecodable_source_has_none(tmp_path: Path) -> None:
    path = tmp_path / "module.py"
    path.write_bytes(b'NAME = "\xff\xfe"\n')
    assert read_source(str(path)) is None


def test_the_tree_is_not_kept(tmp_path: Path) -> None:
    """What a parsed module keeps: its text, spans and the module-level statements that bind
    names — not the bodies of its definitions (see ModuleTree)."""
    module = _parse(TRICKY)
    assert module is not None
    held = [getattr(module, name) for name in type(module).__slots__]
    assert not any(isinstance(value, ast.Module) for value in held)
    bindings = module.bindings("platform_specific")
    assert len(bindings) == 2
    assert all(isinstance(node, ast.FunctionDef) for node in bindings)
    assert module.bindings("platform_specific") is bindings, "the same tuple each time"


@pytest.mark.parametrize(("name", "text"), _sources()[:4], ids=[n for n, _ in _sources()[:4]])
def test_the_observed_check_digests_functions_as_from_the_whole_tree(name: str,
                                                                     text: str) -> None:
    from memo_replay.keys.normalize import definition_digest
    from memo_replay.keys.observed import _Functions

    source = text + "\n\ndef Outer():\n    return 1\n\n\nclass Outer:\n    pass\n"
    module = _parse(source)
    assert module is not None
    functions = _Functions(module)
    whole = _definitions(ast.parse(source))
    last_functions: dict[str, Any] = {}
    for qualname, node in _all_functions(ast.parse(source)):
        last_functions[qualname] = node
    assert last_functions
    for qualname, node in last_functions.items():
        assert functions.digest(qualname) == definition_digest(node, {}), qualname
    assert isinstance(whole["Outer"], ast.ClassDef)
    assert functions.digest("Outer") is not None, "a function shadowed by a class still counts"


def _all_functions(tree: ast.AST, prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for child in blocks(tree):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((prefix + child.name, child))
            found += _all_functions(child, prefix + child.name + ".<locals>.")
        elif isinstance(child, ast.ClassDef):
            found += _all_functions(child, prefix + child.name + ".")
        else:
            found += _all_functions(child, prefix)
    return found
