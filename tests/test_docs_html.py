"""What a reader of the built site sees, checked from the generated HTML (issue 19).

The site is built once for this module (``mkdocs build --no-strict`` into a temporary
directory: the strict build, warnings and all, is tests/test_docs_site.py's job) and every page
is read with the standard library's ``html.parser``:

- the API reference shows no reST role text (``:class:`` …) and no ``>>>`` example left as a
  blockquote, and documents every public name under its public path ``memo_replay.<name>``
  (``recorded``, ``Recorded``, ``Store``, ``Entry``, ``Explanation``, ``CallEvent`` with its
  outcome values, ``RecordedStream`` and every error class ``memo_replay`` exports);
- on every page, an internal link reads as words (the target page's title), never as a file
  name or a bare path;
- on every page, no line of a code block that the site does not wrap is longer than 80
  characters (Material shows about that many before cutting a line off); blocks of class
  ``language-text`` or ``language-console`` wrap, through docs/stylesheets/extra.css;
- the picture of how it works (docs/img/how-it-works.svg) is on the home page and the keys page.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from conftest import REPO

import memo_replay

CODE_WIDTH = 80
"""Characters of a code line the theme shows at page width without cutting it off."""
WRAPPED = ("language-text", "language-console")
"""Code blocks the site wraps (docs/stylesheets/extra.css): their lines may be longer."""
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr):")
TOP_LEVEL_ID = re.compile(r"^memo_replay\.[A-Za-z_][A-Za-z0-9_]*$")
FILE_NAME = re.compile(r"\.(?:md|html?)$", re.IGNORECASE)
BARE_PATH = re.compile(r"^[\w.~-]*/[\w./~-]*$")
"""``team-workflow/``, ``guides/streaming``, ``../keys``: a path, not words."""
DIAGRAM = "how-it-works.svg"
OUTCOMES = ("replayed", "recorded", "bypassed", "missed")
NEEDED = {"mkdocs": "mkdocs", "material": "mkdocs-material", "mkdocstrings": "mkdocstrings[python]"}


@dataclass
class CodeBlock:
    classes: tuple[str, ...]
    text: str = ""


@dataclass
class Link:
    href: str
    text: str = ""


@dataclass
class Page:
    """What the checks need from one HTML page (its article: the content, not the theme)."""

    path: str
    ids: set[str] = field(default_factory=set)
    article_text: list[str] = field(default_factory=list)
    blockquotes: list[str] = field(default_factory=list)
    code_blocks: list[CodeBlock] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    sections: dict[str, list[str]] = field(default_factory=dict)
    """Text under each top-level API object (``memo_replay.CallEvent``) until the next one."""


class PageParser(HTMLParser):
    def __init__(self, path: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page(path)
        self._divs: list[tuple[str, ...]] = []
        self._article = 0
        self._quotes: list[list[str]] = []
        self._code: CodeBlock | None = None
        self._link: Link | None = None
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        classes = tuple(found.get("class", "").split())
        if "id" in found:
            self.page.ids.add(found["id"])
            if TOP_LEVEL_ID.match(found["id"]):
                self._section = found["id"]
                self.page.sections.setdefault(self._section, [])
        if tag == "div":
            self._divs.append(classes)
        elif tag == "article":
            self._article += 1
        elif tag == "blockquote":
            self._quotes.append([])
        elif tag == "pre" and self._article:
            highlight = next((c for c in reversed(self._divs) if "highlight" in c), ())
            self._code = CodeBlock(highlight + classes)
        elif tag == "a" and self._article and "headerlink" not in classes:
            self._link = Link(found.get("href", ""))
        elif tag == "img":
            self.page.images.append(found.get("src", ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("img", "br", "hr", "input", "meta", "link"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._divs:
            self._divs.pop()
        elif tag == "article" and self._article:
            self._article -= 1
        elif tag == "blockquote" and self._quotes:
            self.page.blockquotes.append("".join(self._quotes.pop()))
        elif tag == "pre" and self._code is not None:
            self.page.code_blocks.append(self._code)
            self._code = None
        elif tag == "a" and self._link is not None:
            self.page.links.append(self._link)
            self._link = None

    def handle_data(self, data: str) -> None:
        if not self._article:
            return
        self.page.article_text.append(data)
        for quote in self._quotes:
            quote.append(data)
        if self._code is not None:
            self._code.text += data
        if self._link is not None:
            self._link.text += data
        if self._section is not None:
            self.page.sections[self._section].append(data)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Page]:
    """Every page of the built site, by its path in the site (``reference/index.html``)."""
    missing = sorted({dist for module, dist in NEEDED.items() if not _importable(module)})
    if missing:
        pytest.fail(f"building the docs needs {', '.join(missing)}: pip install -e \".[test]\"",
                    pytrace=False)
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--no-strict", "-d",
                             str(out)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"mkdocs build failed:\n{result.stderr}{result.stdout}"
    pages = {}
    for html in sorted(out.rglob("*.html")):
        relative = html.relative_to(out).as_posix()
        if relative == "404.html":
            continue
        parser = PageParser(relative)
        parser.feed(html.read_text(encoding="utf-8"))
        parser.close()
        pages[relative] = parser.page
    assert "index.html" in pages
    assert "reference/index.html" in pages
    return pages


def _reference(site: dict[str, Page]) -> Page:
    return site["reference/index.html"]


def test_the_reference_shows_no_rest_role(site: dict[str, Page]) -> None:
    text = "".join(_reference(site).article_text)
    left = sorted({text[max(0, m.start() - 30):m.end() + 30].replace("\n", " ")
                   for m in ROLE.finditer(text)})
    assert not left, f"{len(left)} reST roles shown as text in the API reference: {left[:8]}"


def test_the_reference_has_no_example_left_in_a_blockquote(site: dict[str, Page]) -> None:
    quoted = [" ".join(q.split())[:100] for q in _reference(site).blockquotes if ">>>" in q]
    assert not quoted, (f"{len(quoted)} `>>>` examples render as blockquotes in the API "
                        f"reference (fence them as ```pycon): {quoted[:5]}")


def public_names() -> list[str]:
    """The names the reference must document under ``memo_replay.``: the main API and every
    error class of memo_replay.errors that ``memo_replay.__all__`` exports."""
    names = ["recorded", "Recorded", "Store", "Entry", "Explanation", "CallEvent",
             "RecordedStream"]
    for name in memo_replay.__all__:
        obj = getattr(memo_replay, name)
        if isinstance(obj, type) and issubclass(obj, BaseException) \
                and obj.__module__ == "memo_replay.errors":
            names.append(name)
    return names


def test_public_names_are_documented_under_their_public_path(site: dict[str, Page]) -> None:
    reference = _reference(site)
    errors = [name for name in public_names() if name not in ("recorded", "Recorded", "Store",
              "Entry", "Explanation", "CallEvent", "RecordedStream")]
    assert "MemoReplayError" in errors  # the list of errors is not empty
    assert "ReplayMiss" in errors
    missing = [f"memo_replay.{name}" for name in public_names()
               if f"memo_replay.{name}" not in reference.ids]
    internal = sorted(i for i in reference.ids
                      if re.match(r"^memo_replay\.[a-z_]+\.[a-z_.]+\.", i))
    assert not missing, (f"not documented under their public path in the API reference: "
                         f"{missing}; internal paths found instead: {internal[:8]}")
    assert "memo_replay.errors.warn" not in reference.ids, "the internal errors.warn is listed"


def test_call_event_documents_its_outcomes(site: dict[str, Page]) -> None:
    section = " ".join(_reference(site).sections.get("memo_replay.CallEvent", []))
    assert section, "no section memo_replay.CallEvent in the API reference"
    missing = [value for value in OUTCOMES if value not in section]
    assert not missing, f"CallEvent's section does not mention the outcomes {missing}"


def test_internal_links_read_as_words(site: dict[str, Page]) -> None:
    bad = []
    for page in site.values():
        for link in page.links:
            if re.match(r"^[a-z][a-z0-9+.-]*:", link.href) or not link.href \
                    or link.href.startswith("#"):
                continue  # external, or a cross-reference within the page
            text = " ".join(link.text.split())
            if FILE_NAME.search(text) or BARE_PATH.match(text):
                bad.append(f"{page.path}: [{text}]({link.href})")
    assert not bad, (f"{len(bad)} internal links read as a file name (use the page's title):"
                     "\n" + "\n".join(bad[:40]))


def test_the_site_wraps_output_blocks() -> None:
    css = (REPO / "docs" / "stylesheets" / "extra.css").read_text(encoding="utf-8")
    rule = re.search(r"\.md-typeset\s+\.language-text\s+code\s*,\s*"
                     r"\.md-typeset\s+\.language-console\s+code\s*\{([^}]*)\}", css)
    assert rule, "docs/stylesheets/extra.css has no rule for .language-text/-console code"
    assert re.search(r"white-space\s*:\s*pre-wrap", rule.group(1))
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    assert "stylesheets/extra.css" in config, "mkdocs.yml does not load extra.css"


def test_no_code_line_is_cut_off(site: dict[str, Page]) -> None:
    long = []
    for page in site.values():
        for block in page.code_blocks:
            if any(c in block.classes for c in WRAPPED):
                continue
            for line in block.text.splitlines():
                if len(line) > CODE_WIDTH:
                    long.append(f"{page.path} ({len(line)}): {line[:100]}")
    assert not long, (f"{len(long)} code lines over {CODE_WIDTH} characters in blocks the "
                      "site does not wrap (shorten them, or mark output as ```text):\n"
                      + "\n".join(long[:40]))


@pytest.mark.parametrize("path", ["index.html", "keys/index.html"])
def test_the_diagram_is_shown(site: dict[str, Page], path: str) -> None:
    assert any(src.endswith(DIAGRAM) for src in site[path].images), (
        f"{path} does not show img/{DIAGRAM}")
