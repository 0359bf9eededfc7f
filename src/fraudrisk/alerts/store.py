"""The score and alert store: every decision, and an alert for each one analysts must see.

One relational store (SQLite by default, PostgreSQL by setting) with two tables keyed by
``transaction_id``: ``scores`` (every scored transaction) and ``alerts`` (those sent to review
or declined, prioritised by expected loss = risk × amount). Writes are **idempotent upserts**
in one database transaction per batch: a batch replayed after a crash changes nothing, which is
what makes the stream scorer's effect exactly-once. Card data never reaches this store (the
transaction schema carries only keyed tokens).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

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
)
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
ALERT_DECISIONS = frozenset({"review", "decline"})
SUPPORTED = ("sqlite", "postgresql")


@dataclass(frozen=True)
class ScoreRecord:
    """One scored transaction, as written to the store."""

    transaction_id: int
    customer_id: int
    terminal_id: int
    tx_datetime: dt.datetime
    tx_amount: float
    risk_score: float
    decision: str
    reason_codes: str
    model_version: str
    variant: str
    fallback: bool

    @property
    def is_alert(self) -> bool:
        """Whether analysts must see it (sent to review or declined)."""
        return self.decision in ALERT_DECISIONS


@dataclass(frozen=True)
class WriteResult:
    """What one batch write did: new rows (duplicates of earlier writes are not new)."""

    scores: int
    alerts: int
    stored: tuple[ScoreRecord, ...] = ()
    """The records as the store holds them: the batch's, except that a transaction written
    before (a replay) keeps its first record — what every other sink must publish too."""


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
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        METADATA.create_all(self.engine)

    def write(self, records: Sequence[ScoreRecord]) -> WriteResult:
        """Upsert a batch of scores and its alerts in one transaction (idempotent).

        Returns:
            How many score and alert rows were new.
        """
        if not records:
            return WriteResult(0, 0)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        scores = [_score_row(r, now) for r in records]
        with self.engine.begin() as connection:
            new_ids = self._insert_new(connection, SCORES, scores)
            # Alerts follow the stored score: a replay scored differently adds no alert.
            alerts = [_alert_row(r, now) for r in records
                      if r.is_alert and r.transaction_id in new_ids]  # fmt: skip
            new_alerts = len(self._insert_new(connection, ALERTS, alerts)) if alerts else 0
            earlier = self._stored(connection, [r.transaction_id for r in records
                                                if r.transaction_id not in new_ids])  # fmt: skip
        stored = tuple(earlier.get(r.transaction_id, r) for r in records)
        return WriteResult(len(new_ids), new_alerts, stored)

    def _insert_new(
        self, connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]
    ) -> set[int]:
        """Insert the rows whose id is not there yet; the ids inserted."""
        insert = _dialect_insert(self.engine.dialect.name, table)
        statement = insert.on_conflict_do_nothing(index_elements=["transaction_id"]).returning(
            table.c.transaction_id
        )
        # RETURNING says what is new on every backend (executemany rowcounts do not).
        return {int(row[0]) for row in connection.execute(statement, rows)}

    def _stored(self, connection: sa.Connection, ids: list[int]) -> dict[int, ScoreRecord]:
        """The records already stored for these ids (a replayed batch), by id."""
        if not ids:
            return {}
        names = [name for name in ScoreRecord.__dataclass_fields__]
        query = sa.select(*(SCORES.c[name] for name in names)).where(
            SCORES.c.transaction_id.in_(ids)
        )
        found = {}
        for row in connection.execute(query):
            record = ScoreRecord(**dict(zip(names, row, strict=True)))
            found[record.transaction_id] = record
        return found

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


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL + NORMAL sync: durable on commit, fast enough for a stream sink; wait on locks."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _dialect_insert(dialect: str, table: sa.Table) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise ValueError(f"no upsert for {dialect}")


def _score_row(record: ScoreRecord, now: dt.datetime) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in record.__dataclass_fields__}
    row["tx_datetime"] = _naive_utc(record.tx_datetime)
    return row | {"scored_at": now}


def _alert_row(record: ScoreRecord, now: dt.datetime) -> dict[str, Any]:
    return {
        "transaction_id": record.transaction_id,
        "customer_id": record.customer_id,
        "tx_datetime": _naive_utc(record.tx_datetime),
        "tx_amount": record.tx_amount,
        "risk_score": record.risk_score,
        "decision": record.decision,
        "priority": round(record.risk_score * record.tx_amount, 4),
        "reason_codes": record.reason_codes,
        "model_version": record.model_version,
        "status": "open",
        "created_at": now,
    }


def _naive_utc(stamp: dt.datetime) -> dt.datetime:
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp
