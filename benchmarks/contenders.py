"""The memoizers compared, each built around the same plain function.

``lru_cache`` is the memory floor. The *raw floor* is the least a disk memoizer can do: hash the
pickled arguments with ``xxh3_128`` and ``diskcache.Cache.get`` the value stored under that hash
— no function identity, no code fingerprint, no argument binding, no invalidation, no
explanation of a miss. Every disk memoizer does at least that much work on a hit, so its ratio
to the raw floor is the price of what it adds.

The peers joblib and cachier are optional: :func:`available` says whether one is installed.
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache
from xxhash import xxh3_128_hexdigest

from benchmarks.harness import Contender, environment
from memo_replay import recorded

LRU = "lru_cache"
RAW = "raw floor"
DISKCACHE = "diskcache.memoize"
JOBLIB = "joblib.Memory"
CACHIER = "cachier"
MEMO = "memo_replay"
ALL = (LRU, RAW, DISKCACHE, JOBLIB, CACHIER, MEMO)
"""Every contender, in the order tables list them."""
PEERS = (DISKCACHE, JOBLIB, CACHIER)
"""The disk memoizers a user would otherwise pick."""

_OPTIONAL = {JOBLIB: "joblib", CACHIER: "cachier"}
_MISSING = object()


def available(name: str) -> bool:
    """False for a peer whose package is not installed."""
    module = _OPTIONAL.get(name)
    return module is None or importlib.util.find_spec(module) is not None


class Counted:
    """A function body that counts how often it really runs (the wrapper keeps its name, so
    peers that key on ``module.qualname`` see the body's)."""

    def __init__(self, body: Callable[..., Any]) -> None:
        self.runs = 0

        @functools.wraps(body)
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.runs += 1
            return body(*args, **kwargs)

        self.function = counted

    def executions(self) -> int:
        return self.runs


def raw_floor(body: Callable[..., Any], directory: Path) -> Callable[..., Any]:
    """The raw floor as a memoizer: on a hit, exactly ``xxh3_128(pickle.dumps(args))`` and one
    ``diskcache.Cache.get``; on a miss, call and ``set``."""
    cache = diskcache.Cache(str(directory))
    get, put = cache.get, cache.set

    def lookup(*args: Any) -> Any:
        key = xxh3_128_hexdigest(pickle.dumps(args, protocol=5))
        value = get(key, _MISSING)
        if value is _MISSING:
            value = body(*args)
            put(key, value)
        return value

    return lookup


@dataclass
class Memoizer:
    """``body`` memoized by one contender.

    ``counted`` counts real executions of the body. memo_replay has none: its hits are timed in
    strict ``replay`` mode, where a miss raises :class:`memo_replay.ReplayMiss` instead of calling
    the function, and its misses are counted in its store.
    """

    name: str
    fn: Callable[..., Any]
    counted: Counted | None
    directory: Path
    """Where this memoizer keeps its cache (memo_replay: its store)."""

    def record(self, *args: Any) -> Any:
        """The first call, the one that stores (memo_replay: in ``record`` mode)."""
        if self.name == MEMO:
            with environment(MEMO_MODE="record"):
                return self.fn(*args)
        return self.fn(*args)

    def executions(self) -> Callable[[], int] | None:
        return None if self.counted is None else self.counted.executions


def memoizer(name: str, body: Callable[..., Any], workdir: Path) -> Memoizer:
    """``body`` memoized by the contender ``name``, keeping its state under ``workdir``."""
    directory = workdir / name.replace(" ", "-").replace(".", "-")
    directory.mkdir(parents=True, exist_ok=True)
    if name == MEMO:
        return Memoizer(name, recorded(store=directory)(body), None, directory)
    counted = Counted(body)
    fn: Callable[..., Any]
    if name == LRU:
        fn = functools.lru_cache(maxsize=None)(counted.function)
    elif name == RAW:
        fn = raw_floor(counted.function, directory)
    elif name == DISKCACHE:
        fn = diskcache.Cache(str(directory)).memoize()(counted.function)
    elif name == JOBLIB:
        import joblib

        fn = joblib.Memory(str(directory), verbose=0).cache(counted.function)
    elif name == CACHIER:
        from cachier import cachier

        fn = cachier(cache_dir=str(directory), backend="pickle")(counted.function)
    else:
        raise ValueError(f"unknown contender {name!r}")
    return Memoizer(name, fn, counted, directory)


def hit_contender(name: str, body: Callable[..., Any], args: tuple[Any, ...], workdir: Path,
                  expected: Any) -> Contender:
    """A contender whose every timed call is a hit on ``body(*args)`` (checked: the first
    replayed value equals the real result and has its type)."""
    memo = memoizer(name, body, workdir)
    memo.record(*args)
    fn = memo.fn
    with environment(MEMO_MODE="replay"):
        got = fn(*args)
    if type(got) is not type(expected) or got != expected:
        raise AssertionError(f"{name}: a hit returned a {type(got).__name__} that differs "
                             f"from the real result")

    def call() -> object:
        return fn(*args)

    return Contender(name, call, memo.executions())


def hashable(args: tuple[Any, ...]) -> bool:
    """Whether ``functools.lru_cache`` can take these arguments."""
    try:
        hash(args)
    except TypeError:
        return False
    return True
