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
changed. What one definition (function or class) contributes is computed once per process and
shared by every recorded function that reaches it (:mod:`memo_replay.keys.summaries`).
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xxhash import xxh3_128

from memo_replay.errors import warn
from memo_replay.keys.normalize import Rendered
from memo_replay.keys.ownership import _is_project_callable, _package_identity
from memo_replay.keys.walk import _Walker

CODE_FRAMING_VERSION = 3
"""The key format users see ("recorded by an older memo_replay (key format 2, now 3)"). 2:
definitions, decorators, per-member classes, lazy imports, user code, local annotations and None
constants changed what a fingerprint covers. 3: the lossless argument encoding (encoding
version 4) and length-prefixed key framing."""

Kind = Literal["source", "bytecode", "package"]


@dataclass(frozen=True)
class CodeFingerprint:
    """The code component of a key. ``hash`` covers every other field."""

    hash: str
    kind: Kind
    source: str
    """The normalized source for people (``ast.unparse``; its layout varies by Python)."""
    source_hash: str
    """Hash of the canonical structure of the source — what the key uses."""
    helpers: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, str] = field(default_factory=dict)
    deps: Mapping[str, str] = field(default_factory=dict)
    version: str | None = None
    definitions: Mapping[str, str] = field(default_factory=dict)
    """Module-level names with no canonical value → digest of the statements binding them."""
    framing: int = CODE_FRAMING_VERSION
    """The version of what goes into the fingerprint (entries before it was stored: 1)."""


def fingerprint(fn: Any, *, function_id: str, root: Path, deps: Sequence[object] = (),
                version: str | None = None) -> CodeFingerprint:
    """Fingerprint ``fn`` (the undecorated callable) for the project rooted at ``root``."""
    walker = _Walker(root)
    kind: Kind
    if isinstance(fn, types.FunctionType) and _is_project_callable(fn, root):
        summary = walker.function_summary(fn)
        kind = "bytecode" if summary.bytecode else "source"
        if summary.bytecode:
            warn(f"memo_replay: no source code for `{function_id}` (defined in a REPL, with "
                 f"`python -c` or in a frozen app); its key uses a fingerprint of the bytecode, "
                 f"which differs between Python versions.")
        source = Rendered(summary.text, summary.digest)
    elif isinstance(fn, type) and _is_project_callable(fn, root):
        summary = walker.whole_class(fn)
        kind, source = "source", Rendered(summary.text, summary.digest)
    else:
        kind, source = "package", Rendered.of_text(_package_identity(fn))
    dep_hashes = dict(walker.dependency(index, dep) for index, dep in enumerate(deps))
    return _assemble(kind, source, walker.helpers, walker.constants, dep_hashes, version,
                     walker.definitions)


def _assemble(kind: Kind, source: Rendered, helpers: dict[str, str],
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
        source=source.text,
        source_hash=source.digest,
        helpers=dict(sorted(helpers.items())),
        constants=dict(sorted(constants.items())),
        deps=dict(sorted(deps.items())),
        version=version,
        definitions=dict(sorted(definitions.items())),
    )
