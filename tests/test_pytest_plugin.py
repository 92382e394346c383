"""The pytest plugin, end to end: real pytest runs (in subprocesses, so the ``pytest11`` entry
point and pytest-xdist load as they do for users) on throwaway projects, each scenario without
xdist and with ``-n 2``.

Every project has a ``pyproject.toml`` (its memo_replay root) and a ``lib.py`` whose recorded
functions append a line to ``calls.log`` each time they really run, so a test can tell a replay
from a real call.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import pytest

from memo_replay import Entry, Store

pytest_plugins = ["pytester"]

LIB = '''
from pathlib import Path

from memo_replay import recorded

LOG = Path(__file__).with_name("calls.log")


def log(line: str) -> None:
    with LOG.open("a", encoding="utf-8") as file:
        file.write(line + "\\n")


class QuotaError(RuntimeError):
    pass


@recorded
def double(x: int) -> int:
    log(f"double {x}")
    return 2 * x


@recorded
def shared() -> str:
    log("shared")
    return "shared"


@recorded
def boom(x: int) -> int:
    log(f"boom {x}")
    raise QuotaError(f"quota exceeded for {x}")


@recorded(record_exceptions=True)
def boom_recorded(x: int) -> int:
    log(f"boom_recorded {x}")
    raise QuotaError(f"quota exceeded for {x}")
'''

TWO_TESTS = """
from lib import double


def test_one():
    assert double(1) == 2


def test_two():
    assert double(2) == 4
"""

# The time-saved clause is left out when nothing replayed.
COUNTS = re.compile(r"(?=[1-9]|0 replayed, \d+ recorded, \d+ missed, \d+ bypassed$)"
                    r"(\d+) replayed, (\d+) recorded, (\d+) missed, (\d+) bypassed"
                    r"(?:; replayed calls originally took \d+\.\d+ m?s, "
                    r"replaying saved \d+\.\d+ m?s)?")


@pytest.fixture(params=[[], ["-n", "2"]], ids=["serial", "xdist"])
def xdist_args(request: pytest.FixtureRequest) -> list[str]:
    return list(request.param)


@dataclass
class Project:
    """A pytester project and the way to run pytest in it."""

    pytester: pytest.Pytester
    monkeypatch: pytest.MonkeyPatch
    xdist_args: list[str]

    def write(self, name: str, text: str) -> None:
        path = self.pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"), encoding="utf-8")

    def run(self, *args: str, env: dict[str, str] | None = None,
            cwd: str = ".") -> pytest.RunResult:
        """``python -m pytest [-n 2] *args`` in the project (or ``cwd`` in it), with ``env``."""
        with self.monkeypatch.context() as patch:
            patch.chdir(self.pytester.path / cwd)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            # Hypothesis' plugin (installed here for other tests) costs each xdist worker ~0.5 s.
            return self.pytester.runpytest_subprocess("-p", "no:hypothesispytest",
                                                      *self.xdist_args, *args, timeout=180)

    def calls(self) -> list[str]:
        """The real (not replayed) calls made so far, sorted."""
        path = self.pytester.path / "calls.log"
        return sorted(path.read_text().splitlines()) if path.exists() else []

    def entries(self, store: str = "fixtures_store") -> list[Entry]:
        return list(Store(self.pytester.path / store).entries())


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
            xdist_args: list[str]) -> Project:
    """``pyproject.toml``, ``lib.py`` and ``test_two.py``; no CI, MEMO_* or outer xdist env."""
    for name in ("CI", "MEMO_MODE", "MEMO_STORE", "PYTEST_XDIST_WORKER",
                 "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    # Tests rewrite lib.py within the same second; a cached .pyc would run the old code.
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    proj = Project(pytester, monkeypatch, xdist_args)
    proj.write("pyproject.toml", '[project]\nname = "proj"\nversion = "0"\n')
    proj.write("lib.py", LIB)
    proj.write("test_two.py", TWO_TESTS)
    return proj


def summary(result: pytest.RunResult) -> list[str]:
    """The lines of the "memo_replay" section of the terminal summary."""
    lines = result.outlines
    starts = [i for i, line in enumerate(lines) if re.fullmatch(r"=+ memo_replay =+", line)]
    assert len(starts) == 1, result.stdout.str()
    section = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("=") or re.fullmatch(r"\d+ \w+.* in [\d.]+s.*", line):
            break
        section.append(line)
    return section


def counts(result: pytest.RunResult) -> tuple[int, int, int, int]:
    """(replayed, recorded, missed, bypassed) from the summary's first line (its exact form)."""
    first = summary(result)[0]
    match = COUNTS.fullmatch(first)
    assert match, first
    replayed, recorded, missed, bypassed = (int(n) for n in match.groups())
    return replayed, recorded, missed, bypassed


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def unused_listed(result: pytest.RunResult) -> bool:
    return "not used by any test" in result.stdout.str()


# -- options, ini, precedence ---------------------------------------------------------------


def test_memo_mode_option_record_replay_off_auto(project: Project) -> None:
    result = project.run("--memo-mode", "record")
    result.assert_outcomes(passed=2)
    assert summary(result) == ["0 replayed, 2 recorded, 0 missed, 0 bypassed"]
    assert project.calls() == ["double 1", "double 2"]
    assert len(project.entries()) == 2

    result = project.run("--memo-mode", "replay", "-v")
    result.assert_outcomes(passed=2)
    assert counts(result) == (2, 0, 0, 0)
    assert project.calls() == ["double 1", "double 2"]
    per_function = [line for line in summary(result) if line.startswith("  lib.double:")]
    assert len(per_function) == 1
    assert re.fullmatch(r"  lib\.double: 2 replayed; saved \d+\.\d+ m?s", per_function[0])

    result = project.run("--memo-mode", "off")
    result.assert_outcomes(passed=2)
    assert counts(result) == (0, 0, 0, 2)
    assert project.calls() == ["double 1", "double 1", "double 2", "double 2"]
    assert len(project.entries()) == 2

    # auto replays what is there and records what is not; --memo-mode beats MEMO_MODE.
    [entry] = [e for e in project.entries() if e.arguments.get("x") == 2]
    entry.path.unlink()
    result = project.run("--memo-mode", "auto", env={"MEMO_MODE": "replay"})
    result.assert_outcomes(passed=2)
    assert counts(result) == (1, 1, 0, 0)
    assert project.calls().count("double 2") == 3
    assert len(project.entries()) == 2


def test_ini_memo_mode_and_env_precedence(project: Project) -> None:
    project.write("pyproject.toml", '[project]\nname = "proj"\nversion = "0"\n\n'
                                    '[tool.pytest.ini_options]\nmemo_mode = "replay"\n')
    result = project.run()  # the ini's replay: nothing recorded yet, so both miss
    result.assert_outcomes(failed=2)
    assert counts(result) == (0, 0, 2, 0)
    assert "ReplayMiss" in result.stdout.str()
    assert project.calls() == []

    result = project.run(env={"MEMO_MODE": "auto"})  # MEMO_MODE beats the ini
    result.assert_outcomes(passed=2)
    assert counts(result) == (0, 2, 0, 0)
    assert project.calls() == ["double 1", "double 2"]


def test_memo_store_option_ini_and_env(project: Project) -> None:
    project.write("pyproject.toml", '[project]\nname = "proj"\nversion = "0"\n\n'
                                    '[tool.pytest.ini_options]\nmemo_store = "ini_store"\n')
    (project.pytester.path / "sub").mkdir()
    project.run("..", cwd="sub").assert_outcomes(passed=2)  # relative to the rootdir, not cwd
    assert len(project.entries("ini_store")) == 2
    assert not (project.pytester.path / "sub" / "ini_store").exists()
    assert not (project.pytester.path / "fixtures_store").exists()

    # --memo-store beats MEMO_STORE, which beats the ini.
    project.run("--memo-store", "cli_store", env={"MEMO_STORE": "env_store"}
                ).assert_outcomes(passed=2)
    assert len(project.entries("cli_store")) == 2
    assert not (project.pytester.path / "env_store").exists()

    project.run(env={"MEMO_STORE": "env_store"}).assert_outcomes(passed=2)
    assert len(project.entries("env_store")) == 2
    assert not (project.pytester.path / "fixtures_store").exists()
    assert project.calls() == ["double 1", "double 1", "double 1", "double 2", "double 2",
                               "double 2"]


# -- marker and fixtures ------------------------------------------------------------------


def test_marker_pins_mode_and_memo_calls_reports_outcomes(project: Project) -> None:
    project.write("test_marker.py", """
import pytest

from lib import double
from memo_replay import ReplayMiss


@pytest.mark.memo(mode="replay")
def test_pinned_replay(memo_calls):
    with pytest.raises(ReplayMiss):
        double(10)
    assert [(c.function, c.outcome) for c in memo_calls] == [("lib.double", "missed")]


@pytest.mark.memo("off")
def test_pinned_off(memo_calls):
    assert double(11) == 22
    assert [(c.function, c.key, c.outcome) for c in memo_calls] == [
        ("lib.double", None, "bypassed")]


def test_not_pinned(memo_calls):
    assert double(12) == 24
    assert double(12) == 24
    assert [c.outcome for c in memo_calls] == ["recorded", "replayed"]
    assert memo_calls[0].key == memo_calls[1].key == double.memo.key(12)
""")
    # The marker beats --memo-mode (auto would record 10 and 11).
    result = project.run("--memo-mode", "auto", "test_marker.py")
    result.assert_outcomes(passed=3)
    assert counts(result) == (1, 1, 1, 1)
    assert project.calls() == ["double 11", "double 12"]
    assert [e.arguments for e in project.entries()] == [{"x": 12}]


def test_invalid_marker_mode_is_a_usage_error_naming_the_test(project: Project) -> None:
    project.write("test_bad.py", """
import pytest


@pytest.mark.memo(mode="sometimes")
def test_bad_mode():
    pass
""")
    result = project.run("test_bad.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = output(result)
    assert "test_bad.py::test_bad_mode" in text
    assert "'sometimes'" in text
    assert "INTERNALERROR" not in text


def test_memo_expect_replay(project: Project) -> None:
    project.write("test_expect.py", """
from lib import double


def test_replays(memo_expect_replay):
    assert double(1) == 2


def test_records(memo_expect_replay):
    assert double(2) == 4
""")
    # In record mode recording is what was asked for: the suggested command must pass.
    result = project.run("--memo-mode", "record", "test_expect.py::test_replays")
    result.assert_outcomes(passed=1)

    result = project.run("test_expect.py")  # auto: test_records records, which fails it
    result.assert_outcomes(passed=1, failed=1)  # a failure of the test, not an error
    text = result.stdout.str()
    assert "did not replay" in text
    assert "`lib.double` (recorded)" in text
    assert "pytest_plugin.py" not in text  # the message, not the plugin's source lines
    assert "raise AssertionError" not in text
    assert "pytest.fail(" not in text
    assert re.search(r"FAILED test_expect\.py::test_records\b", text)
    assert project.calls() == ["double 1", "double 2"]


# -- CI ------------------------------------------------------------------------------------


def test_ci_run_after_a_code_change_fails_with_the_explanation(project: Project) -> None:
    project.write("test_x.py", """
from lib import double


def test_y():
    assert double(3) == 6
""")
    project.run("test_x.py").assert_outcomes(passed=1)
    assert project.calls() == ["double 3"]
    lib = project.pytester.path / "lib.py"
    lib.write_text(lib.read_text().replace("return 2 * x", "return x * 2"))

    result = project.run("test_x.py", env={"CI": "true"})  # no MEMO_MODE: CI means replay
    assert result.ret == 1
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "ReplayMiss" in text
    assert "source of `lib.double` changed" in text
    lines = summary(result)
    assert counts(result) == (0, 0, 1, 0)
    # The explanation is printed once, in the failure; the summary points at it.
    assert "- test_x.py::test_y: `lib.double` (explained in its failure above)" in lines
    assert text.count("source of `lib.double` changed") == 1
    assert "    re-record just this test: MEMO_MODE=record python -m pytest test_x.py::test_y" \
        in lines
    # The short summary (shown whole in CI) repeats the first line only.
    [failed] = [line for line in result.outlines if line.startswith("FAILED test_x.py")]
    assert failed.endswith("1 recording of this function). (explained above)")
    # The traceback shows the test's line, not memo_replay's wrapper.
    assert "assert double(3) == 6" in text
    assert "decorator.py" not in text
    assert "sync_wrapper" not in text
    assert project.calls() == ["double 3"]  # never called in replay

    # The printed command fixes it.
    project.run("test_x.py::test_y", env={"MEMO_MODE": "record"}).assert_outcomes(passed=1)
    result = project.run("test_x.py", env={"CI": "true"})
    result.assert_outcomes(passed=1)
    assert counts(result) == (1, 0, 0, 0)


def test_miss_not_shown_by_its_failure_is_explained_in_the_summary(project: Project) -> None:
    """A test that caught the miss and failed on something else, and a run with --tb=no,
    did not print the explanation: the summary does."""
    project.write("test_x.py", """
import pytest
from memo_replay import ReplayMiss
from lib import double


def test_caught():
    with pytest.raises(ReplayMiss):
        double(3)
    assert False, "something else"


def test_raised():
    double(4)
""")
    result = project.run("test_x.py", env={"MEMO_MODE": "replay"})
    result.assert_outcomes(failed=2)
    lines = summary(result)
    assert "- test_x.py::test_caught: `lib.double`" in lines
    assert "- test_x.py::test_raised: `lib.double` (explained in its failure above)" in lines
    assert sum("no recording of `lib.double` exists" in line for line in lines) == 1

    result = project.run("test_x.py", "--tb=no", env={"MEMO_MODE": "replay"})
    result.assert_outcomes(failed=2)
    lines = summary(result)
    assert "- test_x.py::test_raised: `lib.double`" in lines
    assert sum("no recording of `lib.double` exists" in line for line in lines) == 2


def test_user_exception_through_the_wrapper_shows_user_frames_only(project: Project) -> None:
    project.write("test_boom.py", """
from lib import boom


def test_boom():
    boom(1)
""")
    result = project.run("test_boom.py")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "boom(1)" in text
    assert 'raise QuotaError(f"quota exceeded for {x}")' in text
    assert "decorator.py" not in text
    assert "recorder.py" not in text
    full = project.run("test_boom.py", "--full-trace").stdout.str()  # still there on request
    assert "decorator.py" in full


def test_memo_replay_errors_show_the_users_line_not_memo_replays(project: Project) -> None:
    """An error memo_replay raises from deep inside (an argument with no stable encoding,
    raised in memo_replay.keys) points at the test's call, not at memo_replay's modules."""
    project.write("test_lock.py", """
import threading

from lib import double


def test_lock():
    double(threading.Lock())
""")
    result = project.run("test_lock.py")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "UnhashableArgument" in text
    assert "double(threading.Lock())" in text
    assert "memo_replay/" not in text.replace("\\", "/")


def test_invalid_memo_mode_env_stops_the_run_at_start(project: Project) -> None:
    result = project.run(env={"MEMO_MODE": "replya"})
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = output(result)
    assert "'replya'" in text
    assert "MEMO_MODE" in text
    assert "valid modes are: auto, record, replay, off" in text
    assert "test_one" not in text  # no test ran, none failed one by one
    assert project.calls() == []
    # --memo-mode beats MEMO_MODE: the run is not refused for a variable it does not read.
    project.run("--memo-mode", "off", env={"MEMO_MODE": "replya"}).assert_outcomes(passed=2)


# -- unused recordings --------------------------------------------------------------------


def test_unused_recordings_listed_after_full_runs_only_and_pruned(project: Project) -> None:
    project.write("test_two.py", TWO_TESTS + """

def test_maybe_skipped():
    import os

    import pytest

    if os.environ.get("SKIP_IT") == "1":
        pytest.skip("asked to")
    assert os.environ.get("FAIL_IT") != "1"
""")
    project.write("conftest.py", """
import os


def pytest_collection_modifyitems(config, items):
    if os.environ.get("DESELECT_TWO") == "1":
        config.hook.pytest_deselected(items=[i for i in items if i.name == "test_two"])
        items[:] = [i for i in items if i.name != "test_two"]
""")
    project.write("test_extra.py", """
from lib import double


def test_three():
    assert double(3) == 6
""")
    result = project.run()
    result.assert_outcomes(passed=4)
    assert not unused_listed(result)
    [unused] = [e for e in project.entries() if e.arguments == {"x": 3}]
    (project.pytester.path / "test_extra.py").unlink()  # nothing uses double(3) any more
    listed = f"  fixtures_store/lib.double/{unused.path.name}  (lib.double)"

    result = project.run()
    result.assert_outcomes(passed=3)
    lines = summary(result)
    assert "1 recording(s) of exercised functions were not used by any test:" in lines
    assert listed in lines
    assert "Delete them with: python -m pytest --memo-prune-unused" in lines

    # Not a full run: -k, a node id, a file, a plugin deselecting (in the workers under xdist).
    for args, env in ((["-k", "one"], {}), (["test_two.py::test_one"], {}),
                      (["test_two.py"], {}), ([], {"DESELECT_TWO": "1"})):
        result = project.run(*args, env=env)
        assert result.ret == 0
        assert not unused_listed(result), (args, env)
    result = project.run(env={"FAIL_IT": "1"})
    result.assert_outcomes(passed=2, failed=1)
    assert not unused_listed(result)

    # A skipped test might have used it: listed, not pruned.
    result = project.run(".", "--memo-prune-unused", env={"SKIP_IT": "1"})
    result.assert_outcomes(passed=2, skipped=1)
    assert listed in summary(result)
    assert any(line.startswith("Not pruning: 1 test(s) were skipped") for line in summary(result))
    assert unused.path.exists()

    result = project.run("--memo-prune-unused")
    result.assert_outcomes(passed=3)
    assert "Deleted 1 unused recording(s)." in summary(result)
    assert not unused.path.exists()
    assert sorted(e.arguments["x"] for e in project.entries()) == [1, 2]
    assert Store(project.pytester.path / "fixtures_store").verify() == []


BLOBS = '''
import random

from lib import log
from memo_replay import recorded


@recorded
def blob(n: int) -> bytes:
    log(f"blob {n}")
    return random.Random(n).randbytes(100 * 1024)  # above 64 KiB: stored in a payload file
'''


def test_pruning_unused_recordings_removes_their_payload_files(project: Project) -> None:
    project.write("blobs.py", BLOBS)
    project.write("test_blobs.py", """
import random

from blobs import blob


def test_one():
    assert blob(1) == random.Random(1).randbytes(100 * 1024)


def test_two():
    assert blob(2) == random.Random(2).randbytes(100 * 1024)
""")
    project.write("test_extra.py", """
from blobs import blob


def test_three():
    assert len(blob(3)) == 100 * 1024
""")
    project.run("test_blobs.py", "test_extra.py").assert_outcomes(passed=3)
    directory = project.pytester.path / "fixtures_store" / "blobs.blob"
    entries = {e.arguments["n"]: e for e in project.entries() if e.function == "blobs.blob"}
    assert sorted(entries) == [1, 2, 3]
    payload_files = {n: directory / str(e.payload_file) for n, e in entries.items()}
    for n, path in payload_files.items():
        assert re.fullmatch(rf"{entries[n].key}\.[0-9a-f]{{16}}\.bin", path.name)
        assert path.is_file()
    kept = {path: path.read_bytes() for n, path in payload_files.items() if n != 3}
    kept.update({entries[n].path: entries[n].path.read_bytes() for n in (1, 2)})
    (project.pytester.path / "test_extra.py").unlink()  # nothing calls blob(3) any more

    result = project.run("--memo-prune-unused")
    result.assert_outcomes(passed=4)  # a full run: test_two.py and test_blobs.py
    lines = summary(result)
    assert f"  fixtures_store/blobs.blob/{entries[3].path.name}  (blobs.blob)" in lines
    assert "Deleted 1 unused recording(s)." in lines
    assert not entries[3].path.exists()
    assert not payload_files[3].exists()
    assert list(directory.glob(f"{entries[3].key}*")) == []  # no orphan left of it
    assert {path: path.read_bytes() for path in kept} == kept  # the used ones are untouched
    assert sorted(p.name for p in directory.iterdir()) == sorted(p.name for p in kept)
    assert Store(project.pytester.path / "fixtures_store").verify() == []

    result = project.run("--memo-mode", "replay")  # what was kept still replays
    result.assert_outcomes(passed=4)
    assert project.calls().count("blob 1") == project.calls().count("blob 2") == 1


# -- failure hygiene ----------------------------------------------------------------------


def test_failures_keep_recordings_and_exceptions_record_only_on_request(
        project: Project) -> None:
    project.write("test_hygiene.py", """
import pytest

from lib import QuotaError, boom, boom_recorded, double


def test_fails_after_recording():
    assert double(7) == 14
    raise AssertionError("the test fails after its recorded call")


def test_raises_not_recorded():
    with pytest.raises(QuotaError):
        boom(1)


def test_raises_recorded():
    with pytest.raises(QuotaError) as info:
        boom_recorded(1)
    assert type(info.value) is QuotaError
    assert str(info.value) == "quota exceeded for 1"
""")
    result = project.run("test_hygiene.py")
    result.assert_outcomes(passed=2, failed=1)
    assert project.calls() == ["boom 1", "boom_recorded 1", "double 7"]
    assert sorted(e.function for e in project.entries()) == ["lib.boom_recorded", "lib.double"]

    result = project.run("--memo-mode", "replay", "test_hygiene.py")
    result.assert_outcomes(passed=1, failed=2)
    text = result.stdout.str()
    assert "the test fails after its recorded call" in text  # double(7) replayed
    assert counts(result) == (2, 0, 1, 0)  # double and boom_recorded replayed; boom missed
    assert "- test_hygiene.py::test_raises_not_recorded: `lib.boom` (explained in its failure " \
        "above)" in summary(result)
    assert "ReplayMiss: memo_replay (replay mode): no recording of `lib.boom`" in text
    assert project.calls() == ["boom 1", "boom_recorded 1", "double 7"]  # nothing really ran


# -- concurrency --------------------------------------------------------------------------


def test_many_tests_recording_into_one_store_at_once(project: Project) -> None:
    project.write("test_many.py", """
import pytest

from lib import double, shared


@pytest.mark.parametrize("x", range(8))
def test_records(x):
    assert double(x) == 2 * x
    assert shared() == "shared"
""")
    result = project.run("test_many.py")
    result.assert_outcomes(passed=8)
    # Every call reaches the controller's summary; the shared key is recorded once.
    assert counts(result) == (7, 9, 0, 0)
    calls = Counter(project.calls())
    assert calls == Counter([f"double {x}" for x in range(8)] + ["shared"])
    store = Store(project.pytester.path / "fixtures_store")
    assert store.verify() == []
    assert Counter(e.function for e in store.entries()) == {"lib.double": 8, "lib.shared": 1}

    result = project.run("--memo-mode", "replay", "test_many.py")
    result.assert_outcomes(passed=8)
    assert counts(result) == (16, 0, 0, 0)
