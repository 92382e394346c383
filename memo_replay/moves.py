"""Moving recordings with their function: ``memo-replay mv OLD NEW`` and the miss hint.

A key starts with the function's id (``module.qualname``), so moving or renaming a recorded
function makes every call a miss although the recordings still hold the right answers. This
module re-keys them: each entry of ``OLD`` is written again under ``NEW``'s directory with the
key :func:`~memo_replay.keys.compose` gives for ``NEW`` and the entry's own components, then the
old entry is removed. Writing first and deleting second means a crash never loses a recording:
the next run finds the new entry already there (identical), and only removes the old one.

Moving is checked, not blind: ``NEW`` is imported the way auditing imports recorded functions
(only project source files, see :mod:`memo_replay.audit`) and its current code fingerprint is
compared with each entry's; an entry recorded by other code is not moved unless forced (then it
takes ``NEW``'s current fingerprint: the user vouches that its result still holds).

:func:`moved_from` is what a miss with no recording asks: does the store hold this very call
under another function id? It checks one file per function directory (the key the call would
have under that id), so it costs a directory listing and a ``stat`` per recorded function,
whatever the number of entries.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from memo_replay.errors import CorruptEntry, MoveError
from memo_replay.keys import CallKey, compose
from memo_replay.keys.components import Components
from memo_replay.store.entry import (
    parse_entry,
    read_document,
    read_summary,
    render,
    same_recording,
)
from memo_replay.store.layout import entry_stem, function_dir_name, payload_file_name, sibling

if TYPE_CHECKING:
    from memo_replay.keys.code import CodeFingerprint
    from memo_replay.store import Entry, Store

Status = Literal["move", "present", "code-differs", "conflict", "damaged"]
"""What happens to one entry of ``OLD``:

- ``move``: written under ``NEW`` with its new key, then removed from ``OLD``;
- ``present``: ``NEW`` already holds the same recording under that key (a move interrupted
  after writing it, or recorded again since): only the old entry is removed;
- ``code-differs``: recorded by code whose fingerprint differs from ``NEW``'s: not moved
  unless forced;
- ``conflict``: ``NEW`` holds a different recording (or a damaged file) under that key: not
  moved;
- ``damaged``: the entry of ``OLD`` cannot be read: not moved (``memo-replay verify``).
"""

MOVING: frozenset[Status] = frozenset({"move", "present"})
"""The statuses whose entries a move (``--yes``) takes out of ``OLD``."""

MAX_DIRECTORIES = 5000
""":func:`moved_from` checks at most this many function directories (a miss stays cheap)."""


class Move(NamedTuple):
    """One entry of ``OLD`` and what moving it does."""

    status: Status
    name: str
    """The entry's name in the store (``<OLD directory>/<key>.json``)."""
    path: Path
    key: str
    new_key: str | None
    """Its key under ``NEW`` (None when it cannot be read)."""
    new_path: Path | None
    detail: str = ""
    """Why it is not moved (or what else happens)."""
    document: dict[str, Any] | None = None
    """The entry document to write under ``NEW`` (``move`` only)."""
    payload: bytes | None = None
    """Its payload file's bytes, when it has one (``move`` only)."""


def plan(store: Store, old: str, new: str, *, force: bool = False) -> list[Move]:
    """What moving the recordings of ``old`` to ``new`` would do, entry by entry; nothing is
    written. Imports ``new``'s module only when it is a source file of the project.

    :class:`MoveError` when there is nothing to move (``old`` has no entries), when ``old`` and
    ``new`` are the same, or when ``new`` cannot be imported or is not ``@recorded``.
    """
    if old == new:
        raise MoveError(f"mv: OLD and NEW are both `{old}`; give the function's "
                        f"previous id and its new one (module.qualname)")
    names = list(store.entry_names(old))
    if not names:
        raise MoveError(_no_entries(store, old, new))
    current = _current_code(store, new)
    moves: list[Move] = []
    for name in names:
        path = Path(store.backend.where(name))
        try:
            entry, raw = store.read_with_bytes(name)
        except CorruptEntry as exc:
            moves.append(Move("damaged", name, path, entry_stem(name), None, None,
                              f"{exc.reason}; run `memo-replay verify`"))
            continue
        if entry is None or raw is None or entry.function != old:
            continue  # deleted meanwhile, or another function's sharing a sanitized directory
        moves.append(_plan_entry(store, entry, raw, new, current, force=force))
    if not moves:
        raise MoveError(_no_entries(store, old, new))
    return moves


def apply(store: Store, moves: list[Move]) -> list[Move]:
    """Carry out ``moves`` (from :func:`plan`); returns those done (``move`` and ``present``).

    Each new entry (and its payload file, first) is written before the old entry is removed:
    interrupted at any point, nothing is lost and running the move again finishes it.
    """
    done = []
    for move in moves:
        if move.status not in MOVING:
            continue
        if move.status == "move":
            assert move.document is not None
            assert move.new_key is not None
            new_name = f"{function_dir_name(move.document['function'])}/{move.new_key}.json"
            if move.payload is not None:
                checksum = move.document["result"]["checksum"]
                store.backend.write(sibling(new_name, payload_file_name(move.new_key, checksum)),
                                    move.payload)
            store.backend.write(new_name, render(move.document))
        store.remove_named(move.name)
        done.append(move)
    if done:
        # The emptied directory of OLD: git does not track it, but `ls` of the store would
        # show it (best effort: another process may be recording into it).
        with contextlib.suppress(OSError):
            os.rmdir(store.backend.where(done[0].name.rpartition("/")[0]))
    return done


def moved_from(store: Store, call: CallKey) -> list[str]:
    """The other function ids under which ``store`` holds a recording of exactly this call:
    the same code fingerprint, argument hashes, declared files and serializer option — what
    ``memo-replay mv OTHER call.function`` would turn into this call's recording.

    One ``stat`` per function directory (at most :data:`MAX_DIRECTORIES`), and one entry read
    per match: cheap enough to run on every miss that finds no recording at all.
    """
    found = []
    own = function_dir_name(call.function)
    components = call.components
    for directory in _directories(store.path):
        if directory == own or not _FUNCTION_ID.fullmatch(directory):
            continue  # a sanitized name (`<locals>`) does not say which function it holds
        key = compose(directory, components.code, components.arguments, components.files,
                      components.serializer).key
        name = f"{directory}/{key}.json"
        if store.backend.stamp(name) is None:
            continue
        try:
            raw = store.backend.read(name)
            if raw is not None and read_summary(store.backend.where(name), key,
                                                raw).function == directory:
                found.append(directory)
        except (OSError, CorruptEntry):
            continue  # damaged: not worth a hint (verify reports it)
    return found


def mv_command(old: str, new: str, store: Store) -> str:
    """The command that moves ``old``'s recordings to ``new`` in ``store`` (``--store`` only
    when the CLI would not find that store by itself from the project root)."""
    import shlex

    from memo_replay.project import find_root, store_path

    command = f"memo-replay mv {shlex.quote(old)} {shlex.quote(new)} --yes"
    try:
        here = store.path.resolve()
        default = store_path(root=find_root(here)).resolve()
    except (OSError, RuntimeError, ValueError):
        default = None
    if default is None or default != here:
        command += f" --store {shlex.quote(str(store.path))}"
    return command


# -- planning one entry --------------------------------------------------------------------------


def _plan_entry(store: Store, entry: Entry, raw: bytes, new: str, current: CodeFingerprint,
                *, force: bool) -> Move:
    recorded = entry.components
    code = recorded.code
    if code.hash != current.hash:
        if not force:
            return Move("code-differs", entry.name, entry.path, entry.key, None, None,
                        _code_differences(entry, new, current))
        code = current  # forced: the moved recording replays with the code as it is now
    components = recorded._replace(code=code)  # the stored argument types and constants too
    new_key = compose(new, code, recorded.arguments, recorded.files, recorded.serializer).key
    new_name = f"{function_dir_name(new)}/{new_key}.json"
    new_path = Path(store.backend.where(new_name))
    document = read_document(entry.location, raw)
    document["function"] = new
    document["key"] = new_key
    if code is not recorded.code:
        document["components"] = components.document()
    result = dict(document["result"])
    if entry.payload_file is not None:
        result["file"] = payload_file_name(new_key, entry.payload.checksum)
    document["result"] = result
    data = entry.payload.data
    payload = data if entry.payload_file is not None and isinstance(data, bytes) else None
    # What we would write must read back as a valid entry of `new` (the one reader checks it).
    try:
        parse_entry(str(new_path), new_name, render(document), lambda _: payload)
    except CorruptEntry as exc:
        return Move("damaged", entry.name, entry.path, entry.key, new_key, new_path,
                    f"re-keyed, it would not read back ({exc.reason}); run `memo-replay "
                    f"verify`")
    existing = _existing(store, new_name)
    if existing is not None:
        if isinstance(existing, str):
            return Move("conflict", entry.name, entry.path, entry.key, new_key, new_path,
                        f"{new_path} already exists and {existing}; remove one of the two "
                        f"(`git rm`) and run mv again")
        if same_recording(existing, document):
            return Move("present", entry.name, entry.path, entry.key, new_key, new_path,
                        f"{new_path} already holds this recording; only the old entry is "
                        f"removed")
        return Move("conflict", entry.name, entry.path, entry.key, new_key, new_path,
                    f"{new_path} already holds a different recording of this call "
                    f"(`memo-replay diff {entry.key[:12]} {new_key[:12]}` compares them); "
                    f"remove the one you do not want (`git rm`) and run mv again")
    return Move("move", entry.name, entry.path, entry.key, new_key, new_path,
                document=document, payload=payload)


def _existing(store: Store, name: str) -> dict[str, Any] | str | None:
    """The document at ``name`` (None when absent), or why it cannot serve (damaged)."""
    try:
        found, raw = store.read_with_bytes(name)
    except CorruptEntry as exc:
        return f"is damaged ({exc.reason}); run `memo-replay verify`"
    if found is None or raw is None:
        return None
    return read_document(found.location, raw)


def _code_differences(entry: Entry, new: str, current: CodeFingerprint) -> str:
    """Why an entry's recorded code is not ``new``'s current code, component by component."""
    from memo_replay.explain import compare

    call = CallKey(new, "", Components(current, entry.components.arguments,
                                       entry.components.files, entry.components.serializer))
    reasons = [d.message for d in compare(call, entry.arguments, entry)]
    return "recorded by other code than `" + new + "` has now: " + "; ".join(
        reasons or ["its code fingerprint differs"]) + " (--force moves it anyway)"


def _current_code(store: Store, new: str) -> CodeFingerprint:
    """``new``'s current code fingerprint, importing its module only if it is a source file
    of the project (the rule :mod:`memo_replay.audit` applies to every recorded function)."""
    from memo_replay.audit import _importable_from, _Project, _resolve
    from memo_replay.project import find_root

    root = find_root(store.path.resolve())
    _importable_from(root)
    memo, problem, detail = _resolve(new, _Project(root.resolve(), store.path.resolve()))
    if memo is None:
        what = "is not a recorded function" if problem == "gone" else "cannot be checked"
        # Auditing's words are about a function that used to be there; NEW is named now.
        detail = detail.replace("no longer defines", "does not define") \
            .replace("is no longer @recorded", "is not @recorded")
        raise MoveError(f"mv: NEW `{new}` {what}: {detail}. NEW must be the "
                        f"function's current id (module.qualname) in a source file of the "
                        f"project at {root}, decorated with @recorded")
    try:
        return memo.code
    except Exception as exc:  # fingerprinting walks project code (imports, source files)
        raise MoveError(f"mv: cannot fingerprint NEW `{new}`: "
                        f"{exc.__class__.__name__}: {exc}") from exc


def _no_entries(store: Store, old: str, new: str) -> str:
    import difflib

    already = sum(1 for _ in store.entry_names(new))
    if already:
        return f"mv: no recordings of OLD `{old}` in {store.path}; NEW `{new}` has {already} " \
               f"(already moved?)"
    known = sorted(name for name in _directories(store.path)
                   if name != function_dir_name(old) and any(store.entry_names(name)))
    close = difflib.get_close_matches(function_dir_name(old), known, n=3)
    hint = f"; did you mean {', '.join(f'`{name}`' for name in close)}?" if close else \
        "; `memo-replay stats` lists the functions that have recordings"
    return f"mv: no recordings of OLD `{old}` in {store.path}{hint}"


_FUNCTION_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
"""A function directory whose name is a function id as it stands (not sanitized)."""


def _directories(path: Path) -> Iterator[str]:
    """The function directories of the store at ``path`` (no symlinks, no ``.cache``), at
    most :data:`MAX_DIRECTORIES` of them."""
    try:
        with os.scandir(path) as it:
            count = 0
            for item in it:
                if count >= MAX_DIRECTORIES:
                    return
                if not item.name.startswith(".") and item.is_dir(follow_symlinks=False):
                    count += 1
                    yield item.name
    except OSError:
        return


def as_json(move: Move) -> dict[str, Any]:
    """One move as ``memo-replay mv --json`` prints it."""
    return {"status": move.status, "key": move.key, "path": str(move.path),
            "new_key": move.new_key,
            "new_path": None if move.new_path is None else str(move.new_path),
            "detail": move.detail}


__all__ = ["MAX_DIRECTORIES", "MOVING", "Move", "Status", "apply", "as_json", "moved_from",
           "mv_command", "plan"]
