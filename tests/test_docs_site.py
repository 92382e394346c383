"""The documentation site builds strictly: every nav page exists, no broken link or reference.

The same command as `tox -e docs`. MkDocs, Material and mkdocstrings are test dependencies: when
they are missing the test fails (saying what to install) instead of skipping, so a broken site
cannot pass unnoticed. The API reference renders the public API's docstrings, written in
Markdown (`[Store][memo_replay.Store]` cross-links, ```pycon examples): no reST role
(:class:`Store`) may show there as role text.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

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
    # "[`MemoReplayError`][memo_replay.MemoReplayError]" (docs/reference.md): a cross-link to
    # the class, documented at its public path.
    assert 'href="#memo_replay.MemoReplayError"><code>MemoReplayError</code></a>' in reference


ROLE_TEXT = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):"
                       r"(?:<code>[^<]*</code>|`[^`]*`)")
"""A role as Markdown renders it when nothing converted it: ``:class:<code>Store</code>``."""


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


# The docstrings themselves: the public API's, and its public members', are Markdown.

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`[^`]*`")
"""A reST role as written in a docstring: ``:class:`Store```."""


def _public_docstrings() -> dict[str, str]:
    """Path → docstring of every object the API reference can show: each name of
    `memo_replay.__all__` (as griffe, the reference's loader, reads it) and its public
    members, recursively."""
    if not _importable("griffe"):
        pytest.fail("reading the docstrings needs griffe: pip install -e \".[test]\"",
                    pytrace=False)
    import griffe

    package = griffe.load("memo_replay", search_paths=[str(REPO)], resolve_aliases=True,
                          resolve_external=False)
    found: dict[str, str] = {}

    def visit(obj: griffe.Object | griffe.Alias, path: str) -> None:
        if obj.docstring is not None:
            found[path] = obj.docstring.value
        for name, member in obj.members.items():
            if not name.startswith("_") and not member.is_alias:
                visit(member, f"{path}.{name}")

    import memo_replay

    for name in memo_replay.__all__:
        if name != "__version__":
            visit(package[name].final_target, f"memo_replay.{name}")
    return found


def test_public_docstrings_hold_no_rest_role() -> None:
    docstrings = _public_docstrings()
    assert "memo_replay.CallEvent.outcome" in docstrings  # fields are read too
    roles = {path: ROLE.findall(text) for path, text in docstrings.items() if ROLE.search(text)}
    assert not roles, ("reST roles in the public API's docstrings (the reference shows them as "
                       f"text; write [`Name`][memo_replay.Name] or `code`): {roles}")
