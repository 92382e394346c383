"""The edit corpus against memo_replay and joblib.Memory: how many edits each handles correctly.

Runs every case of ``tests/keys/edit_corpus_cases.py`` (the table ``tests/keys/test_edit_corpus.py``
asserts for memo_replay) with both tools: write a small project, call the function once in a
fresh interpreter, apply a one-line edit, call it again in another fresh interpreter. An edit is
handled when the second call recomputes exactly when it should: INVALIDATE for a semantic edit
(for memo_replay, strict replay raises ``ReplayMiss`` and the explanation names what changed),
KEEP for a cosmetic one. joblib runs through a shim (``joblib.Memory(location).cache(fn)``, with
memo_replay's ``files=`` option ignored); a call "recomputes" when the function's body ran.

    python benchmarks/edit_corpus.py              # a table per category on stdout
    python benchmarks/edit_corpus.py --markdown   # the same, for docs/keys.md
    python benchmarks/edit_corpus.py --cases      # also every case's outcome
    python benchmarks/edit_corpus.py --only helpers --only constants

Run it from the repository root. Every project lives in a temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "keys"))

from edit_corpus_cases import (
    CASES,
    CATEGORIES,
    KEEP,
    Case,
    Outcome,
    Tool,
    handled,
    run_case,
)

TOOLS: tuple[Tool, ...] = ("memo_replay", "joblib")


def _run(case: Case, tool: Tool, base: Path) -> tuple[Case, Tool, Outcome | Exception]:
    # One directory per case above its root: a case may use a file outside the root.
    root = base / tool / f"{case.category}-{case.name}".replace(" ", "-") / "proj"
    try:
        return case, tool, run_case(case, root, tool)
    except AssertionError as exc:  # the project failed to run: reported, scored as not handled
        return case, tool, exc


def run(cases: Sequence[Case], jobs: int) -> dict[tuple[str, Tool], Outcome | Exception]:
    with tempfile.TemporaryDirectory(prefix="edit-corpus-") as tmp, \
            ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_run, case, tool, Path(tmp)) for case in cases for tool in TOOLS]
        return {(case.name, tool): outcome
                for case, tool, outcome in (f.result() for f in futures)}


def _ok(case: Case, tool: Tool, outcome: Outcome | Exception) -> bool:
    return isinstance(outcome, Outcome) and handled(case, outcome, tool)


def table(cases: Sequence[Case], results: dict[tuple[str, Tool], Outcome | Exception],
          *, markdown: bool) -> str:
    rows = []
    for category in CATEGORIES:
        members = [c for c in cases if c.category == category]
        if not members:
            continue
        keeps = sum(c.expected == KEEP for c in members)
        scores = [sum(_ok(c, tool, results[c.name, tool]) for c in members) for tool in TOOLS]
        rows.append((category, f"{len(members)} ({keeps} keep)",
                     *(f"{s}/{len(members)}" for s in scores)))
    totals = [sum(_ok(c, tool, results[c.name, tool]) for c in cases) for tool in TOOLS]
    keeps = sum(c.expected == KEEP for c in cases)
    rows.append(("**total**" if markdown else "total", f"{len(cases)} ({keeps} keep)",
                 *(f"{s}/{len(cases)}" for s in totals)))
    header = ("category", "edits", "memo_replay", "joblib.Memory")
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True))
                     for row in (header, *rows))


def mistakes(cases: Sequence[Case], results: dict[tuple[str, Tool], Outcome | Exception],
             *, markdown: bool) -> str:
    """The wrong answers by kind: a stale replay is the worst, a needless re-record costs money,
    a miss that does not name the change costs time."""
    kinds = (("stale replay (kept; should invalidate)", "stale"),
             ("needless re-record (invalidated; should keep)", "needless"),
             ("miss not naming what changed", "unnamed"),
             ("did not run", "error"))
    counts = {tool: dict.fromkeys((key for _, key in kinds), 0) for tool in TOOLS}
    for case in cases:
        for tool in TOOLS:
            outcome = results[case.name, tool]
            if not isinstance(outcome, Outcome):
                counts[tool]["error"] += 1
            elif outcome.result != case.expected:
                counts[tool]["stale" if case.expected != KEEP else "needless"] += 1
            elif not handled(case, outcome, tool):
                counts[tool]["unnamed"] += 1
    rows = [(label, *(str(counts[tool][key]) for tool in TOOLS)) for label, key in kinds]
    header = ("wrong answers", "memo_replay", "joblib.Memory")
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     for row in (header, *rows))


def details(cases: Sequence[Case], results: dict[tuple[str, Tool], Outcome | Exception]) -> str:
    lines = []
    for case in cases:
        marks = []
        for tool in TOOLS:
            outcome = results[case.name, tool]
            got = outcome.result if isinstance(outcome, Outcome) else "error"
            marks.append(f"{tool}={'ok' if _ok(case, tool, outcome) else 'WRONG'}({got})")
        note = (f"  [blind spot: {case.blind_spot}]" if case.blind_spot
                else f"  [{case.needs}{', fails today' if case.failing else ''}]" if case.needs
                else "")
        lines.append(f"{case.category}/{case.name}: expect {case.expected}; "
                     f"{' '.join(marks)}{note}")
    return "\n".join(lines)


def blind_spots(cases: Sequence[Case]) -> str:
    spots = sorted({c.blind_spot for c in cases if c.blind_spot})
    return "\n".join(f"- known blind spot: {spot}" for spot in spots)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    parser.add_argument("--cases", action="store_true", help="also every case's outcome")
    parser.add_argument("--only", action="append", metavar="CATEGORY",
                        help="run these categories only (repeatable)")
    parser.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2),
                        help="projects run at once (default: the CPU count, at least 2)")
    options = parser.parse_args(argv)
    cases = [c for c in CASES if not options.only or c.category in options.only]
    if not cases:
        parser.error(f"no such category; choose from: {', '.join(CATEGORIES)}")
    started = time.perf_counter()
    results = run(cases, options.jobs)
    print(table(cases, results, markdown=options.markdown))
    print()
    print(mistakes(cases, results, markdown=options.markdown))
    if blind_spots(cases):
        print()
        print(blind_spots(cases))
    if options.cases:
        print()
        print(details(cases, results))
    errors = [(name, tool, o) for (name, tool), o in results.items() if isinstance(o, Exception)]
    for name, tool, error in errors:
        print(f"\n{name} ({tool}) did not run:\n{error}", file=sys.stderr)
    print(f"\n{len(cases)} edits × {len(TOOLS)} tools in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
