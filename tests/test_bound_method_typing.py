"""``inst.method.memo`` type-checks as the method bound to ``inst`` (mypy --strict): ``key`` and
``explain`` take the call's arguments without ``self``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = '''
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
    module = tmp_path / "snippet.py"
    module.write_text(textwrap.dedent(SNIPPET))
    stdout, stderr, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy_cache"),
         str(module)])
    revealed = [line.split("Revealed type is ")[1] for line in stdout.splitlines()
                if "Revealed type is" in line]
    assert revealed == ['"int"', '"str"', '"bool"', '"str"'], stdout + stderr
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, stdout
    assert 'Argument 1 to "key" of "BoundMemo" has incompatible type "int"; expected "str"' \
        in errors[0]
    assert status == 1
