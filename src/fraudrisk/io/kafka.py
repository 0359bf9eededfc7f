"""Kafka clients of the platform (confluent-kafka): topics, producer and consumer settings.

The same code talks to the local KRaft broker (``fraudrisk kafka up``) and to MSK or Strimzi:
only :class:`~fraudrisk.config.KafkaSettings` changes (bootstrap servers, security protocol, SASL).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from fraudrisk.config import KafkaSettings, Settings


@dataclass(frozen=True)
class TopicRole:
    """One topic of the platform: which setting names it, how it is keyed, what it carries."""

    setting: str
    key: str
    purpose: str


TOPICS: tuple[TopicRole, ...] = (
    TopicRole("transactions_topic", "customer_id", "incoming card transactions"),
    TopicRole("scores_topic", "customer_id", "scores, decisions and reason codes"),
    TopicRole("alerts_topic", "customer_id", "prioritised alerts for analysts"),
    TopicRole(
        "labels_topic", "customer_id", "delayed fraud labels (chargebacks, analyst verdicts)"
    ),
    TopicRole("dlq_topic", "customer_id", "transactions that failed validation or scoring"),
)
"""The platform's topics. All are keyed by customer so one customer's events stay in order."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: name, partitions and replication factor."""

    name: str
    partitions: int
    replication_factor: int


def _kafka(settings: Settings | KafkaSettings) -> KafkaSettings:
    return settings.kafka if isinstance(settings, Settings) else settings


def topic_specs(settings: Settings | KafkaSettings) -> list[TopicSpec]:
    """The platform's topics with partitions and replication factor from the settings."""
    kafka = _kafka(settings)
    return [
        TopicSpec(str(getattr(kafka, role.setting)), kafka.partitions, kafka.replication_factor)
        for role in TOPICS
    ]


def client_config(settings: Settings | KafkaSettings) -> dict[str, Any]:
    """The librdkafka settings shared by every client: bootstrap servers, security, SASL."""
    kafka = _kafka(settings)
    config: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "security.protocol": kafka.security_protocol,
    }
    if kafka.security_protocol.startswith("SASL"):
        if kafka.sasl_mechanism:
            config["sasl.mechanism"] = kafka.sasl_mechanism
        if kafka.sasl_username:
            config["sasl.username"] = kafka.sasl_username
            config["sasl.password"] = kafka.sasl_password.get_secret_value()
    return config


def make_admin(settings: Settings | KafkaSettings) -> AdminClient:
    """An admin client for the configured cluster."""
    return AdminClient(client_config(settings))


def make_producer(settings: Settings | KafkaSettings, **overrides: Any) -> Producer:
    """An idempotent producer (``acks=all``): no duplicates or reordering on retries.

    Args:
        settings: Platform or Kafka settings.
        **overrides: Extra librdkafka settings, e.g. ``{"linger.ms": 20}``.
    """
    config = client_config(settings) | {"enable.idempotence": True, "acks": "all"}
    return Producer(config | overrides)


def make_consumer(settings: Settings | KafkaSettings, group_id: str, **overrides: Any) -> Consumer:
    """A consumer in ``group_id`` that commits offsets only when told (after the sink commits).

    Args:
        settings: Platform or Kafka settings.
        group_id: The consumer group.
        **overrides: Extra librdkafka settings.
    """
    config = client_config(settings) | {
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    return Consumer(config | overrides)


def produce_waiting(
    producer: Producer,
    topic: str,
    key: bytes | str | None,
    value: bytes,
    headers: list[tuple[str, str | bytes | None]] | None = None,
) -> None:
    """Produce one message, waiting for room while the client's local queue is full.

    ``produce`` raises ``BufferError`` instead of blocking when a large burst fills the queue;
    serving deliveries (``poll``) drains it, after which the message is accepted.
    """
    while True:
        try:
            producer.produce(topic, key=key, value=value, headers=headers)
            return
        except BufferError:
            producer.poll(0.05)


def ensure_topics(settings: Settings | KafkaSettings, timeout: float = 30.0) -> list[str]:
    """Create the platform's topics that do not exist yet, and wait until all have leaders.

    Idempotent: existing topics are left as they are.

    Args:
        settings: Platform or Kafka settings (partitions and replication factor).
        timeout: Seconds to wait for the creation and for leaders.

    Returns:
        The names of all the platform's topics, in :data:`TOPICS` order.

    Raises:
        KafkaException: A topic could not be created, or has no leader in time.
    """
    admin = make_admin(settings)
    specs = topic_specs(settings)
    existing = admin.list_topics(timeout=timeout).topics
    new = [
        NewTopic(spec.name, spec.partitions, spec.replication_factor)
        for spec in specs
        if spec.name not in existing
    ]
    if new:
        for future in admin.create_topics(new, operation_timeout=timeout).values():
            try:
                future.result(timeout)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    _wait_for_leaders(admin, [spec.name for spec in specs], timeout)
    return [spec.name for spec in specs]


def topic_partitions(settings: Settings | KafkaSettings, timeout: float = 10.0) -> dict[str, int]:
    """Every topic of the cluster (internal ones excluded) with its partition count."""
    topics = make_admin(settings).list_topics(timeout=timeout).topics
    return {
        name: len(meta.partitions)
        for name, meta in sorted(topics.items())
        if not name.startswith("__")
    }


def _wait_for_leaders(admin: AdminClient, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        ready = [
            name
            for name in names
            if name in topics
            and topics[name].error is None
            and all(p.leader >= 0 for p in topics[name].partitions.values())
        ]
        if len(ready) == len(names):
            return
        if time.monotonic() > deadline:
            missing = sorted(set(names) - set(ready))
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"no leader yet: {missing}"))
        time.sleep(0.2)


def backlog(consumer: Consumer, timeout: float = 5.0) -> int | None:
    """Messages still to read on the consumer's assigned partitions, or None if unknown now.

    A partition not read yet counts from its committed offset, or from the log start when the
    group has none (``auto.offset.reset=earliest``). None when the broker cannot answer (e.g.
    while it restarts): a caller deciding whether it is done must then assume it is not.

    Args:
        consumer: A subscribed consumer.
        timeout: Seconds to wait for each partition's high watermark.
    """
    try:
        positions = consumer.position(consumer.assignment())
        unread = [p for p in positions if p.offset < 0]
        answered = consumer.committed(unread, timeout=timeout) if unread else []
        committed = {(p.topic, p.partition): p.offset for p in answered}
        remaining = 0
        for partition in positions:
            low, high = consumer.get_watermark_offsets(partition, timeout=timeout, cached=False)
            offset = partition.offset
            if offset < 0:
                offset = committed.get((partition.topic, partition.partition), -1)
            remaining += max(high - (offset if offset >= 0 else low), 0)
    except KafkaException:
        return None
    return remaining
