"""``memo-replay`` on recorded streams (issue 18): ``show`` lists a stream's items with a
bounded preview, ``diff``/``changes`` compare item lists, ``ls`` lists them, ``verify`` and
``show`` report a stream payload whose header was edited (checksum recomputed) — all through
real recordings made in a subprocess and ``python -m memo_replay`` run as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from xxhash import xxh3_128_hexdigest

from memo_replay.store.layout import function_dir_name

if TYPE_CHECKING:
    from conftest import Project

TOOLS = '''
from collections.abc import Generator, Iterator

from pydantic import BaseModel

from memo_replay import recorded

THIRD = "c"


class Chunk(BaseModel):
    text: str
    index: int


class Boom(Exception):
    pass


@recorded
def tokens(prompt: str) -> Iterator[str]:
    yield from prompt.split()


@recorded
def chunks(prompt: str) -> Generator[Chunk, None, dict]:
    for i, word in enumerate(prompt.split()):
        yield Chunk(text=word, index=i)
    return {"n": len(prompt.split())}


@recorded
def audio(n: int) -> Iterator[bytes]:
    for i in range(n):
        yield bytes([i % 256]) * 100_000


@recorded(record_exceptions=True)
def failing(n: int) -> Iterator[int]:
    yield from range(n)
    raise Boom("model overloaded")


@recorded
def many(n: int) -> Iterator[dict]:
    for i in range(n):
        yield {"i": i, "text": "x" * 30}


@recorded
def letters(n: int) -> Iterator[dict]:
    for i in range(n):
        yield {"index": i, "text": THIRD if i == 2 else "x"}


@recorded
def greet(name: str) -> str:
    return f"Hello, {name}"
'''

CALLS = {
    "tokens": "tokens('hello big world')",
    "chunks": "chunks('a b c')",
    "audio": "audio(3)",
    "failing": "failing(2)",
    "many": "many(5000)",
    "letters": "letters(5)",
    "greet": "greet('Ada')",
}

RECORD = """
import json, streamtools as t

def drain(stream):
    try:
        for _ in stream:
            pass
    except t.Boom:
        pass

for call in {calls!r}:
    value = eval("t." + call)
    if not isinstance(value, str):
        drain(value)
print(json.dumps({{name: eval("t." + call.replace("(", ".memo.key(", 1))
                   for name, call in {named!r}.items()}}))
"""


def record(project: Project, *names: str, calls: dict[str, str] | None = None
           ) -> dict[str, str]:
    """Record the calls ``names`` of :data:`CALLS` (all by default; or ``calls``, name: call)
    in a subprocess; their keys."""
    named = calls or {name: CALLS[name] for name in names or CALLS}
    out = project.run(RECORD.format(calls=list(named.values()), named=named), mode="record")
    keys: dict[str, str] = json.loads(out.stdout.strip().splitlines()[-1])
    return keys


@pytest.fixture
def streams(project: Project) -> tuple[Project, dict[str, str]]:
    """A project whose store holds one recording of each call in :data:`CALLS`."""
    project.write("streamtools.py", TOOLS)
    return project, record(project)


def cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    result = project.run_module("memo_replay", *args, check=False)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def entry_path(project: Project, function: str, key: str) -> Path:
    return project.root / "fixtures_store" / function_dir_name(function) / f"{key}.json"


_CANONICAL = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


# -- show ------------------------------------------------------------------------------------


def test_show_a_long_stream_prints_a_bounded_preview(
        streams: tuple[Project, dict[str, str]]) -> None:
    project, keys = streams
    result = cli(project, "show", keys["many"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) < 50  # 5,000 items: the header, 20 items and a count, not the payload
    assert "stream       5,000 items, exhausted  (JSON form, " in result.stdout
    assert "kinds        json v1" in lines
    assert "items (the first 20)" in lines
    assert '  [0] {"i": 0, "text": "' + "x" * 30 + '"}' in lines
    assert any(line.startswith("  [19] ") for line in lines)
    assert not any(line.startswith("  [20] ") for line in lines)
    assert lines[-1] == "  … and 4,980 more items"


def test_show_pydantic_items_and_the_return_value(
        streams: tuple[Project, dict[str, str]]) -> None:
    project, keys = streams
    result = cli(project, "show", keys["chunks"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "stream       3 items, then returned a value  (JSON form, " in result.stdout
    assert "kinds        pydantic v1 streamtools:Chunk; json v1" in lines
    assert lines[-4:] == ['  [0] {"text": "a", "index": 0}', '  [1] {"text": "b", "index": 1}',
                          '  [2] {"text": "c", "index": 2}', 'returned     {"n": 3}']
    assert "payload" not in lines  # the JSON payload is not dumped


def test_show_text_items(streams: tuple[Project, dict[str, str]]) -> None:
    project, keys = streams
    result = cli(project, "show", keys["tokens"][:10])  # a unique prefix is enough
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-4:] == ["items", '  [0] "hello"', '  [1] "big"',
                                               '  [2] "world"']


def test_show_bytes_items_in_a_payload_file(streams: tuple[Project, dict[str, str]]) -> None:
    project, keys = streams
    path = entry_path(project, "streamtools.audio", keys["audio"])
    document = json.loads(path.read_text())
    assert (path.parent / document["result"]["file"]).stat().st_size > 300_000  # a sidecar
    result = cli(project, "show", keys["audio"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"(binary form, 293.1 KiB in {document['result']['file']})" in result.stdout
    assert "kinds        bytes v1" in lines
    assert lines[-3:] == [f"  [{i}] 100000 bytes, starting {' '.join([f'{i:02x}'] * 16)}"
                          for i in range(3)]


def test_show_a_stream_that_raised(streams: tuple[Project, dict[str, str]]) -> None:
    project, keys = streams
    result = cli(project, "show", keys["failing"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "stream       2 items, then raised an exception (recorded)  (JSON form, " \
        in result.stdout
    assert "kinds        json v1; exception v1" in lines
    assert lines[-3:] == ["  [0] 0", "  [1] 1", "raised       streamtools:Boom: model overloaded"]


def test_show_json_keeps_the_whole_payload(streams: tuple[Project, dict[str, str]]) -> None:
    project, keys = streams
    shown = json.loads(cli(project, "show", "--json", keys["many"]).stdout)
    assert len(shown["payload"]["values"]) == 5000
    assert shown["payload_file"] is None
    assert shown["stream"] == {"items": 5000, "returned": False, "raised": False,
                               "form": "json", "kinds": [
                                   {"encoding": "json", "serializer": "json",
                                    "serializer_version": 1, "type": None}]}
    binary = json.loads(cli(project, "show", "--json", keys["audio"]).stdout)
    assert binary["payload"] is None  # in the payload file, as for any large binary result
    assert binary["payload_file"].endswith(".bin")
    assert binary["stream"]["items"] == 3
    assert binary["stream"]["form"] == "binary"


# -- ls, verify --------------------------------------------------------------------------------


def test_ls_and_verify_a_store_of_streams(streams: tuple[Project, dict[str, str]]) -> None:
    project, keys = streams
    listed = cli(project, "ls")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[2:-1]}
    assert set(rows) == set(keys.values())
    assert "  stream  " in rows[keys["many"]]
    assert "  str  " in rows[keys["greet"]] or "  json  " in rows[keys["greet"]]
    assert listed.stdout.splitlines()[-1] == f"{len(keys)} recordings"
    verified = cli(project, "verify")
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.splitlines()[-1].endswith("every entry is intact")


# -- damaged stream payloads (header edited, checksum recomputed) -----------------------------


def rewrite_json_stream(path: Path, edit: Any) -> None:
    """Edit the JSON form of an entry's stream payload and recompute its checksum (what a
    careful hand, or a hostile pull request, does)."""
    document = json.loads(path.read_text())
    edit(document["result"]["payload"])
    document["result"]["checksum"] = xxh3_128_hexdigest(
        _CANONICAL.encode(document["result"]["payload"]).encode())
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def rewrite_binary_stream(path: Path, header: bytes | None = None,
                          edit: Any = None) -> None:
    """Replace (or edit) the header of a binary-form stream in its payload file, rename the
    payload file after the new checksum and update the entry."""
    document = json.loads(path.read_text())
    old = path.parent / document["result"]["file"]
    data = old.read_bytes()
    size = int.from_bytes(data[-8:], "big")
    if header is None:
        decoded = json.loads(data[-8 - size:-8])
        edit(decoded)
        header = _CANONICAL.encode(decoded).encode()
    new = data[:-8 - size] + header + len(header).to_bytes(8, "big")
    checksum = xxh3_128_hexdigest(new)
    name = f"{document['key']}.{checksum[:16]}.bin"
    old.unlink()
    (path.parent / name).write_bytes(new)
    document["result"].update(checksum=checksum, file=name, size=len(new))
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def set_lengths(header: dict[str, Any]) -> None:
    header["lengths"][0] = "100000"


def out_of_range_kind(payload: dict[str, Any]) -> None:
    payload["value_kinds"][1] = 7


@pytest.mark.parametrize("damage", ["kind index out of range", "lengths do not add up",
                                    "header does not parse"])
def test_a_damaged_stream_is_reported_by_verify_and_show(
        streams: tuple[Project, dict[str, str]], damage: str) -> None:
    project, keys = streams
    if damage == "kind index out of range":
        path = entry_path(project, "streamtools.chunks", keys["chunks"])
        rewrite_json_stream(path, out_of_range_kind)
        why = "values do not match its count (3) and kinds"
    elif damage == "lengths do not add up":
        path = entry_path(project, "streamtools.audio", keys["audio"])
        rewrite_binary_stream(path, edit=set_lengths)
        why = "lengths do not add up to its data"
    else:
        path = entry_path(project, "streamtools.audio", keys["audio"])
        rewrite_binary_stream(path, header=b'{"count": 3, "lengths": [')
        why = "not valid JSON"
    key = path.stem
    verified = cli(project, "verify")
    assert verified.returncode == 1, verified.stdout
    assert f"   corrupt  {path}\n" in verified.stdout
    assert "its stream payload is damaged (" in verified.stdout
    assert why in verified.stdout
    assert verified.stdout.splitlines()[-1].endswith(": 1 problem")
    for args in (("show", key), ("show", "--json", key)):
        shown = cli(project, *args)
        assert shown.returncode == 1, shown.stdout
        assert shown.stdout == ""  # nothing partial
        assert str(path) in shown.stderr
        assert why in shown.stderr
    # the other recordings still show
    assert cli(project, "show", keys["tokens"]).returncode == 0


# -- diff, changes ---------------------------------------------------------------------------


def test_diff_two_recordings_of_a_stream_whose_third_item_changed(
        streams: tuple[Project, dict[str, str]]) -> None:
    project, keys = streams
    project.replace("streamtools.py", 'THIRD = "c"', 'THIRD = "C"')
    new = record(project, "letters")["letters"]
    assert new != keys["letters"]
    result = cli(project, "diff", keys["letters"], new)
    assert result.returncode == 1, result.stderr
    out = result.stdout.splitlines()
    assert "  (and their results differ):" in out
    at = out.index("  (and their results differ):")
    assert out[at + 1:] == ["      items 5 (as before)", '      items[2].text: "c" → "C"']
    assert "THIRD" in result.stdout  # why the key changed
    payload = json.loads(cli(project, "diff", "--json", keys["letters"], new).stdout)["payload"]
    assert payload["mode"] == "fields"
    assert payload["changes"] == [{"path": "items[2].text", "kind": "changed",
                                   "before": '"c"', "after": '"C"'}]


def test_diff_item_counts_bytes_items_and_a_single_result(
        streams: tuple[Project, dict[str, str]]) -> None:
    project, keys = streams
    more = record(project, calls={"audio4": "audio(4)", "letters7": "letters(7)"})
    letters = cli(project, "diff", keys["letters"], more["letters7"]).stdout.splitlines()
    at = letters.index("  (and their results differ):")
    assert letters[at + 1:] == ["      items 5 → 7",
                                '      items[5]: added {"index": 5, "text": "x"}',
                                '      items[6]: added {"index": 6, "text": "x"}']
    audio = cli(project, "diff", keys["audio"], more["audio4"]).stdout.splitlines()
    at = audio.index("  (and their results differ):")
    assert audio[at + 1] == "      items 3 → 4"
    assert audio[at + 2].startswith('      items[3]: added "<100000 bytes, xxh3 ')
    assert len(audio) == at + 3  # the first three chunks are the same bytes
    single = cli(project, "diff", keys["tokens"], keys["greet"])
    assert single.returncode == 1
    assert "      a stream vs a single result" in single.stdout.splitlines()
    changed = cli(project, "diff", keys["failing"], keys["many"]).stdout
    assert "items 2 → 5,000" in changed
    assert "… and " in changed  # bounded: 20 differences listed, the rest counted
    assert len(changed.splitlines()) < 60
    assert 'raised: removed (was {"type": "streamtools:Boom"' in changed


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True,
                          check=True).stdout


def test_changes_compares_the_item_lists_of_a_re_recorded_stream(project: Project) -> None:
    project.write("streamtools.py", TOOLS)
    git(project.root, "init", "-q", "-b", "main")
    old = record(project, "letters")["letters"]
    git(project.root, "add", "-A")
    git(project.root, "commit", "-q", "-m", "record")
    project.replace("streamtools.py", 'THIRD = "c"', 'THIRD = "C"')
    new = record(project, "letters")["letters"]
    assert project.store.delete(old)
    result = cli(project, "changes")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"  changed {old[:12]} → {new[:12]}  n=5" in lines
    at = lines.index("    what the answer changed:")
    assert lines[at + 1:at + 3] == ["      items 5 (as before)", '      items[2].text: "c" → "C"']
