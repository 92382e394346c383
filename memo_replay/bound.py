"""A recorded method reached through an instance: ``inst.translate.memo`` with ``self`` bound.

A plain function wrapper binds like any function, but a bound method hands attribute reads to
its function, so ``inst.translate.memo`` would be the unbound :class:`~memo_replay.decorator.Memo`
and ``inst.translate.memo.explain(path)`` would miss ``self`` (``TypeError: missing a required
argument``). A function ``@recorded`` in a class body is therefore wrapped once more, in a
:class:`RecordedMethod` descriptor:

- through the class (``Translator.translate``) it is the plain recorded function, as before:
  ``Translator.translate.memo.key(inst, path)``;
- through an instance it is a :class:`BoundRecorded`, a :class:`functools.partial` of that
  function with the instance (called in C, no extra Python frame on the hot path;
  :func:`inspect.signature` drops ``self``; :func:`inspect.iscoroutinefunction` still sees an
  ``async def``), whose ``.memo`` is a :class:`BoundMemo`: ``key``, ``explain`` and every other
  call-taking method get the instance as their first argument.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, ParamSpec

if TYPE_CHECKING:
    from memo_replay.decorator import Memo
    from memo_replay.explain import Explanation
    from memo_replay.store import Entry

P = ParamSpec("P")


class BoundMemo(Generic[P]):
    """The :class:`~memo_replay.decorator.Memo` of a method with its instance bound: what
    ``inst.method.memo`` is. ``key(...)``/``explain(...)`` take the call's arguments without
    ``self``; everything else (``id``, ``store``, ``entries()``, ``mode``…) is the memo's."""

    __slots__ = ("instance", "memo")

    def __init__(self, memo: Memo[Any, Any], instance: object) -> None:
        self.memo = memo
        self.instance = instance

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key a call ``instance.method(*args, **kwargs)`` has."""
        return self.memo.key(self.instance, *args, **kwargs)

    def explain(self, *args: P.args, **kwargs: P.kwargs) -> Explanation:
        """Whether ``instance.method(*args, **kwargs)`` would replay, and if not, what
        differs."""
        return self.memo.explain(self.instance, *args, **kwargs)

    def entries(self) -> Iterator[Entry]:
        """The recordings of the method (of every instance: the store does not tell them
        apart by instance, only by key)."""
        return self.memo.entries()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.memo, name)

    def __repr__(self) -> str:
        return f"<memo of {self.memo.id} bound to {self.instance!r}>"


class BoundRecorded(functools.partial[Any]):
    """``instance.method`` for a recorded method: the recorded function with ``self`` given."""

    __slots__ = ()

    @property
    def memo(self) -> BoundMemo[Any]:
        memo: Memo[Any, Any] = getattr(self.func, "memo")  # noqa: B009 (typed)
        return BoundMemo(memo, self.args[0])

    @property
    def __self__(self) -> object:
        return self.args[0]

    @property
    def __func__(self) -> Callable[..., Any]:
        return self.func

    def __getattr__(self, name: str) -> Any:
        # Its names are the function's. Nothing else is passed on: with `__wrapped__` or
        # `__code__`, inspect would read the function's signature (with `self`) instead of
        # the partial's.
        if name in ("__name__", "__qualname__"):
            return getattr(self.func, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BoundRecorded) and self.func is other.func \
            and self.args[0] is other.args[0]

    def __hash__(self) -> int:
        return hash((id(self.func), id(self.args[0])))

    def __reduce__(self) -> Any:  # as a bound method pickles: by its instance and name
        return getattr, (self.args[0], self.func.__name__)

    def __repr__(self) -> str:
        return f"<bound recorded method {self.func.__qualname__} of {self.args[0]!r}>"


class RecordedMethod:
    """The class attribute a ``@recorded`` method is: the recorded function through the class,
    a :class:`BoundRecorded` through an instance."""

    def __init__(self, function: Callable[..., Any]) -> None:
        functools.update_wrapper(self, function)  # __wrapped__, .memo, names, docstring
        self._function = function

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self._function
        if owner is instance:
            # `@classmethod` over `@recorded`: Python < 3.13 calls this with the class as both
            # instance and owner, 3.13+ binds this object itself. Bound as a plain function
            # is, so that its memo takes `cls` first on every version.
            return types.MethodType(self._function, instance)
        return BoundRecorded(self._function, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<recorded method {self._function.__qualname__}>"
