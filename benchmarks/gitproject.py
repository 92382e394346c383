"""A recorded project in a git repository, and fresh clones of it: what CI checks out.

Shared by ``benchmarks/compare.py`` (BASE against NEW) and ``benchmarks/cold.py`` (the cold-path
cases of ``benchmarks/run.py``): helper commands whose failure stops the run with their output,
git without the user's configuration, committing a project whose store was just recorded, and
cloning it so that the store's git-ignored index (``fixtures_store/.cache/``) is absent.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

STORE = "fixtures_store"


class ChildFailed(Exception):
    """A child process exited non-zero or did not report."""

    def __init__(self, what: str, command: Sequence[str], result: subprocess.CompletedProcess[str],
                 problem: str) -> None:
        super().__init__(what)
        self.what, self.command, self.result, self.problem = what, command, result, problem

    def report(self, prefix: str = "compare") -> str:
        return (f"{prefix}: child failed: {self.what}: {self.problem}\n"
                f"  command: {' '.join(self.command)}\n"
                f"  exit code: {self.result.returncode}\n"
                f"--- stderr\n{self.result.stderr.rstrip()}\n"
                f"--- stdout\n{self.result.stdout.rstrip()}")


def run(command: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None,
        what: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a helper command (git, tar, compileall); its failure is a child failure."""
    result = subprocess.run(list(command), cwd=cwd, env=env, input=stdin, capture_output=True,
                            check=False)
    if result.returncode != 0:
        text = subprocess.CompletedProcess(result.args, result.returncode,
                                           result.stdout.decode(errors="replace"),
                                           result.stderr.decode(errors="replace"))
        raise ChildFailed(what, command, text, "exited non-zero")
    return result


def git_env() -> dict[str, str]:
    """git without the user's or the system's configuration (hooks, signing, templates)."""
    return {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}


def git(*args: str, cwd: Path) -> str:
    return run(["git", *args], cwd=cwd, env=git_env(), what=f"git {args[0]}").stdout.decode()


def entry_files(store: Path) -> int:
    """Entry files in a store (``<function>/<key>.json``; the ``.cache`` index excluded)."""
    return sum(1 for p in store.glob("*/*.json") if not p.parent.name.startswith("."))


def commit_all(project: Path, message: str = "recordings") -> None:
    """``git init`` + commit everything not ignored; the store's index must not be committed."""
    git("init", "--quiet", "--initial-branch=main", cwd=project)
    git("add", "--all", cwd=project)
    git("commit", "--quiet", "--no-verify", "--message", message, cwd=project)
    tracked = git("ls-files", cwd=project).splitlines()
    if any("/.cache/" in path or "__pycache__" in path for path in tracked):
        raise SystemExit(f"{project}: the store's index was committed (is .cache/ not ignored?)")


def fresh_clone(project: Path, destination: Path, calls: int) -> None:
    """A clone as CI checks it out: entry files, no index."""
    git("clone", "--quiet", str(project), str(destination), cwd=project.parent)
    if (destination / STORE / ".cache").exists():
        raise SystemExit(f"{destination} has an index right after cloning")
    if (found := entry_files(destination / STORE)) != calls:
        raise SystemExit(f"the clone {destination} has {found} entries, expected {calls}")
