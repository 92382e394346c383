"""The performance targets judged on one run's numbers, docs/benchmarks.md and its charts.

The charts are SVG, one per panel, each drawn 7.2 in (691 CSS px) wide with text of at least
10 pt (13 px), so that they read at the width of a documentation page without zooming:
docs/img/benchmarks-hits.svg (hit latency ÷ the raw floor) and docs/img/benchmarks-import.svg
(import + decorate over a bare interpreter). Every figure a chart shows is also stated in the
text under it.

The cold-path cases (``cold``, ``cold-xdist``, ``first-call``: benchmarks/cold.py) have a section
of their own in docs/benchmarks.md, between ``<!-- cold-path:start -->`` and
``<!-- cold-path:end -->``, with their chart (docs/img/benchmarks-cold.svg). A run of only those
cases rewrites only that section; a run of other cases rewrites the page around it and keeps
the section as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.contenders import ALL, LRU, MEMO, RAW
from benchmarks.harness import Table, fmt_ms, fmt_ratio, fmt_us

HIT_LIMIT = 1.5
FLAT_LIMIT = 1.2
IMPORT_LIMIT_S = 0.030
STATS_LIMIT_S = 0.200
COLD_FLOOR_LIMIT = 2.0
COLD_SECOND_LIMIT = 1.5
XDIST_LIMIT = 0.6
FIRST_CALL_LIMIT_S = 0.002
FIXED_LIMIT_S = 0.030
"""Issue 15: import memo_replay + decorating + the first replayed call, over a bare interpreter."""
COLD_KEYS = ("cold", "cold-xdist", "first-call", "fixed-cost")
COLD_START = "<!-- cold-path:start -->"
COLD_END = "<!-- cold-path:end -->"
KEPT_SECTIONS = (("<!-- streams:start -->", "<!-- streams:end -->"),)
"""Sections other scripts write into the page (``benchmarks/stream.py``): a run of
``run.py`` keeps them as they are."""
COLD_CHART = "img/benchmarks-cold.svg"
HITS_CHART = "img/benchmarks-hits.svg"
IMPORT_CHART = "img/benchmarks-import.svg"
DECORATED = "memo_replay + @recorded"
"""The import case's row that imports memo_replay and decorates a function: what a user's
program pays before its first call (``import memo_replay`` alone defers most modules)."""
IMPORT_TARGET = "import memo_replay and decorate a function, over a bare interpreter"
CHART_WIDTH_IN = 7.2
"""691 CSS px: the width of a documentation page's text column, so the SVG is not shrunk."""
HOT_CACHE_MIB = 64  # memo_replay.store.store.HOT_CACHE_BYTES
FIXED_MIB = 32  # the index's sqlite mmap (16 MiB) and page cache (8 MiB), remembered keys

COLORS = {LRU: "#b0b0b0", "diskcache.memoize": "#8fb3d9", "joblib.Memory": "#e3a36f",
          "cachier": "#a9c98f", MEMO: "#7b2cbf", RAW: "#404040"}


@dataclass(frozen=True)
class Target:
    name: str
    limit: str
    measured: str
    verdict: str
    """``PASS``, ``FAIL``, ``not measured`` or ``—`` (no numeric target)."""


def _by_key(tables: Sequence[Table]) -> dict[str, Table]:
    return {t.key: t for t in tables}


def hit_tables(tables: Sequence[Table]) -> list[Table]:
    return [t for t in tables if t.key.startswith("hit-")]


def targets(tables: Sequence[Table]) -> list[Target]:
    """Each performance target of the warm cases, judged on this run's medians."""
    found = _by_key(tables)
    out: list[Target] = []

    ratios = {t.key: t.values["ratio_raw"].get(MEMO) for t in hit_tables(tables)}
    ratios = {k: v for k, v in ratios.items() if v is not None}
    if ratios:
        worst = max(ratios, key=lambda k: ratios[k])
        detail = ", ".join(f"{k.removeprefix('hit-')} {fmt_ratio(v)}" for k, v in ratios.items())
        partial = "" if len(ratios) == 5 else f" ({len(ratios)} of 5 hit cases run)"
        out.append(Target("every memo_replay hit within 1.5× of the raw floor",
                          f"≤ {HIT_LIMIT}×", f"worst {fmt_ratio(ratios[worst])} "
                          f"({worst.removeprefix('hit-')}); {detail}{partial}",
                          "PASS" if ratios[worst] <= HIT_LIMIT else "FAIL"))
    else:
        out.append(Target("every memo_replay hit within 1.5× of the raw floor",
                          f"≤ {HIT_LIMIT}×", "—", "not measured"))

    scale = found.get("scale")
    medians = scale.values["median_s"] if scale else {}
    if "100 entries" in medians and "100,000 entries" in medians:
        ratio = medians["100,000 entries"] / medians["100 entries"]
        out.append(Target("hit latency flat from 100 to 100,000 entries", f"≤ {FLAT_LIMIT}×",
                          f"{fmt_ratio(ratio)} ({medians['100,000 entries'] * 1e6:.1f} µs vs "
                          f"{medians['100 entries'] * 1e6:.1f} µs)",
                          "PASS" if ratio <= FLAT_LIMIT else "FAIL"))
    else:
        out.append(Target("hit latency flat from 100 to 100,000 entries", f"≤ {FLAT_LIMIT}×",
                          "—", "not measured"))

    imports = found.get("import")
    if imports:
        over = imports.values["over_bare_s"]
        felt = over.get(DECORATED, over.get(MEMO))
        alone = over.get(MEMO)
        detail = f"{fmt_ms(felt)} ms"
        if DECORATED in over and alone is not None:
            detail += f" (the bare `import memo_replay` alone: {_over_bare(alone)})"
        out.append(Target(IMPORT_TARGET, "< 30 ms", detail,
                          "PASS" if felt is not None and felt < IMPORT_LIMIT_S else "FAIL"))
    else:
        out.append(Target(IMPORT_TARGET, "< 30 ms", "—", "not measured"))

    stats = found.get("stats")
    stats_s = stats.values["median_s"].get("10,000 entries") if stats else None
    if stats_s is not None:
        out.append(Target("Store.stats() over 10,000 entries", "< 200 ms",
                          f"{fmt_ms(stats_s)} ms", "PASS" if stats_s < STATS_LIMIT_S else "FAIL"))
    else:
        out.append(Target("Store.stats() over 10,000 entries", "< 200 ms", "—",
                          "not measured"))

    rss = found.get("rss")
    if rss and len(rss.values) >= 3:
        runs = list(rss.values.items())
        (large, default), (_, small_cache), (_, no_cache) = runs[-3:]
        # Bounded: the growth stays within the hot cache bound plus a fixed budget (the index's
        # sqlite memory, the remembered keys) and follows MEMO_HOT_CACHE_MB, not the count.
        bounded = default["growth_mib"] <= HOT_CACHE_MIB + FIXED_MIB \
            and small_cache["growth_mib"] <= 16 + FIXED_MIB \
            and no_cache["growth_mib"] <= FIXED_MIB
        out.append(Target(f"memory: replaying {large} entries in one process",
                          f"≤ hot cache bound ({HOT_CACHE_MIB} MiB) + {FIXED_MIB} MiB",
                          f"growth {default['growth_mib']:.0f} MiB; with MEMO_HOT_CACHE_MB=16: "
                          f"{small_cache['growth_mib']:.0f} MiB, =0: "
                          f"{no_cache['growth_mib']:.0f} MiB", "PASS" if bounded else "FAIL"))
    return out


def markdown(tables: Sequence[Table], info: dict[str, str], *, rounds: int, quick: bool,
             only: Sequence[str], elapsed_s: float, notes: Sequence[str],
             chart: dict[str, str] | None, cold_section: str | None = None,
             kept_sections: Sequence[str] = ()) -> str:
    """The page. ``chart`` maps ``"hits"`` and ``"import"`` to the charts drawn (page-relative
    paths); a panel without a chart is still summed up in text."""
    command = "python benchmarks/run.py --write-docs" + (" --quick" if quick else "") + \
        "".join(f" --only {o}" for o in only)
    charts = chart or {}
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` on {info['date']}; do not edit by hand, re-run the script.",
        "Every number below comes from that one run: contenders measured side by side in "
        "interleaved rounds, medians, and ratios to the raw floor measured in the same rounds.",
        "",
        "## Targets",
        "",
        "The performance targets memo_replay holds itself to, judged on this run's medians. "
        "A hit does more than the raw floor below: it derives a key from the function, its "
        "code and its arguments ([What goes into a key](keys.md)) and reads an entry of the "
        "store ([The store format](store-format.md)).",
        "",
        "| target | limit | this run | verdict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {t.name} | {t.limit} | {t.measured} | **{t.verdict}** |"
              for t in targets(tables)]
    lines.append("")
    hits = hit_tables(tables)
    imports = _by_key(tables).get("import")
    if hits or imports:
        lines += ["## At a glance", ""]
    if hits:
        lines += ["### Hit latency", ""]
        if "hits" in charts:
            lines += [f"![Hit latency of memo_replay, diskcache, joblib and cachier as a "
                      f"multiple of the raw floor, per case (log scale)]({charts['hits']})", ""]
        lines += [*hit_summary(hits), ""]
    if imports:
        lines += ["### Import time", ""]
        if "import" in charts:
            lines += [f"![Import time over a bare interpreter: memo_replay with one @recorded "
                      f"function against the 30 ms target, and the peers]({charts['import']})",
                      ""]
        lines += [*import_summary(imports), ""]
    lines += [
        "## Machine",
        "",
        f"- {info['cpus']} CPUs ({info['processor']}), shared and noisy",
        f"- {info['python']} on {info['platform']}",
        f"- {info['date']}; {rounds} rounds per case; the run took {elapsed_s / 60:.1f} min",
        "",
        "## How to read it",
        "",
        "- **raw floor**: `xxhash.xxh3_128_hexdigest(pickle.dumps(args, protocol=5))` plus one "
        "`diskcache.Cache.get` of a value stored beforehand — the least any disk memoizer can "
        "do on a hit. A ratio of 1.5× means 50 % more time than that floor.",
        "- **lru_cache** is the in-memory floor: what skipping the disk entirely costs.",
        "- Each sample is the mean of an inner loop long enough to take ≥ 20 ms "
        "(`calls/sample`); each round samples every contender once in a rotating order; the "
        "table shows the median over rounds and the interquartile range.",
        "- Hits are true hits: peers' function bodies are counted and must not run while hits "
        "are timed; memo_replay is timed in strict `replay` mode, where a miss raises "
        "([Modes](modes.md)).",
        "- Before timing, one 8 MB block is allocated and freed so that glibc recycles large "
        "buffers instead of mapping a fresh one per call; otherwise the raw floor's "
        "`pickle.dumps` of a 1 MB argument costs ~500 µs of page faults instead of ~25 µs, "
        "depending on what ran before. This can only make the floor faster.",
        "",
        "## Results",
        "",
    ]
    for table in tables:
        lines += [table.markdown(), ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    if cold_section:
        lines += [cold_section, ""]
    for kept in kept_sections:
        lines += [kept, ""]
    lines += [
        "## Reproduce",
        "",
        "```bash",
        "python3 -m venv .venv && . .venv/bin/activate",
        "pip install -e \".[bench]\"",
        "python benchmarks/run.py                # tables on stdout",
        "python benchmarks/run.py --write-docs   # this page and its SVG charts",
        "python benchmarks/run.py --smoke        # the CI guard (exit 1 above 5×)",
        "# only the cold-path section of this page and its chart:",
        "python benchmarks/run.py --write-docs --only cold --only cold-xdist \\",
        "    --only first-call --only fixed-cost",
        "```",
        "",
        "The first full run builds the 100 / 10,000 / 100,000-entry stores in "
        "`benchmarks/.data/` (git-ignored) and later runs reuse them. "
        "`benchmarks/README.md` in the repository describes every case.",
        "",
    ]
    return "\n".join(lines)


def hit_summary(hits: Sequence[Table]) -> list[str]:
    """The hit chart's figures in words: one bullet per case."""
    out = []
    for table in hits:
        medians = table.values["median_s"]
        ratios = table.values["ratio_raw"]
        memo = ratios.get(MEMO)
        if memo is None:
            continue
        peers = [f"{name} {fmt_ratio(ratios[name])}" for name in ALL
                 if name not in (RAW, LRU, MEMO) and ratios.get(name)]
        text = (f"- **{_short(table)}**: memo_replay {fmt_us(medians.get(MEMO))} µs, "
                f"{fmt_ratio(memo)} the raw floor ({fmt_us(medians.get(RAW))} µs)")
        if peers:
            text += "; " + ", ".join(peers)
        if medians.get(LRU):
            text += f"; lru_cache, in memory, {fmt_us(medians[LRU])} µs"
        out.append(text + ".")
    if out:
        out.insert(0, f"Median hit latency and its multiple of the raw floor (target for "
                      f"memo_replay: ≤ {HIT_LIMIT}×; lower is better):")
        out.insert(1, "")
    return out


def import_summary(imports: Table) -> list[str]:
    """The import chart's figures in words."""
    over = imports.values["over_bare_s"]
    out = []
    felt = over.get(DECORATED)
    if felt is not None:
        verdict = "within" if felt < IMPORT_LIMIT_S else "over"
        out.append(f"A program that imports memo_replay and decorates one function starts "
                   f"{fmt_ms(felt)} ms later than a bare interpreter: {verdict} the 30 ms "
                   f"target. That is the number a user feels; `import memo_replay` alone "
                   f"({_over_bare(over.get(MEMO))}) costs next to nothing because it loads "
                   f"the decorator, key, store and serializer modules only when a function "
                   f"is first decorated.")
    peers = [f"{name} {fmt_ms(over[name])} ms" for name in ("diskcache", "joblib", "cachier")
             if name in over]
    if peers:
        out.append(f"Importing the peers, over the same bare interpreter: {', '.join(peers)}.")
    return [" ".join(out)] if out else []


def _figure(height_in: float) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(CHART_WIDTH_IN, height_in))


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # "tight" keeps the legend under the axes inside the picture.
    fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight",
                pad_inches=0.08)
    plt.close(fig)


SVG_STYLE: Any = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 11,
             "xtick.labelsize": 11, "ytick.labelsize": 11, "legend.fontsize": 11,
             "svg.hashsalt": "memo-replay", "svg.fonttype": "path"}
"""Text of 10 to 13 pt in a 7.2 in figure: 13 to 17 px at the width of the page."""
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.85}
"""Behind a bar's value, so a target line crossing it does not hide the digits."""


def charts(tables: Sequence[Table], directory: Path) -> dict[str, Path]:
    """The SVG charts of the warm cases, one per panel, written into ``directory`` (docs/);
    returns ``{"hits": path, "import": path}`` for those drawn (none without matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        return {}
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn: dict[str, Path] = {}
    hits = hit_tables(tables)
    imports = _by_key(tables).get("import")
    with plt.rc_context(SVG_STYLE):
        if hits:
            height = 1.6 + 1.25 * len(hits)
            fig, ax = _figure(height)
            # The legend goes 0.62 in under the axes (below the x label), whatever the height.
            _hit_panel(ax, hits, legend_y=-0.62 / (height - 1.3))
            _save(fig, directory / HITS_CHART)
            drawn["hits"] = directory / HITS_CHART
        if imports:
            fig, ax = _figure(3.9)
            _import_panel(ax, imports)
            _save(fig, directory / IMPORT_CHART)
            drawn["import"] = directory / IMPORT_CHART
    return drawn


def _hit_panel(ax: Any, hits: Sequence[Table], legend_y: float) -> None:
    # lru_cache (0.0001–0.01× the floor) is left to the tables: on this axis it would squeeze
    # the range where the disk memoizers differ.
    names = [n for n in ALL if n not in (RAW, LRU)
             and any(t.values["ratio_raw"].get(n) for t in hits)]
    names = [MEMO, *(n for n in names if n != MEMO)] if MEMO in names else names
    height = 0.84 / max(1, len(names))
    for j, name in enumerate(names):
        ys, xs = [], []
        for i, table in enumerate(hits):
            ratio = table.values["ratio_raw"].get(name)
            if ratio:
                ys.append(i + (j - (len(names) - 1) / 2) * height)
                xs.append(ratio)
        ax.barh(ys, xs, height=height * 0.9, color=COLORS.get(name, "#888"), label=name,
                edgecolor="black" if name == MEMO else "none", linewidth=0.6)
        for y, x in zip(ys, xs, strict=True):
            ax.text(x * 1.08, y, fmt_ratio(x), va="center", fontsize=10, bbox=LABEL_BOX,
                    color=COLORS[MEMO] if name == MEMO else "#333333",
                    fontweight="bold" if name == MEMO else "normal")
    ax.axvline(1.0, color=COLORS[RAW], linestyle="--", linewidth=1.2,
               label="raw floor (1×)")
    ax.axvline(HIT_LIMIT, color="#d62828", linestyle=":", linewidth=1.6,
               label=f"target ({HIT_LIMIT}×)")
    ax.set_xscale("log")
    ax.set_xlim(right=ax.get_xlim()[1] * 4)  # room for the labels of the longest bars
    ax.set_yticks(range(len(hits)))
    ax.set_yticklabels([f"{_short(t).replace(' argument', ' arg').split(' (')[0]}\n"
                        f"floor {fmt_us(t.values['median_s'].get(RAW))} µs"
                        for t in hits])
    ax.invert_yaxis()
    ax.set_xlabel("hit latency ÷ raw floor (median, log scale; lower is better)")
    ax.set_title("Hit latency relative to the raw floor")
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.4, legend_y), ncol=3, frameon=False,
              columnspacing=1.2, handlelength=1.6)


def _short(table: Table) -> str:
    """``hit, small args: f(3, "abc")`` → ``small args``."""
    return table.title.removeprefix("hit, ").split(":")[0]


def _import_panel(ax: Any, imports: Table) -> None:
    over = {k: v for k, v in imports.values["over_bare_s"].items() if k != "bare interpreter"}
    names = {DECORATED: "memo_replay:\nimport + @recorded",
             MEMO: "memo_replay:\nimport alone"}
    order = [k for k in (DECORATED, MEMO) if k in over] + \
        [k for k in over if k not in (DECORATED, MEMO)]
    values = [over[k] * 1e3 for k in order]
    colors = [COLORS[MEMO] if k == DECORATED else "#c9b3e6" if k == MEMO else "#9aa5b1"
              for k in order]
    ax.barh(range(len(order)), [max(v, 0.0) for v in values], color=colors)
    top = max(max(values), IMPORT_LIMIT_S * 1e3)
    for i, (key, v) in enumerate(zip(order, values, strict=True)):
        label = f"{v:.1f} ms" if v >= 1 else "< 1 ms"
        ax.text(max(v, 0.0) + top * 0.015, i, label, va="center", fontsize=11, bbox=LABEL_BOX,
                fontweight="bold" if key == DECORATED else "normal",
                color=COLORS[MEMO] if key == DECORATED else "#333333")
    ax.axvline(IMPORT_LIMIT_S * 1e3, color="#d62828", linestyle=":", linewidth=1.6,
               label="target for import + @recorded (30 ms)")
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([names.get(k, k) for k in order])
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.25)
    ax.set_xlabel("ms over python -c pass (median)")
    ax.set_title("Start-up cost: import (and decorate) over a bare interpreter")
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.legend(loc="upper right", frameon=True)


def write(tables: Sequence[Table], info: dict[str, str], *, rounds: int, quick: bool,
          only: Sequence[str], elapsed_s: float, notes: Sequence[str], root: Path
          ) -> list[Path]:
    """Write docs/benchmarks.md and its charts; returns the paths written.

    A run of only cold-path cases rewrites only the cold-path section of the existing page
    (and its chart); any other run rewrites the page, keeping the existing cold-path section
    unless this run measured a new one.
    """
    written: list[Path] = []
    page = root / "docs" / "benchmarks.md"
    existing = page.read_text(encoding="utf-8") if page.is_file() else ""
    cold_tables = [t for t in tables if t.key in COLD_KEYS]
    warm_tables = [t for t in tables if t.key not in COLD_KEYS]
    section: str | None
    if cold_tables:
        cold = _by_key(cold_tables).get("cold")
        svg = root / "docs" / COLD_CHART
        has_chart = cold is not None and cold_chart(cold, svg)
        if has_chart:
            written.append(svg)
        section = cold_markdown(cold_tables, info, rounds=rounds, quick=quick, only=only,
                                elapsed_s=elapsed_s, chart=COLD_CHART if has_chart else None)
    else:
        section = existing_section(existing)
    if not warm_tables and existing:
        page.write_text(splice(existing, section or ""), encoding="utf-8")
        written.insert(0, page)
        return written
    chart_notes = list(notes)
    drawn = charts(warm_tables, root / "docs")
    written += drawn.values()
    if not drawn:
        chart_notes.append("no chart: matplotlib is not installed, or no hit/import case ran")
    links = {kind: path.relative_to(root / "docs").as_posix() for kind, path in drawn.items()}
    page.write_text(markdown(warm_tables, info, rounds=rounds, quick=quick, only=only,
                             elapsed_s=elapsed_s, notes=chart_notes, chart=links,
                             cold_section=section, kept_sections=[
                                 kept for start, end in KEPT_SECTIONS
                                 if (kept := existing_section(existing, start, end))]),
                    encoding="utf-8")
    written.insert(0, page)
    return written


# -- the cold path -------------------------------------------------------------------------------

def _over_bare(seconds: float | None) -> str:
    """A start-up cost over a bare interpreter; below half a millisecond (even negative) it is
    within the noise of starting an interpreter, and says so."""
    if seconds is not None and seconds < 0.0005:
        return "≈ 0 ms, within the noise of a bare start"
    return f"{fmt_ms(seconds)} ms"


def existing_section(page: str, start_marker: str = COLD_START,
                     end_marker: str = COLD_END) -> str | None:
    """The section of a page between two markers (included; by default the cold path's), if
    it has one."""
    if start_marker in page and end_marker in page:
        start = page.index(start_marker)
        return page[start:page.index(end_marker, start) + len(end_marker)]
    return None


def splice(page: str, section: str) -> str:
    """``page`` with its cold-path section replaced by ``section`` (inserted before
    "## Reproduce" when the page has none)."""
    old = existing_section(page)
    if old is not None:
        return page.replace(old, section)
    marker = "## Reproduce"
    if marker in page:
        return page.replace(marker, f"{section}\n\n{marker}", 1)
    return page.rstrip("\n") + f"\n\n{section}\n"


def cold_targets(tables: Sequence[Table]) -> list[Target]:
    """The cold-path targets of issue 15, judged on this run's medians."""
    found = _by_key(tables)
    out: list[Target] = []
    cold = found.get("cold")
    if cold:
        values = cold.values["cold"]

        def ratios(contender: str, sizes: Sequence[int]) -> dict[int, float]:
            runs = values.get(contender, {})
            return {n: runs[str(n)]["ratio_floor"] for n in sizes if str(n) in runs}

        def judged(name: str, limit: float, measured: dict[int, float]) -> Target:
            if not measured:
                return Target(name, f"≤ {limit:g}×", "—", "not measured")
            detail = ", ".join(f"N = {n:,}: {fmt_ratio(r)}" for n, r in measured.items())
            ok = all(r <= limit for r in measured.values())
            return Target(name, f"≤ {limit:g}×", detail, "PASS" if ok else "FAIL")

        out.append(judged("fresh clone, strict replay per call ÷ the json.loads floor",
                          COLD_FLOOR_LIMIT, ratios("memo-fresh", (300, 3_000))))
        out.append(judged("… and flat in N: the same at N = 30,000", COLD_FLOOR_LIMIT,
                          ratios("memo-fresh", (30_000,))))
        out.append(judged("second run on the same clone ÷ the floor", COLD_SECOND_LIMIT,
                          ratios("memo-second", (300, 3_000, 30_000))))
    xdist = found.get("cold-xdist")
    if xdist and xdist.values:
        ratio = xdist.values["ratio"]
        alone = xdist.values.get("replay_ratio")
        out.append(Target(f"pytest -n 2 replaying {xdist.values['n']:,} calls ÷ one process",
                          f"≤ {XDIST_LIMIT:g}×", f"{fmt_ratio(ratio)} (the replay alone, over "
                          f"N = 0: {fmt_ratio(alone)})",
                          "PASS" if ratio <= XDIST_LIMIT else "FAIL"))
    fixed = found.get("fixed-cost")
    if fixed and fixed.values:
        value = fixed.values["fixed_s"]
        out.append(Target("fixed cost per process: import, decorate, first replay (bundled "
                          "example)", f"≤ {FIXED_LIMIT_S * 1e3:g} ms", f"{fmt_ms(value)} ms",
                          "PASS" if value <= FIXED_LIMIT_S else "FAIL"))
    first = found.get("first-call")
    if first:
        median = first.values.get("median_s")
        if median is None:
            out.append(Target("first call per recorded function, 100-module project (median)",
                              "≤ 2 ms", "—", "not measured"))
        else:
            out.append(Target("first call per recorded function, 100-module project (median)",
                              "≤ 2 ms", f"median {fmt_ms(median)} ms, max "
                              f"{fmt_ms(first.values.get('max_s'))} ms",
                              "PASS" if median <= FIRST_CALL_LIMIT_S else "FAIL"))
    return out


def cold_markdown(tables: Sequence[Table], info: dict[str, str], *, rounds: int, quick: bool,
                  only: Sequence[str], elapsed_s: float, chart: str | None) -> str:
    """The cold-path section of docs/benchmarks.md, between its markers."""
    command = "python benchmarks/run.py --write-docs" + (" --quick" if quick else "") + \
        "".join(f" --only {o}" for o in only)
    lines = [
        COLD_START,
        "## The cold path: a fresh clone in CI",
        "",
        f"Generated by `{command}` on {info['date']} (the run took {elapsed_s / 60:.1f} min); "
        "do not edit by hand, re-run the script.",
        "",
        "The hit cases above time a warm call inside one long-lived process. CI does "
        "something else: it checks out a fresh clone — without the store's git-ignored index, "
        "`fixtures_store/.cache/` — starts fresh processes, often pytest-xdist workers, and "
        "strictly replays every recorded call once. Here each contender answers N calls of "
        "`lookup(i)` → `{\"i\": i, \"square\": i * i}` in one fresh process (memo_replay in a "
        "new `git clone` each round, `CI=true`, strict replay). **Per call** is the process's "
        "wall time over a bare `python -c pass`, divided by N: the fixed cost per process "
        "(imports, opening the store, exit) is included. **× floor** compares it with "
        "reading and `json.loads`-ing each entry file of the same store. "
        "`benchmarks/cold.py` describes every contender.",
        "",
    ]
    judged = cold_targets(tables)
    if judged:
        lines += ["Targets from issue 15, judged on this run's medians:", "",
                  "| target | limit | this run | verdict |", "|---|---|---|---|"]
        lines += [f"| {t.name} | {t.limit} | {t.measured} | **{t.verdict}** |" for t in judged]
        lines.append("")
    if chart:
        lines += [f"![cold path: cost per call against N for memo_replay, the floors and the "
                  f"peers (log-log)]({chart})", ""]
    for table in tables:
        lines += [table.markdown(), ""]
    lines.append(COLD_END)
    return "\n".join(lines)


COLD_STYLES = {
    "memo-fresh": ("#7b2cbf", "-", 2.8),
    "memo-second": ("#7b2cbf", "--", 2.0),
    "memo-nocache": ("#c77dff", ":", 2.2),
    "floor-files": ("#202020", "-", 2.0),
    "floor-onefile": ("#808080", "--", 1.6),
    "diskcache": ("#4f86c6", "-", 1.6),
    "joblib": ("#e07b39", "-", 1.6),
    "vcrpy": ("#2a9d8f", "-", 1.6),
}


def cold_chart(table: Table, path: Path) -> bool:
    """An SVG (~720 px wide): µs per call against N, one line per contender, log-log."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from benchmarks.cold import LABELS

    values: dict[str, dict[str, dict[str, float]]] = table.values.get("cold", {})
    if not values:
        return False
    sizes = sorted({int(n) for runs in values.values() for n in runs})
    with plt.rc_context({"font.size": 12, "svg.hashsalt": "memo-replay",
                         "svg.fonttype": "path"}):
        fig, ax = plt.subplots(figsize=(7.2, 6.4))
        for contender, label in LABELS.items():
            runs = values.get(contender, {})
            points = sorted((int(n), v["per_call_s"] * 1e6) for n, v in runs.items()
                            if v["per_call_s"] > 0)
            if not points:
                continue
            color, style, width = COLD_STYLES.get(contender, ("#888888", "-", 1.6))
            ax.plot([n for n, _ in points], [us for _, us in points], linestyle=style,
                    color=color, linewidth=width, marker="o", markersize=5,
                    label=label.replace("`", ""))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([f"{n:,}" for n in sizes])
        ax.minorticks_off()
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
            lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}"))
        ax.set_xlim(sizes[0] / 1.6, sizes[-1] * 1.6)
        ax.set_xlabel("N: recorded calls replayed by one fresh process")
        ax.set_ylabel("µs per call (process wall over bare python)")
        ax.set_title("Cold path: fresh clone, fresh process (medians)", fontsize=13)
        ax.grid(which="major", alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=10.5,
                  frameon=False)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format=path.suffix.lstrip("."), dpi=100,
                    metadata={"Date": None} if path.suffix == ".svg" else None)
        plt.close(fig)
    return True
