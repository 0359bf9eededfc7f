"""What a batch scoring job reads: lake day partitions, or CSV/Parquet files under a prefix.

A source is a list of *units* (a day partition, a file), each read on demand as its valid rows
in event-time order plus, for files, the rows the ingestion validator rejected (with their
reasons). Files go through exactly the readers and validator of ingestion, so a file scored
here and a file ingested into the lake accept and refuse the same rows.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs

from fraudrisk.config import LakeSettings
from fraudrisk.data.ingest import QUARANTINE_DIR, _with_malformed
from fraudrisk.data.readers import IngestError, first_line, read_source
from fraudrisk.data.validation import BatchError, validate_batch
from fraudrisk.features.definitions import CUSTOMER_HORIZON_SECONDS, DAY, TERMINAL_HORIZON_SECONDS
from fraudrisk.io.lake import Lake, partition_name
from fraudrisk.io.storage import HIDDEN_PREFIXES, Storage, open_storage
from fraudrisk.schemas import LAKE_SCHEMA

INPUT_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
REJECTED_SUFFIX = ".rejected.parquet"
#: Days of history the features of a transaction can see (customer or terminal, labels delayed).
HISTORY_DAYS = max(CUSTOMER_HORIZON_SECONDS, TERMINAL_HORIZON_SECONDS) // DAY + 1


@dataclass(frozen=True)
class Unit:
    """One day or file: its valid rows in event-time order, and its rejected rows if any."""

    name: str
    valid: pa.Table
    rejected: pa.Table | None = None


@dataclass(frozen=True)
class Source:
    """The units of a job, read one at a time by :meth:`read` (bounded memory)."""

    description: str
    names: list[str]
    reader: Callable[[str], Unit]

    def read(self) -> Iterator[Unit | IngestError]:
        """Each unit in order; a file that cannot be read at all yields its error instead."""
        for name in self.names:
            try:
                yield self.reader(name)
            except IngestError as error:
                yield error


def in_time_order(table: pa.Table) -> pa.Table:
    """Rows sorted by event time, then transaction id (the order state must be built in)."""
    return table.sort_by([("tx_datetime", "ascending"), ("transaction_id", "ascending")])


def lake_source(lake: Lake, start: dt.date, end: dt.date) -> Source:
    """The lake's day partitions ``start..end`` (inclusive), day by day."""
    days = [day for day in lake.days() if start <= day <= end]

    def read(name: str) -> Unit:
        day = dt.date.fromisoformat(name.removeprefix("dt="))
        return Unit(name, in_time_order(lake.read_days(day, day, LAKE_SCHEMA.names)))

    return Source(
        f"lake {lake.storage.uri} {start}..{end}", [partition_name(d) for d in days], read
    )


def history(lake: Lake, before: dt.date | None) -> Iterator[pa.Table]:
    """The lake days an entity state needs before ``before`` (None: the lake's last days)."""
    days = lake.days()
    end = before - dt.timedelta(days=1) if before else (days[-1] if days else dt.date.min)
    first = end - dt.timedelta(days=HISTORY_DAYS)
    for day in days:
        if first <= day <= end:
            yield in_time_order(lake.read_days(day, day, LAKE_SCHEMA.names))


def file_source(uri: str, epoch: dt.date, settings: LakeSettings | None = None) -> Source:
    """The CSV and Parquet files under a local directory or ``s3://`` prefix (or one file).

    Hidden files and folders (``_``/``.``) and earlier quarantine outputs are skipped; files are
    read in path order, each validated whole by the ingestion validator.
    """
    storage = open_storage(uri, settings)
    names = _input_files(storage)
    base = uri.rstrip("/")

    def read(name: str) -> Unit:
        return _validated(name, base if name == "" else f"{base}/{name}", epoch, settings)

    return Source(f"files {uri} ({len(names)})", names, read)


def quarantine_storage(input_uri: str, given: str | None, settings: LakeSettings | None) -> Storage:
    """``given``, else ``quarantine/`` beside the input (``_quarantine/`` in a bucket root)."""
    if given:
        return open_storage(given, settings)
    storage = open_storage(input_uri, settings)
    beside = storage.sibling(QUARANTINE_DIR)
    return beside if beside is not None else storage.child(f"_{QUARANTINE_DIR}")


def _input_files(storage: Storage) -> list[str]:
    """Relative paths of the input files ("" when the URI is a file itself)."""
    info = storage.fs.get_file_info(storage.root)
    if info.type == pafs.FileType.File:
        return [""]
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"no input at {storage.uri}")
    selector = pafs.FileSelector(storage.root, recursive=True, allow_not_found=True)
    found = []
    for entry in storage.fs.get_file_info(selector):
        relative = posixpath.relpath(entry.path, storage.root)
        parts = relative.split("/")
        if (
            entry.type == pafs.FileType.File
            and not any(part.startswith(HIDDEN_PREFIXES) for part in parts)
            and relative.lower().endswith(INPUT_SUFFIXES)
            and not relative.endswith(REJECTED_SUFFIX)
        ):
            found.append(relative)
    return sorted(found)


def _validated(name: str, uri: str, epoch: dt.date, settings: LakeSettings | None) -> Unit:
    """A file read and validated like an ingestion (a bad file raises :class:`IngestError`)."""
    label = name or posixpath.basename(uri)
    batch = read_source(uri, settings)
    try:
        checked = validate_batch(batch.table, epoch=epoch, source_rows=batch.source_rows)
    except BatchError as error:
        raise IngestError(f"{label}: {error}") from None
    except pa.ArrowException as error:
        raise IngestError(f"{label}: unreadable column values: {first_line(error)}") from None
    rejected = _with_malformed(checked.rejected, batch.malformed)
    return Unit(label, in_time_order(checked.valid), rejected if rejected.num_rows else None)
