"""Batch scoring (``fraudrisk score batch``): a lake partition range or files, to the alert store.

The job reads its source unit by unit (a day, a file), in chunks of at most ``chunk_size``
rows that never cross a day, in event-time order; each chunk is scored by the served variants
with the entity state in memory (read through from the online store, or rebuilt from the lake
days before the start by the same chronological replay, :meth:`StateCache.apply`), then
written to the alert store with its idempotent upsert. Rejected file rows go to the quarantine
with their reasons, and the stored records optionally to a Parquet output. Every output is
keyed (store: transaction id; files: deterministic names), so running a job again changes
nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudrisk.alerts.store import ScoreRecord
from fraudrisk.data.readers import IngestError
from fraudrisk.io.lake import Lake
from fraudrisk.io.storage import Storage
from fraudrisk.jobs.batch_sources import REJECTED_SUFFIX, Source, Unit, history
from fraudrisk.jobs.decode import Decoded
from fraudrisk.jobs.runtime import Runtime, records_table, score_rows
from fraudrisk.jobs.state_cache import StateCache


@dataclass
class BatchOptions:
    """Where a batch job writes, how it chunks, and which state it starts from."""

    chunk_size: int = 5000
    out: Storage | None = None
    """Parquet output of the stored records (``<unit>/part-<chunk>.parquet``), or None."""
    quarantine: Storage | None = None
    """Where rejected file rows go (``<file>.rejected.parquet``)."""
    replay_labels: bool = False
    """Merge the rows' fraud labels into the terminal state after each chunk (a historical
    replay: the features only read labels older than the label delay, as offline)."""


@dataclass
class BatchTotals:
    """What a batch job did."""

    units: int = 0
    rows: int = 0
    rejected: int = 0
    scored: int = 0
    new_scores: int = 0
    new_alerts: int = 0
    alerts: int = 0
    chunks: int = 0
    history_rows: int = 0
    refused: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        """Rows per second over the run."""
        return self.rows / max(self.seconds, 1e-9)


def rebuild_state(cache: StateCache, lake: Lake, before: dt.date | None, chunk: int) -> int:
    """Replay the lake days before ``before`` into ``cache``: transactions, then labels.

    Returns:
        How many transactions were replayed.
    """
    replayed = 0
    for day in history(lake, before):
        for piece in chunks(day, chunk):
            cache.apply(Decoded(piece, [], []).batch())
            cache.apply_labels(labels(piece))
            replayed += piece.num_rows
    return replayed


def run_batch(
    runtime: Runtime,
    source: Source,
    options: BatchOptions,
    on_unit: Callable[[BatchTotals], None] | None = None,
) -> BatchTotals:
    """Score every unit of ``source`` into the store (and the outputs of ``options``).

    A file that cannot be read at all is listed in ``refused`` and the job goes on.
    """
    totals = BatchTotals()
    for unit in source.read():
        if isinstance(unit, IngestError):
            totals.refused.append(str(unit))
        else:
            _score_unit(runtime, unit, options, totals)
        totals.units += 1
        totals.seconds = time.monotonic() - totals.started
        if on_unit is not None:
            on_unit(totals)
    totals.seconds = time.monotonic() - totals.started
    return totals


def _score_unit(runtime: Runtime, unit: Unit, options: BatchOptions, totals: BatchTotals) -> None:
    if unit.rejected is not None:
        totals.rejected += unit.rejected.num_rows
        totals.rows += unit.rejected.num_rows
        if options.quarantine is not None:
            totals.quarantined.append(_quarantine(options.quarantine, unit))
    for number, piece in enumerate(chunks(unit.valid, options.chunk_size)):
        records = score_rows(runtime.variants, runtime.cache, piece)
        if options.replay_labels:
            runtime.cache.apply_labels(labels(piece))
        written = runtime.store.write(records)
        if options.out is not None:
            _write_scores(options.out, f"{unit.name}/part-{number:05d}.parquet", written.stored)
        totals.rows += piece.num_rows
        totals.scored += len(records)
        totals.new_scores += written.scores
        totals.new_alerts += written.alerts
        totals.alerts += sum(record.is_alert for record in written.stored)
        totals.chunks += 1


def chunks(rows: pa.Table, size: int) -> Iterator[pa.Table]:
    """Slices of at most ``size`` rows of a time-ordered table, never crossing a day."""
    if rows.num_rows == 0:
        return
    days = pc.value_counts(pc.cast(rows["tx_datetime"], pa.date32())).to_pylist()
    offset = 0
    for item in sorted(days, key=lambda entry: entry["values"]):
        count = int(item["counts"])
        for start in range(0, count, size):
            yield rows.slice(offset + start, min(size, count - start))
        offset += count


def labels(rows: pa.Table) -> list[tuple[int, int, int, int]]:
    """``(terminal_id, seconds, transaction_id, label)`` of the rows whose label is known."""
    known = rows.filter(pc.is_valid(rows["tx_fraud"]))
    seconds = known["tx_datetime"].to_numpy().astype("datetime64[s]").astype("int64").tolist()
    return list(
        zip(
            known["terminal_id"].to_pylist(),
            seconds,
            known["transaction_id"].to_pylist(),
            known["tx_fraud"].to_pylist(),
            strict=True,
        )
    )


def _quarantine(storage: Storage, unit: Unit) -> str:
    """Write a file's rejected rows (with reasons) under a name fixed by the file's name."""
    assert unit.rejected is not None
    buffer = pa.BufferOutputStream()
    pq.write_table(unit.rejected, buffer, compression="zstd")
    relative = f"{unit.name}{REJECTED_SUFFIX}"
    storage.write_bytes_atomic(relative, buffer.getvalue())
    return f"{storage.uri.rstrip('/')}/{relative}"


def _write_scores(storage: Storage, relative: str, records: tuple[ScoreRecord, ...]) -> None:
    buffer = pa.BufferOutputStream()
    pq.write_table(records_table(records), buffer, compression="zstd")
    storage.write_bytes_atomic(relative, buffer.getvalue())
