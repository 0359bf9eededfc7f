"""The stream benchmark's end-to-end latency: produce time → score visible, at a paced rate.

After a warm-up burst (a long-running scorer has its entities' state in memory), transactions
are produced at a fixed rate, each message's timestamp being its produce time; a
``read_committed`` reader of the scores topic notes when each score becomes visible (it
fetches with ``fetch.wait.max.ms`` = 5, so it notices within ~5 ms); latency = visible time −
produce time, over the transactions produced after the warm-up. A transaction not scored within
the grace period (≥ 10 s after the last send) counts as not scored for the run.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from confluent_kafka import KafkaError

from stream_measure import CpuMeter, Process, produce_all
from stream_setup import console


@dataclass
class Latency:
    """A paced run: latency of every measured transaction (NaN = not scored in time)."""

    who: str
    rate: float
    latency_s: np.ndarray
    achieved_rate: float
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def scored(self) -> np.ndarray:
        """Latencies of the transactions scored within the grace period."""
        return self.latency_s[~np.isnan(self.latency_s)]

    def percentile(self, q: float) -> float:
        """The q-th percentile in ms; infinite when more than (100 − q) % were not scored."""
        lost = np.isnan(self.latency_s).mean() if len(self.latency_s) else 1.0
        if lost > 1 - q / 100:
            return float("inf")
        filled = np.where(np.isnan(self.latency_s), np.inf, self.latency_s)
        return float(np.percentile(filled, q) * 1e3)


class ScoreReader(threading.Thread):
    """Notes when each transaction's score becomes visible (``read_committed``)."""

    def __init__(self, kafka: Any) -> None:
        """Subscribe a fresh group to the scores topic (from the end: it is empty)."""
        from fraudrisk.io.kafka import make_consumer

        super().__init__(name="score-reader", daemon=True)
        self.consumer = make_consumer(
            kafka,
            f"reader-{uuid.uuid4().hex[:8]}",
            **{
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 5,
                "auto.offset.reset": "earliest",
            },
        )
        self.consumer.subscribe([kafka.scores_topic])
        self.seen: dict[int, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        """Read until stopped."""
        while not self.stopping.is_set():
            messages = self.consumer.consume(2000, 0.005)
            now = time.time()
            for message in messages:
                if message.error() is None:
                    self.seen.setdefault(orjson.loads(message.value())["transaction_id"], now)
                elif message.error().code() != KafkaError._PARTITION_EOF:
                    console.print(f"[yellow]score reader: {message.error()}")
        self.consumer.close()


def run_latency(
    who: str,
    process: Process,
    kafka: Any,
    messages: tuple[Sequence[tuple[bytes, bytes]], Sequence[tuple[bytes, bytes]]],
    plan: tuple[float, float, float],
    broker_pid: int,
) -> Latency:
    """Warm the consumer up, then pace transactions at ``rate``; latency of the measured part.

    Args:
        who: Label of the consumer.
        process: The consumer, not started.
        kafka: Its topics.
        messages: ``(warm, paced)``: transactions sent at once first, until all are scored
            (the entity states of a long-running scorer are in memory), then the paced ones
            (at least rate × (warm-up + duration) of them).
        plan: ``(rate, warmup_s, duration_s)``.
        broker_pid: The broker's pid (CPU accounting).
    """
    rate, warmup_s, duration_s = plan
    total, warm = int(rate * (warmup_s + duration_s)), int(rate * warmup_s)
    reader = ScoreReader(kafka)
    reader.start()
    with process:
        produce_all(kafka, messages[0])
        _wait_scored(process, reader, messages[0][-1])
        with CpuMeter({"consumer": process.pid, "broker": broker_pid}) as meter:
            sent, achieved = _paced(kafka, messages[1][:total], rate)
        deadline = time.monotonic() + max(10.0, duration_s)
        ids = list(sent)
        while time.monotonic() < deadline and not all(i in reader.seen for i in ids[warm:]):
            process.check()
            time.sleep(0.2)
    reader.stopping.set()
    reader.join(10)
    latency = np.array(
        [reader.seen[i] - sent[i] if i in reader.seen else np.nan for i in ids[warm:]]
    )
    return Latency(who, rate, latency, achieved, meter.cores)


def _wait_scored(process: Process, reader: ScoreReader, last: tuple[bytes, bytes]) -> None:
    """Wait until the score of ``last`` (the last warm-up transaction) is visible."""
    tx_id = orjson.loads(last[1])["transaction_id"]
    deadline = time.monotonic() + 300
    while tx_id not in reader.seen:
        process.check()
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{process.argv[2:5]} did not score the warm-up in 300 s; see {process.log}"
            )
        time.sleep(0.1)
    time.sleep(1.0)  # the last batches of the warm-up settle


def _paced(
    kafka: Any, messages: Sequence[tuple[bytes, bytes]], rate: float
) -> tuple[dict[int, float], float]:
    """Produce at ``rate``, in 2 ms slices; the produce time of each transaction id."""
    from fraudrisk.io.kafka import make_producer

    producer = make_producer(kafka, **{"linger.ms": 5})
    ids = [orjson.loads(value)["transaction_id"] for _, value in messages]
    sent: dict[int, float] = {}
    began = time.perf_counter()
    wall0 = time.time() - began
    index = 0
    while index < len(messages):
        now = time.perf_counter()
        due = min(len(messages), int((now - began) * rate) + 1)
        for position in range(index, due):
            key, value = messages[position]
            stamp = wall0 + time.perf_counter()
            producer.produce(
                kafka.transactions_topic, key=key, value=value, timestamp=int(stamp * 1000)
            )
            sent[ids[position]] = stamp
        index = max(index, due)
        producer.poll(0)
        time.sleep(0.002)
    producer.flush(30)
    return sent, len(messages) / (time.perf_counter() - began)
