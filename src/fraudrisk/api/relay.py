"""The stream scorer's results, relayed from Kafka to WebSocket subscribers.

A background thread consumes the scores and alerts topics (``read_committed``: only what the
scorer's Kafka transactions committed) in a consumer group of its own per API process, so every
replica sees every message, from the end of the topics at start. Each message becomes a
``score`` or ``alert`` event (source ``stream``) handed to the hub. Nothing is committed: a
relay is a live view, not a processor.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any, Literal

from fraudrisk.config import Settings

log = logging.getLogger(__name__)
RelayState = Literal["starting", "assigned", "stopped"]


class KafkaRelay:
    """Consumes scores and alerts and publishes them as stream events."""

    def __init__(self, settings: Settings, publish: Callable[[dict[str, Any]], None]) -> None:
        """Relay the topics of ``settings`` to ``publish`` (called from the relay thread)."""
        self.settings = settings
        self.publish = publish
        self.state: RelayState = "stopped"
        self.group_id = f"fraudrisk-api-relay-{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        kafka = settings.kafka
        self._types = {kafka.scores_topic: "score", kafka.alerts_topic: "alert"}

    def start(self) -> None:
        """Start consuming in a daemon thread."""
        self.state = "starting"
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="api-kafka-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop consuming and close the consumer (bounded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.state = "stopped"

    def _run(self) -> None:
        from fraudrisk.io.kafka import make_consumer  # deferred: see app._producer

        consumer = make_consumer(
            self.settings,
            self.group_id,
            **{
                "isolation.level": "read_committed",
                "auto.offset.reset": "latest",
                "enable.partition.eof": False,
            },
        )
        consumer.subscribe(list(self._types), on_assign=self._on_assign)
        try:
            while not self._stop.is_set():
                message = consumer.poll(0.2)
                if message is None:
                    continue
                if message.error() is not None:
                    log.warning("relay: %s", message.error())
                    continue
                self._relay(str(message.topic()), message.value())
        except Exception:  # the relay is best effort: the API keeps serving
            log.exception("relay stopped by an error")
        finally:
            consumer.close()
            self.state = "stopped"

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        """Start each partition at its current end, then say so: nothing after it is missed.

        (``auto.offset.reset=latest`` resolves the end lazily, so a message produced right
        after the assignment could be skipped.) For a ``read_committed`` consumer the end is
        the last stable offset.
        """
        try:
            for partition in partitions:
                _low, high = consumer.get_watermark_offsets(partition, timeout=10, cached=False)
                partition.offset = high
        except Exception as error:  # keep the default reset (latest)
            log.warning("relay: end offsets unknown (%s); starting at latest", error)
        consumer.assign(partitions)
        self.state = "assigned"
        log.info("relay assigned %d partitions of %s", len(partitions), sorted(self._types))

    def _relay(self, topic: str, value: bytes | None) -> None:
        try:
            data = json.loads(value or b"")
        except ValueError:
            log.warning("relay: a message of %s is not JSON; skipped", topic)
            return
        if not isinstance(data, dict):
            return
        self.publish({"type": self._types.get(topic, "score"), "source": "stream", "data": data})
