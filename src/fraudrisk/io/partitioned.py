"""Day-partitioned Parquet tables (``dt=YYYY-MM-DD``) on one storage, one atomic file per write.

Shared by the lake and the feature table: a partition is replaced by writing its single
``part-0.parquet`` (others removed afterwards) or grown by adding another uniquely named file.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from fraudrisk.io.storage import Storage
from fraudrisk.schemas import PARTITION_COLUMN

WriteMode = Literal["overwrite", "append"]
_OVERWRITE_NAME = "part-0.parquet"
_PREFIX = f"{PARTITION_COLUMN}="


def partition_name(day: dt.date) -> str:
    """The directory name of a day partition, e.g. ``dt=2018-04-01``."""
    return f"{_PREFIX}{day.isoformat()}"


class DayPartitions:
    """The ``dt=`` partitions under a storage root."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def write_day(self, day: dt.date, table: pa.Table, mode: WriteMode = "overwrite") -> str:
        """Write one day as one atomic Parquet file; returns its path relative to the root."""
        buffer = pa.BufferOutputStream()
        # Dictionaries only for text: on numbers they cost time and bytes.
        text = [f.name for f in table.schema if pa.types.is_string(f.type)]
        pq.write_table(
            table, buffer, compression="zstd", row_group_size=1 << 20, use_dictionary=text
        )
        name = _OVERWRITE_NAME if mode == "overwrite" else f"part-{uuid.uuid4().hex}.parquet"
        relative = f"{partition_name(day)}/{name}"
        self.storage.write_bytes_atomic(relative, buffer.getvalue())
        if mode == "overwrite":
            for info in self.storage.list_dir(partition_name(day)):
                if info.base_name != name:
                    self.storage.fs.delete_file(info.path)
        return relative

    def read_day(self, day: dt.date, columns: Iterable[str] | None = None) -> list[pa.Table]:
        """The files of one day partition, as tables (none if the day is absent)."""
        chosen = list(columns) if columns is not None else None
        tables = []
        for info in self.storage.list_dir(partition_name(day)):
            with self.storage.fs.open_input_file(info.path) as handle:
                tables.append(pq.ParquetFile(handle).read(columns=chosen))
        return tables

    def days(self) -> list[dt.date]:
        """The day partitions present, in order."""
        return sorted(
            dt.date.fromisoformat(info.base_name[len(_PREFIX) :])
            for info in self.storage.list_dir()
            if info.base_name.startswith(_PREFIX)
        )

    def remove_days_except(self, keep: Iterable[dt.date | str]) -> list[dt.date]:
        """Delete every partition whose day is not in ``keep``; returns the removed days."""
        kept = {d if isinstance(d, str) else d.isoformat() for d in keep}
        removed = [day for day in self.days() if day.isoformat() not in kept]
        for day in removed:
            self.storage.fs.delete_dir(self.storage.path(partition_name(day)))
        return removed
