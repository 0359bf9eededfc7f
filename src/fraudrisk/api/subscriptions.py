"""``WS /v1/stream``: scores and alerts pushed to authenticated subscribers.

Protocol (JSON text frames):

1. Authenticate with the upgrade request's ``X-API-Key`` or ``Authorization: Bearer`` header,
   or — for browsers, which cannot set headers — with a first message
   ``{"type": "auth", "api_key": "..."}`` or ``{"type": "auth", "token": "<JWT>"}`` within
   ``FRAUDRISK_API__WS_AUTH_TIMEOUT_S``. Credentials are never accepted in the URL (URLs end up
   in logs). The scope ``scores:read`` is needed.
2. The server answers ``{"type": "subscribed", "client": ..., "events": [...]}`` and then
   pushes :class:`~fraudrisk.api.models.StreamEvent` objects: ``score`` for every decision,
   ``alert`` for those sent to review or declined. ``?events=alert`` subscribes to alerts only.
3. Messages from the client after that are ignored. Close codes: 4400 bad request, 4401 not
   authenticated, 4403 missing scope, 4429 rate limited, 4008 too slow (its queue of
   ``FRAUDRISK_API__WS_QUEUE_SIZE`` events overflowed: it is dropped, never the scorer slowed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from fraudrisk.api.prometheus import ApiMetrics

log = logging.getLogger(__name__)
EVENT_TYPES = ("score", "alert")
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_RATE_LIMITED = 4429
CLOSE_TOO_SLOW = 4008


@dataclass(eq=False)
class Subscriber:
    """One WebSocket client: its bounded queue (``None`` = you are dropped) and filters."""

    client: str
    events: frozenset[str]
    queue: asyncio.Queue[dict[str, Any] | None]
    dropped: bool = field(default=False)


class StreamHub:
    """Fans events out to subscribers without ever waiting for one."""

    def __init__(self, queue_size: int, metrics: ApiMetrics) -> None:
        """Subscribers get queues of ``queue_size`` events."""
        self.queue_size = queue_size
        self.metrics = metrics
        self._subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop :meth:`publish_threadsafe` hands events to."""
        self._loop = loop

    def subscribe(self, client: str, events: frozenset[str]) -> Subscriber:
        """Register a subscriber (event loop thread)."""
        self.bind(asyncio.get_running_loop())
        subscriber = Subscriber(client, events, asyncio.Queue(self.queue_size))
        self._subscribers.add(subscriber)
        self.metrics.ws_subscribers.set(len(self._subscribers))
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a subscriber (idempotent)."""
        self._subscribers.discard(subscriber)
        self.metrics.ws_subscribers.set(len(self._subscribers))

    def publish(self, event: dict[str, Any]) -> None:
        """Queue an event for every interested subscriber (event loop thread; never blocks)."""
        self.metrics.ws_events.labels(event["type"], event["source"]).inc()
        for subscriber in list(self._subscribers):
            if event["type"] not in subscriber.events:
                continue
            try:
                subscriber.queue.put_nowait(event)
            except asyncio.QueueFull:
                self._drop(subscriber)

    def publish_threadsafe(self, event: dict[str, Any]) -> None:
        """:meth:`publish` from another thread (the Kafka relay)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.publish, event)

    def _drop(self, subscriber: Subscriber) -> None:
        log.warning(
            "WebSocket client %s too slow: %d events queued, dropped",
            subscriber.client,
            self.queue_size,
        )
        subscriber.dropped = True
        while not subscriber.queue.empty():
            subscriber.queue.get_nowait()
        subscriber.queue.put_nowait(None)
        self.unsubscribe(subscriber)
        self.metrics.ws_dropped.labels("too_slow").inc()


def score_events(
    rows: list[dict[str, Any]], alert_decisions: frozenset[str]
) -> list[dict[str, Any]]:
    """The events of the API's own decisions: a score per row, an alert per flagged row."""
    events = []
    for row in rows:
        events.append({"type": "score", "source": "api", "data": row})
        if row["decision"] in alert_decisions:
            events.append({"type": "alert", "source": "api", "data": row})
    return events
