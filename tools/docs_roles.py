"""A griffe extension for the docs site: Sphinx roles in docstrings become cross-references.

The package's docstrings are written with reST roles (``:class:`Store```,
``:func:`~memo_replay.keys.normalize.render```): they read well in the source and in ``help()``,
and they say what kind of object a name is. mkdocstrings renders docstrings as Markdown, where a
role would show literally (``:class:`` followed by the name). Rewriting ~280 roles across every
module would be a large diff and a rule each new docstring would have to remember; this extension
rewrites them instead, in memory, while the site is built (``mkdocs.yml`` loads it with the
python handler's ``extensions:`` option). The source is not touched.

Each role becomes an *optional* autorefs cross-reference, the kind mkdocstrings itself makes for
type annotations: a link when the target is documented on the site, plain code otherwise (private
helpers, the standard library, which the site has no inventory of, so the build needs no
network) — never a broken link, so ``mkdocs build --strict`` stays meaningful. As in Sphinx:

- ``~a.b.c`` shows ``c``; ``title <a.b.c>`` shows ``title``; ``!name`` is shown, never linked;
- a function or method gets ``()`` unless it has an explicit title;
- a short name (``Store``, ``verify``, ``Store.prune``) is resolved in the scope of the object
  whose docstring holds it (its members, its imports, then its parents'), as Sphinx does.

``tests/test_docs_site.py`` builds the site and checks that no role text is left in the API
reference.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?P<role>class|func|meth|mod|attr|data|exc|obj|const)"
                  r":`(?P<content>[^`]+)`")
"""A Python-domain role: ``:class:`X``` (also ``:py:class:`X```)."""

_EXPLICIT = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
_CALLABLE = frozenset({"func", "meth"})


Resolve = Callable[[str], str]
"""Turns a short name into a full path, or raises (griffe's ``Object.resolve``)."""


def convert(text: str, resolve: Resolve | None = None) -> str:
    """``text`` with every role replaced by an optional cross-reference (raw HTML autorefs
    understands). ``resolve(name) -> str`` turns a short name into a full path, or raises."""
    return ROLE.sub(lambda match: _reference(match["role"], match["content"], resolve), text)


def _reference(role: str, content: str, resolve: Resolve | None) -> str:
    content = " ".join(content.split())  # a role may be wrapped over two docstring lines
    explicit = _EXPLICIT.match(content)
    if explicit and explicit["title"]:
        title, target = explicit["title"], explicit["target"].strip()
    else:
        target = content
        title = ""
    linked = not target.startswith("!")
    target = target.lstrip("!")
    if not title:
        shortened = target.startswith("~")
        target = target.lstrip("~.")
        title = target.rsplit(".", 1)[-1] if shortened else target
        if role in _CALLABLE and not title.endswith(")"):
            title += "()"
    else:
        target = target.lstrip("~.")
    code = f"<code>{html.escape(title)}</code>"
    if not linked:
        return code
    identifier = html.escape(_resolved(target, resolve), quote=True)
    return f'<autoref identifier="{identifier}" optional>{code}</autoref>'


def _resolved(target: str, resolve: Resolve | None) -> str:
    """The full path of ``target``: its first name resolved in scope, the rest appended."""
    if resolve is None:
        return target
    first, _, rest = target.partition(".")
    try:
        path = resolve(first)
    except (griffe.NameResolutionError, KeyError, AttributeError, ValueError):
        return target  # a full path already, or a name of another package: left as written
    return f"{path}.{rest}" if rest else path


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    """``obj`` and everything defined in it (aliases are skipped: their docstrings are their
    targets', converted where the target is defined)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)  # type: ignore[arg-type]


class SphinxRoles(griffe.Extension):
    """Rewrites the roles of every docstring once a package is completely loaded (imports and
    members known, so short names resolve)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            docstring = obj.docstring
            if docstring is not None and ":`" in docstring.value:
                docstring.value = convert(docstring.value, obj.resolve)


if not hasattr(griffe.Extension, "on_package"):
    # older griffe 1.x releases (Python 3.10 installs griffe 1.x) name the same event
    # on_package_loaded; later versions warn about that name, griffe 2 ignores it.
    SphinxRoles.on_package_loaded = SphinxRoles.on_package  # type: ignore[attr-defined]
