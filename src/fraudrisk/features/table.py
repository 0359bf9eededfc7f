"""The feature table: one row per transaction, day partitions, each written atomically.

Layout under its root: ``dt=YYYY-MM-DD/part-0.parquet`` (key columns + every feature),
``_entity_state/{customer,terminal}/`` (see :mod:`fraudrisk.features.state`) and the build
manifest ``_build.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from fraudrisk.config import LakeSettings
from fraudrisk.features import kernel
from fraudrisk.features.definitions import FEATURE_NAMES, KEY_COLUMNS, UNKNOWN_LABEL
from fraudrisk.features.quality import table_problems
from fraudrisk.io.partitioned import DayPartitions
from fraudrisk.io.storage import open_storage

MANIFEST = "_build.json"


class FeatureTable:
    """Read and write the feature table at a storage root."""

    def __init__(self, partitions: DayPartitions) -> None:
        self.partitions = partitions
        self.storage = partitions.storage

    @classmethod
    def open(cls, uri: str, settings: LakeSettings | None = None) -> FeatureTable:
        """Open the table at a local path or ``s3://`` URI."""
        return cls(DayPartitions(open_storage(uri, settings)))

    def write_day(self, day: dt.date, table: pa.Table) -> None:
        """Replace one day of the table, atomically."""
        self.partitions.write_day(day, table)

    def remove_days_except(self, keep: Iterable[str]) -> list[dt.date]:
        """Remove the days the latest build did not write."""
        return self.partitions.remove_days_except(keep)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Record what the build produced (written last: its presence means a complete build)."""
        self.storage.write_bytes_atomic(MANIFEST, json.dumps(manifest, indent=2).encode())

    def manifest(self) -> dict[str, Any]:
        """The last build's manifest."""
        return dict(json.loads(self.storage.read_bytes(MANIFEST)))

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The whole table (or some columns), sorted by transaction id."""
        dataset = ds.dataset(
            self.storage.root, filesystem=self.storage.fs, format="parquet", partitioning="hive"
        )
        table = dataset.to_table(columns=columns or [*KEY_COLUMNS, *FEATURE_NAMES])
        return table.sort_by("transaction_id") if "transaction_id" in table.column_names else table


def features_of(rows: pa.Table) -> pa.Table:
    """Key columns and every feature for lake rows holding complete entity histories."""
    seconds = rows["tx_datetime"].to_numpy().astype("datetime64[s]").astype(np.int64)
    fraud = pc.fill_null(rows["tx_fraud"], UNKNOWN_LABEL).to_numpy().astype(np.int64)
    columns = kernel.all_features(
        rows["customer_id"].to_numpy(),
        rows["terminal_id"].to_numpy(),
        seconds,
        rows["transaction_id"].to_numpy(),
        rows["tx_amount"].to_numpy(),
        fraud,
    )
    keys = {name: rows[name] for name in KEY_COLUMNS}
    return pa.table(keys | {name: columns[name] for name in FEATURE_NAMES})


ChunkTask = Callable[[tuple[pa.Scalar, ...], pa.Table], pa.Table]


def chunk_task(
    out_uri: str, first_day: dt.date, chunk_days: int, settings: dict[str, Any] | None
) -> ChunkTask:
    """The function each Spark task runs on one chunk (its rows plus halo rows)."""

    def run(key: tuple[pa.Scalar, ...], rows: pa.Table) -> pa.Table:
        chunk = key[0].as_py()
        day = _day_index(rows["dt"], first_day)
        mine = day // chunk_days == chunk
        features = features_of(rows).filter(pa.array(mine))
        days = rows["dt"].filter(pa.array(mine))
        table = FeatureTable.open(out_uri, LakeSettings(**settings) if settings else None)
        return _write_days(table, features, days)

    return run


def _day_index(dt_column: pa.ChunkedArray, first_day: dt.date) -> np.ndarray:
    dates = pc.cast(dt_column, pa.date32()).to_numpy(zero_copy_only=False)
    return np.asarray((dates - np.datetime64(first_day)) // np.timedelta64(1, "D"))


def _write_days(table: FeatureTable, features: pa.Table, days: pa.ChunkedArray) -> pa.Table:
    order = pc.sort_indices(
        pa.table({"dt": days, "id": features["transaction_id"]}),
        sort_keys=[("dt", "ascending"), ("id", "ascending")],
    )
    features, days = features.take(order), days.take(order)
    labels = days.to_numpy(zero_copy_only=False)
    bounds = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(labels)]
    summary: dict[str, list[Any]] = {"dt": [], "rows": [], "problems": []}
    for start, end in zip(starts, ends, strict=True):
        if end <= start:
            continue
        label = str(labels[start])
        piece = features.slice(int(start), int(end - start))
        table.write_day(dt.date.fromisoformat(label), piece)
        summary["dt"].append(label)
        summary["rows"].append(piece.num_rows)
        summary["problems"].append(json.dumps(table_problems(piece, f"dt={label}")))
    return pa.table(
        summary,
        schema=pa.schema([("dt", pa.string()), ("rows", pa.int64()), ("problems", pa.string())]),
    )
