"""``[tool.memo_replay]`` in ``pyproject.toml``, read with ``tomllib`` and validated.

An unknown key, a wrong type or an invalid value is a :class:`~memo_replay.errors.ConfigError`
that names the key and the file. Environment variables (``MEMO_MODE``, ``MEMO_STORE``) override
the file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from memo_replay.errors import ConfigError
from memo_replay.modes import Mode, parse_mode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]


@dataclass(frozen=True)
class Config:
    """The validated settings of one project."""

    store: str | None = None
    mode: Mode | None = None


def load_config(pyproject: Path) -> Config:
    """Read and validate ``[tool.memo_replay]`` from ``pyproject`` (defaults when absent)."""
    try:
        with pyproject.open("rb") as fh:
            document = tomllib.load(fh)
    except FileNotFoundError:
        return Config()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {pyproject}: {exc}") from exc
    table = document.get("tool", {}).get("memo_replay", {})
    return _validate(table, pyproject)


def _validate(table: object, pyproject: Path) -> Config:
    from pydantic import BaseModel, ConfigDict, ValidationError

    class _Schema(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        store: str | None = None
        mode: str | None = None

    where = f"[tool.memo_replay] in {pyproject}"
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
    return Config(store=parsed.store, mode=mode)
