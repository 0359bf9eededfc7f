"""The transaction lake: Parquet files under hive-style day partitions ``dt=YYYY-MM-DD``.

Each file is written whole or not at all (see :mod:`fraudrisk.io.storage`). A partition is
replaced by writing its single ``part-0.parquet`` (``mode="overwrite"``) or grown by adding
one more ``part-<batch>.parquet`` file (``mode="append"``, used by ingestion). The lake's
epoch (day 0 of ``tx_time_seconds``) is kept in ``_lake.json`` beside the partitions.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from fraudrisk.config import LakeSettings
from fraudrisk.io.partitioned import DayPartitions, WriteMode, partition_name

if TYPE_CHECKING:
    import pyarrow.dataset as ds
from fraudrisk.io.storage import Storage, open_storage
from fraudrisk.schemas import LABEL_COLUMNS, LAKE_SCHEMA, PARTITION_COLUMN, SCORER_COLUMNS

_META_FILE = "_lake.json"
__all__ = ["Lake", "WriteMode", "conform", "partition_name"]


def conform(table: pa.Table) -> pa.Table:
    """Cast a table to the lake schema, adding missing optional/label columns as nulls.

    Raises:
        ValueError: If a required column is missing or a column is not part of the schema.
    """
    unknown = set(table.column_names) - set(LAKE_SCHEMA.names)
    if unknown:
        raise ValueError(f"columns not in the lake schema: {sorted(unknown)}")
    columns = []
    for field in LAKE_SCHEMA:
        if field.name in table.column_names:
            columns.append(table[field.name].cast(field.type))
        elif field.nullable:
            columns.append(pa.nulls(table.num_rows, field.type))
        else:
            raise ValueError(f"required column {field.name!r} is missing")
    return pa.Table.from_arrays(columns, schema=LAKE_SCHEMA)


class Lake:
    """Read and write the transaction lake at a storage root."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.partitions = DayPartitions(storage)

    @classmethod
    def open(cls, uri: str, settings: LakeSettings | None = None) -> Lake:
        """Open the lake at a local path or ``s3://`` URI."""
        return cls(open_storage(uri, settings))

    # -- metadata -------------------------------------------------------------------------
    def epoch(self) -> dt.date | None:
        """Day 0 of ``tx_time_seconds`` for this lake, or None for a new lake."""
        if not self.storage.exists(_META_FILE):
            return None
        meta = json.loads(self.storage.read_bytes(_META_FILE))
        return dt.date.fromisoformat(meta["epoch"])

    def init(self, epoch: dt.date) -> None:
        """Record the epoch of a new lake; an existing lake must have the same one.

        Raises:
            ValueError: If the lake already exists with a different epoch.
        """
        current = self.epoch()
        if current is not None and current != epoch:
            raise ValueError(f"lake {self.storage.uri} has epoch {current}, not {epoch}")
        if current is None:
            meta = json.dumps({"epoch": epoch.isoformat(), "schema_version": 1}).encode()
            self.storage.write_bytes_atomic(_META_FILE, meta)

    # -- writing --------------------------------------------------------------------------
    def write_day(self, day: dt.date, table: pa.Table, mode: WriteMode = "overwrite") -> str:
        """Write the transactions of one day as one atomic file; returns its relative path."""
        return self.partitions.write_day(day, conform(table), mode)

    # -- reading --------------------------------------------------------------------------
    def days(self) -> list[dt.date]:
        """The day partitions present, in order."""
        return self.partitions.days()

    def dataset(self) -> ds.Dataset:
        """The whole lake as a ``pyarrow.dataset`` (hive partitioning on ``dt``)."""
        import pyarrow.dataset as ds  # deferred: pyarrow.dataset (≈0.2 s) only for whole-lake reads

        partitioning = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive")
        return ds.dataset(
            self.storage.root,
            filesystem=self.storage.fs,
            format="parquet",
            schema=LAKE_SCHEMA.append(pa.field(PARTITION_COLUMN, pa.string())),
            partitioning=partitioning,
        )

    def read(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        columns: Sequence[str] | None = None,
        include_labels: bool = False,
    ) -> pa.Table:
        """Read transactions of days ``start..end`` (inclusive), sorted by transaction id.

        Args:
            start: First day, or None for the beginning.
            end: Last day, or None for the end.
            columns: Columns to read; default all a scorer may see (plus labels if asked).
            include_labels: Whether to add the label columns to the default columns.
        """
        if columns is None:
            columns = list(SCORER_COLUMNS) + (list(LABEL_COLUMNS) if include_labels else [])
        table = self.dataset().to_table(columns=list(columns), filter=_day_filter(start, end))
        if "transaction_id" in table.column_names:
            table = table.sort_by("transaction_id")
        return table

    def read_days(self, start: dt.date, end: dt.date, columns: Sequence[str]) -> pa.Table:
        """Read days ``start..end`` file by file (no ``pyarrow.dataset``, so no pandas import).

        The fast path for workers that only need whole partitions, e.g. Spark feature tasks.
        """
        pieces = []
        for day in self.days():
            if start <= day <= end:
                pieces += self.partitions.read_day(day, columns)
        if not pieces:
            return LAKE_SCHEMA.empty_table().select(list(columns))
        return pa.concat_tables(pieces)

    def iter_days(
        self, columns: Sequence[str] | None = None, include_labels: bool = False
    ) -> Iterable[tuple[dt.date, pa.Table]]:
        """Yield ``(day, table)`` partition by partition, in day order (bounded memory)."""
        for day in self.days():
            yield day, self.read(day, day, columns=columns, include_labels=include_labels)

    def count_rows(self) -> int:
        """The number of transactions in the lake."""
        return int(self.dataset().count_rows())


def _day_filter(start: dt.date | None, end: dt.date | None) -> ds.Expression | None:
    conditions = []
    if start is not None:
        conditions.append(pc.field(PARTITION_COLUMN) >= start.isoformat())
    if end is not None:
        conditions.append(pc.field(PARTITION_COLUMN) <= end.isoformat())
    if not conditions:
        return None
    expression = conditions[0]
    for condition in conditions[1:]:
        expression = expression & condition
    return expression
