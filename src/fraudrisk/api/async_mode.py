"""Async mode: transactions produced to Kafka, answered only once the broker acknowledged them.

One message per transaction on the transactions topic, keyed by customer id, valued by the JSON
the stream scorer consumes (the lake's columns; ``tx_datetime`` ISO 8601, naive UTC). The
producer is idempotent with ``acks=all``; :meth:`TransactionSink.send` waits for every delivery
report and raises :class:`DeliveryError` if one is missing or failed, so a client never gets a
202 for a transaction Kafka does not hold. A retried request may produce a transaction twice:
the stream scorer's sinks are idempotent by transaction id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Any, Protocol

from fraudrisk.schemas import OPTIONAL_COLUMNS, Transaction

log = logging.getLogger(__name__)
#: Message fields: what the stream scorer reads (tx_time_* are derived by it).
MESSAGE_FIELDS = (
    "transaction_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
    "tx_amount",
    *OPTIONAL_COLUMNS,
)


class Producer(Protocol):
    """The part of :class:`confluent_kafka.Producer` the sink uses."""

    def produce(
        self,
        topic: str,
        value: str | bytes | None = ...,
        key: str | bytes | None = ...,
        partition: int = ...,
        callback: Any = ...,
        on_delivery: Any = ...,
        timestamp: int = ...,
        headers: Any = ...,
    ) -> None:
        """Queue a message; ``on_delivery(error, message)`` is called from :meth:`poll`."""

    def poll(self, timeout: float) -> int:
        """Serve delivery callbacks."""

    def flush(self, timeout: float) -> int:
        """Wait for queued messages; returns how many are still queued."""

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        """Cluster metadata (raises when the cluster cannot be reached)."""


class DeliveryError(Exception):
    """Kafka did not acknowledge every transaction of a request (HTTP 503)."""


def message_value(transaction: Transaction) -> bytes:
    """The JSON value of a transaction's message (absent optional fields left out)."""
    row = transaction.model_dump(include=set(MESSAGE_FIELDS), exclude_none=True)
    row["tx_datetime"] = transaction.tx_datetime.isoformat()
    return json.dumps(row, separators=(",", ":")).encode()


class TransactionSink:
    """Produces transactions and waits for their delivery reports."""

    def __init__(self, producer: Producer, topic: str, timeout_s: float) -> None:
        """Bind a producer to the transactions topic; ``timeout_s`` bounds each wait."""
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._reachable: tuple[float, bool] = (0.0, False)

    def start(self) -> None:
        """Serve delivery reports in a background thread (started on first use too)."""
        with self._start_lock:
            if self._poller is None:
                self._stop.clear()
                self._poller = threading.Thread(
                    target=self._poll, name="api-kafka-poll", daemon=True
                )
                self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (bounded), then stop the poller."""
        with contextlib.suppress(Exception):
            self.producer.flush(timeout_s)
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout_s)
            self._poller = None

    async def send(self, transactions: Sequence[Transaction]) -> None:
        """Produce every transaction and wait until Kafka acknowledged all of them.

        Raises:
            DeliveryError: If any was refused locally, failed or was not acknowledged in time.
        """
        self.start()
        loop = asyncio.get_running_loop()
        outcomes: list[asyncio.Future[str | None]] = []
        for transaction in transactions:
            outcome: asyncio.Future[str | None] = loop.create_future()
            outcomes.append(outcome)
            try:
                self.producer.produce(
                    self.topic,
                    value=message_value(transaction),
                    key=str(transaction.customer_id).encode(),
                    on_delivery=partial(_report, loop, outcome),
                )
            except Exception as error:  # BufferError (queue full), KafkaException
                outcome.set_result(f"not queued: {type(error).__name__}")
        done, pending = await asyncio.wait(outcomes, timeout=self.timeout_s + 1.0)
        failures = [f.result() for f in done if f.result() is not None]
        if pending or failures:
            why = failures[0] if failures else "no acknowledgement in time"
            log.error(
                "async mode: %d of %d transactions not acknowledged by Kafka (%s)",
                len(pending) + len(failures),
                len(outcomes),
                why,
            )
            raise DeliveryError(
                f"{len(pending) + len(failures)} of {len(outcomes)} transactions were not "
                f"acknowledged by Kafka ({why}); retry the request"
            )

    def reachable(self, max_age_s: float = 5.0) -> bool:
        """Whether the cluster answered a metadata request (cached ``max_age_s``)."""
        checked, ok = self._reachable
        if time.monotonic() - checked < max_age_s:
            return ok
        try:
            self.producer.list_topics(self.topic, timeout=2.0)
            ok = True
        except Exception:  # any client error = not reachable
            ok = False
        self._reachable = (time.monotonic(), ok)
        return ok


def _report(
    loop: asyncio.AbstractEventLoop, outcome: asyncio.Future[str | None], error: Any, _msg: Any
) -> None:
    """Delivery callback (poller thread): hand the outcome to the event loop."""
    result = None if error is None else str(error)
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(_settle, outcome, result)


def _settle(outcome: asyncio.Future[str | None], result: str | None) -> None:
    if not outcome.done():
        outcome.set_result(result)
