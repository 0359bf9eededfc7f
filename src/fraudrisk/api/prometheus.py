"""Prometheus metrics of the Transaction API (``GET /metrics``), one registry per app.

Requests by route template, method, status and client; latency by route; rejections by reason
(``validation``, ``too_large``, ``unauthenticated``, ``forbidden``, ``rate_limited``,
``unavailable``, ``bad_request``); transactions by mode; WebSocket subscribers, events and
drops; the sync-mode alert-store writer (:class:`StoreMetrics`: records queued, written,
spooled, rejected, lost; write errors; queue depth and spool backlog). The scorer's own
per-variant metrics are registered in the same registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
#: Route label of a request no route matched (keeps label values bounded).
UNMATCHED = "unmatched"


@dataclass(frozen=True)
class ApiMetrics:
    """The API's metric families in one registry."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    rejected: Counter
    rate_limited: Counter
    transactions: Counter
    ws_subscribers: Gauge
    ws_events: Counter
    ws_dropped: Counter
    store: StoreMetrics

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> ApiMetrics:
        """The families, in a new registry unless one is given."""
        registry = registry or CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "fraudrisk_api_requests",
                "HTTP requests.",
                ("route", "method", "status", "client"),
                registry=registry,
            ),
            latency=Histogram(
                "fraudrisk_api_request_latency_seconds",
                "HTTP request latency.",
                ("route", "method"),
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            rejected=Counter(
                "fraudrisk_api_rejected",
                "Requests refused, by reason.",
                ("route", "reason"),
                registry=registry,
            ),
            rate_limited=Counter(
                "fraudrisk_api_rate_limited",
                "Requests answered 429.",
                ("client",),
                registry=registry,
            ),
            transactions=Counter(
                "fraudrisk_api_transactions",
                "Transactions accepted, by mode.",
                ("mode",),
                registry=registry,
            ),
            ws_subscribers=Gauge(
                "fraudrisk_api_ws_subscribers",
                "Connected WebSocket subscribers.",
                registry=registry,
            ),
            ws_events=Counter(
                "fraudrisk_api_ws_events",
                "Events published to subscribers.",
                ("type", "source"),
                registry=registry,
            ),
            ws_dropped=Counter(
                "fraudrisk_api_ws_dropped",
                "WebSocket subscribers dropped.",
                ("reason",),
                registry=registry,
            ),
            store=StoreMetrics.create(registry),
        )


@dataclass(frozen=True)
class StoreMetrics:
    """The sync-mode alert-store writer (:mod:`fraudrisk.api.store_sink`), counted in records.

    Every record queued ends up ``written`` (directly or by a spool replay), ``spooled`` (then
    written by a replay), ``rejected`` (refused by the database, kept under the spool's
    ``rejected/`` folder) or, only if the spool itself cannot be written, ``lost`` (logged).
    """

    queued: Counter
    written: Counter
    spooled: Counter
    rejected: Counter
    lost: Counter
    write_errors: Counter
    write_latency: Histogram
    queue_depth: Gauge
    spool_pending: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> StoreMetrics:
        """The families, in ``registry``."""
        return cls(
            queued=Counter(
                "fraudrisk_api_store_queued",
                "Sync-mode records handed to the alert-store writer.",
                registry=registry,
            ),
            written=Counter(
                "fraudrisk_api_store_written",
                "Records the alert store took (new or already stored), by path.",
                ("path",),
                registry=registry,
            ),
            spooled=Counter(
                "fraudrisk_api_store_spooled",
                "Records written to the spool instead of the store, by reason.",
                ("reason",),
                registry=registry,
            ),
            rejected=Counter(
                "fraudrisk_api_store_rejected",
                "Records the database refused (kept in the spool's rejected folder).",
                registry=registry,
            ),
            lost=Counter(
                "fraudrisk_api_store_lost",
                "Records neither stored nor spooled (the spool failed too).",
                registry=registry,
            ),
            write_errors=Counter(
                "fraudrisk_api_store_write_errors",
                "Failed alert-store writes: unavailable (retried) or rejected.",
                ("kind",),
                registry=registry,
            ),
            write_latency=Histogram(
                "fraudrisk_api_store_write_seconds",
                "Duration of one alert-store write.",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            queue_depth=Gauge(
                "fraudrisk_api_store_queue_depth",
                "Records waiting for the writer.",
                registry=registry,
            ),
            spool_pending=Gauge(
                "fraudrisk_api_store_spool_pending",
                "Records in the spool waiting for a replay.",
                registry=registry,
            ),
        )
