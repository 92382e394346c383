"""Shared fixtures: isolated environment, throwaway projects, subprocess runs.

Tests never inherit MEMO_MODE/MEMO_STORE from the developer's shell. `CI` is left alone: the
suite must pass with and without it, so a test that relies on a mode sets it itself (the
`memo_env` fixture sets `auto` and a private store).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from memo_replay import Store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEMO_MODE", "MEMO_STORE", "PYTEST_CURRENT_TEST_OVERRIDE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def memo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """`auto` mode and a private store for in-process tests; returns that store."""
    store_dir = tmp_path / "store"
    monkeypatch.setenv("MEMO_MODE", "auto")
    monkeypatch.setenv("MEMO_STORE", str(store_dir))
    return Store(store_dir)


@dataclass
class Project:
    """A throwaway project directory (with pyproject.toml) and a way to run Python in it."""

    root: Path

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def read(self, relative: str) -> str:
        return (self.root / relative).read_text(encoding="utf-8")

    def replace(self, relative: str, old: str, new: str) -> None:
        text = self.read(relative)
        assert old in text, f"{old!r} not in {relative}"
        (self.root / relative).write_text(text.replace(old, new, 1), encoding="utf-8")

    @property
    def store(self) -> Store:
        return Store(self.root / "fixtures_store")

    def run(self, code: str, *, mode: str | None = "auto", env: Mapping[str, str] | None = None,
            check: bool = True, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        """Run `code` (a snippet) with `python -c` in a fresh interpreter inside the project."""
        return self._python(["-c", textwrap.dedent(code), *args], mode=mode, env=env,
                            check=check)

    def run_module(self, module: str, *args: str, mode: str | None = "auto",
                   env: Mapping[str, str] | None = None,
                   check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._python(["-m", module, *args], mode=mode, env=env, check=check)

    def run_file(self, relative: str, *args: str, mode: str | None = "auto",
                 check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a project file as a script (``python tools/run.py``: it is ``__main__``)."""
        return self._python([relative, *args], mode=mode, env=None, check=check)

    def start(self, code: str, *args: str, mode: str = "auto") -> subprocess.Popen[str]:
        """Start `code` like :meth:`run` does, without waiting (see :func:`finish_all`)."""
        return subprocess.Popen([sys.executable, "-c", code, *args], cwd=self.root,
                                env=self.env(mode), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def env(self, mode: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of the project's subprocesses: no MEMO_*/CI leaking in."""
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith("MEMO_") and k not in ("CI", "PYTHONPATH")}
        full_env["PYTHONPATH"] = str(self.root)
        # Tests rewrite modules within the same second at the same size; a cached .pyc
        # (validated by mtime seconds and size) would then run the old code.
        full_env["PYTHONDONTWRITEBYTECODE"] = "1"
        if mode is not None:
            full_env["MEMO_MODE"] = mode
        full_env.update(extra or {})
        return full_env

    def _python(self, argv: list[str], *, mode: str | None, env: Mapping[str, str] | None,
                check: bool) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, *argv], cwd=self.root, env=self.env(mode, env),
                                capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(
                f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n"
                f"{result.stderr}")
        return result

    def calls(self, name: str = "calls.log") -> list[str]:
        """Lines appended by the project's functions to count real (non-replayed) calls."""
        path = self.root / name
        return path.read_text().splitlines() if path.exists() else []

    def copy_to(self, destination: Path) -> Project:
        shutil.copytree(self.root, destination, ignore=shutil.ignore_patterns(
            "__pycache__", ".cache"))
        return Project(destination)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project: `pyproject.toml` at its root, nothing else."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "proj"\nversion = "0"\n')
    return Project(root)


def entry_files(store_dir: Path) -> list[Path]:
    """The entry files of a store directory (its `.cache/` index left out), sorted."""
    return sorted(p for p in store_dir.glob("*/*.json") if not p.parent.name.startswith("."))


def last_json(stdout: str) -> Any:
    """The JSON document a subprocess printed last."""
    return json.loads(stdout.strip().splitlines()[-1])


def finish_all(procs: list[subprocess.Popen[str]]) -> list[str]:
    """Wait for every process; fail with their output unless all exited 0."""
    outputs = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0] * len(procs), "\n".join(
        f"--- process {i}: exit {code}\n{out}\n{err}"
        for i, (code, (out, err)) in enumerate(zip(codes, outputs, strict=True)))
    return [out for out, _ in outputs]
