"""WS /v1/stream: authenticated subscribers receive the sync decisions; slow ones are dropped."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.unit.api.conftest import AppFactory
from tests.unit.api.helpers import (
    READER_KEY,
    WRITER_KEY,
    RsaKeys,
    receive_within,
    token,
    transaction,
)

from fraudrisk.api.subscriptions import (
    CLOSE_BAD_REQUEST,
    CLOSE_FORBIDDEN,
    CLOSE_TOO_SLOW,
    CLOSE_UNAUTHENTICATED,
)

pytestmark = pytest.mark.timeout(60)
WRITER = {"X-API-Key": WRITER_KEY}


def next_json(ws: Any) -> dict[str, Any]:
    message = receive_within(ws, 10)
    assert message["type"] == "websocket.send", message
    data: dict[str, Any] = json.loads(message["text"])
    return data


def closed_with(ws: Any) -> int:
    message = receive_within(ws, 10)
    assert message["type"] == "websocket.close", message
    return int(message["code"])


def test_subscribers_receive_sync_scores_and_alerts(make_client: AppFactory) -> None:
    with (
        make_client() as client,
        client.websocket_connect("/v1/stream", headers={"X-API-Key": READER_KEY}) as ws,
    ):
        hello = next_json(ws)
        batch = [transaction(1, tx_amount=12.0), transaction(2, tx_amount=400.0)]
        response = client.post(
            "/v1/transactions:batch", json={"transactions": batch}, headers=WRITER
        )
        events = [next_json(ws) for _ in range(3)]
    assert hello == {"type": "subscribed", "client": "reader", "events": ["alert", "score"]}
    assert response.status_code == 200
    kinds = [
        (e["type"], e["source"], e["data"]["transaction_id"], e["data"]["decision"]) for e in events
    ]
    assert kinds == [
        ("score", "api", 1, "approve"),
        ("score", "api", 2, "review"),
        ("alert", "api", 2, "review"),
    ]
    assert events[1]["data"]["customer_id"] == 42 and events[1]["data"]["fallback"] is True


def test_auth_by_first_message_and_alert_filter(make_client: AppFactory, keys: RsaKeys) -> None:
    with make_client() as client, client.websocket_connect("/v1/stream?events=alert") as ws:
        ws.send_json({"type": "auth", "token": token(keys)})
        hello = next_json(ws)
        client.post(
            "/v1/transactions:batch",
            headers=WRITER,
            json={
                "transactions": [transaction(1, tx_amount=12.0), transaction(2, tx_amount=5000.0)]
            },
        )
        event = next_json(ws)
    assert hello["client"] == "jwt:svc-1" and hello["events"] == ["alert"]
    assert (event["type"], event["data"]["transaction_id"], event["data"]["decision"]) == (
        "alert",
        2,
        "decline",
    )


@pytest.mark.parametrize(
    ("path", "first", "code"),
    [
        ("/v1/stream", {"type": "auth", "api_key": "wrong"}, CLOSE_UNAUTHENTICATED),
        ("/v1/stream", {"type": "hello"}, CLOSE_UNAUTHENTICATED),
        ("/v1/stream?events=gossip", None, CLOSE_BAD_REQUEST),
    ],
    ids=["bad-key", "no-auth-message", "bad-events"],
)
def test_refused_subscribers_are_closed_with_a_code(
    make_client: AppFactory, path: str, first: dict[str, str] | None, code: int
) -> None:
    with make_client(ws_auth_timeout_s=2) as client, client.websocket_connect(path) as ws:
        if first is not None:
            ws.send_json(first)
        assert closed_with(ws) == code


def test_a_subscriber_without_the_scope_is_closed_4403(make_client: AppFactory) -> None:
    from fraudrisk.api.auth import SCOPE_WRITE, hash_api_key
    from fraudrisk.config import ApiKeySettings

    only_write = ApiKeySettings(client="w", key_hash=hash_api_key("w-key"), scopes=[SCOPE_WRITE])
    with (
        make_client(keys=[only_write]) as client,
        client.websocket_connect("/v1/stream", headers={"X-API-Key": "w-key"}) as ws,
    ):
        assert closed_with(ws) == CLOSE_FORBIDDEN


def test_silence_after_connect_times_out_unauthenticated(make_client: AppFactory) -> None:
    with make_client(ws_auth_timeout_s=0.3) as client, client.websocket_connect("/v1/stream") as ws:
        assert closed_with(ws) == CLOSE_UNAUTHENTICATED


def test_a_slow_subscriber_is_dropped_and_scoring_goes_on(make_client: AppFactory) -> None:
    batch = {"transactions": [transaction(i, tx_amount=300.0) for i in range(5)]}  # 10 events
    with make_client(ws_queue_size=3) as client:
        with client.websocket_connect("/v1/stream", headers=WRITER) as ws:
            next_json(ws)
            response = client.post("/v1/transactions:batch", json=batch, headers=WRITER)
            code = closed_with(ws)
        metrics = client.get("/metrics").text
        after = client.post("/v1/transactions:batch", json=batch, headers=WRITER)
    assert response.status_code == 200 and after.status_code == 200
    assert code == CLOSE_TOO_SLOW
    assert 'fraudrisk_api_ws_dropped_total{reason="too_slow"} 1.0' in metrics
    assert "fraudrisk_api_ws_subscribers 0.0" in metrics


def test_negative_control_a_queue_big_enough_keeps_the_subscriber(make_client: AppFactory) -> None:
    batch = {"transactions": [transaction(i, tx_amount=300.0) for i in range(5)]}
    with (
        make_client(ws_queue_size=10) as client,
        client.websocket_connect("/v1/stream", headers=WRITER) as ws,
    ):
        next_json(ws)
        client.post("/v1/transactions:batch", json=batch, headers=WRITER)
        events = [next_json(ws) for _ in range(10)]
    assert len(events) == 10


def test_disconnect_is_clean(make_client: AppFactory) -> None:
    with make_client() as client:
        with client.websocket_connect("/v1/stream", headers=WRITER) as ws:
            next_json(ws)
        response = client.post("/v1/transactions", json=transaction(), headers=WRITER)
        metrics = client.get("/metrics").text
    assert response.status_code == 200
    assert "fraudrisk_api_ws_subscribers 0.0" in metrics
