"""Sync mode's alert-store writer: scored requests → a queue → batched upserts on one thread.

The request path only hands the scored batch over (:meth:`ScoreStoreWriter.submit`: an append
to an in-memory queue; no database I/O, never an exception). One writer thread takes what
waits — up to ``batch_size`` records, waiting at most ``flush_interval_s`` after the oldest
arrived — builds the store's columns as every job does
(:func:`~fraudrisk.scoring.store_columns.store_columns`) and upserts them with
:meth:`~fraudrisk.alerts.store.AlertStore.write_columns` (idempotent by transaction id), where
the case ingester finds the alerts.

Nothing is dropped:

* the store is down (cannot connect, connection lost, locked): the batch goes to the spool
  (:class:`~fraudrisk.api.store_spool.ScoreSpool`), and so does every batch after it until a
  replay — tried every ``retry_s`` — has written the spool back, oldest first;
* the queue is full (``queue_size`` records waiting): the request spools its batch itself;
* the database refuses records (a data error, not an outage): the batch is split until the
  refused records are found; they are kept in the spool's ``rejected/`` folder, the rest stored;
* shutdown (:meth:`ScoreStoreWriter.close`, from the lifespan): what waits is written or
  spooled; a write still running after ``close_timeout_s`` has its batch spooled as well (a
  replay of records already stored changes nothing);
* only if the spool cannot be written either are records lost: counted and logged.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import sqlalchemy as sa

from fraudrisk.alerts.records import ColumnsWritten, ScoreColumns
from fraudrisk.alerts.store import AlertStore
from fraudrisk.api.prometheus import StoreMetrics
from fraudrisk.api.store_spool import ScoreSpool, concat, split
from fraudrisk.config import ApiSettings, Settings
from fraudrisk.scoring.scorer import RowScores
from fraudrisk.scoring.store_columns import store_columns
from fraudrisk.scoring.vectors import TransactionBatch

log = logging.getLogger(__name__)
StoreState = Literal["ok", "spooling"]
#: Seconds to wait for a PostgreSQL connection (a refused one fails at once).
CONNECT_TIMEOUT_S = 5
#: Errors by which the database refuses the records themselves (retrying would not help).
REFUSED = (sa.exc.IntegrityError, sa.exc.DataError)


class ColumnsStore(Protocol):
    """What the writer needs of the alert store."""

    def write_columns(self, batch: ScoreColumns) -> ColumnsWritten:
        """Upsert a batch, idempotently by transaction id."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class WriterOptions:
    """Batching, bounds and retries of the writer."""

    batch_size: int = 1000
    flush_interval_s: float = 0.1
    queue_size: int = 100_000
    retry_s: float = 5.0
    close_timeout_s: float = 10.0

    @classmethod
    def of(cls, api: ApiSettings) -> WriterOptions:
        """The options of the API settings."""
        return cls(
            api.store_batch_size,
            api.store_flush_interval_s,
            api.store_queue_size,
            api.store_retry_s,
        )


@dataclass(frozen=True)
class PendingScores:
    """A scored request waiting for the writer."""

    batch: TransactionBatch
    scores: RowScores
    tx_datetime: Sequence[dt.datetime]
    queued_at: float = field(default_factory=time.monotonic)

    def __len__(self) -> int:
        return len(self.batch)

    def columns(self) -> ScoreColumns:
        """The store columns of the request (times as naive UTC, as the store keeps them)."""
        return store_columns(self.batch, self.scores, [naive_utc(t) for t in self.tx_datetime])


def naive_utc(stamp: dt.datetime) -> dt.datetime:
    """A time as naive UTC (a naive time already is)."""
    if stamp.tzinfo is None:
        return stamp
    return stamp.astimezone(dt.UTC).replace(tzinfo=None)


def store_opener(url: str) -> Callable[[], AlertStore]:
    """Opens the alert store at ``url``, checking pooled connections (the database restarts)."""
    options: dict[str, Any] = {"pool_pre_ping": True}
    if sa.engine.make_url(url).get_backend_name() == "postgresql":
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    return functools.partial(AlertStore, url, **options)


def spool_dir(settings: Settings) -> Path:
    """The spool folder: ``api.store_spool_dir``, or ``HOME/api-spool``."""
    configured = settings.api.store_spool_dir
    return (Path(configured) if configured else settings.home / "api-spool").resolve()


class ScoreStoreWriter:
    """Writes sync-mode scores to the alert store from a queue, on one background thread."""

    def __init__(
        self,
        open_store: Callable[[], ColumnsStore],
        spool: ScoreSpool,
        metrics: StoreMetrics,
        options: WriterOptions | None = None,
    ) -> None:
        """Wire the parts; nothing is opened before the first write."""
        self.spool = spool
        self.metrics = metrics
        self.options = options or WriterOptions()
        self._open_store = open_store
        self._store: ColumnsStore | None = None
        self._cond = threading.Condition()
        self._items: deque[PendingScores] = deque()
        self._queued = 0
        self._stopping = self._closed = self._down = False
        self._retry_at = 0.0
        self._in_flight: ScoreColumns | None = None
        self._thread: threading.Thread | None = None
        metrics.queue_depth.set_function(lambda: self._queued)
        metrics.spool_pending.set_function(lambda: self.spool.pending)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        metrics: StoreMetrics,
        open_store: Callable[[], ColumnsStore] | None = None,
    ) -> ScoreStoreWriter:
        """The writer of the API settings, spooling under :func:`spool_dir`.

        Args:
            settings: The platform settings.
            metrics: Where it counts.
            open_store: Opens the store (default: the settings' database).
        """
        spool = ScoreSpool(spool_dir(settings), on_reject=metrics.rejected.inc)
        opener = open_store or store_opener(settings.db_url)
        return cls(opener, spool, metrics, WriterOptions.of(settings.api))

    @property
    def state(self) -> StoreState:
        """``spooling`` while the store is down or the spool waits for a replay."""
        return "spooling" if self._down or self.spool.pending else "ok"

    # ----------------------------------------------------------------------------- request path
    def submit(
        self, batch: TransactionBatch, scores: RowScores, tx_datetime: Sequence[dt.datetime]
    ) -> None:
        """Hand a scored request to the writer; never waits for the store, never raises.

        Over ``queue_size`` records waiting (or after :meth:`close`), the batch is spooled here.
        """
        try:
            pending = PendingScores(batch, scores, tx_datetime)
            self.metrics.queued.inc(len(pending))
            with self._cond:
                accepted = (
                    not self._closed and self._queued + len(pending) <= self.options.queue_size
                )
                if accepted:
                    self._items.append(pending)
                    self._queued += len(pending)
                    if len(self._items) == 1 or self._queued >= self.options.batch_size:
                        self._cond.notify()
            if not accepted:
                self._spool(pending.columns(), "shutdown" if self._closed else "queue_full")
        except Exception:  # a request must not fail because of the store
            self.metrics.lost.inc(len(batch))
            log.exception("%d scored records could not be handed to the store writer", len(batch))

    # ----------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Seal segments left by a previous process, then start the writer thread."""
        try:
            waiting = self.spool.recover()
        except OSError as error:
            log.error("the spool %s cannot be read: %s", self.spool.directory, error)
            waiting = 0
        if waiting:
            log.info("%d spooled records wait for the alert store: replaying them", waiting)
        self._thread = threading.Thread(target=self._run, name="api-store-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Write (or spool) everything waiting, then stop; at most ``close_timeout_s``.

        A request still arriving meanwhile has its batch spooled (replayed at the next start).
        """
        with self._cond:
            self._stopping = self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(self.options.close_timeout_s)
        if self._thread is None or self._thread.is_alive():
            self._abandon()
        self.spool.close()

    def _abandon(self) -> None:
        """Spool what the thread did not finish (queued, and the batch it is writing)."""
        with self._cond:
            items, self._queued = list(self._items), 0
            self._items.clear()
        in_flight = self._in_flight
        parts = [item.columns() for item in items] + ([in_flight] if in_flight else [])
        if in_flight:
            log.error("alert-store write still running at shutdown: its batch is spooled too")
        if parts:
            self._spool(concat(parts), "shutdown", durable=True)

    # ----------------------------------------------------------------------------- the thread
    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken:
                self._handle(taken)
            elif self._stopping:
                break
            elif self.spool.pending and self._may_try():
                self._replay()
        if self.spool.pending and self._may_try():  # the last chance before the next start
            self._replay()
        self.spool.close()
        if self._store is not None:
            self._store.close()

    def _take(self) -> list[PendingScores]:
        """What waits: up to ``batch_size`` records, once full or the oldest is old enough."""
        options = self.options
        with self._cond:
            if not self._items and not self._stopping:
                self._cond.wait(options.retry_s)  # then a due replay is tried
            if not self._items:
                return []
            deadline = self._items[0].queued_at + options.flush_interval_s
            while self._queued < options.batch_size and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            taken: list[PendingScores] = []
            count = 0
            while self._items and (not taken or count + len(self._items[0]) <= options.batch_size):
                taken.append(self._items.popleft())
                count += len(taken[-1])
            self._queued -= count
            return taken

    def _handle(self, taken: list[PendingScores]) -> None:
        """Store a batch; spooled instead while the store is down or the spool not replayed."""
        columns = concat([item.columns() for item in taken])
        self._in_flight = columns
        try:
            ready = self._may_try() and (not self.spool.pending or self._replay())
            if not (ready and self._write(columns)):
                self._spool(columns, "store_down", durable=True)
        except Exception:  # a bug must not stop the thread: the batch waits in the spool
            log.exception("unexpected error writing %d records: spooling them", len(columns))
            self._spool(columns, "store_down", durable=True)
        finally:
            self._in_flight = None

    def _write(self, columns: ScoreColumns, path: str = "direct") -> bool:
        """Whether the store took the batch (a refused record counts as handled)."""
        try:
            self._write_or_reject(columns, path)
        except Exception as error:  # an outage: refused or lost connection, locked, ...
            self._mark_down(error)
            return False
        self._mark_up()
        return True

    def _write_or_reject(self, columns: ScoreColumns, path: str) -> None:
        """Upsert; on a data error, halve the batch until the refused records are alone.

        Raises:
            Exception: Any other error of the store (an outage).
        """
        if self._store is None:
            self._store = self._open_store()
        began = time.perf_counter()
        try:
            self._store.write_columns(columns)
        except REFUSED as error:
            self.metrics.write_errors.labels("rejected").inc()
            if len(columns) == 1:
                self.spool.reject(columns, f"{type(error).__name__}: {error}".splitlines()[0])
                return
            for half in split(columns, (len(columns) + 1) // 2):
                self._write_or_reject(half, path)
            return
        self.metrics.write_latency.observe(time.perf_counter() - began)
        self.metrics.written.labels(path).inc(len(columns))

    def _replay(self) -> bool:
        """Write the spool back, oldest first; whether it went through (the store is up)."""
        try:
            replayed = self.spool.replay(
                lambda part: self._write_or_reject(part, "replay"), self.options.batch_size
            )
        except Exception as error:  # the store is (still) down: the rest waits
            self._mark_down(error)
            return False
        self._mark_up()
        if replayed:
            log.info("replayed %d spooled records into the alert store", replayed)
        return True

    # ----------------------------------------------------------------------------- state
    def _may_try(self) -> bool:
        return not self._down or time.monotonic() >= self._retry_at

    def _mark_down(self, error: BaseException) -> None:
        self.metrics.write_errors.labels("unavailable").inc()
        self._retry_at = time.monotonic() + self.options.retry_s
        if not self._down:
            reason = f"{type(error).__name__}: {error}".splitlines()[0]
            log.warning(
                "alert store unavailable (%s): spooling to %s, retrying every %g s",
                reason,
                self.spool.directory,
                self.options.retry_s,
            )
        self._down = True

    def _mark_up(self) -> None:
        if self._down:
            log.info("alert store reachable again")
        self._down = False

    def _spool(self, columns: ScoreColumns, reason: str, *, durable: bool = False) -> None:
        try:
            self.spool.append(columns, durable=durable)
        except OSError as error:
            self.metrics.lost.inc(len(columns))
            log.error(
                "%d scored records LOST: neither the alert store nor the spool %s took them: %s",
                len(columns),
                self.spool.directory,
                error,
            )
            return
        self.metrics.spooled.labels(reason).inc(len(columns))
