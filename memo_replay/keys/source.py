"""Finding a definition in its module's source.

This module owns reading source code. A module's source is parsed with :mod:`ast` once per
process (:func:`module_tree`; from :mod:`linecache` for IPython cells) and indexed:
function definitions by first line, definitions by qualified name, and the module-level
statements binding (or mutating) each name (:func:`binding_statements`). :func:`find_definition`
returns the node defining a function or class (shared: never edited), falling back to
:func:`inspect.getsourcelines`; :func:`parse_definition` a copy of it. What of that source counts
for a key is :mod:`memo_replay.keys.normalize`; what it reads is :mod:`memo_replay.keys.reads`.
"""

from __future__ import annotations

import _thread
import ast
import gc
import os
import re
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


# -- a module's source, parsed once per process ---------------------------------------------------

class Span(NamedTuple):
    """Where one definition is in its module's source (from the module's one full parse)."""

    qualname: str
    """Its qualified name in the module (``Class.method``, ``f.<locals>.g``)."""
    name: str
    start: int
    """Its first line: its first decorator's, or its ``def``'s or ``class``'s."""
    end: int
    indented: bool
    """Whether it starts after some indentation (a method, a nested function)."""
    is_class: bool


class ModuleTree:
    """A parsed module, indexed, without its tree.

    The module's source is parsed once, to index where each definition is and which
    module-level statements bind each name; then the tree is dropped, keeping only those
    statements. A definition's node is parsed again from its exact lines when it is needed
    (:meth:`definition`): a tree held for the whole process is tens of thousands of objects
    that every full garbage collection visits — in a 100-module project, holding the trees cost
    more than parsing them."""

    __slots__ = ("_bindings", "_lines", "_lock", "_materialized", "by_line", "by_qualname",
                 "functions", "plain_digests", "source")

    def __init__(self, source: str, by_line: dict[int, Span], by_qualname: dict[str, Span],
                 bindings: dict[str, tuple[ast.stmt | Span, ...]]) -> None:
        self.source = source
        """The text that was parsed."""
        self.by_line = by_line
        """Function definitions by first line (a code object's ``co_firstlineno``: its first
        decorator's line, or its ``def``'s)."""
        self.by_qualname = by_qualname
        self.functions = {span.qualname: span for span in by_line.values()}
        """Function definitions by qualified name (the last one of a name, even where a class
        of that name comes after it)."""
        """Function and class definitions by qualified name (the last one of a name)."""
        self.plain_digests: dict[str, str] = {}
        """Qualified name → digest of the function's definition cleaned with no globals (what
        the check of observed dependencies compares), once computed."""
        self._bindings = bindings
        self._materialized: dict[str, tuple[ast.stmt, ...]] = {}
        self._lines = source.split("\n")  # the parser's lines: only "\n" ends one here
        self._lock = _thread.allocate_lock()

    def definition(self, span: Span) -> Definition | None:
        """A new node of the definition at ``span``, parsed again from its lines alone
        (indented, inside an ``if 1:``). Exact: the span comes from the parse of the whole
        module, and a definition starts a logical line and ends where its last statement does.
        Parsing a definition's lines again costs less than holding the module's tree (measured
        on ``benchmarks/first_call.py``: holding the 16 most recently used trees cost 20% more,
        holding all of them 40%; holding the last one parsed, whose definitions are often
        wanted next, halved the parses of definitions and saved nothing measurable)."""
        text = "\n".join(self._lines[span.start - 1:span.end]) + "\n"
        parsed = _parse_text("if 1:\n" + text if span.indented else text)
        if parsed is None or len(parsed.body) != 1:
            return None
        node = parsed.body[0]
        if span.indented:
            if not isinstance(node, ast.If) or len(node.body) != 1:
                return None
            node = node.body[0]
        kinds = ast.ClassDef if span.is_class else (ast.FunctionDef, ast.AsyncFunctionDef)
        return node if isinstance(node, kinds) and node.name == span.name else None

    def bindings(self, name: str) -> tuple[ast.stmt, ...]:
        """The module-level statements binding (or mutating) ``name``, in source order; the
        same tuple each time (callers remember what they computed from it by identity)."""
        with self._lock:
            found = self._materialized.get(name)
        if found is not None:
            return found
        made: list[ast.stmt] = []
        for item in self._bindings.get(name, ()):
            if isinstance(item, Span):  # a def or class: parsed again from its lines
                node = self.definition(item)
                if node is not None:
                    made.append(node)
            else:
                made.append(item)
        with self._lock:
            return self._materialized.setdefault(name, tuple(made))

    def tree(self) -> ast.Module | None:
        """The whole module parsed again (rarely needed: the lambdas on a line)."""
        return _parse_text(self.source)


_trees: dict[str, tuple[object, ModuleTree | None, tuple[int, int, int] | None]] = {}
"""filename → (what it was parsed from: the file's text, or linecache's lines; the tree; the
file's stamp then)."""
_trees_lock = _thread.allocate_lock()
parses = 0
"""How many module sources this process has parsed (:func:`module_tree`); read by tests."""


def module_tree(filename: str, module_globals: Mapping[str, Any] | None = None
                ) -> ModuleTree | None:
    """The parsed source of ``filename``; parsed again only when the file's (size, mtime_ns,
    inode) changed. None without a parseable source. Every part of the fingerprint and of the
    observed check reads a module through here: each module is read and parsed once per
    process.

    A file on disk is read directly (UTF-8, or the encoding its PEP 263 cookie names, as
    :mod:`linecache` would); code without a file of its own (``<ipython-input-…>``, a module
    whose loader holds its source) comes from :mod:`linecache`, imported only then."""
    global parses
    stamp = None if filename.startswith("<") else _stamp(filename)
    with _trees_lock:
        cached = _trees.get(filename)
    if stamp is not None:
        if cached is not None and cached[2] == stamp:
            return cached[1]
        text: object = read_source(filename)
    else:
        text = _linecache_lines(filename, module_globals)
        with _trees_lock:
            cached = _trees.get(filename)
            if cached is not None and cached[0] is text and cached[2] is None:
                return cached[1]
    if not text:
        return None
    parsed = _parse(text if isinstance(text, str) else "".join(text))  # type: ignore[arg-type]
    with _trees_lock:
        parses += 1
        _trees[filename] = (text, parsed, stamp)
    return parsed


_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)


def read_source(filename: str) -> str | None:
    """The text of a source file as Python reads it (universal newlines), or None. UTF-8
    unless a PEP 263 cookie in the first two lines names another encoding
    (:func:`tokenize.detect_encoding` then decides, imported only for such a file)."""
    try:
        with open(filename, "rb") as file:
            data = file.read()
    except (OSError, ValueError):
        return None
    head = data[:data.find(b"\n", data.find(b"\n") + 1) + 1] if b"\n" in data else data
    cookie = _COOKIE.search(head)
    try:
        if cookie is None or cookie.group(1).lower().replace(b"_", b"-") in (b"utf-8",
                                                                             b"utf8"):
            text = data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8")
        else:
            import io
            import tokenize

            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
            text = data.decode(encoding)
            if encoding == "utf-8-sig":
                text = text.removeprefix("\ufeff")
    except (UnicodeDecodeError, LookupError, SyntaxError):
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _linecache_lines(filename: str, module_globals: Mapping[str, Any] | None) -> list[str]:
    """What :mod:`linecache` holds for ``filename`` (an IPython cell; a module whose loader has
    its source but no file on disk)."""
    import linecache

    # linecache reads module globals only to find a loader for a file not on disk.
    loader_globals = None if not module_globals else {
        name: module_globals[name] for name in ("__name__", "__loader__", "__spec__")
        if name in module_globals}
    return linecache.getlines(filename, loader_globals)


def _parse(text: str) -> ModuleTree | None:
    """Parse and index a module's source (its tree is dropped: see :class:`ModuleTree`)."""
    tree = _parse_text(text)
    return None if tree is None else _index(tree, text)


def _parse_text(text: str) -> ast.Module | None:
    """:func:`ast.parse`, with the cyclic garbage collector paused: a tree is thousands of new
    objects and no garbage (a tree holds no cycles), yet each 700 of them would start a
    collection."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    finally:
        if paused:
            gc.enable()


def _stamp(filename: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(filename)
    except (OSError, ValueError):
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def _index(tree: ast.Module, text: str) -> ModuleTree:
    by_line: dict[int, Span] = {}
    by_qualname: dict[str, Span] = {}
    spans: dict[int, Span] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in blocks(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                is_class = isinstance(child, ast.ClassDef)
                span = Span(prefix + child.name, child.name, first,
                            child.end_lineno or child.lineno, child.col_offset > 0, is_class)
                spans[id(child)] = span
                by_qualname[span.qualname] = span
                if is_class:
                    visit(child, f"{prefix}{child.name}.")
                else:
                    by_line[first] = span
                    visit(child, f"{prefix}{child.name}.<locals>.")
            else:
                visit(child, prefix)

    visit(tree, "")
    bindings: dict[str, list[ast.stmt | Span]] = {}
    for statement in _module_level(tree.body):
        # A def or class is kept as its span (its body is most of a module's tree).
        kept = spans.get(id(statement), statement)
        for name in _bound_by(statement):
            bindings.setdefault(name, []).append(kept)
    return ModuleTree(text, by_line, by_qualname,
                      {name: tuple(found) for name, found in bindings.items()})


_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)


def blocks(node: ast.AST) -> Iterator[ast.AST]:
    """The children of ``node`` that are or hold statements, in :func:`ast.iter_child_nodes`'s
    order: where a ``def`` or ``class`` can be (never inside an expression), so finding them
    does not visit every expression of a module."""
    for name in node._fields:
        field = getattr(node, name, None)
        if isinstance(field, list):
            for item in field:
                if isinstance(item, _BLOCKS):
                    yield item


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at module level: through ``if``/``try``/``with``, not into definitions."""
    for statement in body:
        if isinstance(statement, (ast.If, ast.Try, ast.With, ast.AsyncWith)) or \
                type(statement).__name__ == "TryStar":
            yield from _module_level(getattr(statement, "body", []))
            yield from _module_level(getattr(statement, "orelse", []))
            yield from _module_level(getattr(statement, "finalbody", []))
            for handler in getattr(statement, "handlers", []):
                yield from _module_level(handler.body)
            if isinstance(statement, (ast.With, ast.AsyncWith)):
                yield statement  # `with … as NAME` binds NAME
        else:
            yield statement


def _bound_by(statement: ast.stmt) -> set[str]:
    """Names a module-level statement binds, or mutates (``NAME[k] = …``, ``NAME.update(…)``)."""
    targets: list[ast.expr] = []
    if isinstance(statement, ast.Assign):
        targets = list(statement.targets)
    elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        targets = [statement.target]
    elif isinstance(statement, ast.Delete):
        targets = list(statement.targets)
    elif isinstance(statement, (ast.For, ast.AsyncFor)):
        targets = [statement.target]
    elif isinstance(statement, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in statement.items if item.optional_vars]
    elif isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in statement.names}
    elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        targets = [statement.value.func]  # NAME.register(…), NAME.update(…)
        if not isinstance(statement.value.func, ast.Attribute):
            return set()
    names: set[str] = set()
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                names.add(node.id)
                break
            if isinstance(node, (ast.Tuple, ast.List, ast.Starred)):
                for element in ast.walk(node):
                    if isinstance(element, ast.Name) and isinstance(element.ctx, ast.Store):
                        names.add(element.id)
                break
    return names


def binding_statements(filename: str, name: str,
                       module_globals: Mapping[str, Any] | None = None) -> tuple[ast.stmt, ...]:
    """The module-level statements of ``filename`` that bind (or mutate) ``name``."""
    parsed = module_tree(filename, module_globals)
    return () if parsed is None else parsed.bindings(name)


# -- one definition -------------------------------------------------------------------------------

class Located(NamedTuple):
    """A definition's node and, when it was found in an indexed module, where."""

    node: Definition
    module: ModuleTree | None
    span: Span | None


def parse_definition(obj: types.FunctionType | type) -> Definition | None:
    """A copy of the AST node defining ``obj`` (the caller's to edit), or None when its source
    is unavailable."""
    found = find_definition(obj)
    if found is None:
        return None
    copied: Definition = _copy(found)
    return copied


def find_definition(obj: types.FunctionType | type) -> Definition | None:
    """The AST node defining ``obj``, or None when its source is unavailable. It may be shared
    with everything else in this process: never edit it (:func:`parse_definition` copies)."""
    found = locate_definition(obj)
    return None if found is None else found.node


def locate_definition(obj: types.FunctionType | type) -> Located | None:
    """The node defining ``obj`` and where it is; None when its source is unavailable."""
    found = _find_in_module(obj)
    if found is not None:
        return found
    import inspect  # code whose module's source cannot be indexed: rare
    import textwrap

    try:
        lines, _ = inspect.getsourcelines(obj)
    except (OSError, TypeError):
        return None
    text = textwrap.dedent("".join(lines))
    try:
        tree = ast.parse(text)
    except SyntaxError:
        # A lambda or a definition cut out of a larger expression: not parseable on its own.
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return Located(node, None, None)
    return None


def _find_in_module(obj: types.FunctionType | type) -> Located | None:
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
        parsed = module_tree(code.co_filename, obj.__globals__)
        span = None if parsed is None else parsed.by_line.get(code.co_firstlineno)
        if parsed is None or span is None or span.name != code.co_name:
            return None
    else:
        module = sys.modules.get(getattr(obj, "__module__", None) or "")
        filename = getattr(module, "__file__", None)
        if not (isinstance(filename, str) and filename.endswith(".py") and
                os.path.exists(filename)):
            filename = _class_file(obj)
        if not filename:
            return None
        parsed = module_tree(filename, vars(module) if module is not None else None)
        span = None if parsed is None else parsed.by_qualname.get(obj.__qualname__)
        if parsed is None or span is None or not span.is_class:
            return None
    node = parsed.definition(span)
    return None if node is None else Located(node, parsed, span)


def _class_file(cls: type) -> str | None:
    """:func:`inspect.getsourcefile` of a class whose module is not a ``.py`` file on disk
    (``__main__`` of ``python -c``, a module loaded from elsewhere): rare, so imported here."""
    import inspect

    try:
        return inspect.getsourcefile(cls)
    except (TypeError, OSError):  # a class of `python -c`, a builtin
        return None


def _copy(node: Any) -> Any:
    """A copy of an AST (the cached module tree is never edited), several times faster than
    :func:`copy.deepcopy`."""
    if isinstance(node, ast.AST):
        copied = type(node)(**{name: _copy(getattr(node, name, None)) for name in node._fields})
        for name in node._attributes:  # positions: ast.unparse reads them
            if hasattr(node, name):
                setattr(copied, name, getattr(node, name))
        return copied
    if isinstance(node, list):
        return [_copy(item) for item in node]
    return node
