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


_NO_TYPES: Mapping[str, str] = {}


class ArgumentPreview(dict[str, Any]):
    """The bounded JSON preview of a call's arguments (what an entry keeps under
    ``arguments``), plus each argument's type in :attr:`types`: a preview cannot tell
    ``Path("a.dy")`` from ``"a.dy"``, nor (once compared in Python) ``2`` from ``2.0``."""

    types: Mapping[str, str]

    def __init__(self, shown: Mapping[str, Any], types: Mapping[str, str]) -> None:
        super().__init__(shown)
        self.types = types


def type_label(value: object) -> str:
    """How an argument's type is named in an entry and a miss: ``int``, ``pathlib.PosixPath``."""
    tp = type(value)
    module = getattr(tp, "__module__", None)
    return tp.__qualname__ if module in (None, "builtins") else f"{module}.{tp.__qualname__}"


class Components(NamedTuple):
    """The parts a call's key was composed from."""

    code: CodeFingerprint
    arguments: Mapping[str, str]
    """Parameter name → hash of its value (ignored parameters are absent)."""
    files: Mapping[str, str]
    """Declared file, relative to the project root → hash of its content."""
    serializer: str | None
    """The ``serializer=`` option (None: chosen from the result)."""
    argument_types: Mapping[str, str] = _NO_TYPES
    """Parameter name → :func:`type_label` of its value. Not part of the key (the argument's
    hash already covers its type): kept so that a miss can say "recorded a `str`, now a
    `pathlib.PosixPath`". Filled when a call is recorded; absent from entries recorded before
    it existed (they read back with none: no format version bump)."""

    constant_values: Mapping[str, Any] = _NO_TYPES
    """Constant name → bounded preview of its value when the call was recorded (see
    :mod:`memo_replay.constants`). Not part of the key (its hash in ``code.constants`` is):
    kept so that a miss can show how a constant changed. Optional like ``argument_types``."""

    def with_constants(self, values: Mapping[str, Any]) -> Components:
        """These components with the constant previews ``values``."""
        return self._replace(constant_values=dict(values)) if values else self

    def with_types(self, preview: Mapping[str, Any]) -> Components:
        """These components with the argument types ``preview`` (an :class:`ArgumentPreview`)
        carries, for the entry that records them."""
        types = getattr(preview, "types", None)
        return self if not types else self._replace(argument_types=dict(types))

    def sections(self) -> dict[str, Mapping[str, str]]:
        """Each of :data:`SECTIONS` by field."""
        code = self.code
        return {"helpers": code.helpers, "constants": code.constants,
                "definitions": code.definitions, "deps": code.deps, "files": self.files}

    def document(self) -> dict[str, Any]:
        """The ``components`` of an entry (keys sorted: entries are deterministic)."""
        code = self.code
        optional: dict[str, Any] = {}
        if self.argument_types:
            optional["argument_types"] = dict(sorted(self.argument_types.items()))
        if self.constant_values:
            optional["constant_values"] = dict(sorted(self.constant_values.items()))
        return dict(sorted({**optional,
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
        }.items()))

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
            # Optional: entries recorded before argument types were kept have none.
            argument_types=_hashes(document.get("argument_types", {}),
                                   "components.argument_types"),
            constant_values=dict(_mapping(document.get("constant_values", {}),
                                          "components.constant_values")),
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


__all__ = ["SECTIONS", "ArgumentPreview", "Components", "Section", "type_label"]
