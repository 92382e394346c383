"""The functions the benchmarks memoize, and the inputs they are called with.

Every contender wraps the same plain function, so each one memoizes exactly the same work.
memo_replay fingerprints a recorded function's source and the project helpers and constants it
reads, so these bodies stay pure: no module-level state, nothing that changes between runs
(``scale_entry`` addresses the reusable stores under ``benchmarks/.data/``: change its source and
those stores are rebuilt).
"""

from __future__ import annotations

import random

from pydantic import BaseModel

MB = 1024 * 1024


class Meta(BaseModel):
    """The nested sub-model of each item."""

    source: str
    line: int
    tags: list[str]


class Item(BaseModel):
    id: int
    name: str
    weight: float
    meta: Meta


class Document(BaseModel):
    """The top model of the pydantic-result case: a list of small nested models."""

    title: str
    items: list[Item]


# -- the memoized bodies -----------------------------------------------------------------------

def small(a: int, b: str) -> dict[str, object]:
    return {"a": a, "b": b, "length": len(b)}


def bytes_argument(data: bytes) -> int:
    return len(data) + data[0]


def dict_argument(mapping: dict[str, int]) -> int:
    return sum(mapping.values())


def bytes_result(size: int) -> bytes:
    return bytes(range(256)) * (size // 256)


def pydantic_result(count: int) -> Document:
    return Document(
        title=f"{count} items",
        items=[Item(id=i, name=f"item-{i}", weight=i / 4,
                    meta=Meta(source=f"machines/m{i % 17}.dy", line=i, tags=["a", f"t{i % 5}"]))
               for i in range(count)],
    )


def scale_entry(i: int) -> dict[str, int]:
    return {"i": i, "square": i * i}


def translate(query: str) -> str:
    import sqlglot  # optional (the bench extra): the smoke mode runs without it

    return sqlglot.transpile(query, read="duckdb", write="spark")[0]


# -- inputs --------------------------------------------------------------------------------------

def big_bytes() -> bytes:
    """1 MB of non-constant bytes."""
    return random.Random(1).randbytes(MB)


def thousand_items() -> dict[str, int]:
    return {f"key-{i:04d}": i for i in range(1000)}


_TABLES = ("orders", "customers", "events", "payments", "sessions", "products")
_COLUMNS = ("id", "amount", "created_at", "country", "status", "user_id", "price", "quantity")


def sql_queries(count: int) -> list[str]:
    """``count`` distinct DuckDB queries: joins, aggregates, date and string functions, CTEs."""
    rng = random.Random(7)
    queries: list[str] = []
    for n in range(count):
        t1, t2 = rng.sample(_TABLES, 2)
        c1, c2, c3 = rng.sample(_COLUMNS, 3)
        shape = n % 5
        if shape == 0:
            q = (f"SELECT a.{c1}, COUNT(*) AS n, SUM(b.{c2}) AS total FROM {t1} AS a "
                 f"JOIN {t2} AS b ON a.id = b.{c3} WHERE a.{c2} > {n} "
                 f"GROUP BY a.{c1} ORDER BY total DESC LIMIT {10 + n % 50}")
        elif shape == 1:
            q = (f"SELECT {c1}, strftime({c3}, '%Y-%m') AS month, list_agg({c2}) "
                 f"FROM {t1} WHERE {c1} ILIKE '%x{n}%' GROUP BY ALL")
        elif shape == 2:
            q = (f"WITH recent AS (SELECT * FROM {t1} WHERE {c3} >= DATE '2024-01-01' "
                 f"+ INTERVAL {n % 30} DAY) SELECT {c1}, epoch_ms({c2}) FROM recent "
                 f"QUALIFY row_number() OVER (PARTITION BY {c1} ORDER BY {c2}) = 1")
        elif shape == 3:
            q = (f"SELECT {c1}::VARCHAR AS k, regexp_matches({c2}, '^[a-z]+{n}$') AS m, "
                 f"COALESCE({c3}, {n}) FROM {t1} USING SAMPLE 10 PERCENT (bernoulli)")
        else:
            q = (f"SELECT DISTINCT ON ({c1}) {c1}, {c2} FROM {t1} WHERE {c3} IN "
                 f"(SELECT {c3} FROM {t2} WHERE {c2} BETWEEN {n} AND {n * 2 + 1})")
        queries.append(q)
    return queries
