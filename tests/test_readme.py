"""The README's quick start stays true: two lines, the test line is what `.ci/run` runs."""

from __future__ import annotations

import re

from conftest import REPO


def quick_start_lines() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the quick start has a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_lines_demo_then_tests() -> None:
    demo, tests = quick_start_lines()
    assert demo.endswith("python -m memo_replay demo")
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_line() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert quick_start_lines()[1] in ci


def test_readme_links_to_existing_docs() -> None:
    readme = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\((docs/[^)]+)\)", readme):
        assert (REPO / target).is_file(), target
