"""Stores and scored batches for the alert-store writer's tests.

The stores wrap a real :class:`~fraudrisk.alerts.store.AlertStore` (SQLite): one records each
write and the thread it ran on, one can be switched down (``OperationalError``, as a lost
connection raises), one blocks its writes until released, one refuses given transactions
(``IntegrityError``, a data error).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from fraudrisk.alerts.records import ColumnsWritten, ScoreColumns
from fraudrisk.alerts.store import AlertStore
from fraudrisk.api.prometheus import StoreMetrics
from fraudrisk.api.store_sink import PendingScores, ScoreStoreWriter, WriterOptions
from fraudrisk.api.store_spool import ScoreSpool
from fraudrisk.scoring.scorer import RowScores
from fraudrisk.scoring.vectors import TransactionBatch

START = dt.datetime(2024, 5, 1, 12, 0, 0)


@dataclass(frozen=True)
class Request:
    """A scored request as the API hands it to the writer."""

    batch: TransactionBatch
    scores: RowScores
    tx_datetime: list[dt.datetime]

    @property
    def ids(self) -> list[int]:
        return [int(tx) for tx in self.batch.transaction_id]

    def columns(self) -> ScoreColumns:
        """The columns the writer stores of it (its own builder)."""
        return PendingScores(self.batch, self.scores, self.tx_datetime).columns()


def scored(ids: Sequence[int], decision: str = "review", risk: float = 0.8) -> Request:
    """A scored request of transactions ``ids`` (customer = id % 7), all with one decision."""
    n = len(ids)
    batch = TransactionBatch(
        transaction_id=np.asarray(ids, dtype=np.int64),
        seconds=np.zeros(n, dtype=np.int64),
        customer_id=np.asarray([i % 7 for i in ids], dtype=np.int64),
        terminal_id=np.asarray([i % 11 for i in ids], dtype=np.int64),
        tx_amount=np.full(n, 120.0),
    )
    scores = RowScores(
        risk_score=np.full(n, risk),
        decision=[decision] * n,
        reason_codes=['[{"feature": "tx_amount", "value": 120.0, "contribution": 0.5}]'] * n,
        model_name=["fraud-risk"] * n,
        model_version=["3"] * n,
        variant=["champion"] * n,
        fallback=[False] * n,
    )
    times = [START + dt.timedelta(seconds=i) for i in ids]
    return Request(batch, scores, times)


def submit(writer: ScoreStoreWriter, request: Request) -> None:
    writer.submit(request.batch, request.scores, request.tx_datetime)


@dataclass
class RecordingStore:
    """A real SQLite store that records each write's size and thread; can be down or slow."""

    store: AlertStore
    sizes: list[int] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)
    down: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    blocking: bool = False
    refused: set[int] = field(default_factory=set)
    entered: threading.Event = field(default_factory=threading.Event)

    def write_columns(self, batch: ScoreColumns) -> ColumnsWritten:
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        if self.blocking:
            assert self.release.wait(30), "the test never released the store"
        if self.down.is_set():
            raise sa.exc.OperationalError("INSERT", None, ConnectionRefusedError("db down"))
        if self.refused & set(batch.transaction_id):
            raise sa.exc.IntegrityError("INSERT", None, ValueError("refused row"))
        self.sizes.append(len(batch))
        return self.store.write_columns(batch)

    def close(self) -> None:
        self.store.close()

    def ids(self, table: str = "scores") -> list[int]:
        return sorted(self.store.transaction_ids(table))


def writer_of(
    open_store: Callable[[], Any],
    spool_dir: Path,
    registry: CollectorRegistry | None = None,
    **options: Any,
) -> ScoreStoreWriter:
    """A writer over ``open_store`` spooling to ``spool_dir`` (fast flushes and retries)."""
    metrics = StoreMetrics.create(registry or CollectorRegistry())
    spool = ScoreSpool(spool_dir, on_reject=metrics.rejected.inc)
    chosen = WriterOptions(**({"flush_interval_s": 0.02, "retry_s": 0.1} | options))
    return ScoreStoreWriter(open_store, spool, metrics, chosen)


def eventually(check: Callable[[], bool], timeout_s: float = 15.0, what: str = "") -> None:
    """Wait until ``check()`` holds, failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.01)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A metric's value (0 when never set)."""
    return registry.get_sample_value(name, labels) or 0.0
