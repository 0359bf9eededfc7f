"""Async mode: 202 only once Kafka acknowledged; any delivery failure is a 503, never a drop."""

from __future__ import annotations

import json
import time

import pytest
from tests.unit.api.conftest import AppFactory
from tests.unit.api.helpers import WRITER_KEY, FakeProducer, transaction

AUTH = {"X-API-Key": WRITER_KEY}


def test_202_with_the_ids_and_the_stream_scorers_message_format(make_client: AppFactory) -> None:
    producer = FakeProducer()
    with make_client(kafka_enabled=True, default_mode="async", producer=producer) as client:
        single = client.post("/v1/transactions", json=transaction(7, currency="EUR"), headers=AUTH)
        batch = client.post(
            "/v1/transactions:batch",
            headers=AUTH,
            json={"transactions": [transaction(8), transaction(9, customer_id=5)]},
        )
        metrics = client.get("/metrics").text
    assert single.status_code == 202 and single.json() == {
        "transaction_id": 7,
        "status": "accepted",
    }
    assert batch.status_code == 202 and batch.json()["transaction_ids"] == [8, 9]
    topics = {topic for topic, _, _ in producer.messages}
    assert topics == {"transactions"}
    keys = [key for _, key, _ in producer.messages]
    assert keys == [b"42", b"42", b"5"]
    first = json.loads(producer.messages[0][2])
    assert first == {
        "transaction_id": 7,
        "tx_datetime": "2024-05-01T12:00:00",
        "customer_id": 42,
        "terminal_id": 7,
        "tx_amount": 25.0,
        "currency": "EUR",
    }
    assert 'fraudrisk_api_transactions_total{mode="async"} 3.0' in metrics


@pytest.mark.parametrize(
    "producer",
    [FakeProducer(fail="Broker: Not enough in-sync replicas"), FakeProducer(refuse=True)],
    ids=["delivery-failed", "queue-full"],
)
def test_a_delivery_failure_is_a_503(make_client: AppFactory, producer: FakeProducer) -> None:
    with make_client(kafka_enabled=True, producer=producer) as client:
        response = client.post(
            "/v1/transactions", json=transaction(), headers=AUTH, params={"mode": "async"}
        )
        batch = client.post(
            "/v1/transactions:batch",
            headers=AUTH,
            params={"mode": "async"},
            json={"transactions": [transaction(1), transaction(2)]},
        )
    assert response.status_code == 503
    assert "not acknowledged by Kafka" in response.json()["detail"]
    assert response.headers["Retry-After"] == "1"
    assert batch.status_code == 503 and "2 of 2" in batch.json()["detail"]
    assert producer.messages == []


def test_no_acknowledgement_in_time_is_a_503(make_client: AppFactory) -> None:
    producer = FakeProducer(silent=True)
    with make_client(kafka_enabled=True, producer=producer, delivery_timeout_s=0.2) as client:
        began = time.monotonic()
        response = client.post(
            "/v1/transactions", json=transaction(), headers=AUTH, params={"mode": "async"}
        )
        waited = time.monotonic() - began
        ready = client.get("/readyz").json()
    assert response.status_code == 503 and "no acknowledgement in time" in response.text
    assert 1.0 < waited < 5.0
    assert ready["kafka"] == "unreachable"


def test_async_by_default_is_not_ready_without_kafka(make_client: AppFactory) -> None:
    with make_client(
        kafka_enabled=True, default_mode="async", producer=FakeProducer(silent=True)
    ) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["ready"] is False


def test_negative_control_a_working_producer_gives_202_in_the_same_setup(
    make_client: AppFactory,
) -> None:
    with make_client(kafka_enabled=True, producer=FakeProducer()) as client:
        response = client.post(
            "/v1/transactions", json=transaction(), headers=AUTH, params={"mode": "async"}
        )
    assert response.status_code == 202
