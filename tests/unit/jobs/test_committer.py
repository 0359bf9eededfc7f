"""The committer: one Kafka transaction per batch, in order, failures surfaced at the hand-over.

The producer here is an in-memory recorder (a unit test of the ordering logic); the real
transactional producer is exercised by the reliability tests against a Kafka broker.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from fraudrisk.jobs.committer import KafkaCommitter
from fraudrisk.jobs.outputs import DeadLetter, Outgoing


class RecordingProducer:
    """Records the transactional calls; ``fail_commits`` commits raise; ``gate`` holds commits."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_commits = 0
        self.gate = threading.Event()
        self.gate.set()

    def begin_transaction(self) -> None:
        self.calls.append(("begin",))

    def produce(
        self, topic: str, key: bytes | None = None, value: bytes | None = None, headers: Any = None
    ) -> None:
        self.calls.append(("produce", topic, key))

    def send_offsets_to_transaction(
        self, offsets: list[TopicPartition], _meta: Any, _timeout: float
    ) -> None:
        self.calls.append(("offsets", [(o.partition, o.offset) for o in offsets]))

    def commit_transaction(self, _timeout: float) -> None:
        self.gate.wait(5)
        if self.fail_commits:
            self.fail_commits -= 1
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker gone"))
        self.calls.append(("commit",))

    def abort_transaction(self, _timeout: float) -> None:
        self.calls.append(("abort",))

    def flush(self, _timeout: float) -> int:
        return 0


def committer(producer: RecordingProducer) -> KafkaCommitter:
    return KafkaCommitter(producer, ("scores", "alerts", "dlq"), timeout_s=10)  # type: ignore[arg-type]


def outgoing(offset: int) -> Outgoing:
    return Outgoing(
        scores=[(b"1", b"{}", False), (b"2", b"{}", True)],
        dead_letters=[DeadLetter(b"k", b"bad", [("reason", b"not JSON")])],
        offsets=[TopicPartition("tx", 0, offset)],
    )


def test_a_batch_is_one_transaction_with_its_offsets_last() -> None:
    producer = RecordingProducer()
    kafka = committer(producer)
    kafka.submit(outgoing(10))
    kafka.wait()
    assert producer.calls == [
        ("begin",),
        ("produce", "scores", b"1"),
        ("produce", "scores", b"2"),
        ("produce", "alerts", b"2"),
        ("produce", "dlq", b"k"),
        ("offsets", [(0, 10)]),
        ("commit",),
    ]


def test_the_next_batch_starts_only_after_the_previous_commit() -> None:
    producer = RecordingProducer()
    producer.gate.clear()  # the first commit hangs until released
    kafka = committer(producer)
    kafka.submit(outgoing(10))
    released = threading.Timer(0.3, producer.gate.set)
    released.start()
    kafka.submit(outgoing(20))  # waits for the first commit
    kafka.wait()
    kinds = [call[0] for call in producer.calls]
    assert kinds.count("begin") == 2 and kinds.index("commit") < kinds.index("begin", 1)
    assert [c[1] for c in producer.calls if c[0] == "offsets"] == [[(0, 10)], [(0, 20)]]


def test_a_failed_commit_is_raised_at_the_next_hand_over_and_that_batch_not_started() -> None:
    producer = RecordingProducer()
    producer.fail_commits = 1
    kafka = committer(producer)
    kafka.submit(outgoing(10))
    with pytest.raises(KafkaException, match="broker gone"):
        kafka.submit(outgoing(20))
    assert [call[0] for call in producer.calls].count("begin") == 1
    kafka.abort()
    kafka.submit(outgoing(10))  # the scorer rewound: the same offsets again
    kafka.wait()
    assert producer.calls[-1] == ("commit",) and ("abort",) in producer.calls


def test_an_offsets_only_commit_is_waited_for() -> None:
    producer = RecordingProducer()
    committer(producer).commit_now(Outgoing(offsets=[TopicPartition("tx", 1, 5)]))
    assert producer.calls == [("begin",), ("offsets", [(1, 5)]), ("commit",)]
