"""AWS Lambda handler for a Kinesis event source mapping: validate, score, alert.

``handler(event, context)`` receives ``Records[].kinesis.data`` (base64 JSON transactions),
decodes and validates them like every other source, scores them with the served variants
(loaded once per container, on the first invocation) and upserts scores and alerts into the
alert store. Invalid records go to the dead letters (``FRAUDRISK_KINESIS__DLQ_URI``) with
their reason and count as handled. The answer is a partial batch response: the records whose
*processing* failed (store or model outage, dead-letter sink down) are listed in
``batchItemFailures`` and redelivered by Lambda, which the idempotent store makes harmless.
The event source mapping must enable ``ReportBatchItemFailures``. The handler never raises.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from fraudrisk.config import get_settings
from fraudrisk.jobs.deadletters import dead_letter_sink
from fraudrisk.jobs.kinesis_records import RecordProcessor, SourceRecord, kinesis_client
from fraudrisk.jobs.runtime import build_runtime

log = logging.getLogger(__name__)
_PROCESSOR: RecordProcessor | None = None


def handler(event: Any, context: Any) -> dict[str, list[dict[str, str]]]:
    """Process one Kinesis event; the records to redeliver, as a partial batch response."""
    records = source_records(event)
    try:
        outcome = processor().process_each(records)
        failed = outcome.failed
        log.info(
            "%d records: %d scored (%d new, %d new alerts), %d dead-lettered, %d failed",
            len(records),
            len(outcome.decoded.indices),
            outcome.written.scores,
            outcome.written.alerts,
            outcome.rejected,
            len(failed),
        )
    except Exception as error:  # e.g. the store or the settings unusable: retry them all
        log.error(
            "cannot process the batch (%s: %s); all %d records will be redelivered",
            type(error).__name__,
            error,
            len(records),
        )
        failed = [record.sequence_number for record in records]
    return {"batchItemFailures": [{"itemIdentifier": number} for number in failed]}


def processor() -> RecordProcessor:
    """The container's processor, built on first use from ``FRAUDRISK_*`` settings."""
    global _PROCESSOR
    if _PROCESSOR is None:
        settings = get_settings()
        runtime = build_runtime(settings, online_state=settings.kinesis.online_state)
        needs_client = settings.kinesis.dlq_uri.startswith("kinesis://")
        client = kinesis_client(settings.kinesis) if needs_client else None
        _PROCESSOR = RecordProcessor(runtime, dead_letter_sink(settings, client))
    return _PROCESSOR


def reset() -> None:
    """Forget the container's processor (the next invocation builds it again)."""
    global _PROCESSOR
    _PROCESSOR = None


def source_records(event: Any) -> list[SourceRecord]:
    """The event's records; an entry without a sequence number cannot be reported, only logged."""
    entries = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(entries, list):
        log.error("not a Kinesis event (no Records list): ignored")
        return []
    records = []
    for position, entry in enumerate(entries):
        kinesis = entry.get("kinesis") if isinstance(entry, dict) else None
        number = kinesis.get("sequenceNumber") if isinstance(kinesis, dict) else None
        if not isinstance(kinesis, dict) or not isinstance(number, str):
            log.error("event record %d has no kinesis.sequenceNumber: skipped", position)
            continue
        data, unreadable = _data(kinesis.get("data"))
        records.append(
            SourceRecord(
                data,
                number,
                str(kinesis.get("partitionKey", "")),
                str(entry.get("eventID", "")).split(":", 1)[0],
                str(entry.get("eventSourceARN", "")).rsplit("/", 1)[-1],
                unreadable,
            )
        )
    return records


def _data(value: Any) -> tuple[bytes | None, str]:
    """The record's bytes, or why there are none."""
    if not isinstance(value, str):
        return None, "kinesis.data missing or not a string"
    try:
        return base64.b64decode(value, validate=True), ""
    except (binascii.Error, ValueError):
        return None, "kinesis.data is not base64"
