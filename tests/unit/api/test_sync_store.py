"""Sync mode writes its scores and alerts to the alert store, off the request path.

The API in process (Starlette's TestClient, lifespan on) over the fallback rules (review from
220, decline from 1,000) and a real SQLite alert store under a temporary HOME.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.unit.api.helpers import (
    TEST_PAN,
    TOKEN_KEY,
    WRITER_KEY,
    api_settings,
    rules_only,
    settings_with,
    transaction,
)
from tests.unit.api.store_doubles import RecordingStore, eventually

from fraudrisk.alerts.store import AlertStore
from fraudrisk.api.app import create_app
from fraudrisk.config import Settings

AUTH = {"X-API-Key": WRITER_KEY}
AMOUNTS = (25.0, 240.0, 1500.0)  # approve, review, decline by the fallback rules


def settings_in(home: Path, **api: Any) -> Settings:
    return settings_with(api_settings(store_flush_interval_s=0.02, **api), home=home)


@contextmanager
def served(settings: Settings, **app: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings, scorer=rules_only(settings), relay=False, **app)) as c:
        yield c


def bodies(first: int, count: int, **fields: Any) -> list[dict[str, Any]]:
    return [
        transaction(i, tx_amount=AMOUNTS[i % 3], customer_id=i % 9, **fields)
        for i in range(first, first + count)
    ]


def test_sync_scores_and_alerts_reach_the_store_without_card_data(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    with served(settings) as client:
        one = client.post(
            "/v1/transactions", json=transaction(1, card_number=TEST_PAN), headers=AUTH
        )
        batch = client.post(
            "/v1/transactions:batch",
            json={"transactions": bodies(2, 59, pan=TEST_PAN)},
            headers=AUTH,
        )
        ready = client.get("/readyz").json()
    # the lifespan's shutdown flushed the writer: everything is in the store now
    assert one.status_code == 200 and batch.status_code == 200, batch.text
    answers = [one.json(), *batch.json()["results"]]
    store = AlertStore(settings.db_url)
    assert sorted(store.transaction_ids()) == list(range(1, 61))
    alerted = sorted(a["transaction_id"] for a in answers if a["decision"] != "approve")
    assert sorted(store.transaction_ids("alerts")) == alerted
    assert {a["decision"] for a in answers} == {"approve", "review", "decline"}
    top = store.top_alerts(1)[0]
    assert top["decision"] == "decline"
    assert top["priority"] == pytest.approx(1500.0 * top["risk_score"], abs=1e-4)
    assert ready["alert_store"] == "ok"
    raw = b"".join(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    assert TEST_PAN.encode() not in raw and TOKEN_KEY.encode() not in raw
    assert b"card_token" not in raw


def test_a_store_whose_writes_block_does_not_delay_a_response(tmp_path: Path) -> None:
    store = RecordingStore(AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}"), blocking=True)
    settings = settings_in(tmp_path)
    with served(settings, alert_store=lambda: store) as client:
        client.post("/v1/transactions", json=transaction(1), headers=AUTH)
        eventually(store.entered.is_set, what="the writer in its (blocked) write")
        took = []
        for body in bodies(2, 30):
            began = time.perf_counter()
            response = client.post("/v1/transactions", json=body, headers=AUTH)
            took.append(time.perf_counter() - began)
            assert response.status_code == 200
        metrics = client.get("/metrics").text
        store.release.set()
    assert max(took) < 1.0, took  # the blocked write would hold a request for 30 s
    assert "fraudrisk_api_store_queue_depth 30.0" in metrics
    assert store.threads == {"api-store-writer"}  # the only thread that touched the store
    assert store.ids() == list(range(1, 32))


def test_the_writer_reports_its_metrics_and_state(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, store_retry_s=0.05)
    down = settings.model_copy(
        update={"db": settings.db.model_copy(update={"url": f"sqlite:///{tmp_path}/no/db.sqlite"})}
    )
    with served(down) as client:
        client.post("/v1/transactions:batch", json={"transactions": bodies(1, 12)}, headers=AUTH)
        eventually(lambda: client.get("/readyz").json()["alert_store"] == "spooling")
        ready = client.get("/readyz")
        (tmp_path / "no").mkdir()
        eventually(lambda: client.get("/readyz").json()["alert_store"] == "ok", what="replayed")
        metrics = client.get("/metrics").text
    assert ready.status_code == 200  # a store outage never makes the API unready
    for line in (
        "fraudrisk_api_store_queued_total 12.0",
        'fraudrisk_api_store_spooled_total{reason="store_down"} 12.0',
        'fraudrisk_api_store_written_total{path="replay"} 12.0',
        "fraudrisk_api_store_spool_pending 0.0",
        "fraudrisk_api_store_lost_total 0.0",
    ):
        assert line in metrics, line
    assert 'fraudrisk_api_store_write_errors_total{kind="unavailable"}' in metrics
    assert AlertStore(down.db_url).count() == 12


def test_without_store_scores_nothing_is_written(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, store_scores=False)
    with served(settings) as client:
        answer = client.post("/v1/transactions", json=transaction(1), headers=AUTH)
        ready = client.get("/readyz").json()
    assert answer.status_code == 200 and ready["alert_store"] == "disabled"
    assert not list(tmp_path.iterdir())
