"""The newcomer pages (issue 19): glossary, cookbook, changelog, getting started, migration.

- the glossary defines every term the other pages rely on (a heading or a bold term);
- the changelog page of the built site is the root CHANGELOG.md, included (not a copy): it shows
  the CHANGELOG's first release heading and no unprocessed ``--8<--`` line;
- every ``memo-replay`` command of the cookbook is a real subcommand, and each option it uses is
  one that subcommand's ``--help`` lists;
- every link with an anchor on these pages reaches an element with that id in the built site.

The site is built once, with the same command as tests/test_docs_site.py, into a temporary
directory; its HTML is read with the standard library's ``html.parser``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
from conftest import REPO

GLOSSARY_TERMS = ["recording", "entry", "key", "code fingerprint", "store", "index",
                  "payload file", "observed dependency", "mode", "stream", "team cache",
                  "remote", "replay", "record", "miss"]

PAGES = ["getting-started.md", "glossary.md", "cookbook.md", "migration/index.md",
         "changelog.md"]


class _Html(HTMLParser):
    """The ids, links and heading texts of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.headings: dict[str, list[str]] = {}
        self._heading: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))
        if tag in ("h1", "h2", "h3"):
            self._heading = (tag, [])

    def handle_endtag(self, tag: str) -> None:
        if self._heading and tag == self._heading[0]:
            text = "".join(self._heading[1]).replace("¶", "").strip()
            self.headings.setdefault(tag, []).append(text)
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._heading:
            self._heading[1].append(data)


def _parse(path: Path) -> _Html:
    parser = _Html()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("mkdocs") is None:  # fail, never skip: see test_docs_site
        pytest.fail("building the docs needs mkdocs: pip install -e \".[test]\"", pytrace=False)
    site = tmp_path_factory.mktemp("docs-pages") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr + result.stdout
    return site


def _built(site: Path, page: str) -> Path:
    """The HTML file MkDocs builds from a docs page (directory URLs)."""
    stem = PurePosixPath(page).with_suffix("")
    if stem.name == "index":
        return site / stem.parent / "index.html"
    return site / stem / "index.html"


# The glossary

def test_the_glossary_defines_every_term() -> None:
    text = (REPO / "docs" / "glossary.md").read_text(encoding="utf-8")
    defined = {h.strip().lower() for h in re.findall(r"^#{2,3} (.+)$", text, re.M)}
    defined |= {b.strip().lower() for b in re.findall(r"\*\*([^*]+)\*\*", text)}
    missing = [term for term in GLOSSARY_TERMS if term not in defined]
    assert not missing, f"docs/glossary.md does not define: {missing}"


# The changelog

def test_the_changelog_page_includes_the_root_changelog(site: Path) -> None:
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    first_release = re.search(r"^## (.+)$", changelog, re.M)
    assert first_release, "CHANGELOG.md has no release heading (## [x.y.z] - date)"
    page = _built(site, "changelog.md")
    html = _parse(page)
    assert html.headings.get("h1") == ["Changelog"]
    assert html.headings["h2"][0] == first_release[1]
    sections = re.findall(r"^### (.+)$", changelog, re.M)
    assert sections, "CHANGELOG.md has no ### Added/Changed/Fixed/Security section"
    assert set(sections) <= set(html.headings.get("h3", []))
    assert "--8&lt;--" not in page.read_text(encoding="utf-8")
    assert "--8<--" not in page.read_text(encoding="utf-8")


# The cookbook's commands

def _help(*command: str) -> str:
    result = subprocess.run([sys.executable, "-m", "memo_replay", *command, "--help"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _subcommands(help_text: str) -> set[str]:
    """The COMMAND choices an argparse --help lists under "positional arguments"."""
    section = help_text.split("positional arguments:", 1)[1].split("options:", 1)[0]
    return set(re.findall(r"^    ([a-z][a-z-]*)\b", section, re.M))


def cookbook_commands() -> list[list[str]]:
    """Every `memo-replay ...` command of the cookbook: in shell blocks and in inline code."""
    text = (REPO / "docs" / "cookbook.md").read_text(encoding="utf-8")
    lines = re.findall(r"^(?:\$ )?(memo-replay [^\n`#|>]*)", text, re.M)
    lines += re.findall(r"`(memo-replay [^`]*)`", text)
    return [shlex.split(line)[1:] for line in lines]


def test_cookbook_commands_are_real_subcommands_and_options() -> None:
    commands = cookbook_commands()
    assert len(commands) >= 8, commands
    top = _subcommands(_help())
    helps: dict[tuple[str, ...], str] = {}
    for words in commands:
        assert words, "a bare `memo-replay` in the cookbook"
        assert words[0] in top, f"memo-replay {' '.join(words)}: not a subcommand"
        path: tuple[str, ...] = (words[0],)
        nested = _subcommands_of(path, helps)  # `remote` has its own: ls, stats
        if nested:
            assert len(words) > 1, f"memo-replay {words[0]} needs one of {sorted(nested)}"
            assert words[1] in nested, f"memo-replay {' '.join(words)}: not a subcommand"
            path = (words[0], words[1])
        text = helps.setdefault(path, _help(*path))
        for word in words[len(path):]:
            if word.startswith("-"):
                option = word.split("=", 1)[0]
                assert re.search(rf"(?<![\w-]){re.escape(option)}\b", text), \
                    f"memo-replay {' '.join(words)}: {option} is not an option of " \
                    f"`memo-replay {' '.join(path)}`"


def _subcommands_of(path: tuple[str, ...], helps: dict[tuple[str, ...], str]) -> set[str]:
    text = helps.setdefault(path, _help(*path))
    return _subcommands(text) if "positional arguments:" in text and "COMMAND" in text else set()


# Anchors

def test_anchored_links_on_these_pages_reach_an_element(site: Path) -> None:
    broken = []
    for page in PAGES:
        built = _built(site, page)
        for href in _parse(built).links:
            url = urlsplit(href)
            if url.scheme or url.netloc or not url.fragment:
                continue
            target = (built.parent / url.path).resolve() if url.path else built
            if target.is_dir() or not target.suffix:
                target = target / "index.html"
            if url.fragment not in _parse(target).ids:
                broken.append(f"{page}: {href}")
    assert not broken, f"links whose anchor is not on the target page: {broken}"
