"""``python -m memo_replay demo``: the whole idea in under a minute, on bundled examples.

It copies the bundled DyGram translator (``.dy`` state machines → pydantic IR through a fake,
slow "LLM") into a scratch project and runs it in fresh interpreters: record, strict replay,
edit one example file (only that call re-records), edit the prompt constant (strict replay fails
and explains why), then shows the store.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_ROUTER = "examples/dygram/machines/router.dy"
_PROMPTS = "examples/dygram/prompts.py"


def run_demo(*, keep: bool = False, latency: float = 0.4) -> int:
    scratch = Path(tempfile.mkdtemp(prefix="memo-replay-demo-"))
    try:
        _setup(scratch)
        return _story(scratch, latency)
    finally:
        if keep:
            print(f"\nThe scratch project is kept at {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _template() -> Path:
    """Where the bundled example lives: inside the wheel, or beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_demo_project", here.parent):
        if (candidate / "examples" / "dygram" / "translator.py").is_file():
            return candidate
    raise SystemExit("memo-replay demo: the bundled examples are missing; reinstall memo-replay")


def _setup(scratch: Path) -> None:
    source = _template() / "examples"
    shutil.copytree(source / "dygram", scratch / "examples" / "dygram",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(source / "__init__.py", scratch / "examples" / "__init__.py")
    (scratch / "pyproject.toml").write_text(
        '[project]\nname = "dygram-demo"\nversion = "0"\n\n'
        '[tool.memo_replay]\nstore = "fixtures_store"\n'
    )


def _story(scratch: Path, latency: float) -> int:
    print(_bold("memo_replay demo") + " — an LLM-backed translator, recorded once, replayed "
          "forever")
    print(f"scratch project: {scratch}")
    print("examples/dygram/translator.py:  @recorded(files=[\"{path}\"])  def translate(path, "
          "model=\"small\") -> Machine\n")

    _step(1, "First run (MEMO_MODE=auto): every call reaches the model and is recorded")
    first = _run(scratch, "auto", latency)
    _summary(first)

    _step(2, "A fresh interpreter in strict replay (MEMO_MODE=replay — the default when CI is "
             "set)")
    second = _run(scratch, "replay", latency)
    _summary(second)

    _step(3, f"Edit {_ROUTER} (rename an edge label) and run again in auto")
    router = scratch / _ROUTER
    router.write_text(router.read_text().replace('"option_a"', '"search"'))
    third = _run(scratch, "auto", latency)
    _summary(third)

    _step(4, "Edit the prompt constant prompts.TEMPLATE and run in strict replay")
    prompts = scratch / _PROMPTS
    prompts.write_text(prompts.read_text().replace(
        "- Output JSON only", "- Keep state names exactly as written.\n- Output JSON only"))
    fourth = _run(scratch, "replay", latency)
    missed = [r for r in fourth if r["outcome"] == "missed"]
    if missed:
        print(f"  {len(missed)} of {len(fourth)} calls raise ReplayMiss; the first one says:\n")
        print("\n".join("    " + line for line in missed[0]["explanation"].splitlines()))

    _step(5, "The store (memo-replay stats --stale, run in the scratch project)")
    # A fresh process in the scratch project, as a user runs it: this one has the bundled
    # examples imported from elsewhere, and the audit never checks code against another copy.
    stats = subprocess.run([sys.executable, "-m", "memo_replay", "stats", "--stale", "--json"],
                           cwd=scratch, env=_env(scratch), capture_output=True, text=True)
    if stats.returncode != 0:
        raise SystemExit(f"memo-replay demo: `memo-replay stats` failed:\n{stats.stderr}")
    functions = json.loads(stats.stdout)["functions"]
    print(f"  {'FUNCTION':<38}{'ENTRIES':>8}{'STALE':>7}  SERIALIZERS")
    for name, row in functions.items():
        kinds = ", ".join(f"{k}×{v}" for k, v in row["serializers"].items())
        print(f"  {name:<38}{row['entries']:>8}{row['stale']:>7}  {kinds}")
    stale = sum(row["stale"] for row in functions.values())
    if stale:
        print(f"  {stale} recordings are stale: they were made with the old prompt. "
              f"`memo-replay prune --stale --yes` removes them;\n  `MEMO_MODE=record` makes "
              f"new ones.")

    saved = sum(r.get("recorded_s") or 0.0 for r in second)
    ok = (all(r["outcome"] == "recorded" for r in first)
          and all(r["outcome"] == "replayed" for r in second)
          and sorted(r["outcome"] for r in third) == ["recorded", "replayed", "replayed",
                                                      "replayed"]
          and len(missed) == len(fourth))
    print(f"\n{_bold('Done.')} Strict replay saved {saved:.1f} s of model time in step 2; "
          f"step 3 re-recorded only the edited file; step 4 explained the miss instead of "
          f"replaying a stale answer.")
    return 0 if ok else 1


def _env(scratch: Path) -> dict[str, str]:
    """The environment of a program run in the scratch project."""
    env = {**os.environ, "PYTHONPATH": str(scratch)}
    env.pop("MEMO_STORE", None)
    # Each step is its own program: its re-record command must name it, not a pytest test
    # that happens to run the demo.
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def _run(scratch: Path, mode: str, latency: float) -> list[dict[str, Any]]:
    env = {**_env(scratch), "MEMO_MODE": mode, "DYGRAM_LLM_LATENCY": str(latency)}
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.dygram.run", "--jsonl"], cwd=scratch, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    results: list[dict[str, Any]] = []
    spinner = _Spinner("")
    for event in (json.loads(line) for line in process.stdout):
        if event["event"] == "start":
            spinner = _Spinner(f"translating {event['path']}")
            spinner.start()
            continue
        spinner.stop()
        results.append(event)
        title = event.get("title") or "ReplayMiss"
        why = f"  ({event['why']})" if event.get("why") else ""
        print(f"  {_colour(event['outcome'])}  {Path(event['path']).name:<18} "
              f"{_duration(event['elapsed_s']):>10}  {title}{why}")
    stderr = process.stderr.read() if process.stderr else ""
    if process.wait() not in (0, 1):
        raise SystemExit(f"memo-replay demo: the example run failed:\n{stderr}")
    return results


def _summary(results: list[dict[str, Any]]) -> None:
    counts: dict[str, int] = {}
    for r in results:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    total = sum(r["elapsed_s"] for r in results)
    print("  → " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
          + f" in {_duration(total)}")


class _Spinner:
    """A progress indicator on stderr while a slow call runs (silent when not a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def start(self) -> None:
        if sys.stderr.isatty():
            self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()

    def _spin(self) -> None:
        for frame in itertools.cycle(_SPINNER):
            sys.stderr.write(f"\r  {frame} {self.label} …")
            sys.stderr.flush()
            if self._done.wait(0.08):
                return


def _step(number: int, title: str) -> None:
    print(f"\n{_bold(f'{number}.')} {title}")


def _duration(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 0.1 else f"{seconds * 1000:.2f} ms"


def _tty() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _bold(text: str) -> str:
    return f"\033[1m{text}\033[0m" if _tty() else text


def _colour(outcome: str) -> str:
    codes = {"recorded": "33", "replayed": "32", "missed": "31"}
    padded = f"{outcome:>8}"
    return f"\033[{codes.get(outcome, '0')}m{padded}\033[0m" if _tty() else padded
