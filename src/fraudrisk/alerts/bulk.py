"""Bulk writes of a batch of scores and its alerts, one form per SQL dialect.

On SQLite one ``executemany`` per table under ``BEGIN IMMEDIATE`` (the write lock is held while
the batch's new ids are found, so two writers cannot both count one id as new); on PostgreSQL
one ``INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING`` per table. Both
skip the ids already stored and report exactly which ones were new.

The tables are the store's (:data:`fraudrisk.alerts.store.SCORES` and ``ALERTS``): the rows
built here follow their column order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fraudrisk.alerts.records import ScoreColumns
from fraudrisk.vocab import ALERT_DECISIONS


@dataclass(frozen=True)
class StoreTables:
    """The two tables a batch is written to, both keyed by ``transaction_id``."""

    scores: sa.Table
    alerts: sa.Table


def sqlite_write(
    engine: Engine, tables: StoreTables, batch: ScoreColumns, now: dt.datetime
) -> tuple[set[int], int]:
    """The new ids and alerts of a batch, written under SQLite's write lock (BEGIN IMMEDIATE).

    Holding the lock from the start makes "which ids are new" exact: no other writer can
    insert one of them between the look-up and the inserts.

    Returns:
        The ids the batch added to ``scores``, and how many rows it added to ``alerts``.
    """
    raw = engine.raw_connection()
    try:
        db: Any = raw.driver_connection  # the sqlite3 connection
        cursor = db.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            ids = batch.transaction_id
            stored = cursor.execute(_sqlite_existing(tables.scores), (orjson.dumps(ids),))
            existing = {row[0] for row in stored}
            new_rows = [i for i, tx in enumerate(ids) if tx not in existing]
            stamps = [stamp.isoformat(" ", "microseconds") for stamp in batch.tx_datetime]
            scored_at = now.isoformat(" ", "microseconds")
            scores = _rows(batch, stamps, scored_at, new_rows)
            cursor.executemany(_sqlite_insert(tables.scores), scores)
            alert_rows = _alert_rows(batch, new_rows)
            alerts = _alerts(batch, stamps, scored_at, alert_rows)
            cursor.executemany(_sqlite_insert(tables.alerts), alerts)
            new_alerts = max(cursor.rowcount, 0) if alert_rows else 0
            db.commit()
        except BaseException:
            db.rollback()
            raise
        finally:
            cursor.close()
    finally:
        raw.close()
    return {ids[i] for i in new_rows}, new_alerts


def postgres_write(
    connection: sa.Connection, tables: StoreTables, batch: ScoreColumns, now: dt.datetime
) -> tuple[set[int], int]:
    """The new ids and alerts of a batch: one ``INSERT … SELECT FROM unnest`` per table.

    Returns:
        The ids the batch added to ``scores``, and how many rows it added to ``alerts``.
    """
    rows = list(range(len(batch)))
    scores = _arrays(_rows(batch, batch.tx_datetime, now, rows))
    inserted = connection.exec_driver_sql(_postgres_insert(connection, tables.scores), scores)
    new = {int(tx) for (tx,) in inserted}
    alert_rows = _alert_rows(batch, [i for i in rows if batch.transaction_id[i] in new])
    if not alert_rows:
        return new, 0
    alerts = _arrays(_alerts(batch, batch.tx_datetime, now, alert_rows))
    new_alerts = connection.exec_driver_sql(_postgres_insert(connection, tables.alerts), alerts)
    return new, len(new_alerts.all())


def _arrays(rows: list[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    """Rows as one list per column (the driver sends each list as an array)."""
    return tuple(list(column) for column in zip(*rows, strict=True))


def _sqlite_existing(scores: sa.Table) -> str:
    """The ids of a JSON array of ids that ``scores`` already holds."""
    return (
        f"SELECT transaction_id FROM {scores.name} "
        "WHERE transaction_id IN (SELECT value FROM json_each(?))"
    )


def _sqlite_insert(table: sa.Table) -> str:
    names = [column.name for column in table.columns]
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        " ON CONFLICT (transaction_id) DO NOTHING"
    )


def _postgres_insert(connection: sa.Connection, table: sa.Table) -> str:
    """Every column as an array parameter, unnested into rows; the ids inserted returned."""
    names = [column.name for column in table.columns]
    casts = [f"%s::{column.type.compile(dialect=connection.dialect)}[]" for column in table.columns]
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"SELECT * FROM unnest({', '.join(casts)}) "
        "ON CONFLICT (transaction_id) DO NOTHING RETURNING transaction_id"
    )


def _rows(batch: ScoreColumns, stamps: Sequence[Any], scored_at: Any, rows: list[int]) -> Any:
    """``scores`` rows (table column order) of the given batch rows."""
    b = batch
    return [
        (
            b.transaction_id[i],
            b.customer_id[i],
            b.terminal_id[i],
            stamps[i],
            b.tx_amount[i],
            b.risk_score[i],
            b.decision[i],
            b.reason_codes[i],
            b.model_version[i],
            b.variant[i],
            b.fallback[i],
            scored_at,
            b.policy_version[i],
            b.route[i],
            b.priority_factor[i],
            b.policy_rules[i],
        )
        for i in rows
    ]


def _alert_rows(batch: ScoreColumns, rows: list[int]) -> list[int]:
    return [i for i in rows if batch.decision[i] in ALERT_DECISIONS]


def _alerts(batch: ScoreColumns, stamps: Sequence[Any], created_at: Any, rows: list[int]) -> Any:
    """``alerts`` rows (table column order): priority = risk × amount × the policy's factor."""
    b = batch
    return [
        (
            b.transaction_id[i],
            b.customer_id[i],
            stamps[i],
            b.tx_amount[i],
            b.risk_score[i],
            b.decision[i],
            round(b.risk_score[i] * b.tx_amount[i] * b.priority_factor[i], 4),
            b.reason_codes[i],
            b.model_version[i],
            "open",
            created_at,
        )
        for i in rows
    ]
