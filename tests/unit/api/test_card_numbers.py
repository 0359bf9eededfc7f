"""Card numbers: keyed tokens at the edge, and the PAN nowhere — responses, logs, Kafka, events."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from pydantic import SecretStr
from tests.unit.api.conftest import AppFactory
from tests.unit.api.helpers import (
    TEST_PAN,
    TOKEN_KEY,
    WRITER_KEY,
    FakeProducer,
    receive_within,
    transaction,
)

from fraudrisk.api.tokens import PanTokenizer, luhn_valid, normalise_pan, redact_card_numbers

AUTH = {"X-API-Key": WRITER_KEY}
#: The PAN as digits, and as it could be spelled anywhere (spaces, dashes).
PAN_PATTERN = re.compile(r"4\D?1\D?1\D?1\D?1\D?1\D?1\D?1\D?1\D?1\D?1\D?1\D?1\D?1\D?1\D?1")


def contains_pan(text: str) -> bool:
    return bool(PAN_PATTERN.search(text))


def test_luhn() -> None:
    assert luhn_valid(TEST_PAN) and luhn_valid("5555555555554444") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112") and not luhn_valid("41111111111111a1")
    assert normalise_pan("4111 1111-1111 1111") == TEST_PAN
    for bad in ("4111111111111112", "41111", "4111x111111111111", "4" * 25):
        with pytest.raises(ValueError) as raised:
            normalise_pan(bad)
        assert bad not in str(raised.value)


def test_tokens_are_stable_per_key_and_differ_across_keys() -> None:
    first = PanTokenizer(SecretStr(TOKEN_KEY))
    again = PanTokenizer(SecretStr(TOKEN_KEY))
    other = PanTokenizer(SecretStr("another-card-token-key-9876543210"))
    token = first.token(SecretStr(TEST_PAN))
    assert token == again.token(SecretStr("4111-1111-1111-1111"))
    assert token != other.token(SecretStr(TEST_PAN))
    assert token != first.token(SecretStr("5555555555554444"))
    assert re.fullmatch(r"ct1_[0-9a-f]{64}", token) and not contains_pan(token)
    assert TOKEN_KEY not in repr(first)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        PanTokenizer(SecretStr("short"))


def test_redaction_keeps_ordinary_numbers() -> None:
    assert redact_card_numbers(f"field {TEST_PAN}!") == "field <redacted card number>!"
    assert redact_card_numbers("limit 9223372036854775807") == "limit 9223372036854775807"


def test_without_a_token_key_card_numbers_are_refused(make_client: AppFactory) -> None:
    with make_client(pan_token_key=SecretStr("")) as client:
        refused = client.post("/v1/transactions", json=transaction(pan=TEST_PAN), headers=AUTH)
        plain = client.post("/v1/transactions", json=transaction(), headers=AUTH)
        ready = client.get("/readyz").json()
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "card_number"
    assert "no token key configured" in refused.json()["errors"][0]["message"]
    assert not contains_pan(refused.text)
    assert plain.status_code == 200 and ready["card_tokens"] is False


def _exercise(client: Any, producer: FakeProducer) -> list[str]:
    """Send the PAN every way a client could; return every response text and header."""
    texts: list[str] = []
    requests: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("/v1/transactions", transaction(1, card_number=TEST_PAN), {"mode": "sync"}),
        ("/v1/transactions", transaction(2, PAN="4111 1111 1111 1111"), {"mode": "async"}),
        ("/v1/transactions", transaction(3, pan="4111111111111112"), {}),  # Luhn fails
        ("/v1/transactions", transaction(4, pan=4111111111111111), {}),  # not a string
        ("/v1/transactions", transaction(5, card_no=TEST_PAN, pan=TEST_PAN), {}),  # two fields
        ("/v1/transactions", transaction(6, card_token=TEST_PAN), {}),  # a PAN as token
        ("/v1/transactions", transaction(7, card_number=TEST_PAN, tx_amount=-1), {}),
        ("/v1/transactions", transaction(8) | {TEST_PAN: 1}, {}),  # the PAN as a field name
        ("/v1/transactions", transaction(9), {"pan": TEST_PAN}),  # in the query string
        (
            "/v1/transactions:batch",
            {
                "transactions": [
                    transaction(10, pan=TEST_PAN),
                    transaction(11, primary_account_number=TEST_PAN),
                ]
            },
            {"mode": "async"},
        ),
    ]
    for path, body, params in requests:
        response = client.post(path, json=body, params=params, headers=AUTH)
        texts += [response.text, json.dumps(dict(response.headers))]
    texts.append(client.get("/metrics").text)
    texts += [
        json.dumps([topic, key.decode(), value.decode()]) for topic, key, value in producer.messages
    ]
    return texts


def test_no_pan_in_responses_logs_kafka_or_events(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    producer = FakeProducer()
    with (
        make_client(kafka_enabled=True, producer=producer) as client,
        client.websocket_connect("/v1/stream", headers=AUTH) as ws,
    ):
        assert receive_within(ws, 10)["type"] == "websocket.send"
        texts = _exercise(client, producer)
        events = [receive_within(ws, 10)["text"] for _ in range(2)]  # the 2 sync scores
    server = [r for r in caplog.records if not r.name.startswith("httpx")]  # not the client's
    logs = [f"{r.getMessage()} {r.args} {r.exc_text}" for r in server]
    assert any(r.name == "fraudrisk.api.access" for r in caplog.records)  # logs were captured
    # negative control: the test client's own log of the ?pan= request is caught by the scan
    assert any(contains_pan(r.getMessage()) for r in caplog.records if r.name.startswith("httpx"))
    assert len(producer.messages) == 3  # id 2, 10, 11 produced, each with a token
    tokens = {json.loads(value)["card_token"] for _, _, value in producer.messages}
    assert tokens == {PanTokenizer(SecretStr(TOKEN_KEY)).token(SecretStr(TEST_PAN))}
    found = [text for text in texts + events + logs if contains_pan(text)]
    assert found == []


def test_negative_control_the_detector_finds_a_pan() -> None:
    body = json.dumps(transaction(2, PAN="4111 1111 1111 1111"))
    assert (
        contains_pan(body) and contains_pan(f"x{TEST_PAN}x") and contains_pan("4111-1111-1111-1111")
    )
    assert not contains_pan(PanTokenizer(SecretStr(TOKEN_KEY)).token(SecretStr(TEST_PAN)))
