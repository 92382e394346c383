"""Every code example in the docs runs, so the docs cannot rot.

The convention every page follows (README.md and every ``docs/**/*.md``):

- Each page runs in a fresh, empty temporary project: a directory holding only
  ``pyproject.toml`` (``[project] name = "docs-example"``), which is also the working directory.
  The environment is the test's minus ``MEMO_*``, ``CI`` and ``PYTEST_*``, plus
  ``MEMO_MODE=auto``, ``PYTHONPATH`` = the project (then any existing entries) and
  ``PYTHONDONTWRITEBYTECODE=1``. So the examples behave the same with and without ``CI=true``.
- A fence **with a title** (```` ```python title="translator.py" ````,
  ```` ```toml title="pyproject.toml" ````, ```` ```text title="machines/door.dy" ````) is a file:
  it is written to that path, relative to the project, when the page reaches it (directories are
  created; ``pyproject.toml`` replaces the default one). It is not executed; a titled ``.py`` file
  must compile.
- Every ```` ```python ```` fence **without a title** (also ``py``, ``python3``) is code: the
  page's code blocks are concatenated in page order and run as one script, ``docs_example.py``
  in the project root, with ``sys.executable``; it must exit 0. Functions defined in code blocks
  are therefore named ``docs_example.<name>`` in the store. The script refuses to be imported
  (``memo-replay stats`` or ``prune --stale`` would import it): put recorded functions the
  page inspects with the CLI in a titled module.
- The script runs once, at the end of the page, after every titled file exists — except when a
  titled fence **changes a file that was already written** (``pyproject.toml`` included) while
  code is waiting to run: then the code accumulated so far runs first (one subprocess), the new
  version of the file is written, and the following code blocks accumulate into a new script run
  in a **new** subprocess. State persists on disk (the store, files) but not in memory: a
  later segment imports what it uses again.
- Untitled fences of other languages (``bash``, ``console``, ``text``, ``toml``, ``json``,
  ``yaml``, ``pycon``…) are not executed. Fences indented inside list items count like any other.
- Pages with no Python fence at all are not collected.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest
from conftest import REPO

PYPROJECT = '[project]\nname = "docs-example"\nversion = "0"\n'
SCRIPT = "docs_example.py"
PYTHON = frozenset({"python", "py", "python3"})
_GUARD = ('if __name__ != "__main__": raise ImportError("docs_example.py is the example '
          'script of a docs page: it is run, never imported")\n')

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_TITLE = re.compile(r"""(?:^|\s)title=(?:"([^"]*)"|'([^']*)')""")


@dataclass(frozen=True)
class Fence:
    language: str
    title: str | None
    code: str
    line: int  # 1-based line of the opening fence


@dataclass(frozen=True)
class Write:
    path: str
    text: str
    line: int


@dataclass(frozen=True)
class Run:
    script: str
    lines: tuple[int, ...]  # where each concatenated block starts on the page


Step = Write | Run


def fences(markdown: str) -> list[Fence]:
    """Every fenced code block of a Markdown page, in order (also fences indented in lists)."""
    lines = markdown.splitlines()
    found: list[Fence] = []
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match or (match["fence"][0] == "`" and "`" in match["info"]):
            i += 1
            continue
        indent, fence, info = len(match["indent"]), match["fence"], match["info"].strip()
        start, body = i + 1, []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                break
            body.append(_unindent(lines[i], indent))
            i += 1
        else:
            raise ValueError(f"line {start}: the {fence} fence opened here is never closed")
        i += 1
        language = info.split()[0].lstrip("{.").rstrip("}").lower() if info else ""
        title = _TITLE.search(info)
        found.append(Fence(language, (title[1] if title[1] is not None else title[2])
                           if title else None, "\n".join(body) + "\n" if body else "", start))
    return found


def _unindent(line: str, indent: int) -> str:
    width = len(line) - len(line.lstrip(" \t"))
    return line[min(width, indent):]


def plan(markdown: str) -> list[Step]:
    """The page as steps: files to write and scripts to run, in order (see the module doc)."""
    steps: list[Step] = []
    written = {"pyproject.toml": PYPROJECT}
    pending: list[Fence] = []

    def flush() -> None:
        if pending:
            steps.append(Run(_script(pending), tuple(f.line for f in pending)))
            pending.clear()

    for fence in fences(markdown):
        if fence.title is not None:
            path = _checked_path(fence)
            if written.get(path, fence.code) != fence.code:
                flush()  # the code so far may have used the old version
            written[path] = fence.code
            steps.append(Write(path, fence.code, fence.line))
        elif fence.language in PYTHON:
            pending.append(fence)
    flush()
    return steps


def _checked_path(fence: Fence) -> str:
    assert fence.title is not None
    path = PurePosixPath(fence.title)
    if not fence.title or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"line {fence.line}: title={fence.title!r} must be a relative path "
                         f"inside the project")
    if path.as_posix() == SCRIPT:
        raise ValueError(f"line {fence.line}: {SCRIPT} is the name of the page's own script")
    return path.as_posix()


def _script(blocks: list[Fence]) -> str:
    parts = [_GUARD]
    for block in blocks:
        parts.append(f"# --- the code block at line {block.line} of the page\n{block.code}")
    return "\n".join(parts)


def example_env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MEMO_", "PYTEST_")) and k != "CI"}
    env["MEMO_MODE"] = "auto"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project),
                                                     os.environ.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_page(name: str, markdown: str, project: Path) -> list[subprocess.CompletedProcess[str]]:
    """Carry out a page's steps in `project` (created here); AssertionError on a failure."""
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    runs = []
    for step in plan(markdown):
        if isinstance(step, Write):
            target = project / step.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(step.text, encoding="utf-8")
            if target.suffix == ".py":
                try:
                    compile(step.text, f"{name}:{step.line}: {step.path}", "exec")
                except SyntaxError as exc:
                    raise AssertionError(f"{name}: the file titled {step.path!r} at line "
                                         f"{step.line} does not compile: {exc}") from None
            continue
        (project / SCRIPT).write_text(step.script, encoding="utf-8")
        result = subprocess.run([sys.executable, SCRIPT], cwd=project, env=example_env(project),
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            numbered = "\n".join(f"{n:4} | {line}"
                                 for n, line in enumerate(step.script.splitlines(), 1))
            raise AssertionError(
                f"{name}: the code blocks starting at line(s) {', '.join(map(str, step.lines))} "
                f"exited with {result.returncode}\n--- {SCRIPT}\n{numbered}\n--- stdout\n"
                f"{result.stdout}\n--- stderr\n{result.stderr}")
        runs.append(result)
    return runs


def pages() -> list[str]:
    docs = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").rglob("*.md"))
    return ["README.md", *docs]


def has_python(page: str) -> bool:
    try:
        page_fences = fences((REPO / page).read_text(encoding="utf-8"))
    except ValueError:
        return True  # a broken page is collected, and its test says what is wrong
    return any(f.language in PYTHON for f in page_fences)


@pytest.mark.parametrize("page", [p for p in pages() if has_python(p)])
def test_page_examples_run(page: str, tmp_path: Path) -> None:
    run_page(page, (REPO / page).read_text(encoding="utf-8"), tmp_path / "project")


# The harness itself, on a synthetic page.

SYNTHETIC = textwrap.dedent('''\
    # A page

    ```python title="greeting.py"
    from memo_replay import recorded

    GREETING = "hello"

    @recorded
    def greet(name: str) -> str:
        with open("calls.log", "a") as log:
            log.write(name + "\\n")
        return f"{GREETING}, {name}"
    ```

    Not executed:

    ```bash
    exit 1
    ```

    ```toml
    this is = [not, toml
    ```

    ```python
    from greeting import greet

    print(greet("ada"))
    ```

    1. a list item

       ```python
       print(greet("ada"))   # replayed: still defined, same process
       ```

    ```python title="greeting.py"
    from memo_replay import recorded

    GREETING = "bonjour"

    @recorded
    def greet(name: str) -> str:
        with open("calls.log", "a") as log:
            log.write(name + "\\n")
        return f"{GREETING}, {name}"
    ```

    ````python
    from greeting import greet   # a new process: import again
    print(greet("ada"))          # the constant changed: a new recording
    FENCE = """
    ```
    """
    ````

    ```text title="data/notes.txt"
    written, never run
    ```
    ''')


def test_harness_plans_files_and_flushes_before_a_rewrite() -> None:
    steps = plan(SYNTHETIC)
    # the script runs at the end, after every file is written; first when greeting.py changes
    assert [type(s).__name__ for s in steps] == ["Write", "Run", "Write", "Write", "Run"]
    first, second = (s for s in steps if isinstance(s, Run))
    assert first.script.startswith(_GUARD)
    assert 'print(greet("ada"))   # replayed' in first.script  # the indented block, dedented
    assert "exit 1" not in first.script
    assert "not, toml" not in first.script
    assert 'FENCE = """\n```\n"""' in second.script  # a ``` line inside a ```` fence
    assert steps[3] == Write("data/notes.txt", "written, never run\n", steps[3].line)


def test_harness_runs_a_page(tmp_path: Path) -> None:
    project = tmp_path / "project"
    first, second = run_page("synthetic.md", SYNTHETIC, project)
    assert first.stdout.splitlines() == ["hello, ada", "hello, ada"]
    assert second.stdout.splitlines() == ["bonjour, ada"]
    assert (project / "calls.log").read_text().splitlines() == ["ada", "ada"]
    assert (project / "data" / "notes.txt").read_text() == "written, never run\n"
    assert len(list((project / "fixtures_store").glob("greeting.greet/*.json"))) == 2


def test_harness_reports_a_failing_page(tmp_path: Path) -> None:
    page = '```python\nimport sys\nprint("to stderr", file=sys.stderr)\nsys.exit(3)\n```\n'
    expected = r"(?s)bad\.md: .* line\(s\) 1 exited with 3.*to stderr"
    with pytest.raises(AssertionError, match=expected):
        run_page("bad.md", page, tmp_path / "project")


def test_harness_rejects_unsafe_titles_and_open_fences() -> None:
    with pytest.raises(ValueError, match="relative path"):
        plan('```text title="../outside.txt"\nx\n```\n')
    with pytest.raises(ValueError, match="never closed"):
        plan("```python\nprint(1)\n")


def test_the_script_is_not_importable(tmp_path: Path) -> None:
    project = tmp_path / "project"
    page = ('```python\nimport subprocess, sys\nresult = subprocess.run([sys.executable, "-c", '
            '"import docs_example"], capture_output=True, text=True)\n'
            'assert "it is run, never imported" in result.stderr, result.stderr\n```\n')
    run_page("import.md", page, project)


# docs/terminal.md: real terminal output, captured by tools/capture_terminal.py.

TERMINAL_SECTIONS = ["Record", "List the recordings", "Show one recording", "Statistics",
                     "Verify the store", "A miss in strict replay", "Re-record what changed",
                     "Review the change", "Recordings no test uses",
                     "Move a recorded function"]


def _outline(page: str) -> list[str]:
    """Headings and commands, with keys and key prefixes masked (they follow the example)."""
    lines = re.findall(r"^(?:## .+|\$ .+)$", page, re.M)
    return [re.sub(r"\b[0-9a-f]{4,32}\b", "KEY", line) for line in lines]


def test_capture_terminal_writes_the_page(tmp_path: Path) -> None:
    output = tmp_path / "terminal.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMO_") and k != "CI"}
    result = subprocess.run([sys.executable, "tools/capture_terminal.py", "-o", str(output),
                             "--latency", "0"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    page = output.read_text(encoding="utf-8")
    assert re.findall(r"^## (.+)$", page, re.M) == TERMINAL_SECTIONS
    for expected in ("$ memo-replay ls", "$ memo-replay show ", "$ memo-replay stats",
                     "$ memo-replay verify", "$ CI=true python -m pytest", "4 recorded",
                     "4 recordings", "every entry is intact", "1 missed",
                     "- file `examples/dygram/machines/router.dy` changed",
                     "re-record just this test: MEMO_MODE=record python -m pytest",
                     "were not used by any test", "~/project/fixtures_store",
                     "$ memo-replay changes HEAD", "1 changed", '"option_a" → "search"',
                     "memo-replay mv examples.dygram.summary.summarize", "1 recording moved",
                     "{'name': 'router', 'summary': 'router: a state machine'}"):
        assert expected in page, expected
    assert str(tmp_path) not in page
    assert "memo-replay-capture-" not in page
    committed = (REPO / "docs" / "terminal.md").read_text(encoding="utf-8")
    assert _outline(committed) == _outline(page), \
        "docs/terminal.md is out of date: run python tools/capture_terminal.py"
