"""The README stays true: the quick start is two lines (the test line is what `.ci/run` runs),
its links resolve, and its example reads input files where `files=` looks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from test_docs_examples import example_env, fences


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
    for target in re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", readme):
        assert (REPO / target).is_file(), target


# The README's translator reads its file from the project root, where `files=` looks. Reading
# `Path(path)` instead follows the working directory: recorded from a subdirectory holding its
# own machines/door.dy, it records that file's answer under the root file's key, and a replay
# from the root returns it (the file it read is an observed dependency, unchanged: it matches).

IMPOSTOR = 'machine "Impostor"\nstate nowhere\n'
NAIVE_READ = "Path(path).read_text()"


def readme_project(project: Path, translator_edit: tuple[str, str] | None = None) -> Path:
    """A project made of the README's titled files (translator.py, llm.py, machines/door.dy)
    plus a subdirectory with another machines/door.dy."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    titled = {f.title: f.code for f in fences(readme) if f.title}
    assert {"translator.py", "llm.py", "machines/door.dy"} <= titled.keys(), titled.keys()
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "readme"\nversion = "0"\n')
    for path, text in titled.items():
        if path == "translator.py" and translator_edit is not None:
            old, new = translator_edit
            assert old in text, f"{old!r} is not in the README's translator.py"
            text = text.replace(old, new)
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text, encoding="utf-8")
    (project / "elsewhere" / "machines").mkdir(parents=True)
    (project / "elsewhere" / "machines" / "door.dy").write_text(IMPOSTOR, encoding="utf-8")
    return project


def title_of_door(project: Path, cwd: Path, mode: str) -> str:
    """`translate("machines/door.dy").title`, called in a fresh process from ``cwd``."""
    env = example_env(project)
    env["MEMO_MODE"] = mode
    code = 'from translator import translate; print(translate("machines/door.dy").title)'
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_readme_example_reads_its_file_from_the_project_root(tmp_path: Path) -> None:
    project = readme_project(tmp_path / "project")
    assert title_of_door(project, project / "elsewhere", "auto") == "Door"  # recorded
    assert title_of_door(project, project, "replay") == "Door"              # CI, from the root


def test_reading_relative_to_the_working_directory_replays_the_wrong_answer(
        tmp_path: Path) -> None:
    # The trap the README's example avoids, kept as proof that the test above exercises it.
    project = readme_project(tmp_path / "project", ("(ROOT / path).read_text()", NAIVE_READ))
    assert title_of_door(project, project / "elsewhere", "auto") == "Impostor"
    assert title_of_door(project, project, "replay") == "Impostor"
