"""Kinesis checkpoints in the alert store's database: the last sequence number done per shard.

A checkpoint is written only after the batch's scores are committed to the store, so a crash
replays at most the batch since the last checkpoint (at-least-once delivery), which the store's
idempotent upsert turns into an exactly-once effect. A shard read to its end (closed by a
reshard) is marked :data:`SHARD_END`, which lets its children start.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

SHARD_END = "SHARD_END"
METADATA = sa.MetaData()
CHECKPOINTS = sa.Table(
    "checkpoints",
    METADATA,
    sa.Column("consumer", sa.String(128), primary_key=True),
    sa.Column("stream", sa.String(128), primary_key=True),
    sa.Column("shard_id", sa.String(128), primary_key=True),
    sa.Column("sequence_number", sa.String(128), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


class Checkpoints:
    """The checkpoints of one consumer name on one stream."""

    def __init__(self, engine: Engine, consumer: str, stream: str) -> None:
        """Bind to a database (the alert store's engine), creating the table if missing."""
        self.engine = engine
        self.consumer = consumer
        self.stream = stream
        METADATA.create_all(engine)

    def load(self) -> dict[str, str]:
        """Sequence number (or :data:`SHARD_END`) by shard id."""
        query = sa.select(CHECKPOINTS.c.shard_id, CHECKPOINTS.c.sequence_number).where(
            CHECKPOINTS.c.consumer == self.consumer, CHECKPOINTS.c.stream == self.stream
        )
        with self.engine.connect() as connection:
            return {str(shard): str(sequence) for shard, sequence in connection.execute(query)}

    def save(self, shard_id: str, sequence_number: str) -> None:
        """Record that a shard is done up to ``sequence_number`` (an upsert, one transaction)."""
        row = {
            "consumer": self.consumer,
            "stream": self.stream,
            "shard_id": shard_id,
            "sequence_number": sequence_number,
            "updated_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        }
        insert = _insert(self.engine.dialect.name)
        statement = insert.on_conflict_do_update(
            index_elements=["consumer", "stream", "shard_id"],
            set_={"sequence_number": sequence_number, "updated_at": row["updated_at"]},
        )
        with self.engine.begin() as connection:
            connection.execute(statement, [row])


def _insert(dialect: str) -> sqlite.Insert | postgresql.Insert:
    return postgresql.insert(CHECKPOINTS) if dialect == "postgresql" else sqlite.insert(CHECKPOINTS)
