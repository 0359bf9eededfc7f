"""The stream scorer's consumer moves: take a batch, rewind to the commit, know the log end."""

from __future__ import annotations

import logging
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message

from fraudrisk.io.kafka import backlog

log = logging.getLogger(__name__)


def poll_batch(consumer: Consumer, timeout_s: float, batch_size: int) -> list[Message]:
    """The next batch: wait for one message, then take what else is already fetched.

    ``consume(n, timeout)`` would wait for n messages or the whole timeout; waiting only for
    the first one keeps a trickle's latency low, and a backlog still comes in full batches (the
    client prefetches). Consumer errors are logged, end-of-partition events skipped.
    """
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    more = batch_size - 1
    messages = [first, *consumer.consume(more, 0)] if more else [first]
    good = []
    for message in messages:
        error = message.error()
        if error is None:
            good.append(message)
        elif error.code() != KafkaError._PARTITION_EOF:
            log.error("consumer error: %s", error)
    return good


def rewind_to_committed(consumer: Consumer) -> None:
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


def caught_up(consumer: Consumer) -> bool:
    """Whether nothing is left to read: no messages may also mean an unreachable broker."""
    remaining = backlog(consumer)
    if remaining != 0:
        log.info(
            "idle, but %s messages are still to read: waiting",
            "an unknown number of" if remaining is None else remaining,
        )
    return remaining == 0
