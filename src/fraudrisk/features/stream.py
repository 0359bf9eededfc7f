"""Streaming features: Spark Structured Streaming from Kafka to the Feast online store.

The job reads the ``transactions`` and ``labels`` topics through the spark-sql-kafka connector
(jars resolved by Maven), and for each micro-batch merges the events into the touched
entities' state (read from the online store), prunes it to the horizon and pushes it back
through Feast's push sources. Kafka offsets live in the Spark checkpoint; the merge is keyed by
transaction id, so a micro-batch replayed after a crash changes nothing: restarts neither lose
nor double-count a transaction. Malformed messages go to the dead-letter topic with a reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from fraudrisk.config import Settings
from fraudrisk.features import feast_store
from fraudrisk.features.online import CustomerState, TerminalState

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming.query import StreamingQuery

log = logging.getLogger(__name__)
MESSAGE_DDL = (
    "transaction_id BIGINT, tx_datetime STRING, customer_id BIGINT, "
    "terminal_id BIGINT, tx_amount DOUBLE, tx_fraud INT"
)
_REQUIRED = {
    "transactions": ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"),
    "labels": ("transaction_id", "tx_datetime", "terminal_id", "tx_fraud"),
}


@dataclass
class BatchStats:
    """What one micro-batch did."""

    transactions: int = 0
    labels: int = 0
    rejected: int = 0
    customers: int = 0
    terminals: int = 0


def _seconds(iso: str) -> int:
    stamp = datetime.fromisoformat(iso)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp())


class StateUpdater:
    """The ``foreachBatch`` sink: merge a micro-batch into entity state in the online store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Any = None
        self.history: list[BatchStats] = []

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        """Apply one micro-batch (Spark calls this; safe to call again with the same batch)."""
        self.apply(batch.toArrow())

    def apply(self, rows: pa.Table) -> BatchStats:
        """Merge rows (``topic``, ``raw`` and the parsed message fields) into the state."""
        if self.store is None:
            self.store = feast_store.get_store(self.settings)
        stats, valid = self._validate(rows)
        customers, terminals = self._load(valid)
        for row in valid:
            self._merge(row, customers, terminals)
        self._push(customers, terminals)
        stats.customers, stats.terminals = len(customers), len(terminals)
        self.history.append(stats)
        return stats

    def _validate(self, rows: pa.Table) -> tuple[BatchStats, list[dict[str, Any]]]:
        stats, valid, rejected = BatchStats(), [], []
        for row in rows.to_pylist():
            missing = [f for f in _REQUIRED[row["topic"]] if row.get(f) is None]
            seconds = _try_seconds(row.get("tx_datetime"))
            if missing or seconds is None:
                reason = f"missing or invalid: {missing or ['tx_datetime']}"
                rejected.append({"topic": row["topic"], "raw": row.get("raw"), "reason": reason})
                continue
            row["seconds"] = seconds
            valid.append(row)
            stats.transactions += row["topic"] == "transactions"
            stats.labels += row["topic"] == "labels"
        stats.rejected = len(rejected)
        if rejected:
            self._dead_letter(rejected)
        return stats, valid

    def _load(
        self, rows: list[dict[str, Any]]
    ) -> tuple[dict[int, CustomerState], dict[int, TerminalState]]:
        customer_ids = sorted({r["customer_id"] for r in rows if r["topic"] == "transactions"})
        terminal_ids = sorted({r["terminal_id"] for r in rows})
        customers = (
            {
                r["customer_id"]: _customer(r)
                for r in feast_store.lookup(self.store, "customer", customer_ids)
            }
            if customer_ids
            else {}
        )
        terminals = (
            {
                r["terminal_id"]: _terminal(r)
                for r in feast_store.lookup(self.store, "terminal", terminal_ids)
            }
            if terminal_ids
            else {}
        )
        return customers, terminals

    @staticmethod
    def _merge(
        row: dict[str, Any],
        customers: dict[int, CustomerState],
        terminals: dict[int, TerminalState],
    ) -> None:
        tx_id, seconds, terminal = row["transaction_id"], row["seconds"], row["terminal_id"]
        if row["topic"] == "transactions":
            customers[row["customer_id"]].merge(seconds, tx_id, row["tx_amount"], terminal)
            terminals[terminal].merge(seconds, tx_id)
        else:
            terminals[terminal].merge(seconds, tx_id, int(row["tx_fraud"]))

    def _push(
        self, customers: dict[int, CustomerState], terminals: dict[int, TerminalState]
    ) -> None:
        self._push_entity("customer", customers, CustomerState)
        self._push_entity("terminal", terminals, TerminalState)

    def _push_entity(
        self,
        entity: Literal["customer", "terminal"],
        states: Mapping[int, CustomerState | TerminalState],
        kind: type[CustomerState] | type[TerminalState],
    ) -> None:
        if not states:
            return
        for state in states.values():
            state.prune()
        now = datetime.now(UTC).replace(tzinfo=None)  # newer than any stored state: it wins
        frame: dict[str, list[Any]] = {
            f"{entity}_id": list(states),
            "state_as_of": [now] * len(states),
        }
        for field in fields(kind):
            frame[field.name] = [getattr(state, field.name) for state in states.values()]
        feast_store.push_entity_state(self.store, entity, pa.table(frame))

    def _dead_letter(self, rejected: list[dict[str, Any]]) -> None:
        # deferred: confluent_kafka (streaming extra) only for dead letters
        from fraudrisk.io.kafka import make_producer

        producer = make_producer(self.settings)
        for item in rejected:
            log.warning("dead-lettered a %s message: %s", item["topic"], item["reason"])
            producer.produce(self.settings.kafka.dlq_topic, value=json.dumps(item).encode())
        producer.flush(30)


def _try_seconds(value: object) -> int | None:
    try:
        return _seconds(str(value)) if value is not None else None
    except ValueError:
        return None


def _customer(row: dict[str, Any]) -> CustomerState:
    names = ("event_seconds", "event_ids", "event_amounts", "event_terminals")
    return CustomerState(*(list(row.get(n) or []) for n in names))


def _terminal(row: dict[str, Any]) -> TerminalState:
    names = ("event_seconds", "event_ids", "event_labels")
    return TerminalState(*(list(row.get(n) or []) for n in names))


def stream_source(spark: SparkSession, settings: Settings, max_offsets: int | None) -> DataFrame:
    """Transactions and labels from Kafka, parsed (fields null when a message is malformed)."""
    from pyspark.sql import functions as F  # noqa: N812

    kafka = settings.kafka
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", kafka.bootstrap_servers)
        .option("kafka.security.protocol", kafka.security_protocol)
        .option("subscribe", f"{kafka.transactions_topic},{kafka.labels_topic}")
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "true")
    )
    if max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets))
    raw = reader.load().select(
        F.when(F.col("topic") == kafka.labels_topic, F.lit("labels"))
        .otherwise(F.lit("transactions"))
        .alias("topic"),
        F.col("value").cast("string").alias("raw"),
    )
    parsed = raw.withColumn("m", F.from_json("raw", MESSAGE_DDL, {"mode": "PERMISSIVE"}))
    return parsed.select("topic", "raw", "m.*")


def start_stream(
    spark: SparkSession,
    settings: Settings,
    checkpoint: str,
    *,
    available_now: bool = False,
    interval_seconds: float = 1.0,
    max_offsets: int | None = None,
) -> tuple[StreamingQuery, StateUpdater]:
    """Start the streaming feature job; returns the query and its sink (for its statistics).

    Args:
        spark: A session with the Kafka connector jars (:func:`fraudrisk.io.jars`).
        settings: Kafka topics and the Feast online store.
        checkpoint: Checkpoint directory (offsets); reuse it to resume after a stop or crash.
        available_now: Process what is in the topics now, then stop (batch-like runs).
        interval_seconds: Micro-batch interval otherwise — the freshness bound's main term.
        max_offsets: Cap on messages per micro-batch.
    """
    updater = StateUpdater(settings)
    writer = stream_source(spark, settings, max_offsets).writeStream.foreachBatch(updater)
    writer = writer.option("checkpointLocation", checkpoint)
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{interval_seconds} seconds")
    return writer.queryName("fraudrisk-stream-features").start(), updater


__all__ = ["BatchStats", "StateUpdater", "start_stream", "stream_source"]
