"""What a key is made of, section by section — and how an entry stores it.

A :class:`Components` holds everything a key was composed from: the code fingerprint (the
function's own source, the helpers, constants and explicit ``deps=`` it reaches, ``version=``),
the per-argument hashes, the per-file hashes and the serializer option. An entry keeps it under
``components`` so that a miss can be explained component by component; this module is the one
place that shape is written (:meth:`Components.document`) and read back and validated
(:meth:`Components.from_document`).

:data:`SECTIONS` lists the named sections that are compared name by name (helpers, constants,
deps, files); :mod:`memo_replay.explain` loops over them, so a new kind of dependency is a new
section, not a new branch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from memo_replay.keys.code import CodeFingerprint


class Section(NamedTuple):
    """A group of components compared name by name, and how a difference in it reads."""

    field: str
    """Its field in :meth:`Components.sections` (and in the entry)."""
    label: str
    """What one item is called: ``helper``, ``file``."""
    changed: str
    gone: str
    new: str


SECTIONS: tuple[Section, ...] = (
    Section("helpers", "helper", "helper `{}` changed", "helper `{}` is no longer used",
            "helper `{}` is newly used"),
    Section("constants", "constant", "constant `{}` changed", "constant `{}` is no longer used",
            "constant `{}` is newly used"),
    Section("definitions", "definition", "definition `{}` changed",
            "definition `{}` is no longer used", "definition `{}` is newly used"),
    Section("deps", "dependency", "dependency `{}` changed", "dependency `{}` is no longer used",
            "dependency `{}` is newly used"),
    Section("files", "file", "file `{}` changed", "file `{}` is no longer among the declared files",
            "file `{}` is newly declared"),
)


class Components(NamedTuple):
    """The parts a call's key was composed from."""

    code: CodeFingerprint
    arguments: Mapping[str, str]
    """Parameter name → hash of its value (ignored parameters are absent)."""
    files: Mapping[str, str]
    """Declared file, relative to the project root → hash of its content."""
    serializer: str | None
    """The ``serializer=`` option (None: chosen from the result)."""

    def sections(self) -> dict[str, Mapping[str, str]]:
        """Each of :data:`SECTIONS` by field."""
        code = self.code
        return {"helpers": code.helpers, "constants": code.constants,
                "definitions": code.definitions, "deps": code.deps, "files": self.files}

    def document(self) -> dict[str, Any]:
        """The ``components`` of an entry (keys sorted: entries are deterministic)."""
        code = self.code
        return {
            "arguments": dict(sorted(self.arguments.items())),
            "code": {
                "constants": dict(code.constants),
                "definitions": dict(code.definitions),
                "deps": dict(code.deps),
                "framing": code.framing,
                "hash": code.hash,
                "helpers": dict(code.helpers),
                "kind": code.kind,
                "source": code.source.splitlines(),
                "source_hash": code.source_hash,
                "version": code.version,
            },
            "files": dict(sorted(self.files.items())),
            "serializer": self.serializer,
        }

    @classmethod
    def from_document(cls, value: object) -> Components:
        """Read back what :meth:`document` wrote; ``ValueError`` naming the field otherwise."""
        document = _mapping(value, "components")
        code = _mapping(document.get("code"), "components.code")
        source = code.get("source")
        if not isinstance(source, list) or not all(isinstance(line, str) for line in source):
            raise ValueError("`components.code.source` should be a list of lines")
        kind = code.get("kind")
        if kind not in ("source", "bytecode", "package"):
            raise ValueError(f"`components.code.kind` is {kind!r}")
        version = code.get("version")
        serializer = document.get("serializer")
        framing = code.get("framing", 1)  # not stored before framing 2
        if type(framing) is not int:
            raise ValueError("`components.code.framing` should be an integer")
        if version is not None and not isinstance(version, str):
            raise ValueError("`components.code.version` should be a string or null")
        if serializer is not None and not isinstance(serializer, str):
            raise ValueError("`components.serializer` should be a string or null")
        return cls(
            code=CodeFingerprint(
                hash=_string(code.get("hash"), "components.code.hash"),
                kind=kind,
                source="\n".join(source),
                source_hash=_string(code.get("source_hash"), "components.code.source_hash"),
                helpers=_hashes(code.get("helpers", {}), "components.code.helpers"),
                constants=_hashes(code.get("constants", {}), "components.code.constants"),
                deps=_hashes(code.get("deps", {}), "components.code.deps"),
                version=version,
                # Absent from entries written before definitions existed (code framing 1).
                definitions=_hashes(code.get("definitions", {}), "components.code.definitions"),
                framing=framing,
            ),
            arguments=_hashes(document.get("arguments", {}), "components.arguments"),
            files=_hashes(document.get("files", {}), "components.files"),
            serializer=serializer,
        )


def _mapping(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"`{name}` should be an object")
    return value


def _string(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"`{name}` should be a string")
    return value


def _hashes(value: object, name: str) -> dict[str, str]:
    mapping = _mapping(value, name)
    if not all(isinstance(v, str) for v in mapping.values()):
        raise ValueError(f"`{name}` should map names to hashes")
    return dict(mapping)


__all__ = ["SECTIONS", "Components", "Section"]
