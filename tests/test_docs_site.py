"""The documentation site builds strictly: every nav page exists, no broken link or reference.

The same command as `tox -e docs`. MkDocs, Material and mkdocstrings are test dependencies: when
they are missing the test fails (saying what to install) instead of skipping, so a broken site
cannot pass unnoticed. The API reference shows the docstrings' reST roles (:class:`Store`) as
code and links, never as role text (tools/docs_roles.py rewrites them while the site is built).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO

NEEDED = {"mkdocs": "mkdocs", "material": "mkdocs-material", "mkdocstrings": "mkdocstrings[python]",
          "mkdocstrings_handlers.python": "mkdocstrings[python]"}


def test_site_builds_strictly(tmp_path: Path) -> None:
    missing = sorted({dist for module, dist in NEEDED.items() if not _importable(module)})
    if missing:
        pytest.fail(f"building the docs needs {', '.join(missing)}: pip install -e \".[test]\" "
                    f"(or pip install {' '.join(missing)})", pytrace=False)
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    output = result.stderr + result.stdout
    problems = [line for line in output.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert result.returncode == 0, ("mkdocs build --strict failed:\n" + "\n".join(problems)
                                    + "\n--- full output\n" + output)
    assert (site / "index.html").is_file()
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    left = sorted(set(ROLE_TEXT.findall(reference)))
    assert not left, f"reST roles shown literally in the API reference: {left[:10]}"
    # "All derive from :class:`MemoReplayError`" (memo_replay.errors): a link to the class.
    assert ('href="#memo_replay.errors.MemoReplayError"><code>MemoReplayError</code></a>'
            in reference)


ROLE_TEXT = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):"
                       r"(?:<code>[^<]*</code>|`[^`]*`)")
"""A role as Markdown renders it when nothing converted it: ``:class:<code>Store</code>``."""


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


# The conversion itself (tools/docs_roles.py), role by role.

ROLE_CASES = [
    (":class:`Store`", "memo_replay.store.store.Store", "Store"),
    (":class:`~memo_replay.errors.ReplayMiss`", "memo_replay.errors.ReplayMiss", "ReplayMiss"),
    (":mod:`memo_replay.keys.reads`", "memo_replay.keys.reads", "memo_replay.keys.reads"),
    (":meth:`Store.prune`", "memo_replay.store.store.Store.prune", "Store.prune()"),
    (":func:`~memo_replay.call.plan.decide`", "memo_replay.call.plan.decide", "decide()"),
    (":meth:`Store.stats() <memo_replay.store.store.Store.stats>`",
     "memo_replay.store.store.Store.stats", "Store.stats()"),
    (":mod:`index <memo_replay.store.index>`", "memo_replay.store.index", "index"),
    (":py:data:`SECTIONS`", "SECTIONS", "SECTIONS"),
    (":func:`ast.unparse`", "ast.unparse", "ast.unparse()"),
    (":class:`Two\n    Lines`", "Two Lines", "Two Lines"),
]


def _roles_module() -> ModuleType:
    if not _importable("griffe"):
        pytest.fail("tools/docs_roles.py needs griffe: pip install -e \".[test]\"",
                    pytrace=False)
    from tools import docs_roles
    return docs_roles


@pytest.mark.parametrize(("role", "identifier", "title"), ROLE_CASES)
def test_a_role_becomes_an_optional_cross_reference(role: str, identifier: str,
                                                    title: str) -> None:
    convert = _roles_module().convert

    def resolve(name: str) -> str:  # what griffe resolves in the docstring's scope
        if name == "Store":
            return "memo_replay.store.store.Store"
        raise KeyError(name)

    converted = convert(f"See {role} here.", resolve)
    assert converted == (f'See <autoref identifier="{identifier}" optional>'
                         f"<code>{title}</code></autoref> here.")


def test_a_role_that_must_not_link_and_text_without_roles() -> None:
    convert = _roles_module().convert
    assert convert(":class:`!Unlinked` and <x>", None) == "<code>Unlinked</code> and <x>"
    assert convert("``literal`` and `code` stay", None) == "``literal`` and `code` stay"
    assert convert(':data:`A&"B"`', None) == (  # escaped in the HTML it becomes
        '<autoref identifier="A&amp;&quot;B&quot;" optional><code>A&amp;&quot;B&quot;</code>'
        "</autoref>")
