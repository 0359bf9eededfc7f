"""Dead letters of the Kinesis path: a DLQ stream, or one JSON object per record under a prefix.

A dead letter is the record's payload (card-number-like digit runs redacted: a card number is
never forwarded in clear), the reason it was refused and where it came from (stream, shard,
sequence number). Under a prefix (``s3://`` or a local directory) each dead letter is one
object named by its source position, so a redelivered record rewrites the same object; a DLQ
stream receives it again (at least once).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import orjson

from fraudrisk.cards import redact_card_numbers_bytes
from fraudrisk.config import Settings
from fraudrisk.io.storage import open_storage

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import PutRecordsRequestEntryTypeDef

log = logging.getLogger(__name__)
PUT_RECORDS_LIMIT = 500
PUT_ATTEMPTS = 5


@dataclass(frozen=True)
class DeadLetter:
    """A refused record: payload, reason and source position."""

    payload: bytes
    reason: str
    stream: str
    shard_id: str
    sequence_number: str
    partition_key: str

    def document(self) -> bytes:
        """The JSON dead letter (payload as text, or base64 when it is not UTF-8)."""
        payload = redact_card_numbers_bytes(self.payload)
        body: dict[str, object] = {
            "reason": self.reason,
            "source": {
                "stream": self.stream,
                "shard_id": self.shard_id,
                "sequence_number": self.sequence_number,
                "partition_key": self.partition_key,
            },
        }
        try:
            body["payload"] = payload.decode("utf-8")
        except UnicodeDecodeError:
            body["payload_base64"] = base64.b64encode(payload).decode()
        return orjson.dumps(body)


class DeadLetterSink(Protocol):
    """Where dead letters go."""

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Deliver every letter durably, or raise."""
        ...


class StreamDeadLetters:
    """Dead letters put on a Kinesis stream, keyed by the source partition key."""

    def __init__(self, client: KinesisClient, stream: str) -> None:
        """Send to ``stream`` with ``client``."""
        self.client = client
        self.stream = stream

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Put the letters, retrying the records Kinesis refused.

        Raises:
            RuntimeError: If some records are still refused after the retries.
        """
        for start in range(0, len(letters), PUT_RECORDS_LIMIT):
            pending: list[PutRecordsRequestEntryTypeDef] = [
                {"Data": letter.document(), "PartitionKey": letter.partition_key or "-"}
                for letter in letters[start : start + PUT_RECORDS_LIMIT]
            ]
            for attempt in range(PUT_ATTEMPTS):
                answer = self.client.put_records(StreamName=self.stream, Records=pending)
                if not answer["FailedRecordCount"]:
                    break
                pending = [
                    record
                    for record, result in zip(pending, answer["Records"], strict=True)
                    if "ErrorCode" in result
                ]
                time.sleep(0.1 * 2**attempt)
            else:
                raise RuntimeError(f"{len(pending)} dead letters refused by {self.stream}")


class PrefixDeadLetters:
    """Dead letters as ``<stream>/<shard>/<sequence>.json`` objects under a prefix."""

    def __init__(self, uri: str, settings: Settings) -> None:
        """Write under ``uri`` (``s3://`` uses the lake's S3 settings)."""
        self.storage = open_storage(uri, settings.lake)

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Write each letter (atomically; a redelivered record rewrites its own object)."""
        for letter in letters:
            relative = f"{letter.stream}/{letter.shard_id}/{letter.sequence_number}.json"
            self.storage.write_bytes_atomic(relative, letter.document())


def dead_letter_sink(settings: Settings, client: KinesisClient | None = None) -> DeadLetterSink:
    """The sink of ``settings.kinesis.dlq_uri`` (``kinesis://STREAM``, ``s3://…`` or a path).

    Raises:
        ValueError: If a DLQ stream is configured but no Kinesis client is given.
    """
    uri = settings.kinesis.dlq_uri
    if uri.startswith("kinesis://"):
        if client is None:
            raise ValueError("a Kinesis client is needed for a DLQ stream")
        return StreamDeadLetters(client, uri.removeprefix("kinesis://"))
    return PrefixDeadLetters(uri, settings)
