"""The Spark batch feature job: lake → feature table (one row per transaction) + entity state.

Every feature looks back at most 37 days, so the job shards by time (see
:mod:`fraudrisk.features.chunks`): Spark runs one task per chunk of whole days, on any master;
each task reads its days plus their 37-day history straight from the lake's day partitions
(local or S3), runs the shared feature kernel, and writes each of its days as one Parquet file,
atomically, checking the quality of exactly what it writes. No shuffle: the only data that
crosses the network is what a task reads and a per-day summary. The task that owns the last
day also writes the entity state. The driver checks the total against the lake, removes days
the lake no longer has and writes the manifest last.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fraudrisk.features.chunks import plan_chunks
from fraudrisk.features.definitions import FEATURE_NAMES, FEATURE_SET_VERSION
from fraudrisk.features.quality import raise_on_problems
from fraudrisk.features.table import FeatureTable, run_chunk
from fraudrisk.io.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from fraudrisk.config import LakeSettings


@dataclass(frozen=True)
class BuildResult:
    """What a feature build produced."""

    lake: str
    out: str
    rows: int
    days: int
    chunks: int
    customers: int
    terminals: int
    as_of: str
    feature_set_version: str
    seconds: float


def build_features(
    spark: SparkSession,
    lake_uri: str,
    out_uri: str,
    lake_settings: LakeSettings | None = None,
    max_rows_per_chunk: int = 6_000_000,
) -> BuildResult:
    """Run the batch job: read the lake, write the feature table and the entity state.

    Args:
        spark: The session (any master).
        lake_uri: The lake to read.
        out_uri: The feature table root to write.
        lake_settings: S3 endpoint/credentials for both URIs, if on S3.
        max_rows_per_chunk: Bound on one task's rows (its days plus halo); more chunks when
            the lake is larger.

    Raises:
        FeatureQualityError: If the written table fails a data quality check.
        ValueError: If the lake is empty.
    """
    started = dt.datetime.now(dt.UTC)
    source = Lake.open(lake_uri, lake_settings)
    days, expected = source.days(), source.count_rows()
    if not days:
        raise ValueError(f"the lake at {lake_uri} has no day partitions")
    chunks = plan_chunks(
        days[0], days[-1], expected, spark.sparkContext.defaultParallelism, max_rows_per_chunk
    )
    settings = _settings_dict(lake_settings)
    summary = (
        spark.sparkContext.parallelize(chunks, len(chunks))
        .flatMap(lambda chunk: run_chunk(chunk, lake_uri, out_uri, settings))
        .collect()
    )
    day_rows = [row for row in summary if row["dt"]]
    problems = [p for row in day_rows for p in json.loads(row["problems"])]
    raise_on_problems(problems, sum(row["rows"] for row in day_rows), expected)
    table = FeatureTable.open(out_uri, lake_settings)
    table.remove_days_except(row["dt"] for row in day_rows)
    result = BuildResult(
        lake=lake_uri,
        out=out_uri,
        rows=expected,
        days=len(day_rows),
        chunks=len(chunks),
        customers=sum(row.get("customer", 0) for row in summary),
        terminals=sum(row.get("terminal", 0) for row in summary),
        as_of=max(row.get("as_of", "") for row in summary),
        feature_set_version=FEATURE_SET_VERSION,
        seconds=(dt.datetime.now(dt.UTC) - started).total_seconds(),
    )
    table.write_manifest(asdict(result) | {"features": list(FEATURE_NAMES)})
    return result


def _settings_dict(settings: LakeSettings | None) -> dict[str, Any] | None:
    if settings is None:
        return None
    return settings.model_dump(mode="json") | {
        "s3_secret_access_key": settings.s3_secret_access_key.get_secret_value()
    }
