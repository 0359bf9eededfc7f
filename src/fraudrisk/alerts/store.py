"""The score and alert store: every decision, and an alert for each one analysts must see.

One relational store (SQLite by default, PostgreSQL by setting) with two tables keyed by
``transaction_id``: ``scores`` (every scored transaction) and ``alerts`` (those sent to review
or declined, prioritised by expected loss = risk × amount). Writes are **idempotent upserts**
in one database transaction per batch: a batch replayed after a crash changes nothing, which is
what makes the stream scorer's effect exactly-once. Card data never reaches this store (the
transaction schema carries only keyed tokens).

A batch is written in bulk, as columns (:class:`~fraudrisk.alerts.records.ScoreColumns`), in
the form of its SQL dialect (:mod:`fraudrisk.alerts.bulk`): both skip the ids already stored and
report exactly which ones were new.

The tables are made with ``create_all`` (not the Alembic migrations of the application
database). Columns added later (the decision policy's: ``policy_version``, ``route``,
``priority_factor``, ``policy_rules``) are nullable or defaulted, and a store opened on an
older database adds the missing ones (:func:`add_missing_columns`, idempotent). An alert's
priority is its expected loss (risk × amount) times the policy's priority factor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from fraudrisk.alerts.bulk import StoreTables, postgres_write, sqlite_write
from fraudrisk.alerts.records import (
    RECORD_FIELDS,
    ColumnsWritten,
    ScoreColumns,
    ScoreRecord,
    WriteResult,
)
from fraudrisk.io.database import sqlite_pragmas

# The records lived here before they had their module; importers take them from here.
__all__ = [
    "ALERTS",
    "METADATA",
    "SCORES",
    "SUPPORTED",
    "TABLES",
    "AlertStore",
    "ColumnsWritten",
    "ScoreColumns",
    "ScoreRecord",
    "WriteResult",
]

METADATA = sa.MetaData()
SCORES = sa.Table(
    "scores",
    METADATA,
    sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("terminal_id", sa.BigInteger, nullable=False),
    sa.Column("tx_datetime", sa.DateTime, nullable=False),
    sa.Column("tx_amount", sa.Float, nullable=False),
    sa.Column("risk_score", sa.Float, nullable=False),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("reason_codes", sa.Text, nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("variant", sa.String(32), nullable=False),
    sa.Column("fallback", sa.Boolean, nullable=False),
    sa.Column("scored_at", sa.DateTime, nullable=False),
    # Added with the live decision policy (old stores get them from add_missing_columns).
    sa.Column("policy_version", sa.Integer, nullable=True),
    sa.Column("route", sa.String(64), nullable=True),
    sa.Column("priority_factor", sa.Float, nullable=True, server_default=sa.text("1.0")),
    sa.Column("policy_rules", sa.Text, nullable=True, server_default=sa.text("'[]'")),
)
#: Columns of ``scores`` that stores created before them lack (added at open).
ADDED_COLUMNS = ("policy_version", "route", "priority_factor", "policy_rules")
ALERTS = sa.Table(
    "alerts",
    METADATA,
    sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("tx_datetime", sa.DateTime, nullable=False),
    sa.Column("tx_amount", sa.Float, nullable=False),
    sa.Column("risk_score", sa.Float, nullable=False),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("priority", sa.Float, nullable=False, index=True),
    sa.Column("reason_codes", sa.Text, nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default="open"),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
TABLES = StoreTables(SCORES, ALERTS)
SUPPORTED = ("sqlite", "postgresql")


class AlertStore:
    """Scores and alerts in a SQL database (SQLAlchemy URL)."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        """Open the database at ``url`` and create the tables if missing.

        Raises:
            ValueError: If the URL is not SQLite or PostgreSQL.
        """
        backend = sa.engine.make_url(url).get_backend_name()
        if backend not in SUPPORTED:
            raise ValueError(f"the alert store supports SQLite and PostgreSQL, not {backend}")
        self.url = url
        self.engine: Engine = sa.create_engine(url, future=True, **engine_options)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", sqlite_pragmas)
        METADATA.create_all(self.engine)
        add_missing_columns(self.engine, SCORES, ADDED_COLUMNS)

    def write(self, records: Sequence[ScoreRecord]) -> WriteResult:
        """Upsert a batch of scores and its alerts in one transaction (idempotent).

        Returns:
            How many score and alert rows were new, and the records as stored.
        """
        if not records:
            return WriteResult(0, 0)
        written = self.write_columns(ScoreColumns.of(records))
        stored = tuple(written.earlier.get(r.transaction_id, r) for r in records)
        return WriteResult(written.scores, written.alerts, stored)

    def write_columns(self, batch: ScoreColumns) -> ColumnsWritten:
        """Upsert a batch in bulk, in one transaction (idempotent by transaction id).

        A transaction already stored keeps its first score, and gets no alert now (alerts
        follow the stored score: a replay scored differently adds none).

        Returns:
            How many score and alert rows were new, and the earlier records of the others.
        """
        if not len(batch):
            return ColumnsWritten(0, 0)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        if self.engine.dialect.name == "sqlite":
            new, alerts = sqlite_write(self.engine, TABLES, batch, now)
        else:
            with self.engine.begin() as connection:
                new, alerts = postgres_write(connection, TABLES, batch, now)
        replayed = [tx for tx in batch.transaction_id if tx not in new]
        return ColumnsWritten(len(new), alerts, self._stored(replayed))

    def _stored(self, ids: list[int]) -> dict[int, ScoreRecord]:
        """The records already stored for these ids (a replayed batch), by id."""
        if not ids:
            return {}
        query = sa.select(*(SCORES.c[name] for name in RECORD_FIELDS)).where(
            SCORES.c.transaction_id.in_(ids)
        )
        with self.engine.connect() as connection:
            return {int(row[0]): _record(row) for row in connection.execute(query)}

    def count(self, table: str = "scores") -> int:
        """Rows in ``scores`` or ``alerts``."""
        chosen = SCORES if table == "scores" else ALERTS
        with self.engine.connect() as connection:
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(chosen)).scalar_one()
            )

    def transaction_ids(self, table: str = "scores") -> Iterator[int]:
        """Every transaction id of ``scores`` or ``alerts`` (for reconciliation)."""
        chosen = SCORES if table == "scores" else ALERTS
        with self.engine.connect() as connection:
            for (tx_id,) in connection.execute(sa.select(chosen.c.transaction_id)):
                yield int(tx_id)

    def top_alerts(self, limit: int = 10) -> list[dict[str, Any]]:
        """The open alerts of highest priority (expected loss) first."""
        query = (
            sa.select(ALERTS)
            .where(ALERTS.c.status == "open")
            .order_by(ALERTS.c.priority.desc(), ALERTS.c.transaction_id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()


def _record(row: Any) -> ScoreRecord:
    """A stored row as a record (rows stored before the policy columns read their defaults)."""
    values = dict(zip(RECORD_FIELDS, row, strict=True))
    values["priority_factor"] = (
        1.0 if values["priority_factor"] is None else values["priority_factor"]
    )
    values["policy_rules"] = values["policy_rules"] or "[]"
    return ScoreRecord(**values)


def add_missing_columns(engine: Engine, table: sa.Table, names: Sequence[str]) -> list[str]:
    """Add the columns of ``table`` named ``names`` that the database's table lacks.

    Idempotent, and safe when two processes open the store at once (a column another one
    just added is not an error). Returns the columns added.
    """
    present = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    added = []
    for name in names:
        if name in present:
            continue
        column = table.c[name]
        kind = column.type.compile(dialect=engine.dialect)
        default = f" DEFAULT {column.server_default.arg.text}" if column.server_default else ""  # type: ignore[attr-defined]
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(
                    f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}{default}"
                )
        except DBAPIError:  # added meanwhile by another process
            if name not in {c["name"] for c in sa.inspect(engine).get_columns(table.name)}:
                raise
        added.append(name)
    return added
