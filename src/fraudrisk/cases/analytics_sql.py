"""The portable SQL pieces of the dashboard's analytics (one spelling, SQLite and PostgreSQL).

- :class:`epoch_seconds` — whole seconds since 1970 of a naive-UTC timestamp: time buckets
  are integer divisions of it (``date_trunc`` has no SQLite twin; this is the same on both).
- :class:`days_since_epoch` — the day of a timestamp as whole days since 1970.
- :class:`seconds_between` — the seconds from one timestamp to another, fractions kept.
- :func:`fired_rules` — the rules of ``scores.policy_rules`` (a JSON list of names) as rows.
- :func:`reading` — a read-only connection, on PostgreSQL without JIT and sorting in memory.
- :func:`quantile_ranks` / :func:`quantiles` — median and p90 per group with window
  functions: the database ranks, only the few rows around each quantile come back.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from fraudrisk.alerts.store import SCORES

#: The quantiles of the resolution time that the history reports (median, p90).
QUANTILES = (0.5, 0.9)


class epoch_seconds(FunctionElement[int]):  # noqa: N801  (a SQL function's name)
    """Whole seconds since 1970-01-01 of a naive-UTC timestamp column (an integer)."""

    type = sa.BigInteger()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(floor(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


class days_since_epoch(FunctionElement[int]):  # noqa: N801  (a SQL function's name)
    """The day of a naive-UTC timestamp column, as whole days since 1970-01-01 (an integer).

    ``epoch_seconds // 86400`` on SQLite; on PostgreSQL a date subtraction, several times
    cheaper per row than extracting the epoch (it matters on a million rows).
    """

    type = sa.Integer()
    inherit_cache = True
    name = "days_since_epoch"


@compiles(days_since_epoch, "sqlite")
def _days_sqlite(element: days_since_epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER) / 86400)"


@compiles(days_since_epoch, "postgresql")
def _days_postgresql(element: days_since_epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(CAST({compiler.process(element.clauses, **kw)} AS DATE) - DATE '1970-01-01')"


class seconds_between(FunctionElement[float]):  # noqa: N801  (a SQL function's name)
    """Seconds from the first timestamp to the second (a float, fractions kept)."""

    type = sa.Float()
    inherit_cache = True
    name = "seconds_between"


def _two(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    first, second = (compiler.process(c, **kw) for c in element.clauses)
    return first, second


@compiles(seconds_between, "sqlite")
def _between_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    first, second = _two(element, compiler, **kw)
    return f"((julianday({second}) - julianday({first})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _between_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    first, second = _two(element, compiler, **kw)
    return f"CAST(EXTRACT(EPOCH FROM ({second} - {first})) AS DOUBLE PRECISION)"


def bucket_of(column: Any, seconds: int) -> Any:
    """The start (epoch seconds) of the ``seconds``-long bucket holding a timestamp column.

    The width is written into the SQL as a literal, so the same expression may appear in
    the select list and in GROUP BY (a bound parameter would be two different ones there).
    """
    width = sa.literal_column(str(int(seconds)), sa.BigInteger)
    return (epoch_seconds(column) // width) * width


def fired_rules(dialect: str) -> Any:
    """The names in ``scores.policy_rules`` as a table-valued function (column ``value``).

    Joined to ``scores`` (``ON true``), each score gives one row per fired rule, none when
    the list is empty or NULL (a score stored before the policy columns existed).
    """
    if dialect == "postgresql":
        function = sa.func.jsonb_array_elements_text(sa.cast(SCORES.c.policy_rules, JSONB))
    else:
        function = sa.func.json_each(SCORES.c.policy_rules)
    return function.table_valued("value").alias("fired_rule")


def quantile_ranks(values: sa.Subquery) -> sa.Select[Any]:
    """The rows of ``values`` (columns ``key``, ``value``) next to each of :data:`QUANTILES`.

    Each row comes back with its 0-based rank ``rank`` in its group and the group's size
    ``n``: the rows at ranks ⌊q(n-1)⌋ and ⌈q(n-1)⌉ for each q, what :func:`quantiles` needs
    to interpolate — at most four rows per group instead of all of them.
    """
    ranked = sa.select(
        values.c.key,
        values.c.value,
        (sa.func.row_number().over(partition_by=values.c.key, order_by=values.c.value) - 1).label(
            "rank"
        ),
        sa.func.count().over(partition_by=values.c.key).label("n"),
    ).subquery("ranked")
    near = [sa.func.abs(ranked.c.rank - q * (ranked.c.n - 1)) < 1 for q in QUANTILES]
    return sa.select(ranked.c.key, ranked.c.value, ranked.c.rank, ranked.c.n).where(sa.or_(*near))


def quantiles(rows: Iterable[Sequence[Any]]) -> dict[Any, tuple[float, ...]]:
    """Each group's :data:`QUANTILES` from the rows of :func:`quantile_ranks`.

    Linear interpolation between the closest ranks (``numpy.quantile``'s default method).
    """
    by_key: dict[Any, dict[int, float]] = defaultdict(dict)
    sizes: dict[Any, int] = {}
    for key, value, rank, n in rows:
        by_key[key][int(rank)] = float(value)
        sizes[key] = int(n)
    return {
        key: tuple(_interpolate(ranked, sizes[key], q) for q in QUANTILES)
        for key, ranked in by_key.items()
    }


def _interpolate(ranked: dict[int, float], n: int, q: float) -> float:
    position = q * (n - 1)
    low, high = math.floor(position), math.ceil(position)
    return ranked[low] + (ranked[high] - ranked[low]) * (position - low)


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A transaction that only reads; on PostgreSQL without JIT, sorting in memory.

    The planner overestimates these aggregates (joins of a window's cases, their alerts and
    scores), and JIT-compiling them costs several hundred milliseconds — more than running
    them; the resolution-time quantiles sort tens of thousands of rows, which the default
    ``work_mem`` (4 MB) spills to disk.
    """
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL jit = off")
            connection.exec_driver_sql("SET LOCAL work_mem = '32MB'")
        try:
            yield connection
        finally:
            connection.rollback()
