"""``Store.audit()/stale()/expired()/prune()`` on real projects: stale, gone, unchecked, expired.

Recordings are made by fresh interpreters inside a throwaway project (``project.run``, mode set
explicitly); the audit itself runs in this process, as a user calling the Python API would. It
imports the project's modules, so every audit starts from a clean slate: the project's modules
are dropped from ``sys.modules`` first (the tests edit them between audits), and the
``in_process`` fixture restores ``sys.path``/``sys.modules`` and writes no bytecode (a ``.pyc``
written here could outlive an edit made within the same second).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from memo_replay import Store
from memo_replay.audit import Audit, Finding
from memo_replay.store.entry import timestamp

if TYPE_CHECKING:
    from conftest import Project

TOOLS = '''
from memo_replay import recorded


def shout(text: str) -> str:
    return text.upper()


@recorded
def greet(name: str) -> str:
    return shout(f"hello {name}")


@recorded
def square(x: int) -> int:
    return x * x


@recorded
def untouched(x: int) -> int:
    return x + 1
'''

PKG_MOD = '''
from memo_replay import recorded


@recorded
def cube(x: int) -> int:
    return x ** 3
'''

RECORD = """
import audit_tools
import audit_pkg.mod
audit_tools.greet("ada")
audit_tools.greet("bob")
audit_tools.square(3)
audit_tools.untouched(1)
audit_pkg.mod.cube(2)
"""

FUNCTIONS = ("audit_tools.greet", "audit_tools.square", "audit_tools.untouched",
             "audit_pkg.mod.cube")


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo what auditing does to this interpreter: sys.path entries and imported modules."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def fresh(project: Project) -> Store:
    """The project's store, its modules forgotten: the next audit sees the code on disk now."""
    root = project.root.resolve()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(root):
            del sys.modules[name]
    importlib.invalidate_caches()
    return project.store


def audit(project: Project) -> Audit:
    return fresh(project).audit()


def paths(findings: list[Finding]) -> set[Path]:
    return {f.path for f in findings}


def entries_of(store: Store, *functions: str) -> set[Path]:
    return {e.path for f in functions for e in store.entries(f)}


def all_entries(store: Store) -> set[Path]:
    return {e.path for e in store.entries()}


def backdate(path: Path, age: dt.timedelta) -> None:
    """Move an entry's ``recorded_at`` (a volatile field, outside the checksum) into the past."""
    document = json.loads(path.read_text(encoding="utf-8"))
    when = (dt.datetime.now(dt.timezone.utc) - age).replace(microsecond=0)
    document["recorded_at"] = timestamp(when)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@pytest.fixture
def recorded_project(project: Project) -> Project:
    """Five recordings of four functions: three in a module, one in a package module."""
    project.write("audit_tools.py", TOOLS)
    project.write("audit_pkg/__init__.py", "")
    project.write("audit_pkg/mod.py", PKG_MOD)
    project.run(RECORD, mode="auto")
    store = project.store
    assert sorted(e.function for e in store.entries()) == sorted(
        ["audit_tools.greet", "audit_tools.greet", "audit_tools.square",
         "audit_tools.untouched", "audit_pkg.mod.cube"])
    assert store.verify() == []
    return project


# -- stale ------------------------------------------------------------------------------------


def test_untouched_project_has_no_findings(recorded_project: Project) -> None:
    report = audit(recorded_project)
    assert report == Audit()
    store = recorded_project.store
    assert store.prune(stale=True, expired=True, orphans=True) == []
    assert store.prune(stale=True, expired=True, orphans=True, dry_run=False) == []
    assert len(all_entries(store)) == 5


def test_body_edit_makes_exactly_that_functions_entries_stale(recorded_project: Project) -> None:
    project, store = recorded_project, recorded_project.store
    project.replace("audit_tools.py", "return x * x", "return x * x + 0")
    report = audit(project)
    assert paths(report.stale) == entries_of(store, "audit_tools.square")
    (finding,) = report.stale
    assert finding.reason == "stale"
    assert finding.function == "audit_tools.square"
    assert "`audit_tools.square`" in finding.detail
    assert "changed" in finding.detail
    assert finding.key == finding.path.stem
    assert report.expired == report.unchecked == []
    assert paths(store.stale()) == paths(report.stale)

    # the package module's function too, and nothing else
    project.replace("audit_pkg/mod.py", "return x ** 3", "return x * x * x")
    report = audit(project)
    assert paths(report.stale) == entries_of(store, "audit_tools.square", "audit_pkg.mod.cube")
    cube = next(f for f in report.stale if f.function == "audit_pkg.mod.cube")
    assert cube.reason == "stale"
    assert "`audit_pkg.mod.cube`" in cube.detail
    untouched = entries_of(store, "audit_tools.greet", "audit_tools.untouched")
    assert not paths(report.stale) & untouched


def test_helper_edit_makes_the_caller_stale(recorded_project: Project) -> None:
    project, store = recorded_project, recorded_project.store
    project.replace("audit_tools.py", "return text.upper()", "return text.upper() + '!'")
    report = audit(project)
    assert paths(report.stale) == entries_of(store, "audit_tools.greet")
    assert len(report.stale) == 2
    assert {f.reason for f in report.stale} == {"stale"}
    assert all("`audit_tools.greet`" in f.detail for f in report.stale)


def test_prune_stale_is_a_dry_run_by_default(recorded_project: Project) -> None:
    project, store = recorded_project, recorded_project.store
    project.replace("audit_tools.py", "return x + 1", "return 1 + x")
    edited = entries_of(store, "audit_tools.untouched")
    listed = store.prune(stale=True)
    assert paths(listed) == edited
    assert all(p.exists() for p in edited)

    removed = store.prune(stale=True, dry_run=False)
    assert paths(removed) == edited
    assert not any(p.exists() for p in edited)
    assert len(all_entries(store)) == 4
    assert audit(project) == Audit()
    assert store.verify() == []


def test_rerecording_after_prune_gives_a_clean_audit(recorded_project: Project) -> None:
    project, store = recorded_project, recorded_project.store
    project.replace("audit_tools.py", "return x * x", "return x * x + 0")
    store.prune(stale=True, dry_run=False)
    project.run("import audit_tools; audit_tools.square(3)", mode="auto")
    assert audit(project) == Audit()
    assert len(all_entries(store)) == 5


# -- gone -------------------------------------------------------------------------------------


def _delete_function(project: Project) -> None:
    project.replace("audit_tools.py", "@recorded\ndef square(x: int) -> int:\n"
                    "    return x * x\n", "")


def _undecorate(project: Project) -> None:
    project.replace("audit_tools.py", "@recorded\ndef square", "def square")


def _delete_package_module(project: Project) -> None:
    (project.root / "audit_pkg" / "mod.py").unlink()


@pytest.mark.parametrize(("edit", "function", "detail"), [
    pytest.param(_delete_function, "audit_tools.square", "`audit_tools` no longer defines "
                 "`square`", id="function-deleted"),
    pytest.param(_undecorate, "audit_tools.square", "`audit_tools.square` is no longer "
                 "@recorded", id="decorator-removed"),
    pytest.param(_delete_package_module, "audit_pkg.mod.cube", "`audit_pkg` no longer defines "
                 "`mod.cube`", id="package-module-deleted"),
])
def test_gone_functions_are_stale_and_pruned(recorded_project: Project,
                                             edit: Callable[[Project], None], function: str,
                                             detail: str) -> None:
    project, store = recorded_project, recorded_project.store
    doomed = entries_of(store, function)
    assert len(doomed) == 1
    edit(project)
    report = audit(project)
    assert paths(report.stale) == doomed
    (finding,) = report.stale
    assert finding.reason == "gone"
    assert finding.function == function
    assert finding.detail == detail
    assert report.unchecked == []

    assert paths(store.prune(stale=True, dry_run=False)) == doomed
    assert not any(p.exists() for p in doomed)
    assert len(all_entries(store)) == 4
    assert audit(project) == Audit()


# -- unchecked: never pruned ------------------------------------------------------------------

SUBJECT = '''
from memo_replay import recorded


@recorded
def subject(x: int) -> int:
    return x - 1


def outer(x: int) -> int:
    @recorded
    def inner(y: int) -> int:
        return y * 10

    return inner(x)
'''

HEALTHY = '''
from memo_replay import recorded


@recorded
def healthy(x: int) -> int:
    return x + 100
'''


def _missing_dependency(project: Project) -> None:
    project.write("audit_subject.py", "import not_installed_dependency\n" + SUBJECT)


def _syntax_error(project: Project) -> None:
    project.write("audit_subject.py", SUBJECT + "\ndef broken(:\n    pass\n")


def _module_deleted(project: Project) -> None:
    (project.root / "audit_subject.py").unlink()


def _exits_on_import(project: Project) -> None:
    project.write("audit_subject.py", "import sys\nsys.exit(3)\n" + SUBJECT)


def _raises_on_import(project: Project) -> None:
    project.write("audit_subject.py", SUBJECT + "\nraise RuntimeError('no config file')\n")


@pytest.mark.parametrize(("edit", "detail"), [
    pytest.param(_missing_dependency, "not_installed_dependency", id="missing-dependency"),
    pytest.param(_syntax_error, "SyntaxError", id="syntax-error"),
    pytest.param(_raises_on_import, "RuntimeError: no config file", id="raises-on-import"),
    pytest.param(_exits_on_import, "SystemExit", id="sys-exit-on-import"),
    pytest.param(_module_deleted, "no module of `audit_subject.subject` can be imported",
                 id="top-level-module-deleted"),
])
def test_entries_that_cannot_be_checked_are_never_pruned(
        project: Project, edit: Callable[[Project], None], detail: str) -> None:
    # A project ttl, and every entry older than it: only the healthy one may be pruned.
    project.write("pyproject.toml", '[project]\nname = "proj"\nversion = "0"\n\n'
                  '[tool.memo_replay]\nttl = "1d"\n')
    project.write("audit_subject.py", SUBJECT)
    project.write("audit_healthy.py", HEALTHY)
    project.run("import audit_subject, audit_healthy\n"
                "audit_subject.subject(1); audit_subject.outer(2); audit_healthy.healthy(3)",
                mode="auto")
    store = project.store
    subject = entries_of(store, "audit_subject.subject")
    inner = entries_of(store, "audit_subject.outer.<locals>.inner")
    healthy = entries_of(store, "audit_healthy.healthy")
    assert len(subject) == len(inner) == len(healthy) == 1

    # defined inside a function: unchecked from the start
    report = audit(project)
    assert report.stale == report.expired == []
    (locals_finding,) = report.unchecked
    assert locals_finding.path in inner
    assert locals_finding.reason == "unchecked"
    assert "inside a function" in locals_finding.detail

    edit(project)
    for path in subject | inner | healthy:
        backdate(path, dt.timedelta(days=3))
    assert store.verify() == []
    report = audit(project)
    assert report.stale == []
    assert paths(report.unchecked) == subject | inner
    finding = next(f for f in report.unchecked if f.path in subject)
    assert finding.reason == "unchecked"
    assert finding.function == "audit_subject.subject"
    assert detail in finding.detail
    assert paths(report.expired) == healthy

    pruned = store.prune(stale=True, expired=True, orphans=True, dry_run=False)
    assert paths(pruned) == healthy
    assert all(p.exists() for p in subject | inner)
    assert all_entries(store) == subject | inner


def test_method_of_a_class_resolves(project: Project) -> None:
    project.write("audit_methods.py", '''
        from memo_replay import recorded


        class Client:
            @staticmethod
            @recorded
            def parse(x: int) -> int:
                return -x
    ''')
    project.run("import audit_methods; audit_methods.Client.parse(1)", mode="auto")
    store = project.store
    assert [e.function for e in store.entries()] == ["audit_methods.Client.parse"]
    assert audit(project) == Audit()
    project.replace("audit_methods.py", "return -x", "return 0 - x")
    report = audit(project)
    assert [(f.function, f.reason) for f in report.stale] == [("audit_methods.Client.parse",
                                                              "stale")]


# -- expired ----------------------------------------------------------------------------------

TTL_TOOLS = '''
from memo_replay import recorded


@recorded
def daily(x: int) -> int:
    return x


@recorded(ttl=3600)
def hourly(x: int) -> int:
    return -x
'''


def test_expired_by_project_ttl_and_function_ttl(project: Project) -> None:
    project.write("pyproject.toml", '[project]\nname = "proj"\nversion = "0"\n\n'
                  '[tool.memo_replay]\nttl = "1d"\n')
    project.write("audit_ttl.py", TTL_TOOLS)
    record = "import audit_ttl\nfor n in (1, 2, 3):\n    audit_ttl.daily(n); audit_ttl.hourly(n)"
    project.run(record, mode="auto")
    store = project.store
    by_call = {(e.function.rsplit(".", 1)[1], e.arguments["x"]): e.path for e in store.entries()}
    assert len(by_call) == 6
    backdate(by_call["daily", 1], dt.timedelta(days=2))  # past the project's 1d
    backdate(by_call["daily", 2], dt.timedelta(hours=2))  # within it
    backdate(by_call["hourly", 1], dt.timedelta(hours=2))  # past its own 3600 s
    backdate(by_call["hourly", 2], dt.timedelta(minutes=10))  # within it
    assert store.verify() == []

    report = audit(project)
    expected = {by_call["daily", 1], by_call["hourly", 1]}
    assert paths(report.expired) == expected
    assert report.stale == report.unchecked == []
    assert {f.reason for f in report.expired} == {"expired"}
    daily = next(f for f in report.expired if f.function == "audit_ttl.daily")
    assert "ttl 1 days" in daily.detail
    assert daily.key == by_call["daily", 1].stem
    assert paths(store.expired()) == expected

    # stale and expired at once: listed once
    project.replace("audit_ttl.py", "return x\n", "return x + 0\n")
    both = fresh(project).prune(stale=True, expired=True)
    assert len(both) == len(paths(both))
    assert paths(both) == {by_call["daily", n] for n in (1, 2, 3)} | {by_call["hourly", 1]}
    project.replace("audit_ttl.py", "return x + 0\n", "return x\n")

    assert paths(audit(project).expired) == expected
    assert all(p.exists() for p in expected)
    assert paths(fresh(project).prune(expired=True, dry_run=False)) == expected
    assert not any(p.exists() for p in expected)
    assert all_entries(store) == set(by_call.values()) - expected
    assert audit(project) == Audit()


def test_nothing_expires_without_a_ttl(project: Project) -> None:
    project.write("audit_ttl.py", TTL_TOOLS.replace("@recorded(ttl=3600)", "@recorded"))
    project.run("import audit_ttl; audit_ttl.daily(1); audit_ttl.hourly(1)", mode="auto")
    store = project.store
    for entry in store.entries():
        backdate(entry.path, dt.timedelta(days=400))
    assert audit(project) == Audit()
    assert store.prune(expired=True, dry_run=False) == []
    assert len(all_entries(store)) == 2


# -- orphans ----------------------------------------------------------------------------------


def test_orphan_temp_files_are_pruned_only_when_asked(recorded_project: Project) -> None:
    store = recorded_project.store
    entry = next(store.entries("audit_tools.square"))
    orphan = entry.path.parent / f".{entry.key}.abc123.tmp"
    orphan.write_text('{"half": ')
    assert [p.kind for p in store.verify()] == ["orphan"]
    assert store.prune(orphans=True) == []  # younger than an hour: maybe a write in flight

    hours_ago = time.time() - 2 * 3600
    os.utime(orphan, (hours_ago, hours_ago))
    assert store.prune(stale=True, expired=True) == []
    listed = store.prune(orphans=True)
    assert [(f.path, f.reason) for f in listed] == [(orphan, "orphan")]
    assert orphan.exists()
    assert store.prune(orphans=True, dry_run=False) == listed
    assert not orphan.exists()
    assert store.verify() == []
    assert len(all_entries(store)) == 5


# -- a hostile store: what auditing refuses to import (issue 14, item 2) ----------------------


def plant(project: Project, function: str, number: int) -> Path:
    """A copy of a real entry claiming ``function`` (what a pull request can add)."""
    from memo_replay.store.layout import function_dir_name

    source = next(project.store.entries("audit_tools.square")).path
    document = json.loads(source.read_text(encoding="utf-8"))
    document["function"] = function
    document["key"] = f"{number:032x}"
    path = project.root / "fixtures_store" / function_dir_name(function) / f"{number:032x}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


@pytest.mark.parametrize(("function", "detail"), [
    pytest.param("this.plain", "`this` is a standard-library module", id="stdlib-zen"),
    pytest.param("json.f", "`json` is a standard-library module", id="stdlib-imported"),
    pytest.param("os.path.join", "`os` is a standard-library module", id="stdlib-function"),
    pytest.param("colorsys.f", "`colorsys` is a standard-library module", id="stdlib-unloaded"),
    pytest.param("pytest.f", "`pytest` is already imported from outside the project",
                 id="installed-imported"),
    pytest.param("iniconfig.f", "`iniconfig` is", id="installed"),
    pytest.param("__main__.f", "run as __main__", id="main"),
    pytest.param("audit tools.f", "is not a `module.qualname`", id="not-a-name"),
    pytest.param("audit_tools..square", "is not a `module.qualname`", id="empty-part"),
])
def test_modules_named_by_a_recording_are_never_imported(
        recorded_project: Project, capsys: pytest.CaptureFixture[str], function: str,
        detail: str) -> None:
    # A project ttl every entry is past: a checked entry would be expired, an unchecked one not.
    project = recorded_project
    project.write("pyproject.toml", '[project]\nname = "proj"\nversion = "0"\n\n'
                  '[tool.memo_replay]\nttl = "1d"\n')
    from memo_replay.project import project_config

    project_config.cache_clear()
    planted = plant(project, function, 1)
    backdate(planted, dt.timedelta(days=3))
    loaded = set(sys.modules)

    report = audit(project)
    (finding,) = report.unchecked
    assert (finding.path, finding.reason, finding.function) == (planted, "unchecked", function)
    assert detail in finding.detail
    assert planted not in paths(report.stale) | paths(report.expired)
    assert "Zen of Python" not in capsys.readouterr().err
    assert not {"this", "colorsys", "iniconfig"} & (set(sys.modules) - loaded)
    assert planted not in paths(project.store.prune(stale=True, expired=True, dry_run=False))
    assert planted.exists()


def test_project_files_that_are_not_source_are_never_imported(
        recorded_project: Project, tmp_path: Path) -> None:
    project = recorded_project
    sentinel = tmp_path / "imported"
    code = f"open({str(sentinel)!r}, 'a').write(__name__ + '\\n')\ndef f(x):\n    return x\n"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "far.py").write_text(code)
    planted = {
        # a file named like a module this process imported from site-packages
        "xxhash.f": "xxhash.py",
        "node_modules.mod.f": "node_modules/mod.py",
        "fixtures_store.mod.f": "fixtures_store/mod.py",  # the store is data, never code
        "dist.site_packages_file.f": None,
        "linked.f": None,  # a symlink to a file outside the project
        "alias.f": None,  # a symlink to a file inside it
    }
    for number, (function, relative) in enumerate(planted.items(), 1):
        if relative is not None:
            project.write(relative, code)
        plant(project, function, number)
    (project.root / "linked.py").symlink_to(outside / "far.py")
    project.write("real.py", code)
    (project.root / "alias.py").symlink_to(project.root / "real.py")
    project.write("dist/site-packages/__init__.py", code)
    project.write("dist/site_packages_file.py", code)
    (project.root / "dist" / "__init__.py").symlink_to(outside / "far.py")

    report = audit(project)
    assert not sentinel.exists(), sentinel.read_text()
    assert report.stale == report.expired == []
    assert {f.function for f in report.unchecked} == set(planted)
    xxhash = next(f for f in report.unchecked if f.function == "xxhash.f")
    assert "already imported from outside the project" in xxhash.detail
    assert all(p.exists() for p in paths(report.unchecked))


def test_a_module_outside_the_project_is_not_imported(
        recorded_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Importable (on ``sys.path``), but not a file of the project: not imported."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "elsewhere_mod.py").write_text("raise SystemExit('elsewhere_mod was imported')\n")
    monkeypatch.syspath_prepend(str(outside))
    plant(recorded_project, "elsewhere_mod.f", 1)
    (finding,) = audit(recorded_project).unchecked
    assert "`elsewhere_mod` is imported from" in finding.detail
    assert "elsewhere_mod" not in sys.modules


def test_a_refused_module_file_is_unchecked_not_gone(recorded_project: Project) -> None:
    """``audit_pkg/mod.py`` turned into a symlink: the package still imports, but its module is
    never imported through the link, so its entries are unchecked (kept), not gone (pruned)."""
    project, store = recorded_project, recorded_project.store
    cube = entries_of(store, "audit_pkg.mod.cube")
    module = project.root / "audit_pkg" / "mod.py"
    module.rename(project.root / "audit_pkg" / "mod_source.py")
    module.symlink_to(project.root / "audit_pkg" / "mod_source.py")

    report = audit(project)
    assert paths(report.unchecked) == cube
    (finding,) = report.unchecked
    assert "`audit_pkg.mod` would be" in finding.detail
    assert "a symlink (never followed)" in finding.detail
    assert report.stale == report.expired == []
    assert store.prune(stale=True, expired=True, dry_run=False) == []
    assert all(p.exists() for p in cube)
