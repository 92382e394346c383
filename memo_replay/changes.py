"""``memo-replay changes [BASE]``: the recordings a branch added, removed and changed.

A re-recorded answer is a new entry file beside (or instead of) the old one, so ``git diff``
shows two unrelated JSON files. This module reads the store as it was at ``BASE`` straight from
git (``git ls-tree`` and ``git cat-file``: nothing is checked out, nothing written), reads the
store in the working tree, and pairs an old entry with a new one when they record the same
function called with the same arguments (the argument hashes of their key components). For a
pair it says *why* the key changed (:func:`memo_replay.explain.compare_entries`, the component
differences a :class:`~memo_replay.errors.ReplayMiss` shows) and *what* the answer changed
(:mod:`memo_replay.payload_diff`).

The store at ``BASE`` is untrusted input (it may come from a pull request): its files are parsed
by the same entry reader as any store (:func:`memo_replay.store.entry.parse_entry`), only blobs
are read (a symlink or submodule in the tree is never followed), nothing is imported or
executed, and an entry that does not parse is reported as damaged, not a crash.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from memo_replay.errors import CorruptEntry, GitError
from memo_replay.explain import Difference, compare_entries
from memo_replay.payload_diff import PayloadDiff, diff_payloads
from memo_replay.store import Entry, Store
from memo_replay.store.entry import MAX_ENTRY_BYTES, parse_entry
from memo_replay.store.layout import function_dir_name, is_entry_file, sibling

WORKING_TREE = "the working tree"


class Changed(NamedTuple):
    """An old and a new recording of the same call: why the key changed, what the answer did."""

    old: Entry
    new: Entry
    differences: tuple[Difference, ...]
    payload: PayloadDiff
    old_kept: bool = False
    """The old entry is still in the store (re-recorded beside it, not pruned)."""


class Damaged(NamedTuple):
    """An entry file on one side that could not be read."""

    side: str  # the base revision as given, or WORKING_TREE
    name: str  # relative to the store
    reason: str


class FunctionChanges(NamedTuple):
    added: list[Entry]
    removed: list[Entry]
    changed: list[Changed]


class Report(NamedTuple):
    """Everything ``changes`` found, grouped by function (sorted)."""

    base: str  # the revision as given, or which merge base it is
    commit: str
    store: str  # the store directory relative to the repository root
    functions: dict[str, FunctionChanges]
    damaged: list[Damaged]

    def counts(self) -> dict[str, int]:
        return {kind: sum(len(getattr(f, kind)) for f in self.functions.values())
                for kind in ("added", "removed", "changed")}

    @property
    def found(self) -> bool:
        return bool(self.functions or self.damaged)


def changes(store: Store, base: str | None = None) -> Report:
    """Compare the store at ``base`` (default: the merge base of HEAD with the default branch)
    with the store in the working tree."""
    git = Git.around(store.path)
    if base is None:
        commit, shown = git.default_base()
    else:
        commit, shown = git.commit(base), base
    prefix = git.relative(store.path)
    blobs = git.blobs(commit, prefix)
    # An entry file whose bytes hash to the object id it had at BASE did not change: only the
    # others are read and parsed (a store of 10,000 entries with 3 changes reads 3 from git).
    new: dict[str, tuple[Entry, bytes]] = {}
    damaged: list[Damaged] = []
    unchanged: set[str] = set()
    for name in store.entry_names():
        try:
            raw = store.backend.read(name, limit=MAX_ENTRY_BYTES)
            if raw is not None and name in blobs and blobs[name][0] == git.object_id(raw):
                unchanged.add(name)
                continue
            entry, raw = store.read_with_bytes(name)
        except CorruptEntry as exc:
            damaged.append(Damaged(WORKING_TREE, name, exc.reason))
            continue
        except OSError as exc:
            damaged.append(Damaged(WORKING_TREE, name, f"unreadable ({exc.strerror or exc})"))
            continue
        if entry is not None and raw is not None:
            new[name] = entry, raw
    old, damaged_before = _read_base(git, {n: b for n, b in blobs.items() if n not in unchanged},
                                     blobs, prefix, base or commit[:12])

    def kept(function: str) -> Iterator[Entry]:
        directory = function_dir_name(function) + "/"
        for name in sorted(unchanged):
            if name.startswith(directory):
                with contextlib.suppress(CorruptEntry):  # then it was damaged at BASE too
                    entry = store.read(name)
                    if entry is not None and entry.function == function:
                        yield entry

    return Report(shown, commit, prefix or ".",
                  pair(old.values(), (e for e, _ in new.values()), kept),
                  sorted(damaged_before + damaged))


def pair(old: Iterable[Entry], new: Iterable[Entry],
         kept: Callable[[str], Iterable[Entry]] = lambda function: ()
         ) -> dict[str, FunctionChanges]:
    """Group by function; an old and a new entry of the same function and argument hashes are
    a change (each new entry takes the closest old one: fewest component differences, then the
    most recent), the rest were added or removed. A new entry left without an old one is still
    a change when an unchanged entry of its call is in the store (``kept(function)`` lists them):
    the call was re-recorded beside its old recording, which was not pruned."""
    by_call: dict[tuple[str, tuple[tuple[str, str], ...]], list[Entry]] = {}
    for entry in sorted(old, key=lambda e: e.name):
        by_call.setdefault(_call(entry), []).append(entry)
    result: dict[str, FunctionChanges] = {}

    def of(function: str) -> FunctionChanges:
        return result.setdefault(function, FunctionChanges([], [], []))

    added: list[Entry] = []
    for entry in sorted(new, key=lambda e: e.name):
        candidates = by_call.get(_call(entry), [])
        if not candidates:
            added.append(entry)
            continue
        closest, change = _closest(candidates, entry)
        candidates.remove(closest)
        if closest.key == entry.key and closest.payload == entry.payload:
            continue  # rewritten alike (line endings, volatile fields): nothing to review
        of(entry.function).changed.append(change)
    beside: dict[tuple[str, tuple[tuple[str, str], ...]], list[Entry]] = {}
    for function in sorted({entry.function for entry in added}):
        for entry in kept(function):
            beside.setdefault(_call(entry), []).append(entry)
    for entry in added:
        candidates = beside.get(_call(entry), [])
        if candidates:
            of(entry.function).changed.append(_closest(candidates, entry)[1]._replace(
                old_kept=True))
        else:
            of(entry.function).added.append(entry)
    for remaining in by_call.values():
        for entry in remaining:
            of(entry.function).removed.append(entry)
    return dict(sorted(result.items()))


def _closest(candidates: Iterable[Entry], entry: Entry) -> tuple[Entry, Changed]:
    scored = [(compare_entries(old, entry), old) for old in candidates]
    differences, closest = min(scored, key=lambda s: (len(s[0]), _age(s[1])))
    return closest, Changed(closest, entry, tuple(differences),
                            diff_payloads(closest.payload, entry.payload))


def _call(entry: Entry) -> tuple[str, tuple[tuple[str, str], ...]]:
    return entry.function, tuple(sorted(entry.components.arguments.items()))


def _age(entry: Entry) -> float:
    return -entry.recorded_at.timestamp() if entry.recorded_at is not None else 0.0


def _read_base(git: Git, wanted: Mapping[str, tuple[str, int]],
               blobs: Mapping[str, tuple[str, int]], prefix: str, revision: str
               ) -> tuple[dict[str, Entry], list[Damaged]]:
    """The ``wanted`` entries of the store at BASE (``blobs``: every file of it), parsed by
    name; and the damaged ones."""
    names = [name for name, (_, size) in wanted.items()
             if is_entry_file(name) and not any(p.startswith(".") for p in name.split("/"))]
    damaged = [Damaged(revision, name, f"{wanted[name][1]} bytes, larger than any entry")
               for name in names if wanted[name][1] > MAX_ENTRY_BYTES]
    names = [name for name in names if wanted[name][1] <= MAX_ENTRY_BYTES]
    contents = git.read_blobs([wanted[name][0] for name in names])
    entries: dict[str, Entry] = {}
    for name in names:
        location = f"{revision}:{prefix + '/' if prefix else ''}{name}"

        def read_payload_file(file: str, name: str = name) -> bytes | None:
            found = blobs.get(sibling(name, file))
            return None if found is None else git.read_blobs([found[0]])[found[0]]

        try:
            entries[name] = parse_entry(location, name, contents[wanted[name][0]],
                                        read_payload_file)
        except CorruptEntry as exc:
            damaged.append(Damaged(revision, name, exc.reason))
    return entries, damaged


class Git:
    """Read-only access to the repository holding a store (``git`` on the PATH)."""

    def __init__(self, top: Path) -> None:
        self.top = top

    @classmethod
    def around(cls, path: Path) -> Git:
        start = path.resolve()
        while not start.is_dir() and start != start.parent:  # the store may be gone by now
            start = start.parent
        top = _run(["git", "rev-parse", "--show-toplevel"], start,
                   f"{path} is not inside a git repository: `memo-replay changes` compares "
                   f"the store with a git revision; run it inside the repository")
        return cls(Path(top.decode().strip()).resolve())

    def relative(self, path: Path) -> str:
        """The store's path inside the repository, ``/``-separated (``""`` for the top)."""
        try:
            inside = path.resolve().relative_to(self.top).as_posix()
        except ValueError:
            raise GitError(f"the store {path} is outside the git repository at {self.top}; "
                           f"pass --store with a directory inside it") from None
        return "" if inside == "." else inside

    def default_base(self) -> tuple[str, str]:
        """The merge base of HEAD with the default branch (``origin/HEAD``, else ``main``,
        else ``master``), and how to say so."""
        for branch in ("origin/HEAD", "main", "master"):
            found = self._git(["merge-base", "HEAD", branch], check=False)
            if found is not None:
                return found.decode().strip(), f"the merge base of HEAD and {branch}"
        raise GitError("found no default branch to compare with (tried origin/HEAD, main and "
                       "master, from HEAD); name the revision: `memo-replay changes BASE`, "
                       "e.g. `memo-replay changes HEAD~1`")

    def commit(self, revision: str) -> str:
        if revision.startswith("-"):
            raise GitError(f"{revision!r} is not a revision (it looks like an option); name a "
                           f"commit, a branch or a tag")
        found = self._git(["rev-parse", "--verify", "--quiet", "--end-of-options",
                           f"{revision}^{{commit}}"], check=False)
        if found is None:
            raise GitError(f"unknown revision {revision!r}: name a commit, a branch or a tag "
                           f"of the repository at {self.top} (`git log --oneline` lists them)")
        return found.decode().strip()

    def blobs(self, commit: str, prefix: str) -> dict[str, tuple[str, int]]:
        """The regular files under ``prefix`` at ``commit``: name relative to the prefix →
        (object id, size). Symlinks and submodules are left out: never followed."""
        out = self._git(["ls-tree", "-r", "-l", "-z", "--full-tree", commit, "--",
                         prefix or "."])
        assert out is not None
        found: dict[str, tuple[str, int]] = {}
        start = len(prefix) + 1 if prefix else 0
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, oid, size = meta.split()
            path = os.fsdecode(raw_path)
            if kind == b"blob" and mode in (b"100644", b"100755") and \
                    (not prefix or path.startswith(prefix + "/")):
                found[path[start:]] = oid.decode(), int(size)
        return found

    def read_blobs(self, oids: Iterable[str]) -> dict[str, bytes]:
        """The content of each blob, read by one ``git cat-file --batch``."""
        wanted = list(dict.fromkeys(oids))
        if not wanted:
            return {}
        out = _run(["git", "cat-file", "--batch"], self.top, f"`git cat-file` failed in "
                   f"{self.top}", stdin="".join(f"{oid}\n" for oid in wanted).encode())
        found: dict[str, bytes] = {}
        at = 0
        for oid in wanted:
            end = out.index(b"\n", at)
            header = out[at:end].split()
            if len(header) != 3 or header[1] != b"blob":
                raise GitError(f"`git cat-file` could not read object {oid} in {self.top}")
            size = int(header[2])
            found[oid] = out[end + 1:end + 1 + size]
            at = end + 1 + size + 1
        return found

    @staticmethod
    def object_id(data: bytes) -> str:
        """The id git gives a blob with this content (SHA-1; a SHA-256 repository's ids never
        match it, so its entries are then all read and compared by content)."""
        import hashlib

        return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()

    def _git(self, args: list[str], *, check: bool = True) -> bytes | None:
        if not check:
            try:
                return _run(["git", *args], self.top, "")
            except GitError:
                return None
        return _run(["git", *args], self.top,
                    f"`git {' '.join(args)}` failed in {self.top}")


def _run(argv: list[str], cwd: Path, failure: str, stdin: bytes | None = None) -> bytes:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}  # read only: no index refresh
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, input=stdin, capture_output=True,
                              check=False)
    except FileNotFoundError:
        raise GitError("`git` was not found on the PATH; `memo-replay changes` reads the old "
                       "recordings with it") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(failure + (f" ({detail[-1]})" if detail else ""))
    return done.stdout


# -- rendering ------------------------------------------------------------------------------

Format = Literal["text", "markdown"]


def render(report: Report, form: Format = "text",
           escape: Callable[[object], str] = str) -> str:
    """The report for a terminal (``text``) or a pull-request comment (``markdown``); every
    value read from a store goes through ``escape`` (and, in markdown, into code)."""
    e = escape
    md = form == "markdown"
    code = _code if md else (lambda text: text)
    counts = report.counts()
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    base = e(report.base) if report.base.startswith("the merge base") else code(e(report.base))
    head = (f"recordings in {code(e(report.store))}: {base} "
            f"({report.commit[:12]}) → {WORKING_TREE}")
    out = [f"### {head}" if md else head, ""]
    for function, found in report.functions.items():
        line = f"{code(e(function))}: " + ", ".join(
            f"{len(getattr(found, k))} {k}" for k in ("added", "removed", "changed")
            if getattr(found, k))
        out.append(f"#### {line}" if md else line)
        for changed in found.changed:
            out += _changed(changed, md, e)
        for kind in ("added", "removed"):
            for entry in getattr(found, kind):
                text = f"{kind} {e(entry.key[:12])}  {e(_arguments(entry.arguments))}"
                out.append(f"- {_code(text)}" if md else f"  {text}")
        out.append("")
    if report.damaged:
        out.append("#### damaged entries" if md else "damaged entries:")
        for d in report.damaged:
            text = f"{d.side}: {d.name}: {d.reason}"
            out.append(f"- {_code(e(text))}" if md else f"  {e(text)}")
        out.append("")
    out.append(f"{summary}" + (f", {len(report.damaged)} damaged" if report.damaged else "")
               if report.found else "no recording changed")
    return "\n".join(out)


def _changed(changed: Changed, md: bool, e: Callable[[object], str]) -> list[str]:
    old, new = changed.old, changed.new
    title = (f"changed {e(old.key[:12])} → {e(new.key[:12])}  "
             f"{e(_arguments(new.arguments))}")
    why = [f"- {d.message}" for d in changed.differences] or ["- re-recorded under the same key"]
    detail = [f"    {line}" for d in changed.differences for line in d.detail.splitlines()]
    what = changed.payload.lines()
    if changed.old_kept:
        title += "  (the old recording is still in the store)"
    if not md:
        return [f"  {title}", "    why the key changed:",
                *(f"      {e(line)}" for line in why + detail),
                "    what the answer changed:", *(f"      {e(line)}" for line in what)]
    body = "\n".join(["why the key changed:", *why, *detail, "", "what the answer changed:",
                      *what])
    fence = "`" * max(3, _longest_backticks(body) + 1)
    return [f"- {_code(title)}", "", f"  {fence}text", *(f"  {e(line)}" for line in
                                                          body.splitlines()), f"  {fence}", ""]


def _arguments(arguments: Mapping[str, Any]) -> str:
    from memo_replay.payload_diff import preview

    text = ", ".join(f"{name}={preview(value, 40)}" for name, value in arguments.items())
    return text if len(text) <= 80 else text[:79] + "…"


def _code(text: str) -> str:
    """``text`` as a markdown code span whatever backticks it holds (a span's delimiter is a
    run of backticks longer than any inside it)."""
    ticks = "`" * (_longest_backticks(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _longest_backticks(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def document(report: Report) -> dict[str, Any]:
    """The report as plain JSON data (``--json``)."""

    def entry(e: Entry) -> dict[str, Any]:
        return {"key": e.key, "name": e.name, "arguments": dict(e.arguments),
                "recorded_at": None if e.recorded_at is None else e.recorded_at.isoformat()}

    return {
        "base": report.base, "commit": report.commit, "store": report.store,
        "counts": {**report.counts(), "damaged": len(report.damaged)},
        "functions": {name: {
            "added": [entry(e) for e in found.added],
            "removed": [entry(e) for e in found.removed],
            "changed": [{"old": entry(c.old), "new": entry(c.new), "old_kept": c.old_kept,
                         "differences": [{"component": d.component, "name": d.name,
                                          "message": d.message, "detail": d.detail}
                                         for d in c.differences],
                         "payload": c.payload.document()} for c in found.changed],
        } for name, found in report.functions.items()},
        "damaged": [d._asdict() for d in report.damaged],
    }
