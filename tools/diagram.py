"""Draw docs/img/how-it-works.svg: how a call to a ``@recorded`` function flows.

The diagram's source is this file: the boxes, their text and the arrows are the data below
(``BOXES``, ``ARROWS``), and :func:`render` writes them as SVG with nothing but the standard
library. To change the picture, edit the data and regenerate::

    python tools/diagram.py            # rewrites docs/img/how-it-works.svg
    python tools/diagram.py --check    # exit 1 when the committed SVG is not up to date

``tests/test_diagram.py`` runs the check. The picture is drawn 690 px wide (the width of a
documentation page's text column), with no text smaller than 12 px, and carries a ``<title>``
and a ``<desc>`` that say in words what it shows. :func:`render` refuses text that would not
fit its box (estimated from the font size), so an edit cannot silently overflow.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "img" / "how-it-works.svg"

WIDTH = 690
HEIGHT = 790
TITLE_PX = 14
TEXT_PX = 13
SANS = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
MONO = "ui-monospace, 'SFMono-Regular', Menlo, Consolas, 'DejaVu Sans Mono', monospace"
SANS_EM = 0.53
"""Average advance of a sans-serif character, in em (generous for lower case)."""
MONO_EM = 0.62

STYLES = {
    # fill, stroke, dashed
    "call": ("#f3ecfb", "#7b2cbf", False),
    "panel": ("#fafafa", "#9e9e9e", False),
    "chip": ("#ffffff", "#7b2cbf", False),
    "observed": ("#ffffff", "#7b2cbf", True),
    "mode": ("#ffffff", "#5c6bc0", False),
    "replay": ("#e8f5e9", "#2e7d32", False),
    "record": ("#fff3e0", "#e65100", False),
}

TITLE = "How a call to a @recorded function flows"
DESC = (
    "A call of a function decorated with @recorded gets a key: an xxh3_128 digest of the "
    "function's module and qualified name, its code fingerprint (normalized source, helpers, "
    "constants), its arguments (bound to the signature, encoded canonically) and the content "
    "of its declared files. Observed dependencies, the functions that ran and the files read "
    "while recording, are not part of the key: they are stored in the entry and checked before "
    "a replay. The mode then decides: auto (the default) replays a hit and records a miss; "
    "replay (the default when CI is set) replays a hit and raises ReplayMiss on a miss; off "
    "calls the function and stores nothing; record calls the function and records again. "
    "Looking up reads the store: entry files (fixtures_store/<function>/<key>.json, committed), "
    "payload files beside them for large results, the git-ignored index in .cache/, and "
    "optionally the remote team cache. A hit is verified and replayed without calling the "
    "function. A miss in auto mode, and every call in record mode, calls the function, "
    "serializes the result, scans it for secrets and writes the entry and its payload file."
)


@dataclass(frozen=True)
class Line:
    text: str
    mono: bool = False
    bold: bool = False


@dataclass(frozen=True)
class Box:
    name: str
    x: int
    y: int
    w: int
    h: int
    style: str
    lines: tuple[Line, ...] = field(default=())
    align_top: bool = False
    """Panels hold other boxes: their title sits at the top instead of the middle."""

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def bottom(self) -> int:
        return self.y + self.h


def t(text: str) -> Line:
    return Line(text)


def b(text: str) -> Line:
    return Line(text, bold=True)


def m(text: str) -> Line:
    return Line(text, mono=True)


# Four columns inside the panels: x = 20, 178, 336, 494, each 146 wide.
COLUMNS = (20, 178, 336, 494)
CHIP_W = 146

BOXES: tuple[Box, ...] = (
    Box("call", 175, 10, 310, 54, "call",
        (b("1. A call of a @recorded function"), m('translate("good morning")'))),
    Box("key", 10, 90, 640, 236, "panel",
        (b("2. Its key: what identifies the recording"),), align_top=True),
    Box("function", COLUMNS[0], 122, CHIP_W, 80, "chip",
        (b("function"), m("module.qualname"))),
    Box("code", COLUMNS[1], 122, CHIP_W, 80, "chip",
        (b("code fingerprint"), t("normalized source,"), t("helpers, constants"))),
    Box("arguments", COLUMNS[2], 122, CHIP_W, 80, "chip",
        (b("arguments"), t("bound to signature,"), t("encoded canonically"))),
    Box("files", COLUMNS[3], 122, CHIP_W, 80, "chip",
        (b("declared files"), t("content of files"), t("matched by files="))),
    Box("digest", 20, 212, 620, 40, "panel",
        (t("key = xxh3_128 of these four; the entry's file name is <key>.json"),)),
    Box("observed", 20, 260, 620, 58, "observed",
        (b("+ observed dependencies (not in the key)"),
         t("functions that ran and files read while recording: stored in the entry,"),
         t("checked before every replay"))),
    Box("mode", 135, 352, 390, 54, "mode",
        (b("3. Which mode?"), t("mode() › --memo-mode › MEMO_MODE › … › CI"))),
    Box("auto", COLUMNS[0], 440, CHIP_W, 66, "mode",
        (b("auto (default)"), t("hit: replay"), t("miss: record"))),
    Box("replay-mode", COLUMNS[1], 440, CHIP_W, 66, "mode",
        (b("replay (when CI)"), t("hit: replay"), t("miss: ReplayMiss"))),
    Box("off", COLUMNS[2], 440, CHIP_W, 66, "mode",
        (b("off"), t("call the function,"), t("store nothing"))),
    Box("record-mode", COLUMNS[3], 440, CHIP_W, 66, "mode",
        (b("record"), t("call the function,"), t("record it again"))),
    Box("store", 10, 536, 640, 132, "panel",
        (b("4. The store: look up the key"),), align_top=True),
    Box("entry", COLUMNS[0], 566, CHIP_W, 88, "chip",
        (b("entry files"), m("<fn>/<key>.json"), t("in fixtures_store/,"), t("committed"))),
    Box("payload", COLUMNS[1], 566, CHIP_W, 88, "chip",
        (b("payload files"), t("beside the entry,"), t("for large results"))),
    Box("index", COLUMNS[2], 566, CHIP_W, 88, "chip",
        (b("index"), m(".cache/"), t("git-ignored,"), t("speeds up reads"))),
    Box("remote", COLUMNS[3], 566, CHIP_W, 88, "chip",
        (b("team cache"), t("optional, on S3;"), t("hits copied to"), m(".cache/remote/"))),
    Box("replay", 10, 700, 300, 80, "replay",
        (b("5a. hit: replay"), t("verify checksums and observed"),
         t("dependencies, load the result;"), t("the function is not called"))),
    Box("record", 340, 700, 310, 80, "record",
        (b("5b. miss: record"), t("call the function, serialize the result,"),
         t("scan it for secrets, write the entry and"), t("its payload file; return the result"))),
)

@dataclass(frozen=True)
class Arrow:
    points: tuple[tuple[float, float], ...]
    label: str = ""
    label_at: tuple[float, float] | None = None
    dashed: bool = False


def _box(name: str) -> Box:
    return next(bx for bx in BOXES if bx.name == name)


def _down(src: str, dst: str, x: float | None = None, label: str = "") -> Arrow:
    a, z = _box(src), _box(dst)
    x0 = a.cx if x is None else x
    x1 = z.cx if x is None else x
    return Arrow(((x0, a.bottom), (x1, z.y)), label,
                 ((x0 + x1) / 2 + 8, (a.bottom + z.y) / 2 + 4) if label else None)


ARROWS: tuple[Arrow, ...] = (
    _down("call", "key"),
    _down("key", "mode"),
    *(_down("mode", name) for name in ("auto", "replay-mode", "off", "record-mode")),
    _down("auto", "store", x=COLUMNS[0] + CHIP_W / 2, label="look up"),
    _down("replay-mode", "store", x=COLUMNS[1] + CHIP_W / 2, label="look up"),
    _down("store", "replay", x=160, label="hit"),
    _down("store", "record", x=495, label="miss (auto)"),
    # record mode skips the lookup: round the store on the right, into the record box.
    Arrow(((640, 473), (672, 473), (672, 740), (650, 740)), "", None, dashed=True),
)


# -- rendering ----------------------------------------------------------------------------------

def _width(line: Line, px: int) -> float:
    return len(line.text) * px * (MONO_EM if line.mono else SANS_EM)


def _check_fits(box: Box) -> None:
    for i, line in enumerate(box.lines):
        px = TITLE_PX if i == 0 else TEXT_PX
        if _width(line, px) > box.w - 12:
            raise ValueError(f"text too wide for box {box.name!r}: {line.text!r}")
    if not box.align_top and len(box.lines) * (TEXT_PX + 5) > box.h:
        raise ValueError(f"too many lines for box {box.name!r}")


def _text(box: Box) -> list[str]:
    out = []
    step = TEXT_PX + 5
    middle = box.y + (box.h - step * len(box.lines)) / 2 + step - 4
    first = box.y + 21 if box.align_top else middle
    for i, line in enumerate(box.lines):
        px = TITLE_PX if i == 0 else TEXT_PX
        font = MONO if line.mono else SANS
        weight = ' font-weight="bold"' if line.bold else ""
        x = box.x + 12 if box.align_top else box.cx
        anchor = "start" if box.align_top else "middle"
        out.append(f'<text x="{x:g}" y="{first + i * step:g}" font-family="{font}" '
                   f'font-size="{px}"{weight} text-anchor="{anchor}">{escape(line.text)}</text>')
    return out


def _arrow(arrow: Arrow) -> list[str]:
    points = " ".join(f"{x:g},{y:g}" for x, y in arrow.points)
    dash = ' stroke-dasharray="6 4"' if arrow.dashed else ""
    out = [f'<polyline points="{points}" fill="none" stroke="#424242" stroke-width="1.6"'
           f'{dash} marker-end="url(#head)"/>']
    if arrow.label and arrow.label_at:
        x, y = arrow.label_at
        out.append(f'<text x="{x:g}" y="{y:g}" font-family="{SANS}" font-size="{TEXT_PX}" '
                   f'fill="#424242" font-style="italic">{escape(arrow.label)}</text>')
    return out


def render() -> str:
    """The SVG document, byte for byte what docs/img/how-it-works.svg holds."""
    for box in BOXES:
        _check_fits(box)
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="title desc">',
        f'<title id="title">{escape(TITLE)}</title>',
        f'<desc id="desc">{escape(DESC)}</desc>',
        "<defs>",
        '<marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse">',
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#424242"/>',
        "</marker>",
        "</defs>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    for box in BOXES:
        fill, stroke, dashed = STYLES[box.style]
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        body.append(f'<rect x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" rx="8" '
                    f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>')
        body += _text(box)
    for arrow in ARROWS:
        body += _arrow(arrow)
    body.append("</svg>")
    return "<!-- Generated by tools/diagram.py: edit that file, then run it. -->\n" + \
        "\n".join(body) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/img/how-it-works.svg.")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the committed SVG differs from what this draws")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write the SVG")
    args = parser.parse_args(argv)
    svg = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != svg:
            print(f"{args.output} is out of date: run python tools/diagram.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(svg, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
