"""Code outside the project's packages is fingerprinted like project code, never by name only:
a notebook cell in a real IPython kernel, a script outside the project root run from inside it,
and ``python -c``. Each edit of the recorded function (or of a helper it uses) must make strict
replay miss naming the change; an unchanged definition replays.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.conftest import Project

DEFINE = """
from memo_replay import recorded

FACTOR = {factor}


def helper(x):
    return x * FACTOR


@recorded
def triple(x):
    with open("calls.log", "a") as log:
        log.write(f"triple {{x}}\\n")
    return helper(x) + {offset}
"""


def run_cells(project: Project, cells: list[str], mode: str) -> list[dict[str, Any]]:
    """Start a fresh IPython kernel in the project (a restart: nothing survives from the last
    one), run ``cells`` and return, per cell, its printed text and error name/value."""
    manager = pytest.importorskip("jupyter_client.manager")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMO_") and k != "CI"}
    env["MEMO_MODE"] = mode
    km, kc = manager.start_new_kernel(kernel_name="python3", cwd=str(project.root), env=env,
                                      startup_timeout=60)
    results = []
    try:
        for cell in cells:
            out: dict[str, Any] = {"text": "", "error": None}

            def collect(message: dict[str, Any], out: dict[str, Any] = out) -> None:
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    out["text"] += content["text"]
                elif kind == "error":
                    out["error"] = (content["ename"], content["evalue"])

            kc.execute_interactive(textwrap.dedent(cell), timeout=60, output_hook=collect)
            results.append(out)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return results


def test_a_notebook_cell_is_fingerprinted_by_its_source(project: Project) -> None:
    define = DEFINE.format(factor=3, offset=0)
    first = run_cells(project, [define, "print(triple(2))"], mode="auto")
    assert first[1] == {"text": "6\n", "error": None}
    assert project.calls() == ["triple 2"]

    # A restarted kernel, the same cell: replays without calling.
    same = run_cells(project, [define, "print(triple(2))"], mode="replay")
    assert same[1] == {"text": "6\n", "error": None}

    # The body edited in the cell: strict replay misses and says the source changed.
    edited = run_cells(project, [DEFINE.format(factor=3, offset=1), "print(triple(2))"],
                       mode="replay")
    assert edited[1]["error"] is not None
    name, message = edited[1]["error"]
    assert name == "ReplayMiss"
    assert "source of `__main__.triple` changed" in message

    # A constant its helper reads, edited in the cell: also a miss naming it.
    constant = run_cells(project, [DEFINE.format(factor=4, offset=0), "print(triple(2))"],
                         mode="replay")
    assert constant[1]["error"] is not None
    assert "FACTOR" in constant[1]["error"][1]
    assert project.calls() == ["triple 2"]


def _script(project: Project, path: Path, factor: int, offset: int,
            mode: str) -> subprocess.CompletedProcess[str]:
    path.write_text(DEFINE.format(factor=factor, offset=offset) + "\nprint(triple(2))\n")
    return subprocess.run([sys.executable, str(path)], cwd=project.root, env=project.env(mode),
                          capture_output=True, text=True, timeout=120)


def test_a_script_outside_the_project_root_is_fingerprinted_by_its_source(
        project: Project, tmp_path: Path) -> None:
    script = tmp_path / "elsewhere" / "tool.py"
    script.parent.mkdir()
    assert _script(project, script, 3, 0, "auto").stdout == "6\n"
    assert _script(project, script, 3, 0, "replay").stdout == "6\n"
    edited = _script(project, script, 3, 1, "replay")
    assert edited.returncode != 0
    assert "ReplayMiss" in edited.stderr
    assert "source of `__main__.triple` changed" in edited.stderr
    helper_constant = _script(project, script, 4, 0, "replay")
    assert "ReplayMiss" in helper_constant.stderr
    assert "FACTOR" in helper_constant.stderr
    assert project.calls() == ["triple 2"]


def test_python_dash_c_counts_the_helpers_and_constants_it_uses(project: Project) -> None:
    def run(factor: int, offset: int, mode: str) -> subprocess.CompletedProcess[str]:
        code = DEFINE.format(factor=factor, offset=offset) + "\nprint(triple(2))\n"
        return project.run(code, mode=mode, check=False)

    assert run(3, 0, "auto").stdout == "6\n"
    assert run(3, 0, "replay").stdout == "6\n"
    assert "ReplayMiss" in run(3, 1, "replay").stderr
    changed_constant = run(4, 0, "replay")
    assert "ReplayMiss" in changed_constant.stderr
    assert "FACTOR" in changed_constant.stderr
    assert project.calls() == ["triple 2"]
