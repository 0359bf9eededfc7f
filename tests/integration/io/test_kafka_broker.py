"""The local KRaft broker end to end: topics, idempotent producer, consumer group, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from fraudrisk.config import KafkaSettings
from fraudrisk.io.jars import JARS_DIR_ENV
from fraudrisk.io.kafka import ensure_topics, make_admin, make_consumer, make_producer
from fraudrisk.io.kafka_broker import free_port

pytestmark = pytest.mark.integration
N_MESSAGES = 1_000


def test_ensure_topics_is_idempotent(kafka_settings: KafkaSettings) -> None:
    names = ensure_topics(kafka_settings)
    assert names == ["transactions", "scores", "alerts", "labels", "transactions.dlq"]
    assert ensure_topics(kafka_settings) == names
    topics = make_admin(kafka_settings).list_topics(timeout=10).topics
    assert len(topics["transactions"].partitions) == 6
    assert all(len(topics[name].partitions) == 6 for name in names)


def _produce(settings: KafkaSettings, sent: dict[str, str], partitions: dict[str, int]) -> None:
    producer = make_producer(settings)
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            key, partition = (msg.key() or b"").decode(), msg.partition()
            assert partition is not None
            assert partitions.setdefault(key, partition) == partition

    for value, key in sent.items():
        producer.produce("transactions", key=key, value=value, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == []


def _consume(settings: KafkaSettings, group: str, tag: str) -> dict[str, str]:
    consumer = make_consumer(settings, group)
    consumer.subscribe(["transactions"])
    received: dict[str, str] = {}
    deadline = time.monotonic() + 60
    try:
        while len(received) < N_MESSAGES and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=1.0):
                assert msg.error() is None, msg.error()
                value = (msg.value() or b"").decode()
                if value.startswith(tag):
                    received[value] = (msg.key() or b"").decode()
        consumer.commit(asynchronous=False)
        _assert_committed_to_the_end(consumer)
    finally:
        consumer.close()
    return received


def _assert_committed_to_the_end(consumer: Consumer) -> None:
    assignment = consumer.assignment()
    assert len(assignment) == 6
    for tp in consumer.committed(assignment, timeout=10):
        watermarks = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), 10)
        assert watermarks is not None and tp.offset == watermarks[1]


def test_produce_and_consume_1000_keyed_messages(kafka_settings: KafkaSettings) -> None:
    ensure_topics(kafka_settings)
    tag = f"run-{uuid.uuid4().hex[:8]}"
    sent = {f"{tag}-tx-{i:04d}": f"customer-{i % 97}" for i in range(N_MESSAGES)}
    partitions: dict[str, int] = {}
    _produce(kafka_settings, sent, partitions)
    assert len(partitions) == 97 and len(set(partitions.values())) > 1

    received = _consume(kafka_settings, f"group-{tag}", tag)
    assert received == sent


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudrisk", "kafka", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_cli_up_status_down(tmp_path: Path, jars_dir: Path) -> None:
    port = free_port()
    env = os.environ | {
        "FRAUDRISK_HOME": str(tmp_path / "home"),
        "FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        JARS_DIR_ENV: str(jars_dir),
        "COLUMNS": "200",
    }
    try:
        up = _cli("up", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"export FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:{port}" in up.stdout
        status = _cli("status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "running" in status.stdout and f"127.0.0.1:{port}" in status.stdout
        assert "transactions.dlq" in status.stdout
        again = _cli("up", env=env)
        assert again.returncode == 0 and "already running" in again.stdout
    finally:
        down = _cli("down", env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped" in down.stdout
    stopped = _cli("status", env=env)
    assert stopped.returncode == 1 and "not running" in stopped.stdout


def test_backlog_counts_what_is_left_to_read(kafka_settings: KafkaSettings) -> None:
    from tests.support.stream import unique_topics

    from fraudrisk.io.kafka import backlog

    settings = unique_topics(kafka_settings)
    ensure_topics(settings)
    tag = f"run-{uuid.uuid4().hex[:8]}"
    producer = make_producer(settings)
    for i in range(300):
        producer.produce(settings.transactions_topic, key=f"c{i % 31}", value=f"{tag}-{i}")
    assert producer.flush(30) == 0
    consumer = make_consumer(settings, f"group-{tag}")
    consumer.subscribe([settings.transactions_topic])
    try:
        read = []
        while not read:  # the first message arrives once the group has assigned the partitions
            read = consumer.consume(100, timeout=2.0)
        assert backlog(consumer) == 300 - len(read)
        while len(read) < 300:
            read += consumer.consume(300, timeout=2.0)
        assert backlog(consumer) == 0
    finally:
        consumer.close()


def test_produce_waiting_outlasts_a_full_local_queue(kafka_settings: KafkaSettings) -> None:
    from tests.support.stream import read_topic, unique_topics

    from fraudrisk.io.kafka import produce_waiting

    settings = unique_topics(kafka_settings)
    ensure_topics(settings)
    producer = make_producer(settings, **{"queue.buffering.max.messages": 10})
    with pytest.raises(BufferError):  # what a plain produce does with a burst this size
        for i in range(500):
            producer.produce(settings.labels_topic, key=b"k", value=str(i).encode())
    assert producer.flush(30) == 0
    for i in range(500):
        produce_waiting(producer, settings.transactions_topic, b"k", str(i).encode())
    assert producer.flush(30) == 0
    values = read_topic(settings, settings.transactions_topic)
    assert values == [str(i).encode() for i in range(500)]  # all of them, in order (one key)
