"""docs/img/how-it-works.svg is what tools/diagram.py draws, and a well-formed, accessible SVG.

The diagram's source is tools/diagram.py (its boxes and arrows are data in that file): a change
there without regenerating the picture, or a hand edit of the picture, fails here.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import REPO

SVG = REPO / "docs" / "img" / "how-it-works.svg"
NS = "{http://www.w3.org/2000/svg}"


def test_the_committed_diagram_is_what_the_script_draws(tmp_path: Path) -> None:
    fresh = tmp_path / "how-it-works.svg"
    result = subprocess.run([sys.executable, "tools/diagram.py", "--output", str(fresh)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert fresh.read_text(encoding="utf-8") == SVG.read_text(encoding="utf-8"), (
        "docs/img/how-it-works.svg is out of date: run python tools/diagram.py")
    check = subprocess.run([sys.executable, "tools/diagram.py", "--check"], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_the_diagram_is_accessible_svg_at_page_width() -> None:
    root = ET.fromstring(SVG.read_text(encoding="utf-8"))  # parses as XML
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    assert int(root.get("width", "0")) <= 700  # drawn at page width, not shrunk
    title = root.find(f"{NS}title")
    desc = root.find(f"{NS}desc")
    assert title is not None
    assert title.text
    assert desc is not None
    assert len(desc.text or "") > 200
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    texts = list(root.iter(f"{NS}text"))
    sizes = {int(text.get("font-size", "0")) for text in texts}
    assert min(sizes) >= 12, f"text smaller than 12 px: {sorted(sizes)}"
    words = " ".join(text.text or "" for text in texts)
    for shown in ("function", "code fingerprint", "arguments", "declared files",
                  "observed dependencies", "auto", "record", "replay", "off",
                  "entry files", "payload files", "index", "team cache",
                  "serialize", "scan", "write"):
        assert shown in words, f"the diagram does not show {shown!r}"
