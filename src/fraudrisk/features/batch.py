"""The Spark batch feature job: lake → feature table (one row per transaction) + entity state.

Every feature looks back at most ``TERMINAL_HORIZON_SECONDS`` (37 days), so the job shards by
time: each row goes to its chunk of whole days and, as history ("halo"), to the following
chunks whose days it can reach. One shuffle (``groupBy(chunk).applyInArrow``) brings a chunk
and its halo together; the task runs the shared feature kernel over them and writes each of its
own days as one Parquet file, atomically (temp + rename locally, one object on S3), checking
the day's quality on the exact table it writes. The driver then checks the row count against
the lake, removes days the lake no longer has and writes the entity state and a manifest.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fraudrisk.features.definitions import (
    DAY,
    FEATURE_NAMES,
    FEATURE_SET_VERSION,
    TERMINAL_HORIZON_SECONDS,
)
from fraudrisk.features.quality import raise_on_problems
from fraudrisk.features.state import write_entity_state
from fraudrisk.features.table import FeatureTable, chunk_task

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fraudrisk.config import LakeSettings

HALO_DAYS = TERMINAL_HORIZON_SECONDS // DAY  # the longest look-back (37 days), in whole days
_INPUT = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount", "tx_fraud"]
SUMMARY_DDL = "dt string, rows bigint, problems string"


@dataclass(frozen=True)
class BuildResult:
    """What a feature build produced."""

    lake: str
    out: str
    rows: int
    days: int
    chunks: int
    chunk_days: int
    customers: int
    terminals: int
    as_of: str
    feature_set_version: str
    seconds: float


def read_lake(spark: SparkSession, lake_uri: str) -> DataFrame:
    """The lake's columns the job needs, ``dt`` as the partition's string."""
    from pyspark.sql import functions as F  # noqa: N812

    lake = spark.read.parquet(lake_uri)
    return lake.select(*_INPUT, F.col("dt").cast("string").alias("dt"))


def plan_chunk_days(n_days: int, rows: int, parallelism: int, max_rows: int = 6_000_000) -> int:
    """Days per chunk: enough chunks to use every core and keep a task's rows bounded."""
    by_memory = math.ceil(rows * (1 + HALO_DAYS / max(n_days, 1)) / max_rows)
    chunks = max(parallelism, by_memory, 1)
    return max(math.ceil(n_days / chunks), 1)


def with_chunks(lake: DataFrame, first_day: dt.date, chunk_days: int, n_chunks: int) -> DataFrame:
    """Each row once per chunk that needs it: its own chunk, then as halo of later chunks."""
    from pyspark.sql import functions as F  # noqa: N812

    day = F.datediff(F.to_date("dt"), F.lit(first_day))
    own = F.floor(day / chunk_days)
    last = F.least(F.floor((day + HALO_DAYS) / chunk_days), F.lit(n_chunks - 1))
    return lake.withColumn("chunk", F.explode(F.sequence(own, last)))


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
    from fraudrisk.io.lake import Lake

    started = dt.datetime.now(dt.UTC)
    source = Lake.open(lake_uri, lake_settings)
    days, expected = source.days(), source.count_rows()
    if not days:
        raise ValueError(f"the lake at {lake_uri} has no day partitions")
    n_days = (days[-1] - days[0]).days + 1
    chunk_days = plan_chunk_days(
        n_days, expected, spark.sparkContext.defaultParallelism, max_rows_per_chunk
    )
    n_chunks = math.ceil(n_days / chunk_days)
    table = FeatureTable.open(out_uri, lake_settings)
    task = chunk_task(out_uri, days[0], chunk_days, _settings_dict(lake_settings))
    lake = read_lake(spark, lake_uri)
    summary = (
        with_chunks(lake, days[0], chunk_days, n_chunks)
        .groupBy("chunk")
        .applyInArrow(task, SUMMARY_DDL)
        .collect()
    )
    written = {row["dt"] for row in summary}
    problems = [p for row in summary for p in json.loads(row["problems"])]
    raise_on_problems(problems, sum(row["rows"] for row in summary), expected)
    table.remove_days_except(written)
    customers, terminals, as_of = write_entity_state(spark, lake, out_uri)
    result = BuildResult(
        lake=lake_uri,
        out=out_uri,
        rows=expected,
        days=len(written),
        chunks=n_chunks,
        chunk_days=chunk_days,
        customers=customers,
        terminals=terminals,
        as_of=as_of,
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
