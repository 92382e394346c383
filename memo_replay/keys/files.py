"""Declared input files: ``files=`` globs and templates over the bound arguments.

Every pattern is relative to the project root (absolute paths are allowed too). ``"{path}"`` and
``"examples/{name}.dy"`` are filled from the call's arguments; a template that is exactly one
field whose argument is a list/tuple/set expands to each item. A directory stands for every file
under it. Each matched file contributes its path relative to the project root and an
``xxh3_128`` of its content. A pattern that matches nothing is an error, not an empty set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xxhash import xxh3_128

from memo_replay.errors import InvalidOption, MissingDeclaredFile
from memo_replay.project import relative_to_root
from memo_replay.stamps import Stamp, is_racily_clean, stamp_of

_GLOB_CHARS = frozenset("*?[")
_CHUNK = 1 << 20


class FileHasher:
    """Content hashes reused while a file's stamp (size, mtime_ns, inode) is unchanged; a file
    modified in the last seconds is re-hashed on every call (:func:`is_racily_clean`)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[Stamp, str]] = {}

    def digest(self, path: str) -> str:
        st = os.stat(path)
        stamp = stamp_of(st)
        known = self._known.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
        h = xxh3_128()
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        digest = h.hexdigest()
        if not is_racily_clean(st):
            self._known[path] = (stamp, digest)
        return digest


class DeclaredFiles:
    """The ``files=`` of one recorded function."""

    def __init__(self, patterns: Sequence[str], *, function_id: str, root: Path,
                 parameters: Sequence[str]) -> None:
        if isinstance(patterns, (str, os.PathLike)):
            patterns = [os.fspath(patterns)]
        self.patterns = tuple(os.fspath(p) for p in patterns)
        self.function_id = function_id
        self.root = root
        self._hasher = FileHasher()
        for pattern in self.patterns:
            for name in _fields(pattern):
                if name not in parameters:
                    raise InvalidOption(
                        f"@recorded(files=[{pattern!r}]) on `{function_id}`: the template field "
                        f"{{{name}}} is not a parameter of the function; parameters are: "
                        f"{', '.join(parameters) or '(none)'}"
                    )

    def hashes(self, bound: Mapping[str, Any]) -> dict[str, str]:
        """Root-relative path → content hash of every declared file for this call."""
        result: dict[str, str] = {}
        for pattern in self.patterns:
            for concrete in self._expand(pattern, bound):
                matches = self._match(concrete)
                if not matches:
                    shown = pattern if concrete == pattern else f"{pattern!r} → {concrete!r}"
                    raise MissingDeclaredFile(
                        f"`{self.function_id}` declares files={shown!s} but no file matches it "
                        f"(patterns are relative to the project root {self.root}). Fix the "
                        f"pattern or the argument, or create the file."
                    )
                for path in matches:
                    result[relative_to_root(path, self.root)] = self._hasher.digest(str(path))
        return dict(sorted(result.items()))

    def _expand(self, pattern: str, bound: Mapping[str, Any]) -> list[str]:
        names = _fields(pattern)
        if not names:
            return [pattern]
        if len(names) == 1 and pattern == f"{{{names[0]}}}":
            value = bound[names[0]]
            if isinstance(value, (list, tuple, set, frozenset)):
                return sorted(os.fspath(v) for v in value)
        values = {n: os.fspath(v) if isinstance(v, os.PathLike) else v for n, v in bound.items()}
        return [pattern.format_map(values)]

    def _match(self, concrete: str) -> list[Path]:
        path = Path(concrete)
        absolute = path if path.is_absolute() else self.root / path
        if _GLOB_CHARS.isdisjoint(concrete):
            if absolute.is_dir():
                return sorted(p for p in absolute.rglob("*") if p.is_file())
            return [absolute] if absolute.is_file() else []
        import glob  # patterns only

        found = glob.glob(str(absolute), recursive=True)
        return sorted(Path(p) for p in found if os.path.isfile(p))


def _fields(pattern: str) -> list[str]:
    import string  # declared files only

    names: Iterable[str | None] = (field for _, field, _, _ in string.Formatter().parse(pattern))
    return [n.split(".")[0].split("[")[0] for n in names if n]
