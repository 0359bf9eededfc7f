"""Prometheus metrics of the Transaction API (``GET /metrics``), one registry per app.

Requests by route template, method, status and client; latency by route; rejections by reason
(``validation``, ``too_large``, ``unauthenticated``, ``forbidden``, ``rate_limited``,
``unavailable``, ``bad_request``); transactions by mode; WebSocket subscribers, events and
drops. The scorer's own per-variant metrics are registered in the same registry.
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
        )
