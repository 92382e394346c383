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


def _mypy(tmp_path: Path, snippet: str) -> tuple[list[str], list[str], str, int]:
    """mypy --strict on ``snippet``: the revealed types, the error lines, the output, the
    exit status."""
    module = tmp_path / "snippet.py"
    module.write_text(textwrap.dedent(snippet))
    stdout, stderr, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy_cache"),
         str(module)])
    revealed = [line.split("Revealed type is ")[1] for line in stdout.splitlines()
                if "Revealed type is" in line]
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    return revealed, errors, stdout + stderr, status


def test_mypy_strict_keeps_signatures_of_functions_coroutines_and_methods(tmp_path: Path) -> None:
    revealed, errors, output, status = _mypy(tmp_path, SNIPPET)
    assert revealed == ['"float"', '"str"', '"int"', '"str"'], output
    assert len(errors) == 1, output
    assert 'incompatible type "str"; expected "int"' in errors[0]
    assert status == 1


BOUND_SNIPPET = '''
from memo_replay import recorded


class Translator:
    @recorded(ignore=["self"])
    def translate(self, source: str, n: int = 1) -> int:
        return len(source)


inst = Translator()
reveal_type(inst.translate("x"))
reveal_type(inst.translate.memo.key("x", n=2))
reveal_type(inst.translate.memo.explain("x").matched)
reveal_type(Translator.translate.memo.key(inst, "x"))
inst.translate.memo.key(3)  # the one expected error
'''


def test_memo_of_a_bound_method_is_typed_without_self(tmp_path: Path) -> None:
    """``inst.method.memo`` type-checks as the method bound to ``inst``: ``key`` and
    ``explain`` take the call's arguments without ``self``."""
    revealed, errors, output, status = _mypy(tmp_path, BOUND_SNIPPET)
    assert revealed == ['"int"', '"str"', '"bool"', '"str"'], output
    assert len(errors) == 1, output
    assert 'Argument 1 to "key" of "BoundMemo" has incompatible type "int"; expected "str"' \
        in errors[0]
    assert status == 1


STREAMS = '''
from collections.abc import AsyncIterator, Generator, Iterator
from memo_replay import recorded


class Chunk:
    text: str = ""


@recorded
def tokens(prompt: str) -> Iterator[Chunk]:
    yield Chunk()


@recorded(replay_timing="recorded")
async def atokens(prompt: str) -> AsyncIterator[str]:
    yield prompt


@recorded
def summary(prompt: str) -> Generator[str, None, int]:
    yield prompt
    return 1


async def use() -> None:
    for chunk in tokens("x"):
        reveal_type(chunk)
    async for text in atokens("x"):
        reveal_type(text)
    reveal_type(summary("x"))
    tokens(1)  # the one expected error
'''


def test_mypy_strict_sees_the_items_of_recorded_streams(tmp_path: Path) -> None:
    revealed, errors, output, _ = _mypy(tmp_path, STREAMS)
    assert revealed == ['"snippet.Chunk"', '"str"', '"typing.Generator[str, None, int]"'], output
    assert len(errors) == 1, output
    assert 'incompatible type "int"; expected "str"' in errors[0]


WRAPPED = '''
from memo_replay import recorded


def complete(prompt: str, api_key: str) -> str:
    return prompt


checked = recorded(complete, ignore=["api_key"], version=2)


def use() -> None:
    reveal_type(checked("x", api_key="k"))
    checked(1, api_key="k")  # the one expected error
'''


def test_a_callable_wrapped_at_the_call_site_with_options_is_typed(tmp_path: Path) -> None:
    """``recorded(lib.fn, ignore=[...])``, as the migration guides write it, type-checks and
    keeps the callable's signature."""
    revealed, errors, output, _ = _mypy(tmp_path, WRAPPED)
    assert revealed == ['"str"'], output
    assert len(errors) == 1, output
    assert 'incompatible type "int"; expected "str"' in errors[0]
