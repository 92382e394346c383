"""Capture what memo_replay really prints in a terminal, into ``docs/terminal.md``.

    python tools/capture_terminal.py                       # regenerates docs/terminal.md
    python tools/capture_terminal.py -o /tmp/terminal.md --latency 0

It copies the bundled DyGram example into a scratch project (as ``python -m memo_replay demo``
does), records its translations with pytest, runs ``memo-replay ls/show/stats/verify``, edits one
``.dy`` file and runs the tests in strict replay (one test misses, and the plugin's summary says
why), re-records that test, compares the two recordings and lists the recording nothing uses
any more, reviews the change against the last commit with ``memo-replay changes``, and moves a
recorded function to another module with ``memo-replay mv``. Every command runs for real in a
fresh process; the page shows each command and its output, with the scratch project's path
replaced by ``~/project``.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLACEHOLDER = "~/project"
ROUTER = "examples/dygram/machines/router.dy"
TEST_FILE = "tests/test_translate.py"
TEST_SOURCE = '''\
import pytest

from examples.dygram.ir import Machine
from examples.dygram.translator import machine_paths, translate


@pytest.mark.parametrize("path", machine_paths())
def test_translate(path: str) -> None:
    machine = translate(path)
    assert isinstance(machine, Machine)
    assert machine.states[0].kind == "start"
'''
ROUTER_NODE = f"{TEST_FILE}::test_translate[{ROUTER}]"
SECTIONS = ("Record", "List the recordings", "Show one recording", "Statistics",
            "Verify the store", "A miss in strict replay", "Re-record what changed",
            "Review the change", "Recordings no test uses", "Move a recorded function")
MOVED_BEFORE, MOVED_AFTER = "examples/dygram/summary.py", "examples/dygram/overview.py"
MOVED_SOURCE = '''\
"""A second recorded function, moved to another module in the last section."""

from memo_replay import recorded


@recorded
def summarize(name: str) -> dict[str, str]:
    return {"name": name, "summary": f"{name}: a state machine"}
'''
MOVED_CALL = 'from examples.dygram.{module} import summarize; print(summarize("router"))'


@dataclass
class Scratch:
    root: Path
    latency: float

    def run(self, display: str, argv: list[str], *, env: Mapping[str, str] | None = None,
            expect: int = 0) -> str:
        """Run ``python argv`` in the project; the console text: ``$ display`` and the output."""
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("MEMO_", "PYTEST_", "DYGRAM_")) and k != "CI"}
        full_env.update({"PYTHONPATH": str(self.root), "PYTHONDONTWRITEBYTECODE": "1",
                         "DYGRAM_LLM_LATENCY": str(self.latency), "COLUMNS": "88",
                         "NO_COLOR": "1", **(env or {})})
        result = subprocess.run([sys.executable, *argv], cwd=self.root, env=full_env,
                                capture_output=True, text=True, timeout=300)
        output = result.stdout + result.stderr
        if result.returncode != expect:
            raise SystemExit(f"capture_terminal: `{display}` exited with {result.returncode}, "
                             f"expected {expect}:\n{output}")
        return f"$ {display}\n{self.stable(output).rstrip()}"

    def stable(self, text: str) -> str:
        """The output with the scratch project's location replaced by the placeholder."""
        for path in sorted({str(self.root), str(self.root.resolve())}, key=len, reverse=True):
            text = text.replace(path, PLACEHOLDER)
        return text

    def cli(self, *args: str, expect: int = 0) -> str:
        return self.run(f"memo-replay {shlex.join(args)}", ["-m", "memo_replay", *args],
                        expect=expect)

    def git(self, *args: str) -> None:
        """A git command the page does not show (the scratch project is a repository)."""
        subprocess.run(["git", "-c", "user.name=Capture", "-c", "user.email=capture@example.com",
                        "-c", "commit.gpgsign=false", *args], cwd=self.root, check=True,
                       capture_output=True)

    def pytest(self, env: Mapping[str, str], *args: str, expect: int = 0) -> str:
        prefix = "".join(f"{name}={value} " for name, value in env.items())
        return self.run(f"{prefix}python -m pytest {shlex.join(args)}",
                        ["-m", "pytest", *args], env=env, expect=expect)


def console(text: str) -> str:
    return f"```console\n{text}\n```"


def keys_of(scratch: Scratch) -> dict[str, str]:
    """Entry key → the ``path`` argument it was recorded with."""
    from memo_replay import Store

    store = Store(scratch.root / "fixtures_store")
    try:
        return {e.key: str(e.arguments["path"]) for e in store.entries()}
    finally:
        store.close()


def short(key: str, keys: list[str]) -> str:
    """The shortest prefix of ``key`` (at least 4 digits) no other key starts with."""
    for n in range(4, len(key)):
        if sum(k.startswith(key[:n]) for k in keys) == 1:
            return key[:n]
    return key


def capture(latency: float) -> str:
    sys.path.insert(0, str(REPO))
    from memo_replay.demo import _setup  # the demo's scratch copy of the bundled example

    root = Path(tempfile.mkdtemp(prefix="memo-replay-capture-"))
    try:
        _setup(root)
        (root / "tests").mkdir()
        (root / TEST_FILE).write_text(TEST_SOURCE, encoding="utf-8")
        return _page(Scratch(root, latency))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _page(scratch: Scratch) -> str:
    out: dict[str, str] = {}
    out["Record"] = scratch.pytest({"MEMO_MODE": "record"}, "-q")
    scratch.git("init", "-q")
    scratch.git("add", "-A")
    scratch.git("commit", "-qm", "recordings")

    keys = keys_of(scratch)
    old_router = next(k for k, path in keys.items() if path == ROUTER)
    out["List the recordings"] = scratch.cli("ls")
    out["Show one recording"] = scratch.cli("show", short(old_router, list(keys)))
    out["Statistics"] = scratch.cli("stats", "--stale")
    out["Verify the store"] = scratch.cli("verify")

    router = scratch.root / ROUTER
    before = router.read_text(encoding="utf-8")
    after = before.replace('"option_a"', '"search"')
    assert after != before, "the router example changed: update capture_terminal.py"
    router.write_text(after, encoding="utf-8")
    edit = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                        f"a/{ROUTER}", f"b/{ROUTER}", n=1))
    miss = scratch.pytest({"CI": "true"}, "-q", "--tb=no", expect=1)
    rerecord = f"MEMO_MODE=record python -m pytest {shlex.quote(ROUTER_NODE)}"
    assert rerecord in miss, f"the summary does not suggest {rerecord!r}:\n{miss}"
    out["A miss in strict replay"] = miss

    recorded = scratch.pytest({"MEMO_MODE": "record"}, "-q", ROUTER_NODE)
    keys = keys_of(scratch)
    new_router = next(k for k, path in keys.items() if path == ROUTER and k != old_router)
    compared = scratch.cli("diff", short(old_router, list(keys)), short(new_router, list(keys)),
                           expect=1)
    out["Re-record what changed"] = f"{recorded}\n\n{compared}"
    out["Review the change"] = scratch.cli("changes", "HEAD", expect=1)
    out["Recordings no test uses"] = scratch.pytest({}, "-q")
    out["Move a recorded function"] = _move(scratch)
    return render(out, edit)


def _move(scratch: Scratch) -> str:
    """Record a function, move its module, miss, move its recordings, replay."""
    (scratch.root / MOVED_BEFORE).write_text(MOVED_SOURCE, encoding="utf-8")
    scratch.run("", ["-c", MOVED_CALL.format(module="summary")], env={"MEMO_MODE": "record"})
    (scratch.root / MOVED_BEFORE).rename(scratch.root / MOVED_AFTER)
    old, new = "examples.dygram.summary.summarize", "examples.dygram.overview.summarize"
    replay, call = {"MEMO_MODE": "replay"}, MOVED_CALL.format(module="overview")
    shown = f"MEMO_MODE=replay python -c {shlex.quote(call)}"
    miss = scratch.run(shown, ["-c", call], env=replay, expect=1)
    hint = f"memo-replay mv {old} {new} --yes"
    assert hint in miss, f"the miss does not suggest {hint!r}:\n{miss}"
    dry = scratch.cli("mv", old, new, expect=1)
    moved = scratch.cli("mv", old, new, "--yes")
    replayed = scratch.run(shown, ["-c", call], env=replay)
    return "\n\n".join((_last_lines(miss, 4), dry, moved, replayed))


def _last_lines(text: str, count: int) -> str:
    """The command and the last ``count`` lines of its output (a traceback's end: the miss)."""
    command, *output = text.splitlines()
    return "\n".join([command, *output[-count:]])


def render(out: Mapping[str, str], edit: str) -> str:
    assert tuple(out) == SECTIONS
    return f"""\
# Terminal output

What memo_replay prints, captured from real runs on the bundled example: `examples/dygram`
translates `.dy` state machines into a pydantic IR through a fake, slow model, with
`@recorded(files=["{{path}}"])`. The commands run in order in a scratch copy of it
(`{PLACEHOLDER}`), which holds this test file:

```python title="{TEST_FILE}"
{TEST_SOURCE.rstrip()}
```

`memo-replay` is the same program as `python -m memo_replay`. The page is generated by
`python tools/capture_terminal.py`; only timestamps, durations and the scratch path differ
between runs.

## Record

The first run calls the model for every test and records the answers: the `memo_replay`
section at the end of the run counts them.

{console(out["Record"])}

## List the recordings

One line per recording: its key (the file name in `fixtures_store/`), the function, when it was
recorded, its size, the serializer and a preview of the arguments.

{console(out["List the recordings"])}

## Show one recording

A unique key prefix is enough; look at the declared file with its content hash, the code
fingerprint (with the helpers and constants it covers) and the payload that replays.

{console(out["Show one recording"])}

## Statistics

Per function: how many recordings, how many are stale (their code changed since), their size
and age, and which serializers wrote them.

{console(out["Statistics"])}

## Verify the store

What CI can run before the tests: parses every entry and checks its checksum (exit 1 on any
problem).

{console(out["Verify the store"])}

## A miss in strict replay

Someone edits an example without re-recording:

```diff
{edit.rstrip()}
```

In CI (`CI` set) the tests replay strictly, so that test fails; the summary names the test, says
what differs from the closest recording — the declared file — and prints the command that
re-records just that test (`--tb=no` leaves out the `ReplayMiss` traceback, which says the same).

{console(out["A miss in strict replay"])}

## Re-record what changed

Running the suggested command records the new answer; `memo-replay diff` then shows exactly which
key component separates the old recording from the new one (exit 1: they differ).

{console(out["Re-record what changed"])}

## Review the change

In a pull request, `memo-replay changes` lists the recordings added, removed and changed since a
base revision (default: the merge base with the default branch; here the last commit, whose
recordings the edit replaced). A changed recording pairs the old and the new answer to the same
call: why its key changed, and what the answer changed, field by field (`--markdown` gives the
same as a PR comment; exit 1: something changed).

{console(out["Review the change"])}

## Recordings no test uses

After a full run in which every test passed, the summary lists recordings of the functions it
exercised that no test used any more — here the router's old recording — and how to delete them.

{console(out["Recordings no test uses"])}

## Move a recorded function

A function moved to another module keeps its code, so its recordings still fit it: a strict
replay misses, and says so (the end of the `ReplayMiss` is shown); `memo-replay mv` lists what
it would move (exit 1), moves it with `--yes`, and the call replays.

{console(out["Move a recorded function"])}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "terminal.md")
    parser.add_argument("--latency", type=float, default=0.25,
                        help="seconds each fake model call takes (default 0.25)")
    args = parser.parse_args(argv)
    page = capture(args.latency)
    leftover = re.search(r"memo-replay-capture-\w+", page)
    assert leftover is None, f"the scratch path leaked into the page: {leftover}"
    args.output.write_text(page, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
