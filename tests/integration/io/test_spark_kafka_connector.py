"""Spark's Kafka connector loads from the Maven-resolved jars (no runtime download) and reads."""

from __future__ import annotations

import uuid

import pytest

from fraudrisk.config import KafkaSettings
from fraudrisk.io.kafka import ensure_topics, make_producer

pytestmark = pytest.mark.integration
pyspark_sql = pytest.importorskip("pyspark.sql")


def test_batch_read_of_the_transactions_topic(
    spark: object, kafka_settings: KafkaSettings, kafka_broker: str
) -> None:
    ensure_topics(kafka_settings)
    tag = f"spark-{uuid.uuid4().hex[:8]}"
    producer = make_producer(kafka_settings)
    for i in range(10):
        producer.produce("transactions", key=f"customer-{i}", value=f"{tag}-{i}")
    assert producer.flush(30) == 0

    frame = (
        spark.read.format("kafka")  # type: ignore[attr-defined]
        .option("kafka.bootstrap.servers", kafka_broker)
        .option("subscribe", "transactions")
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
        .selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value", "partition")
    )
    rows = [row for row in frame.collect() if row["value"].startswith(tag)]
    assert len(rows) == 10
    assert {row["key"] for row in rows} == {f"customer-{i}" for i in range(10)}
    assert {row["partition"] for row in rows} <= set(range(6))
