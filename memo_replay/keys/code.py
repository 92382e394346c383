"""The code fingerprint: what about a function's code a recording depends on.

This module owns :class:`CodeFingerprint`, the version of its framing and how it is assembled.
The function's own source is normalized by :mod:`memo_replay.keys.normalize` (no docstrings, no
``@recorded``, a canonical structure that formatting and comments do not change); the names that
source reads are resolved against its globals, closure, class and in-body imports, and followed
transitively and with cycle protection into the project's (and the user's) own code by the walk
(:mod:`memo_replay.keys.walk`), which collects:

- **helpers**: functions, with their decorators (a decorator and a decorator factory's arguments
  are read by the definition, so they count); classes *per member*: the class without its plain
  methods (bases, decorators, class-level assignments and annotations, dunder methods, methods
  with decorators a framework may call), plus each plain method whose name the walked code uses
  as an attribute anywhere (``x.render``, ``self.render``, ``type(self).render``,
  ``super().render``), on the class and its bases;
- **constants**: values of module-level names with a canonical encoding;
- **definitions**: any other module-level name (an instance, a compiled regex, a namespace, a
  dispatch table of functions) counts by the canonical AST of the module-level statements that
  bind it, and what those statements read; an instance counts by its class too.

What is "own" code is decided by file location (:mod:`memo_replay.keys.ownership`): the
project's files and user code outside any installed package (a ``__main__`` script, a notebook
cell, ``exec``'d code); the standard library and site-packages are identified by name (and
distribution version) only, never hashed.

Each helper, constant and definition is kept by qualified name, so a miss can say which one
changed. What one definition (function or class) contributes, and everything a helper function
reaches, is computed once per process and shared by every recorded function that reaches it
(:mod:`memo_replay.keys.summaries`), re-checked before each reuse.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from xxhash import xxh3_128

from memo_replay.errors import warn
from memo_replay.keys.normalize import Rendered
from memo_replay.keys.ownership import _is_project_callable, _package_identity
from memo_replay.keys.walk import _Pass, _Walker

if TYPE_CHECKING:
    from pathlib import Path

CODE_FRAMING_VERSION = 3
"""The key format users see ("recorded by an older memo_replay (key format 2, now 3)"). 2:
definitions, decorators, per-member classes, lazy imports, user code, local annotations and None
constants changed what a fingerprint covers. 3: the lossless argument encoding (encoding
version 4) and length-prefixed key framing."""

Kind = Literal["source", "bytecode", "package"]


_NONE: Mapping[str, str] = types.MappingProxyType({})


class CodeFingerprint:
    """The code component of a key. ``hash`` covers every other field.

    Immutable, compared field by field. A plain class rather than a dataclass
    (:mod:`dataclasses` imports :mod:`inspect`, milliseconds of every replaying process's
    start), so that ``source`` can be made when first read: :func:`ast.unparse` is slow, and a
    replay that hits never reads it."""

    __slots__ = ("_source", "constants", "definitions", "deps", "framing", "hash", "helpers",
                 "kind", "source_hash", "version")

    hash: str
    kind: Kind
    _source: str | Callable[[], str]
    source_hash: str
    """Hash of the canonical structure of the source — what the key uses."""
    helpers: Mapping[str, str]
    constants: Mapping[str, str]
    deps: Mapping[str, str]
    version: str | None
    definitions: Mapping[str, str]
    """Module-level names with no canonical value → digest of the statements binding them."""
    framing: int
    """The version of what goes into the fingerprint (entries before it was stored: 1)."""

    def __init__(self, hash: str, kind: Kind, source: str | Callable[[], str],
                 source_hash: str, helpers: Mapping[str, str] = _NONE,
                 constants: Mapping[str, str] = _NONE, deps: Mapping[str, str] = _NONE,
                 version: str | None = None, definitions: Mapping[str, str] = _NONE,
                 framing: int = CODE_FRAMING_VERSION) -> None:
        for name, value in (("hash", hash), ("kind", kind), ("_source", source),
                            ("source_hash", source_hash), ("helpers", helpers),
                            ("constants", constants), ("deps", deps), ("version", version),
                            ("definitions", definitions), ("framing", framing)):
            object.__setattr__(self, name, value)

    @property
    def source(self) -> str:
        """The normalized source for people (``ast.unparse``; its layout varies by Python)."""
        source = self._source
        if not isinstance(source, str):
            source = source()
            object.__setattr__(self, "_source", source)
        return source

    def _fields(self) -> tuple[object, ...]:
        return (self.hash, self.kind, self.source, self.source_hash, dict(self.helpers),
                dict(self.constants), dict(self.deps), self.version, dict(self.definitions),
                self.framing)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CodeFingerprint):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # as a frozen dataclass of dicts: unhashable

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"CodeFingerprint is immutable: cannot set `{name}`")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"CodeFingerprint is immutable: cannot delete `{name}`")

    def __repr__(self) -> str:
        names = ("hash", "kind", "source", "source_hash", "helpers", "constants", "deps",
                 "version", "definitions", "framing")
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(names, self._fields(), strict=True))
        return f"CodeFingerprint({fields})"


def fingerprint(fn: Any, *, function_id: str, root: Path, deps: Sequence[object] = (),
                version: str | None = None) -> CodeFingerprint:
    """Fingerprint ``fn`` (the undecorated callable) for the project rooted at ``root``."""
    found = _collect(fn, root, deps, _Walker(root))
    if found[1].conflicted:
        # Two different things share a name (module-level lambdas, closures of one factory):
        # the one that counts is the one the walk reaches last, so walk everything in order,
        # without the helpers' shared closures, exactly as before they were shared.
        found = _collect(fn, root, deps, _Walker(root, _Pass(root, share=False)))
    kind, walker, source, dep_hashes = found
    if kind == "bytecode":
        warn(f"memo_replay: no source code for `{function_id}` (defined in a REPL, with "
             f"`python -c` or in a frozen app); its key uses a fingerprint of the bytecode, "
             f"which differs between Python versions.")
    return _assemble(kind, source, walker.helpers, walker.constants, dep_hashes, version,
                     walker.definitions)


def _collect(fn: Any, root: Path, deps: Sequence[object], walker: _Walker
             ) -> tuple[Kind, _Walker, _Source, dict[str, str]]:
    """What ``walker`` collects from ``fn`` and ``deps``."""
    kind: Kind
    if isinstance(fn, types.FunctionType) and _is_project_callable(fn, root):
        summary = walker.function_summary(fn)
        kind = "bytecode" if summary.bytecode else "source"
        source = _Source(summary.text_of, summary.digest)
    elif isinstance(fn, type) and _is_project_callable(fn, root):
        summary = walker.whole_class(fn)
        kind, source = "source", _Source(summary.text_of, summary.digest)
    else:
        kind, source = "package", _Source.of(Rendered.of_text(_package_identity(fn)))
    dep_hashes = dict(walker.dependency(index, dep) for index, dep in enumerate(deps))
    return kind, walker, source, dep_hashes


class _Source(NamedTuple):
    """The recorded function's own digest, and what gives its text (made when first read)."""

    text_of: Callable[[], str]
    digest: str

    @classmethod
    def of(cls, rendered: Rendered) -> _Source:
        text = rendered.text
        return cls(lambda: text, rendered.digest)


def _assemble(kind: Kind, source: _Source, helpers: dict[str, str],
              constants: dict[str, str], deps: dict[str, str], version: str | None,
              definitions: dict[str, str] | None = None) -> CodeFingerprint:
    definitions = definitions or {}
    h = xxh3_128(b"memo-replay-code\x00%d\x00%s\x00" % (CODE_FRAMING_VERSION, kind.encode()))
    h.update(source.digest.encode() + b"\x00")
    for tag, mapping in ((b"h", helpers), (b"c", constants), (b"d", deps), (b"n", definitions)):
        for name in sorted(mapping):
            h.update(b"%s%s=%s\x00" % (tag, name.encode(), mapping[name].encode()))
    h.update(b"v%s" % (version or "").encode())
    return CodeFingerprint(
        hash=h.hexdigest(),
        kind=kind,
        source=source.text_of,
        source_hash=source.digest,
        helpers=dict(sorted(helpers.items())),
        constants=dict(sorted(constants.items())),
        deps=dict(sorted(deps.items())),
        version=version,
        definitions=dict(sorted(definitions.items())),
    )
