"""Binding arguments without ``inspect``: the code-object fast path against ``inspect.signature``.

A plain function's parameters are read from its code object (``import inspect`` costs a few ms
of every replaying process's start). Whatever path a function takes, binding must agree with
``inspect.Signature.bind`` + ``apply_defaults`` — a disagreement would give two spellings of one
call two keys, or one key to two calls (a false hit) — and a call that does not fit must raise
``TypeError`` naming the function, before anything runs.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memo_replay.keys.arguments import ArgumentSpec


def spec(fn: Callable[..., Any]) -> ArgumentSpec:
    return ArgumentSpec(fn, function_id="m.f", ignore=frozenset(), root=Path.cwd())


def reference(fn: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """inspect's answer: the bound arguments with defaults, or None when the call does not fit."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


def ours(fn: Callable[..., Any], args: tuple[Any, ...],
         kwargs: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return dict(spec(fn).bind(args, kwargs))
    except TypeError as exc:
        message = str(exc)
    if not message.startswith("m.f(): "):  # a call that does not fit names the function
        raise AssertionError(message)
    return None


def make_function(parameters: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(f"def f({parameters}):\n    return 0\n", namespace)
    return namespace["f"]  # type: ignore[no-any-return]


SIGNATURES = [
    "", "a", "a, b", "a, b=2", "a=1, b=2", "a, /", "a, /, b", "a, *, b", "a, *, b=3",
    "*args", "**kwargs", "a, *args, b=1, **kwargs", "a, b=None, *args", "a=(), b={}",
]
CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {}), ((1,), {}), ((1, 2), {}), ((1, 2, 3), {}), ((), {"a": 1}), ((), {"b": 2}),
    ((1,), {"b": 2}), ((1,), {"a": 1}), ((), {"a": 1, "b": 2}), ((1,), {"c": 3}),
    ((1, 2), {"b": 3}), ((), {"args": 1}), ((), {"kwargs": 1}),
]


@pytest.mark.parametrize("parameters", SIGNATURES)
def test_every_call_binds_as_inspect_does(parameters: str) -> None:
    fn = make_function(parameters)
    for args, kwargs in CALLS:
        assert ours(fn, args, kwargs) == reference(fn, args, kwargs), (parameters, args, kwargs)


names = st.sampled_from(["a", "b", "c", "d"])


@settings(max_examples=300, deadline=None)
@given(
    count=st.integers(0, 4),
    defaults=st.integers(0, 4),
    args=st.lists(st.integers(), max_size=5).map(tuple),
    kwargs=st.dictionaries(names, st.integers(), max_size=4),
)
def test_plain_functions_bind_as_inspect_does(count: int, defaults: int, args: tuple[int, ...],
                                              kwargs: dict[str, int]) -> None:
    """Plain parameters take the fast path: any call binds exactly as inspect binds it."""
    parameters = [f"{n}={i}" if i >= count - defaults else n
                  for i, n in enumerate("abcd"[:count])]
    fn = make_function(", ".join(parameters))
    assert ours(fn, args, kwargs) == reference(fn, args, kwargs)
    assert spec(fn).parameter_names == tuple(inspect.signature(fn).parameters)


def test_what_inspect_follows_is_followed() -> None:
    """``__wrapped__``, ``__signature__``, partials, bound methods and callable objects have
    signatures that differ from their code object's: they go through inspect."""

    def inner(x: int, y: int = 2) -> int:
        return x + y

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        return inner(*args, **kwargs)

    def declared(*args: Any) -> None:
        pass

    declared.__signature__ = inspect.signature(inner)  # type: ignore[attr-defined]

    class Box:
        def method(self, x: int, y: int = 5) -> int:
            return x

        def __call__(self, z: int) -> int:
            return z

    for fn in (wrapper, declared, functools.partial(inner, 1), Box().method, Box()):
        for args, kwargs in itertools.chain(CALLS, [((1,), {"y": 3}), ((), {"z": 1})]):
            assert ours(fn, args, kwargs) == reference(fn, args, kwargs), (fn, args, kwargs)


def test_a_builtin_without_signature_binds_args_and_kwargs() -> None:
    assert spec(dict.get).parameter_names in (("args", "kwargs"),
                                              tuple(inspect.signature(dict.get).parameters))
