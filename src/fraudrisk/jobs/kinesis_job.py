"""The Kinesis consumer (``fraudrisk stream kinesis``): shards → scores → store → checkpoint.

One process reads every shard of the stream with ``GetRecords`` (the partition key is the
customer, so each customer's state stays exact in memory). Each batch of a shard is processed
(:class:`~fraudrisk.jobs.kinesis_records.RecordProcessor`: store upsert, then dead
letters) and only then is the shard's checkpoint written to the store's database: a crash
replays at most that batch, which the idempotent store ignores (exactly-once effect).
Resharding is handled minimally: the shard list is re-read periodically and when a shard
ends; a child shard is read once its parents are done (checkpointed at their end).
SIGTERM/SIGINT finish the current batch, checkpoint it and exit.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from fraudrisk.config import Settings
from fraudrisk.jobs.checkpoints import SHARD_END, Checkpoints
from fraudrisk.jobs.deadletters import dead_letter_sink
from fraudrisk.jobs.kinesis_records import (
    Outcome,
    RecordProcessor,
    SourceRecord,
    kinesis_client,
)
from fraudrisk.jobs.runtime import StreamTotals, build_runtime

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import RecordTypeDef, ShardTypeDef

log = logging.getLogger(__name__)
#: Fault injection for the tests: SIGKILL right after the N-th sink write, before its
#: checkpoint (or, with ``checkpoint_first``, after the checkpoint and before the sink).
CRASH_AFTER_SINK_ENV = "FRAUDRISK_KINESIS_CRASH_AFTER_SINK"
SHARD_LIST_REFRESH_S = 60.0
_RETRIED = frozenset({"ExpiredIteratorException", "ProvisionedThroughputExceededException"})


@dataclass
class KinesisOptions:
    """Which stream, and when the consumer stops."""

    stream: str
    consumer: str = "fraudrisk-scorer"
    batch_size: int = 1000
    poll_interval_s: float = 1.0
    start_position: str = "TRIM_HORIZON"
    max_records: int | None = None
    idle_exit_s: float | None = None
    checkpoint_first: bool = False
    """Negative control only: checkpoint *before* the sink (loses a batch on a crash)."""
    crash_after: int = 0
    """Fault injection: crash (``on_crash``) at the N-th batch, between sink and checkpoint."""


def sigkill_self() -> None:
    """The default crash of the fault injection: die at once, no cleanup."""
    log.warning("fault injection: SIGKILL between the sink write and the checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)


class KinesisConsumer:
    """Read every shard, process, checkpoint — batch after batch."""

    def __init__(
        self,
        client: KinesisClient,
        processor: RecordProcessor,
        checkpoints: Checkpoints,
        options: KinesisOptions,
        on_crash: Callable[[], None] = sigkill_self,
    ) -> None:
        """Wire the parts; nothing is read before :meth:`run`."""
        self.client = client
        self.processor = processor
        self.checkpoints = checkpoints
        self.options = options
        self.on_crash = on_crash
        self.totals = StreamTotals()
        self.stopping = False
        self._done_upto = checkpoints.load()
        self._iterators: dict[str, str] = {}
        self._shards: list[ShardTypeDef] = []
        self._listed_at = -SHARD_LIST_REFRESH_S

    @classmethod
    def from_settings(
        cls, settings: Settings, options: KinesisOptions, *, online_state: bool = True
    ) -> KinesisConsumer:
        """The platform's consumer: served variants, alert store, checkpoints in its database."""
        runtime = build_runtime(settings, online_state=online_state)
        client = kinesis_client(settings.kinesis)
        processor = RecordProcessor(runtime, dead_letter_sink(settings, client))
        checkpoints = Checkpoints(runtime.store.engine, options.consumer, options.stream)
        return cls(client, processor, checkpoints, options)

    def run(self, on_batch: Callable[[StreamTotals], None] | None = None) -> StreamTotals:
        """Consume until stopped (signal, ``max_records`` or ``idle_exit_s``)."""
        previous = self._install_signal_handlers()
        idle_since = time.monotonic()
        try:
            while not self._done(idle_since):
                if self._round(on_batch):
                    idle_since = time.monotonic()
                elif not self._done(idle_since):
                    time.sleep(self.options.poll_interval_s)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self.totals

    def _done(self, idle_since: float) -> bool:
        limit, idle = self.options.max_records, self.options.idle_exit_s
        return (
            self.stopping
            or (limit is not None and self.totals.consumed >= limit)
            or (idle is not None and time.monotonic() - idle_since > idle)
        )

    def _round(self, on_batch: Callable[[StreamTotals], None] | None) -> int:
        """One ``GetRecords`` on every readable shard; how many records were read."""
        read = 0
        for shard_id in self._readable_shards():
            if self._done(time.monotonic()):
                break
            records = self._get(shard_id)
            if records:
                self._process(shard_id, records)
                read += len(records)
                if on_batch is not None:
                    on_batch(self.totals)
        return read

    def _readable_shards(self) -> list[str]:
        """Shards not done whose parents are done (or gone past the retention)."""
        if time.monotonic() - self._listed_at > SHARD_LIST_REFRESH_S:
            self._shards = list(self._list_shards())
            self._listed_at = time.monotonic()
        listed = {shard["ShardId"] for shard in self._shards}
        readable = []
        for shard in self._shards:
            parents = [shard.get("ParentShardId"), shard.get("AdjacentParentShardId")]
            waiting = [
                p for p in parents if p and p in listed and self._done_upto.get(p) != SHARD_END
            ]
            if self._done_upto.get(shard["ShardId"]) != SHARD_END and not waiting:
                readable.append(shard["ShardId"])
        return readable

    def _list_shards(self) -> list[ShardTypeDef]:
        shards: list[ShardTypeDef] = []
        answer = self.client.list_shards(StreamName=self.options.stream)
        shards += answer["Shards"]
        while answer.get("NextToken"):
            answer = self.client.list_shards(NextToken=answer["NextToken"])
            shards += answer["Shards"]
        return shards

    def _get(self, shard_id: str) -> list[RecordTypeDef]:
        """The next records of a shard; a shard read to its end is checkpointed as ended."""
        try:
            iterator = self._iterators.get(shard_id) or self._iterator(shard_id)
            answer = self.client.get_records(ShardIterator=iterator, Limit=self.options.batch_size)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _RETRIED:
                raise
            log.warning(
                "shard %s: %s; reading again from the checkpoint",
                shard_id,
                error.response["Error"]["Code"],
            )
            self._iterators.pop(shard_id, None)
            return []
        next_iterator = answer.get("NextShardIterator")
        if next_iterator:
            self._iterators[shard_id] = next_iterator
        else:  # the shard is closed: once its last records are checkpointed, it has ended
            self._iterators.pop(shard_id, None)
            if not answer["Records"]:
                self._mark(shard_id, SHARD_END)
                self._listed_at = -SHARD_LIST_REFRESH_S  # its children may start now
        return answer["Records"]

    def _iterator(self, shard_id: str) -> str:
        done = self._done_upto.get(shard_id)
        position: dict[str, Any] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": done}
            if done
            else {"ShardIteratorType": self.options.start_position}
        )
        answer = self.client.get_shard_iterator(
            StreamName=self.options.stream, ShardId=shard_id, **position
        )
        return answer["ShardIterator"]

    def _process(self, shard_id: str, records: list[RecordTypeDef]) -> None:
        """Sink first, then checkpoint; a failure re-reads the batch from the checkpoint."""
        batch = [
            SourceRecord(
                r["Data"], r["SequenceNumber"], r["PartitionKey"], shard_id, self.options.stream
            )
            for r in records
        ]
        last = batch[-1].sequence_number
        if self.options.checkpoint_first:  # the negative control: a crash in between loses it
            self._mark(shard_id, last)
            self._maybe_crash()
        try:
            outcome = self.processor.process(batch)
        except Exception:
            log.exception(
                "shard %s: processing %d records failed; retrying from the checkpoint",
                shard_id,
                len(batch),
            )
            self._iterators.pop(shard_id, None)
            time.sleep(self.options.poll_interval_s)
            return
        if not self.options.checkpoint_first:
            self._maybe_crash()
            self._mark(shard_id, last)
        self._count(len(batch), outcome)

    def _mark(self, shard_id: str, sequence_number: str) -> None:
        self.checkpoints.save(shard_id, sequence_number)
        self._done_upto[shard_id] = sequence_number

    def _maybe_crash(self) -> None:
        if self.options.crash_after and self.totals.batches + 1 >= self.options.crash_after:
            self.on_crash()

    def _count(self, consumed: int, outcome: Outcome) -> None:
        totals = self.totals
        totals.consumed += consumed
        totals.scored += len(outcome.decoded.indices)
        totals.rejected += outcome.rejected
        totals.new_scores += outcome.written.scores
        totals.new_alerts += outcome.written.alerts
        totals.batches += 1

    def _install_signal_handlers(self) -> dict[int, Any]:
        """Stop after the current batch on SIGTERM/SIGINT; the handlers replaced, by signal."""

        def stop(signum: int, _frame: Any) -> None:
            log.info("signal %d: finishing the current batch, then stopping", signum)
            self.stopping = True

        return {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
