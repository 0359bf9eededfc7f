"""What the stream scorer publishes for a batch: score and alert messages, dead letters, offsets.

A score message is the JSON of the score *as the alert store holds it*: the batch's own score,
except for a transaction an earlier (crashed) attempt already stored, whose first score is
published instead — so the topics, the store and every replay agree. Each carries the policy
version that decided (null under the model's thresholds or the fallback rules), the alert's
route and priority factor, and the policy rules that fired. An alert is the same
message on the alerts topic. A dead letter is the refused payload (card numbers redacted by the
decoder) with its reason and source position in headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Message, TopicPartition

from fraudrisk.alerts.records import RECORD_FIELDS
from fraudrisk.alerts.store import ScoreColumns, ScoreRecord
from fraudrisk.jobs.decode import Reject
from fraudrisk.vocab import ALERT_DECISIONS

#: A score message: key (customer id), JSON value, and whether it goes to the alerts topic too.
ScoreMessage = tuple[bytes, bytes, bool]
Headers = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True)
class DeadLetter:
    """A refused message for the dead-letter topic."""

    key: bytes | None
    value: bytes
    headers: Headers


@dataclass(frozen=True)
class Outgoing:
    """One batch's Kafka output, committed as one transaction."""

    scores: list[ScoreMessage] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    offsets: list[TopicPartition] | None = None
    """The next offset of each partition the batch read (None: commit no offsets)."""
    group_metadata: Any = None
    """The consumer group's metadata when the batch was read (fences a zombie's offsets)."""


def score_messages(columns: ScoreColumns, earlier: dict[int, ScoreRecord]) -> list[ScoreMessage]:
    """The score message of every row, as the store holds it (``earlier``: a replay's rows)."""
    names = RECORD_FIELDS
    out: list[ScoreMessage] = []
    for row in zip(*(getattr(columns, name) for name in names), strict=True):
        stored = earlier.get(row[0])
        if stored is not None:  # stored by an earlier attempt: publish that score, not this one
            out.append((str(stored.customer_id).encode(), record_message(stored), stored.is_alert))
            continue
        value = dict(zip(names, row, strict=True))
        out.append(
            (
                str(value["customer_id"]).encode(),
                _message(value),
                value["decision"] in ALERT_DECISIONS,
            )
        )
    return out


def _message(value: dict[str, Any]) -> bytes:
    """The JSON of one record's fields (reason codes and rules embedded as JSON)."""
    value["tx_datetime"] = value["tx_datetime"].isoformat()
    value["reason_codes"] = orjson.Fragment(value["reason_codes"])
    value["policy_rules"] = orjson.Fragment(value["policy_rules"])
    return orjson.dumps(value)


def record_message(record: ScoreRecord) -> bytes:
    """The score message of one stored record."""
    return _message({name: getattr(record, name) for name in RECORD_FIELDS})


def dead_letters(messages: list[Message], rejects: list[Reject]) -> list[DeadLetter]:
    """The dead letter of each rejected message: payload, reason and source position."""
    out = []
    for reject in rejects:
        source = messages[reject.index]
        headers: Headers = [
            ("reason", reject.reason.encode()),
            ("source_topic", str(source.topic()).encode()),
            ("source_partition", str(source.partition()).encode()),
            ("source_offset", str(source.offset()).encode()),
        ]
        out.append(DeadLetter(source.key(), reject.payload, headers))
    return out


def next_offsets(messages: list[Message]) -> list[TopicPartition]:
    """Per partition read, the offset after the batch's last message of it."""
    last: dict[tuple[str, int], int] = {}
    for message in messages:
        where = (str(message.topic()), message.partition() or 0)
        last[where] = max(last.get(where, -1), message.offset() or 0)
    return [
        TopicPartition(topic, partition, offset + 1)
        for (topic, partition), offset in sorted(last.items())
    ]
