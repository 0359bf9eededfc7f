"""Delayed labels through a real Kafka broker: published, read back as of a day, used."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from tests.support.stream import unique_topics
from tests.unit.monitoring.perf_fixtures import build_perf_world, day, good_scores, write_scores

from fraudrisk.config import DatabaseSettings, KafkaSettings, Settings
from fraudrisk.io.kafka import ensure_topics, make_producer
from fraudrisk.monitoring.labels import kafka_labels, publish_labels
from fraudrisk.monitoring.performance import labelled_performance

pytestmark = pytest.mark.integration
GIVEN = dt.datetime(2018, 10, 8, 10)


@pytest.fixture()
def settings(kafka_settings: KafkaSettings) -> Settings:
    settings = Settings(kafka=unique_topics(kafka_settings))
    ensure_topics(settings)
    return settings


def label_rows(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": range(n),
            "tx_fraud": [i % 3 == 0 for i in range(n)],
            "customer_id": [i % 17 for i in range(n)],
            "terminal_id": [i % 29 for i in range(n)],
            "tx_datetime": pd.Timestamp("2018-10-01") + pd.to_timedelta(range(n), unit="min"),
        }
    ).astype({"tx_fraud": "int64"})


def test_labels_round_trip_and_later_verdicts_correct_earlier_ones(settings):
    rows = label_rows(300)
    assert publish_labels(settings, rows.assign(labelled_at=GIVEN)) == 300
    flipped = rows.head(10).assign(tx_fraud=lambda f: 1 - f["tx_fraud"])
    publish_labels(settings, flipped.assign(labelled_at=GIVEN + dt.timedelta(days=1)))
    producer = make_producer(settings)
    producer.produce(settings.kafka.labels_topic, key=b"7", value=b"{not a label")
    assert producer.flush(30) == 0

    known = kafka_labels(settings, as_of=GIVEN.date())
    assert (known.messages, known.invalid) == (311, 1)
    assert known.labels["transaction_id"].tolist() == list(range(300))
    assert known.labels["tx_fraud"].tolist() == rows["tx_fraud"].tolist()
    assert (known.labels["labelled_at"] == GIVEN).all()

    corrected = kafka_labels(settings, as_of=GIVEN.date() + dt.timedelta(days=1)).labels
    assert corrected["tx_fraud"].head(10).tolist() == flipped["tx_fraud"].tolist()
    assert corrected["tx_fraud"].iloc[10:].tolist() == rows["tx_fraud"].iloc[10:].tolist()
    assert kafka_labels(settings, as_of=GIVEN.date() - dt.timedelta(days=1)).labels.empty


def test_a_missing_labels_topic_is_a_clear_error(kafka_settings):
    missing = Settings(kafka=kafka_settings.model_copy(update={"labels_topic": "no-such-labels"}))
    with pytest.raises(ValueError, match="labels topic 'no-such-labels' does not exist"):
        kafka_labels(missing, as_of=GIVEN.date(), timeout_s=10)


@pytest.mark.slow
def test_performance_from_topic_labels_equals_performance_from_the_lake(settings, tmp_path):
    world = build_perf_world(tmp_path / "world")
    monitored = world.settings.model_copy(
        update={"kafka": settings.kafka, "db": DatabaseSettings(url=f"sqlite:///{tmp_path}/a.db")}
    )
    rows = world.days(50, 56)
    write_scores(monitored, rows, good_scores(rows), version=world.version)
    delay = pd.Timedelta(days=monitored.monitoring.label_delay_days)
    publish_labels(monitored, rows.assign(labelled_at=rows["tx_datetime"] + delay))
    uri = "models:/fraud-risk@champion"
    from_topic = labelled_performance(monitored, uri, day(50), day(56), day(60), labels="kafka")
    from_lake = labelled_performance(monitored, uri, day(50), day(56), day(60), labels="lake")
    assert from_topic.end == day(53) and len(from_topic.days) == 4
    assert from_topic.labels == {"topic": sum(d.transactions for d in from_topic.days)}
    assert from_lake.labels == {"lake": sum(d.transactions for d in from_lake.days)}
    assert from_topic.model_copy(update={"labels": {}}) == from_lake.model_copy(
        update={"labels": {}}
    )
