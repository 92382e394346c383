"""Timing and tables: interleaved rounds, calibrated inner loops, medians.

The machine is shared and noisy, so nothing here trusts one number:

- each *sample* is the mean of an inner loop of ``n`` calls, ``n`` chosen per contender so that
  a sample takes at least ``min_sample_s`` (the cost of the clock and of the loop vanishes);
- each *round* takes one sample of every contender, in an order that rotates from round to
  round, so a burst of noise from a neighbour hits everyone alike;
- a result is the *median* of the rounds, shown with its interquartile range.

Garbage collection is paused while a sample runs and done between samples, as ``timeit`` does.
:func:`settle_allocator` runs first, so that the cost of a large temporary buffer does not
depend on what ran earlier in the process.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


def settle_allocator() -> None:
    """Put glibc's malloc in the state a long-running process reaches anyway.

    glibc serves large allocations with ``mmap`` until a freed mapped block raises its dynamic
    threshold. Before that, every temporary 1 MB buffer (``pickle.dumps`` of a 1 MB argument in
    the raw floor) is mapped, page-faulted and unmapped on each call — about 500 µs instead of
    25 µs here — and whether that happens depends on what the process did before. Freeing one
    8 MB block raises the threshold once for the whole run, for every contender alike; this only
    makes the floor faster.
    """
    block = bytearray(8 * 1024 * 1024)
    del block


@dataclass
class Contender:
    """One way of answering a call: ``call()`` makes ``calls_per_invocation`` calls.

    ``executions`` (when given) counts how often the real function body ran; the harness checks
    it did not move while hits were timed, so every timed call is a true hit.
    """

    name: str
    call: Callable[[], object]
    executions: Callable[[], int] | None = None
    calls_per_invocation: int = 1


@dataclass
class Measurement:
    """Per-call seconds of every sample of one contender."""

    name: str
    samples: list[float] = field(default_factory=list)
    inner: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def quartiles(self) -> tuple[float, float]:
        if len(self.samples) < 2:
            return self.median, self.median
        q = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q[0], q[2]


def sample(contender: Contender, inner: int) -> float:
    """Mean seconds per call over ``inner`` invocations (gc paused, as in ``timeit``)."""
    call = contender.call
    loop = range(inner)
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in loop:
            call()
        elapsed = time.perf_counter_ns() - start
    finally:
        if enabled:
            gc.enable()
    return elapsed / 1e9 / (inner * contender.calls_per_invocation)


def calibrate(contender: Contender, min_sample_s: float, max_inner: int = 10_000_000) -> int:
    """The inner-loop length that makes one sample take at least ``min_sample_s``."""
    inner = 1
    while True:
        per_call = sample(contender, inner)
        total = per_call * inner * contender.calls_per_invocation
        if total >= min_sample_s or inner >= max_inner:
            return inner
        grow = min_sample_s * 1.2 / max(total, 1e-9)
        inner = min(max_inner, max(inner * 2, math.ceil(inner * grow)))


def interleaved(contenders: Sequence[Contender], *, rounds: int, min_sample_s: float,
                warmup: int = 3) -> dict[str, Measurement]:
    """Time every contender in ``rounds`` rotating rounds; checks that hits stayed hits."""
    for contender in contenders:
        for _ in range(warmup):
            contender.call()
    inner = {c.name: calibrate(c, min_sample_s) for c in contenders}
    before = {c.name: c.executions() for c in contenders if c.executions is not None}
    results = {c.name: Measurement(c.name, inner=inner[c.name]) for c in contenders}
    for r in range(rounds):
        shift = r % len(contenders)
        for contender in (*contenders[shift:], *contenders[:shift]):
            results[contender.name].samples.append(sample(contender, inner[contender.name]))
    for contender in contenders:
        if contender.executions is not None and contender.executions() != before[contender.name]:
            raise AssertionError(
                f"{contender.name}: the function body ran while hits were timed "
                f"({contender.executions() - before[contender.name]} times): not a true hit")
    return results


def rounds_of(runs: Sequence[tuple[str, Callable[[], float]]], rounds: int
              ) -> dict[str, Measurement]:
    """Interleaved rounds of slow operations that time themselves (one run = one sample)."""
    results = {name: Measurement(name, inner=1) for name, _ in runs}
    for r in range(rounds):
        shift = r % len(runs)
        for name, run in (*runs[shift:], *runs[:shift]):
            results[name].samples.append(run())
    return results


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    """``fn`` made into a run that returns its own wall time in seconds."""
    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    return run


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables for the duration of a block."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- tables --------------------------------------------------------------------------------------

def fmt_us(seconds: float | None) -> str:
    """Microseconds with about three significant digits."""
    if seconds is None:
        return "—"
    us = seconds * 1e6
    if us < 1:
        return f"{us:.3f}"
    if us < 10:
        return f"{us:.2f}"
    if us < 100:
        return f"{us:.1f}"
    return f"{us:,.0f}"


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    ms = seconds * 1e3
    return f"{ms:.2f}" if ms < 10 else f"{ms:,.1f}" if ms < 1000 else f"{ms:,.0f}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 0.1:
        return f"{value:.4f}×"
    return f"{value:.2f}×" if value < 10 else f"{value:,.1f}×"


@dataclass
class Table:
    """A titled table rendered the same way to the terminal and to Markdown."""

    key: str
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    """The numbers behind the table (seconds, ratios), for targets and the chart."""

    def text(self) -> str:
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h)
                  for i, h in enumerate(self.headers)]

        def line(cells: Sequence[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
            return "  ".join((first, *rest)).rstrip()

        out = [f"== {self.title} [{self.key}]", line(self.headers),
               line(["-" * w for w in widths])]
        out += [line(r) for r in self.rows]
        out += [f"   {note}" for note in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        align = ["---", *("---:" for _ in self.headers[1:])]
        out = [f"### {self.title}", "",
               "| " + " | ".join(self.headers) + " |",
               "|" + "|".join(align) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            out.append("")
            out += [f"{note}" if note.startswith("-") else f"- {note}" for note in self.notes]
        return "\n".join(out)
