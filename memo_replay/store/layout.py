"""The names of things in a store: one directory per function, an entry file per key, and the
payload file of an entry whose result is stored apart from it.

::

    fixtures_store/
      <module.qualname>/<key>.json                     one committed entry per recording
      <module.qualname>/<key>.<checksum prefix>.bin    its payload file (large binary results)
      .cache/                                          derived data, git-ignored

Names are ``/``-separated and relative to the store, whatever backend holds them.
"""

from __future__ import annotations

import re

ENTRY_SUFFIX = ".json"
PAYLOAD_FILE_SUFFIX = ".bin"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_KEY = re.compile(r"^[0-9a-f]{32}$")
_PAYLOAD_FILE = re.compile(r"^([0-9a-f]{32})\.[0-9a-f]{16}" + re.escape(PAYLOAD_FILE_SUFFIX) + "$")


def function_dir_name(function: str) -> str:
    """The directory holding a function's entries (``<locals>`` and the like made safe)."""
    return _UNSAFE.sub("_", function)


def entry_name(function: str, key: str) -> str:
    """``<function directory>/<key>.json``."""
    return f"{function_dir_name(function)}/{key}{ENTRY_SUFFIX}"


def payload_file_name(key: str, checksum: str) -> str:
    """The file beside entry ``key`` holding a payload with ``checksum`` (content-addressed, so
    a reader holding an older entry never pairs it with a newer payload)."""
    return f"{key}.{checksum[:16]}{PAYLOAD_FILE_SUFFIX}"


def split(name: str) -> tuple[str, str]:
    """``("dir", "file")`` of a name (``("", name)`` at the top of the store)."""
    directory, _, file = name.rpartition("/")
    return directory, file


def sibling(name: str, file: str) -> str:
    """The name of ``file`` in the same directory as ``name``."""
    directory, _ = split(name)
    return f"{directory}/{file}" if directory else file


def is_entry_file(name: str) -> bool:
    """True for the names listed as entries: ``*.json`` files in a function directory that are
    not temporary (reading one tells whether it really is an entry)."""
    directory, file = split(name)
    return bool(directory) and file.endswith(ENTRY_SUFFIX) and not file.startswith(".")


def entry_stem(name: str) -> str:
    """The key an entry file's name claims (its file name without ``.json``)."""
    return split(name)[1].removesuffix(ENTRY_SUFFIX)


def key_of(name: str) -> str | None:
    """The key an entry name holds, or None when ``name`` is not an entry's."""
    _, file = split(name)
    if not file.endswith(ENTRY_SUFFIX):
        return None
    key = file[:-len(ENTRY_SUFFIX)]
    return key if _KEY.match(key) else None


def temp_file_key(file: str) -> str | None:
    """The key a temporary file (``.<key>[.<checksum>].<random>.tmp``) is written for, or None."""
    key = file.lstrip(".").partition(".")[0]
    return key if file.endswith(".tmp") and _KEY.match(key) else None


def payload_file_key(name: str) -> str | None:
    """The key a payload file belongs to, or None when ``name`` is not a payload file's."""
    match = _PAYLOAD_FILE.match(split(name)[1])
    return None if match is None else match.group(1)
