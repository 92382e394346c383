"""The documentation site builds strictly: every nav page exists, no broken link or reference.

The same command as `tox -e docs`. MkDocs, Material and mkdocstrings are test dependencies: when
they are missing the test fails (saying what to install) instead of skipping, so a broken site
cannot pass unnoticed.
"""

from __future__ import annotations

import importlib.util
import os
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
    assert (site / "reference" / "index.html").is_file()


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
