"""Sync mode: the registered champion scores in process; without a model, flagged rules decide."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry
from tests.unit.api.conftest import AppFactory, Registered
from tests.unit.api.helpers import WRITER_KEY, api_settings

from fraudrisk.schemas import Transaction
from fraudrisk.serving.prometheus import scorer_metrics
from fraudrisk.serving.variants import ServedVariants, ServiceSpec
from fraudrisk.serving.wire_protocol import transaction_batch

AUTH = {"X-API-Key": WRITER_KEY}


def bodies(registered: Registered, n: int) -> list[dict[str, object]]:
    rows = registered.rows.iloc[:n]
    return [
        {
            "transaction_id": int(r.transaction_id),
            "tx_datetime": r.tx_datetime.isoformat(),
            "customer_id": int(r.customer_id),
            "terminal_id": int(r.terminal_id),
            "tx_amount": float(r.tx_amount),
        }
        for r in rows.itertuples()
    ]


def champion(registered: Registered) -> ServedVariants:
    variants = ServedVariants(
        ServiceSpec("models:/fraud-risk@champion"),
        registered.settings,
        states=lambda _s: registered.states,
        metrics=scorer_metrics(CollectorRegistry()),
    )
    assert variants.load()
    return variants


def test_sync_scores_equal_the_scorer_on_the_same_batch(
    make_client: AppFactory, registered: Registered
) -> None:
    settings = registered.settings.model_copy(update={"api": api_settings()})
    sent = bodies(registered, 20)
    with make_client(settings=settings, scorer=champion(registered)) as client:
        single = client.post("/v1/transactions", json=sent[0], headers=AUTH)
        batch = client.post("/v1/transactions:batch", json={"transactions": sent}, headers=AUTH)
        ready = client.get("/readyz").json()
    assert single.status_code == 200 and batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["transaction_id"] for r in results] == [b["transaction_id"] for b in sent]
    assert {(r["model_version"], r["variant"], r["fallback"]) for r in results} == {
        ("1", "champion", False)
    }
    assert all(r["decision"] in ("approve", "review", "decline") for r in results)
    assert any(r["reason_codes"] and "feature" in r["reason_codes"][0] for r in results)
    direct = champion(registered).score(transaction_batch([Transaction(**b) for b in sent]))
    np.testing.assert_allclose([r["risk_score"] for r in results], direct.risk_score, rtol=1e-6)
    assert single.json() == results[0]
    assert ready["model"] == "loaded" and ready["model_versions"] == ["1"]


def test_without_a_loadable_model_rules_decide_flagged(make_client: AppFactory, tmp_path) -> None:
    """The default scorer: the registry has no champion and there is no Feast repo."""
    from fastapi.testclient import TestClient

    from fraudrisk.api.app import create_app
    from fraudrisk.config import MlflowSettings, Settings

    settings = Settings(home=tmp_path, mlflow=MlflowSettings(), api=api_settings(model_retry_s=600))
    with TestClient(create_app(settings)) as client:
        small = client.post("/v1/transactions", json=bodies_plain(25.0), headers=AUTH)
        large = client.post("/v1/transactions", json=bodies_plain(5000.0), headers=AUTH)
        ready = client.get("/readyz")
    assert small.status_code == 200 and large.status_code == 200
    assert small.json()["fallback"] is True and small.json()["decision"] == "approve"
    assert large.json()["decision"] == "decline" and large.json()["model_version"] == "rules"
    assert ready.status_code == 200 and ready.json()["model"] == "rules_only"


def bodies_plain(amount: float) -> dict[str, object]:
    return {
        "transaction_id": 5,
        "tx_datetime": "2024-05-01T12:00:00",
        "customer_id": 1,
        "terminal_id": 2,
        "tx_amount": amount,
    }
