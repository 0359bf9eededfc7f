"""Strict validation: each rule gives a 422 (or 413) naming the field, never echoing the value."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.unit.api.conftest import AppFactory
from tests.unit.api.helpers import WRITER_KEY, transaction

from fraudrisk.api.errors import field_path
from fraudrisk.api.models import TransactionIn

AUTH = {"X-API-Key": WRITER_KEY}
FUTURE = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S")

# field, bad value (distinctive, must not come back), fragment of the expected message
CASES: list[tuple[str, Any, str]] = [
    ("transaction_id", "9876543", "must be a JSON integer"),
    ("transaction_id", -9876543, "greater than or equal to 0"),
    ("customer_id", True, "must be a JSON integer"),
    ("terminal_id", 77.5, "must be a JSON integer"),
    ("tx_amount", -123456.789, "greater than or equal to 0"),
    ("tx_amount", "31337.5", "must be a JSON number"),
    ("tx_amount", None, "must be a JSON number"),
    ("currency", "QQQQ", "ISO 4217"),
    ("currency", "eur", "ISO 4217"),
    ("country", "XYZ", "ISO 3166-1"),
    ("merchant_category", "98765", "ISO 18245"),
    ("channel", "carrier-pigeon", "channel must be one of"),
    ("tx_datetime", "1999-12-31T23:59:59", "before 2000-01-01"),
    ("tx_datetime", FUTURE, "more than 1 day in the future"),
    ("tx_datetime", 1714567890, "ISO 8601"),
    ("tx_datetime", "yesterday-ish", "datetime"),
    ("tx_datetime", "2010-06-15T10:00:00", "before the lake epoch 2018-04-01"),
    ("tx_datetime", "0001-01-01T00:00:00+00:01", "before 2000-01-01"),  # found by schemathesis
    ("tx_datetime", "9999-12-31T23:59:59-00:30", "more than 1 day in the future"),
    ("tx_time_seconds", 8675309, "derived from tx_datetime"),
    ("card_token", "4111111111111111", "looks like a clear card number"),
    ("card_token", "Z" * 129, "at most 128 characters"),
    ("favourite_colour", "ultraviolet", "unknown field"),
]


def post(client: TestClient, body: Any, path: str = "/v1/transactions", **kw: Any) -> Any:
    return client.post(path, json=body, headers=AUTH, **kw)


@pytest.mark.parametrize(
    ("field", "value", "fragment"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_each_rule_names_the_field_and_never_echoes_the_value(
    make_client: AppFactory, field: str, value: Any, fragment: str
) -> None:
    with make_client() as client:
        response = post(client, transaction(**{field: value}))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["errors"][0]["field"] == field
    assert fragment in body["errors"][0]["message"], body
    if value is not None and not isinstance(value, bool):
        assert json.dumps(value).strip('"') not in response.text


def test_a_missing_field_is_named(make_client: AppFactory) -> None:
    body = transaction()
    del body["terminal_id"]
    with make_client() as client:
        response = post(client, body)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "terminal_id", "message": "Field required"}]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 400])
def test_non_finite_amounts_are_refused(make_client: AppFactory, literal: str) -> None:
    raw = json.dumps(transaction(tx_amount=0)).replace('"tx_amount": 0', f'"tx_amount": {literal}')
    with make_client() as client:
        response = client.post(
            "/v1/transactions", content=raw, headers=AUTH | {"Content-Type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json()["errors"][0] == {"field": "tx_amount", "message": "must be finite"}


def test_zero_amount_authorisations_and_zoned_times_are_valid(make_client: AppFactory) -> None:
    with make_client() as client:
        response = post(
            client,
            transaction(
                tx_amount=0,
                tx_datetime="2024-05-01T14:00:00+02:00",
                currency="EUR",
                country="FR",
                channel="ecom",
            ),
        )
    assert response.status_code == 200, response.text


def test_a_body_that_is_not_json_is_a_422(make_client: AppFactory) -> None:
    with make_client() as client:
        response = client.post(
            "/v1/transactions",
            content=b"{not json",
            headers=AUTH | {"Content-Type": "application/json"},
        )
    assert response.status_code == 422
    assert response.json()["errors"][0]["message"] == "the body is not valid JSON"


def test_an_unknown_mode_is_a_422_on_the_query_parameter(make_client: AppFactory) -> None:
    with make_client() as client:
        response = post(client, transaction(), params={"mode": "eventually"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query parameter mode"
    assert "eventually" not in response.text


def test_async_mode_without_kafka_is_a_400(make_client: AppFactory) -> None:
    with make_client() as client:
        response = post(client, transaction(), params={"mode": "async"})
    assert response.status_code == 400
    assert "async mode is disabled" in response.json()["detail"]


def test_batch_errors_name_the_row(make_client: AppFactory) -> None:
    batch = {"transactions": [transaction(1), transaction(2, tx_amount=-4.5), transaction(1)]}
    with make_client() as client:
        bad_row = post(client, batch, "/v1/transactions:batch")
        batch["transactions"][1]["tx_amount"] = 4.5
        repeated = post(client, batch, "/v1/transactions:batch")
        empty = post(client, {"transactions": []}, "/v1/transactions:batch")
    assert bad_row.status_code == 422
    assert bad_row.json()["errors"][0]["field"] == "transactions[1].tx_amount"
    assert repeated.status_code == 422
    assert repeated.json()["errors"] == [
        {"field": "transactions[2].transaction_id", "message": "repeats transactions[0]"}
    ]
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "transactions"


def test_size_limits_are_413(make_client: AppFactory) -> None:
    with make_client(max_batch=3, max_body_bytes=4096) as client:
        too_many = post(
            client, {"transactions": [transaction(i) for i in range(4)]}, "/v1/transactions:batch"
        )
        at_limit = post(
            client, {"transactions": [transaction(i) for i in range(3)]}, "/v1/transactions:batch"
        )
        big = json.dumps({"transactions": [transaction(i) for i in range(40)]}).encode()
        declared = client.post(
            "/v1/transactions:batch",
            content=big,
            headers=AUTH | {"Content-Type": "application/json"},
        )
        streamed = client.post(
            "/v1/transactions:batch",
            content=iter([big[:2000], big[2000:]]),
            headers=AUTH | {"Content-Type": "application/json"},
        )
    assert at_limit.status_code == 200
    assert too_many.status_code == 413
    assert "at most 3 per request" in too_many.json()["detail"]
    assert declared.status_code == 413
    assert streamed.status_code == 413, streamed.text
    assert "larger than 4096 bytes" in streamed.json()["detail"]


def test_field_paths_never_show_odd_client_keys() -> None:
    assert field_path(("body", "transactions", 2, "tx_amount")) == "transactions[2].tx_amount"
    assert field_path(("body", "4111111111111111")) == "<field>"
    assert field_path(("query", "mode")) == "query parameter mode"


def test_negative_control_fastapis_default_422_would_echo_the_value() -> None:
    """The echo assertions above can fail: FastAPI's own handler sends the input back."""
    plain = FastAPI()

    @plain.post("/t")
    async def endpoint(body: TransactionIn) -> None: ...

    response = TestClient(plain).post("/t", json=transaction(currency="QQQQ"))
    assert response.status_code == 422
    assert "QQQQ" in response.text
