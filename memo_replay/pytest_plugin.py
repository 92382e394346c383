"""The pytest plugin (active once memo_replay is installed, through the ``pytest11`` entry point).

- ``--memo-mode`` / ini ``memo_mode`` and ``--memo-store`` / ini ``memo_store``; the command line
  beats ``MEMO_MODE``/``MEMO_STORE``, which beat the ini file.
- ``@pytest.mark.memo(mode="replay")`` pins a test's mode; the ``memo_calls`` fixture lists what
  each recorded call in the test did; ``memo_expect_replay`` fails the test unless every recorded
  call in it replayed.
- A terminal summary: replayed / recorded / missed / bypassed (a stream counts as one call), the
  time replays saved, a line per function with ``-v`` (with the item count of its streams),
  and each strict-replay miss with its explanation and the command that re-records just that
  test.
- After a full run (whole directories, no ``-k``/``-m``/node ids/deselection, no failures), the
  recordings of exercised functions that no test used; ``--memo-prune-unused`` deletes them.
- Under pytest-xdist, workers send their calls to the controller, which reports for the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from memo_replay.decorator import open_store, set_session_store
from memo_replay.errors import InvalidMode, ReplayMiss, hidden_from_pytest
from memo_replay.events import CallEvent, track_process
from memo_replay.modes import Mode, mode, parse_mode, resolve_mode, set_session_mode
from memo_replay.store import Store
from memo_replay.store.layout import entry_stem
from memo_replay.text import rerecord_command

_VALID = [m.value for m in Mode]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memo_replay", "memo_replay: record and replay expensive calls")
    group.addoption("--memo-mode", dest="memo_mode", choices=_VALID, default=None,
                    help="mode of every recorded call (beats MEMO_MODE and the ini memo_mode)")
    group.addoption("--memo-store", dest="memo_store", default=None, metavar="DIR",
                    help="store directory (beats MEMO_STORE and the ini memo_store)")
    group.addoption("--memo-prune-unused", dest="memo_prune_unused", action="store_true",
                    help="after a full run, delete recordings no test used")
    parser.addini("memo_mode", "memo_replay mode for the test run (auto, record, replay, off)")
    parser.addini("memo_store", "memo_replay store directory, relative to the rootdir")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "memo(mode): run this test's recorded calls in the given memo_replay mode")
    option_mode, ini_mode = config.getoption("memo_mode"), config.getini("memo_mode")
    env_mode = os.environ.get("MEMO_MODE")
    if option_mode:
        set_session_mode(option_mode, source="--memo-mode")
    elif env_mode:
        # Checked once here, like --memo-mode: otherwise every recorded call would fail its
        # test with the same InvalidMode, one test at a time, for the whole run.
        try:
            parse_mode(env_mode, source="the MEMO_MODE environment variable")
        except InvalidMode as exc:
            raise pytest.UsageError(f"{exc}. Fix or unset MEMO_MODE (or pass --memo-mode)."
                                    ) from None
    elif ini_mode:
        try:
            set_session_mode(ini_mode, source=f"memo_mode in {config.inipath}")
        except InvalidMode as exc:
            raise pytest.UsageError(str(exc)) from None
    option_store, ini_store = config.getoption("memo_store"), config.getini("memo_store")
    if option_store:
        set_session_store(option_store)
    elif ini_store and not os.environ.get("MEMO_STORE"):
        set_session_store(config.rootpath / ini_store)
    if int(pytest.__version__.split(".")[0]) < 8:  # new-style hook wrappers need pluggy >= 1.2
        warnings.warn("memo_replay's pytest summary, markers and memo_expect_replay need "
                      "pytest >= 8; they are off in this run", pytest.PytestConfigWarning,
                      stacklevel=1)
        return
    session = MemoSession(config)
    config.pluginmanager.register(session, "memo_replay_session")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistController(session), "memo_replay_xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    set_session_mode(None, source="pytest")
    set_session_store(None)


@pytest.fixture
def memo_calls() -> Iterator[list[CallEvent]]:
    """What each recorded call made during the test did (``.outcome``: replayed, recorded,
    missed or bypassed), in order — also calls made in threads."""
    with track_process() as calls:
        yield calls


@pytest.fixture
def memo_expect_replay(memo_calls: list[CallEvent]) -> list[CallEvent]:
    """Fail the test unless every recorded call made during it replayed."""
    return memo_calls


class MemoSession:
    """Collects every recorded call of the run, per test, and reports at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.calls: list[tuple[str, CallEvent]] = []
        self.deselected = 0
        self.skipped = 0
        self.usage_error: str | None = None
        self.failed: set[str] = set()
        self.shown: dict[str, str] = {}
        """Test id → the text of its failure reports."""
        self._log: list[CallEvent] = []
        self._tracking = track_process()

    def pytest_sessionstart(self) -> None:
        self._log = self._tracking.__enter__()

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("memo")
            if marker is not None:
                try:
                    _marker_mode(marker)
                except (InvalidMode, TypeError) as exc:
                    # Under xdist this runs in a worker: the controller raises it again (see
                    # _XdistController), else xdist reports an internal error without the text.
                    self.usage_error = f"{item.nodeid}: @pytest.mark.memo: {exc}"
                    raise pytest.UsageError(self.usage_error) from None

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        start = len(self._log)
        marker = item.get_closest_marker("memo")
        with mode(_marker_mode(marker)) if marker is not None else contextlib.nullcontext():
            result = yield
        self.calls.extend((item.nodeid, event) for event in self._log[start:])
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        return (yield from _without_own_frames(item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, object, object]:
        return (yield from _without_own_frames(item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        result = yield from _without_own_frames(item)
        expected = getattr(item, "funcargs", {}).get("memo_expect_replay")
        # In record mode (--memo-mode record, MEMO_MODE=record, a record marker) recording is
        # what was asked for; the check would make the suggested re-record command fail.
        if isinstance(expected, list) and resolve_mode(None, None) is not Mode.RECORD:
            others = [e for e in expected if e.outcome != "replayed"]
            if others:
                listed = ", ".join(f"`{e.function}` ({e.outcome})" for e in others)
                # pytrace=False: the failure is the message; this hook's lines are no help.
                pytest.fail(f"memo_expect_replay: {len(others)} recorded call(s) did not "
                            f"replay: {listed}. Record them with: "
                            f"{rerecord_command(item.nodeid)}", pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        # The failure section shows a miss's whole explanation; the one-line "short test
        # summary" (shown whole in CI) repeats only its first line.
        crash = getattr(report.longrepr, "reprcrash", None)
        if call.excinfo is not None and call.excinfo.errisinstance(ReplayMiss) \
                and crash is not None and isinstance(crash.message, str):
            first, _, rest = crash.message.partition("\n")
            if rest:
                crash.message = f"{first} (explained above)"
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped:
            self.skipped += 1
        if report.failed:
            self.failed.add(report.nodeid)
            # Kept to tell which misses the failure section already explains (runs in the
            # xdist controller too, where only reports, not exceptions, arrive).
            self.shown[report.nodeid] = self.shown.get(report.nodeid, "") + report.longreprtext

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._tracking.__exit__(None, None, None)
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller reports
            # One JSON string, not a list of dicts: execnet serializes containers in pure
            # Python (3,000 calls cost a worker and the controller tens of ms), a str at once.
            workeroutput["memo_replay"] = json.dumps([[nodeid, *event]
                                                      for nodeid, event in self.calls])
            workeroutput["memo_replay_usage_error"] = self.usage_error
            # Workers collect and deselect; the controller never sees pytest_deselected.
            workeroutput["memo_replay_deselected"] = self.deselected

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int) -> None:
        if hasattr(self.config, "workerinput"):
            return
        shown = {} if self.config.getoption("tbstyle", "auto") == "no" else self.shown
        report = _Report(self.calls, failed=self.failed, shown=shown,
                         verbose=self.config.getoption("verbose") > 0)
        unused = self._unused(exitstatus)
        if not self.calls and not unused:
            return
        terminalreporter.write_sep("=", "memo_replay")
        for line in report.lines():
            terminalreporter.write_line(line)
        if unused:
            self._report_unused(terminalreporter, unused)

    # -- unused recordings -------------------------------------------------------------------

    def _full_run(self, exitstatus: int) -> bool:
        option = self.config.option
        args = [Path(a) for a in self.config.args]
        return (exitstatus == 0 and not getattr(option, "keyword", "")
                and not getattr(option, "markexpr", "") and not getattr(option, "deselect", None)
                and not getattr(option, "lf", False) and self.deselected == 0
                and all("::" not in str(a) and a.is_dir() for a in args))

    def _unused(self, exitstatus: int) -> list[tuple[Store, str, str]]:
        """(store, function, entry name) of each recording of an exercised function that no
        call of the run used: found by listing entry names (an entry's file name is its key),
        never by reading every entry — a suite of 3,000 replays would parse 3,000 files at
        the end of each full run."""
        if not self._full_run(exitstatus):
            return []
        used: dict[str, set[tuple[str, str | None]]] = {}
        for _, event in self.calls:
            if event.store and Path(event.store).is_relative_to(self.config.rootpath):
                used.setdefault(event.store, set()).add((event.function, event.key))
        unused = []
        for store_path, keys in used.items():
            store = open_store(Path(store_path))
            functions = {function for function, _ in keys}
            for function in sorted(functions):
                unused += [(store, function, name) for name in store.entry_names(function)
                           if (function, entry_stem(name)) not in keys]
        return unused

    def _report_unused(self, terminalreporter: Any,
                       unused: list[tuple[Store, str, str]]) -> None:
        root = self.config.rootpath
        terminalreporter.write_line(f"{len(unused)} recording(s) of exercised functions were "
                                    f"not used by any test:")
        for store, function, name in unused:
            path = store.entry_path(function, entry_stem(name))
            terminalreporter.write_line(f"  {_relative(path, root)}  ({function})")
        if not self.config.getoption("memo_prune_unused"):
            terminalreporter.write_line("Delete them with: python -m pytest --memo-prune-unused")
        elif self.skipped:
            terminalreporter.write_line(f"Not pruning: {self.skipped} test(s) were skipped and "
                                        f"may use these recordings.")
        else:
            for store, _, name in unused:
                store.remove_named(name)  # with its payload file
            terminalreporter.write_line(f"Deleted {len(unused)} unused recording(s).")


class _XdistController:
    """Receives each worker's calls (only registered when pytest-xdist is installed)."""

    def __init__(self, session: MemoSession) -> None:
        self.session = session

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        workeroutput = getattr(node, "workeroutput", {})
        for nodeid, *fields in json.loads(workeroutput.get("memo_replay", "[]")):
            self.session.calls.append((nodeid, CallEvent(*fields)))
        self.session.deselected += workeroutput.get("memo_replay_deselected", 0)
        if workeroutput.get("memo_replay_usage_error"):
            raise pytest.UsageError(workeroutput["memo_replay_usage_error"])


class _Report:
    """The summary text: a pure computation over the run's calls."""

    def __init__(self, calls: list[tuple[str, CallEvent]], *, failed: set[str],
                 verbose: bool, shown: dict[str, str] | None = None) -> None:
        self.calls = calls
        self.failed = failed
        self.verbose = verbose
        self.shown = shown or {}
        """Test id → its failure text as printed above (a miss explained there is not
        explained again)."""

    def lines(self) -> list[str]:
        counts = {outcome: 0 for outcome in ("replayed", "recorded", "missed", "bypassed")}
        per_function: dict[str, dict[str, float]] = {}
        for _, event in self.calls:
            counts[event.outcome] += 1
            stats = per_function.setdefault(event.function,
                                            {o: 0.0 for o in (*counts, "original", "saved")})
            stats[event.outcome] += 1
            if event.items is not None:  # a stream: one call, however many items it yielded
                stats["streams"] = stats.get("streams", 0.0) + 1
                stats["items"] = stats.get("items", 0.0) + event.items
            if event.outcome == "replayed":
                stats["original"] += event.recorded_duration_s
                stats["saved"] += max(event.recorded_duration_s - event.duration_s, 0.0)
        original = sum(s["original"] for s in per_function.values())
        saved = sum(s["saved"] for s in per_function.values())
        lines = [", ".join(f"{n} {outcome}" for outcome, n in counts.items())
                 + (f"; replayed calls originally took {_seconds(original)}, replaying saved "
                    f"{_seconds(saved)}" if counts["replayed"] else "")]
        if self.verbose:
            for function, s in sorted(per_function.items()):
                lines.append(f"  {function}: " + ", ".join(
                    f"{int(s[o])} {o}" for o in counts if s[o]) + _streams(s)
                    + f"; saved {_seconds(s['saved'])}")
        misses = [(nodeid, e) for nodeid, e in self.calls
                  if e.outcome == "missed" and nodeid in self.failed]
        expected = [(nodeid, e) for nodeid, e in self.calls
                    if e.outcome == "missed" and nodeid not in self.failed]
        if expected:
            # A passing test that missed expected it (pytest.raises(ReplayMiss)): no alarm.
            lines.append(f"{len(expected)} miss(es) happened in tests that passed"
                         + (":" if self.verbose else " (-v lists them)"))
            if self.verbose:
                lines += [f"  {nodeid}: `{event.function}`" for nodeid, event in expected]
        if misses:
            lines.append(f"{len(misses)} call(s) had no recording in replay mode:")
        for nodeid, event in misses:
            detail = (event.detail or "").removeprefix("memo_replay (replay mode): ")
            first = detail.partition("\n")[0]
            if first and first in self.shown.get(nodeid, ""):
                # Its failure above already shows the whole explanation: print it once.
                lines.append(f"- {nodeid}: `{event.function}` (explained in its failure above)")
            else:
                lines.append(f"- {nodeid}: `{event.function}`")
                lines += [f"    {line}" for line in detail.splitlines()
                          if not line.startswith(("To re-record", "To record"))]
            lines.append(f"    re-record just this test: {rerecord_command(nodeid)}")
        return lines


def _without_own_frames(item: pytest.Item) -> Generator[None, object, object]:
    """Run the hook; a failure raised through memo_replay loses memo_replay's frames (every
    module's, as ``__tracebackhide__`` does for those that set it): the user's lines are the
    ones to read. Kept with ``--full-trace``, and for a bug inside memo_replay itself."""
    try:
        return (yield)
    except Exception as error:
        if not item.config.getoption("fulltrace", False):
            _unlink_own_frames(error)
        raise


def _unlink_own_frames(error: BaseException) -> None:
    class _Info:  # what hidden_from_pytest reads of an ExceptionInfo
        value, tb = error, error.__traceback__

    if error.__traceback__ is None or not hidden_from_pytest(_Info()):
        return
    first: TracebackType | None = None
    last: TracebackType | None = None
    tb: TracebackType | None = error.__traceback__
    while tb is not None:
        following = tb.tb_next
        if str(tb.tb_frame.f_globals.get("__name__", "")).partition(".")[0] != "memo_replay":
            if last is None:
                first = tb
            else:
                last.tb_next = tb
            last = tb
        tb = following
    if last is not None:
        last.tb_next = None
        error.__traceback__ = first


def _marker_mode(marker: pytest.Mark) -> Mode:
    value = marker.kwargs.get("mode", marker.args[0] if marker.args else None)
    if value is None:
        raise TypeError("give a mode: @pytest.mark.memo(mode=\"replay\")")
    return parse_mode(value, source="@pytest.mark.memo")


def _streams(stats: dict[str, float]) -> str:
    """`` (stream, 12 items)`` for a function whose calls were streams (``(3 streams, 36
    items)`` for several); empty for one that returns a value."""
    streams, items = int(stats.get("streams", 0)), int(stats.get("items", 0))
    if not streams:
        return ""
    counted = f"{items} item" + ("" if items == 1 else "s")
    return f" (stream, {counted})" if streams == 1 else f" ({streams} streams, {counted})"


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 0.01 else f"{value * 1000:.1f} ms"


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
