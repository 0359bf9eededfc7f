"""A batch of Kinesis records, processed the same way by the consumer and the Lambda handler.

Decode and validate (:func:`~fraudrisk.jobs.decode.decode`), score with the served
variants over the state cache, write the alert store (idempotent upsert), and send the refused
records to the dead letters with their reason. The consumer treats a failure as the whole
batch's (it is read again from the checkpoint); the Lambda handler reports the records whose
step failed (partial batch response), refused records counting as handled once dead-lettered.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fraudrisk.alerts.store import WriteResult
from fraudrisk.config import KinesisSettings
from fraudrisk.jobs.deadletters import DeadLetter, DeadLetterSink
from fraudrisk.jobs.decode import Decoded, Reject, decode
from fraudrisk.jobs.runtime import Runtime, score_rows

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceRecord:
    """One Kinesis record: its data (None if it could not be read) and its position."""

    data: bytes | None
    sequence_number: str
    partition_key: str
    shard_id: str
    stream: str
    unreadable: str = ""
    """Why ``data`` could not be read (e.g. not base64 in a Lambda event); empty if read."""


@dataclass
class Outcome:
    """What processing a batch did, and the sequence numbers whose processing failed."""

    decoded: Decoded
    written: WriteResult = field(default_factory=lambda: WriteResult(0, 0))
    failed: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """Records sent (or to be sent) to the dead letters."""
        return len(self.decoded.rejects)


def kinesis_client(settings: KinesisSettings) -> KinesisClient:
    """A boto3 Kinesis client for the settings' endpoint, region and credentials."""
    import boto3  # deferred: boto3 (≈70 ms) only when a client is built
    from botocore.config import Config

    options: dict[str, Any] = {
        "region_name": settings.region,
        "config": Config(
            retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30
        ),
    }
    if settings.endpoint_url:
        options["endpoint_url"] = settings.endpoint_url
    if settings.access_key_id:
        options["aws_access_key_id"] = settings.access_key_id
        options["aws_secret_access_key"] = settings.secret_access_key.get_secret_value()
    client: KinesisClient = boto3.client("kinesis", **options)
    return client


class RecordProcessor:
    """Score a batch of records into the store; refused ones to the dead letters."""

    def __init__(self, runtime: Runtime, dead_letters: DeadLetterSink) -> None:
        """Process with the runtime's variants, cache and store."""
        self.runtime = runtime
        self.dead_letters = dead_letters
        self.epoch = dt.date.fromisoformat(runtime.settings.lake.epoch)

    def process(self, records: Sequence[SourceRecord]) -> Outcome:
        """Process a batch as a whole: any failure raises (the batch is to be read again)."""
        decoded = self._decode(records)
        written = self.runtime.store.write(
            score_rows(self.runtime.variants, self.runtime.cache, decoded.rows)
        )
        self.dead_letters.send(self._letters(records, decoded))
        return Outcome(decoded, written)

    def process_each(self, records: Sequence[SourceRecord]) -> Outcome:
        """Process a batch, reporting the records whose step failed instead of raising."""
        decoded = self._decode(records)
        outcome = Outcome(decoded)
        try:
            rows = score_rows(self.runtime.variants, self.runtime.cache, decoded.rows)
            outcome.written = self.runtime.store.write(rows)
        except Exception as error:  # the store or the model failed: these records are retried
            log.error(
                "scoring or storing %d records failed: %s",
                len(decoded.indices),
                type(error).__name__,
            )
            outcome.failed += [records[i].sequence_number for i in decoded.indices]
        try:
            self.dead_letters.send(self._letters(records, decoded))
        except Exception as error:
            log.error(
                "dead-lettering %d records failed: %s", len(decoded.rejects), type(error).__name__
            )
            outcome.failed += [records[r.index].sequence_number for r in decoded.rejects]
        return outcome

    def _decode(self, records: Sequence[SourceRecord]) -> Decoded:
        decoded = decode([r.data if not r.unreadable else None for r in records], self.epoch)
        if not any(r.unreadable for r in records):
            return decoded
        rejects = [
            reject
            if not records[reject.index].unreadable
            else Reject(reject.index, b"", records[reject.index].unreadable)
            for reject in decoded.rejects
        ]
        return Decoded(decoded.rows, decoded.indices, rejects)

    @staticmethod
    def _letters(records: Sequence[SourceRecord], decoded: Decoded) -> list[DeadLetter]:
        letters = []
        for reject in decoded.rejects:
            source = records[reject.index]
            letters.append(
                DeadLetter(
                    reject.payload,
                    reject.reason,
                    source.stream,
                    source.shard_id,
                    source.sequence_number,
                    source.partition_key,
                )
            )
        return letters
