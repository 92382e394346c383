"""The dogfood: an LLM-backed translator from `.dy` files to a pydantic IR, recorded.

The first call for a file asks the (slow, paid — here fake) model; every later call with the same
code, model and file content replays the recording from `fixtures_store/`. Editing the `.dy`
file, the prompt template in `prompts.py` or this function re-records (or, in strict replay,
fails with an explanation of what changed).
"""

from __future__ import annotations

from pathlib import Path

from memo_replay import recorded

from . import llm, prompts
from .ir import Machine

ROOT = Path(__file__).resolve().parents[2]
MACHINES = "examples/dygram/machines"


@recorded(files=["{path}"])
def translate(path: str, model: str = "small") -> Machine:
    """Translate the `.dy` file at `path` (relative to the project root) into a `Machine`."""
    source = (ROOT / path).read_text(encoding="utf-8")
    answer = llm.complete(prompts.build(source, model), model=model)
    return Machine.model_validate_json(answer)


def machine_paths() -> list[str]:
    """The bundled example machines, as root-relative paths."""
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / MACHINES).glob("*.dy"))
