"""Observed dependencies: the project code that ran and the project files read while a call was
recorded — what static analysis of the source cannot see (an override in the subclass that was
instantiated, a dispatch table, a callback, a file the translator opens without ``files=``).

While a recording is made (the call is expensive anyway), an :class:`Observer` watches the
current thread: every project function that starts (``sys.monitoring`` on Python 3.12+,
``sys.setprofile`` before) and every project file opened for reading (an audit hook, installed
once per process the first time something is recorded). What it saw is stored in the entry as
:class:`Observed`: each function by ``module.qualname`` with its file, its qualified name in that
file and a digest of its normalized definition, and each file by its path relative to the
project root with a digest of its content. They are not part of the key (they are known only
after the call); a recording serves only while they are unchanged (:func:`changes`).

Checking never imports or runs anything: a function's current digest is computed from its source
file, parsed once per process; file digests are reused while the file's stamp is unchanged. The
code part of an entry's observed set is checked once per process (source code does not change
under a running interpreter); observed files are checked on every replay, like declared files.

Not observed: code and files of the standard library, installed packages and memo_replay
itself; ``.py`` sources (their functions are observed as code); anything under the store; other
threads than the one making the call; environment variables.
"""

from __future__ import annotations

import _thread
import ast
import json
import os
import sys
import types
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

from xxhash import xxh3_128_hexdigest

from memo_replay.project import is_project_file

if TYPE_CHECKING:
    from pathlib import Path

    from memo_replay.keys.source import ModuleTree

_SOURCE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyd", ".so")


class ObservedCode(NamedTuple):
    """A project function that ran during the recording."""

    file: str
    """Its source file, relative to the project root (POSIX)."""
    qualname: str
    """Its qualified name in that file (``Class.method``, ``f.<locals>.g``, ``<lambda@12>``)."""
    hash: str
    """Digest of its normalized definition."""


class Observed(NamedTuple):
    """What a recording depended on beyond its key."""

    code: Mapping[str, ObservedCode]
    """``module.qualname`` → the function."""
    files: Mapping[str, str]
    """Path relative to the project root → digest of the content."""
    digest: str = ""
    """One digest of the whole set (what a process remembers as checked): see :meth:`of`."""

    @classmethod
    def of(cls, code: Mapping[str, ObservedCode], files: Mapping[str, str]) -> Observed:
        """An observed set with its digest (computed once: a replay compares only it)."""
        document = _document(code, files)
        return cls(code, files, xxh3_128_hexdigest(json.dumps(document, sort_keys=True).encode()))

    def document(self) -> dict[str, Any]:
        """The entry's ``observed`` field."""
        return _document(self.code, self.files)

    @classmethod
    def from_document(cls, value: object) -> Observed:
        """Read back what :meth:`document` wrote; ``ValueError`` naming the field otherwise."""
        if not isinstance(value, Mapping):
            raise ValueError("`observed` should be an object")
        code, files = value.get("code", {}), value.get("files", {})
        if not isinstance(code, Mapping) or not isinstance(files, Mapping):
            raise ValueError("`observed.code` and `observed.files` should be objects")
        functions = {}
        for name, item in code.items():
            if not isinstance(item, Mapping) or not all(
                    isinstance(item.get(k), str) for k in ("file", "hash", "qualname")):
                raise ValueError(f"`observed.code.{name}` should have file, hash and qualname")
            functions[str(name)] = ObservedCode(item["file"], item["qualname"], item["hash"])
        if not all(isinstance(v, str) for v in files.values()):
            raise ValueError("`observed.files` should map paths to hashes")
        return cls.of(functions, dict(files))


def _document(code: Mapping[str, ObservedCode], files: Mapping[str, str]) -> dict[str, Any]:
    return {
        "code": {name: {"file": c.file, "hash": c.hash, "qualname": c.qualname}
                 for name, c in sorted(code.items())},
        "files": dict(sorted(files.items())),
    }


# -- watching a call -----------------------------------------------------------------------------

_active: ContextVar[Observer | None] = ContextVar("memo_replay_observer", default=None)
_hook_installed = False
_hook_lock = _thread.allocate_lock()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open":
        return
    observer = _active.get()
    if observer is not None:
        observer.opened(args)


class Observer:
    """Watches what project code runs and which project files are read, in this thread, between
    :meth:`start` and :meth:`stop`."""

    def __init__(self, root: Path, *, exclude: types.CodeType | None, store: Path | None,
                 files: bool = True) -> None:
        self.root = root
        self.exclude = exclude
        self.store = store
        self.watch_files = files
        self.codes: dict[types.CodeType, None] = {}
        self.paths: dict[str, None] = {}
        self.inherited: dict[str, ObservedCode] = {}
        """Code observed by recordings this call replayed (it depends on them too)."""
        self._parent: Observer | None = None
        self._token: Any = None
        self._profiler: Any = None
        self._tool: int | None = None
        self._paused = False

    def start(self) -> None:
        if self.watch_files:
            _install_hook()
        parent = _active.get()  # a recording made inside another one
        while parent is not None and parent._paused:
            parent = parent._parent  # made by a stream's consumer: not the stream's dependency
        self._parent = parent
        self._token = _active.set(self)
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is not None:
            self._start_monitoring(monitoring)
        elif sys.getprofile() is None:
            # Before 3.12: cProfile's C-level hook, read once at the end — a Python-level
            # setprofile callback would cost ~0.3 us on every call the recorded function makes.
            import cProfile

            self._profiler = cProfile.Profile()
            self._profiler.enable()
        # else another profiler (a debugger, coverage's profile mode) holds the hook: the
        # code part is not observed this time, rather than taking the hook from it.

    def stop(self) -> None:
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is not None:
            if self._tool is not None:
                monitoring.set_events(self._tool, 0)
                monitoring.register_callback(self._tool, monitoring.events.PY_START, None)
                monitoring.free_tool_id(self._tool)
                self._tool = None
        elif self._profiler is not None:
            self._profiler.disable()
            for stat in self._profiler.getstats():
                if isinstance(stat.code, types.CodeType):
                    self._code(stat.code)
            self._profiler = None
        if self._token is not None:
            try:
                _active.reset(self._token)
            except ValueError:  # stopped in another context than it started in (an async
                _active.set(self._parent)  # stream stepped from several tasks: wait_for)
            self._token = None
        if self._parent is not None:
            # What a recording made inside another one depended on, the outer one depends on:
            # when the outer call replays, the inner one does not run to check it.
            self._parent.absorb(self)

    def pause(self) -> None:
        """Stop observing until :meth:`resume`: a recorded stream's consumer runs between its
        items, in the same thread, and what it runs or reads is not the stream's dependency
        (it is an enclosing recording's, which goes on observing)."""
        self._paused = True
        if self._profiler is not None:
            self._profiler.disable()

    def resume(self) -> None:
        self._paused = False
        if _active.get() is not self:  # stepped from another task (asyncio.wait_for per item):
            _active.set(self)  # its context is a copy that never saw this observer
        if self._profiler is not None:
            self._profiler.enable()

    def absorb(self, other: Observer) -> None:
        """Take over what ``other`` (a nested recording) observed."""
        self.codes.update(other.codes)
        self.paths.update(other.paths)
        if other.root == self.root:
            self.inherited.update(other.inherited)

    def inherit(self, observed: Observed, root: Path) -> None:
        """A recording replayed during this call: its observed dependencies are this call's."""
        if self._paused:
            if self._parent is not None:
                self._parent.inherit(observed, root)
            return
        if root == self.root:
            self.inherited.update(observed.code)
        self.paths.update(dict.fromkeys(str(root / name) for name in observed.files))

    # -- code ------------------------------------------------------------------------------

    def _start_monitoring(self, monitoring: Any) -> None:
        for tool in (5, 4, 3, 2):  # OPTIMIZER_ID first: the others are debuggers, coverage…
            if monitoring.get_tool(tool) is None:
                monitoring.use_tool_id(tool, "memo_replay")
                self._tool = tool
                break
        else:  # every tool id is taken: observe nothing rather than disturb another tool
            return
        disable = monitoring.DISABLE
        thread = _thread.get_ident()

        def started(code: types.CodeType, offset: int) -> Any:
            if self._paused:
                return None  # not disabled: the stream's own code may run it later
            if _thread.get_ident() == thread:
                self._code(code)
            return disable  # each code location once per observation is enough

        monitoring.register_callback(self._tool, monitoring.events.PY_START, started)
        monitoring.set_events(self._tool, monitoring.events.PY_START)
        monitoring.restart_events()

    def _code(self, code: types.CodeType) -> None:
        if code in self.codes or code is self.exclude:
            return
        filename = code.co_filename
        project = _project_sources.get((self.root, filename))
        if project is None:  # resolving a path is slow: once per file per process
            project = _project_sources[(self.root, filename)] = \
                is_project_file(filename, self.root) and filename.endswith(".py")
        if project and code.co_name not in _SKIPPED_CODE:
            self.codes[code] = None

    # -- files -----------------------------------------------------------------------------

    def opened(self, args: tuple[Any, ...]) -> None:
        if self._paused:
            if self._parent is not None:
                self._parent.opened(args)
            return
        if not self.watch_files:
            return  # the hook is process-wide: another recording installed it
        path, mode, flags = ((*tuple(args), None, None, None))[:3]
        if not isinstance(path, (str, bytes, os.PathLike)):
            return  # a file descriptor
        if isinstance(mode, str):
            if any(c in mode for c in "wax+"):
                return
        elif isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR):
            return
        name = os.fsdecode(path)
        if name not in self.paths:
            self.paths[name] = None

    # -- what was seen ---------------------------------------------------------------------

    def result(self, sources: SourceIndex, hasher: Any) -> Observed:
        """Everything observed, with digests (``hasher.digest(path)`` hashes a file)."""
        token = _active.set(None)  # hashing opens the files: no recording around this one
        try:
            return self._result(sources, hasher)
        finally:
            _active.reset(token)

    def _result(self, sources: SourceIndex, hasher: Any) -> Observed:
        code: dict[str, ObservedCode] = dict(self.inherited)
        for item in self.codes:
            found = sources.locate(item)
            if found is not None:
                name, observed = found
                code[name] = observed
        files: dict[str, str] = {}
        for name in self.paths:
            relative = self._project_data_file(name)
            if relative is not None:
                try:
                    files[relative] = hasher.digest(str(self.root / relative))
                except OSError:
                    continue  # gone, or not a file after all
        return Observed.of(code, files)

    def _project_data_file(self, name: str) -> str | None:
        """``name`` relative to the root when it is a project data file, else None."""
        if name.endswith(_SOURCE_SUFFIXES):
            return None
        from pathlib import Path  # recording only

        try:
            path = Path(os.path.abspath(name))
            resolved = path.resolve()
        except (OSError, ValueError):
            return None
        if not resolved.is_relative_to(self.root) or not resolved.is_file():
            return None
        if self.store is not None and resolved.is_relative_to(self.store):
            return None
        relative = resolved.relative_to(self.root)
        if relative.as_posix() == "pyproject.toml":
            return None  # memo_replay's own configuration, read on a nested call's first use
        if any(part in _IGNORED_DIRS or part.endswith(".egg-info") for part in relative.parts):
            return None
        return relative.as_posix()


_project_sources: dict[tuple[Path, str], bool] = {}
"""(root, co_filename) → whether it is a project source file."""
_SKIPPED_CODE = frozenset({"<module>", "<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"})
_IGNORED_DIRS = frozenset({".git", ".hg", ".venv", "venv", ".tox", "site-packages",
                           "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


def _install_hook() -> None:
    global _hook_installed
    if _hook_installed:
        return
    with _hook_lock:
        if not _hook_installed:
            # An audit hook cannot be removed: it stays for the process, and costs one Python
            # call per audited event while no recording is being observed.
            sys.addaudithook(_audit)
            _hook_installed = True


# -- finding a function in its source file -------------------------------------------------------


class SourceIndex:
    """Definitions of project source files: each file is read and parsed once per process per
    version (:func:`~memo_replay.keys.source.module_tree`, shared with the code fingerprint),
    and a function's digest is computed when it is first asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = str(root)
        self._files: dict[str, _Functions] = {}
        self._modules: dict[str, str] | None = None
        self._known = 0

    def locate(self, code: types.CodeType) -> tuple[str, ObservedCode] | None:
        """``(module.qualname, ObservedCode)`` of a code object of a project file."""
        from pathlib import Path  # recording only

        try:
            relative = Path(code.co_filename).resolve().relative_to(self.root).as_posix()
        except (OSError, ValueError):
            return None
        functions = self._parse(relative)
        if functions is None:
            return None
        qualname = functions.by_line.get(code.co_firstlineno)
        if code.co_name == "<lambda>":
            qualname = f"<lambda@{code.co_firstlineno}>"
        digest = None if qualname is None else functions.digest(qualname)
        if qualname is None or digest is None:
            return None
        return f"{self._module_of(code.co_filename, relative)}.{qualname}", \
            ObservedCode(relative, qualname, digest)

    def current(self, file: str, qualname: str) -> str | None:
        """The digest of ``qualname`` in project file ``file`` now; None when it is gone."""
        functions = self._parse(file)
        return None if functions is None else functions.digest(qualname)

    def _parse(self, relative: str) -> _Functions | None:
        if _leaves_root(relative):
            return None  # never outside the root, whatever an entry says
        from memo_replay.keys.source import module_tree

        parsed = module_tree(os.path.join(self._root, relative))  # not pathlib: ~2,000 a run
        if parsed is None:
            return None
        cached = self._files.get(relative)
        if cached is not None and cached.module is parsed:
            return cached
        functions = self._files[relative] = _Functions(parsed)
        return functions

    def _module_of(self, filename: str, relative: str) -> str:
        if self._modules is None:
            self._modules = {}
            self._known = len(sys.modules)
            for loaded_name, loaded in list(sys.modules.items()):
                file = getattr(loaded, "__file__", None)
                if isinstance(file, str):
                    self._modules.setdefault(os.path.realpath(file), loaded_name)
        name = self._modules.get(os.path.realpath(filename))
        if name is None and len(sys.modules) != self._known:
            self._modules = None  # imported since: look again
            return self._module_of(filename, relative)
        if name is None or name == "__main__":
            name = relative.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        return name


class _Functions:
    """Every function (and lambda) of one indexed module (:class:`~memo_replay.keys.source.
    ModuleTree`): first line → qualname (a code object's ``co_firstlineno`` is its first
    decorator's line, or its ``def``'s); each digest computed on first use, or taken from what
    the code fingerprint computed from the same lines."""

    def __init__(self, module: ModuleTree) -> None:
        self.module = module
        self.by_line: dict[int, str] = {line: span.qualname
                                        for line, span in module.by_line.items()}
        self._lambdas: dict[int, list[ast.Lambda]] | None = None
        self._digests: dict[str, str | None] = {}
        self._lock = _thread.allocate_lock()

    def lambdas(self, line: int) -> list[ast.Lambda]:
        """The lambdas starting on ``line``, in :func:`ast.iter_child_nodes` depth-first
        order (found, in the module parsed again, when a lambda is first asked for)."""
        with self._lock:
            if self._lambdas is None:
                found: dict[int, list[ast.Lambda]] = {}

                def visit(node: ast.AST) -> None:
                    for child in ast.iter_child_nodes(node):
                        if isinstance(child, ast.Lambda):
                            found.setdefault(child.lineno, []).append(child)
                        visit(child)

                tree = self.module.tree()
                if tree is not None:
                    visit(tree)
                self._lambdas = found
            return self._lambdas.get(line, [])

    def digest(self, qualname: str) -> str | None:
        """The digest of a function's normalized definition (of the lambdas on a line, for
        ``<lambda@LINE>``); None when there is no such function."""
        with self._lock:
            if qualname in self._digests:
                return self._digests[qualname]
        found: str | None = self.module.plain_digests.get(qualname)
        span = self.module.functions.get(qualname)
        if found is None and span is not None:
            node = self.module.definition(span)
            if node is not None:
                from memo_replay.keys.normalize import definition_digest

                found = definition_digest(node, {})
        elif found is None and qualname.startswith("<lambda@") and qualname.endswith(">"):
            line = qualname[len("<lambda@"):-1]
            lambdas = self.lambdas(int(line)) if line.isdigit() and line.isascii() else None
            if lambdas and f"<lambda@{int(line)}>" == qualname:
                found = xxh3_128_hexdigest("\n".join(map(_lambda_text, lambdas)).encode())
        with self._lock:
            self._digests[qualname] = found
        return found


def _lambda_text(node: ast.Lambda) -> str:
    from memo_replay.keys.normalize import definition_digest

    extra: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}
    wrapper = ast.FunctionDef(name="<lambda>", args=node.args, body=[ast.Return(node.body)],
                              decorator_list=[], returns=None, type_comment=None, **extra)
    ast.copy_location(wrapper, node)
    return definition_digest(wrapper, {})


# -- checking ------------------------------------------------------------------------------------


class Change(NamedTuple):
    """An observed dependency that no longer holds."""

    kind: str
    """``code`` or ``file``."""
    name: str
    message: str


def changes(observed: Observed, sources: SourceIndex, hasher: Any,
            code_checked: set[str]) -> list[Change]:
    """What changed among ``observed`` (empty: the recording still serves). The code part of a
    set whose digest is in ``code_checked`` is not checked again (it held in this process)."""
    found: list[Change] = []
    digest = observed.digest if observed.code else ""
    if observed.code and digest not in code_checked:
        for name, code in sorted(observed.code.items()):
            current = sources.current(code.file, code.qualname)
            if current != code.hash:
                what = "no longer exists" if current is None else "changed"
                found.append(Change("code", name, f"`{name}`, which ran during the recording, "
                                                  f"{what}"))
        if not found:
            code_checked.add(digest)
    for name, recorded in sorted(observed.files.items()):
        if _leaves_root(name):
            found.append(Change("file", name, f"file `{name}` is outside the project"))
            continue
        try:
            now: str | None = hasher.digest(str(sources.root / name))
        except OSError:
            now = None
        if now != recorded:
            what = "is gone" if now is None else "changed"
            found.append(Change("file", name, f"file `{name}` (read during the recording) "
                                              f"{what}"))
    return found


def _leaves_root(relative: str) -> bool:
    """Whether a path an entry names may lead outside the project root (absolute, a Windows
    separator, or a ``..`` anywhere: ``a/../../etc/passwd``): such a path is never read."""
    return relative.startswith("/") or "\\" in relative or ".." in relative.split("/") or \
        "\x00" in relative


def note_replay(observed: Observed, root: Path) -> None:
    """A call replayed a recording with observed dependencies: if it happens while another call
    is being recorded, that recording depends on them too."""
    observer = _active.get()
    if observer is not None:
        observer.inherit(observed, root)


_shared: dict[Path, tuple[SourceIndex, Any]] = {}
_code_checked: set[str] = set()


def context(root: Path) -> tuple[SourceIndex, Any, set[str]]:
    """The per-process source index and file hasher of a project, and the observed code sets
    already checked in this process."""
    shared = _shared.get(root)
    if shared is None:
        from memo_replay.keys.files import FileHasher

        shared = _shared.setdefault(root, (SourceIndex(root), FileHasher()))
    return shared[0], shared[1], _code_checked


def iter_lines(observed: Observed) -> Iterator[str]:
    """What ``memo-replay show`` prints of an entry's observed dependencies."""
    for name, code in sorted(observed.code.items()):
        yield f"ran          {name}  ({code.file}) {code.hash}"
    for name, digest in sorted(observed.files.items()):
        yield f"read         {name}  {digest}"


__all__ = ["Change", "Observed", "ObservedCode", "Observer", "SourceIndex", "changes",
           "context", "iter_lines", "note_replay"]
