"""Which recordings no longer serve: stale, gone, expired, and leftovers of killed recorders.

Auditing imports the recorded functions (the project root is put on ``sys.path``) and compares
each entry's code fingerprint with the current code. It is deliberately conservative, because
:meth:`Store.prune` deletes what it finds:

- **stale**: the function exists and is recorded, but its code fingerprint changed;
- **gone**: the function's module imports, but no longer defines the function (or it is no
  longer ``@recorded``); or the module is missing from a package that still imports;
- **unchecked**: anything that cannot be checked — a module that fails to import (a missing
  dependency, a syntax error, the project not on the path), a function defined inside another
  function. These are reported and never pruned.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
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
    """Classify every entry of ``store`` (imports the recorded functions)."""
    from memo_replay.project import find_root, project_config

    root = find_root(store.path.resolve())
    _importable_from(root)
    config_ttl = project_config(root).ttl
    now = time.time() if now is None else now
    resolved: dict[str, tuple[Memo[Any, Any] | None, Reason | None, str]] = {}
    result = Audit()
    for entry in store.entries() if entries is None else entries:
        if entry.function not in resolved:
            resolved[entry.function] = _resolve(entry.function)
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


def _resolve(function: str) -> tuple[Memo[Any, Any] | None, Reason | None, str]:
    """The function's current ``Memo``, or why there is none."""
    from memo_replay.decorator import Memo

    parts = function.split(".")
    if "<locals>" in parts:
        return None, "unchecked", f"`{function}` is defined inside a function; not importable"
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            # Project code runs on import; what it prints must not corrupt `--json` output.
            with contextlib.redirect_stdout(sys.stderr):
                module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                continue  # no such module: maybe the qualname is longer (Class.method)
            return None, "unchecked", f"importing `{module_name}` failed: {exc}"
        except (Exception, SystemExit) as exc:  # a script without a __main__ guard may exit
            return None, "unchecked", f"importing `{module_name}` failed: " \
                                      f"{exc.__class__.__name__}: {exc}"
        value: Any = module
        for attr in parts[split:]:
            value = getattr(value, attr, _MISSING)
            if value is _MISSING:
                return None, "gone", f"`{module_name}` no longer defines " \
                                     f"`{'.'.join(parts[split:])}`"
        memo = getattr(value, "memo", None)
        if not isinstance(memo, Memo):
            return None, "gone", f"`{function}` is no longer @recorded"
        return memo, None, ""
    return None, "unchecked", f"no module of `{function}` can be imported (run from the " \
                              f"project root, or install the project)"


def _importable_from(root: Path) -> None:
    """Put the project (and a ``src/`` layout) on ``sys.path`` so its modules import."""
    for directory in (root / "src", root):
        if directory.is_dir() and str(directory) not in sys.path:
            sys.path.insert(0, str(directory))


_MISSING = object()
