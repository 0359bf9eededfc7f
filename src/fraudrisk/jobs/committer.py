"""The stream scorer's Kafka side: each batch's output and offsets in one transaction, in order.

A :class:`KafkaCommitter` owns the transactional producer and commits batches on its own thread,
one at a time and in submission order: begin, produce the scores, alerts and dead letters, add
the batch's offsets, commit. The scorer hands a batch over only after writing it to the alert
store, then goes on with the next batch while this one commits — so the broker round trips of a
commit overlap the next batch's scoring, and at most two batches are ever uncommitted.

A commit that fails raises its error at the next hand-over (or :meth:`KafkaCommitter.wait`):
the scorer then aborts the transaction and rewinds to the committed offsets, replaying both
batches; the store's idempotent upsert and the aborted transaction make the replay harmless.
A Kafka call that hangs past the timeout restarts the process (crash-only, see :func:`restart`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import NoReturn

from confluent_kafka import KafkaException, Producer

from fraudrisk.io.kafka import produce_waiting
from fraudrisk.jobs.outputs import Outgoing

log = logging.getLogger(__name__)


class KafkaCommitter:
    """Commits :class:`Outgoing` batches as Kafka transactions on a background thread."""

    def __init__(self, producer: Producer, topics: tuple[str, str, str], timeout_s: float) -> None:
        """Wrap an initialised transactional producer.

        Args:
            producer: The producer (``init_transactions`` done).
            topics: The scores, alerts and dead-letter topics.
            timeout_s: Longest wait for a commit before the process restarts itself.
        """
        self.producer = producer
        self.scores_topic, self.alerts_topic, self.dlq_topic = topics
        self.timeout_s = timeout_s
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, batch: Outgoing) -> None:
        """Wait for the previous batch's commit, then start committing ``batch``.

        Raises:
            KafkaException: The previous batch's commit failed (``batch`` is not started).
        """
        self.wait()
        self._worker = threading.Thread(
            target=self._run, args=(batch,), name="kafka-commit", daemon=True
        )
        self._worker.start()

    def wait(self) -> None:
        """Wait until the batch being committed is committed.

        Raises:
            KafkaException: Its commit failed.
        """
        worker = self._worker
        if worker is not None:
            worker.join(self.timeout_s)
            if worker.is_alive():
                restart(f"a Kafka transaction is stuck for {self.timeout_s} s")
            self._worker = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def commit_now(self, batch: Outgoing) -> None:
        """Commit ``batch`` and wait for it (the negative control's offsets-first commit)."""
        self.submit(batch)
        self.wait()

    def abort(self) -> None:
        """Abort the failed transaction, retrying while the coordinator is away (≤ 5 min).

        Raises:
            KafkaException: A fatal error, or still failing after 5 minutes.
        """
        deadline = time.monotonic() + 300
        while True:
            try:
                guarded(lambda: self.producer.abort_transaction(30), self.timeout_s)
                return
            except KafkaException as error:
                if error.args[0].fatal() or time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is left in the producer's queue (bounded)."""
        self.producer.flush(timeout_s)

    def _run(self, batch: Outgoing) -> None:
        try:
            self._commit(batch)
        except BaseException as error:  # handed to the scorer's thread at the next hand-over
            self._error = error

    def _commit(self, batch: Outgoing) -> None:
        producer = self.producer
        producer.begin_transaction()
        for key, value, is_alert in batch.scores:
            produce_waiting(producer, self.scores_topic, key, value)
            if is_alert:
                produce_waiting(producer, self.alerts_topic, key, value)
        for letter in batch.dead_letters:
            produce_waiting(producer, self.dlq_topic, letter.key, letter.value, letter.headers)
        if batch.offsets:
            producer.send_offsets_to_transaction(batch.offsets, batch.group_metadata, 30)
        producer.commit_transaction(60)


def guarded(call: Callable[[], None], timeout_s: float) -> None:
    """Run a Kafka call on a helper thread, restarting this process if it hangs.

    librdkafka can block in a transactional call past its own timeout while the group
    coordinator is away (librdkafka issues #5456, #5511). The way out is crash-only: a fresh
    process replays the uncommitted batches, which the store's upsert and the
    ``transactional.id`` fencing make harmless.
    """
    outcome: list[BaseException | None] = []

    def step() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as error:  # handed back to the calling thread
            outcome.append(error)

    worker = threading.Thread(target=step, name="kafka-call", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        restart(f"a Kafka transaction call is stuck for {timeout_s} s")
    error = outcome[0] if outcome else None
    if error is not None:
        raise error


def restart(reason: str) -> NoReturn:
    """Replace this process with a fresh copy of itself (same pid, same arguments)."""
    log.error("restarting the stream scorer: %s", reason)
    logging.shutdown()
    os.execv(sys.executable, sys.orig_argv)
