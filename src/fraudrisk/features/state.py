"""Entity state: the events an online scorer needs to compute every feature at any instant.

Per customer, the transactions of the last 30 days (time, id, amount, terminal); per
terminal, those of the last 37 days (time, id, label — ``UNKNOWN_LABEL`` until the label
delay has passed). The feature kernel computed over a state plus the incoming transaction
gives exactly the batch feature row, because it only ever reads past events in the horizon.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from fraudrisk.features.definitions import (
    CUSTOMER_HORIZON_SECONDS,
    DAY,
    LABEL_DELAY_DAYS,
    TERMINAL_HORIZON_SECONDS,
    UNKNOWN_LABEL,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

STATE_DIR = "_entity_state"
CUSTOMER_STATE_COLUMNS = ("event_seconds", "event_ids", "event_amounts", "event_terminals")
TERMINAL_STATE_COLUMNS = ("event_seconds", "event_ids", "event_labels")


def state_path(out_uri: str, entity: str) -> str:
    """Where the state of ``customer`` or ``terminal`` lives under a feature table."""
    return os.path.join(out_uri, STATE_DIR, entity)


def write_entity_state(spark: SparkSession, lake: DataFrame, out_uri: str) -> tuple[int, int, str]:
    """Write the customer and terminal state as of the lake's last transaction.

    Only the partitions inside the longest horizon are read (partition pruning on ``dt``).

    Returns:
        ``(customers, terminals, as_of ISO timestamp)``.
    """
    from pyspark.sql import functions as F  # noqa: N812

    last_day = lake.agg(F.max("dt")).first()[0]  # type: ignore[index]
    first_day = date.fromisoformat(last_day) - timedelta(seconds=TERMINAL_HORIZON_SECONDS + DAY)
    recent = (
        lake.where(F.col("dt") >= first_day.isoformat())
        .withColumn("seconds", F.unix_seconds(F.col("tx_datetime").cast("timestamp")))
        .cache()
    )
    as_of_seconds = int(recent.agg(F.max("seconds")).first()[0])  # type: ignore[index]
    as_of = datetime.fromtimestamp(as_of_seconds, UTC).replace(tzinfo=None)
    stamp = F.lit(as_of).cast("timestamp_ntz").alias("state_as_of")
    customer = _collect(
        recent.where(F.col("seconds") > as_of_seconds - CUSTOMER_HORIZON_SECONDS),
        "customer_id",
        {
            "event_ids": "transaction_id",
            "event_amounts": "tx_amount",
            "event_terminals": "terminal_id",
        },
        stamp,
    ).cache()
    known = F.col("seconds") <= as_of_seconds - LABEL_DELAY_DAYS * DAY
    label = (
        F.when(known, F.coalesce(F.col("tx_fraud"), F.lit(UNKNOWN_LABEL)))
        .otherwise(UNKNOWN_LABEL)
        .cast("bigint")
    )
    terminal = _collect(
        recent.where(F.col("seconds") > as_of_seconds - TERMINAL_HORIZON_SECONDS).withColumn(
            "label", label
        ),
        "terminal_id",
        {"event_ids": "transaction_id", "event_labels": "label"},
        stamp,
    ).cache()
    customer.coalesce(1).write.mode("overwrite").parquet(state_path(out_uri, "customer"))
    terminal.coalesce(1).write.mode("overwrite").parquet(state_path(out_uri, "terminal"))
    counts = customer.count(), terminal.count()
    for frame in (recent, customer, terminal):
        frame.unpersist()
    return counts[0], counts[1], as_of.isoformat()


def _collect(events: DataFrame, key: str, fields: dict[str, str], stamp: Column) -> DataFrame:
    from pyspark.sql import functions as F  # noqa: N812

    struct = F.struct(
        F.col("seconds").cast("bigint").alias("event_seconds"),
        *[F.col(src).alias(dst) for dst, src in fields.items()],
    )
    grouped = events.groupBy(key).agg(F.sort_array(F.collect_list(struct)).alias("ev"))
    columns = [F.col(f"ev.{name}").alias(name) for name in ["event_seconds", *fields]]
    return grouped.select(key, stamp, *columns)
