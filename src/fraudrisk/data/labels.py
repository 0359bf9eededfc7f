"""Fraud labels as data: the ``labels`` topic's message, publishing it, the lake's labels table.

A label says whether a transaction was fraud, and **when that became known** (``labelled_at``):
readers keep only labels given before the time they look from (point in time), so a
resolution of today never leaks into a model or a report of last week. Labels come from the
simulator (``tx_fraud`` in the lake, known after the label delay), from analysts resolving cases
(source ``analyst``) and from chargeback feeds (source ``chargeback``); analysts' and
chargebacks' are also kept in the **labels table** beside the lake (``labels/dt=<day
labelled>/``, append-only Parquet), which monitoring and training read with the lake's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fraudrisk.config import Settings
from fraudrisk.io.partitioned import DayPartitions
from fraudrisk.io.storage import Storage
from fraudrisk.schemas import NonNegativeId

#: The labels table's folder, beside the lake's root.
LABELS_DIR = "labels"
#: Columns of a labels frame: one label per transaction, when it was given and by what.
LABEL_FRAME_COLUMNS = ("transaction_id", "tx_fraud", "labelled_at", "source")
_TABLE_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.int64()),
        ("tx_fraud", pa.int8()),
        ("labelled_at", pa.timestamp("us")),
        ("customer_id", pa.int64()),
        ("tx_datetime", pa.timestamp("us")),
        ("source", pa.string()),
        ("labelled_by", pa.string()),
        ("case_id", pa.int64()),
    ]
)


class LabelMessage(BaseModel):
    """One message of the ``labels`` topic."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    transaction_id: NonNegativeId
    tx_fraud: int = Field(ge=0, le=1, description="1 = fraud.")
    labelled_at: dt.datetime | None = Field(
        None, description="When the label was given (naive UTC); absent = the message time."
    )
    customer_id: NonNegativeId | None = Field(None, description="The card (message key).")
    terminal_id: NonNegativeId | None = Field(None, description="For the terminal risk state.")
    tx_datetime: dt.datetime | None = Field(None, description="When the transaction happened.")
    source: str | None = Field(
        None, max_length=32, description="Who gave it: analyst, chargeback, simulator…"
    )
    labelled_by: str | None = Field(None, max_length=64, description="The analyst, if a person.")
    case_id: NonNegativeId | None = Field(None, description="The case that resolved it.")

    @field_validator("labelled_at", "tx_datetime")
    @classmethod
    def _naive_utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def key(self) -> bytes:
        """The message key: the customer (the platform's topics are keyed by customer)."""
        return str(
            self.customer_id if self.customer_id is not None else self.transaction_id
        ).encode()


def label_messages(
    rows: pd.DataFrame, labelled_at: dt.datetime | None = None
) -> list[LabelMessage]:
    """Label messages of lake-like rows (``transaction_id``, ``tx_fraud`` and any known fields).

    Args:
        rows: One row per label; ``labelled_at`` column or argument, else now.
        labelled_at: When the labels were given, for rows without a ``labelled_at``.

    Raises:
        ValueError: If a row is not a valid label (the first problems are named).
    """
    now = labelled_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    optional = ("customer_id", "terminal_id", "tx_datetime", "labelled_at")
    columns = ["transaction_id", "tx_fraud", *(c for c in optional if c in rows.columns)]
    records = rows[columns].to_dict("records")
    messages, problems = [], []
    for number, record in enumerate(records, start=1):
        record = {k: (None if pd.isna(v) else v) for k, v in record.items()}
        record["labelled_at"] = record.get("labelled_at") or now
        try:
            messages.append(LabelMessage.model_validate(record))
        except ValidationError as error:
            problems.append(f"row {number}: {error.errors()[0]['loc']} {error.errors()[0]['msg']}")
    if problems:
        raise ValueError(f"{len(problems)} invalid labels, e.g. {problems[:3]}")
    return messages


def publish_labels(
    settings: Settings,
    labels: Iterable[LabelMessage] | pd.DataFrame,
    producer: Any = None,
    timeout_s: float = 30.0,
) -> int:
    """Send labels to the ``labels`` topic, keyed by customer, and wait for the broker's acks.

    Args:
        settings: Platform settings (Kafka cluster and ``labels_topic``).
        labels: Messages, or lake-like rows (see :func:`label_messages`).
        producer: A producer to reuse; default: the platform's idempotent producer.
        timeout_s: Seconds to wait for delivery.

    Returns:
        How many labels were delivered.

    Raises:
        ValueError: If a label is invalid.
        RuntimeError: If some labels were not delivered in time.
    """
    # deferred: confluent_kafka (streaming extra) only to publish
    from fraudrisk.io.kafka import make_producer, produce_waiting

    messages = label_messages(labels) if isinstance(labels, pd.DataFrame) else list(labels)
    producer = producer or make_producer(settings, **{"linger.ms": 20})
    topic = settings.kafka.labels_topic
    for message in messages:
        value = message.model_dump_json(exclude_none=True).encode()
        produce_waiting(producer, topic, message.key(), value)
        producer.poll(0)
    remaining = producer.flush(timeout_s)
    if remaining:
        raise RuntimeError(f"{remaining} of {len(messages)} labels not delivered to {topic}")
    return len(messages)


class LabelsTable:
    """The lake's labels table: append-only, one folder per day labelled."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.partitions = DayPartitions(storage)

    @classmethod
    def beside(cls, lake_storage: Storage) -> LabelsTable:
        """The labels table of a lake (``labels/`` beside its root, or inside a bucket root)."""
        return cls(lake_storage.sibling(LABELS_DIR) or lake_storage.child(f"_{LABELS_DIR}"))

    def append(self, messages: Sequence[LabelMessage]) -> int:
        """Write labels (each day labelled one new file, atomically); returns how many."""
        by_day: dict[dt.date, list[dict[str, Any]]] = {}
        for message in messages:
            if message.labelled_at is None:
                raise ValueError(f"label of {message.transaction_id} has no labelled_at")
            row = message.model_dump(include=set(_TABLE_SCHEMA.names))
            by_day.setdefault(message.labelled_at.date(), []).append(row)
        for day, rows in sorted(by_day.items()):
            self.partitions.write_day(day, pa.Table.from_pylist(rows, _TABLE_SCHEMA), "append")
        return len(messages)

    def read(self, given_before: dt.datetime) -> pd.DataFrame:
        """Each transaction's latest label given before ``given_before`` (all columns)."""
        days = [d for d in self.partitions.days() if d <= given_before.date()]
        tables = [table for day in days for table in self.partitions.read_day(day)]
        if not tables:
            tables = [_TABLE_SCHEMA.empty_table()]
        frame: pd.DataFrame = pa.concat_tables(t.cast(_TABLE_SCHEMA) for t in tables).to_pandas()
        frame["tx_fraud"] = frame["tx_fraud"].astype("int64")
        return newest_labels(frame, given_before)


def newest_labels(frame: pd.DataFrame, given_before: dt.datetime) -> pd.DataFrame:
    """Each transaction's latest label given before ``given_before`` (a later one corrects).

    Args:
        frame: Labels with at least ``transaction_id`` and ``labelled_at``, any order.
        given_before: The point in time looked from: later labels do not exist yet.

    Returns:
        One row per transaction (the same columns), sorted by transaction id.
    """
    known = frame[frame["labelled_at"] < given_before]
    known = known.sort_values(["transaction_id", "labelled_at"], kind="stable")
    latest: pd.DataFrame = known.drop_duplicates("transaction_id", keep="last")
    return latest.reset_index(drop=True)
