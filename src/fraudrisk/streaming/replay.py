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


@dataclass(frozen=True)
class Message:
    """One message to produce."""

    topic: str
    key: bytes
    value: bytes
    seconds: int


def replay_messages(table: pa.Table, settings: Settings) -> list[Message]:
    """Transaction and label messages of lake rows, merged in event-time order."""
    rows = table.sort_by([("tx_datetime", "ascending"), ("transaction_id", "ascending")])
    seconds = rows["tx_datetime"].to_numpy().astype("datetime64[s]").astype(np.int64)
    end = int(seconds.max(initial=0))
    messages = list(_transactions(rows.to_pylist(), seconds, settings))
    messages += [m for m in _labels(rows.to_pylist(), seconds, settings) if m.seconds <= end]
    return sorted(messages, key=lambda m: m.seconds)


def _transactions(
    rows: list[dict[str, object]], seconds: np.ndarray, settings: Settings
) -> Iterator[Message]:
    for row, second in zip(rows, seconds, strict=True):
        value = {
            key: row[key] for key in ("transaction_id", "customer_id", "terminal_id", "tx_amount")
        }
        value["tx_datetime"] = row["tx_datetime"].isoformat()  # type: ignore[attr-defined]
        yield Message(
            settings.kafka.transactions_topic,
            str(row["customer_id"]).encode(),
            json.dumps(value).encode(),
            int(second),
        )


def _labels(
    rows: list[dict[str, object]], seconds: np.ndarray, settings: Settings
) -> Iterator[Message]:
    for row, second in zip(rows, seconds, strict=True):
        if row.get("tx_fraud") is None:
            continue
        value = {
            key: row[key] for key in ("transaction_id", "customer_id", "terminal_id", "tx_fraud")
        }
        value["tx_datetime"] = row["tx_datetime"].isoformat()  # type: ignore[attr-defined]
        yield Message(
            settings.kafka.labels_topic,
            str(row["customer_id"]).encode(),
            json.dumps(value).encode(),
            int(second) + LABEL_DELAY_DAYS * DAY,
        )


def produce(settings: Settings, messages: list[Message]) -> int:
    """Produce messages with the platform's idempotent producer; returns how many."""
    from fraudrisk.io.kafka import make_producer

    producer = make_producer(settings)
    for message in messages:
        producer.produce(message.topic, key=message.key, value=message.value)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining:
        raise RuntimeError(f"{remaining} messages were not delivered to Kafka")
    return len(messages)
