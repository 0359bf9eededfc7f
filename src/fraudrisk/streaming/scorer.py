"""The stream scorer: transactions topic → features → scores → alert store and topics.

One consumer-group member per process. Each batch of messages is decoded (rejects go to the
dead-letter topic with their reason), scored with the served variants (champion, and a canary
or shadow per the serving settings), written to the alert store with an idempotent upsert, and
only then are the scores, alerts, dead letters **and the consumer offsets** committed together
in one Kafka transaction. A crash anywhere replays the batch: the store ignores what it already
has, the aborted Kafka transaction hides the partial output, so every transaction has exactly
one score row, one score message and at most one alert (exactly-once effect).

SIGTERM/SIGINT finish the current batch, commit, leave the group and exit 0.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
)

from fraudrisk.alerts.store import AlertStore, ScoreRecord, WriteResult
from fraudrisk.config import Settings
from fraudrisk.inference.variants import ServedVariants
from fraudrisk.streaming.cache import StateCache
from fraudrisk.streaming.decode import Decoded, Reject, decode
from fraudrisk.streaming.metrics import StreamMetrics
from fraudrisk.streaming.records import StreamTotals, score_records

log = logging.getLogger(__name__)
#: Fault injection for the reliability tests: SIGKILL this process right after the N-th sink
#: write, before its Kafka commit (the worst place to die).
CRASH_AFTER_SINK_ENV = "FRAUDRISK_STREAM_CRASH_AFTER_SINK"


@dataclass
class StreamOptions:
    """How the stream scorer consumes and when it stops."""

    group_id: str = "fraudrisk-scorer"
    batch_size: int = 2000
    poll_timeout_s: float = 0.05
    max_messages: int | None = None
    idle_exit_s: float | None = None
    transactional_id: str = field(
        default_factory=lambda: f"fraudrisk-scorer-{socket.gethostname()}"
    )
    explain: Literal["all", "flagged"] = "flagged"
    """Reason codes for every transaction, or only for alerts (the default: much cheaper)."""
    kafka_call_timeout_s: float = 60.0
    """A Kafka transaction step taking longer restarts the process (see ``_guarded``)."""
    commit_first: bool = False
    """Negative control only: commit offsets *before* processing (loses data on a crash)."""


class StreamScorer:
    """Consume, score, sink, commit — in that order, batch after batch."""

    def __init__(
        self,
        settings: Settings,
        variants: ServedVariants,
        cache: StateCache,
        store: AlertStore,
        options: StreamOptions | None = None,
        metrics: StreamMetrics | None = None,
    ) -> None:
        """Wire the parts; Kafka clients are created by :meth:`run`."""
        self.settings = settings
        self.variants = variants
        self.cache = cache
        self.store = store
        self.options = options or StreamOptions()
        self.metrics = metrics or StreamMetrics()
        self.totals = StreamTotals()
        self.stopping = False
        self._assigned = False
        self._crash_after = int(os.environ.get(CRASH_AFTER_SINK_ENV, "0") or 0)

    @classmethod
    def from_settings(
        cls, settings: Settings, options: StreamOptions | None = None, *, online_state: bool = True
    ) -> StreamScorer:
        """The platform's scorer, built from the settings.

        The served variants of the serving settings, the Feast online state behind an
        in-memory cache (``online_state=False``: start from empty state) and the alert store at
        the settings' database.
        """
        from fraudrisk.inference.state import FeastStateReader
        from fraudrisk.inference.variants import ServiceSpec

        options = options or StreamOptions()
        serving = settings.serving.model_copy(update={"reason_codes_for": options.explain})
        settings = settings.model_copy(update={"serving": serving})
        backing = FeastStateReader.from_settings(settings) if online_state else None
        cache = StateCache(backing)
        variants = ServedVariants(ServiceSpec.from_settings(settings), settings,
                                  states=lambda _settings: cache)  # fmt: skip
        if not variants.load():
            variants.serve_rules_only()
            variants.keep_loading(30.0)
        return cls(settings, variants, cache, AlertStore(settings.db_url), options)

    # -------------------------------------------------------------------------------- run
    def run(self, on_batch: Callable[[StreamTotals], None] | None = None) -> StreamTotals:
        """Consume until stopped (signal, ``max_messages`` or ``idle_exit_s``)."""
        from fraudrisk.io.kafka import make_consumer, make_producer

        kafka = self.settings.kafka
        consumer = make_consumer(self.settings, self.options.group_id,
                                 **{"isolation.level": "read_committed",
                                    "statistics.interval.ms": 5000,
                                    "stats_cb": self.metrics.on_kafka_stats})  # fmt: skip
        transactional = {"transactional.id": self.options.transactional_id, "linger.ms": 5}
        producer = make_producer(self.settings, **transactional)
        producer.init_transactions(30)
        consumer.subscribe([kafka.transactions_topic], on_assign=self._on_assign,
                           on_revoke=self._on_revoke)  # fmt: skip
        self._install_signal_handlers()
        idle_since = time.monotonic()
        try:
            while not self._done(idle_since):
                messages = self._poll(consumer)
                if not messages:
                    if not self._assigned:  # joining the group is not being idle
                        idle_since = time.monotonic()
                    continue
                idle_since = time.monotonic()
                try:
                    self._process(consumer, producer, messages)
                except KafkaException as error:
                    self._recover(consumer, producer, error)
                    continue
                if on_batch is not None:
                    on_batch(self.totals)
        finally:
            consumer.close()
            producer.flush(10)
        return self.totals

    def _recover(self, consumer: Consumer, producer: Producer, error: KafkaException) -> None:
        """A Kafka transaction failed (broker gone, coordinator moved…): abort it and rewind.

        The consumer goes back to the last committed offsets, so the batch is consumed and
        processed again; the store's upsert makes the repeat harmless. A fatal error (e.g. this
        producer was fenced by a newer instance) is raised: the process must restart.
        """
        kafka_error = error.args[0]
        if kafka_error.fatal():  # e.g. fenced after a transaction timed out: start afresh
            restart(f"fatal Kafka error: {kafka_error}")
        log.warning("Kafka transaction failed (%s): aborting and replaying the batch", kafka_error)
        self.metrics.retries.inc()
        deadline = time.monotonic() + 300
        while True:
            try:
                self._guarded(lambda: producer.abort_transaction(30))
                break
            except KafkaException as abort_error:
                if abort_error.args[0].fatal() or time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self._rewind(consumer)

    def _rewind(self, consumer: Consumer) -> None:
        """Seek every assigned partition back to its committed offset (or the log start)."""
        while True:
            try:
                committed = consumer.committed(consumer.assignment(), timeout=30)
                break
            except KafkaException as error:
                log.warning("cannot read committed offsets yet (%s): retrying", error.args[0])
                time.sleep(1)
        for partition in committed:
            if partition.offset < 0:
                partition.offset = OFFSET_BEGINNING
            consumer.seek(partition)

    def _done(self, idle_since: float) -> bool:
        limit, idle = self.options.max_messages, self.options.idle_exit_s
        return (
            self.stopping
            or (limit is not None and self.totals.consumed >= limit)
            or (idle is not None and time.monotonic() - idle_since > idle)
        )

    def _poll(self, consumer: Consumer) -> list[Message]:
        messages = consumer.consume(self.options.batch_size, self.options.poll_timeout_s)
        good = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                log.error("consumer error: %s", error)
        return good

    def _on_assign(self, consumer: Consumer, partitions: list[Any]) -> None:
        log.info("partitions assigned: %s", [p.partition for p in partitions])
        self._assigned = bool(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[Any]) -> None:
        """Partitions move to another member: its customers' state is no longer ours."""
        log.info("partitions revoked: %s", [p.partition for p in partitions])
        self._assigned = False
        self.cache.forget_customers()

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            log.info("signal %d: finishing the current batch, then stopping", signum)
            self.stopping = True

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)

    # ---------------------------------------------------------------------------- a batch
    def _process(self, consumer: Consumer, producer: Producer, messages: list[Message]) -> None:
        """Sink first, then commit; a crash in between (the fault hook) replays the batch."""
        began = time.perf_counter()
        if self.options.commit_first:  # the negative control: a crash in between loses it
            self._commit(consumer, producer, messages, [], [], offsets=True)
            self._maybe_crash()
        decoded = decode([m.value() for m in messages], self._epoch())
        records = self._score(decoded)
        written = self.store.write(records)
        if not self.options.commit_first:
            self._maybe_crash()
        self._guarded(lambda: self._commit(consumer, producer, messages, list(written.stored),
                                           decoded.rejects,
                                           offsets=not self.options.commit_first))  # fmt: skip
        self._count(len(messages), decoded, written, time.perf_counter() - began)

    def _score(self, decoded: Decoded) -> list[ScoreRecord]:
        if not decoded.indices:
            return []
        batch = decoded.batch()
        scores = self.variants.score(batch)
        self.cache.apply(batch)
        return score_records(decoded.rows, batch, scores)

    def _commit(
        self,
        consumer: Consumer,
        producer: Producer,
        messages: list[Message],
        records: list[ScoreRecord],
        rejects: list[Reject],
        *,
        offsets: bool,
    ) -> None:
        """Scores, alerts, dead letters and (with ``offsets``) the offsets: one transaction."""
        kafka = self.settings.kafka
        producer.begin_transaction()
        for record in records:
            key = str(record.customer_id).encode()
            value = _score_message(record)
            producer.produce(kafka.scores_topic, key=key, value=value)
            if record.is_alert:
                producer.produce(kafka.alerts_topic, key=key, value=value)
        for reject in rejects:
            source = messages[reject.index]
            producer.produce(kafka.dlq_topic, key=source.key(), value=reject.payload,
                             headers=_dlq_headers(source, reject.reason))  # fmt: skip
        if offsets:
            positions = [p for p in consumer.position(consumer.assignment()) if p.offset >= 0]
            metadata = consumer.consumer_group_metadata()
            producer.send_offsets_to_transaction(positions, metadata, 30)
        producer.commit_transaction(60)

    def _guarded(self, call: Callable[[], None]) -> None:
        """Run a Kafka transaction step, restarting this process if it is stuck.

        librdkafka can block in ``send_offsets_to_transaction`` past its timeout while the group
        coordinator is away (librdkafka issues #5456, #5511). The way out is crash-only: a fresh
        process replays the batch, which the store's upsert and the transactional.id fencing
        make harmless.
        """
        outcome: list[BaseException | None] = []

        def step() -> None:
            try:
                call()
                outcome.append(None)
            except BaseException as error:  # handed back to the calling thread
                outcome.append(error)

        worker = threading.Thread(target=step, name="kafka-commit", daemon=True)
        worker.start()
        worker.join(self.options.kafka_call_timeout_s)
        if worker.is_alive():
            restart(f"a Kafka transaction call is stuck for {self.options.kafka_call_timeout_s} s")
        error = outcome[0] if outcome else None
        if error is not None:
            raise error

    def _maybe_crash(self) -> None:
        if self._crash_after and self.totals.batches + 1 >= self._crash_after:
            log.warning("fault injection: SIGKILL after the sink write, before the commit")
            os.kill(os.getpid(), signal.SIGKILL)

    def _count(
        self,
        consumed: int,
        decoded: Decoded,
        written: WriteResult,
        seconds: float,
    ) -> None:
        totals = self.totals
        totals.consumed += consumed
        totals.scored += len(decoded.indices)
        totals.rejected += len(decoded.rejects)
        totals.new_scores += written.scores
        totals.new_alerts += written.alerts
        totals.batches += 1
        self.metrics.observe_batch(consumed, len(decoded.rejects), written.alerts, seconds)

    def _epoch(self) -> dt.date:
        return dt.date.fromisoformat(self.settings.lake.epoch)


def restart(reason: str) -> NoReturn:
    """Replace this process with a fresh copy of itself (same pid, same arguments)."""
    log.error("restarting the stream scorer: %s", reason)
    logging.shutdown()
    os.execv(sys.executable, sys.orig_argv)


def _score_message(record: ScoreRecord) -> bytes:
    return orjson.dumps({
        "transaction_id": record.transaction_id, "customer_id": record.customer_id,
        "terminal_id": record.terminal_id, "tx_datetime": record.tx_datetime.isoformat(),
        "tx_amount": record.tx_amount, "risk_score": record.risk_score,
        "decision": record.decision, "reason_codes": orjson.loads(record.reason_codes),
        "model_version": record.model_version, "variant": record.variant,
        "fallback": record.fallback,
    })  # fmt: skip


def _dlq_headers(source: Message, reason: str) -> list[tuple[str, str | bytes | None]]:
    return [
        ("reason", reason.encode()),
        ("source_topic", str(source.topic()).encode()),
        ("source_partition", str(source.partition()).encode()),
        ("source_offset", str(source.offset()).encode()),
    ]
