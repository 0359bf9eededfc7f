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

import csv
import datetime as dt
import gzip
import io
import posixpath
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fraudrisk.config import LakeSettings
from fraudrisk.data.validation import (
    REJECT_REASON,
    SOURCE_ROW,
    BatchError,
    count_reason_kinds,
    lake_columns,
    validate_batch,
)
from fraudrisk.io.lake import Lake
from fraudrisk.io.storage import Storage, open_storage

DEFAULT_EPOCH = dt.date(2018, 4, 1)
QUARANTINE_DIR = "quarantine"
_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 8192
_MAX_RAW_CHARS = 1000


class IngestError(Exception):
    """The file cannot be ingested at all; the message starts with the file name."""


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


@dataclass(frozen=True)
class _SourceBatch:
    """A parsed file: rows as read, their source rows, and the rows that could not be split."""

    table: pa.Table
    source_rows: pa.Array
    malformed: list[tuple[int, str]]  # (source row, reason)


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
    batch = _read_source(source, settings)
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
    name: str, batch: _SourceBatch, lake: Lake, epoch: dt.date, allow_unknown_columns: bool
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
        raise IngestError(f"{name}: unreadable column values: {_first_line(exc)}") from None
    rejected = _with_malformed(result.rejected, batch.malformed)
    rows_read = batch.table.num_rows + len(batch.malformed)
    if rows_read != result.valid.num_rows + rejected.num_rows:  # nothing may vanish silently
        raise AssertionError(
            f"{name}: {rows_read} rows read but {result.valid.num_rows} valid "
            f"+ {rejected.num_rows} rejected"
        )
    return result.valid, rejected, result.dropped_columns


def _read_source(source: str, settings: LakeSettings | None = None) -> _SourceBatch:
    """Read a CSV (every column as text) or Parquet file, refusing unusable files.

    Raises:
        IngestError: If the file is missing, of an unknown type, empty, not UTF-8 text,
            binary, truncated or corrupt, or has no data rows.
    """
    name = posixpath.basename(source.rstrip("/"))
    lowered = name.lower()
    if not lowered.endswith(_CSV_SUFFIXES + _PARQUET_SUFFIXES):
        raise IngestError(f"{name}: unsupported file type; expected .csv, .csv.gz, .parquet or .pq")
    data = _read_bytes(name, source, settings)
    if lowered.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise IngestError(f"{name}: truncated or corrupt gzip ({exc})") from None
    if not data:
        raise IngestError(f"{name}: empty file (0 bytes)")
    if lowered.endswith(_PARQUET_SUFFIXES):
        batch = _read_parquet(name, data)
    else:
        batch = _read_csv(name, data)
    if batch.table.num_rows + len(batch.malformed) == 0:
        raise IngestError(f"{name}: no data rows (header only)")
    return batch


def _read_bytes(name: str, source: str, settings: LakeSettings | None) -> bytes:
    """The whole file, from a local path or an ``s3://`` URI."""
    try:
        if not source.startswith("s3://"):
            return Path(source).read_bytes()
        parent, base = source.rstrip("/").rsplit("/", 1)
        return open_storage(parent, settings).read_bytes(base)
    except FileNotFoundError:
        raise IngestError(f"{name}: file not found ({source})") from None
    except OSError as exc:
        raise IngestError(f"{name}: cannot read the file ({exc})") from None


def _check_text(name: str, data: bytes) -> None:
    """Decode UTF-8 text, refusing binary data and other encodings with the byte offset."""
    head = data[:_SNIFF_BYTES]
    controls = sum(byte < 9 or 13 < byte < 32 for byte in head)
    if b"\x00" in head or controls > len(head) // 10:
        offset = data.find(b"\x00")
        where = f"NUL byte at offset {offset}" if offset >= 0 else "control bytes"
        raise IngestError(f"{name}: binary data ({where}), not a CSV text file")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{name}: not UTF-8 encoded: invalid byte 0x{data[exc.start]:02x} at byte offset "
            f"{exc.start}; re-encode the file as UTF-8"
        ) from None


def _read_csv(name: str, data: bytes) -> _SourceBatch:
    """Parse CSV text, every column as a string; rows with a wrong field count are set apart."""
    _check_text(name, data)
    if data.count(b'"') % 2:  # quotes come in pairs ("" escapes one) unless the file was cut
        raise IngestError(f"{name}: truncated or malformed: a quoted field is never closed")
    table, invalid = _parse_csv(name, data)
    total = table.num_rows + len(invalid)
    last = invalid[-1] if invalid else None
    if (
        last is not None
        and not data.endswith((b"\n", b"\r"))
        and last.number == total + 1
        and last.actual_columns < last.expected_columns
    ):
        raise IngestError(
            f"{name}: truncated: the last line has {last.actual_columns} fields, the header "
            f"{last.expected_columns}, and no newline at the end"
        )
    keep = np.ones(total + 1, dtype=bool)
    malformed: list[tuple[int, str]] = []
    for row in invalid:
        number = int(row.number) - 1  # the handler counts the header as row 1
        keep[number] = False
        reason = f"row has {row.actual_columns} fields, header has {row.expected_columns}"
        malformed.append((number, f"{reason}: {row.text[:_MAX_RAW_CHARS]!r}"))
    rows = pa.array(np.flatnonzero(keep[1:]) + 1, pa.int64())
    return _SourceBatch(table, rows, malformed)


def _parse_csv(name: str, data: bytes) -> tuple[pa.Table, list[pacsv.InvalidRow]]:
    """Read CSV bytes as strings, collecting the rows whose field count is not the header's."""
    head = data[: 8 * _SNIFF_BYTES].decode("utf-8", errors="ignore").lstrip("\ufeff")
    header = next((row for row in csv.reader(io.StringIO(head)) if row), [])
    _check_columns(name, header)
    invalid: list[pacsv.InvalidRow] = []

    def collect(row: pacsv.InvalidRow) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(use_threads=False),  # row numbers need one thread
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=collect),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())),
        )
    except pa.ArrowException as exc:
        raise IngestError(f"{name}: CSV parse error: {_first_line(exc)}") from None
    return table, invalid


def _read_parquet(name: str, data: bytes) -> _SourceBatch:
    """Read a Parquet file whole; a cut or corrupt file is refused."""
    problem = "truncated or corrupt Parquet"
    if not (data.startswith(_PARQUET_MAGIC) and data.endswith(_PARQUET_MAGIC)):
        raise IngestError(f"{name}: {problem} (no Parquet header/footer magic)")
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        _check_columns(name, parquet.schema_arrow.names)
        table = parquet.read()
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{name}: {problem} ({_first_line(exc)})") from None
    return _SourceBatch(table, pa.array(np.arange(1, table.num_rows + 1), pa.int64()), [])


def _check_columns(name: str, names: list[str]) -> None:
    """Refuse clear card number, duplicate or missing columns before reading any value."""
    try:
        lake_columns(names, allow_unknown_columns=True)  # unknown ones: decided by validation
    except BatchError as exc:
        raise IngestError(f"{name}: {exc}") from None


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
    root = lake.storage.root.rstrip("/")
    parent = posixpath.dirname(root)
    if not parent:
        hidden = f"_{QUARANTINE_DIR}"
        return Storage(lake.storage.fs, f"{root}/{hidden}", f"{lake.storage.uri}/{hidden}")
    sibling = posixpath.join(parent, QUARANTINE_DIR)
    shown = sibling if lake.storage.is_local else f"{urlparse(lake.storage.uri).scheme}://{sibling}"
    return Storage(lake.storage.fs, sibling, shown)


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


def _first_line(exc: BaseException) -> str:
    """An exception's message, on one line."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
