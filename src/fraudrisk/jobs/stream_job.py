"""The stream scorer: transactions topic → features → scores → alert store and topics.

One consumer-group member per process. Each batch of messages is decoded (rejects go to the
dead-letter topic with their reason), scored with the served variants (champion, and a canary
or shadow per the serving settings), decided by the active policy version (reloaded live:
:mod:`fraudrisk.policy.live`), written to the alert store with an idempotent upsert, and
only then are the scores, alerts, dead letters **and the consumer offsets** committed together
in one Kafka transaction (:mod:`fraudrisk.jobs.committer`, on its own thread while the
next batch is scored). A crash anywhere replays the uncommitted batches: the store ignores what
it already has, the aborted Kafka transaction hides the partial output, so every transaction
has exactly one score row, one score message and at most one alert (exactly-once effect).

SIGTERM/SIGINT finish the current batch, commit, leave the group and exit 0.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import Consumer, KafkaException, Message

from fraudrisk.alerts.store import AlertStore, ColumnsWritten, ScoreColumns
from fraudrisk.config import Settings
from fraudrisk.io.kafka import make_consumer, make_producer
from fraudrisk.io.lake import Lake
from fraudrisk.jobs.batch_job import rebuild_state
from fraudrisk.jobs.committer import KafkaCommitter, restart
from fraudrisk.jobs.decode import Decoded, decode
from fraudrisk.jobs.outputs import Outgoing, dead_letters, next_offsets, score_messages
from fraudrisk.jobs.polling import caught_up, poll_batch, rewind_to_committed
from fraudrisk.jobs.prometheus import StreamMetrics
from fraudrisk.jobs.runtime import StreamTotals, policy_fields, score_columns
from fraudrisk.jobs.state_cache import StateCache
from fraudrisk.policy.live import live_policy
from fraudrisk.scoring.state_reader import FeastStateReader
from fraudrisk.serving.variants import ServedVariants, ServiceSpec

log = logging.getLogger(__name__)
#: While idle, a full garbage collection once this many messages came since the last one.
IDLE_COLLECT_AFTER = 10_000
#: Fault injection for the reliability tests: SIGKILL this process right after the N-th sink
#: write, before its Kafka commit (the worst place to die).
CRASH_AFTER_SINK_ENV = "FRAUDRISK_STREAM_CRASH_AFTER_SINK"


@dataclass
class StreamOptions:
    """How the stream scorer consumes and when it stops."""

    group_id: str = "fraudrisk-scorer"
    batch_size: int = 10_000
    """Messages per batch at most: a backlog is scored in batches this large (the features
    of a batch cost less per transaction the larger it is); a trickle in smaller ones."""
    poll_timeout_s: float = 0.05
    max_messages: int | None = None
    idle_exit_s: float | None = None
    transactional_id: str = field(
        default_factory=lambda: f"fraudrisk-scorer-{socket.gethostname()}"
    )
    explain: Literal["all", "flagged"] = "flagged"
    """Reason codes for every transaction, or only for alerts (the default: much cheaper)."""
    kafka_call_timeout_s: float = 60.0
    """A Kafka transaction taking longer restarts the process (see ``committer.guarded``)."""
    commit_first: bool = False
    """Negative control only: commit offsets *before* processing (loses data on a crash)."""


class StreamJob:
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
        self._committer: KafkaCommitter | None = None
        self._collected_at = 0  # messages consumed at the last idle collection

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        options: StreamOptions | None = None,
        *,
        online_state: bool = True,
        lake_state_before: dt.date | None = None,
    ) -> StreamJob:
        """The platform's scorer, built from the settings.

        The served variants of the serving settings, the entity state behind an in-memory
        cache and the alert store at the settings' database. The state is read through from
        the Feast online store; ``online_state=False`` starts from empty state, and
        ``lake_state_before`` rebuilds it from the lake days before that day instead (a replay
        of those days: every feature as the offline table has it, labels included).
        """
        options = options or StreamOptions()
        serving = settings.serving.model_copy(update={"reason_codes_for": options.explain})
        settings = settings.model_copy(update={"serving": serving})
        use_online = online_state and lake_state_before is None
        cache = StateCache(FeastStateReader.from_settings(settings) if use_online else None)
        if lake_state_before is not None:
            lake = Lake.open(settings.lake_uri, settings.lake)
            replayed = rebuild_state(cache, lake, lake_state_before, options.batch_size)
            log.info(
                "entity state rebuilt from %d lake transactions before %s",
                replayed,
                lake_state_before,
            )
        variants = ServedVariants(
            ServiceSpec.from_settings(settings),
            settings,
            states=lambda _settings: cache,
            policy=live_policy(settings),
        )
        if not variants.load():
            variants.serve_rules_only()
            variants.keep_loading(30.0)
        return cls(settings, variants, cache, AlertStore(settings.db_url), options)

    # -------------------------------------------------------------------------------- run
    def run(self, on_batch: Callable[[StreamTotals], None] | None = None) -> StreamTotals:
        """Consume until stopped (signal, ``max_messages`` or ``idle_exit_s``).

        The idle exit needs both: no message for ``idle_exit_s`` and nothing left to read on
        the assigned partitions (a broker that restarts also delivers no messages).
        """
        kafka = self.settings.kafka
        consumer = make_consumer(
            self.settings,
            self.options.group_id,
            **{
                "isolation.level": "read_committed",
                "statistics.interval.ms": 5000,
                "stats_cb": self.metrics.on_kafka_stats,
            },
        )
        # A transaction begun right after the previous commit is refused until the broker has
        # written its markers (CONCURRENT_TRANSACTIONS); librdkafka's default 100 ms retry
        # backoff made such a commit take ~70 ms instead of ~5 ms.
        transactional = {
            "transactional.id": self.options.transactional_id,
            "linger.ms": 5,
            "retry.backoff.ms": 10,
        }
        producer = make_producer(self.settings, **transactional)
        producer.init_transactions(30)
        self._committer = KafkaCommitter(
            producer,
            (kafka.scores_topic, kafka.alerts_topic, kafka.dlq_topic),
            self.options.kafka_call_timeout_s,
        )
        consumer.subscribe(
            [kafka.transactions_topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        self._install_signal_handlers()
        try:
            self._loop(consumer, on_batch)
            self._drain(consumer)
        finally:
            consumer.close()
            self._committer.close()
        return self.totals

    def _loop(self, consumer: Consumer, on_batch: Callable[[StreamTotals], None] | None) -> None:
        idle_since = time.monotonic()
        while not self._done():
            messages = poll_batch(consumer, self.options.poll_timeout_s, self.options.batch_size)
            if not messages:
                if not self._assigned:  # joining the group is not being idle
                    idle_since = time.monotonic()
                elif self._idle_too_long(idle_since):
                    if caught_up(consumer):  # the only way out through idleness
                        return
                    idle_since = time.monotonic()  # e.g. the broker restarts: wait for it
                else:
                    self._collect_while_idle()
                continue
            idle_since = time.monotonic()
            try:
                self._process(consumer, messages)
            except KafkaException as error:
                self._recover(consumer, error)
                continue
            if on_batch is not None:
                on_batch(self.totals)

    def _collect_while_idle(self) -> None:
        """Collect garbage now, when no transaction waits, and freeze what survives.

        The entity states grow to hundreds of thousands of objects; a collection the
        interpreter starts on its own mid-batch scans them (a 100-300 ms pause in a stream
        scored in ~30 ms). Frozen, they are never scanned again until the next idle moment.
        """
        if self.totals.consumed - self._collected_at < IDLE_COLLECT_AFTER:
            return
        gc.unfreeze()  # so that garbage frozen since the last time is collected too
        gc.collect()
        gc.freeze()
        self._collected_at = self.totals.consumed

    def _drain(self, consumer: Consumer) -> None:
        """Wait for the last batch's commit (if it fails, it is replayed by the next run)."""
        try:
            self.committer.wait()
        except KafkaException as error:
            self._recover(consumer, error)

    @property
    def committer(self) -> KafkaCommitter:
        """The Kafka side (exists while :meth:`run` runs)."""
        if self._committer is None:
            raise RuntimeError("the scorer is not running")
        return self._committer

    def _recover(self, consumer: Consumer, error: KafkaException) -> None:
        """A Kafka transaction failed (broker gone, coordinator moved…): abort it and rewind.

        The consumer goes back to the last committed offsets, so the uncommitted batches are
        consumed and processed again; the store's upsert makes the repeat harmless. A fatal
        error (e.g. this producer was fenced by a newer instance) restarts the process.
        """
        kafka_error = error.args[0]
        if kafka_error.fatal():  # e.g. fenced after a transaction timed out: start afresh
            restart(f"fatal Kafka error: {kafka_error}")
        log.warning("Kafka transaction failed (%s): aborting and replaying the batch", kafka_error)
        self.metrics.retries.inc()
        self.committer.abort()
        rewind_to_committed(consumer)

    def _done(self) -> bool:
        """Stopped by a signal or ``max_messages`` (the idle exit is decided in the loop)."""
        limit = self.options.max_messages
        return self.stopping or (limit is not None and self.totals.consumed >= limit)

    def _idle_too_long(self, idle_since: float) -> bool:
        idle = self.options.idle_exit_s
        return idle is not None and time.monotonic() - idle_since > idle

    def _on_assign(self, consumer: Consumer, partitions: list[Any]) -> None:
        log.info("partitions assigned: %s", [p.partition for p in partitions])
        self._assigned = bool(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[Any]) -> None:
        """Partitions move to another member: commit what was read, forget their customers."""
        log.info("partitions revoked: %s", [p.partition for p in partitions])
        try:
            self.committer.wait()  # with this generation's metadata, before it ends
        except KafkaException as error:  # the new owner replays from the committed offsets
            log.warning("last batch not committed before the rebalance (%s)", error.args[0])
            self.committer.abort()
        self._assigned = False
        self.cache.forget_customers()

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            log.info("signal %d: finishing the current batch, then stopping", signum)
            self.stopping = True

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)

    # ---------------------------------------------------------------------------- a batch
    def _process(self, consumer: Consumer, messages: list[Message]) -> None:
        """Sink first, then hand the batch to the committer; a crash in between replays it."""
        began = time.perf_counter()
        offsets, metadata = next_offsets(messages), consumer.consumer_group_metadata()
        if self.options.commit_first:  # the negative control: a crash in between loses it
            self.committer.commit_now(Outgoing(offsets=offsets, group_metadata=metadata))
            self._maybe_crash()
        decoded = decode([m.value() for m in messages], self._epoch())
        columns = self._score(decoded)
        written = self.store.write_columns(columns)
        if not self.options.commit_first:
            self._maybe_crash()
        outgoing = Outgoing(
            score_messages(columns, written.earlier),
            dead_letters(messages, decoded.rejects),
            None if self.options.commit_first else offsets,
            metadata,
        )
        self.committer.submit(outgoing)
        self._count(len(messages), decoded, written, time.perf_counter() - began)

    def _score(self, decoded: Decoded) -> ScoreColumns:
        if not decoded.indices:
            return ScoreColumns([], [], [], [], [], [], [], [], [], [], [])
        batch = decoded.batch()
        scores = self.variants.score(batch, policy_fields(decoded.rows))
        self.cache.apply(batch)
        return score_columns(decoded.rows, batch, scores)

    def _maybe_crash(self) -> None:
        if self._crash_after and self.totals.batches + 1 >= self._crash_after:
            log.warning("fault injection: SIGKILL after the sink write, before the commit")
            os.kill(os.getpid(), signal.SIGKILL)

    def _count(
        self,
        consumed: int,
        decoded: Decoded,
        written: ColumnsWritten,
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
