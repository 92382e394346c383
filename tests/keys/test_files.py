"""Declared files in the key (memo_replay.keys.files): patterns, templates, content hashes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from memo_replay import InvalidOption, MissingDeclaredFile, recorded
from memo_replay.keys.files import DeclaredFiles, FileHasher

if TYPE_CHECKING:
    from conftest import Project

HOUR_NS = 3600 * 1_000_000_000


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def age(path: Path, by_ns: int = HOUR_NS) -> int:
    """Set the file's mtime in the past (outside the "racily clean" window); return it."""
    mtime = time.time_ns() - by_ns
    os.utime(path, ns=(mtime, mtime))
    return mtime


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write(root / "examples" / "router.dy", "route a -> b\n")
    write(root / "examples" / "greeter.dy", "greet hello\n")
    write(root / "examples" / "notes.txt", "not a .dy file\n")
    write(root / "examples" / "nested" / "deep.dy", "deep\n")
    write(root / "config.toml", "[x]\n")
    return root


def declared(root: Path, *patterns: str, parameters: tuple[str, ...] = ()) -> DeclaredFiles:
    return DeclaredFiles(list(patterns), function_id="mod.f", root=root, parameters=parameters)


# -- patterns and templates ----------------------------------------------------------------------


def test_glob_is_relative_to_the_root(root: Path) -> None:
    hashes = declared(root, "examples/*.dy").hashes({})
    assert list(hashes) == ["examples/greeter.dy", "examples/router.dy"]
    assert all(len(h) == 32 for h in hashes.values())


def test_recursive_glob_and_several_patterns(root: Path) -> None:
    hashes = declared(root, "examples/**/*.dy", "config.toml").hashes({})
    assert list(hashes) == ["config.toml", "examples/greeter.dy", "examples/nested/deep.dy",
                            "examples/router.dy"]


def test_directory_means_every_file_under_it(root: Path) -> None:
    hashes = declared(root, "examples").hashes({})
    assert list(hashes) == ["examples/greeter.dy", "examples/nested/deep.dy",
                            "examples/notes.txt", "examples/router.dy"]


def test_template_over_an_argument(root: Path) -> None:
    files = declared(root, "examples/{name}.dy", parameters=("name", "mode"))
    assert list(files.hashes({"name": "router", "mode": 1})) == ["examples/router.dy"]
    assert list(files.hashes({"name": "greeter", "mode": 1})) == ["examples/greeter.dy"]


def test_path_template_with_relative_absolute_and_path_values(root: Path) -> None:
    files = declared(root, "{path}", parameters=("path",))
    expected = {"examples/router.dy"}
    assert set(files.hashes({"path": "examples/router.dy"})) == expected
    assert set(files.hashes({"path": root / "examples" / "router.dy"})) == expected
    assert set(files.hashes({"path": str(root / "examples" / "router.dy")})) == expected


def test_list_argument_expands_to_each_item(root: Path) -> None:
    files = declared(root, "{paths}", parameters=("paths",))
    hashes = files.hashes({"paths": ["examples/router.dy", Path("examples/greeter.dy")]})
    assert list(hashes) == ["examples/greeter.dy", "examples/router.dy"]
    assert files.hashes({"paths": ("examples/greeter.dy", "examples/router.dy")}) == hashes


def test_file_outside_the_root_keeps_its_absolute_path(root: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "shared" / "glossary.txt", "terms\n")
    hashes = declared(root, "{path}", parameters=("path",)).hashes({"path": outside})
    assert list(hashes) == [outside.as_posix()]


def test_pattern_matching_nothing_is_an_error(root: Path) -> None:
    with pytest.raises(MissingDeclaredFile) as info:
        declared(root, "examples/*.json").hashes({})
    message = str(info.value)
    assert "`mod.f`" in message
    assert "examples/*.json" in message
    assert str(root) in message
    assert isinstance(info.value, FileNotFoundError)


def test_template_matching_nothing_names_pattern_and_value(root: Path) -> None:
    files = declared(root, "examples/{name}.dy", parameters=("name",))
    with pytest.raises(MissingDeclaredFile) as info:
        files.hashes({"name": "missing"})
    message = str(info.value)
    assert "`mod.f`" in message
    assert "examples/{name}.dy" in message
    assert "examples/missing.dy" in message


def test_empty_directory_is_an_error(root: Path) -> None:
    (root / "empty").mkdir()
    with pytest.raises(MissingDeclaredFile):
        declared(root, "empty").hashes({})


def test_template_field_that_is_not_a_parameter_is_rejected(root: Path) -> None:
    with pytest.raises(InvalidOption) as info:
        declared(root, "examples/{nmae}.dy", parameters=("name",))
    message = str(info.value)
    assert "{nmae}" in message
    assert "`mod.f`" in message
    assert "parameters are: name" in message


def test_decorator_rejects_an_unknown_template_field_at_decoration() -> None:
    def translate(name: str) -> str:
        return name

    with pytest.raises(InvalidOption) as info:
        recorded(files=["examples/{path}.dy"])(translate)
    assert "{path}" in str(info.value)
    assert "translate" in str(info.value)


# -- content -------------------------------------------------------------------------------------


def test_content_change_changes_the_hash(root: Path) -> None:
    files = declared(root, "examples/*.dy")
    before = files.hashes({})
    router = root / "examples" / "router.dy"
    router.write_text("route a -> c\n")
    after = files.hashes({})
    assert after["examples/router.dy"] != before["examples/router.dy"]
    assert after["examples/greeter.dy"] == before["examples/greeter.dy"]


def test_touch_without_change_keeps_the_hash(root: Path) -> None:
    files = declared(root, "examples/*.dy")
    router = root / "examples" / "router.dy"
    age(router, 2 * HOUR_NS)
    before = files.hashes({})
    age(router, HOUR_NS)  # a newer mtime, same content
    assert files.hashes({}) == before
    assert declared(root, "examples/*.dy").hashes({}) == before  # a fresh hasher agrees


def test_file_hash_does_not_depend_on_the_path(tmp_path: Path) -> None:
    a = write(tmp_path / "a" / "x.txt", "same\n")
    b = write(tmp_path / "b" / "y.txt", "same\n")
    hasher = FileHasher()
    assert hasher.digest(str(a)) == hasher.digest(str(b))


def test_hasher_reuses_the_hash_while_size_mtime_and_inode_are_unchanged(tmp_path: Path) -> None:
    path = write(tmp_path / "data.txt", "version-1\n")
    mtime = age(path)
    hasher = FileHasher()
    first = hasher.digest(str(path))
    # Rewrite in place (same inode) with content of the same size, then restore the mtime: the
    # signature is unchanged, so the cached hash is reused — the documented limit of the cache.
    with open(path, "r+b") as fh:
        fh.write(b"version-2\n")
    os.utime(path, ns=(mtime, mtime))
    assert hasher.digest(str(path)) == first
    assert FileHasher().digest(str(path)) != first  # the content did change


def test_hasher_detects_same_size_change_with_a_new_mtime(tmp_path: Path) -> None:
    path = write(tmp_path / "data.txt", "version-1\n")
    age(path, 2 * HOUR_NS)
    hasher = FileHasher()
    first = hasher.digest(str(path))
    with open(path, "r+b") as fh:  # same inode, same size
        fh.write(b"version-2\n")
    age(path, HOUR_NS)
    assert path.stat().st_size == len("version-1\n")
    assert hasher.digest(str(path)) != first
    assert hasher.digest(str(path)) == FileHasher().digest(str(path))


def test_hasher_detects_a_replaced_file(tmp_path: Path) -> None:
    path = write(tmp_path / "data.txt", "version-1\n")
    mtime = age(path)
    hasher = FileHasher()
    first = hasher.digest(str(path))
    replacement = write(tmp_path / "data.txt.tmp", "version-2\n")
    os.utime(replacement, ns=(mtime, mtime))
    os.replace(replacement, path)  # same size and mtime, another inode
    assert hasher.digest(str(path)) != first


def test_hasher_rehashes_racily_clean_files(tmp_path: Path) -> None:
    # A file whose mtime is not safely in the past is never trusted from the cache.
    path = write(tmp_path / "data.txt", "version-1\n")
    recent = time.time_ns() + HOUR_NS
    os.utime(path, ns=(recent, recent))
    hasher = FileHasher()
    first = hasher.digest(str(path))
    with open(path, "r+b") as fh:
        fh.write(b"version-2\n")
    os.utime(path, ns=(recent, recent))
    assert hasher.digest(str(path)) != first


# -- through @recorded ---------------------------------------------------------------------------

TRANSLATOR = '''
from memo_replay import recorded


@recorded(files=["{path}", "config/*.toml"])
def translate(path, target="fr"):
    with open(path) as fh:
        return target + ":" + fh.read()


@recorded(files=["examples/{name}.dy"])
def example(name):
    return name


@recorded(files=["examples/*.json"])
def nothing():
    return 0
'''


@pytest.fixture
def translator(project: Project) -> Project:
    project.write("app/translator.py", TRANSLATOR)
    project.write("app/__init__.py", "")
    project.write("config/main.toml", "[model]\nname = 'small'\n")
    project.write("examples/router.dy", "route a -> b\n")
    return project


_KEYS = '''
import json, pathlib
from app.translator import translate
print(json.dumps([translate.memo.key("examples/router.dy"),
                  translate.memo.key(pathlib.Path.cwd() / "examples" / "router.dy")]))
'''


def test_recorded_entry_stores_root_relative_paths(translator: Project) -> None:
    out = translator.run('''
        import json, pathlib
        from app.translator import translate
        translate(pathlib.Path.cwd() / "examples" / "router.dy")
        print(json.dumps([dict(e.files) for e in translate.memo.entries()]))
    ''').stdout
    (files,) = json.loads(out)
    assert set(files) == {"examples/router.dy", "config/main.toml"}
    raw = b"".join(p.read_bytes() for p in (translator.root / "fixtures_store").rglob("*.json"))
    assert str(translator.root).encode() not in raw


def test_key_follows_content_not_mtime(translator: Project) -> None:
    first = json.loads(translator.run(_KEYS).stdout)
    router = translator.root / "examples" / "router.dy"
    age(router)
    assert json.loads(translator.run(_KEYS).stdout) == first
    translator.replace("config/main.toml", "small", "large")
    changed = json.loads(translator.run(_KEYS).stdout)
    assert changed[0] != first[0]
    assert changed[1] != first[1]


def test_key_is_independent_of_the_checkout_path(translator: Project, tmp_path: Path) -> None:
    here = translator.run(_KEYS).stdout
    assert translator.copy_to(tmp_path / "other" / "checkout").run(_KEYS).stdout == here


def test_missing_file_at_call_time_names_function_and_pattern(translator: Project) -> None:
    result = translator.run("from app.translator import nothing; nothing()", check=False)
    assert result.returncode != 0
    assert "MissingDeclaredFile" in result.stderr
    assert "app.translator.nothing" in result.stderr
    assert "examples/*.json" in result.stderr
    assert not (translator.root / "fixtures_store" / "app.translator.nothing").exists()


def test_explain_names_the_changed_file(translator: Project) -> None:
    translator.run("from app.translator import example; example('router')")
    translator.replace("examples/router.dy", "a -> b", "a -> z")
    out = translator.run("from app.translator import example; "
                         "print(example.memo.explain('router'))").stdout
    assert "file `examples/router.dy` changed" in out
