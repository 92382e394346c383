"""The documentation reads as a path: grouped navigation, a "What next" at the end of each page,
link text that names the page, code that fits the page width, one list of the mode's sources.

Checked on the Markdown sources (the site build itself is tests/test_docs_site.py).
"""

from __future__ import annotations

import posixpath
import re

import pytest
import yaml
from conftest import REPO
from test_docs_examples import fences

DOCS = REPO / "docs"
GENERATED = {"reference.md", "benchmarks.md", "terminal.md"}
"""Written by mkdocstrings, benchmarks/report.py and tools/capture_terminal.py."""
NO_WHAT_NEXT = GENERATED | {"changelog.md"}
WIDTH = 80
"""What the theme shows of a code line at its usual width, without scrolling."""
CODE = {"python", "py", "python3", "toml", "yaml", "yml", "bash", "sh", "shell", "json", "ini"}
LINK = re.compile(r"(?<!!)\[((?:[^\]\[]|\[[^\]]*\])+)\]\(([^)\s]+)\)")
FILE_NAME = re.compile(r"^`?[\w./-]*\.(?:md|html)`?$|^`?[\w.-]+/[\w./-]+`?$")


def _config() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    # mkdocs.yml may hold !!python/name tags (Material's emoji extension): ignore them
    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    return yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)


def _pages() -> list[str]:
    return sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))


def _prose(markdown: str) -> str:
    """The page without its fenced code blocks."""
    return re.sub(r"^([ \t]*)(`{3,}|~{3,}).*?^\1\2[ \t]*$", "", markdown, flags=re.M | re.S)


def test_nav_is_grouped_as_tutorials_how_to_reference_explanation() -> None:
    config = _config()
    assert [next(iter(item)) for item in config["nav"]] == [
        "Tutorials", "How-to guides", "Reference", "Explanation"]
    assert "navigation.footer" in config["theme"]["features"]  # previous / next links
    listed: list[str] = []

    def walk(items: list) -> None:
        for item in items:
            for value in item.values():
                walk(value) if isinstance(value, list) else listed.append(value)

    walk(config["nav"])
    assert sorted(listed) == _pages(), "every page is in the navigation, once"


@pytest.mark.parametrize("page", [p for p in _pages() if p not in NO_WHAT_NEXT])
def test_a_page_ends_with_what_to_read_next(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    assert "\n## What next\n" in text, f"{page} has no '## What next' section"
    last = text.rsplit("\n## What next\n", 1)[1]
    assert "\n## " not in last, f"{page}: 'What next' is not the last section"
    links = LINK.findall(last)
    assert 1 <= len(links) <= 3, f"{page}: 'What next' has {len(links)} links"


@pytest.mark.parametrize("page", ["README.md", *(f"docs/{p}" for p in _pages())])
def test_link_text_is_not_a_file_name(page: str) -> None:
    text = _prose((REPO / page).read_text(encoding="utf-8"))
    named = [f"[{text}]({href})" for text, href in LINK.findall(text)
             if not href.startswith(("http:", "https:", "mailto:"))
             and FILE_NAME.match(" ".join(text.split()))]
    if page == "README.md":  # on GitHub, outside the site: only its docs/ links count
        named = [link for link in named if "](docs/" not in link]
    assert not named, f"{page}: link text should be the page's title: {named}"


def test_link_text_in_the_site_names_the_page() -> None:
    """Links to another page of the site read as its title (a section may follow a colon)."""
    titles: dict[str, str] = {}

    def walk(items: list) -> None:
        for item in items:
            for title, value in item.items():
                walk(value) if isinstance(value, list) else titles.setdefault(value, title)

    walk(_config()["nav"])
    wrong = []
    for page in _pages():
        if page in GENERATED or page in {"glossary.md", "migration/index.md", "cookbook.md",
                                         "getting-started.md", "changelog.md"}:
            continue
        for text, href in LINK.findall(_prose((DOCS / page).read_text(encoding="utf-8"))):
            path = href.split("#")[0]
            if href.startswith(("http:", "https:", "mailto:", "#")) or not path.endswith(".md"):
                continue
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
            if not " ".join(text.split()).startswith((titles.get(target, "?"), "`")):
                wrong.append(f"{page}: [{text}]({href})")
    assert not wrong, "link text should start with the target's title:\n" + "\n".join(wrong)


@pytest.mark.parametrize("page", [p for p in _pages() if p not in GENERATED])
def test_code_lines_fit_the_page_width(page: str) -> None:
    long = [f"line {block.line + 1 + n}: {len(line)} characters"
            for block in fences((DOCS / page).read_text(encoding="utf-8"))
            if block.language in CODE
            for n, line in enumerate(block.code.splitlines()) if len(line) > WIDTH]
    assert not long, f"{page}: code lines over {WIDTH} characters: {long}"


def test_output_blocks_wrap() -> None:
    assert "stylesheets/extra.css" in _config()["extra_css"]
    css = (DOCS / "stylesheets" / "extra.css").read_text(encoding="utf-8")
    assert ".md-typeset .language-text code" in css
    assert "white-space: pre-wrap" in css


def test_the_mode_precedence_is_listed_once_and_matches_the_code() -> None:
    modes = (DOCS / "modes.md").read_text(encoding="utf-8")
    section = modes.split("## Where the mode comes from", 1)[1].split("\n## ", 1)[0]
    items = re.findall(r"^\d+\. (.*)$", section, re.M)
    order = ["memo_replay.mode(", "--memo-mode", "MEMO_MODE", "memo_mode", "@recorded(mode=",
             "[tool.memo_replay] mode", "the default"]
    assert len(items) == len(order)
    for item, source in zip(items, order, strict=True):
        assert source in item, (source, item)
    pytest_page = (DOCS / "pytest.md").read_text(encoding="utf-8")
    assert "modes.md#where-the-mode-comes-from" in pytest_page
    assert "Precedence, strongest first" not in pytest_page  # said once, on the modes page


def test_no_page_cites_a_file_outside_the_repository() -> None:
    for page in ["README.md", *(f"docs/{p}" for p in _pages())]:
        assert "DESIGN.md" not in (REPO / page).read_text(encoding="utf-8"), page


def test_pre_commit_example_uses_the_sites_repository() -> None:
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    repos = re.findall(r"- repo: (https?://\S+)", cli)
    assert repos == [_config()["repo_url"]]


def test_the_cli_table_shows_no_escaped_pipe() -> None:
    assert "\\|" not in (DOCS / "cli.md").read_text(encoding="utf-8")
