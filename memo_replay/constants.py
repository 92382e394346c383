"""The constants a key names, seen from a running process: their value now, a bounded preview of
it, and the module that defines them.

A key stores only a hash of each constant it read, so "constant `pkg.llm.CALLS` changed" alone
does not say *how*. An entry therefore also keeps a bounded preview of each constant's value as
it was when the call was recorded (``components.constant_values``, optional), and a miss shows
it beside the value now. Constants are named where they are read (``pkg.llm.PROMPT`` when
``pkg/llm.py`` did ``from pkg.prompts import PROMPT``); :func:`defined_in` finds the module that
defines them, which is where a developer goes to look.

Nothing here imports a module or runs project code: names are looked up in ``sys.modules`` and
in ``__dict__`` (no ``getattr``: no descriptor or module ``__getattr__`` runs), and a module's
own source is parsed, never executed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_MISSING: Any = object()
_SECRET_NAMES = ("key", "token", "secret", "passw", "credential", "auth", "cookie", "session",
                 "private")
HIDDEN = "<not shown: the name or value looks like a secret>"
"""The preview kept for a constant that may hold a secret (its hash still counts)."""
MUTABLE_STATE_FAQ = "\"A constant changed, but I did not edit it\" in docs/faq.md"
STRING_CHARS = 4000
"""A string constant up to this long is kept whole (an argument's preview stops at 200): the
typical constant is a prompt template, reworded past its first lines, and a miss can show
where it changed only if the recording kept that far."""


def current_value(name: str) -> tuple[bool, Any]:
    """``(True, value now)`` of the constant ``name`` (``module.attr``, ``module.Class.attr``)
    in modules already imported; ``(False, None)`` when it cannot be found (a closure value, a
    module not imported)."""
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        value = sys.modules.get(".".join(parts[:split]))
        if value is None:
            continue
        for attribute in parts[split:]:
            namespace = getattr(value, "__dict__", None)
            if not isinstance(namespace, Mapping):
                return False, None
            value = namespace.get(attribute, _MISSING)
            if value is _MISSING:
                return False, None
        return True, value
    return False, None


def previews(names: Iterable[str], root: Path | None, *, secret_patterns: tuple[str, ...] = (),
             allow_secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    """Bounded previews of the constants ``names`` that can be found now; one whose name or
    value looks like a secret is kept as :data:`HIDDEN` (an entry is committed to git)."""
    from memo_replay.keys.arguments import preview_value
    from memo_replay.secrets import scanner

    scan = scanner(secret_patterns, allow_secrets)
    found: dict[str, Any] = {}
    for name in names:
        exists, value = current_value(name)
        if not exists:
            continue
        shown = value if isinstance(value, str) and len(value) <= STRING_CHARS \
            else preview_value(value, root)
        if _secret_name(name) or scan.scan_text(json.dumps(shown, sort_keys=True), name):
            shown = HIDDEN
        found[name] = shown
    return found


def _secret_name(name: str) -> bool:
    last = name.rpartition(".")[2].lower()
    return any(word in last for word in _SECRET_NAMES)


def is_mutable(value: Any) -> bool:
    """Whether ``value`` is a container a program can change while it runs."""
    return isinstance(value, (dict, list, set, bytearray))


def defined_in(name: str) -> str | None:
    """The module that defines the constant read as ``name``, when that is not the module it is
    named after: ``pkg.llm.PROMPT`` → ``pkg.prompts`` after ``from pkg.prompts import PROMPT``
    in ``pkg/llm.py`` (followed through re-exports). None when it is defined where it is named,
    or when that cannot be told (no source)."""
    module, _, attribute = name.rpartition(".")
    origin = None
    for _ in range(8):  # re-exports: `from .prompts import PROMPT` in an __init__.py
        imported = _imported_from(module, attribute)
        if imported is None:
            break
        module, attribute = imported
        origin = module
    return origin


def _imported_from(module: str, attribute: str) -> tuple[str, str] | None:
    """``(module, name)`` that ``module`` imports ``attribute`` from at its top level."""
    loaded = sys.modules.get(module)
    filename = getattr(loaded, "__file__", None)
    if loaded is None or not isinstance(filename, str) or not filename.endswith(".py"):
        return None
    import ast

    try:
        tree = ast.parse(Path(filename).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    package = getattr(loaded, "__package__", None) or ""
    found = None
    for statement in tree.body:  # the last binding wins, as when the module ran
        if isinstance(statement, ast.ImportFrom):
            for alias in statement.names:
                if (alias.asname or alias.name) == attribute and alias.name != "*":
                    found = (_absolute(statement, package), alias.name)
        elif _binds(statement, attribute):
            found = None
    if found is None or found[0] is None or found[0] not in sys.modules:
        return None
    return found[0], found[1]


def _absolute(statement: Any, package: str) -> str | None:
    if not statement.level:
        return str(statement.module)
    parts = package.split(".") if package else []
    if statement.level - 1 > len(parts):
        return None
    base = parts[:len(parts) - (statement.level - 1)]
    return ".".join([*base, *([statement.module] if statement.module else [])]) or None


def _binds(statement: Any, attribute: str) -> bool:
    import ast

    targets: list[Any] = []
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        targets = [statement.target]
    elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return statement.name == attribute
    return any(isinstance(n, ast.Name) and n.id == attribute
               for target in targets for n in ast.walk(target))


__all__ = ["HIDDEN", "MUTABLE_STATE_FAQ", "current_value", "defined_in", "is_mutable",
           "previews"]
