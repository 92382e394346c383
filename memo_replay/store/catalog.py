"""The catalog: what ``stats`` and ``ls`` read of each entry file, remembered between runs.

Reading 100,000 small entry files costs about 0.6 s here however it is done (an ``open``, an
``fstat``, a ``read`` and a ``close`` each) and scanning their fields 0.3 s more; an ``lstat``
costs 0.26 s. So the first ``stats``/``ls`` of a checkout reads every entry and writes, per
function directory, ``.cache/catalog/<directory>.json`` (git-ignored) holding each entry file's
stamp — (size, mtime_ns, inode) — with what was read from it, and the directory's own stamp with
its listing. The next run ``lstat``s each entry and re-reads only those whose stamp changed; it
lists the directory again only when the directory's stamp changed (a file created, deleted or
renamed in it moves its mtime).

It is derived data like the index (see :mod:`memo_replay.store.index`), and input from a pull
request like the rest of the store:

- JSON only (never pickle): a force-committed ``.cache/`` cannot run code. Each file is
  columns of plain values, checked whole when loaded: a file of another version or shape, with
  one value of the wrong type or a listed name that is not a plain ``*.json`` name, is ignored
  whole, and the directory is listed and read;
- nothing is followed: ``.cache`` and ``catalog`` must be real directories, files are opened
  with ``O_NOFOLLOW`` and must be regular files;
- an entry (a directory's listing) is taken from the catalog only while its stamp is the one it
  was read with, and one modified within two seconds of being read is not catalogued at all
  (:func:`memo_replay.stamps.is_racily_clean`: a rewrite within one mtime tick keeps the
  stamp);
- written atomically (a temporary file renamed), by ``stats`` and ``ls`` only — never when
  replaying — and only when something changed; where ``.cache`` cannot be created (a read-only
  checkout) or is not what it should be, everything still works without it.

Only stores over a plain :class:`~memo_replay.store.backend.LocalDirectory` have a catalog:
another backend's stamps are not file stamps.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING, Any, NamedTuple

from memo_replay.errors import CorruptEntry
from memo_replay.stamps import is_racily_clean
from memo_replay.store.backend import LocalDirectory, NotFollowed
from memo_replay.store.entry import (
    Listing,
    MissingPayload,
    Summary,
    parse_entry,
    parse_timestamp,
    read_listing,
    read_summary,
)
from memo_replay.store.index import CACHE_DIR, cache_directory, check_cache_directory
from memo_replay.store.layout import (
    ENTRY_SUFFIX,
    entry_stem,
    function_dir_name,
    is_entry_file,
    payload_file_key,
)

if TYPE_CHECKING:
    from memo_replay.store.store import Store

CATALOG_DIR = "catalog"
"""The catalog's directory inside the store's ``.cache/``: ``<function directory>.json`` each."""
CATALOG_VERSION = 1
"""Version of a catalog file; files of another version are ignored (and rewritten)."""
MAX_CATALOG_BYTES = 256 * 1024 * 1024
"""Catalog files above this size are ignored unread (100,000 small entries take ~15 MB)."""

_COLUMNS = ("files", "sizes", "mtimes", "inodes", "functions", "times", "serializers",
            "payload_files", "payload_sizes", "arguments")
"""A catalog file's columns, one value per entry file, in :data:`Record` order after the name."""
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)

Record = tuple[int, int, int, str, str | None, str, str | None, int | None,
               dict[str, Any] | None]
"""What the catalog keeps of one entry file: its stamp (size, mtime_ns, inode), its summary's
function, time, serializer and payload file, and — once ``ls`` has read it — its listing's
payload size and argument preview (both None until then)."""


@dataclass(frozen=True)
class FunctionStats:
    """One function's line of :meth:`Store.stats() <memo_replay.store.store.Store.stats>`."""

    entries: int = 0
    bytes: int = 0
    oldest: dt.datetime | None = None
    newest: dt.datetime | None = None
    serializers: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreStats:
    """:meth:`Store.stats() <memo_replay.store.store.Store.stats>`: entries and bytes per
    function; ``problems`` counts entries whose summary cannot be read at all."""

    entries: int
    bytes: int
    functions: Mapping[str, FunctionStats]
    problems: int


# -- the reports -------------------------------------------------------------------------------


def stats(store: Store) -> StoreStats:
    """Entries, bytes and ages per function, from what each entry says about itself."""
    tallies: dict[str, list[Any]] = {}  # function: [entries, bytes, times, serializers]
    problems = 0

    def damaged(_: CorruptEntry) -> None:
        nonlocal problems
        problems += 1

    for directory, found in scan(store, listings=False, damaged=damaged):
        for _, record in found:
            size, function, when, serializer, payload_file = \
                record[0], record[3], record[4], record[5], record[6]
            if payload_file is not None:
                size += store.backend.size(f"{directory}/{payload_file}") or 0
            tally = tallies.get(function)
            if tally is None:
                tally = tallies[function] = [0, 0, [], {}]
            tally[0] += 1
            tally[1] += size
            if when is not None:
                tally[2].append(when)
            tally[3][serializer] = tally[3].get(serializer, 0) + 1
    functions = {name: FunctionStats(entries, size, *_time_range(times),
                                     serializers=dict(sorted(serializers.items())))
                 for name, (entries, size, times, serializers) in sorted(tallies.items())}
    return StoreStats(entries=sum(f.entries for f in functions.values()),
                      bytes=sum(f.bytes for f in functions.values()),
                      functions=functions, problems=problems)


def listings(store: Store, function: str | None = None) -> Iterator[Listing]:
    """What ``memo-replay ls`` shows of every entry (of one function when given), sorted by
    name; damaged entries are logged and skipped (``verify`` reports them)."""
    suffix = len(ENTRY_SUFFIX)
    for _, found in scan(store, function, listings=True, damaged=_log_damaged):
        yield from [Listing(Summary(file[:-suffix], r[3], r[4], r[5], r[6]), r[7], r[8])
                    for file, r in found if r[7] is not None and r[8] is not None
                    and (function is None or r[3] == function)]


def _log_damaged(exc: CorruptEntry) -> None:
    import logging  # only when there is something to say

    logging.getLogger("memo_replay.store.store").warning("%s", exc)


def _time_range(times: list[str]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The oldest and newest of entries' times (these sort as the times do); a time that does
    not parse (a hand edit) is left out rather than failing the report."""
    if not times:
        return None, None
    try:
        return parse_timestamp(min(times)), parse_timestamp(max(times))
    except ValueError:
        parsed = [when for when in map(_parsed_time, times) if when is not None]
        return min(parsed, default=None), max(parsed, default=None)


def _parsed_time(text: str) -> dt.datetime | None:
    try:
        when = parse_timestamp(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None  # comparable with the others


# -- the scan ----------------------------------------------------------------------------------


def scan(store: Store, function: str | None = None, *, listings: bool,
         damaged: Callable[[CorruptEntry], None]
         ) -> Iterator[tuple[str, list[tuple[str, Record]]]]:
    """Every function directory (only ``function``'s when given) and its entry files, sorted by
    name, as ``(directory, [(file name, record), ...])``, each record holding the listing when
    ``listings``: from the catalog where the entry's stamp is the one catalogued, else read.
    Entries that cannot be read go to ``damaged``. A directory's catalog is rewritten, if
    anything in it changed, before the directory is returned. (Lists, not an item at a time:
    at 100,000 entries, generators' per-item cost shows.)"""
    started = time.time_ns()  # the racily-clean rule's "now": before anything is read
    if type(store.backend) is LocalDirectory:
        for directory in _function_directories(store.backend.location, function):
            yield directory, _scan_directory(store, directory, listings, damaged, started)
        return
    for directory, names in groupby(store.entry_names(function), _directory):
        files = [name[len(directory) + 1:] for name in names]
        yield directory, _read_all(store, directory, files, listings, damaged)


def _directory(name: str) -> str:
    return name.rpartition("/")[0]


def _function_directories(root: str, function: str | None) -> list[str]:
    """The function directories of a local store (``function``'s only, when given), in the
    order of :meth:`Store.entry_names` (``m.f._locals_.g/`` sorts before ``m.f/``): the real
    directories at its top, not hidden (``.cache``), never a symlink."""
    if function is not None:
        return [function_dir_name(function)]
    try:
        with os.scandir(root) as found:
            directories = [item.name for item in found if not item.name.startswith(".")
                           and item.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(directories, key=lambda name: name + "/")


def _read_all(store: Store, directory: str, files: list[str], listings: bool,
              damaged: Callable[[CorruptEntry], None]) -> list[tuple[str, Record]]:
    """:func:`scan` of one directory of a store that has no catalog."""
    found = []
    for file in files:
        name = f"{directory}/{file}"
        try:
            read = _read(store, name, store.backend.where(name), listings, local=False)
        except CorruptEntry as exc:
            damaged(exc)
            continue
        if read is not None:
            found.append((file, read[0]))
    return found


def _scan_directory(store: Store, directory: str, listings: bool,
                    damaged: Callable[[CorruptEntry], None], started: int
                    ) -> list[tuple[str, Record]]:
    """:func:`scan` of one function directory of a local store, through its catalog: its
    entry files are those the catalog lists while the directory's own stamp is the one they
    were listed under (a file created, deleted or renamed in it changes its mtime), else the
    directory is listed again."""
    root = store.backend.location
    prefix = store.backend.where(directory) + os.sep
    try:
        here = os.lstat(prefix[:-1])  # before listing: a change while listed moves its mtime
    except OSError:
        return []
    if not stat.S_ISDIR(here.st_mode):
        return []  # a symlink, a file: nothing is listed through it (as Store.entry_names)
    stamp = (here.st_mtime_ns, here.st_ino)
    catalog = _load(root, directory)
    files = catalog.names if catalog.listed == stamp and catalog.names is not None else \
        [name[len(directory) + 1:] for name in store.backend.names(directory + "/")
         if is_entry_file(name)]
    found: list[tuple[str, Record]] = []
    kept: dict[str, Record] = {}
    added = 0
    lstat, get = os.lstat, catalog.records.get
    for file in files:
        record = get(file)
        if record is not None and (record[7] is not None or not listings):
            try:
                st = lstat(prefix + file)
            except OSError:
                st = None
            if st is not None and record[0] == st.st_size and record[1] == st.st_mtime_ns \
                    and record[2] == st.st_ino:
                kept[file] = record
                found.append((file, record))
                continue
        try:
            read = _read(store, f"{directory}/{file}", prefix + file, listings, local=True)
        except CorruptEntry as exc:
            damaged(exc)
            continue
        if read is None:
            continue  # deleted since it was listed
        record, exact = read
        if exact and not is_racily_clean((record[0], record[1], record[2]), started):
            kept[file] = record
            added += 1
        found.append((file, record))
    listed = None if is_racily_clean(here, started) else stamp
    if added or len(kept) != len(catalog.records) or listed != catalog.listed:
        _save(root, directory, kept, listed, [file for file in files if file not in kept])
    return found


def _read(store: Store, name: str, path: str, listings: bool, *, local: bool
          ) -> tuple[Record, bool] | None:
    """Read the entry file ``name`` (at ``path``): the record of what it says (with its
    listing when ``listings``) and whether the record may be catalogued — it came from the
    local file's bytes whose stamp it holds; None when the file is absent. A damaged entry
    raises :class:`CorruptEntry`."""
    found = store._raw_stamped(name)
    if found is None:
        return None
    raw, stamp = found
    exact = local and len(stamp) == 3 and stamp[0] == len(raw)
    size, mtime_ns, inode = (stamp[0], stamp[1], stamp[2]) if exact else (len(raw), 0, 0)
    key = entry_stem(name)
    if not listings:
        summary = read_summary(path, key, raw)
        return (size, mtime_ns, inode, summary.function, summary.recorded_at, summary.serializer,
                summary.payload_file, None, None), exact
    listing = read_listing(path, key, raw)
    if listing is None:  # not the layout memo_replay writes: parsed whole
        try:
            entry = parse_entry(path, name, raw, store._reader(name))
        except MissingPayload:
            found_entry = store.read(name)  # replaced by a concurrent re-record? read again
            if found_entry is None:
                return None
            entry, exact = found_entry, False
        listing = Listing(Summary.parsed(entry.key, entry.function, entry.recorded_at,
                                         entry.serializer, entry.payload_file),
                          entry.size, dict(entry.arguments))
    summary = listing.summary
    return (size, mtime_ns, inode, summary.function, summary.recorded_at, summary.serializer,
            summary.payload_file, listing.size, listing.arguments), exact


# -- catalog files -----------------------------------------------------------------------------


def _folder(root: str, *, create: bool) -> str:
    """``<store>/.cache/catalog``, checked to be real directories (and created when
    ``create``); OSError (:class:`NotFollowed` among them) where it cannot be used."""
    if create:
        cache = cache_directory(root)
    else:
        cache = os.path.join(root, CACHE_DIR)
        check_cache_directory(cache)
    folder = os.path.join(cache, CATALOG_DIR)
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
    if not stat.S_ISDIR(os.lstat(folder).st_mode):
        raise NotFollowed(f"{folder} is not a directory; memo_replay never follows links in a "
                          f"store (delete it: .cache/ is derived data)")
    return folder


class _Loaded(NamedTuple):
    """A function directory's catalog as loaded."""

    records: dict[str, Record]
    """Entry file name → what was read from it."""
    listed: tuple[int, int] | None
    """The directory's (mtime_ns, inode) when it was listed (None: changed too recently)."""
    names: list[str] | None
    """Its entry files then, sorted: the records' and those not catalogued (damaged, just
    written)."""


_NOTHING = _Loaded({}, None, None)


def _load(root: str, directory: str) -> _Loaded:
    """The catalog of one function directory; empty when there is none or it is not one
    memo_replay wrote (damaged, hostile, another version)."""
    try:
        raw = _read_catalog_file(os.path.join(_folder(root, create=False), directory + ".json"))
    except OSError:
        return _NOTHING
    if raw is None:
        return _NOTHING
    enabled = gc.isenabled()
    gc.disable()  # 100,000 small containers: the collector would triple the parse's time
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, too deep, a number of 5,000 digits
        return _NOTHING
    finally:
        if enabled:
            gc.enable()
    return _loaded(document, directory)


def _read_catalog_file(path: str) -> bytes | None:
    """The bytes of a catalog file, if it is a regular file of a sane size (never followed)."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_CATALOG_BYTES:
            return None
        data = os.read(fd, st.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) == st.st_size else None  # else rewritten while read: ignored


def _loaded(document: Any, directory: str) -> _Loaded:
    """A parsed catalog file, after checking all of it: a file of another version or shape, or
    with one value of the wrong type, gives nothing (the directory is listed and read)."""
    if type(document) is not dict or document.get("version") != CATALOG_VERSION \
            or document.get("directory") != directory:
        return _NOTHING
    columns: list[Any] = [document.get(column) for column in _COLUMNS]
    if any(type(c) is not list for c in columns):
        return _NOTHING
    files, sizes, mtimes, inodes, functions, times, serializers, payload_files, \
        payload_sizes, arguments = columns
    if len({len(c) for c in columns}) != 1 \
            or not _only(files, str) or not _only(sizes, int) or not _only(mtimes, int) \
            or not _only(inodes, int) or not _only(functions, str) \
            or not _only(times, str, type(None)) or not _only(serializers, str) \
            or not _only(payload_files, str, type(None)) \
            or not _only(payload_sizes, int, type(None)) \
            or not _only(arguments, dict, type(None)):
        return _NOTHING
    known = [size for size in payload_sizes if size is not None]
    if min(known, default=0) < 0 or max(known, default=0) >= 1 << 63 \
            or [s is None for s in payload_sizes] != [a is None for a in arguments] \
            or any(payload_file_key(payload) != file.removesuffix(ENTRY_SUFFIX)
                   for file, payload in zip(files, payload_files, strict=True)
                   if payload is not None):
        return _NOTHING  # a size no file has, half a listing, another key's payload file
    records = dict(zip(files, zip(sizes, mtimes, inodes, functions, times, serializers,
                                  payload_files, payload_sizes, arguments, strict=True),
                       strict=True))
    listed, others = document.get("listed"), document.get("uncatalogued")
    if type(others) is not list or not _only(others, str) or (listed is not None and (
            type(listed) is not list or len(listed) != 2 or not _only(listed, int))):
        return _NOTHING
    names = sorted(files + others) if others else files
    if not _plain_listing(names):
        return _NOTHING
    return _Loaded(records, None if listed is None else (listed[0], listed[1]), names)


def _plain_listing(names: list[str]) -> bool:
    """True when ``names`` could be a listing of entry files: sorted, each once, each a plain
    ``*.json`` name (no directory part, no leading dot). Checked over the joined names at C
    speed: these name the files the scan opens."""
    joined = "\n" + "\n".join(names) + "\n"
    return joined.count("\n") == len(names) + 1 and joined.count(".json\n") == len(names) \
        and "\n." not in joined and "/" not in joined and os.sep not in joined \
        and "\x00" not in joined and len(set(names)) == len(names) and names == sorted(names)


def _only(values: Iterable[Any], *types: type) -> bool:
    """True when every value is of exactly one of ``types`` (``bool`` is not an ``int``)."""
    return set(map(type, values)) <= set(types)


def _save(root: str, directory: str, records: dict[str, Record],
          listed: tuple[int, int] | None, uncatalogued: list[str]) -> None:
    """Write the catalog of one function directory atomically; where it cannot be written
    (read-only, ``.cache`` not a directory, a name too long) nothing is, silently: the next
    run reads the entries again."""
    temp = None
    try:
        folder = _folder(root, create=True)  # first: nothing is encoded for nowhere to go
        columns: list[Any] = [list(records)]
        columns += map(list, zip(*records.values(), strict=True)) if records \
            else [[] for _ in _COLUMNS[1:]]
        data = json.dumps({"version": CATALOG_VERSION, "directory": directory,
                           "listed": listed, "uncatalogued": uncatalogued,
                           **dict(zip(_COLUMNS, columns, strict=True))},
                          separators=(",", ":"), check_circular=False).encode()
        temp = os.path.join(folder, f".{directory}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(temp, os.path.join(folder, directory + ".json"))
        temp = None
        _sweep(folder, directory)
    except (OSError, ValueError, RecursionError):  # (a preview too deep to write back)
        pass
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _sweep(folder: str, directory: str) -> None:
    """Remove this directory's temporary catalog files left by a process killed while writing
    one (older than :data:`~memo_replay.store.store.ORPHAN_AGE_S`: a younger one may be
    another process's write in flight). Only regular files are removed, none followed."""
    from memo_replay.store.store import ORPHAN_AGE_S

    prefix, now = f".{directory}.", time.time()
    for name in os.listdir(folder):
        if name.startswith(prefix) and name.endswith(".tmp"):
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and now - st.st_mtime > ORPHAN_AGE_S:
                    os.unlink(path)


__all__ = ["CATALOG_DIR", "CATALOG_VERSION", "FunctionStats", "Record", "StoreStats", "listings",
           "scan", "stats"]
