"""Replay lake transactions into Kafka as a live feed: transactions, then delayed labels.

Messages are produced in event-time order; the label of a transaction is produced when the
replay clock reaches its time plus the label delay (as a chargeback or an analyst's verdict
would arrive), and only if that moment falls inside the replay.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fraudrisk.config import Settings
from fraudrisk.features.definitions import DAY, LABEL_DELAY_DAYS
from fraudrisk.io.kafka import make_producer, produce_waiting


@dataclass(frozen=True)
class Message:
    """One message to produce."""

    topic: str
    key: bytes
    value: bytes
    seconds: int


_TRANSACTION_FIELDS = ("transaction_id", "customer_id", "terminal_id", "tx_amount")
_LABEL_FIELDS = ("transaction_id", "customer_id", "terminal_id", "tx_fraud")


def replay_messages(table: pa.Table, settings: Settings) -> list[Message]:
    """Transaction and label messages of lake rows, merged in event-time order."""
    rows = table.sort_by([("tx_datetime", "ascending"), ("transaction_id", "ascending")])
    seconds = rows["tx_datetime"].to_numpy().astype("datetime64[s]").astype(np.int64)
    end = int(seconds.max(initial=0))
    records = rows.to_pylist()
    kafka = settings.kafka
    messages = list(_messages(records, seconds, kafka.transactions_topic, _TRANSACTION_FIELDS, 0))
    labels = _messages(
        [r for r in records if r.get("tx_fraud") is not None],
        seconds[[r.get("tx_fraud") is not None for r in records]],
        kafka.labels_topic,
        _LABEL_FIELDS,
        LABEL_DELAY_DAYS * DAY,
    )
    messages += [m for m in labels if m.seconds <= end]
    return sorted(messages, key=lambda m: m.seconds)


def _messages(
    records: list[dict[str, object]],
    seconds: np.ndarray,
    topic: str,
    fields: tuple[str, ...],
    delay: int,
) -> Iterator[Message]:
    """One JSON message per record, keyed by customer, due ``delay`` seconds after the event."""
    for record, second in zip(records, seconds, strict=True):
        value = {key: record[key] for key in fields}
        value["tx_datetime"] = record["tx_datetime"].isoformat()  # type: ignore[attr-defined]
        yield Message(
            topic,
            str(record["customer_id"]).encode(),
            json.dumps(value).encode(),
            int(second) + delay,
        )


def produce(settings: Settings, messages: list[Message]) -> int:
    """Produce messages with the platform's idempotent producer; returns how many."""
    producer = make_producer(settings)
    for message in messages:
        produce_waiting(producer, message.topic, message.key, message.value)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining:
        raise RuntimeError(f"{remaining} messages were not delivered to Kafka")
    return len(messages)
