"""The pytest plugin with recorded streams, end to end: real pytest runs (in subprocesses, with
the ``pytest11`` entry point and pytest-xdist as users have them) of a project whose recorded
functions are a sync generator and an async generator, without xdist and with ``-n 2``.

A stream counts as one call in the summary, however many items it yields; ``-v`` shows the item
count on its function's line; under xdist the counts arrive from the workers intact.
"""

from __future__ import annotations

import re

import pytest
from test_pytest_plugin import Project, counts, summary

# The plugin tests' fixtures: their project, run without xdist and with -n 2.
from test_pytest_plugin import project as project
from test_pytest_plugin import xdist_args as xdist_args

pytest_plugins = ["pytester"]

STREAM_LIB = '''
import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from memo_replay import recorded

LOG = Path(__file__).with_name("calls.log")


def log(line: str) -> None:
    with LOG.open("a", encoding="utf-8") as file:
        file.write(line + "\\n")


@recorded
def tokens(prompt: str) -> Iterator[str]:
    log(f"tokens {prompt}")
    for word in prompt.split():
        yield word


@recorded
async def atokens(prompt: str) -> AsyncIterator[str]:
    log(f"atokens {prompt}")
    for word in prompt.split():
        await asyncio.sleep(0)
        yield word


@recorded
def double(x: int) -> int:
    log(f"double {x}")
    return 2 * x
'''

TWELVE = "one two three four five six seven eight nine ten eleven twelve"

STREAM_TESTS = f'''
import asyncio

from lib import atokens, double, tokens

TWELVE = {TWELVE!r}


def test_sync_stream(memo_calls):
    assert list(tokens(TWELVE)) == TWELVE.split()
    assert [(c.function, c.items) for c in memo_calls] == [("lib.tokens", 12)]


def test_sync_streams_and_a_plain_call(memo_calls):
    assert list(tokens("a b c")) == ["a", "b", "c"]
    assert double(4) == 8
    assert [(c.function, c.items) for c in memo_calls] == [("lib.tokens", 3),
                                                           ("lib.double", None)]


async def collect(prompt):
    return [word async for word in atokens(prompt)]


def test_async_stream(memo_calls):
    assert asyncio.run(collect("x y z w v")) == ["x", "y", "z", "w", "v"]
    assert [(c.function, c.items) for c in memo_calls] == [("lib.atokens", 5)]
'''

SAVED = r"; saved \d+\.\d+ m?s"


@pytest.fixture
def stream_project(project: Project) -> Project:
    """The plugin tests' project (no CI/MEMO_*/outer xdist env), with streams in ``lib.py``."""
    project.write("lib.py", STREAM_LIB)
    (project.pytester.path / "test_two.py").unlink()
    project.write("test_streams.py", STREAM_TESTS)
    return project


def per_function(result: pytest.RunResult) -> dict[str, str]:
    """The ``-v`` lines of the summary, by function."""
    lines = {}
    for line in summary(result):
        match = re.fullmatch(r"  (lib\.\w+): (.*)", line)
        if match:
            lines[match.group(1)] = match.group(2)
    return lines


def test_a_stream_counts_as_one_call_and_v_shows_its_items(stream_project: Project) -> None:
    result = stream_project.run("--memo-mode", "record", "-v")
    result.assert_outcomes(passed=3)
    # 3 streams (20 items in all) and one plain call: 4 calls, not 21.
    assert counts(result) == (0, 4, 0, 0)
    lines = per_function(result)
    assert lines.keys() == {"lib.tokens", "lib.atokens", "lib.double"}
    assert re.fullmatch(r"2 recorded \(2 streams, 15 items\)" + SAVED, lines["lib.tokens"])
    assert re.fullmatch(r"1 recorded \(stream, 5 items\)" + SAVED, lines["lib.atokens"])
    assert re.fullmatch(r"1 recorded" + SAVED, lines["lib.double"])  # not a stream
    assert stream_project.calls() == sorted([f"tokens {TWELVE}", "tokens a b c",
                                             "atokens x y z w v", "double 4"])
    assert len(stream_project.entries()) == 4

    result = stream_project.run("--memo-mode", "replay", "-v")
    result.assert_outcomes(passed=3)
    assert counts(result) == (4, 0, 0, 0)
    lines = per_function(result)
    assert re.fullmatch(r"2 replayed \(2 streams, 15 items\)" + SAVED, lines["lib.tokens"])
    assert re.fullmatch(r"1 replayed \(stream, 5 items\)" + SAVED, lines["lib.atokens"])
    assert re.fullmatch(r"1 replayed" + SAVED, lines["lib.double"])
    assert len(stream_project.calls()) == 4  # nothing ran again

    # Without -v: the counts line only, streams still one call each.
    result = stream_project.run("--memo-mode", "replay")
    result.assert_outcomes(passed=3)
    assert counts(result) == (4, 0, 0, 0)
    assert per_function(result) == {}


def test_one_stream_test_shows_its_own_item_count(stream_project: Project) -> None:
    stream_project.run("--memo-mode", "record").assert_outcomes(passed=3)
    result = stream_project.run("--memo-mode", "replay", "-v", "test_streams.py::test_sync_stream")
    result.assert_outcomes(passed=1)
    assert counts(result) == (1, 0, 0, 0)
    assert re.fullmatch(r"1 replayed \(stream, 12 items\)" + SAVED,
                        per_function(result)["lib.tokens"])


def test_a_missed_stream_counts_as_one_miss(stream_project: Project) -> None:
    """In strict replay a stream with no recording is one miss, raised at the call."""
    result = stream_project.run("--memo-mode", "replay", "-v", "test_streams.py::test_sync_stream")
    result.assert_outcomes(failed=1)
    assert counts(result) == (0, 0, 1, 0)
    assert "ReplayMiss" in result.stdout.str()
    assert any("`lib.tokens`" in line for line in summary(result))
    assert stream_project.calls() == []
