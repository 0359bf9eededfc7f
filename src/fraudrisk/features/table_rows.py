"""Feature-table rows of a period, as the monitoring parts read them.

The feature table keeps one ``dt=`` partition per day of ``tx_datetime``; a drift window or a
reference period reads whole partitions, file by file (no dataset scan over the other days).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fraudrisk.config import Settings
from fraudrisk.errors import MonitoringError
from fraudrisk.features.table import FeatureTable
from fraudrisk.io.partitioned import partition_name

#: Columns kept beside the features: they identify a row and date it.
ID_COLUMNS: tuple[str, ...] = ("transaction_id", "tx_datetime")


def table_days(table_uri: str, settings: Settings) -> list[dt.date]:
    """The day partitions of the feature table (empty when there is no table)."""
    try:
        return FeatureTable.open(table_uri, settings.lake).partitions.days()
    except (FileNotFoundError, OSError):
        return []


def read_feature_days(
    settings: Settings,
    table_uri: str,
    start: dt.date,
    end: dt.date,
    feature_names: tuple[str, ...],
) -> pd.DataFrame:
    """The ids and the given features of the table's rows of days ``start..end`` (inclusive).

    Args:
        settings: Platform settings (S3 options of the lake apply to the table too).
        table_uri: Root of the feature table.
        start: First day.
        end: Last day.
        feature_names: Feature columns to read.

    Returns:
        ``transaction_id``, ``tx_datetime`` and the features (float64), in table order.

    Raises:
        MonitoringError: If the table is missing or lacks one of the features.
    """
    days = table_days(table_uri, settings)
    if not days:
        raise MonitoringError(
            f"no feature table at {table_uri}: run `fraudrisk features build` first"
        )
    columns = [*ID_COLUMNS, *feature_names]
    table = FeatureTable.open(table_uri, settings.lake)
    pieces = []
    for day in (d for d in days if start <= d <= end):
        for info in table.storage.list_dir(partition_name(day)):
            with table.storage.fs.open_input_file(info.path) as handle:
                pieces.append(_read_columns(pq.ParquetFile(handle), columns, table_uri))
    if not pieces:
        return pd.DataFrame({name: pd.Series(dtype="float64") for name in columns})
    return as_feature_frame(pa.concat_tables(pieces).to_pandas(), feature_names)


def _read_columns(parquet: pq.ParquetFile, columns: list[str], table_uri: str) -> pa.Table:
    missing = [name for name in columns if name not in parquet.schema_arrow.names]
    if missing:
        raise MonitoringError(
            f"the feature table at {table_uri} has no column(s) {missing}: rebuild it with "
            "`fraudrisk features build`"
        )
    return parquet.read(columns=columns)


def as_feature_frame(frame: pd.DataFrame, feature_names: tuple[str, ...]) -> pd.DataFrame:
    """The ids (when present) and the features as float64, in that order.

    One numeric type on both sides of a comparison: int features and their float copies
    must fall in the same bins and categories.
    """
    ids = [name for name in ID_COLUMNS if name in frame.columns]
    out = frame[[*ids, *feature_names]].copy()
    for name in feature_names:
        out[name] = out[name].astype(np.float64)
    return out.reset_index(drop=True)


def earliest_and_latest(days: list[dt.date]) -> str:
    """``first..last`` of a list of days, for error messages."""
    return f"{days[0]}..{days[-1]}" if days else "no day"


def sample_rows(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows drawn without replacement with a fixed seed, in input order.

    The same input and seed always give the same rows, so a report can be made again.
    """
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    picked = np.sort(np.random.default_rng(seed).choice(len(frame), max_rows, replace=False))
    return frame.iloc[picked].reset_index(drop=True)
