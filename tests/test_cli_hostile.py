"""``memo-replay`` on a hostile store (issue 14, items 2, 8 and 10), as real processes.

A store changed in a pull request is untrusted input. Every test plants files the way such a
pull request would, then runs ``python -m memo_replay`` in the project directory and checks:

- **nothing runs** (item 2): no command imports a standard-library or installed module named by
  an entry, ``stats`` imports nothing at all, and ``--stale`` imports only project source files;
  sentinel files written on import must not appear;
- **nothing prints raw** (item 10): no escape sequence, BEL, CR, C1 control or bidi override from
  an entry reaches the terminal, and a function directory whose name is not UTF-8 prints as
  ``\\xNN`` on a strict UTF-8 stdout instead of raising ``UnicodeEncodeError``;
- **nothing crashes** (item 8): an entry nested 100,000 levels deep is reported as damaged (or
  skipped with a warning), never a ``RecursionError`` traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from memo_replay.store.layout import function_dir_name
from memo_replay.text import json_printable, printable

if TYPE_CHECKING:
    from conftest import Project

TOOLS = '''
from memo_replay import recorded


@recorded
def echo(text: str) -> str:
    return text
'''

# What must never reach a terminal: ESC (CSI colour, OSC window title ended by BEL), CR, a C1
# CSI, a right-to-left override.
HOSTILE = "\x1b[31mred\x1b]0;title\x07\r\x9b2J\u202eevil"
RAW = (b"\x1b", b"\x07", b"\r", "\x9b".encode(), "\u202e".encode())

EXIT_CODES = {0, 1, 2}
"""The documented exit codes (docs/cli.md): anything else is a crash."""


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def recorded(project: Project) -> Project:
    """A project with one genuine recording (``tools.echo("hi")``) to copy from."""
    project.write("tools.py", TOOLS)
    project.run("import tools; tools.echo('hi')", mode="auto")
    assert [e.function for e in project.store.entries()] == ["tools.echo"]
    return project


def genuine(project: Project) -> dict[str, Any]:
    """The document of the entry of ``tools.echo("hi")``."""
    for path in sorted((project.root / "fixtures_store" / "tools.echo").glob("*.json")):
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if document.get("arguments") == {"text": "hi"}:
            return document
    raise AssertionError("no recording of tools.echo('hi')")


def plant(project: Project, function: str, number: int, *,
          edit: Callable[[dict[str, Any]], None] | None = None) -> tuple[str, Path]:
    """A copy of the genuine entry claiming ``function``, in that function's directory, with
    its own key (``number`` as 32 hex digits): what a pull request can add."""
    document = genuine(project)
    key = f"{number:032x}"
    document["function"] = function
    document["key"] = key
    if edit is not None:
        edit(document)
    path = project.root / "fixtures_store" / function_dir_name(function) / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return key, path


def run_cli(project: Project, *args: str, strict: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """``python -m memo_replay ARGS`` in the project, output as bytes, stdout and stderr strict
    UTF-8 (as in a terminal that refuses what is not): an unencodable character would crash."""
    extra = {"PYTHONIOENCODING": "utf-8:strict"} if strict else {}
    result = subprocess.run([sys.executable, "-m", "memo_replay", *args], cwd=project.root,
                            env=project.env(None, {**extra, **(env or {})}),
                            capture_output=True, timeout=120)
    assert result.returncode in EXIT_CODES, _output(result)
    assert b"Traceback" not in result.stderr, _output(result)
    return result


def _output(result: subprocess.CompletedProcess[bytes]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout!r}\n--- stderr\n" \
           f"{result.stderr!r}"


def text(result: subprocess.CompletedProcess[bytes]) -> str:
    """stdout and stderr together, which must be valid UTF-8."""
    return result.stdout.decode("utf-8") + result.stderr.decode("utf-8")


def assert_no_raw_controls(result: subprocess.CompletedProcess[bytes]) -> None:
    for raw in RAW:
        assert raw not in result.stdout + result.stderr, (raw, _output(result))


# -- item 2: what is imported -----------------------------------------------------------------

ZEN = "Beautiful is better than ugly"


def sentinel_module(project: Project, relative: str, sentinel: Path) -> None:
    """A module that leaves ``sentinel`` behind when imported (and defines ``f``)."""
    project.write(relative, f"open({str(sentinel)!r}, 'w').write('imported')\n"
                            "def f(x):\n    return x\n")


def test_stats_imports_nothing(recorded: Project, tmp_path: Path) -> None:
    project = recorded
    sentinel = tmp_path / "evil-ran"
    sentinel_module(project, "evil.py", sentinel)
    for number, function in enumerate(("this.plain", "evil.f", "json.f", "pytest.f"), 1):
        plant(project, function, number)

    for args in (("stats",), ("stats", "--json"), ("ls",), ("ls", "--json"), ("verify",),
                 ("scan",), ("show", f"{2:032x}"), ("prune", "--orphans")):
        result = run_cli(project, *args)
        assert ZEN not in text(result), args
        assert not sentinel.exists(), args

    table = run_cli(project, "stats")
    assert table.returncode == 0
    assert "STALE" not in text(table)  # not checked, so not shown
    for function in ("this.plain", "evil.f", "json.f", "pytest.f", "tools.echo"):
        assert function in text(table)
    as_json = json.loads(run_cli(project, "stats", "--json").stdout)
    assert {f["stale"] for f in as_json["functions"].values()} == {None}


def test_stale_never_imports_stdlib_or_installed_modules(recorded: Project) -> None:
    project = recorded
    # `iniconfig/evil.py` in the project, but `import iniconfig` loads the installed package
    # (a regular package wins over a namespace directory): neither may be imported.
    project.write("iniconfig/evil.py", "raise SystemExit('iniconfig/evil.py was imported')\n")
    hostile = ("this.plain", "json.f", "pytest.f", "os.path.join", "__main__.f",
               "colorsys.f", "iniconfig.evil.f")
    paths = [plant(project, function, number)[1] for number, function in enumerate(hostile, 1)]

    listing = run_cli(project, "ls", "--stale")
    assert listing.returncode == 0
    output = text(listing)
    assert ZEN not in output
    assert listing.stdout.decode().strip().splitlines()[-1] == "0 recordings"
    stderr = listing.stderr.decode()
    assert "7 recordings not checked (never pruned)" in stderr
    for function in hostile:
        assert f"  {function} (1): " in stderr, function
    assert "`this` is a standard-library module" in stderr
    assert "`json` is a standard-library module" in stderr
    assert "`os` is a standard-library module" in stderr
    assert "`pytest` is imported from" in stderr
    assert "run as __main__" in stderr
    assert "`iniconfig` would be imported from" in stderr
    assert "was imported" not in stderr

    stats = run_cli(project, "stats", "--stale", "--json")
    functions = json.loads(stats.stdout)["functions"]
    assert {name: (f["stale"], f["unchecked"]) for name, f in functions.items()} == {
        **{name: (0, 1) for name in hostile}, "tools.echo": (0, 0)}
    assert ZEN not in text(stats)

    pruned = run_cli(project, "prune", "--stale", "--expired", "--yes")
    assert pruned.returncode == 0
    assert all(p.exists() for p in paths)

    # The same in one interpreter, asking it what it imported.
    probe = project.run(
        "import sys\nfrom memo_replay.cli import main\n"
        "assert main(['ls', '--stale']) == 0\nassert main(['stats', '--stale']) == 0\n"
        "print('IMPORTED', sorted(m for m in ('this', 'pytest', 'colorsys', 'iniconfig') "
        "if m in sys.modules))", mode=None)
    assert probe.stdout.splitlines()[-1] == "IMPORTED []", probe.stdout + probe.stderr
    assert ZEN not in probe.stdout + probe.stderr


def test_stale_imports_only_project_source_files(recorded: Project, tmp_path: Path) -> None:
    project = recorded
    outside = tmp_path / "outside"
    outside.mkdir()
    sentinels: dict[str, Path] = {}

    def planted_module(function: str, relative: str | None) -> None:
        sentinel = tmp_path / f"ran-{function}"
        sentinels[function] = sentinel
        if relative is not None:
            sentinel_module(project, relative, sentinel)
        plant(project, function, len(sentinels))

    planted_module("venv.mod.f", "venv/mod.py")  # a virtual environment's file
    planted_module("node_modules.mod.f", "node_modules/mod.py")
    planted_module("fixtures_store.mod.f", "fixtures_store/mod.py")  # inside the store
    # a symlink to a file outside the project, and one to a file inside it
    sentinel_module(project, "../outside/far.py", tmp_path / "ran-linked.f")
    (project.root / "linked.py").symlink_to(outside / "far.py")
    planted_module("linked.f", None)
    sentinels["linked.f"] = tmp_path / "ran-linked.f"
    sentinel_module(project, "real.py", tmp_path / "ran-alias.f")
    (project.root / "alias.py").symlink_to(project.root / "real.py")
    planted_module("alias.f", None)
    sentinels["alias.f"] = tmp_path / "ran-alias.f"
    # a package directory that is a symlink into a hidden directory
    sentinel_module(project, ".hidden/pkg/__init__.py", tmp_path / "ran-hiddenpkg.f")
    (project.root / "hiddenpkg").symlink_to(project.root / ".hidden" / "pkg")
    planted_module("hiddenpkg.f", None)
    sentinels["hiddenpkg.f"] = tmp_path / "ran-hiddenpkg.f"
    # a module importable from elsewhere on PYTHONPATH, not the project
    (outside / "elsewhere.py").write_text(
        f"open({str(tmp_path / 'ran-elsewhere.f')!r}, 'w').write('imported')\n")
    planted_module("elsewhere.f", None)
    sentinels["elsewhere.f"] = tmp_path / "ran-elsewhere.f"

    env = {"PYTHONPATH": os.pathsep.join([str(project.root), str(outside)])}
    for args in (("ls", "--stale"), ("stats", "--stale"), ("prune", "--stale", "--expired",
                                                          "--yes")):
        result = run_cli(project, *args, env=env)
        assert result.returncode == 0, _output(result)
        ran = sorted(f for f, s in sentinels.items() if s.exists())
        assert ran == [], (args, ran, _output(result))
        if args[0] != "prune":  # prune keeps them silently; ls and stats say why
            stderr = result.stderr.decode()
            for function in sentinels:
                assert f"  {function} (1): " in stderr, (function, stderr)
    assert {e.function for e in project.store.entries()} == {*sentinels, "tools.echo"}


def test_stale_still_checks_project_modules(recorded: Project) -> None:
    """The refusals leave the real work intact: a project module (and a ``src/`` layout's) is
    imported and its edited function found stale."""
    project = recorded
    project.write("src/srcpkg/__init__.py", "")
    project.write("src/srcpkg/calc.py", '''
        from memo_replay import recorded


        @recorded
        def double(x: int) -> int:
            return 2 * x
    ''')
    env = {"PYTHONPATH": os.pathsep.join([str(project.root), str(project.root / "src")])}
    project.run("import srcpkg.calc; srcpkg.calc.double(2)", mode="auto", env=env)
    assert json.loads(run_cli(project, "ls", "--stale", "--json").stdout) == []

    project.replace("tools.py", "return text", "return text + ''")
    project.replace("src/srcpkg/calc.py", "return 2 * x", "return x + x")
    for extra in ({}, env):  # src/ found with and without it on PYTHONPATH
        stale = json.loads(run_cli(project, "ls", "--stale", "--json", env=extra).stdout)
        assert sorted(item["function"] for item in stale) == ["srcpkg.calc.double",
                                                              "tools.echo"]


# -- item 10: what is printed -----------------------------------------------------------------


def test_non_utf8_function_directory(recorded: Project) -> None:
    project = recorded
    store = project.root / "fixtures_store"
    (entry,) = (store / "tools.echo").glob("*.json")
    directory = os.path.join(os.fsencode(store), b"m\xff.f")
    os.mkdir(directory)
    misplaced = os.path.join(directory, os.fsencode(entry.name))
    with open(misplaced, "wb") as fh:
        fh.write(entry.read_bytes())
    orphan = os.path.join(directory, b"." + os.fsencode(entry.stem) + b".abc123.tmp")
    with open(orphan, "wb") as fh:
        fh.write(b'{"half": ')
    hours_ago = time.time() - 7200
    os.utime(orphan, (hours_ago, hours_ago))
    escaped = "m\\xff.f"

    verify = run_cli(project, "verify")
    assert verify.returncode == 1
    assert escaped in text(verify)
    assert "misplaced" in text(verify)
    problems = json.loads(run_cli(project, "verify", "--json").stdout)
    assert {os.fsencode(p["path"]) for p in problems} == {misplaced, orphan}

    dry = run_cli(project, "prune", "--orphans")
    assert dry.returncode == 1
    assert f"{escaped}/.{entry.stem}.abc123.tmp" in text(dry)
    listed = json.loads(run_cli(project, "prune", "--orphans", "--json").stdout)
    assert [os.fsencode(f["path"]) for f in listed["files"]] == [orphan]
    removed = run_cli(project, "prune", "--orphans", "--yes")
    assert removed.returncode == 0
    assert not os.path.exists(orphan)

    for args in (("ls",), ("ls", "--json"), ("stats",), ("stats", "--json"), ("scan",),
                 ("ls", "--stale"), ("stats", "--stale")):
        result = run_cli(project, *args)
        assert result.returncode == 0, (args, _output(result))
    shown = [run_cli(project, "show", entry.stem)]  # the key is in two directories: ambiguous
    assert shown[0].returncode == 1
    os.unlink(os.path.join(os.fsencode(store), b"tools.echo", os.fsencode(entry.name)))
    show = run_cli(project, "show", entry.stem)
    assert show.returncode == 0
    assert f"{escaped}/{entry.name}" in text(show)
    as_json = json.loads(run_cli(project, "show", entry.stem, "--json").stdout)
    assert os.fsencode(as_json["path"]) == misplaced


def test_escape_sequences_in_entry_fields(recorded: Project) -> None:
    project = recorded
    project.run(f"import tools; tools.echo({HOSTILE!r})", mode="auto")
    (real,) = [e for e in project.store.entries() if e.arguments["text"] == HOSTILE]

    def hostile_fields(document: dict[str, Any]) -> None:
        document["arguments"] = {"name" + HOSTILE: HOSTILE}

    def hostile_type(document: dict[str, Any]) -> None:
        document["result"]["type"] = HOSTILE

    key, _ = plant(project, "tools.echo" + HOSTILE, 1, edit=hostile_fields)
    typed, _ = plant(project, "tools.echo", 2, edit=hostile_type)
    runs = {args: run_cli(project, *args) for args in (
        ("ls",), ("ls", "--json"), ("show", real.key), ("show", real.key, "--json"),
        ("show", key), ("show", key, "--json"), ("show", typed), ("show", typed, "--json"),
        ("stats",), ("stats", "--json"), ("stats", "--stale"), ("verify",), ("verify", "--json"),
        ("scan",), ("diff", real.key, key), ("diff", real.key, key, "--json"), ("ls", "--stale"),
        ("prune", "--stale"))}
    for args, result in runs.items():
        assert_no_raw_controls(result)
        assert result.returncode != 2 or args[0] == "diff", (args, _output(result))
    assert printable(HOSTILE) in text(runs["show", typed])  # shown, or quoted as damaged

    escaped = printable(HOSTILE)
    assert escaped == "\\x1b[31mred\\x1b]0;title\\x07\\x0d\\x9b2J\\u202eevil"
    assert f"tools.echo{escaped}" in text(runs["ls",])
    shown = text(runs["show", key])
    assert f"function     tools.echo{escaped}" in shown
    assert f"  name{escaped} = " in shown
    payload = text(runs["show", real.key])
    assert "payload\n  \\x1b[31mred\\x1b]0;title\\x07" in payload  # \r ends the line
    assert f"tools.echo{escaped}" in text(runs["stats",])
    assert f"tools.echo{escaped}" in runs["ls", "--stale"].stderr.decode()  # not checked

    # JSON stays JSON, and holds the exact strings
    listing = json.loads(runs["ls", "--json"].stdout)
    assert {item["function"] for item in listing} == {"tools.echo", "tools.echo" + HOSTILE}
    planted = next(item for item in listing if item["key"] == key)
    assert planted["arguments"] == {"name" + HOSTILE: HOSTILE}
    assert json.loads(runs["show", real.key, "--json"].stdout)["payload"] == HOSTILE
    assert "tools.echo" + HOSTILE in json.loads(runs["stats", "--json"].stdout)["functions"]


def test_errors_and_warnings_are_escaped(recorded: Project) -> None:
    """What the store says on stderr about a damaged entry (its path, its reason) is escaped
    too: here a function directory named with escape sequences holds a truncated entry."""
    project = recorded
    directory = project.root / "fixtures_store" / ("x" + HOSTILE + ".f")
    directory.mkdir()
    key = f"{1:032x}"
    (directory / f"{key}.json").write_text('{"format": 1, "key": ')
    for args in (("show", key), ("ls",), ("ls", "--json"), ("verify",), ("verify", "--json"),
                 ("diff", key, key), ("stats",), ("scan",), ("prune", "--orphans")):
        result = run_cli(project, *args)
        assert_no_raw_controls(result)
    show = run_cli(project, "show", key)
    assert show.returncode == 1
    assert f"x{printable(HOSTILE)}.f/{key}.json" in show.stderr.decode()
    assert f"x{printable(HOSTILE)}.f/{key}.json" in run_cli(project, "ls").stderr.decode()
    assert f"x{printable(HOSTILE)}.f/{key}.json" in run_cli(project, "verify").stdout.decode()


# -- item 8: nesting --------------------------------------------------------------------------


def test_deeply_nested_entry_is_damaged_not_a_crash(recorded: Project) -> None:
    project = recorded
    store = project.root / "fixtures_store"
    document = genuine(project)
    nested = store / "tools.echo" / f"{1:032x}.json"
    nested.write_text("[" * 100_000)
    deep_argument = store / "tools.echo" / f"{2:032x}.json"
    document["key"] = f"{2:032x}"
    deep_argument.write_text(json.dumps(document).replace('"hi"', "[" * 100_000 + "]" * 100_000,
                                                          1))
    damaged = {f"{1:032x}", f"{2:032x}"}

    verify = run_cli(project, "verify")
    assert verify.returncode == 1
    assert text(verify).count("nested too deeply") == 2
    problems = json.loads(run_cli(project, "verify", "--json").stdout)
    assert {Path(p["path"]).stem for p in problems} == damaged
    assert {p["kind"] for p in problems} == {"corrupt"}

    for key in damaged:
        show = run_cli(project, "show", key)
        assert show.returncode == 1
        assert "nested too deeply" in show.stderr.decode()
        assert show.stdout == b""
        assert run_cli(project, "show", key, "--json").returncode == 1
        assert run_cli(project, "diff", key, key).returncode == 2

    for args in (("ls",), ("ls", "--json"), ("ls", "--stale")):
        listing = run_cli(project, *args)
        assert listing.returncode == 0
        assert "nested too deeply" in listing.stderr.decode()  # skipped, with a warning
    assert [item["function"] for item in json.loads(run_cli(project, "ls", "--json").stdout)] \
        == ["tools.echo"]

    stats = run_cli(project, "stats")
    assert stats.returncode == 0
    assert "2 damaged (run `memo-replay verify`)" in text(stats)
    assert json.loads(run_cli(project, "stats", "--json").stdout)["problems"] == 2

    scan = run_cli(project, "scan")
    assert scan.returncode == 0
    assert text(scan).count("nested too deeply") == 2  # scanned as raw text, said so
    assert "no secret-shaped strings" in text(scan)

    # a damaged entry holding a key is still a leak
    nested.write_text("[" * 100_000 + '"sk-ant-' + "a" * 30 + '"')
    leak = run_cli(project, "scan")
    assert leak.returncode == 1
    assert "the damaged entry contains an OpenAI/Anthropic-style API key" in text(leak)
    assert run_cli(project, "prune", "--stale", "--expired").returncode == 0


def test_too_deep_to_print_or_scan(recorded: Project, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """An entry that parses but is too deep to walk (how deep depends on the stack) is a
    problem for ``show`` and raw text for ``scan``, not a traceback."""
    from memo_replay import cli, secrets

    def too_deep(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    project = recorded
    key = genuine(project)["key"]
    store = str(project.root / "fixtures_store")
    monkeypatch.setattr(secrets.Scanner, "scan", too_deep)
    monkeypatch.setattr(cli, "_show_entry", too_deep)
    assert cli.main(["scan", "--store", store]) == 0
    assert cli.main(["show", key, "--store", store]) == 1
    err = capsys.readouterr().err
    assert "nested too deeply to scan field by field; scanned as raw text" in err
    assert f"recording '{key}' is nested too deeply to show" in err


@pytest.mark.parametrize("depth", [500, 900, 970, 990])
def test_nesting_near_the_limit(recorded: Project, depth: int) -> None:
    """Around the depth where parsing gives up, an entry either reads (and prints) or is
    damaged: never a traceback."""
    project = recorded
    document = genuine(project)
    document["key"] = f"{1:032x}"
    path = project.root / "fixtures_store" / "tools.echo" / f"{1:032x}.json"
    path.write_text(json.dumps(document).replace('"hi"', "[" * depth + "]" * depth, 1))
    for args in (("ls",), ("show", f"{1:032x}"), ("show", f"{1:032x}", "--json"), ("scan",),
                 ("verify",)):
        result = run_cli(project, *args)
        assert result.returncode in (0, 1), (args, _output(result))


# -- the escaping helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain text, é, 漢字, emoji 🎉", "plain text, é, 漢字, emoji 🎉"),
    ("\x1b[31m", "\\x1b[31m"),
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
    ("a\rb\nc\td\x00", "a\\x0db\\x0ac\\x09d\\x00"),
    ("\x7f\x85\x9b", "\\x7f\\x85\\x9b"),
    ("\u202eabc\u2066\u200b\u2028\ufeff", "\\u202eabc\\u2066\\u200b\\u2028\\ufeff"),
    ("m\udcff.f", "m\\xff.f"),  # a non-UTF-8 byte of a file name (surrogateescape)
    ("lone \ud800", "lone \\ud800"),
    ("tag \U000e0041", "tag \\U000e0041"),
])
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    printable(raw).encode("utf-8", errors="strict")


def test_json_printable_is_the_same_json() -> None:
    value = {"k\udcff": ["\x1b[31m", "\x9b\u202e\U000e0041", "é\n漢"], "n": 1}
    dumped = json.dumps(value, indent=2, ensure_ascii=False)
    safe = json_printable(dumped)
    assert json.loads(safe) == value
    safe.encode("utf-8", errors="strict")
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")
                   for c in safe if c != "\n")


def _unicode_categories() -> Iterator[str]:
    for code in range(0x110000):
        char = chr(code)
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            yield char


def test_printable_covers_this_pythons_unicode_database() -> None:
    """The character class in memo_replay/text.py is written out; a newer Unicode database
    with new format characters must make this fail (then add them)."""
    missed = [f"U+{ord(c):04X}" for c in _unicode_categories() if printable(c) == c]
    assert missed == []
