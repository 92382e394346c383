"""Where a recorded function's project is: its root directory and its configuration.

The project root is the nearest directory above the function's module that holds
``pyproject.toml``, else the nearest holding ``.git``, else the working directory. Keys use paths
relative to it, so a checkout at another path produces the same keys.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from memo_replay.config import Config, load_config


@functools.lru_cache(maxsize=256)
def find_root(start: Path) -> Path:
    """The project root for a module living in directory ``start``."""
    for marker in ("pyproject.toml", ".git"):
        for directory in (start, *start.parents):
            if (directory / marker).exists():
                return directory
    return Path.cwd().resolve()


def is_project_file(path: str | None, root: Path) -> bool:
    """True when ``path`` is source code of the project (not stdlib, not an installed package)."""
    if not path:
        return False
    try:
        resolved = Path(path).resolve()
    except OSError:
        return False
    return resolved.is_relative_to(root) and not is_library_file(resolved)


def is_library_file(resolved: Path) -> bool:
    """True for a (resolved) file of the standard library, of an installed package or of
    memo_replay itself: code identified by name, never fingerprinted by its source."""
    if "site-packages" in resolved.parts or "dist-packages" in resolved.parts:
        return True
    return any(resolved.is_relative_to(p) for p in _stdlib_dirs()) \
        or resolved.is_relative_to(_package_dir())


@functools.lru_cache(maxsize=1)
def _stdlib_dirs() -> tuple[Path, ...]:
    # The directory of ``os`` is the standard library (sysconfig's "stdlib" path, without
    # importing sysconfig: ~1 ms per process). Its "platstdlib" is the same directory, or in a
    # venv the venv's lib directory, whose packages "site-packages" already marks.
    return (Path(os.__file__).resolve().parent,)


@functools.lru_cache(maxsize=1)
def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def relative_to_root(path: Path, root: Path) -> str:
    """``path`` as a POSIX string relative to ``root`` when inside it, else absolute."""
    absolute = path if path.is_absolute() else Path.cwd() / path
    absolute = Path(os.path.normpath(absolute))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return absolute.as_posix()


@functools.lru_cache(maxsize=64)
def project_config(root: Path) -> Config:
    """``[tool.memo_replay]`` of the project at ``root`` (defaults when absent)."""
    return load_config(root / "pyproject.toml")


def module_name(obj: object) -> str:
    """The module an object belongs to; a script run as ``__main__`` is named after its path
    in the project, so ``python tools/run.py`` and ``import tools.run`` give the same names."""
    name = getattr(obj, "__module__", None) or type(obj).__module__
    if name != "__main__":
        return name
    return main_module_name() or name


@functools.lru_cache(maxsize=1)
def main_module_name() -> str | None:
    """What the running script (``__main__``) is called when imported from the project root:
    ``tools.run`` for ``python tools/run.py``; None for ``python -c``, a REPL or a script
    outside the project."""
    file = getattr(sys.modules.get("__main__"), "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    relative = relative_to_root(path, find_root(path.parent))
    if relative.startswith("/") or not relative.endswith(".py"):
        return None
    parts = relative[:-3].split("/")
    if not all(part.isidentifier() for part in parts):
        # Not importable by that name (`.venv/…/site-packages/pytest/__main__.py` under
        # `python -m pytest`, `scripts/run-all.py`): a dotted id would start with a dot or
        # hold a dash, and its store directory would be hidden or unlike any module's.
        return None
    return ".".join(parts)


def module_dir(module_name: str, fallback_file: str | None) -> Path:
    """The directory of a module's source file, for root discovery."""
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None) or fallback_file
    return Path(file).resolve().parent if file else Path.cwd().resolve()


DEFAULT_STORE = "fixtures_store"
"""The store directory, relative to the project root, when nothing else is configured."""


def store_path(override: str | os.PathLike[str] | None = None, *, root: Path | None = None,
               configured: str | None = None) -> Path:
    """The store directory: ``override`` (``--store``, ``--memo-store``) > ``MEMO_STORE`` >
    ``configured`` (``@recorded(store=...)``) > ``[tool.memo_replay] store`` >
    ``fixtures_store/``, the last three at the project ``root`` (default: the one holding the
    working directory). An override or ``MEMO_STORE`` is taken as given (relative to the
    working directory)."""
    chosen = override or os.environ.get("MEMO_STORE")
    if chosen:
        return Path(chosen)
    root = find_root(Path.cwd().resolve()) if root is None else root
    return root / (configured or project_config(root).store or DEFAULT_STORE)
