"""Prometheus metrics of the stream scorer: throughput, rejects, alerts, batch time, lag."""

from __future__ import annotations

import json
import logging

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger(__name__)
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class StreamMetrics:
    """The stream scorer's metric families in one registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        """Create the families in ``registry``."""
        self.consumed = Counter(
            "fraudrisk_stream_messages", "Messages consumed.", registry=registry
        )
        self.rejected = Counter(
            "fraudrisk_stream_rejected", "Messages sent to the DLQ.", registry=registry
        )
        self.alerts = Counter("fraudrisk_stream_alerts", "New alerts written.", registry=registry)
        self.batch_seconds = Histogram(
            "fraudrisk_stream_batch_seconds",
            "Time to score, sink and commit a batch.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "fraudrisk_stream_batch_retries",
            "Batches replayed after an aborted Kafka transaction.",
            registry=registry,
        )
        self.lag = Gauge(
            "fraudrisk_stream_consumer_lag",
            "Messages behind the log end.",
            ("topic", "partition"),
            registry=registry,
        )

    def observe_batch(self, consumed: int, rejected: int, alerts: int, seconds: float) -> None:
        """Record one processed batch."""
        self.consumed.inc(consumed)
        self.rejected.inc(rejected)
        self.alerts.inc(alerts)
        self.batch_seconds.observe(seconds)

    def on_kafka_stats(self, stats: str) -> None:
        """Statistics callback of librdkafka: the consumer lag of each assigned partition."""
        try:
            topics = json.loads(stats).get("topics", {})
        except ValueError:
            log.warning("unreadable Kafka statistics")
            return
        for topic, data in topics.items():
            for partition, values in data.get("partitions", {}).items():
                lag = values.get("consumer_lag", -1)
                if partition != "-1" and lag is not None and lag >= 0:
                    self.lag.labels(topic, partition).set(lag)
