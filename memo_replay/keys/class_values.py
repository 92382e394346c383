"""How a class passed as a value counts in a key. A class passed as an argument — `extract(text,
Invoice)`, a structured-output schema — is part of what the call computes: adding a field to
`Invoice` changes the answer. So a class whose module is a project file counts by its code
fingerprint (and a pydantic model also by its JSON schema, which is what a model is shown), not
only by its name. Third-party and standard-library classes keep counting by name.
"""

from __future__ import annotations

import enum
import json
import sys
import threading
import weakref
from pathlib import Path, PurePath

from xxhash import xxh3_128

from memo_replay.keys.encoding import Encoder, type_id
from memo_replay.optional_types import is_pydantic_model_class
from memo_replay.project import is_project_file

_class_digests: weakref.WeakKeyDictionary[type, dict[PurePath, bytes | None]] = \
    weakref.WeakKeyDictionary()
"""Per process: class → root → its digest (None: not a project class). Computed once, on the
first encoding of the class, like the code fingerprint of a function."""
_in_progress = threading.local()
"""The classes being fingerprinted on this thread: a class reached again while its own
fingerprint is computed (a registry constant holding it) counts by name there."""


def class_fingerprint(cls: type, root: PurePath) -> str | None:
    """What a class of the project's own counts by, besides its name (hex; the key material
    holds it); None for a class that counts by name only (standard library, site-packages)."""
    digest = project_class_digest(cls, root)
    return None if digest is None else digest.decode()


def project_class_digest(cls: type, root: PurePath) -> bytes | None:
    """Hex digest of a project class's fingerprint (and pydantic schema); None for a class
    that is not the project's own."""
    try:
        per_root = _class_digests.get(cls)
    except TypeError:  # a class that cannot be weakly referenced (some C extension types)
        return None
    if per_root is not None and root in per_root:
        return per_root[root]
    stack: list[type] | None = getattr(_in_progress, "stack", None)
    if stack is None:
        stack = _in_progress.stack = []
    if cls in stack:
        return None  # a cycle: the outer computation already covers this class
    stack.append(cls)
    try:
        digest = _compute_class_digest(cls, Path(root))
    finally:
        stack.pop()
    if not stack:
        # Only a computation that started at this class is remembered: one made inside another
        # class's (which counts that class by name) must not become what this class is.
        _class_digests.setdefault(cls, {})[root] = digest
    return digest


def _compute_class_digest(cls: type, root: Path) -> bytes | None:
    if not _is_own_class(cls, root):
        return None
    h = xxh3_128()
    h.update(_code_digest(cls, root).encode())
    # Plain values in the class's own namespace, like a function's closure values: two classes
    # with one source and one name (made by a factory, `value = n`) are not the same class.
    encoder = Encoder(root)
    for name, value in sorted(vars(cls).items()):
        if not (name.startswith("__") and name.endswith("__")) and _plain(value):
            h.update(b"\x00a%s=%s" % (name.encode("utf-8", "surrogatepass"),
                                      encoder.encode(value)))
    if is_pydantic_model_class(cls):
        h.update(b"\x00schema\x00")
        h.update(_pydantic_schema(cls))
    return h.hexdigest().encode()


_PLAIN_SCALARS = (str, bytes, int, float, complex, bool, type(None))


def _plain(value: object, depth: int = 0) -> bool:
    """An immutable value: a scalar, an enum member, or a tuple or frozenset of such values."""
    if isinstance(value, (*_PLAIN_SCALARS, enum.Enum)):
        return True
    if type(value) in (tuple, frozenset) and depth < 4:
        return all(_plain(item, depth + 1) for item in value)  # type: ignore[attr-defined]
    return False


def _is_own_class(cls: type, root: Path) -> bool:
    """A class of a project file, or of user code run as ``__main__`` (a script, ``python -c``,
    a notebook); not one of the standard library, site-packages or memo_replay."""
    if cls.__module__ == "__main__":
        return True
    module = sys.modules.get(cls.__module__)
    return is_project_file(getattr(module, "__file__", None), root)


def _code_digest(cls: type, root: Path) -> str:
    from memo_replay.keys.code import fingerprint  # imported here: code.py imports this module

    return fingerprint(cls, function_id=type_id(cls), root=root).hash


def _pydantic_schema(cls: type) -> bytes:
    """The canonical JSON schema of a pydantic model class (what a model is shown of it)."""
    import pydantic

    try:
        schema = cls.model_json_schema()  # type: ignore[attr-defined]
    except pydantic.PydanticUserError as exc:  # a field type with no JSON schema
        import logging  # not at import: `import memo_replay` stays light

        logging.getLogger(__name__).debug(
            "no JSON schema for %s (%s): its code fingerprint alone counts", type_id(cls), exc)
        return b"<no schema>"
    return json.dumps(schema, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
