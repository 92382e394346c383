"""Whose code a thing is, and what fingerprints call it.

This module owns the line between the user's code and everyone else's, drawn by file location:
the project's files and user code outside any installed package (a ``__main__`` script outside
the root, a notebook cell, ``exec``'d code) are fingerprinted by their source and followed into;
the standard library, site-packages and memo_replay itself are identified by name and, for an
installed distribution, its version (:func:`_package_identity`), never hashed. It also names
things the way a fingerprint records them (:func:`_qualified`, :func:`_global_owner`: a
``__main__`` is named after its path) and finds a module's globals, the files holding its
top-level statements (or a notebook's cells) and the module a relative import names.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import os
import sys
import types
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from memo_replay.project import is_library_file, is_project_file, module_name

if TYPE_CHECKING:
    from pathlib import Path


def _is_user_file(path: str | None, root: Path) -> bool:
    """A source file of the project, or user code outside any installed package (a script
    outside the root, a notebook's cell file): everything but the standard library,
    site-packages and memo_replay itself. Decided once per path and root per process."""
    if not path:
        return False
    known = _user_files.get((path, root))
    if known is None:
        known = _decide_user_file(path, root)
        if path.startswith("<") or os.path.isabs(path):  # a relative one follows the cwd
            _user_files[(path, root)] = known
    return known


_user_files: dict[tuple[str, Path], bool] = {}


def _decide_user_file(path: str, root: Path) -> bool:
    if is_project_file(path, root):
        return True
    if path.startswith("<"):
        return not path.startswith("<frozen")
    from pathlib import Path  # a file outside the root: rare

    try:
        resolved = Path(path).resolve()
    except OSError:
        return False
    return not is_library_file(resolved) and resolved.suffix in (".py", ".pyw", "")


def _is_project_module(module: types.ModuleType, root: Path) -> bool:
    file = getattr(module, "__file__", None)
    if file:
        return _is_user_file(file, root)
    # A namespace package (no __init__.py) has no __file__, only __path__ directories.
    return any(_is_user_file(path, root) for path in getattr(module, "__path__", ()))


def _is_project_callable(obj: Any, root: Path) -> bool:
    """Whether ``obj`` (a function or class) is the project's or the user's own code."""
    file = _file_of(obj)
    if not file:  # a class of `python -c` or of a REPL: no file at all
        return isinstance(obj, (types.FunctionType, type)) and \
            getattr(obj, "__module__", None) == "__main__"
    if file.startswith("<"):  # python -c, a REPL, exec(), an IPython cell
        return isinstance(obj, (types.FunctionType, type)) and not file.startswith("<frozen")
    return _is_user_file(file, root)


def _file_of(obj: Any) -> str | None:
    """Where ``obj``'s code is (:func:`inspect.getsourcefile`, else :func:`inspect.getfile`):
    remembered per code object of a function, per class, by identity (code objects compare
    equal across files) and while it lives (a weak reference: its id is never reused)."""
    holder = obj.__code__ if isinstance(obj, types.FunctionType) else obj
    known = _files.get(id(holder))
    if known is not None and known[0]() is holder:
        return known[1]
    file = _plain_source_file(obj)
    if file is None:
        import inspect  # not a .py file on disk: inspect's rules, rarely needed

        try:
            file = inspect.getsourcefile(obj) or inspect.getfile(obj)
        except (TypeError, OSError):
            file = None
    if isinstance(obj, (types.FunctionType, type)):
        with contextlib.suppress(TypeError):  # not weak-referenceable: not remembered
            _files[id(holder)] = (weakref.ref(holder), file)
    return file


_files: dict[int, tuple[weakref.ref[Any], str | None]] = {}


def _plain_source_file(obj: Any) -> str | None:
    """What :func:`inspect.getsourcefile` says for a function or class defined in a ``.py``
    file that exists (its code's file, or its module's), else None (ask :mod:`inspect`)."""
    if isinstance(obj, types.FunctionType):
        file: object = obj.__code__.co_filename
    elif isinstance(obj, type):
        module = sys.modules.get(getattr(obj, "__module__", None) or "")
        if module is None:
            return None
        file = getattr(module, "__file__", None)
    else:
        return None
    if isinstance(file, str) and file.endswith(".py") and os.path.exists(file):
        return file
    return None


def _qualified(obj: Any) -> str:
    return f"{module_name(obj)}.{getattr(obj, '__qualname__', repr(obj))}"


def _global_owner(globals_: Mapping[str, Any]) -> str:
    """The module name of a globals dict, with ``__main__`` named like everywhere else."""
    name = str(globals_.get("__name__", "?"))
    return module_name(types.SimpleNamespace(__module__=name)) if name == "__main__" else name


def _package_identity(fn: Any) -> str:
    """Third-party code is identified by its distribution and version, never its source."""
    module = getattr(fn, "__module__", None) or type(fn).__module__
    name = f"{module}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    top = module.split(".")[0]
    distribution, version = _distribution_of(top)
    return f"<package {distribution}=={version}> {name}" if distribution else f"<stdlib> {name}"


@functools.lru_cache(maxsize=128)
def _distribution_of(top_module: str) -> tuple[str | None, str | None]:
    from importlib import metadata

    names = metadata.packages_distributions().get(top_module)
    if not names:
        # Python 3.10 reads only top_level.txt, which wheels built by flit or hatch lack.
        names = [dist.metadata["Name"] for dist in metadata.distributions()
                 if any(f.parts and f.parts[0] in (top_module, f"{top_module}.py")
                        for f in dist.files or ())][:1]
    if not names:
        return None, None
    try:
        return names[0], metadata.version(names[0])
    except metadata.PackageNotFoundError:
        return names[0], None


# -- which module ---------------------------------------------------------------------------------

def _module_globals(cls: type) -> Mapping[str, Any]:
    """The globals of the module defining ``cls`` (what :func:`inspect.getmodule` finds for a
    class: ``sys.modules[cls.__module__]``)."""
    module = sys.modules.get(getattr(cls, "__module__", None) or "")
    return vars(module) if module is not None else {}


def _module_files(globals_: Mapping[str, Any]) -> list[str]:
    """Where a module's top-level statements are: its file, or for a ``__main__`` without one
    (IPython, Jupyter, ``python -c``) the cells and snippets linecache holds."""
    file = globals_.get("__file__")
    if isinstance(file, str) and file:
        return [file]
    if globals_.get("__name__") != "__main__":
        return []
    import linecache  # a __main__ without a file: IPython, Jupyter, python -c

    return sorted(name for name in list(linecache.cache)
                  if name.startswith(("<ipython-input-", "<string>")) or "ipykernel_" in name)


def _resolve_import(statement: ast.ImportFrom, globals_: Mapping[str, Any]) -> str | None:
    if not statement.level:
        return statement.module
    package = globals_.get("__package__")
    if not package:
        name = str(globals_.get("__name__", ""))
        package = name if "__path__" in globals_ else name.rpartition(".")[0]
    try:
        return importlib.util.resolve_name("." * statement.level + (statement.module or ""),
                                           package)
    except (ImportError, ValueError):
        return None
