"""``memo-replay`` (also ``python -m memo_replay``): look after a store from the shell.

Exit codes: 0 success; 1 the command found something: problems (``verify``), files to prune
(``prune`` without ``--yes``), differences (``diff``), recordings added, removed or changed
(``changes``), no such entry or a damaged one (``show``), something to transfer (``push``/``pull
--dry-run``) or a recording not transferred; 2 bad usage, an unknown or damaged key given to
``diff``, a git problem (``changes``), an unusable store, or no usable remote (``push``,
``pull``, ``remote``: none configured, unreachable, refused credentials). The logic of those three
is :mod:`memo_replay.store.sync`'s.

A store is untrusted input: every field printed from it goes through
:func:`~memo_replay.text.printable` (``--json`` output through
:func:`~memo_replay.text.json_printable`), so an entry cannot write terminal escape sequences,
and a file name that is not UTF-8 prints as ``\\xNN``. Only ``--stale``/``--expired`` import
code (see :mod:`memo_replay.audit`).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memo_replay.errors import CorruptEntry, MemoReplayError
from memo_replay.store import Entry, Store
from memo_replay.store.entry import timestamp
from memo_replay.text import json_printable, printable, when

if TYPE_CHECKING:
    from memo_replay.audit import Finding

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    with _escaped_log_messages():
        try:
            return int(args.run(args))
        except MemoReplayError as exc:
            print(f"memo-replay: {_lines(exc)}", file=sys.stderr)
            return EXIT_USAGE
        except BrokenPipeError:  # `memo-replay ls | head`
            return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memo-replay",
        description="Inspect and maintain a memo_replay recording store.",
    )
    from memo_replay import __version__

    parser.add_argument("--version", action="version",
                        version=f"memo-replay {__version__} (Python {sys.version.split()[0]})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_: str, run: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(run=run)
        if name != "demo":
            p.add_argument("--store", help="store directory (default: MEMO_STORE, "
                           "[tool.memo_replay] store, or fixtures_store/ at the project root)")
            p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    ls = command("ls", "list recordings", _ls)
    ls.add_argument("--function", "-f", help="only this function (module.qualname)")
    ls.add_argument("--stale", action="store_true",
                    help="only entries whose code changed or whose function is gone")
    ls.add_argument("--expired", action="store_true", help="only entries past their ttl")
    show = command("show", "show one recording: metadata, arguments and payload", _show)
    show.add_argument("key", help="the entry's key (a unique prefix is enough)")
    stats = command("stats", "entries, bytes and ages per function", _stats)
    stats.add_argument("--stale", action="store_true",
                       help="also count stale and unchecked entries per function (imports "
                            "the project's recorded modules; see docs/security.md)")
    command("verify", "check every entry's integrity; exit 1 when something is wrong", _verify)
    prune = command("prune", "remove stale, expired or leftover files (lists them unless --yes)",
                    _prune)
    prune.add_argument("--stale", action="store_true",
                       help="entries whose code changed or whose function is gone")
    prune.add_argument("--expired", action="store_true", help="entries past their ttl")
    prune.add_argument("--orphans", action="store_true",
                       help="temporary files left by interrupted recordings")
    prune.add_argument("--older-than", default="1h", metavar="AGE",
                       help="with --orphans: only files older than this (default 1h; e.g. 90s, "
                            "30m, 2d; 0 for any age): younger ones may belong to a recording in "
                            "flight")
    mode = prune.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true",
                      help="only list what would be removed (the default); exit 1 if anything")
    mode.add_argument("--yes", "-y", action="store_true", help="really remove them")
    mv = command("mv", "re-key the recordings of a moved or renamed function (lists them unless "
                 "--yes)", _mv)
    mv.add_argument("old", metavar="OLD", help="the function's previous id (module.qualname)")
    mv.add_argument("new", metavar="NEW", help="its id now (module.qualname); its module is "
                    "imported (project source files only) to check its code fingerprint")
    mv.add_argument("--force", action="store_true",
                    help="also move recordings whose code differs from NEW's (they take NEW's "
                         "current code fingerprint: you vouch that their results still hold)")
    mv_mode = mv.add_mutually_exclusive_group()
    mv_mode.add_argument("--dry-run", action="store_true",
                         help="only list what would move (the default); exit 1 if anything")
    mv_mode.add_argument("--yes", "-y", action="store_true", help="really move them")
    command("scan", "look for secret-shaped strings in every entry; exit 1 when one is found",
            _scan)
    diff = command("diff", "what differs between two recordings (exit 1 when they differ)",
                   _diff)
    diff.add_argument("key1", help="the first entry's key (or a unique prefix)")
    diff.add_argument("key2", help="the second entry's key (or a unique prefix)")
    changes = command("changes", "recordings added, removed and changed since a git revision "
                      "(exit 1 when any)", _changes)
    changes.add_argument("base", nargs="?", metavar="BASE",
                         help="the git revision to compare with (default: the merge base of "
                              "HEAD with origin/HEAD, else main, else master)")
    changes.add_argument("--markdown", action="store_true",
                         help="Markdown, to post as a pull-request comment")
    push = command("push", "upload the local recordings the remote lacks (write-once)", _push)
    pull = command("pull", "write the remote's recordings the store lacks into it, each "
                   "verified first, for committing", _pull)
    for p in (push, pull):
        p.add_argument("--function", "-f", help="only this function (module.qualname)")
        p.add_argument("--dry-run", action="store_true",
                       help="only list what would be transferred; exit 1 if anything")
        _jobs_option(p)
    remote = sub.add_parser("remote", help="what the remote (s3://bucket/prefix) holds",
                            description="what the remote (s3://bucket/prefix) holds")
    remote.set_defaults(run=lambda _: _usage(remote))
    remote_sub = remote.add_subparsers(dest="remote_command", metavar="COMMAND")
    for name, help_ in (("ls", "list the remote's recordings (from the bucket listing)"),
                        ("stats", "entries and bytes per function in the remote")):
        p = remote_sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(run=_remote)
        p.add_argument("--store", help="store directory (its project's remote is used)")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "ls":
            p.add_argument("--function", "-f", help="only this function (module.qualname)")
        else:
            _jobs_option(p)
    demo = command("demo", "record, replay and invalidate a bundled LLM translator", _demo)
    demo.add_argument("--keep", action="store_true", help="keep the scratch project")
    demo.add_argument("--latency", type=float, default=0.4,
                      help="seconds each fake model call takes (default 0.4)")
    return parser


def _jobs_option(parser: argparse.ArgumentParser) -> None:
    def positive(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of jobs")
        return value

    parser.add_argument("--jobs", "-j", type=positive, default=8, metavar="N",
                        help="parallel transfers (default 8)")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def resolve_store(option: str | None) -> Store:
    """The store the CLI works on: --store, MEMO_STORE, the project's config, the default.
    A relative --store or MEMO_STORE is taken at the working directory, as a shell user means
    it. A directory that does not exist is warned about on stderr (a typo, or a command run
    outside the project, would otherwise report an empty store as if all were well)."""
    from memo_replay.project import store_path

    store = Store(os.path.abspath(store_path(option)))
    if not store.path.is_dir():
        print(f"memo-replay: warning: the store {printable(store.path)} does not exist (run "
              f"inside the project, or pass --store DIR or set MEMO_STORE)", file=sys.stderr)
    return store


def _ls(args: argparse.Namespace) -> int:
    store = resolve_store(args.store)
    wanted = _audited(store, args) if args.stale or args.expired else None
    if args.json:
        _print_json([_summary(e) for e in store.entries(args.function)
                     if wanted is None or e.key in wanted])
        return EXIT_OK
    # A listing is what each entry says about itself (fast at 100,000 entries); `verify`
    # checks them.
    with _collector_paused():
        listed = [listing for listing in store.listings(args.function)
                  if wanted is None or listing.summary.key in wanted]
        arguments = _fitted([_args_text(listing.arguments) for listing in listed])
        rows = [(summary.key, summary.function, summary.recorded_at or "-", _size(size),
                 summary.serializer, shown)
                for (summary, size, _), shown in zip(listed, arguments, strict=True)]
        _header(store, len(rows) if wanted is None and args.function is None else None)
        _table(("KEY", "FUNCTION", "RECORDED", "SIZE", "SERIALIZER", "ARGUMENTS"), rows)
    print(f"{len(rows)} recording{'s' if len(rows) != 1 else ''}")
    return EXIT_OK


def _audited(store: Store, args: argparse.Namespace) -> set[str]:
    """The keys of the entries ``ls --stale/--expired`` asks for (the unchecked ones are
    listed on stderr)."""
    report = store.audit()
    _warn_unchecked([f for f in report.unchecked
                     if args.function is None or f.function == args.function])
    return {f.key for f in (report.stale if args.stale else []) + (report.expired
                                                                   if args.expired else [])
            if f.key is not None}


def _show(args: argparse.Namespace) -> int:
    try:
        entry = resolve_store(args.store).get(args.key)
        if entry is None:
            print(f"memo-replay: no single recording with key {printable(repr(args.key))} "
                  f"(none, or the prefix is ambiguous)", file=sys.stderr)
            return EXIT_PROBLEMS
        _show_entry(entry, as_json=args.json)
    except CorruptEntry as exc:  # damaged: a problem found, like `verify` reports it
        print(f"memo-replay: {_lines(exc)}", file=sys.stderr)
        return EXIT_PROBLEMS
    except RecursionError:
        print(f"memo-replay: recording {printable(repr(args.key))} is nested too deeply to "
              f"show; `memo-replay verify` checks it, re-record or delete it", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def _show_entry(entry: Entry, *, as_json: bool) -> None:
    from memo_replay.serializers.stream import STREAM

    payload = entry.payload.embedded()
    stream = _stream_section(entry) if entry.serializer == STREAM else None
    if as_json:
        _print_json({**_summary(entry), "components": entry.components.document(),
                     "observed": None if entry.observed is None else entry.observed.document(),
                     "payload": payload,
                     "payload_file": entry.payload_file,
                     **({} if stream is None else {"stream": stream[1]})})
        return
    p, code = printable, entry.components.code
    lines = [f"key          {p(entry.key)}", f"function     {p(entry.function)}",
             f"file         {p(entry.path)}",
             f"recorded     {when(entry.recorded_at)}  (the call took {entry.duration_s:.3f} s)",
             f"serializer   {p(entry.serializer)} v{entry.payload.serializer_version}"
             f"{'  type ' + p(entry.payload.type) if entry.payload.type else ''}  "
             f"{_size(entry.size)}",
             f"code         {p(code.hash)} ({p(code.kind)}), "
             f"{len(code.helpers)} helpers, {len(code.constants)} constants",
             "arguments"]
    lines += [f"  {p(name)} = {p(json.dumps(value, ensure_ascii=False))}"
              for name, value in entry.arguments.items()]
    lines += [f"file         {p(path)}  {p(digest)}" for path, digest in entry.files.items()]
    if entry.observed is not None:
        from memo_replay.keys.observed import iter_lines

        lines += [p(line) for line in iter_lines(entry.observed)]
    if stream is not None:  # the items, bounded: never the whole payload
        lines += stream[0]
        print("\n".join(lines))
        return
    lines.append("payload")
    if isinstance(entry.payload.data, bytes):  # binary: a summary, not a screenful of base64
        where = f"in {p(entry.payload_file)}" if entry.payload_file else "base64 in the entry"
        text = f"{_size(entry.size)} of binary data ({where}), starting " \
               f"{entry.payload.data[:16].hex(' ')}"
    else:
        text = payload if isinstance(payload, str) else json.dumps(payload, indent=2,
                                                                  ensure_ascii=False)
    lines += ["  " + p(line) for line in text.splitlines()]
    print("\n".join(lines))  # built first: a payload too deep to print prints nothing


SHOWN_ITEMS = 20
"""How many items of a stream ``show`` prints (then "… and K more items")."""
_SHOWN_KINDS = 8


def _stream_section(entry: Entry) -> tuple[list[str], dict[str, Any]]:
    """What ``show`` prints of a stream (lines, escaped) and adds to ``show --json``: the item
    count, how it ended, the kinds, the first :data:`SHOWN_ITEMS` items one bounded line each,
    the return value and the exception. Read as stored, without any serializer (nothing is
    imported); a damaged payload is a :class:`CorruptEntry` naming the entry."""
    from memo_replay.errors import InvalidPayload
    from memo_replay.payload_diff import kind_text, value_preview
    from memo_replay.serializers.stream import stored_stream

    p, data = printable, entry.payload.data
    try:
        stream = stored_stream(data)  # the structure, lengths included, checked first
        end = stream.end
        shown = list(stream.stored(0, min(SHOWN_ITEMS, end.items)))
        returned, raised = stream.returned, stream.raised
        item_kinds = len(set(stream.value_kinds[:end.items])) > 1
        items = [f"  [{index}] " + (f"({p(kind_text(kind))}) " if item_kinds else "")
                 + p(value_preview(kind, value, 100)) for index, (kind, value) in
                 enumerate(shown)]
        tail = [f"{name:<12} {p(value_preview(*value, 100))}"
                for name, value in (("returned", returned), ("raised", raised))
                if value is not None]
    except InvalidPayload as exc:
        raise CorruptEntry(entry.location, f"its stream payload is damaged ({exc})") from None
    ending = "then raised an exception (recorded)" if end.raised else \
        "then returned a value" if end.returned else "exhausted"
    form = "binary" if stream.binary else "JSON"
    where = f"{_size(entry.size)} in {p(entry.payload_file)}" if entry.payload_file else \
        f"{_size(entry.size)} {'base64 ' if stream.binary else ''}in the entry"
    kinds = "; ".join(p(kind_text(kind)) for kind in stream.kinds[:_SHOWN_KINDS])
    if len(stream.kinds) > _SHOWN_KINDS:
        kinds += f"; … and {len(stream.kinds) - _SHOWN_KINDS:,} more"
    lines = [f"stream       {end.items:,} item{'s' if end.items != 1 else ''}, {ending}  "
             f"({form} form, {where})", f"kinds        {kinds}"]
    if items:
        lines.append("items" if end.items == len(items) else f"items (the first {len(items)})")
        lines += items
    if end.items > len(items):
        lines.append(f"  … and {end.items - len(items):,} more items")
    lines += tail
    document = {"items": end.items, "returned": end.returned, "raised": end.raised,
                "form": form.lower(),
                "kinds": [kind.document() for kind in stream.kinds]}
    return lines, document


def _stats(args: argparse.Namespace) -> int:
    store = resolve_store(args.store)
    with _collector_paused():
        stats = store.stats()
    stale: dict[str, int] = {}
    unchecked: dict[str, int] = {}
    not_checked: list[Finding] = []
    if args.stale:  # only then: counting stale entries imports the project's modules
        report = store.audit()
        not_checked = report.unchecked
        for finding in report.stale:
            stale[finding.function or "?"] = stale.get(finding.function or "?", 0) + 1
        for finding in report.unchecked:
            unchecked[finding.function or "?"] = unchecked.get(finding.function or "?", 0) + 1
        _warn_unchecked(report.unchecked)
    if args.json:
        _print_json({
            "store": str(store.path), "entries": stats.entries, "bytes": stats.bytes,
            "problems": stats.problems,
            "functions": {name: {"entries": f.entries, "bytes": f.bytes,
                                 "oldest": f.oldest and timestamp(f.oldest),
                                 "newest": f.newest and timestamp(f.newest),
                                 "serializers": dict(f.serializers),
                                 "stale": stale.get(name, 0) if args.stale else None,
                                 "unchecked": unchecked.get(name, 0) if args.stale else None}
                          for name, f in stats.functions.items()},
        })
        return EXIT_OK
    _header(store, stats.entries)
    rows = [(name, str(f.entries),
             *((str(stale.get(name, 0)), str(unchecked.get(name, 0))) if args.stale else ()),
             _size(f.bytes), when(f.oldest), when(f.newest),
             ", ".join(f"{k}×{v}" for k, v in f.serializers.items()))
            for name, f in stats.functions.items()]
    _table(("FUNCTION", "ENTRIES", *(("STALE", "UNCHECKED") if args.stale else ()), "SIZE",
            "OLDEST", "NEWEST", "SERIALIZERS"), rows)
    plural = "s" if stats.entries != 1 else ""
    print(f"{stats.entries} recording{plural}, {_size(stats.bytes)} in {printable(store.path)}"
          + (f"; {stats.problems} damaged (run `memo-replay verify`)" if stats.problems else "")
          + _unchecked_count(not_checked))
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from memo_replay.store.upkeep import NOTES

    store = resolve_store(args.store)
    problems = store.verify()
    failures = [p for p in problems if p.kind not in NOTES]
    notes = len(problems) - len(failures)
    if args.json:
        _print_json([{"path": str(p.path), "kind": p.kind, "message": p.message, "fix": p.fix,
                      "note": p.kind in NOTES} for p in problems])
    else:
        _header(store)
        for p in problems:
            print(f"{printable(p.kind):>10}  {printable(p.path)}\n"
                  f"            {printable(p.message)}; fix: {printable(p.fix)}")
        summary = f"{len(failures)} problem{'s' if len(failures) != 1 else ''}" if failures \
            else "every entry is intact"
        if notes:
            summary += (f" ({notes} note{'s' if notes != 1 else ''}: payload files kept on the "
                        f"remote, not checked locally)")
        print(f"{printable(store.path)}: {summary}")
    return EXIT_PROBLEMS if failures else EXIT_OK


def _prune(args: argparse.Namespace) -> int:
    if not (args.stale or args.expired or args.orphans):
        print("memo-replay prune: say what to prune: --stale, --expired and/or --orphans",
              file=sys.stderr)
        return EXIT_USAGE
    from memo_replay.config import parse_duration

    older_than = 0.0 if args.older_than.strip() in ("0", "0s") else \
        parse_duration(args.older_than, source="--older-than")
    store = resolve_store(args.store)
    # What could not be checked is never pruned, and said so: "nothing to prune" alone would
    # read as "everything was checked". (Auditing is repeated inside prune: its modules are
    # imported by then, so the second pass only re-reads the entries.)
    unchecked = store.audit().unchecked if args.stale or args.expired else []
    _warn_unchecked(unchecked)
    findings = store.prune(stale=args.stale, expired=args.expired, orphans=args.orphans,
                           dry_run=not args.yes, older_than=older_than)
    if args.json:
        _print_json({"store": str(store.path), "removed": bool(args.yes), "files": [
            {"path": str(f.path), "reason": f.reason, "detail": f.detail,
             "function": f.function, "key": f.key} for f in findings],
            "unchecked": [{"path": str(f.path), "detail": f.detail, "function": f.function,
                           "key": f.key} for f in unchecked]})
    else:
        _header(store)
        verb = "removed" if args.yes else "would remove"
        for f in findings:
            print(f"{verb:>12}  {f.reason:<8} {printable(f.path)}\n"
                  f"              {printable(f.detail)}")
        total = f"{len(findings)} file{'s' if len(findings) != 1 else ''}"
        print((f"{total} removed" if args.yes else
               f"{total} to remove; run again with --yes to remove them" if findings else
               "nothing to prune") + _unchecked_count(unchecked))
    return EXIT_PROBLEMS if findings and not args.yes else EXIT_OK


def _mv(args: argparse.Namespace) -> int:
    from memo_replay import moves

    store = resolve_store(args.store)
    if not args.json:
        _header(store)
    planned = moves.plan(store, args.old, args.new, force=args.force)
    done = moves.apply(store, planned) if args.yes else []
    refused = [m for m in planned if m.status not in moves.MOVING]
    if args.json:
        _print_json({"from": args.old, "to": args.new, "moved": bool(args.yes),
                     "entries": [moves.as_json(m) for m in planned]})
    else:
        verbs = {"move": "moved" if args.yes else "would move",
                 "present": "removed" if args.yes else "would remove"}
        for m in planned:
            verb = verbs.get(m.status, "not moved")
            target = f" → {printable(m.new_key)}" if m.new_key and m.status in verbs else ""
            print(f"{verb:>12}  {printable(m.key)}{target}  ({m.status})")
            if m.detail:
                print(f"              {printable(m.detail)}")
        count = len(done) if args.yes else len(planned) - len(refused)
        plural = "s" if count != 1 else ""
        what = f"`{printable(args.old)}` → `{printable(args.new)}`"
        print(f"{count} recording{plural} moved ({what})" if args.yes else
              f"{count} recording{plural} to move ({what}); run again with --yes to move them"
              if count else f"nothing to move ({what})")
        if refused:
            print(f"{len(refused)} not moved (see above)")
    return EXIT_PROBLEMS if refused or not args.yes else EXIT_OK


def _scan(args: argparse.Namespace) -> int:
    from memo_replay.project import find_root, project_config
    from memo_replay.secrets import scanner

    store = resolve_store(args.store)
    config = project_config(find_root(store.path.resolve()))
    check = scanner(config.secret_patterns, config.allow_secrets)
    found = []
    for name in store.entry_names():
        path = Path(store.backend.where(name))
        try:
            entry = store.read(name)
            if entry is not None:
                found += [(path, leak) for leak in check.scan(entry.arguments, entry.payload,
                                                              entry.source)]
            continue
        except CorruptEntry as exc:
            reason = exc.reason
        except RecursionError:  # read, but too deep for the scanner to walk
            reason = "nested too deeply to scan field by field"
        # Damaged is `memo-replay verify`'s business, but a secret in it is still a leak.
        print(f"memo-replay scan: {printable(path)}: {printable(reason)}; scanned as raw text "
              f"(run `memo-replay verify`)", file=sys.stderr)
        try:
            raw = store.backend.read(name)
        except OSError:
            continue
        if raw is not None:
            text = raw.decode("utf-8", errors="replace")
            found += [(path, leak) for leak in check.scan_text(text, "the damaged entry")]
    if args.json:
        _print_json([{"path": str(path), "field": leak.field, "kind": leak.kind,
                      "excerpt": leak.excerpt} for path, leak in found])
    else:
        _header(store)
        for path, leak in found:
            print(f"{printable(path)}\n    {printable(leak.field)} contains "
                  f"{printable(leak.kind)} ({printable(leak.excerpt)})")
        print(f"{printable(store.path)}: " + (
            f"{len(found)} secret-shaped string(s); rotate any real key (see "
            f"docs/security.md), then delete or re-record the entries" if found
            else "no secret-shaped strings"))
    return EXIT_PROBLEMS if found else EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    from memo_replay.explain import compare_entries
    from memo_replay.payload_diff import diff_payloads

    store = resolve_store(args.store)
    first, second = store.get(args.key1), store.get(args.key2)
    if first is None or second is None:
        missing = args.key1 if first is None else args.key2
        print(f"memo-replay diff: no single recording with key {printable(repr(missing))}",
              file=sys.stderr)
        return EXIT_USAGE
    differences = compare_entries(first, second)
    payload = diff_payloads(first.payload, second.payload)
    if args.json:
        _print_json({"first": first.key, "second": second.key, "differences": [
            {"component": d.component, "name": d.name, "message": d.message, "detail": d.detail}
            for d in differences], "payload": payload.document()})
    else:
        print(f"{printable(first.key)} → {printable(second.key)}")
        for d in differences:
            print(f"  - {printable(d.message)}")
            for line in d.detail.splitlines():
                print(f"      {printable(line)}")
        if not differences:
            print("  the two recordings have the same key components")
        if not payload.same:
            print("  (and their results differ):")
            for line in payload.lines():
                print(f"      {printable(line)}")
    return EXIT_PROBLEMS if differences or not payload.same else EXIT_OK


def _changes(args: argparse.Namespace) -> int:
    from memo_replay.changes import changes, document, render

    report = changes(resolve_store(args.store), args.base)
    if args.json:
        _print_json(document(report))
    else:
        print(render(report, "markdown" if args.markdown else "text", printable))
    return EXIT_PROBLEMS if report.found else EXIT_OK


def _push(args: argparse.Namespace) -> int:
    return _transfer(args, "push")


def _pull(args: argparse.Namespace) -> int:
    return _transfer(args, "pull")


def _transfer(args: argparse.Namespace, direction: str) -> int:
    from memo_replay.store import sync

    if direction == "pull":  # a fresh clone's store does not exist yet: pull creates it
        from memo_replay.project import store_path

        store = Store(os.path.abspath(store_path(args.store)))
    else:
        store = resolve_store(args.store)
    remote = sync.remote_of(store)
    if not args.json:
        _header(store)  # before: what the store held when the transfer started
        print(f"remote: {printable(remote.url)}")
    run = sync.push if direction == "push" else sync.pull
    with _progress(direction) as progress:
        transfers = run(store, remote, function=args.function, dry_run=args.dry_run,
                        jobs=args.jobs, progress=progress)
    problems = list(sync.problems(transfers))
    done = [t for t in transfers if t.status in ("upload", "uploaded", "download",
                                                 "downloaded")]
    if args.json:
        _print_json({"store": str(store.path), "remote": remote.url, "mode": remote.mode,
                     "dry_run": bool(args.dry_run), "entries": [t.document() for t in transfers],
                     "transferred": 0 if args.dry_run else len(done),
                     "problems": len(problems)})
    else:
        verbs = {"upload": "would upload", "uploaded": "uploaded", "download": "would pull",
                 "downloaded": "pulled"}
        for t in transfers:
            print(f"{verbs.get(t.status, t.status):>12}  {printable(t.name)}  {_size(t.bytes)}")
            if t.detail:
                print(f"              {printable(t.detail)}")
        count = f"{len(done)} recording{'s' if len(done) != 1 else ''}"
        size = _size(sum(t.bytes for t in done))
        verb = "uploaded" if direction == "push" else "pulled"
        print(f"{count} ({size}) to {direction}; run again without --dry-run to {direction} "
              f"them" if args.dry_run and done else
              f"nothing to {direction}" if not done else f"{count} {verb} ({size})",
              end="")
        print(f"; {len(problems)} not {verb} (see above)" if problems else "")
    if problems:
        return EXIT_PROBLEMS
    return EXIT_PROBLEMS if args.dry_run and done else EXIT_OK


def _remote(args: argparse.Namespace) -> int:
    from memo_replay.store import sync

    store = resolve_store(args.store)
    remote = sync.remote_of(store)
    if args.remote_command == "ls":
        listed = sync.listing(remote, args.function)
        if args.json:
            _print_json([{"name": item.name, "function": item.function, "key": item.key,
                          "payload_files": item.payload_files} for item in listed])
            return EXIT_OK
        print(f"remote: {printable(remote.url)}")
        _table(("KEY", "FUNCTION", "PAYLOAD FILE"),
               [(item.key, item.function, "yes" if item.payload_files else "-")
                for item in listed])
        print(f"{len(listed)} recording{'s' if len(listed) != 1 else ''}")
        return EXIT_OK
    with _progress("stats") as progress:
        found = sync.stats(remote, jobs=args.jobs, progress=progress)
    if args.json:
        _print_json({"remote": remote.url, "entries": found.entries, "bytes": found.bytes,
                     "other": found.other,
                     "functions": {name: {"entries": f.entries, "payload_files": f.payload_files,
                                          "bytes": f.bytes}
                                   for name, f in found.functions.items()}})
        return EXIT_OK
    print(f"remote: {printable(remote.url)}")
    _table(("FUNCTION", "ENTRIES", "PAYLOAD FILES", "SIZE"),
           [(name, str(f.entries), str(f.payload_files), _size(f.bytes))
            for name, f in found.functions.items()])
    print(f"{found.entries} recording{'s' if found.entries != 1 else ''}, {_size(found.bytes)}"
          + (f"; {found.other} other object{'s' if found.other != 1 else ''} under the prefix"
             if found.other else ""))
    return EXIT_OK


@contextlib.contextmanager
def _progress(what: str, *, at_least: int = 50) -> Iterator[Any]:
    """A one-line progress indicator on stderr, only when stderr is a terminal and there are
    at least ``at_least`` items (nothing in CI logs, pipes or tests)."""
    if not sys.stderr.isatty():
        yield None
        return
    shown = [False]

    def progress(done: int, total: int) -> None:
        if total >= at_least and (done == total or done % 10 == 0):
            shown[0] = True
            sys.stderr.write(f"\r{what}: {done:,}/{total:,}")
            sys.stderr.flush()

    try:
        yield progress
    finally:
        if shown[0]:
            sys.stderr.write("\n")


def _demo(args: argparse.Namespace) -> int:
    from memo_replay.demo import run_demo

    return run_demo(keep=args.keep, latency=args.latency)


# -- formatting ---------------------------------------------------------------------------------


def _header(store: Store, entries: int | None = None) -> None:
    """The first line of a human-readable report: which store it is about (absolute) and how
    many entry files it holds (``entries``, when the command already counted them), so an
    empty report run in the wrong place names the place."""
    if entries is None:
        entries = sum(1 for _ in store.entry_names()) if store.path.is_dir() else 0
    print(f"store: {printable(store.path)} ({entries:,} entr{'y' if entries == 1 else 'ies'})")


def _warn_unchecked(findings: Sequence[Finding]) -> None:
    """Say on stderr which entries auditing could not check (they are never pruned), and why:
    one line per function and reason (:func:`_unchecked_count` says how many on stdout)."""
    if not findings:
        return
    why: dict[tuple[str, str], int] = {}
    for f in findings:
        why[f.function or "?", f.detail] = why.get((f.function or "?", f.detail), 0) + 1
    print(f"memo-replay: {len(findings)} recording{'s' if len(findings) != 1 else ''} not "
          f"checked (never pruned):", file=sys.stderr)
    for (function, detail), count in why.items():
        print(f"  {printable(function)} ({count}): {printable(detail)}", file=sys.stderr)


def _unchecked_count(findings: Sequence[Finding]) -> str:
    """The end of a ``stats --stale``/``prune`` summary line: how many entries could not be
    checked, so that "STALE 0" or "nothing to prune" never reads as "everything was
    checked" (the reasons are on stderr, from :func:`_warn_unchecked`)."""
    if not findings:
        return ""
    return f"; {len(findings)} recording{'s' if len(findings) != 1 else ''} not checked, " \
           f"never pruned (why: on stderr)"


def _lines(exc: BaseException) -> str:
    """An error message for the terminal: every line escaped, the line breaks kept."""
    return "\n".join(printable(line) for line in str(exc).split("\n"))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The garbage collector off while a report reads 100,000 entries: they are acyclic, and
    collecting as they pile up costs ~0.1 s (``ls``). Back on afterwards: ``main`` may run
    inside a longer process (tests do)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _escaped_log_messages() -> Iterator[None]:
    """While a command runs, warnings the store logs (a damaged entry names its file and says
    what is wrong) go to stderr escaped, like everything else printed from a store."""
    import logging

    class Escaping(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return "\n".join(printable(line) for line in super().format(record).split("\n"))

    handler = logging.StreamHandler()
    handler.setFormatter(Escaping("%(message)s"))
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("memo_replay")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _summary(entry: Entry) -> dict[str, Any]:
    return {"key": entry.key, "function": entry.function, "path": str(entry.path),
            "recorded_at": when(entry.recorded_at), "duration_s": entry.duration_s,
            "size": entry.size,
            "serializer": entry.serializer, "arguments": dict(entry.arguments),
            "files": dict(entry.files)}


def _print_json(value: Any) -> None:
    """``value`` as JSON; what a terminal would act on (controls, bidi overrides) and what
    strict UTF-8 cannot encode (lone surrogates from file names) as ``\\uXXXX`` escapes."""
    print(json_printable(json.dumps(value, indent=2, ensure_ascii=False, default=str)))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell, every cell escaped (:func:`printable`) first, so
    that escaped cells stay aligned; written at once (100,000 rows are one write, not 100,000
    prints), column by column: 100,000 rows cost ~0.1 s, not the 0.3 s of a format per line."""
    columns = [_escaped(column) for column in zip(header, *rows, strict=True)]
    padded = [[cell.ljust(width) for cell in column]
              for column, width in zip(columns[:-1], map(_width, columns[:-1]), strict=True)]
    lines = map(str.rstrip, map("  ".join, zip(*padded, columns[-1], strict=True)))
    sys.stdout.write("\n".join(lines) + "\n")


def _width(column: Sequence[str]) -> int:
    return max(map(len, column))


def _escaped(cells: Sequence[str]) -> Sequence[str]:
    """``cells`` each through :func:`printable`. A column that is all printable text (the
    usual case) is left as it is, checked by one ``str.isprintable`` (a few ms for 100,000
    cells; :func:`printable`'s search takes 20 times longer): what that refuses is a superset
    of what :func:`printable` escapes."""
    return cells if "".join(cells).isprintable() else [printable(cell) for cell in cells]


_ARGUMENT_VALUE = json.JSONEncoder(ensure_ascii=False)
"""Built once: ``json.dumps`` with options builds an encoder per call."""
_JSON_STRING = json.encoder.encode_basestring
"""What ``_ARGUMENT_VALUE`` does with a string, without the call through the encoder."""


def _args_text(arguments: Mapping[str, Any]) -> str:
    """An argument preview as ``name=JSON value, ...`` (unescaped, uncut: see :func:`_fitted`);
    integers and strings, most of what previews hold, skip the encoder's generic path."""
    try:
        return ", ".join([f"{name}={_json_value(value)}" for name, value in arguments.items()])
    except RecursionError:
        return "(nested too deeply to show)"


def _json_value(value: Any) -> str:
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        return _JSON_STRING(value)
    return _ARGUMENT_VALUE.encode(value)


def _fitted(texts: list[str], limit: int = 60) -> list[str]:
    """Argument previews escaped (:func:`printable`), then cut to ``limit`` characters."""
    return [text if len(text) <= limit else text[:limit - 1] + "…" for text in _escaped(texts)]


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
