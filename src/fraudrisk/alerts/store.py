"""The score and alert store: every decision, and an alert for each one analysts must see.

One relational store (SQLite by default, PostgreSQL by setting) with two tables keyed by
``transaction_id``: ``scores`` (every scored transaction) and ``alerts`` (those sent to review
or declined, prioritised by expected loss = risk × amount). Writes are **idempotent upserts**
in one database transaction per batch: a batch replayed after a crash changes nothing, which is
what makes the stream scorer's effect exactly-once. Card data never reaches this store (the
transaction schema carries only keyed tokens).

A batch is written in bulk, as columns (:class:`ScoreColumns`): on SQLite one ``executemany``
per table under ``BEGIN IMMEDIATE`` (the write lock is held while the batch's new ids are
found, so two writers cannot both count one id as new); on PostgreSQL one ``INSERT … SELECT
FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING`` per table. Both skip the ids already
stored and report exactly which ones were new.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
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


#: The fields of a record, in :class:`ScoreRecord` order.
RECORD_FIELDS: tuple[str, ...] = tuple(ScoreRecord.__dataclass_fields__)


@dataclass(frozen=True)
class ScoreColumns:
    """A batch of scored transactions as columns (one list per :class:`ScoreRecord` field).

    The bulk form of a batch: no object per row. ``tx_datetime`` holds naive UTC datetimes.
    """

    transaction_id: list[int]
    customer_id: list[int]
    terminal_id: list[int]
    tx_datetime: list[dt.datetime]
    tx_amount: list[float]
    risk_score: list[float]
    decision: list[str]
    reason_codes: list[str]
    model_version: list[str]
    variant: list[str]
    fallback: list[bool]

    def __len__(self) -> int:
        return len(self.transaction_id)

    @classmethod
    def of(cls, records: Sequence[ScoreRecord]) -> ScoreColumns:
        """The columns of records (their times converted to naive UTC)."""
        columns: dict[str, Any] = {n: [getattr(r, n) for r in records] for n in RECORD_FIELDS}
        columns["tx_datetime"] = [_naive_utc(stamp) for stamp in columns["tx_datetime"]]
        return cls(**columns)

    def records(self) -> list[ScoreRecord]:
        """Every row as a record."""
        columns = (getattr(self, name) for name in RECORD_FIELDS)
        return [ScoreRecord(*row) for row in zip(*columns, strict=True)]


@dataclass(frozen=True)
class ColumnsWritten:
    """What a bulk write did: new score and alert rows, and the rows stored before."""

    scores: int
    alerts: int
    earlier: dict[int, ScoreRecord] = field(default_factory=dict)
    """Transactions a previous write already held (a replay), as stored then: first write wins,
    and this is what every other sink must publish for them."""


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
            new, alerts = _sqlite_write(self.engine, batch, now)
        else:
            with self.engine.begin() as connection:
                new, alerts = _postgres_write(connection, batch, now)
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
            return {int(row[0]): ScoreRecord(*row) for row in connection.execute(query)}

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


def _sqlite_write(engine: Engine, batch: ScoreColumns, now: dt.datetime) -> tuple[set[int], int]:
    """The new ids and alerts of a batch, written under SQLite's write lock (BEGIN IMMEDIATE).

    Holding the lock from the start makes "which ids are new" exact: no other writer can
    insert one of them between the look-up and the inserts.
    """
    raw = engine.raw_connection()
    try:
        db: Any = raw.driver_connection  # the sqlite3 connection
        cursor = db.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            ids = batch.transaction_id
            existing = {row[0] for row in cursor.execute(_SQLITE_EXISTING, (orjson.dumps(ids),))}
            new_rows = [i for i, tx in enumerate(ids) if tx not in existing]
            stamps = [stamp.isoformat(" ", "microseconds") for stamp in batch.tx_datetime]
            scored_at = now.isoformat(" ", "microseconds")
            cursor.executemany(_sqlite_insert(SCORES), _rows(batch, stamps, scored_at, new_rows))
            alert_rows = _alert_rows(batch, new_rows)
            alerts = _alerts(batch, stamps, scored_at, alert_rows)
            cursor.executemany(_sqlite_insert(ALERTS), alerts)
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


def _postgres_write(
    connection: sa.Connection, batch: ScoreColumns, now: dt.datetime
) -> tuple[set[int], int]:
    """The new ids and alerts of a batch: one ``INSERT … SELECT FROM unnest`` per table."""
    rows = list(range(len(batch)))
    scores = _arrays(_rows(batch, batch.tx_datetime, now, rows))
    inserted = connection.exec_driver_sql(_postgres_insert(connection, SCORES), scores)
    new = {int(tx) for (tx,) in inserted}
    alert_rows = _alert_rows(batch, [i for i in rows if batch.transaction_id[i] in new])
    if not alert_rows:
        return new, 0
    alerts = _arrays(_alerts(batch, batch.tx_datetime, now, alert_rows))
    return new, len(connection.exec_driver_sql(_postgres_insert(connection, ALERTS), alerts).all())


def _arrays(rows: list[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    """Rows as one list per column (the driver sends each list as an array)."""
    return tuple(list(column) for column in zip(*rows, strict=True))


_SQLITE_EXISTING = (
    "SELECT transaction_id FROM scores WHERE transaction_id IN (SELECT value FROM json_each(?))"
)


def _sqlite_insert(table: sa.Table) -> str:
    names = [column.name for column in table.columns]
    return (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            " ON CONFLICT (transaction_id) DO NOTHING")  # fmt: skip


def _postgres_insert(connection: sa.Connection, table: sa.Table) -> str:
    """Every column as an array parameter, unnested into rows; the ids inserted returned."""
    names = [column.name for column in table.columns]
    casts = [f"%s::{column.type.compile(dialect=connection.dialect)}[]" for column in table.columns]
    return (f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"SELECT * FROM unnest({', '.join(casts)}) "
            "ON CONFLICT (transaction_id) DO NOTHING RETURNING transaction_id")  # fmt: skip


def _rows(batch: ScoreColumns, stamps: Sequence[Any], scored_at: Any, rows: list[int]) -> Any:
    """``scores`` rows (table column order) of the given batch rows."""
    b = batch
    return [(b.transaction_id[i], b.customer_id[i], b.terminal_id[i], stamps[i], b.tx_amount[i],
             b.risk_score[i], b.decision[i], b.reason_codes[i], b.model_version[i], b.variant[i],
             b.fallback[i], scored_at) for i in rows]  # fmt: skip


def _alert_rows(batch: ScoreColumns, rows: list[int]) -> list[int]:
    return [i for i in rows if batch.decision[i] in ALERT_DECISIONS]


def _alerts(batch: ScoreColumns, stamps: Sequence[Any], created_at: Any, rows: list[int]) -> Any:
    """``alerts`` rows (table column order): priority = expected loss = risk × amount."""
    b = batch
    return [(b.transaction_id[i], b.customer_id[i], stamps[i], b.tx_amount[i], b.risk_score[i],
             b.decision[i], round(b.risk_score[i] * b.tx_amount[i], 4), b.reason_codes[i],
             b.model_version[i], "open", created_at) for i in rows]  # fmt: skip


def _naive_utc(stamp: dt.datetime) -> dt.datetime:
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp
