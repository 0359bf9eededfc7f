"""The shadow policy's decisions, stored beside the scores: never returned, never acted on.

``policy_shadow_decisions`` holds, per transaction and shadow version, what the active version
decided and what the shadow version would have decided (with the rules it fired). It lives in
the alert store's database and, like the store's tables, is made with ``create_all`` at open.
Writes are idempotent by (transaction, shadow version): a replayed batch changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from fraudrisk.io.database import sqlite_pragmas

SHADOW_METADATA = sa.MetaData()
SHADOW_DECISIONS = sa.Table(
    "policy_shadow_decisions",
    SHADOW_METADATA,
    sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("shadow_version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tx_datetime", sa.DateTime, nullable=False, index=True),
    sa.Column("tx_amount", sa.Float, nullable=False),
    sa.Column("risk_score", sa.Float, nullable=False),
    sa.Column("active_version", sa.Integer, nullable=True),
    sa.Column("active_decision", sa.String(8), nullable=False),
    sa.Column("shadow_decision", sa.String(8), nullable=False),
    sa.Column("shadow_rules", sa.Text, nullable=False),
    sa.Column("scored_at", sa.DateTime, nullable=False),
)


@dataclass(frozen=True)
class ShadowColumns:
    """A batch of shadow decisions as columns (aligned by row)."""

    transaction_id: list[int]
    tx_datetime: list[dt.datetime]
    tx_amount: list[float]
    risk_score: list[float]
    active_version: int | None
    active_decision: list[str]
    shadow_version: int
    shadow_decision: list[str]
    shadow_rules: list[str]

    def __len__(self) -> int:
        return len(self.transaction_id)

    def rows(self, scored_at: dt.datetime) -> list[dict[str, Any]]:
        """One table row per transaction."""
        return [
            {
                "transaction_id": self.transaction_id[i],
                "shadow_version": self.shadow_version,
                "tx_datetime": self.tx_datetime[i],
                "tx_amount": self.tx_amount[i],
                "risk_score": self.risk_score[i],
                "active_version": self.active_version,
                "active_decision": self.active_decision[i],
                "shadow_decision": self.shadow_decision[i],
                "shadow_rules": self.shadow_rules[i],
                "scored_at": scored_at,
            }
            for i in range(len(self))
        ]


class ShadowStore:
    """``policy_shadow_decisions`` in a SQLite or PostgreSQL database."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        """Open the database at ``url`` and create the table if missing."""
        self.engine: Engine = sa.create_engine(url, future=True, **engine_options)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", sqlite_pragmas)
        SHADOW_METADATA.create_all(self.engine)

    def write(self, batch: ShadowColumns) -> None:
        """Insert a batch, skipping (transaction, version) pairs already stored."""
        if not len(batch):
            return
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(SHADOW_DECISIONS).on_conflict_do_nothing(
            index_elements=["transaction_id", "shadow_version"]
        )
        with self.engine.begin() as connection:
            connection.execute(statement, batch.rows(now))

    def read(
        self,
        shadow_version: int | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Stored rows (of one shadow version, transactions in ``[start, end)``), by time."""
        table = SHADOW_DECISIONS
        query = sa.select(table).order_by(table.c.tx_datetime, table.c.transaction_id)
        if shadow_version is not None:
            query = query.where(table.c.shadow_version == shadow_version)
        if start is not None:
            query = query.where(table.c.tx_datetime >= start)
        if end is not None:
            query = query.where(table.c.tx_datetime < end)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def versions(self) -> Sequence[int]:
        """The shadow versions stored, newest first."""
        query = sa.select(SHADOW_DECISIONS.c.shadow_version).distinct()
        with self.engine.connect() as connection:
            return sorted((int(v) for (v,) in connection.execute(query)), reverse=True)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()
