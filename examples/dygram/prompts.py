"""Prompt template sent to the (fake) model."""

from __future__ import annotations

BEGIN_MARKER = "BEGIN SOURCE"
END_MARKER = "END SOURCE"

TEMPLATE = """\
You are a compiler for the DyGram state-machine language, running as model {model}.
Translate the following DyGram state machine into JSON IR.

Rules:
- Output a single JSON object with the keys "title", "states", "transitions" and "model".
- Each state is an object with "name", "kind" (start, task, decision or end) and "note".
- Each transition is an object with "source", "target" and "label".
- Preserve declaration order. Do not invent states or transitions.
- Output JSON only, with no commentary.

BEGIN SOURCE
{source}
END SOURCE
"""


def build(source: str, model: str) -> str:
    """Render the translation prompt for `source`, addressed to `model`."""
    return TEMPLATE.format(source=source, model=model)
