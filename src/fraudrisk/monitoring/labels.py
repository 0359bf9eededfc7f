"""Delayed fraud labels: from the lake once the label delay has passed, or the ``labels`` topic.

A transaction's label (chargeback, analyst verdict) is known ``label_delay_days`` after it. The
lake holds every label, so reading it "as of" a day keeps only the transactions at least the
delay before that day. The Kafka ``labels`` topic carries labels as they arrive, one JSON
message per transaction keyed by customer: ``{transaction_id, tx_fraud, labelled_at}``, plus
``customer_id``, ``terminal_id`` and ``tx_datetime`` when known — the stream feature job reads
the same topic for the terminals' risk and needs those three (see
:mod:`fraudrisk.features.stream`). Reading it "as of" a day keeps labels given by its end; a
later message for the same transaction corrects an earlier one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import ValidationError

from fraudrisk.config import Settings
from fraudrisk.data.labels import (
    LABEL_FRAME_COLUMNS,
    LabelMessage,
    label_messages,
    newest_labels,
    publish_labels,
)
from fraudrisk.io.lake import Lake

# The label message and its publishing live in fraudrisk.data.labels (the case service sends
# labels too); monitoring's importers take them from here as before.
__all__ = ["LabelMessage", "kafka_labels", "label_messages", "lake_labels", "publish_labels"]
log = logging.getLogger(__name__)
#: ``source`` of the lake's own labels (the simulator's or the feed's, after the delay).
LAKE_SOURCE = "lake"
#: ``source`` of a topic message that names none.
TOPIC_SOURCE = "topic"
_GROUP_ID = "fraudrisk-monitoring-labels"


def labelled_through(as_of: dt.date, delay_days: int) -> dt.date:
    """The last day whose transactions are all labelled on ``as_of``."""
    return as_of - dt.timedelta(days=delay_days)


def lake_labels(
    lake: Lake, start: dt.date, end: dt.date, as_of: dt.date, delay_days: int
) -> pd.DataFrame:
    """Labels of the lake's transactions on days ``start..end`` known on ``as_of``.

    Args:
        lake: The lake.
        start: First day.
        end: Last day (clipped to ``as_of`` minus the delay).
        as_of: The day the labels are read.
        delay_days: Days until a label is known.

    Returns:
        :data:`LABEL_FRAME_COLUMNS`, ``labelled_at`` = the transaction time plus the delay
        (transactions without a label in the lake are left out).
    """
    last = min(end, labelled_through(as_of, delay_days))
    if last < start:
        return _empty()
    table = lake.read(start, last, columns=["transaction_id", "tx_datetime", "tx_fraud"])
    frame: pd.DataFrame = table.to_pandas().dropna(subset=["tx_fraud"])
    frame["labelled_at"] = frame.pop("tx_datetime") + pd.Timedelta(days=delay_days)
    frame["tx_fraud"] = frame["tx_fraud"].astype("int64")
    frame["source"] = LAKE_SOURCE
    return frame[list(LABEL_FRAME_COLUMNS)].reset_index(drop=True)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": pd.Series(dtype="int64"),
            "tx_fraud": pd.Series(dtype="int64"),
            "labelled_at": pd.Series(dtype="datetime64[us]"),
            "source": pd.Series(dtype="object"),
        }
    )


def decode_label(value: bytes | None, timestamp_ms: int | None = None) -> LabelMessage:
    """One ``labels`` message; ``labelled_at`` defaults to the message's timestamp.

    Raises:
        ValueError: If the message is not a label.
    """
    try:
        data = json.loads(value or b"")
        message = LabelMessage.model_validate(data)
    except (ValueError, ValidationError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"not a label: {str(error).splitlines()[0]}") from None
    if message.labelled_at is None and timestamp_ms is not None and timestamp_ms > 0:
        stamp = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC).replace(tzinfo=None)
        message = message.model_copy(update={"labelled_at": stamp})
    return message


def latest_labels(messages: Iterable[LabelMessage], given_before: dt.datetime) -> pd.DataFrame:
    """Each transaction's latest label given before ``given_before`` (later ones corrected).

    Returns:
        :data:`LABEL_FRAME_COLUMNS`, one row per transaction, sorted by id.
    """
    rows = [
        (m.transaction_id, m.tx_fraud, m.labelled_at, m.source or TOPIC_SOURCE)
        for m in messages
        if m.labelled_at is not None
    ]
    if not rows:
        return _empty()
    return newest_labels(pd.DataFrame(rows, columns=list(LABEL_FRAME_COLUMNS)), given_before)


@dataclass(frozen=True)
class TopicLabels:
    """What :func:`kafka_labels` read: the labels and how many messages were not labels."""

    labels: pd.DataFrame
    messages: int
    invalid: int


def kafka_labels(settings: Settings, as_of: dt.date, timeout_s: float = 30.0) -> TopicLabels:
    """Read the whole ``labels`` topic (up to its end now) and keep the labels known ``as_of``.

    The topic is read from its beginning with no group offsets committed: every check sees
    every label, so a restarted monitor never misses one.

    Raises:
        ValueError: If the topic does not exist.
        TimeoutError: If the topic cannot be read to its end within ``timeout_s``.
    """
    from fraudrisk.io.kafka import make_consumer  # deferred: confluent_kafka (streaming extra)

    topic = settings.kafka.labels_topic
    consumer = make_consumer(settings, _GROUP_ID)
    try:
        messages, invalid = _read_to_end(consumer, topic, timeout_s)
    finally:
        consumer.close()
    if invalid:
        log.warning("%d messages of topic %s are not labels; ignored", invalid, topic)
    end_of_day = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    return TopicLabels(latest_labels(messages, end_of_day), len(messages) + invalid, invalid)


def _read_to_end(consumer: Any, topic: str, timeout_s: float) -> tuple[list[LabelMessage], int]:
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition  # deferred: streaming extra

    metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise ValueError(f"labels topic {topic!r} does not exist")
    ends = {}
    for partition in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout_s)
        if high > low:
            ends[partition] = high
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    messages, invalid, deadline = [], 0, time.monotonic() + timeout_s
    while ends:
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not read topic {topic} to its end in {timeout_s:.0f} s")
        for message in consumer.consume(1000, timeout=0.5):
            if message.error() is not None:  # transient: the offsets say when we are done
                log.warning("reading %s: %s", topic, message.error())
                continue
            if message.offset() + 1 >= ends.get(message.partition(), 0):
                ends.pop(message.partition(), None)
            try:
                messages.append(decode_label(message.value(), message.timestamp()[1]))
            except ValueError:
                invalid += 1
    return messages, invalid
