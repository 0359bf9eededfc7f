"""Transactions as Kafka messages, and readers of the scorer's outputs, for the stream tests."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
from confluent_kafka import KafkaError

from fraudrisk.config import KafkaSettings
from fraudrisk.data.fast import FastConfig
from fraudrisk.data.simulate import fast_days
from fraudrisk.io.kafka import make_consumer, make_producer, produce_waiting

#: Messages the scorer must send to the dead-letter topic, each with its reason.
BAD_MESSAGES: tuple[bytes, ...] = (
    b"{not json",
    b"[1, 2, 3]",
    b'{"transaction_id": 1, "pan": "4111111111111111", "tx_amount": 3}',
    b'{"transaction_id": "x", "tx_datetime": "2018-05-01T00:00:00", "customer_id": 1, '
    b'"terminal_id": 2, "tx_amount": 1}',
    b'{"transaction_id": 77, "tx_datetime": "2018-05-01T00:00:00", "customer_id": 1, '
    b'"terminal_id": 2, "tx_amount": -5}',
    b'{"transaction_id": 78, "colour": "red"}',
)


@dataclass(frozen=True)
class Replay:
    """Keyed messages in event-time order, and the transaction ids that must be scored."""

    messages: list[tuple[bytes, bytes]]
    valid_ids: frozenset[int]

    @property
    def bad(self) -> int:
        """How many messages must be dead-lettered."""
        return len(self.messages) - len(self.valid_ids)


def transactions(n: int, customers: int = 800) -> pa.Table:
    """The first ``n`` simulated transactions (fast generator, enough days to have them)."""
    days = max(int(n / (customers * 1.9)) + 3, 5)
    config = FastConfig(n_customers=customers, n_terminals=2 * customers, nb_days=days)
    table = pa.concat_tables([t for _, t in fast_days(config)])
    table = table.sort_by([("tx_datetime", "ascending"), ("transaction_id", "ascending")])
    if table.num_rows < n:
        raise ValueError(f"simulated only {table.num_rows} transactions, wanted {n}")
    return table.slice(0, n)


def replay(n: int, bad_every: int = 5000) -> Replay:
    """``n`` transactions as JSON messages keyed by customer, with bad ones mixed in."""
    rows = (
        transactions(n)
        .select(["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"])
        .to_pylist()
    )
    messages: list[tuple[bytes, bytes]] = []
    for i, row in enumerate(rows):
        row["tx_datetime"] = row["tx_datetime"].isoformat()
        messages.append((str(row["customer_id"]).encode(), json.dumps(row).encode()))
        if i % bad_every == bad_every - 1:
            messages.append((b"bad", BAD_MESSAGES[(i // bad_every) % len(BAD_MESSAGES)]))
    return Replay(messages, frozenset(int(r["transaction_id"]) for r in rows))


def unique_topics(kafka: KafkaSettings) -> KafkaSettings:
    """The same cluster with fresh topic names (tests share one broker)."""
    tag = uuid.uuid4().hex[:8]
    return kafka.model_copy(
        update={
            "transactions_topic": f"tx-{tag}",
            "scores_topic": f"scores-{tag}",
            "alerts_topic": f"alerts-{tag}",
            "labels_topic": f"labels-{tag}",
            "dlq_topic": f"dlq-{tag}",
        }
    )


def kafka_env(kafka: KafkaSettings) -> dict[str, str]:
    """The FRAUDRISK_KAFKA__* variables of these settings (for a scorer subprocess)."""
    names = (
        "bootstrap_servers",
        "transactions_topic",
        "scores_topic",
        "alerts_topic",
        "labels_topic",
        "dlq_topic",
    )
    return {f"FRAUDRISK_KAFKA__{n.upper()}": str(getattr(kafka, n)) for n in names}


def produce(kafka: KafkaSettings, messages: list[tuple[bytes, bytes]]) -> None:
    """Produce keyed messages to the transactions topic (idempotent producer, all acked)."""
    producer = make_producer(kafka, **{"linger.ms": 20})
    for key, value in messages:
        produce_waiting(producer, kafka.transactions_topic, key, value)
    if producer.flush(60):
        raise RuntimeError("messages not delivered")


def read_topic(kafka: KafkaSettings, topic: str, timeout_s: float = 60) -> list[bytes]:
    """Every committed message of a topic (``read_committed``), from the beginning."""
    import time

    consumer = make_consumer(
        kafka,
        f"reader-{uuid.uuid4().hex[:8]}",
        **{"isolation.level": "read_committed", "enable.partition.eof": True},
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    finished: set[int] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is None:
                    values.append(message.value())
                elif error.code() == KafkaError._PARTITION_EOF:
                    finished.add(message.partition())
            assignment = consumer.assignment()
            if assignment and finished >= {p.partition for p in assignment}:
                return values
    finally:
        consumer.close()
    raise TimeoutError(f"did not reach the end of {topic} in {timeout_s} s")


def duplicates(ids: list[int]) -> dict[int, int]:
    """Ids seen more than once, with their counts."""
    return {key: count for key, count in Counter(ids).items() if count > 1}
