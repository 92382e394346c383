"""A fake, deterministic, slow "LLM" that translates DyGram source into JSON IR."""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from .prompts import BEGIN_MARKER, END_MARKER

KINDS = ("start", "task", "decision", "end")

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_MACHINE = re.compile(r'machine\s+"([^"]*)"')
_STATE = re.compile(rf'state\s+({_NAME})(?:\s+\[(\w+)\])?(?:\s+"([^"]*)")?')
_EDGE = re.compile(rf'({_NAME})\s*(?:->|-"([^"]*)"->)\s*({_NAME})')


def latency_s() -> float:
    """Seconds each call sleeps; read from DYGRAM_LLM_LATENCY at call time (default 0.4)."""
    return float(os.environ.get("DYGRAM_LLM_LATENCY", "0.4"))


def _strip_comment(line: str) -> str:
    """Drop a `#` comment, ignoring `#` inside double quotes."""
    in_quotes = False
    for i, ch in enumerate(line):
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == "#" and not in_quotes:
            return line[:i]
    return line


def parse_dy(source: str) -> dict[str, Any]:
    """Parse DyGram source into a machine dict with keys title/states/transitions.

    Raises ValueError naming the (1-based) line number of the first bad line.
    """
    title: str | None = None
    states: list[dict[str, Any]] = []
    transitions: list[dict[str, Any]] = []
    declared: set[str] = set()
    for lineno, raw in enumerate(source.splitlines(), start=1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        if m := _MACHINE.fullmatch(line):
            if title is not None:
                raise ValueError(f"line {lineno}: duplicate machine statement")
            title = m.group(1)
            continue
        if title is None:
            raise ValueError(f'line {lineno}: first statement must be `machine "Title"`')
        if m := _STATE.fullmatch(line):
            name, kind, note = m.group(1), m.group(2) or "task", m.group(3)
            if kind not in KINDS:
                raise ValueError(f"line {lineno}: unknown state kind {kind!r}")
            if name in declared:
                raise ValueError(f"line {lineno}: state {name!r} declared twice")
            declared.add(name)
            states.append({"name": name, "kind": kind, "note": note})
        elif m := _EDGE.fullmatch(line):
            source_state, label, target = m.group(1), m.group(2), m.group(3)
            for ref in (source_state, target):
                if ref not in declared:
                    raise ValueError(f"line {lineno}: undeclared state {ref!r}")
            transitions.append({"source": source_state, "target": target, "label": label})
        else:
            raise ValueError(f"line {lineno}: cannot parse {raw.strip()!r}")
    if title is None:
        raise ValueError('line 1: missing `machine "Title"` statement')
    return {"title": title, "states": states, "transitions": transitions}


def _extract_source(prompt: str) -> str:
    """Return the text between the BEGIN SOURCE / END SOURCE marker lines."""
    lines = prompt.splitlines()
    try:
        start = lines.index(BEGIN_MARKER)
        end = lines.index(END_MARKER, start + 1)
    except ValueError:
        raise ValueError("prompt has no BEGIN SOURCE / END SOURCE block") from None
    return "\n".join(lines[start + 1 : end])


def complete(prompt: str, model: str = "small") -> str:
    """Pretend to be an LLM: sleep, then return the machine in `prompt` as a JSON string.

    Deterministic in (prompt, model). If DYGRAM_LLM_CALL_LOG is set, appends
    "{model}\\t{title}" to that file once per call.
    """
    time.sleep(latency_s())
    machine = parse_dy(_extract_source(prompt))
    machine["model"] = model
    log_path = os.environ.get("DYGRAM_LLM_CALL_LOG")
    if log_path:
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{model}\t{machine['title']}\n")
    return json.dumps(machine, sort_keys=True)
