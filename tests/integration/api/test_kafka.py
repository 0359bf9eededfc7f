"""The Transaction API against a real Kafka broker (loopback): async mode lands transactions in
the topic with the card token, never the PAN; a broker that cannot be reached is a 503; the
WebSocket relays what the stream scorer publishes on the scores and alerts topics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from tests.support.stream import read_topic, unique_topics
from tests.unit.api.helpers import (
    TEST_PAN,
    TOKEN_KEY,
    WRITER_KEY,
    api_settings,
    receive_within,
    rules_only,
    settings_with,
    transaction,
)

from fraudrisk.api.app import create_app
from fraudrisk.api.tokens import PanTokenizer
from fraudrisk.config import KafkaSettings
from fraudrisk.io.kafka import ensure_topics, make_producer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
AUTH = {"X-API-Key": WRITER_KEY}


@pytest.fixture()
def topics(kafka_settings: KafkaSettings) -> KafkaSettings:
    kafka = unique_topics(kafka_settings).model_copy(update={"partitions": 2})
    ensure_topics(kafka)
    return kafka


@pytest.fixture()
def client(topics: KafkaSettings) -> Iterator[TestClient]:
    settings = settings_with(api_settings(kafka_enabled=True, default_mode="async"), topics)
    app = create_app(settings, scorer=rules_only(settings), relay=True)
    with TestClient(app) as test_client:
        yield test_client


def test_async_mode_lands_tokens_never_pans(client: TestClient, topics: KafkaSettings) -> None:
    single = client.post(
        "/v1/transactions", json=transaction(101, card_number=TEST_PAN), headers=AUTH
    )
    batch = client.post(
        "/v1/transactions:batch",
        headers=AUTH,
        json={
            "transactions": [
                transaction(102, pan="4111 1111 1111 1111", customer_id=7),
                transaction(103),
            ]
        },
    )
    assert single.status_code == 202 and batch.status_code == 202, batch.text
    raw = read_topic(topics, topics.transactions_topic, timeout_s=30)
    assert not any(TEST_PAN.encode() in value for value in raw)
    messages = {m["transaction_id"]: m for m in map(json.loads, raw)}
    assert set(messages) == {101, 102, 103}
    token = PanTokenizer(SecretStr(TOKEN_KEY)).token(SecretStr(TEST_PAN))
    assert messages[101]["card_token"] == messages[102]["card_token"] == token
    assert "card_token" not in messages[103]
    assert (
        messages[102]["customer_id"] == 7 and messages[101]["tx_datetime"] == "2024-05-01T12:00:00"
    )


def test_an_unreachable_broker_is_a_503(topics: KafkaSettings) -> None:
    nowhere = topics.model_copy(update={"bootstrap_servers": "127.0.0.1:1"})
    settings = settings_with(api_settings(kafka_enabled=True, delivery_timeout_s=1.0), nowhere)
    app = create_app(settings, scorer=rules_only(settings), relay=False)
    with TestClient(app) as test_client:
        began = time.monotonic()
        response = test_client.post(
            "/v1/transactions", json=transaction(), headers=AUTH, params={"mode": "async"}
        )
        waited = time.monotonic() - began
        ready = test_client.get("/readyz").json()
    assert response.status_code == 503, response.text
    assert waited < 10 and ready["kafka"] == "unreachable"


def _wait_assigned(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while client.get("/readyz").json()["stream_relay"] != "assigned":
        assert time.monotonic() < deadline, "the relay was never assigned"
        time.sleep(0.2)


def _publish(topics: KafkaSettings, records: list[tuple[str, dict[str, Any]]]) -> None:
    producer = make_producer(topics)
    for topic, record in records:
        producer.produce(
            topic, key=str(record["customer_id"]).encode(), value=json.dumps(record).encode()
        )
    assert producer.flush(30) == 0


def test_the_websocket_relays_the_stream_scorers_results(
    client: TestClient, topics: KafkaSettings
) -> None:
    _wait_assigned(client)
    score = {
        "transaction_id": 501,
        "customer_id": 3,
        "risk_score": 0.02,
        "decision": "approve",
        "reason_codes": [],
        "model_version": "4",
        "variant": "champion",
        "fallback": False,
    }
    alert = score | {"transaction_id": 502, "risk_score": 0.93, "decision": "decline"}
    with client.websocket_connect("/v1/stream", headers=AUTH) as ws:
        assert json.loads(receive_within(ws, 10)["text"])["type"] == "subscribed"
        _publish(
            topics,
            [
                (topics.scores_topic, score),
                (topics.scores_topic, alert),
                (topics.alerts_topic, alert),
            ],
        )
        events = [json.loads(receive_within(ws, 30)["text"]) for _ in range(3)]
    seen = sorted((e["type"], e["source"], e["data"]["transaction_id"]) for e in events)
    assert seen == [("alert", "stream", 502), ("score", "stream", 501), ("score", "stream", 502)]
    assert next(e for e in events if e["type"] == "alert")["data"]["decision"] == "decline"
