"""Every example in memo_replay's docstrings runs, and shows what it really prints.

The API reference (docs/reference.md) renders docstrings as Markdown, where a bare `>>>` example
becomes nested blockquotes on one line: examples are fenced ```pycon blocks instead. This test
finds every such block in the package's docstrings (module, class, function and attribute
docstrings, read from the source with `ast`, since Python keeps no attribute docstrings) and
runs it with `doctest`, each block on its own in a fresh interpreter (a `__main__` session, as
in a REPL), in a temporary working directory, in mode `auto` (whether or not `CI` is set)
with a store of its own, so nothing is written to the repository. A `>>>` line outside a
fence is an error: it would render badly.

(`python -m doctest` on a module would read the closing ``` fence as expected output: these
examples are run here, not by `--doctest-modules`.)
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import REPO

PACKAGE = REPO / "memo_replay"
FENCE = re.compile(r"^```pycon\n(?P<body>.*?)^```$", re.M | re.S)
WIDTH = 80
"""The widest code line the site shows without cutting it (the docs' rule for code blocks)."""


class Example(NamedTuple):
    where: str
    """`memo_replay/module.py:Object.attribute`, for the test id and the failure."""
    file: Path
    line: int
    """Where the example starts in the file (0-based, as doctest counts)."""
    body: str


def _docstrings(tree: ast.Module) -> list[tuple[str, int, str]]:
    """(qualified name, line, cleaned text) of every docstring in a module: the module's,
    each class's and function's, and each string literal right after an assignment."""
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, name: str) -> None:
        body = getattr(node, "body", [])
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            text = ast.get_docstring(node)
            if text is not None:
                found.append((name, body[0].lineno, text))
        previous: ast.stmt | None = None
        for statement in body:
            if isinstance(statement, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(statement, f"{name}.{statement.name}" if name else statement.name)
            elif isinstance(statement, (ast.If, ast.Try, ast.With)):
                visit(statement, name)  # definitions under `if TYPE_CHECKING:` and the like
            elif isinstance(previous, (ast.Assign, ast.AnnAssign)) \
                    and isinstance(statement, ast.Expr) \
                    and isinstance(statement.value, ast.Constant) \
                    and isinstance(statement.value.value, str):
                target = previous.targets[0] if isinstance(previous, ast.Assign) \
                    else previous.target
                label = ast.unparse(target)
                found.append((f"{name}.{label}" if name else label, statement.lineno,
                              ast.get_docstring(ast.Module([statement], [])) or ""))
            previous = statement

    visit(tree, "")
    return found


def _collect() -> tuple[list[Example], list[str]]:
    """Every ```pycon block, and every docstring with a `>>>` outside one."""
    examples: list[Example] = []
    bare: list[str] = []
    for file in sorted(PACKAGE.rglob("*.py")):
        relative = file.relative_to(REPO).as_posix()
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for name, line, text in _docstrings(tree):
            where = f"{relative}:{name}" if name else relative
            for match in FENCE.finditer(text):
                # doctest numbers from 0: the fence body's first line, 0-based, in the file
                first = line - 1 + text[:match.start("body")].count("\n")
                examples.append(Example(where, file, first, match["body"]))
            if ">>>" in FENCE.sub("", text):
                bare.append(where)
    return examples, bare


EXAMPLES, BARE = _collect()


def test_examples_are_found() -> None:
    # The reference's examples (@recorded, Recorded, Memo, mode, Store, register_serializer…):
    # a collector that finds nothing would make the test below pass vacuously.
    assert len(EXAMPLES) >= 10, [example.where for example in EXAMPLES]


def test_no_example_outside_a_fence() -> None:
    assert not BARE, ("docstrings with a `>>>` example outside a ```pycon fence (the site "
                      f"renders it as nested blockquotes): {BARE}")


RUN = """
import doctest, sys

name, file, line = sys.argv[1], sys.argv[2], int(sys.argv[3])
test = doctest.DocTestParser().get_doctest(sys.stdin.read(), {"__name__": "__main__"}, name,
                                           file, line)
result = doctest.DocTestRunner(verbose=False).run(test)
sys.exit(1 if result.failed or not result.attempted else 0)
"""
"""Runs one example, read from stdin, in a fresh interpreter: `__main__` is a `python -c`
module, as in a REPL, so the functions an example defines are `__main__.<name>`."""


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.where for example in EXAMPLES])
def test_docstring_example_runs(example: Example, tmp_path: Path) -> None:
    wide = [line for line in example.body.splitlines() if len(line) > WIDTH]
    assert not wide, f"{example.where}: example lines over {WIDTH} characters: {wide}"
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("MEMO_") and name != "CI"}
    env.update(MEMO_MODE="auto", MEMO_STORE=str(tmp_path / "fixtures_store"), NO_COLOR="1")
    result = subprocess.run([sys.executable, "-c", RUN, example.where, str(example.file),
                             str(example.line)], input=example.body, cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (f"{example.where}: the example fails (or has no `>>>` "
                                    f"line):\n{result.stdout}{result.stderr}")
