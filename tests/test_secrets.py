"""Secret scanning: secret-shaped strings never reach a store; redaction, config, `scan`.

Every canary is assembled at runtime, so this file itself holds no full secret shape and the
repository's own store stays clean under `memo-replay scan`.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel

from memo_replay import SecretDetected, Store, recorded
from memo_replay.config import load_config
from memo_replay.errors import ConfigError
from memo_replay.secrets import Scanner

if TYPE_CHECKING:
    from conftest import Project

REPO = Path(__file__).resolve().parents[1]

# -- canaries (built at runtime) ----------------------------------------------------------------

API_KEY = "sk-" + "test" + "Z" * 30
ANTHROPIC_KEY = "sk-" + "ant-" + "Q" * 28
AWS_KEY = "AKIA" + "Q" * 16
GITHUB_TOKEN = "ghp_" + "a" * 36
BEARER = "Bearer " + "x" * 24
PRIVATE_KEY = ("-----BEGIN " + "RSA " + "PRIVATE KEY-----\n" + "M" * 64 + "\n-----END "
               + "RSA " + "PRIVATE KEY-----")
SLACK = "xox" + "b-" + "1" * 12 + "-abcdef"
# A fixture token the project allows (the pattern is the one docs/security.md suggests), and a
# real-looking key beside it.
FIXTURE_KEY = "sk-" + "test-" + "A" * 24
ALLOW_FIXTURE = "sk-" + "test-[A-Za-z0-9]+"
REAL_KEY = "sk-" + "".join(random.Random(14).choices(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=32))

FIXES = ("ignore=", "redact=", "environment", "allow_secrets", "Nothing was written")


class Reply(BaseModel):
    text: str
    tokens: list[str]


def forms(secret: str | bytes) -> list[bytes]:
    """The canary's raw bytes and its base64 forms (at each of the three alignments)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    found = [raw, base64.b64encode(raw)]
    for pad in (0, 1, 2):
        encoded = base64.b64encode(b"\x00" * pad + raw)
        # Drop the characters that depend on the prefix and on what follows the canary.
        found.append(encoded[4 if pad else 0:-4])
    return found


def store_bytes(path: Path) -> list[tuple[Path, bytes]]:
    """Every file under `path` (including `.cache/`), with its content."""
    if not path.exists():
        return []
    return [(p, p.read_bytes()) for p in sorted(path.rglob("*")) if p.is_file()]


def assert_absent(store_dir: Path, secret: str | bytes) -> None:
    for file, content in store_bytes(store_dir):
        for form in forms(secret):
            assert form not in content, f"{form!r} found in {file}"


def assert_refusal(error: pytest.ExceptionInfo[SecretDetected], function: str,
                   field: str) -> None:
    message = str(error.value)
    assert function in message
    assert field in message, message
    for fix in FIXES:
        assert fix in message, f"{fix!r} missing from: {message}"


# -- refusals, in process -----------------------------------------------------------------------


@pytest.mark.parametrize("secret", [API_KEY, ANTHROPIC_KEY, AWS_KEY, GITHUB_TOKEN, BEARER,
                                    PRIVATE_KEY, SLACK],
                         ids=["openai", "anthropic", "aws", "github", "bearer", "pem", "slack"])
def test_positional_argument_is_refused(memo_env: Store, secret: str) -> None:
    calls: list[str] = []

    @recorded
    def ask(api_key: str, prompt: str) -> str:
        calls.append(prompt)
        return prompt.upper()

    with pytest.raises(SecretDetected) as error:
        ask(secret, "hi")
    assert_refusal(error, "ask", "argument `api_key`")
    assert calls == ["hi"]  # the function ran; only storing was refused
    assert_absent(memo_env.path, secret)
    with pytest.raises(SecretDetected):
        ask(secret, "hi")  # nothing was stored, so auto mode calls (and refuses) again
    assert calls == ["hi", "hi"]
    assert list(memo_env.entry_files()) == []


def test_keyword_argument_is_refused(memo_env: Store) -> None:
    calls: list[str] = []

    @recorded
    def ask(prompt: str, *, headers: dict[str, str] | None = None) -> str:
        calls.append(prompt)
        return prompt

    with pytest.raises(SecretDetected) as error:
        ask("hi", headers={"Authorization": BEARER})
    assert_refusal(error, "ask", "argument `headers`")
    assert calls == ["hi"]
    assert_absent(memo_env.path, BEARER)
    with pytest.raises(SecretDetected):
        ask("hi", headers={"Authorization": BEARER})
    assert calls == ["hi", "hi"]


@pytest.mark.parametrize("shape", ["dict", "list", "pydantic"])
def test_nested_result_is_refused(memo_env: Store, shape: str) -> None:
    calls: list[str] = []
    secret = AWS_KEY if shape == "list" else API_KEY

    @recorded
    def lookup(name: str) -> Any:
        calls.append(name)
        if shape == "dict":
            return {"user": name, "credentials": {"keys": [{"value": secret}]}}
        if shape == "list":
            return [name, [1, 2, ["deep", secret]]]
        return Reply(text=name, tokens=["a", secret])

    with pytest.raises(SecretDetected) as error:
        lookup("ada")
    assert_refusal(error, "lookup", "the result")
    assert calls == ["ada"]
    assert_absent(memo_env.path, secret)
    with pytest.raises(SecretDetected):
        lookup("ada")
    assert calls == ["ada", "ada"]
    assert list(memo_env.entry_files()) == []


def test_bytes_result_is_refused(memo_env: Store) -> None:
    calls: list[int] = []
    # The byte before the token is non-ASCII: decoded as latin-1 it was a word character ("ÿ")
    # and hid the token from the patterns' `\b` (regression).
    blob = b"\x89PNG\x00\xff" + GITHUB_TOKEN.encode() + b"\x00\x01trailer"

    @recorded
    def download(n: int) -> bytes:
        calls.append(n)
        return blob

    with pytest.raises(SecretDetected) as error:
        download(1)
    assert_refusal(error, "download", "the result")
    assert calls == [1]
    assert_absent(memo_env.path, GITHUB_TOKEN)
    assert_absent(memo_env.path, blob)
    with pytest.raises(SecretDetected):
        download(1)
    assert calls == [1, 1]


@pytest.mark.parametrize("offset", [0, (1 << 20) - 10, (1 << 20) + 4090, (3 << 20) - 40])
def test_a_secret_anywhere_in_a_large_binary_result_is_refused(memo_env: Store,
                                                               offset: int) -> None:
    """Large binary payloads are scanned a window at a time: a token across a window's edge,
    or at the very end, is still found."""
    token = GITHUB_TOKEN.encode()
    blob = bytearray(b"\xff" * (3 << 20))
    blob[offset:offset + len(token)] = token  # the last case ends the payload with the token
    data = bytes(blob)

    @recorded
    def download(n: int) -> bytes:
        return data

    with pytest.raises(SecretDetected) as error:
        download(offset)
    assert_refusal(error, "download", "the result")
    assert list(memo_env.path.rglob("*.json")) == []
    assert list(memo_env.path.rglob("*.bin")) == []


def test_recorded_exception_text_is_refused(memo_env: Store) -> None:
    calls: list[str] = []

    @recorded(record_exceptions=True)
    def connect(host: str) -> str:
        calls.append(host)
        raise PermissionError(f"401 from {host}: key {API_KEY} was revoked")

    with pytest.raises(SecretDetected) as error:
        connect("api.example")
    assert_refusal(error, "connect", "the recorded exception")
    assert calls == ["api.example"]
    assert_absent(memo_env.path, API_KEY)
    with pytest.raises(SecretDetected):
        connect("api.example")
    assert calls == ["api.example", "api.example"]


def test_clean_exception_is_still_recorded(memo_env: Store) -> None:
    calls: list[str] = []

    @recorded(record_exceptions=True)
    def connect(host: str) -> str:
        calls.append(host)
        raise PermissionError(f"401 from {host}")

    for _ in range(2):
        with pytest.raises(PermissionError):
            connect("api.example")
    assert calls == ["api.example"]


def test_ignored_argument_never_reaches_the_store(memo_env: Store) -> None:
    calls: list[str] = []

    @recorded(ignore=["api_key"])
    def ask(prompt: str, api_key: str) -> str:
        calls.append(prompt)
        return prompt.upper()

    assert ask("hi", api_key=API_KEY) == "HI"
    assert ask("hi", api_key=API_KEY) == "HI"
    assert calls == ["hi"]
    assert len(list(memo_env.entry_files())) == 1
    assert_absent(memo_env.path, API_KEY)


# -- redaction ----------------------------------------------------------------------------------


def scrub(value: Any, *, field: str) -> Any:
    """Replace every canary (recursively) with "<redacted>"."""
    if isinstance(value, str):
        for secret in (API_KEY, BEARER):
            value = value.replace(secret, "<redacted>")
        return value
    if isinstance(value, dict):
        return {k: scrub(v, field=field) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, field=field) for v in value]
    return value


def test_redact_hook_rewrites_arguments_and_result(memo_env: Store) -> None:
    calls: list[str] = []
    seen: list[str] = []

    def hook(value: Any, *, field: str) -> Any:
        seen.append(field)
        return scrub(value, field=field)

    @recorded(redact=hook)
    def ask(prompt: str, api_key: str) -> dict[str, Any]:
        calls.append(prompt)
        return {"text": prompt.upper(), "echo": [f"used {api_key}"]}

    first = ask("hi", API_KEY)
    # the recording call returns what was recorded, as every replay will
    assert first == {"text": "HI", "echo": ["used <redacted>"]}
    assert {"return", "prompt", "api_key"} <= set(seen)
    entries = list(memo_env.entry_files())
    assert len(entries) == 1
    text = entries[0].read_text(encoding="utf-8")
    assert "<redacted>" in text
    document = json.loads(text)
    assert document["arguments"]["api_key"] == "<redacted>"
    assert_absent(memo_env.path, API_KEY)

    replayed = ask("hi", API_KEY)
    assert calls == ["hi"]
    assert replayed == {"text": "HI", "echo": ["used <redacted>"]}


@pytest.mark.parametrize("mode", ["auto", "record"])
def test_redacted_result_is_returned_by_the_recording_call_too(
        memo_env: Store, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """A recording call and its replays return one value: the redacted one (sync and async;
    in ``record`` mode every call records, so every call returns the redacted value)."""
    import asyncio

    monkeypatch.setenv("MEMO_MODE", mode)
    calls: list[str] = []

    @recorded(redact=scrub)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return f"{prompt} with {API_KEY}"

    @recorded(redact=scrub)
    async def ask_async(prompt: str) -> str:
        calls.append(prompt)
        return f"{prompt} with {API_KEY}"

    for _ in range(2):
        assert ask("hi") == "hi with <redacted>"
        assert asyncio.run(ask_async("yo")) == "yo with <redacted>"
    assert calls == (["hi", "yo"] if mode == "auto" else ["hi", "yo", "hi", "yo"])
    assert_absent(memo_env.path, API_KEY)

    monkeypatch.setenv("MEMO_MODE", "off")  # nothing recorded: the real value
    assert ask("hi") == f"hi with {API_KEY}"


def test_redacted_exception_is_raised_by_the_recording_call_too(memo_env: Store) -> None:
    """With ``record_exceptions``, an exception the hook rewrites is raised rewritten by the
    recording call as by its replays, without the original in its context."""

    def hook(value: Any, *, field: str) -> Any:
        if isinstance(value, ValueError):
            return ValueError(scrub(str(value), field=field))
        return scrub(value, field=field)

    @recorded(record_exceptions=True, redact=hook)
    def fail(x: int) -> int:
        raise ValueError(f"bad token {API_KEY}")

    for _ in range(2):  # recorded, then replayed
        with pytest.raises(ValueError, match=r"^bad token <redacted>$") as error:
            fail(1)
        assert error.value.__suppress_context__ or error.value.__context__ is None
    assert_absent(memo_env.path, API_KEY)


def test_project_redact_hook(project: Project) -> None:
    project.write("pyproject.toml", """
        [project]
        name = "proj"
        version = "0"

        [tool.memo_replay]
        redact = "hooks:scrub"
    """)
    project.write("hooks.py", """
        import os

        def scrub(value, *, field):
            secret = os.environ["CANARY"]
            if isinstance(value, str):
                return value.replace(secret, "<redacted>")
            if isinstance(value, dict):
                return {k: scrub(v, field=field) for k, v in value.items()}
            return value
    """)
    project.write("app.py", """
        from memo_replay import recorded

        @recorded
        def ask(prompt, token):
            with open("calls.log", "a") as fh:
                fh.write(prompt + "\\n")
            return {"text": prompt, "auth": "Bearer-ish " + token}
    """)
    code = """
        import json, os, app
        print(json.dumps(app.ask("hi", os.environ["CANARY"])))
    """
    env = {"CANARY": API_KEY}
    first = project.run(code, mode="auto", env=env)
    assert json.loads(first.stdout) == {"text": "hi", "auth": "Bearer-ish <redacted>"}
    second = project.run(code, mode="replay", env=env)
    assert json.loads(second.stdout) == {"text": "hi", "auth": "Bearer-ish <redacted>"}
    assert project.calls() == ["hi"]
    store_dir = project.root / "fixtures_store"
    entries = list(Store(store_dir).entry_files())
    assert len(entries) == 1
    assert "<redacted>" in entries[0].read_text(encoding="utf-8")
    assert_absent(store_dir, API_KEY)


def test_unimportable_project_redact_hook(project: Project) -> None:
    pyproject = project.write("pyproject.toml", """
        [project]
        name = "proj"
        version = "0"

        [tool.memo_replay]
        redact = "no_such_hooks:scrub"
    """)
    project.write("app.py", """
        from memo_replay import recorded

        @recorded
        def ask(prompt):
            return prompt
    """)
    result = project.run("""
        from memo_replay import ConfigError
        import app
        try:
            app.ask("hi")
        except ConfigError as exc:
            print("CONFIG-ERROR", exc)
    """, mode="auto")
    assert "CONFIG-ERROR" in result.stdout, result.stdout + result.stderr
    assert "redact" in result.stdout
    assert str(pyproject) in result.stdout
    assert list(project.store.entry_files()) == []


def test_redact_without_colon_is_a_config_error(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.memo_replay]\nredact = "hooks.scrub"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(pyproject)
    assert "redact" in str(error.value)
    assert str(pyproject) in str(error.value)


# -- source -------------------------------------------------------------------------------------


def test_hard_coded_secret_in_source_is_refused(project: Project) -> None:
    project.write("leaky.py", f"""
        from memo_replay import recorded

        @recorded
        def fetch(query):
            with open("calls.log", "a") as fh:
                fh.write(query + "\\n")
            token = "{AWS_KEY}"
            return query.upper() + str(len(token))
    """)
    code = """
        import leaky
        from memo_replay import SecretDetected
        try:
            leaky.fetch("q")
        except SecretDetected as exc:
            print("REFUSED", exc)
    """
    first = project.run(code, mode="auto")
    assert "REFUSED" in first.stdout, first.stdout + first.stderr
    assert "the function's source" in first.stdout
    for fix in FIXES:
        assert fix in first.stdout
    assert project.calls() == ["q"]
    store_dir = project.root / "fixtures_store"
    assert_absent(store_dir, AWS_KEY)
    second = project.run(code, mode="auto")
    assert "REFUSED" in second.stdout
    assert project.calls() == ["q", "q"]
    assert list(Store(store_dir).entry_files()) == []


# -- project patterns ---------------------------------------------------------------------------


def _project_with(project: Project, settings: str) -> Path:
    pyproject = project.write("pyproject.toml", f"""
        [project]
        name = "proj"
        version = "0"

        [tool.memo_replay]
        {settings}
    """)
    project.write("app.py", """
        from memo_replay import recorded

        @recorded
        def echo(text):
            with open("calls.log", "a") as fh:
                fh.write("call\\n")
            return {"echo": text}
    """)
    return pyproject


_ECHO = """
    import os, app
    from memo_replay import SecretDetected
    try:
        print("OK", app.echo(os.environ["VALUE"]))
    except SecretDetected as exc:
        print("REFUSED", exc)
"""


def test_project_secret_patterns_refuse(project: Project) -> None:
    _project_with(project, 'secret_patterns = ["INTERNAL-[0-9]{6}"]')
    value = "INTERNAL-" + "123456"
    result = project.run(_ECHO, mode="auto", env={"VALUE": value})
    assert "REFUSED" in result.stdout, result.stdout + result.stderr
    assert "INTERNAL-[0-9]{6}" in result.stdout
    assert_absent(project.root / "fixtures_store", value)
    ok = project.run(_ECHO, mode="auto", env={"VALUE": "INTERNAL-12"})
    assert "OK" in ok.stdout


def test_allow_secrets_lets_a_fixture_key_through(project: Project) -> None:
    _project_with(project, "")
    refused = project.run(_ECHO, mode="auto", env={"VALUE": API_KEY})
    assert "REFUSED" in refused.stdout, refused.stdout + refused.stderr
    _project_with(project, 'allow_secrets = ["sk-test[A-Za-z0-9]*"]')
    result = project.run(_ECHO, mode="auto", env={"VALUE": API_KEY})
    assert "OK" in result.stdout, result.stdout + result.stderr
    replay = project.run(_ECHO, mode="replay", env={"VALUE": API_KEY})
    assert "OK" in replay.stdout, replay.stdout + replay.stderr
    assert project.calls() == ["call", "call"]
    # The allow-list is per pattern: another key shape is still refused.
    other = project.run(_ECHO, mode="auto", env={"VALUE": ANTHROPIC_KEY})
    assert "REFUSED" in other.stdout


def test_the_allow_list_applies_to_the_token_not_the_field() -> None:
    scanner = Scanner(allow=[ALLOW_FIXTURE])
    assert scanner.scan_text(FIXTURE_KEY, "f") == []
    assert scanner.scan_text(f"use {FIXTURE_KEY} in tests", "f") == []
    assert Scanner().scan_text(FIXTURE_KEY, "f") != []  # it is allowed, not unseen
    for text in (f"{FIXTURE_KEY} {REAL_KEY}", f"{REAL_KEY}\n{FIXTURE_KEY}",
                 json.dumps({"fixture": FIXTURE_KEY, "key": REAL_KEY})):
        leaks = scanner.scan_text(text, "f")
        assert [(leak.field, leak.kind, leak.excerpt) for leak in leaks] == \
            [("f", "an OpenAI/Anthropic-style API key", REAL_KEY[:6] + "…")], text


@pytest.mark.parametrize("joint", ["-", "_", ""], ids=["dash", "underscore", "nothing"])
def test_an_allowed_fixture_joined_to_a_real_key_is_refused(joint: str) -> None:
    """The key patterns run through `-` and `_`, so a fixture and a key written together are
    one token; a pattern matching only the fixture's part of it does not allow the key."""
    scanner = Scanner(allow=[ALLOW_FIXTURE])
    for text in (FIXTURE_KEY + joint + REAL_KEY, REAL_KEY + joint + FIXTURE_KEY):
        leaks = scanner.scan_text(text, "f")
        assert [leak.kind for leak in leaks] == ["an OpenAI/Anthropic-style API key"], text


@pytest.mark.parametrize("shape", ["one string", "a list"])
def test_allowed_fixture_beside_a_real_key_is_refused(project: Project, shape: str) -> None:
    """A field holding an allowed fixture token *and* a real key is refused: the allow-list
    lets the fixture through, never the field around it."""
    _project_with(project, f'allow_secrets = ["{ALLOW_FIXTURE}"]')
    alone = project.run(_ECHO, mode="auto", env={"VALUE": FIXTURE_KEY})
    assert "OK" in alone.stdout, alone.stdout + alone.stderr  # the fixture alone is allowed
    assert project.calls() == ["call"]
    store_dir = project.root / "fixtures_store"
    recorded_before = store_bytes(store_dir)
    assert len(list(Store(store_dir).entry_files())) == 1

    code = _ECHO if shape == "one string" else _ECHO.replace(
        'app.echo(os.environ["VALUE"])', 'app.echo(os.environ["VALUE"].split())')
    both = f"{FIXTURE_KEY} {REAL_KEY}"
    refused = project.run(code, mode="auto", env={"VALUE": both})
    assert "REFUSED" in refused.stdout, refused.stdout + refused.stderr
    assert "argument `text` contains an OpenAI/Anthropic-style API key" in refused.stdout
    assert REAL_KEY[:6] + "…" in refused.stdout  # the key's excerpt, not the fixture's
    assert REAL_KEY not in refused.stdout
    assert project.calls() == ["call", "call"]  # it ran; only storing was refused
    assert_absent(store_dir, REAL_KEY)
    assert len(list(Store(store_dir).entry_files())) == 1  # nothing new was written
    assert [p for p, _ in store_bytes(store_dir) if ".cache" not in p.parts] == \
        [p for p, _ in recorded_before if ".cache" not in p.parts]


@pytest.mark.parametrize("key", ["secret_patterns", "allow_secrets"])
def test_invalid_regex_is_a_config_error(tmp_path: Path, key: str) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f'[tool.memo_replay]\n{key} = ["ok", "unclosed[("]\n',
                         encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(pyproject)
    assert f"`{key}`" in str(error.value)
    assert str(pyproject) in str(error.value)


# -- memo-replay scan ---------------------------------------------------------------------------


def _scan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMO_") and k != "CI"}
    return subprocess.run([sys.executable, "-m", "memo_replay", "scan", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def test_scan_finds_a_planted_secret(memo_env: Store, tmp_path: Path) -> None:
    @recorded
    def greet(name: str) -> str:
        return f"hello {name}"

    assert greet("ada") == "hello ada"
    store = str(memo_env.path)
    clean = _scan("--store", store, cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no secret-shaped strings" in clean.stdout

    (entry,) = list(memo_env.entry_files())
    document = json.loads(entry.read_text(encoding="utf-8"))
    document["arguments"]["name"] = f"ada {API_KEY}"
    entry.write_text(json.dumps(document), encoding="utf-8")

    found = _scan("--store", store, cwd=tmp_path)
    assert found.returncode == 1, found.stdout + found.stderr
    assert str(entry) in found.stdout
    assert "argument `name`" in found.stdout
    assert API_KEY not in found.stdout  # the excerpt is masked

    as_json = _scan("--store", store, "--json", cwd=tmp_path)
    assert as_json.returncode == 1
    leaks: list[dict[str, Any]] = json.loads(as_json.stdout)
    assert [(Path(leak["path"]), leak["field"]) for leak in leaks] == \
        [(entry, "argument `name`")]
    assert API_KEY not in as_json.stdout


def test_scan_json_on_a_clean_store(memo_env: Store, tmp_path: Path) -> None:
    @recorded
    def greet(name: str) -> str:
        return f"hello {name}"

    greet("ada")
    result = _scan("--store", str(memo_env.path), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_repository_store_scans_clean() -> None:
    # A missing store would scan clean too: the committed recordings must be there.
    assert any((REPO / "fixtures_store").glob("*/*.json")), (
        "the committed recordings in fixtures_store/ are missing; re-record them with "
        "`MEMO_MODE=record DYGRAM_LLM_LATENCY=0.4 python -m examples.dygram.run`")
    result = _scan("--store", str(REPO / "fixtures_store"), cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_this_file_holds_no_secret_shape() -> None:
    from memo_replay.secrets import scanner

    text = Path(__file__).read_text(encoding="utf-8")
    assert scanner().scan_text(text, "tests/test_secrets.py") == []
