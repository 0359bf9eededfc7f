"""The feature table: one row per transaction, day partitions, each written atomically.

Layout under its root: ``dt=YYYY-MM-DD/part-0.parquet`` (key columns + every feature),
``_entity_state/{customer,terminal}/`` (see :mod:`fraudrisk.features.state`) and the build
manifest ``_build.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudrisk.config import LakeSettings
from fraudrisk.features import kernel
from fraudrisk.features.chunks import Chunk
from fraudrisk.features.definitions import DAY, FEATURE_NAMES, KEY_COLUMNS, UNKNOWN_LABEL
from fraudrisk.features.quality import table_problems
from fraudrisk.features.state import STATE_DIR, states_as_of
from fraudrisk.io.lake import Lake
from fraudrisk.io.partitioned import DayPartitions
from fraudrisk.io.storage import open_storage

if TYPE_CHECKING:
    import pyarrow.dataset as ds

MANIFEST = "_build.json"


class NoFeatureTableError(FileNotFoundError):
    """There is no feature table at a URI; the message says what to run."""


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

    def write_state(self, entity: str, state: pa.Table) -> None:
        """Replace the entity state of ``customer`` or ``terminal``, atomically."""
        buffer = pa.BufferOutputStream()
        pq.write_table(state, buffer, compression="zstd")
        self.storage.write_bytes_atomic(f"{STATE_DIR}/{entity}/part-0.parquet", buffer.getvalue())

    def remove_days_except(self, keep: Iterable[str]) -> list[dt.date]:
        """Remove the days the latest build did not write."""
        return self.partitions.remove_days_except(keep)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Record what the build produced (written last: its presence means a complete build)."""
        self.storage.write_bytes_atomic(MANIFEST, json.dumps(manifest, indent=2).encode())

    def manifest(self) -> dict[str, Any]:
        """The last build's manifest."""
        return dict(json.loads(self.storage.read_bytes(MANIFEST)))

    def dataset(self) -> ds.Dataset:
        """The day partitions as one hive-partitioned parquet dataset (``dt`` a column)."""
        # deferred: pyarrow.dataset (≈0.2 s) only for dataset scans
        import pyarrow.dataset as ds

        return ds.dataset(
            self.storage.root, filesystem=self.storage.fs, format="parquet", partitioning="hive"
        )

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The whole table (or some columns), sorted by transaction id."""
        table = self.dataset().to_table(columns=columns or [*KEY_COLUMNS, *FEATURE_NAMES])
        return table.sort_by("transaction_id") if "transaction_id" in table.column_names else table


def open_dataset(uri: str, settings: LakeSettings | None = None) -> ds.Dataset:
    """The feature table at ``uri`` as a dataset, for scans of a period.

    Args:
        uri: Root of the feature table (a local path or ``s3://`` URI).
        settings: S3 options of the lake (they apply to the table too).

    Raises:
        NoFeatureTableError: If there is no feature table at ``uri``.
    """
    table = FeatureTable.open(uri, settings)
    try:
        return table.dataset()
    except (FileNotFoundError, OSError) as error:
        raise NoFeatureTableError(
            f"no feature table at {uri}: run `fraudrisk features build`"
        ) from error


def rows_between(
    dataset: ds.Dataset, columns: Sequence[str], start: dt.date, end: dt.date
) -> pa.Table:
    """The ``columns`` of the rows with ``tx_datetime`` on days ``start..end`` (inclusive).

    Args:
        dataset: The feature table, from :func:`open_dataset`.
        columns: Columns to read.
        start: First day.
        end: Last day.

    Returns:
        The rows in file order (not sorted).
    """
    first = pa.scalar(dt.datetime.combine(start, dt.time()), pa.timestamp("us"))
    after = pa.scalar(
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time()), pa.timestamp("us")
    )
    return dataset.to_table(
        columns=list(columns),
        filter=(pc.field("tx_datetime") >= first) & (pc.field("tx_datetime") < after),
    )


_LAKE_COLUMNS = [
    "transaction_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
    "tx_amount",
    "tx_fraud",
]


def features_of(rows: pa.Table) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Key columns and every feature (numpy) for lake rows holding complete entity histories.

    Returns:
        ``(columns, seconds, fraud)``: the columns and the Unix seconds and labels used.
    """
    stamps = rows["tx_datetime"].to_numpy()
    seconds = stamps.astype("datetime64[s]").astype(np.int64)
    fraud = pc.fill_null(rows["tx_fraud"], UNKNOWN_LABEL).to_numpy().astype(np.int64)
    keys = {name: rows[name].to_numpy() for name in KEY_COLUMNS}
    features = kernel.all_features(
        keys["customer_id"],
        keys["terminal_id"],
        seconds,
        keys["transaction_id"],
        rows["tx_amount"].to_numpy(),
        fraud,
    )
    return keys | {name: features[name] for name in FEATURE_NAMES}, seconds, fraud


def run_chunk(
    chunk: Chunk, lake_uri: str, out_uri: str, settings: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """What one Spark task does: read a chunk's days plus halo, compute, write its days.

    The task owning the lake's last day also writes the entity state as of that day (its rows
    include the whole 37-day horizon). Returns one summary per day written, the chunk's
    quality problems attached to its first day.
    """
    lake_settings = LakeSettings(**settings) if settings else None
    rows = Lake.open(lake_uri, lake_settings).read_days(chunk.read_from, chunk.last, _LAKE_COLUMNS)
    columns, seconds, fraud = features_of(rows)
    days = seconds // DAY
    mine = np.flatnonzero(seconds >= _epoch_seconds(chunk.first))
    mine = mine[np.lexsort((columns["transaction_id"][mine], days[mine]))]
    own = pa.table({name: values[mine] for name, values in columns.items()})
    problems = table_problems(own, f"dt={chunk.first}..{chunk.last}")
    table = FeatureTable.open(out_uri, lake_settings)
    summary = _write_days(table, own, days[mine])
    if summary:
        summary[0]["problems"] = json.dumps(problems)
    if chunk.is_last and rows.num_rows:
        as_of = dt.datetime.fromtimestamp(int(seconds.max()), dt.UTC).replace(tzinfo=None)
        for entity, state in states_as_of(rows, seconds, fraud).items():
            table.write_state(entity, state)
            summary.append(
                {
                    "dt": "",
                    "rows": 0,
                    "problems": "[]",
                    entity: state.num_rows,
                    "as_of": as_of.isoformat(),
                }
            )
    return summary


def _epoch_seconds(day: dt.date) -> int:
    return int(np.datetime64(day, "s").astype(np.int64))


def _write_days(table: FeatureTable, own: pa.Table, days: np.ndarray) -> list[dict[str, Any]]:
    """Write rows sorted by day as one file per day (zero-copy slices)."""
    bounds = np.flatnonzero(days[1:] != days[:-1]) + 1
    summary = []
    for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(days)], strict=True):
        if end <= start:
            continue
        day = dt.date(1970, 1, 1) + dt.timedelta(days=int(days[start]))
        table.write_day(day, own.slice(int(start), int(end - start)))
        summary.append({"dt": day.isoformat(), "rows": int(end - start), "problems": "[]"})
    return summary
