"""The serializer protocol: an id, a version, ``dumps`` and ``loads``.

``payload`` tells the store how to embed the output in the entry file: ``"json"`` (the output is
JSON text, embedded as readable JSON), ``"text"`` (a string) or ``"binary"`` (base64). A
serializer without the attribute is treated as ``"text"`` when it returns ``str`` and
``"binary"`` when it returns ``bytes``. Bumping ``version`` invalidates the recordings it wrote.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

PayloadKind = Literal["json", "text", "binary"]


@runtime_checkable
class Serializer(Protocol):
    """Turns a function's result into bytes or text and back: an `id`, a `version`, `dumps`
    and `loads` (a protocol: any class with them is one; see
    [`register_serializer()`][memo_replay.register_serializer] for an example).

    An optional `payload` attribute tells the store how to embed the output in the entry
    file: `"json"` (the output is JSON text, embedded as readable JSON), `"text"` (a string)
    or `"binary"` (base64, or a payload file beside the entry when large). Without it, a
    `str` output is `"text"` and a `bytes` one `"binary"`.
    """

    @property
    def id(self) -> str:
        """A stable name, stored in every entry this serializer writes."""
        ...

    @property
    def version(self) -> int:
        """Bump it to invalidate the recordings written by earlier versions."""
        ...

    def dumps(self, value: Any) -> bytes | str:
        """Serialize ``value``; raise ``TypeError``/``ValueError`` when it cannot."""
        ...

    def loads(self, data: bytes | str) -> Any:
        """Rebuild the value from what [`dumps()`][memo_replay.Serializer.dumps] returned; it
        must compare equal (`==`) to the value dumped, or the result is not recorded."""
        ...
