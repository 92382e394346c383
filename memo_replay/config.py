"""``[tool.memo_replay]`` in ``pyproject.toml``, read with ``tomllib`` and validated.

An unknown key, a wrong type or an invalid value is a :class:`~memo_replay.errors.ConfigError`
that names the key and the file. Environment variables (``MEMO_MODE``, ``MEMO_STORE``,
``MEMO_REMOTE``, ``MEMO_REMOTE_MODE``, ``MEMO_REMOTE_TIMEOUT``, ``MEMO_PAYLOADS``) override
the file.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Literal, NamedTuple

from memo_replay.errors import ConfigError
from memo_replay.modes import Mode, parse_mode

ReplayExpired = Literal["warn", "fail"]
ReplayTiming = Literal["instant", "recorded"]
RemoteMode = Literal["read", "write"]
REMOTE_MODES: tuple[RemoteMode, ...] = ("read", "write")
Payloads = Literal["local", "remote"]
PAYLOADS: tuple[Payloads, ...] = ("local", "remote")
DEFAULT_LOCK_TIMEOUT_S = 600.0
DEFAULT_REMOTE_TIMEOUT_S = 5.0


class Config(NamedTuple):
    """The validated settings of one project (a NamedTuple, not a dataclass: importing
    ``dataclasses`` imports ``inspect``, several ms of every replaying process's start)."""

    store: str | None = None
    mode: Mode | None = None
    ttl: float | None = None
    """Seconds after which a recording expires (None: never)."""
    replay_expired: ReplayExpired = "warn"
    """What strict replay does with an expired recording: replay it with a warning, or fail."""
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
    """Seconds a call waits for another process recording the same key."""
    secret_patterns: tuple[str, ...] = ()
    """Extra regular expressions the secret scan refuses."""
    allow_secrets: tuple[str, ...] = ()
    """Regular expressions for secret-shaped strings that are not secrets (test fixtures)."""
    redact: str | None = None
    """``module:function`` of the project's redaction hook (see ``@recorded(redact=...)``)."""
    pickle_functions: tuple[str, ...] = ()
    """Function ids (glob patterns, ``app.models.*``) allowed to record and load cloudpickle
    payloads, as if each had ``@recorded(serializer="pickle")`` for results nothing else fits."""
    observe_files: bool = True
    """Whether project files read during a recording become observed dependencies
    (``@recorded(observe_files=...)`` beats it)."""
    remote: str | None = None
    """The shared remote store, ``s3://bucket/prefix`` (None: none; ``MEMO_REMOTE`` beats it)."""
    remote_mode: RemoteMode = "read"
    """``read``: look recordings up there; ``write``: also upload new recordings."""
    remote_timeout: float | None = None
    """Seconds a request to the remote may wait for an answer (None: the default,
    ``DEFAULT_REMOTE_TIMEOUT_S``; ``MEMO_REMOTE_TIMEOUT`` beats it)."""
    payloads: Payloads = "local"
    """Where payload files (``<key>.<checksum>.bin``) are kept: ``local``, beside their entry
    in the tracked store; ``remote``, in the remote and the git-ignored ``.cache/payloads/``
    only (the entry, with its checksum, is still committed). ``MEMO_PAYLOADS`` beats it."""
    replay_timing: ReplayTiming = "instant"
    """How a recorded stream replays: its items at once, or after the recorded gaps
    (``@recorded(replay_timing=...)`` beats it)."""

    def allows_pickle(self, function: str) -> bool:
        if not self.pickle_functions:
            return False
        import fnmatch  # only projects that allow pickle pay for it

        return any(fnmatch.fnmatchcase(function, p) for p in self.pickle_functions)


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(value: object, *, source: str) -> float:
    """Seconds from a number, a ``timedelta`` or a string such as ``"30d"``, ``"12h"``, ``"90"``.

    ```pycon
    >>> from memo_replay.config import parse_duration
    >>> parse_duration("2h", source="ttl=")
    7200.0
    ```
    """
    seconds: float | None = None
    # A timedelta means datetime is imported; a process that never did does not pay for it.
    timedelta = getattr(sys.modules.get("datetime"), "timedelta", None)
    if timedelta is not None and isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds is None or not seconds > 0 or seconds == float("inf"):
        raise ConfigError(
            f"invalid duration {value!r} for {source}: use a positive number of seconds, a "
            f"datetime.timedelta, or a string like \"90s\", \"30m\", \"12h\", \"30d\", \"2w\""
        )
    return seconds


def load_config(pyproject: Path) -> Config:
    """Read and validate ``[tool.memo_replay]`` from ``pyproject`` (defaults when absent)."""
    try:
        with pyproject.open("rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"cannot read {pyproject}: {exc}") from exc
    if not _may_configure(raw):
        return Config()  # no table of ours: do not pay for importing tomllib (~2 ms)
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {pyproject}: {exc}") from exc
    table = document.get("tool", {}).get("memo_replay", {})
    if table == {}:
        return Config()  # nothing to validate: do not pay for importing pydantic
    return _validate(table, pyproject)


def _may_configure(raw: bytes) -> bool:
    """Whether a ``pyproject.toml`` can hold a ``[tool.memo_replay]`` table at all.

    Every spelling of the key (a table header, a dotted key, an inline table, a quoted key)
    contains ``memo_replay`` — except a quoted key written with escapes
    (``"memo\\u005freplay"``), hence the backslash check. A file without either is not parsed:
    most projects' ``pyproject.toml`` never mentions memo_replay, and replaying a fresh clone
    should not pay for a TOML parser (a malformed file is then the packaging tools' to report).
    """
    return b"memo_replay" in raw or b"\\" in raw


def _refuse_unknown_keys(table: dict[str, object], valid: tuple[str, ...], where: str) -> None:
    """Name each unknown key, the closest valid one and every valid key — in our words, not
    pydantic's ("Extra inputs are not permitted" says neither which file nor what was meant)."""
    unknown = [key for key in table if key not in valid]
    if not unknown:
        return
    import difflib  # only a broken configuration pays for it

    problems = []
    for key in unknown:
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        guess = f" (did you mean `{close[0]}`?)" if close else ""
        problems.append(f"`{key}`{guess}")
    noun = "key" if len(unknown) == 1 else "keys"
    raise ConfigError(f"unknown {noun} {', '.join(problems)} in {where}. Valid keys: "
                      f"{', '.join(f'`{key}`' for key in sorted(valid))}.")


def _validate(table: object, pyproject: Path) -> Config:
    from pydantic import BaseModel, ConfigDict, ValidationError

    class _Schema(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        store: str | None = None
        mode: str | None = None
        ttl: str | int | float | None = None
        replay_expired: Literal["warn", "fail"] = "warn"
        lock_timeout: str | int | float | None = None
        secret_patterns: list[str] = []
        allow_secrets: list[str] = []
        redact: str | None = None
        pickle_functions: list[str] = []
        observe_files: bool = True
        remote: str | None = None
        remote_mode: str = "read"
        payloads: str = "local"
        remote_timeout: str | int | float | None = None
        replay_timing: Literal["instant", "recorded"] = "instant"

    where = f"[tool.memo_replay] in {pyproject}"
    if not isinstance(table, dict):
        raise ConfigError(f"invalid {where}: it should be a table of settings such as "
                          f"`mode = \"replay\"`, got {type(table).__name__}")
    _refuse_unknown_keys(table, tuple(_Schema.model_fields), where)
    try:
        parsed = _Schema.model_validate(table)
    except ValidationError as exc:
        problems = "; ".join(
            f"`{'.'.join(str(p) for p in err['loc']) or '(table)'}`: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid {where}: {problems}") from None
    mode = None if parsed.mode is None else parse_mode(parsed.mode, source=f"`mode` in {where}")
    if parsed.store is not None and not parsed.store.strip():
        raise ConfigError(f"invalid {where}: `store` must not be empty")
    ttl = None if parsed.ttl is None else parse_duration(parsed.ttl, source=f"`ttl` in {where}")
    lock_timeout = DEFAULT_LOCK_TIMEOUT_S if parsed.lock_timeout is None else \
        parse_duration(parsed.lock_timeout, source=f"`lock_timeout` in {where}")
    for key in ("secret_patterns", "allow_secrets"):
        for pattern in getattr(parsed, key):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"invalid {where}: `{key}` pattern {pattern!r} is not a "
                                  f"regular expression ({exc})") from None
    if any(not p.strip() for p in parsed.pickle_functions):
        raise ConfigError(f"invalid {where}: `pickle_functions` entries must be function ids "
                          f"or glob patterns such as \"app.models.load\" or \"app.legacy.*\"")
    if parsed.redact is not None and ":" not in parsed.redact:
        raise ConfigError(f"invalid {where}: `redact` must be \"module:function\", got "
                          f"{parsed.redact!r}")
    remote = None if parsed.remote is None else check_remote(parsed.remote,
                                                             source=f"`remote` in {where}")
    remote_mode = check_remote_mode(parsed.remote_mode, source=f"`remote_mode` in {where}")
    payloads = check_payloads(parsed.payloads, source=f"`payloads` in {where}")
    remote_timeout = None if parsed.remote_timeout is None else \
        parse_duration(parsed.remote_timeout, source=f"`remote_timeout` in {where}")
    return Config(store=parsed.store, mode=mode, ttl=ttl, replay_expired=parsed.replay_expired,
                  lock_timeout=lock_timeout, secret_patterns=tuple(parsed.secret_patterns),
                  allow_secrets=tuple(parsed.allow_secrets), redact=parsed.redact,
                  pickle_functions=tuple(parsed.pickle_functions),
                  observe_files=parsed.observe_files, remote=remote, remote_mode=remote_mode,
                  payloads=payloads, remote_timeout=remote_timeout,
                  replay_timing=parsed.replay_timing)


def check_remote(url: str, *, source: str) -> str:
    """``url`` when it is an ``s3://bucket/prefix`` URL, else a :class:`ConfigError` naming
    ``source``."""
    from memo_replay.errors import RemoteError
    from memo_replay.store.s3 import parse_url  # no client: only the URL's syntax

    try:
        parse_url(url.strip())
    except RemoteError as exc:
        raise ConfigError(f"invalid {source}: {exc}") from None
    return url.strip()


def check_remote_mode(value: str, *, source: str) -> RemoteMode:
    """``value`` when it is a remote mode, else a :class:`ConfigError` naming ``source``."""
    for mode in REMOTE_MODES:
        if value.strip().lower() == mode:
            return mode
    raise ConfigError(f"invalid {source}: {value!r}; use \"read\" (look recordings up in the "
                      f"remote) or \"write\" (also upload new recordings: trusted jobs only)")


def remote_setting(config: Config) -> tuple[str, RemoteMode] | None:
    """The remote in force and its mode: ``MEMO_REMOTE``/``MEMO_REMOTE_MODE`` beat
    ``[tool.memo_replay] remote``/``remote_mode``; None when no remote is configured (an empty
    ``MEMO_REMOTE`` counts as unset)."""
    url = os.environ.get("MEMO_REMOTE") or None
    if url is not None:
        url = check_remote(url, source="the MEMO_REMOTE environment variable")
    else:
        url = config.remote
    if url is None:
        return None
    env_mode = os.environ.get("MEMO_REMOTE_MODE") or None
    mode = config.remote_mode if env_mode is None else check_remote_mode(
        env_mode, source="the MEMO_REMOTE_MODE environment variable")
    return url, mode


def remote_timeout_setting(config: Config) -> float:
    """Seconds a request to the remote may wait for an answer (its read timeout; the connect
    timeout is the smaller of 2 s and it): ``MEMO_REMOTE_TIMEOUT`` beats ``[tool.memo_replay]
    remote_timeout``, else ``DEFAULT_REMOTE_TIMEOUT_S``."""
    env = os.environ.get("MEMO_REMOTE_TIMEOUT") or None
    if env is not None:
        return parse_duration(env, source="the MEMO_REMOTE_TIMEOUT environment variable")
    return DEFAULT_REMOTE_TIMEOUT_S if config.remote_timeout is None else config.remote_timeout


def check_payloads(value: str, *, source: str) -> Payloads:
    """``value`` when it is a ``payloads`` setting, else a :class:`ConfigError` naming
    ``source``."""
    for where in PAYLOADS:
        if value.strip().lower() == where:
            return where
    raise ConfigError(f"invalid {source}: {value!r}; use \"local\" (payload files are kept "
                      f"beside their entry, in the store) or \"remote\" (kept out of git: "
                      f"uploaded to the remote and fetched from it on first use)")


def payloads_setting(config: Config) -> Payloads:
    """Where payload files go: ``MEMO_PAYLOADS`` beats ``[tool.memo_replay] payloads``. A
    :class:`ConfigError` when it is ``remote`` and no remote is configured: the payload files
    would be in no place another clone could fetch them from."""
    env = os.environ.get("MEMO_PAYLOADS") or None
    payloads = config.payloads if env is None else check_payloads(
        env, source="the MEMO_PAYLOADS environment variable")
    if payloads == "remote" and remote_setting(config) is None:
        source = "MEMO_PAYLOADS=remote" if env is not None else \
            "[tool.memo_replay] payloads = \"remote\""
        raise ConfigError(f"{source} needs a remote to keep the payload files in: set "
                          f"[tool.memo_replay] remote = \"s3://bucket/prefix\" (or MEMO_REMOTE), "
                          f"or use payloads = \"local\"")
    return payloads
