"""Readers of ingestion source files: CSV or Parquet bytes -> a table of rows as read.

A file that cannot be read as a whole (missing, empty, not UTF-8, binary, truncated, corrupt,
unusable columns) raises :class:`IngestError`; rows of a CSV file whose field count is not the
header's are set apart with a reason instead.
"""

from __future__ import annotations

import csv
import gzip
import io
import posixpath
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fraudrisk.config import LakeSettings
from fraudrisk.data.columns import BatchError, lake_columns
from fraudrisk.io.storage import open_storage

_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 8192
_MAX_RAW_CHARS = 1000


class IngestError(Exception):
    """The file cannot be ingested at all; the message starts with the file name."""


@dataclass(frozen=True)
class SourceBatch:
    """A parsed file: rows as read, their source rows, and the rows that could not be split."""

    table: pa.Table
    source_rows: pa.Array
    malformed: list[tuple[int, str]]  # (source row, reason)


def read_source(source: str, settings: LakeSettings | None = None) -> SourceBatch:
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


def _read_csv(name: str, data: bytes) -> SourceBatch:
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
    return SourceBatch(table, rows, malformed)


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
        raise IngestError(f"{name}: CSV parse error: {first_line(exc)}") from None
    return table, invalid


def _read_parquet(name: str, data: bytes) -> SourceBatch:
    """Read a Parquet file whole; a cut or corrupt file is refused."""
    problem = "truncated or corrupt Parquet"
    if not (data.startswith(_PARQUET_MAGIC) and data.endswith(_PARQUET_MAGIC)):
        raise IngestError(f"{name}: {problem} (no Parquet header/footer magic)")
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        _check_columns(name, parquet.schema_arrow.names)
        table = parquet.read()
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{name}: {problem} ({first_line(exc)})") from None
    return SourceBatch(table, pa.array(np.arange(1, table.num_rows + 1), pa.int64()), [])


def _check_columns(name: str, names: list[str]) -> None:
    """Refuse clear card number, duplicate or missing columns before reading any value."""
    try:
        lake_columns(names, allow_unknown_columns=True)  # unknown ones: decided by validation
    except BatchError as exc:
        raise IngestError(f"{name}: {exc}") from None


def first_line(exc: BaseException) -> str:
    """An exception's message, on one line."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
