"""`@recorded` keeps the decorated function's signature for type checkers (mypy --strict)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = '''
from memo_replay import recorded


@recorded
def f(x: int, y: str = "a") -> float:
    return 1.0


@recorded(files=["a"], version="2")
async def g(x: int) -> str:
    return ""


class Translator:
    @recorded(ignore=["self"])
    def translate(self, source: str) -> int:
        return len(source)


async def use() -> None:
    reveal_type(f(1, y="b"))
    reveal_type(await g(1))
    reveal_type(Translator().translate("x"))
    reveal_type(f.memo.key(1))
    f("wrong")  # the one expected error
'''


def test_mypy_strict_keeps_signatures_of_functions_coroutines_and_methods(tmp_path: Path) -> None:
    module = tmp_path / "snippet.py"
    module.write_text(textwrap.dedent(SNIPPET))
    stdout, stderr, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy_cache"),
         str(module)])
    revealed = [line.split("Revealed type is ")[1] for line in stdout.splitlines()
                if "Revealed type is" in line]
    assert revealed == ['"float"', '"str"', '"int"', '"str"'], stdout + stderr
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, stdout
    assert 'incompatible type "str"; expected "int"' in errors[0]
    assert status == 1
