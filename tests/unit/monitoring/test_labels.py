"""Delayed labels: the lake after the label delay, and the ``labels`` topic's messages."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from fraudrisk.config import KafkaSettings, Settings
from fraudrisk.data.fast import FastConfig
from fraudrisk.data.simulate import fast_days, write_days
from fraudrisk.features.stream import _REQUIRED as STREAM_FEATURES_REQUIRED
from fraudrisk.io.lake import Lake
from fraudrisk.monitoring.labels import (
    LabelMessage,
    decode_label,
    label_messages,
    labelled_through,
    lake_labels,
    latest_labels,
    publish_labels,
)

EPOCH = dt.date(2018, 4, 1)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """12 days of a small simulated world; day 11's labels are not known yet (null)."""
    lake = Lake.open(str(tmp_path_factory.mktemp("labels") / "lake"))
    lake.init(EPOCH)
    write_days(lake, fast_days(FastConfig(n_customers=100, n_terminals=200, nb_days=12)))
    last_day = EPOCH + dt.timedelta(days=11)
    rows = lake.read(last_day, last_day, include_labels=True)
    column = rows.schema.get_field_index("tx_fraud")
    lake.write_day(
        last_day, rows.set_column(column, "tx_fraud", pa.nulls(rows.num_rows, pa.int8()))
    )
    return lake


def test_the_lake_gives_only_labels_older_than_the_delay(lake):
    as_of = EPOCH + dt.timedelta(days=9)
    labels = lake_labels(lake, EPOCH, EPOCH + dt.timedelta(days=11), as_of, delay_days=7)
    assert labelled_through(as_of, 7) == EPOCH + dt.timedelta(days=2)
    expected = lake.read(EPOCH, EPOCH + dt.timedelta(days=2), include_labels=True)
    assert labels["transaction_id"].tolist() == expected["transaction_id"].to_pylist()
    assert labels["tx_fraud"].tolist() == expected["tx_fraud"].to_pylist()
    delay = labels["labelled_at"] - expected["tx_datetime"].to_pandas()
    assert (delay == dt.timedelta(days=7)).all()
    assert lake_labels(lake, EPOCH, EPOCH, EPOCH + dt.timedelta(days=6), 7).empty


def test_transactions_without_a_label_in_the_lake_are_left_out(lake):
    far = EPOCH + dt.timedelta(days=40)
    labels = lake_labels(lake, EPOCH + dt.timedelta(days=10), far, far, delay_days=7)
    day_10 = lake.read(EPOCH + dt.timedelta(days=10), EPOCH + dt.timedelta(days=10))
    assert labels["transaction_id"].tolist() == day_10["transaction_id"].to_pylist()


def test_lake_rows_become_messages_the_stream_feature_job_accepts(lake):
    rows = lake.read(EPOCH, EPOCH, include_labels=True).to_pandas().head(5)
    given = dt.datetime(2018, 4, 8, 12)
    messages = label_messages(rows, labelled_at=given)
    assert [m.transaction_id for m in messages] == rows["transaction_id"].tolist()
    assert all(m.labelled_at == given for m in messages)
    body = json.loads(messages[0].model_dump_json(exclude_none=True))
    assert set(STREAM_FEATURES_REQUIRED["labels"]) <= set(body)
    assert {"transaction_id", "tx_fraud", "labelled_at"} <= set(body)
    assert messages[0].key() == str(rows["customer_id"].iloc[0]).encode()


def test_an_invalid_label_row_is_refused_with_its_row_number(lake):
    rows = lake.read(EPOCH, EPOCH, include_labels=True).to_pandas().head(3)
    rows.loc[1, "tx_fraud"] = 2
    with pytest.raises(ValueError, match=r"1 invalid labels.*row 2: \('tx_fraud',\)"):
        label_messages(rows)


def test_decoding_takes_the_message_time_when_no_labelled_at():
    message = decode_label(b'{"transaction_id": 5, "tx_fraud": 1}', timestamp_ms=1_538_352_000_000)
    assert message.labelled_at == dt.datetime(2018, 10, 1)
    aware = decode_label(
        b'{"transaction_id": 5, "tx_fraud": 0, "labelled_at": "2018-10-01T02:00:00+02:00"}'
    )
    assert aware.labelled_at == dt.datetime(2018, 10, 1)


@pytest.mark.parametrize(
    "value",
    [
        b"{not json",
        b"[1]",
        b'{"transaction_id": 5}',
        b'{"transaction_id": 5, "tx_fraud": 3}',
        b'{"transaction_id": -1, "tx_fraud": 1}',
        None,
    ],
)
def test_a_message_that_is_not_a_label_is_refused(value):
    with pytest.raises(ValueError, match="not a label"):
        decode_label(value)


def test_the_latest_label_before_the_moment_wins():
    day = dt.datetime(2018, 10, 1)
    messages = [
        LabelMessage(transaction_id=1, tx_fraud=0, labelled_at=day),
        LabelMessage(transaction_id=1, tx_fraud=1, labelled_at=day + dt.timedelta(hours=5)),
        LabelMessage(transaction_id=2, tx_fraud=1, labelled_at=day + dt.timedelta(days=3)),
        LabelMessage(transaction_id=3, tx_fraud=1, labelled_at=day),
    ]
    known = latest_labels(messages, given_before=day + dt.timedelta(days=1))
    assert known[["transaction_id", "tx_fraud"]].values.tolist() == [[1, 1], [3, 1]]
    assert len(latest_labels(messages, given_before=day)) == 0


class RecordingProducer:
    """Stands in for confluent_kafka.Producer in this unit test (the broker test is real)."""

    def __init__(self, undelivered: int = 0) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.undelivered = undelivered

    def produce(self, topic: str, key: bytes, value: bytes, headers: object = None) -> None:
        self.sent.append((topic, key, value))

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        return self.undelivered


def test_publish_sends_one_keyed_message_per_label(lake):
    settings = Settings(kafka=KafkaSettings(labels_topic="labels-test"))
    rows = lake.read(EPOCH, EPOCH, include_labels=True).to_pandas().head(4)
    producer = RecordingProducer()
    assert publish_labels(settings, rows, producer=producer) == 4
    assert {topic for topic, _, _ in producer.sent} == {"labels-test"}
    keys = [key for _, key, _ in producer.sent]
    assert keys == [str(c).encode() for c in rows["customer_id"]]
    bodies = [json.loads(value) for _, _, value in producer.sent]
    assert [b["tx_fraud"] for b in bodies] == rows["tx_fraud"].tolist()
    with pytest.raises(RuntimeError, match="2 of 4 labels not delivered"):
        publish_labels(settings, rows, producer=RecordingProducer(undelivered=2))
