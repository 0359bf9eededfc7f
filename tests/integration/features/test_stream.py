"""Online = offline, proven: Kafka → Spark Structured Streaming → Feast, against the batch job.

10 simulated days of transactions and delayed labels are replayed through a real broker in two
runs sharing one checkpoint (a stop and restart in the middle), with malformed messages mixed
in. Then, for every transaction, the feature vector a scorer computes from the online state
must equal the batch feature row.
"""

import datetime as dt
import json
import time
import uuid

import numpy as np
import pytest

from fraudrisk.config import FeastSettings, KafkaSettings, Settings
from fraudrisk.data.fast import FastConfig
from fraudrisk.data.simulate import fast_days, write_days
from fraudrisk.features import feast_store, kernel
from fraudrisk.features.batch import build_features
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.features.online import IncomingTransaction, feature_vector
from fraudrisk.features.stream import _customer, _terminal, start_stream
from fraudrisk.features.table import FeatureTable
from fraudrisk.io.kafka import ensure_topics, make_consumer
from fraudrisk.io.lake import Lake
from fraudrisk.jobs.replay import Message, produce, replay_messages

pytestmark = pytest.mark.integration
MALFORMED = [b"{not json", json.dumps({"transaction_id": 1, "customer_id": 2}).encode()]


@pytest.fixture(scope="module")
def world(spark, kafka_broker, tmp_path_factory):
    home = tmp_path_factory.mktemp("stream-home")
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(
        bootstrap_servers=kafka_broker,
        transactions_topic=f"tx-{tag}",
        labels_topic=f"labels-{tag}",
        dlq_topic=f"dlq-{tag}",
        scores_topic=f"scores-{tag}",
        alerts_topic=f"alerts-{tag}",
    )
    settings = Settings(home=home, kafka=kafka, feast=FeastSettings())
    ensure_topics(settings)
    lake = Lake.open(str(home / "lake"))
    lake.init(dt.date(2018, 4, 1))
    write_days(lake, fast_days(FastConfig(n_customers=150, n_terminals=300, nb_days=10, seed=4)))
    table_uri = str(home / "features")
    build_features(spark, lake.storage.root, table_uri)
    feast_store.apply(settings, table_uri)
    rows = lake.read(include_labels=True)
    messages = replay_messages(rows, settings)
    half = len(messages) // 2
    checkpoint = str(home / "checkpoint")
    runs = []
    malformed = [Message(kafka.transactions_topic, b"x", raw, 0) for raw in MALFORMED]
    for part in (messages[:half], messages[half:] + malformed):
        produce(settings, part)
        query, updater = start_stream(
            spark, settings, checkpoint, available_now=True, max_offsets=700
        )
        query.awaitTermination(300)
        runs.append(updater.history)
    return settings, rows, messages, runs, FeatureTable.open(table_uri).read().to_pandas()


def test_restart_from_checkpoint_loses_and_double_counts_nothing(world):
    settings, rows, messages, runs, _ = world
    assert all(len(history) >= 2 for history in runs)  # several micro-batches per run
    transactions = sum(b.transactions for h in runs for b in h)
    labels = sum(b.labels for h in runs for b in h)
    assert transactions == rows.num_rows
    assert labels == sum(m.topic == settings.kafka.labels_topic for m in messages) > 0
    assert sum(b.rejected for h in runs for b in h) == len(MALFORMED)
    consumer = make_consumer(settings, f"dlq-check-{uuid.uuid4().hex[:6]}")
    consumer.subscribe([settings.kafka.dlq_topic])
    dead = []
    deadline = time.monotonic() + 30
    while len(dead) < len(MALFORMED) and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and not message.error():
            dead.append(json.loads(message.value()))
    consumer.close()
    assert sorted(d["raw"] for d in dead) == sorted(raw.decode() for raw in MALFORMED)
    assert all(d["reason"].startswith("missing or invalid") for d in dead)


def online_vectors(settings, rows):
    store = feast_store.get_store(settings)
    frame = rows.to_pandas()
    customers = {
        r["customer_id"]: _customer(r)
        for r in feast_store.lookup(store, "customer", sorted(set(frame.customer_id)))
    }
    terminals = {
        r["terminal_id"]: _terminal(r)
        for r in feast_store.lookup(store, "terminal", sorted(set(frame.terminal_id)))
    }
    seconds = frame.tx_datetime.values.astype("datetime64[s]").astype(np.int64)
    vectors = []
    for row, second in zip(frame.itertuples(), seconds, strict=True):
        tx = IncomingTransaction(
            row.transaction_id, int(second), row.customer_id, row.terminal_id, row.tx_amount
        )
        vectors.append(feature_vector(tx, customers[row.customer_id], terminals[row.terminal_id]))
    return frame.transaction_id.to_numpy(), vectors


def mismatches(batch, ids, vectors) -> int:
    batch = batch.set_index("transaction_id").loc[ids]
    bad = 0
    for name in FEATURE_NAMES:
        online = np.array([v[name] for v in vectors])
        bad += int(np.sum(~np.isclose(online, batch[name].to_numpy(dtype=float), rtol=1e-9)))
    return bad


def test_online_vector_equals_the_batch_row_for_every_transaction(world):
    settings, rows, _, _, batch = world
    ids, vectors = online_vectors(settings, rows)
    assert len(vectors) == rows.num_rows > 2_000
    assert mismatches(batch, ids, vectors) == 0


def test_negative_control_one_side_changed_is_caught(world, monkeypatch):
    settings, rows, _, _, batch = world
    monkeypatch.setattr(kernel, "LABEL_DELAY_DAYS", 6)  # the online side leaks labels a day early
    ids, vectors = online_vectors(settings, rows)
    assert mismatches(batch, ids, vectors) > 100


def test_freshness_bound(world, spark, tmp_path):
    settings = world[0]
    query, _ = start_stream(spark, settings, str(tmp_path / "live"), interval_seconds=1.0)
    try:
        query.processAllAvailable()
        tx_id = 10**12 + 1
        value = {
            "transaction_id": tx_id,
            "tx_datetime": "2018-04-11T12:00:00",
            "customer_id": 3,
            "terminal_id": 5,
            "tx_amount": 12.5,
        }
        sent = time.monotonic()
        produce(
            settings,
            [Message(settings.kafka.transactions_topic, b"3", json.dumps(value).encode(), 0)],
        )
        store = feast_store.get_store(settings)
        while time.monotonic() - sent < 60:
            state = feast_store.lookup(store, "customer", [3])[0]
            if tx_id in (state.get("event_ids") or []):
                break
            time.sleep(0.2)
        latency = time.monotonic() - sent
    finally:
        query.stop()
    print(f"freshness: produced → visible in the online store in {latency:.2f} s")
    assert latency < 30, f"online state took {latency:.1f} s to reflect a transaction"
