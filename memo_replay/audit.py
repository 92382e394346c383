"""Which recordings no longer serve: stale, gone, expired, and leftovers of killed recorders.

Auditing imports the recorded functions and compares each entry's code fingerprint with the
current code. It is deliberately conservative, because :meth:`Store.prune` deletes what it finds:

- **stale**: the function exists and is recorded, but its code fingerprint changed;
- **gone**: the function's module imports, but no longer defines the function (or it is no
  longer ``@recorded``); or the module is missing from a package that still imports;
- **unchecked**: anything that cannot be checked — a module that fails to import (a missing
  dependency, a syntax error, the project not on the path), a function defined inside another
  function, or a module auditing refuses to import. These are reported and never pruned.

A store is untrusted input (a pull request can change it), so the ``function`` field of an entry
never decides on its own what is imported. A module is imported only when its name resolves,
*before anything is imported*, to a source file of the project — ``a/b/c.py`` or
``a/b/c/__init__.py`` under the project root or its ``src/``, a regular file (not a symlink)
inside the project and outside the store, virtual environments, ``site-packages``,
``node_modules`` and hidden directories — and the import system would load exactly that file.
Standard-library and installed modules, and modules already imported from outside the project,
are never imported for a recording: their entries are unchecked.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from memo_replay.store.entry import Entry

if TYPE_CHECKING:
    from memo_replay.decorator import Memo
    from memo_replay.store import Store

Reason = Literal["stale", "gone", "expired", "orphan", "unchecked"]


@dataclass(frozen=True)
class Finding:
    """A file :meth:`Store.prune` may remove (or, for ``unchecked``, could not judge)."""

    path: Path
    reason: Reason
    detail: str
    function: str | None = None
    key: str | None = None
    name: str | None = None
    """The file's name in the store (``<function directory>/<file>``)."""


@dataclass(frozen=True)
class Audit:
    stale: list[Finding] = field(default_factory=list)
    """Entries whose code changed, or whose function is gone."""
    expired: list[Finding] = field(default_factory=list)
    unchecked: list[Finding] = field(default_factory=list)


def audit(store: Store, entries: Iterable[Entry] | None = None, *,
          now: float | None = None) -> Audit:
    """Classify every entry of ``store``; imports the modules of the recorded functions that
    are source files of the project (see the module's docstring), nothing else."""
    from memo_replay.project import find_root, project_config

    root = find_root(store.path.resolve())
    project = _Project(root.resolve(), store.path.resolve())
    _importable_from(root)
    config_ttl = project_config(root).ttl
    now = time.time() if now is None else now
    resolved: dict[str, tuple[Memo[Any, Any] | None, Reason | None, str]] = {}
    result = Audit()
    for entry in store.entries() if entries is None else entries:
        if entry.function not in resolved:
            resolved[entry.function] = _resolve(entry.function, project)
        memo, problem, detail = resolved[entry.function]
        finding = _finding(entry, memo, problem, detail)
        if finding is not None:
            (result.unchecked if finding.reason == "unchecked" else result.stale).append(finding)
        # An entry that cannot be checked is never pruned, expired or not: its function's own
        # ttl (which may be longer than the project's) is unknown.
        ttl = memo.ttl if memo is not None else None if problem == "unchecked" else config_ttl
        if ttl is not None and entry.recorded_at is not None \
                and now - entry.recorded_at.timestamp() > ttl:
            age = (now - entry.recorded_at.timestamp()) / 86400
            result.expired.append(Finding(entry.path, "expired",
                                          f"recorded {age:.1f} days ago, ttl {ttl / 86400:g} days",
                                          entry.function, entry.key, entry.name))
    return result


def _finding(entry: Entry, memo: Memo[Any, Any] | None, problem: Reason | None,
             detail: str) -> Finding | None:
    if problem is not None:
        return Finding(entry.path, problem, detail, entry.function, entry.key, entry.name)
    assert memo is not None
    try:
        current = memo.code.hash
    except Exception as exc:  # fingerprinting runs project code paths (inspect, imports)
        return Finding(entry.path, "unchecked", f"cannot fingerprint `{entry.function}`: {exc}",
                       entry.function, entry.key, entry.name)
    if entry.components.code.hash != current:
        return Finding(entry.path, "stale", f"the code of `{entry.function}` changed since it "
                       f"was recorded", entry.function, entry.key, entry.name)
    return None


def _resolve(function: str, project: _Project
             ) -> tuple[Memo[Any, Any] | None, Reason | None, str]:
    """The function's current ``Memo``, or why there is none."""
    from memo_replay.decorator import Memo

    parts = function.split(".")
    if "<locals>" in parts:
        return None, "unchecked", f"`{function}` is defined inside a function; not importable"
    refused = _refusal(parts, function, project)
    if refused is not None:
        return None, "unchecked", refused
    levels, blocked = _locate(parts, project)
    if blocked is not None:  # deeper than `levels`, the name leads to a file never imported
        return None, "unchecked", f"not imported: {blocked}"
    if not levels:
        return None, "unchecked", _not_found(parts, function, project)
    module_name = levels[-1].name
    try:
        module = _import(levels, project)
    except _Refused as exc:
        return None, "unchecked", f"not imported: {exc}"
    except (Exception, SystemExit) as exc:  # a script without a __main__ guard may exit
        return None, "unchecked", f"importing `{module_name}` failed: " \
                                  f"{exc.__class__.__name__}: {exc}"
    value: Any = module
    attributes = parts[len(levels):]
    for attr in attributes:
        value = getattr(value, attr, _MISSING)
        if value is _MISSING:
            return None, "gone", f"`{module_name}` no longer defines `{'.'.join(attributes)}`"
    memo = getattr(value, "memo", None)
    if not isinstance(memo, Memo):
        return None, "gone", f"`{function}` is no longer @recorded"
    return memo, None, ""


def import_project_modules(names: Iterable[str], store: Path) -> dict[str, str]:
    """Import the modules ``names`` that are source files of the project around ``store``
    (the rule auditing follows: see the module's docstring); return why each other one was
    not imported. :meth:`Entry.load <memo_replay.store.Entry.load>` uses it for the modules
    of a result's type, so that an inspection script need not import them first."""
    from memo_replay.project import find_root

    root = find_root(store.resolve())
    project = _Project(root.resolve(), store.resolve())
    refused: dict[str, str] = {}
    for name in names:
        why = _module_refusal(name, project)
        if why is not None:
            refused[name] = why
    return refused


def _module_refusal(name: str, project: _Project) -> str | None:
    """Import module ``name`` if it is project source; else, or when importing fails, why."""
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return f"`{name}` is not a module name; nothing imported"
    refused = _refusal([*parts, "_"], name, project)  # `_`: the lookup wants a qualname
    if refused is not None:
        return refused
    _importable_from(project.root)
    levels, blocked = _locate([*parts, "_"], project)
    if blocked is not None:
        return f"not imported: {blocked}"
    if len(levels) != len(parts):
        return _not_found(parts, name, project)
    try:
        _import(levels, project)
    except _Refused as exc:
        return f"not imported: {exc}"
    except (Exception, SystemExit) as exc:  # a script without a __main__ guard may exit
        return f"importing `{name}` failed: {exc.__class__.__name__}: {exc}"
    return None


# -- what may be imported ---------------------------------------------------------------------

_NOT_SOURCE = frozenset({"venv", "site-packages", "dist-packages", "node_modules",
                         "__pycache__"})
"""Directories of a project whose files are never its source (hidden ones neither)."""


@dataclass(frozen=True)
class _Project:
    root: Path
    """The project root, resolved."""
    store: Path
    """The store directory, resolved."""

    def excludes(self, path: str | os.PathLike[str]) -> str | None:
        """Why ``path`` is not source code of the project, or None when it is."""
        try:
            resolved = Path(path).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            return f"{os.fspath(path)!r} cannot be resolved ({exc})"
        if not resolved.is_relative_to(self.root):
            return f"{str(resolved)!r} is outside the project ({self.root})"
        if resolved.is_relative_to(self.store):
            return f"{str(resolved)!r} is inside the store"
        for part in resolved.relative_to(self.root).parts:
            if part in _NOT_SOURCE or part.startswith("."):
                return f"{str(resolved)!r} is in `{part}`, not project source"
        return None


@dataclass(frozen=True)
class _Level:
    """One level of a dotted module name and the file (or namespace directory) it is."""

    name: str
    path: Path
    namespace: bool = False


class _Refused(Exception):
    """A module auditing will not import (the message says why)."""


def _refusal(parts: list[str], function: str, project: _Project) -> str | None:
    """Why the modules of ``function`` are never imported, decided from its name alone."""
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return f"`{function}` is not a `module.qualname`; nothing imported"
    top = parts[0]
    if top == "__main__":
        return f"`{function}` was recorded in a script run as __main__ (`python -c`, or a " \
               f"script outside the project); nothing imported"
    if top in sys.stdlib_module_names:
        return f"`{top}` is a standard-library module; a recording never makes memo-replay " \
               f"import it"
    loaded = sys.modules.get(top)
    if loaded is not None and (why := _foreign(loaded, None, project)) is not None:
        return f"`{top}` is already imported from outside the project ({why}); not checked"
    return None


def _not_found(parts: list[str], function: str, project: _Project) -> str:
    """Why no module of ``function`` is a source file of the project."""
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name: finds, imports nothing
    except (Exception, SystemExit):
        spec = None
    where = None if spec is None else _location(spec)
    if where is not None:
        return f"`{parts[0]}` is imported from {str(where)!r}, not from a source file of " \
               f"the project; a recording never makes memo-replay import it"
    return f"no module of `{function}` can be imported: no `{parts[0]}.py` or `{parts[0]}/` " \
           f"in {project.root} or its src/ (run from the project root, or install the project)"


def _locate(parts: list[str], project: _Project) -> tuple[list[_Level], str | None]:
    """The longest leading part of ``parts`` (all but the last, a function's name) that names
    project source files, level by level — found on disk, without importing anything — and,
    when the next level exists but is refused (a symlink, not a regular file, not project
    source), why. A directory with ``__init__.py`` is a package, else ``<name>.py`` a module,
    else a directory a namespace package: the order of Python's own path finder."""
    best: tuple[list[_Level], str | None] = ([], None)
    for base in (project.root, project.root / "src"):
        levels: list[_Level] = []
        blocked = None
        directory = base
        for i, part in enumerate(parts[:-1]):
            name = ".".join(parts[: i + 1])
            package = directory / part
            if _source_file(package / "__init__.py", project) is None:
                levels.append(_Level(name, package / "__init__.py"))
            elif _source_file(directory / f"{part}.py", project) is None:
                levels.append(_Level(name, directory / f"{part}.py"))
                break  # a module: nothing below it
            elif _source_directory(package, project) is None:
                levels.append(_Level(name, package, namespace=True))
            else:
                blocked = next((f"`{name}` would be {str(path)!r}, {why}" for path, why in (
                    (package / "__init__.py", _source_file(package / "__init__.py", project)),
                    (directory / f"{part}.py", _source_file(directory / f"{part}.py", project)),
                    (package, _source_directory(package, project)),
                ) if why is not None and os.path.lexists(path)), None)
                break
            directory = package
        if len(levels) > len(best[0]) or (len(levels) == len(best[0]) and best[1] is None):
            best = (levels, blocked)
    return best


def _source_file(path: Path, project: _Project) -> str | None:
    """Why ``path`` is not a source file of the project (None when it is one: a regular file,
    not a symlink, inside the project and outside the store and environments)."""
    return _source_path(path, project, stat.S_ISREG, "not a regular file")


def _source_directory(path: Path, project: _Project) -> str | None:
    """Why ``path`` is not a directory of the project's source (None when it is one)."""
    return _source_path(path, project, stat.S_ISDIR, "not a directory")


def _source_path(path: Path, project: _Project, is_kind: Callable[[int], bool],
                 otherwise: str) -> str | None:
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):
        return "missing"
    if stat.S_ISLNK(mode):
        return "a symlink (never followed)"
    if not is_kind(mode):
        return otherwise
    return project.excludes(path)


def _import(levels: list[_Level], project: _Project) -> ModuleType:
    """Import ``levels`` in order, each only after checking that the import system would load
    exactly the file found on disk (or that it is already loaded from the project)."""
    module: ModuleType | None = None
    for level in levels:
        loaded = sys.modules.get(level.name)
        if loaded is not None:
            why = _foreign(loaded, level, project)
            if why is not None:
                raise _Refused(f"`{level.name}` is already imported from outside the project "
                               f"({why})")
            module = loaded
            continue
        spec = importlib.util.find_spec(level.name)  # its parent is imported: finds, no more
        where = None if spec is None else _location(spec)
        if spec is None or where is None or not _same(spec, level):
            raise _Refused(f"`{level.name}` would be imported from "
                           f"{'nowhere' if where is None else repr(str(where))}, not from "
                           f"{str(level.path)!r}")
        # Project code runs on import; what it prints must not corrupt `--json` output.
        with contextlib.redirect_stdout(sys.stderr):
            module = importlib.import_module(level.name)
    assert module is not None
    return module


def _location(spec: importlib.machinery.ModuleSpec) -> Path | None:
    """The file a spec loads, or a namespace package's first directory."""
    if spec.origin is not None and spec.has_location:
        return Path(spec.origin)
    locations = list(spec.submodule_search_locations or ())
    return Path(locations[0]) if locations else None


def _same(spec: importlib.machinery.ModuleSpec, level: _Level) -> bool:
    """True when ``spec`` loads ``level``'s file (or, for a namespace package, searches its
    directory)."""
    try:
        if level.namespace:
            return not spec.has_location and any(Path(p).resolve() == level.path.resolve()
                                                 for p in spec.submodule_search_locations or ())
        return spec.has_location and spec.origin is not None \
            and Path(spec.origin).resolve() == level.path.resolve()
    except (OSError, RuntimeError, ValueError):
        return False


def _foreign(module: ModuleType, level: _Level | None, project: _Project) -> str | None:
    """Why an imported module is not project source, or None when it is (a namespace package
    is when one of its directories is ``level``'s)."""
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        return project.excludes(file)
    paths = [p for p in getattr(module, "__path__", None) or () if isinstance(p, str)]
    if level is not None and level.namespace:
        if any(Path(p).resolve() == level.path.resolve() for p in paths):
            return None
    elif paths and all(project.excludes(p) is None for p in paths):
        return None
    return f"`{module.__name__}` has no source file in the project"


def _importable_from(root: Path) -> None:
    """Make the project's modules (and a ``src/`` layout's) importable, *after* everything
    else on ``sys.path``: a project file never shadows the standard library or an installed
    package for imports that run later in this process."""
    for directory in (root, root / "src"):
        if directory.is_dir() and str(directory) not in sys.path:
            sys.path.append(str(directory))


_MISSING = object()
