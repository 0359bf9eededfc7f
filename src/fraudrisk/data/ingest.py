"""Batch ingestion: a CSV or Parquet file -> validated rows in the lake, rejected rows quarantined.

Problems with the file as a whole (missing, empty, not UTF-8, binary, truncated, corrupt, wrong
columns, a clear card number column) raise :class:`IngestError` before anything is written:
the lake and the quarantine are left untouched. Problems with single rows only reject those
rows; they are written, with their reasons, to one Parquet file in the quarantine, a directory
``quarantine/`` next to the lake directory (not inside it: the lake's dataset scans its whole
root). Everything is staged in memory first, so a failing file never leaves a half ingest.

Transaction ids are unique per lake: a row whose id is already anywhere in the lake is rejected
(the lake's ``transaction_id`` column is read whole, which is cheap with Parquet). Hence one
ingestion per lake at a time. The quarantine file is written before the day files; should a day
write fail, running the file again rejects the rows already written as "already in the lake".
"""

from __future__ import annotations

import datetime as dt
import posixpath
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudrisk.config import LakeSettings
from fraudrisk.data.columns import REJECT_REASON, SOURCE_ROW, BatchError
from fraudrisk.data.readers import IngestError, SourceBatch, first_line, read_source
from fraudrisk.data.validation import count_reason_kinds, validate_batch
from fraudrisk.io.lake import Lake
from fraudrisk.io.storage import Storage, open_storage

__all__ = ["DEFAULT_EPOCH", "QUARANTINE_DIR", "IngestError", "IngestReport", "ingest"]

DEFAULT_EPOCH = dt.date(2018, 4, 1)
QUARANTINE_DIR = "quarantine"


@dataclass(frozen=True)
class IngestReport:
    """What one ingestion did.

    Attributes:
        source: The file ingested.
        rows_read: Data rows in the file (always ``rows_valid + rows_rejected``).
        rows_valid: Rows written to the lake.
        rows_rejected: Rows written to the quarantine.
        rejected_by_reason: Rejected rows per reason kind (the reason's part before ``:``).
        days_written: Day partitions that received rows.
        quarantine_path: The quarantine file, or None when no row was rejected.
        dropped_columns: Unknown columns dropped (with ``allow_unknown_columns``).
    """

    source: str
    rows_read: int
    rows_valid: int
    rows_rejected: int
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    days_written: tuple[dt.date, ...] = ()
    quarantine_path: str | None = None
    dropped_columns: tuple[str, ...] = ()


def ingest(
    source: str,
    lake: Lake,
    *,
    allow_unknown_columns: bool = False,
    quarantine_uri: str | None = None,
    epoch: dt.date = DEFAULT_EPOCH,
    settings: LakeSettings | None = None,
) -> IngestReport:
    """Validate one file and append its valid rows to the lake, quarantining the rest.

    Args:
        source: A ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq`` file (local path or ``s3://``).
        lake: The lake to append to.
        allow_unknown_columns: Drop columns not in the lake schema instead of refusing the file.
        quarantine_uri: Where rejected rows go; default ``quarantine/`` beside the lake directory.
        epoch: Day 0 of ``tx_time_seconds`` if the lake is new (an existing lake keeps its own).
        settings: S3 settings for an ``s3://`` source or quarantine.

    Returns:
        The counts of the ingestion.

    Raises:
        IngestError: For a file-level problem; then nothing was written anywhere.
    """
    name = posixpath.basename(source.rstrip("/"))
    batch = read_source(source, settings)
    lake_epoch = lake.epoch() or epoch
    valid, rejected, dropped = _validate(name, batch, lake, lake_epoch, allow_unknown_columns)
    days = _split_by_day(valid)
    quarantine_path = None
    if rejected.num_rows:
        quarantine = _quarantine_storage(lake, quarantine_uri, settings)
        quarantine_path = _write_quarantine(quarantine, name, rejected)
    if days:
        lake.init(lake_epoch)
        for day, table in days:
            lake.write_day(day, table, mode="append")
    return IngestReport(
        source=source,
        rows_read=valid.num_rows + rejected.num_rows,
        rows_valid=valid.num_rows,
        rows_rejected=rejected.num_rows,
        rejected_by_reason=count_reason_kinds(rejected[REJECT_REASON]) if rejected.num_rows else {},
        days_written=tuple(day for day, _ in days),
        quarantine_path=quarantine_path,
        dropped_columns=dropped,
    )


def _validate(
    name: str, batch: SourceBatch, lake: Lake, epoch: dt.date, allow_unknown_columns: bool
) -> tuple[pa.Table, pa.Table, tuple[str, ...]]:
    """Valid rows, rejected rows (malformed ones included) and dropped columns of a batch."""
    try:
        result = validate_batch(
            batch.table,
            epoch=epoch,
            existing_ids=_lake_ids(lake),
            allow_unknown_columns=allow_unknown_columns,
            source_rows=batch.source_rows,
        )
    except BatchError as exc:
        raise IngestError(f"{name}: {exc}") from None
    except pa.ArrowException as exc:
        raise IngestError(f"{name}: unreadable column values: {first_line(exc)}") from None
    rejected = _with_malformed(result.rejected, batch.malformed)
    rows_read = batch.table.num_rows + len(batch.malformed)
    if rows_read != result.valid.num_rows + rejected.num_rows:  # nothing may vanish silently
        raise AssertionError(
            f"{name}: {rows_read} rows read but {result.valid.num_rows} valid "
            f"+ {rejected.num_rows} rejected"
        )
    return result.valid, rejected, result.dropped_columns


def _with_malformed(rejected: pa.Table, malformed: list[tuple[int, str]]) -> pa.Table:
    """Add the rows that could not be split into fields (their columns null), in row order."""
    if not malformed:
        return rejected
    columns = {
        name: pa.nulls(len(malformed), rejected.schema.field(name).type)
        for name in rejected.column_names
    }
    columns[REJECT_REASON] = pa.array([reason for _, reason in malformed], pa.string())
    columns[SOURCE_ROW] = pa.array([row for row, _ in malformed], pa.int64())
    extra = pa.table(columns, schema=rejected.schema)
    return pa.concat_tables([rejected, extra]).sort_by(SOURCE_ROW)


def _lake_ids(lake: Lake) -> pa.ChunkedArray | None:
    """Every transaction id already in the lake, or None for an empty lake."""
    if not lake.days():
        return None
    return lake.read(columns=["transaction_id"])["transaction_id"]


def _split_by_day(valid: pa.Table) -> list[tuple[dt.date, pa.Table]]:
    """Valid rows per day of tx_datetime, in time order."""
    if valid.num_rows == 0:
        return []
    ordered = valid.sort_by([("tx_datetime", "ascending"), ("transaction_id", "ascending")])
    days = pc.value_counts(pc.cast(ordered["tx_datetime"], pa.date32())).to_pylist()
    out: list[tuple[dt.date, pa.Table]] = []
    offset = 0
    for item in days:
        out.append((item["values"], ordered.slice(offset, item["counts"])))
        offset += item["counts"]
    return out


def _quarantine_storage(lake: Lake, uri: str | None, settings: LakeSettings | None) -> Storage:
    """The quarantine: ``uri`` if given, else ``quarantine/`` beside the lake directory.

    A lake at the root of a bucket has no beside; its quarantine is then the hidden
    ``_quarantine/`` inside the lake root, which lake readers skip.
    """
    if uri:
        return open_storage(uri, settings)
    beside = lake.storage.sibling(QUARANTINE_DIR)
    return beside if beside is not None else lake.storage.child(f"_{QUARANTINE_DIR}")


def _write_quarantine(storage: Storage, name: str, rejected: pa.Table) -> str:
    """Write the rejected rows as one Parquet file; returns where it went."""
    buffer = pa.BufferOutputStream()
    pq.write_table(rejected, buffer, compression="zstd")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    relative, attempt = f"{name}.{stamp}.rejected.parquet", 1
    while storage.exists(relative):
        attempt += 1
        relative = f"{name}.{stamp}-{attempt}.rejected.parquet"
    storage.write_bytes_atomic(relative, buffer.getvalue())
    return f"{storage.uri.rstrip('/')}/{relative}"
