"""The policy version on every answer: the sync Transaction API (and its alert-store rows) and
the KServe V1/V2 outputs; a shadow that declines everything changes none of them."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from tests.unit.api.helpers import WRITER_KEY, api_settings
from tests.unit.cases.case_doubles import CaseWorld, world
from tests.unit.policy.desk import approved
from tests.unit.policy.test_shadow import DECLINE_ALL
from tests.unit.scoring.served import Served
from tests.unit.serving.test_kserve_model import instances, v2_request

from fraudrisk.alerts.shadow import ShadowStore
from fraudrisk.alerts.store import SCORES, AlertStore, ScoreRecord
from fraudrisk.api.app import create_app
from fraudrisk.api.sync_mode import default_variants
from fraudrisk.cases.tables import CASES, QUEUES
from fraudrisk.config import DatabaseSettings, PolicySettings, Settings
from fraudrisk.policy.live import LivePolicy, live_policy
from fraudrisk.policy.versions import PolicyVersions
from fraudrisk.serving.kserve_model import FraudRiskModel, ServiceSpec
from fraudrisk.serving.variants import ServedVariants
from fraudrisk.serving.wire_protocol import NO_POLICY

CALM = "name: calm\nthresholds: {review: 0.5, decline: 0.97}\nalert_budget: 100\n"
STRICT = CALM.replace("calm", "strict") + (
    "rules:\n  - {name: big, when: amount >= 20, action: decline, reason: big}\n"
)
AUTH = {"X-API-Key": WRITER_KEY}


def settings_of(served: Served, url: str, shadow: int | None = None, **api: object) -> Settings:
    return served.settings.model_copy(
        update={
            "db": DatabaseSettings(url=url),
            "policy": PolicySettings(reload_seconds=0.05, shadow_version=shadow),
            "api": api_settings(**api),
        }
    )


def wait_for(live: LivePolicy, version: int) -> None:
    deadline = time.monotonic() + 10
    while live.version != version and time.monotonic() < deadline:
        time.sleep(0.02)
    assert live.version == version


def body(served: Served, start: int, n: int) -> dict[str, object]:
    return {"transactions": instances(served, n, start)["instances"]}


def test_the_sync_api_answers_and_stores_the_version_that_decided(
    served: Served, desk: tuple[CaseWorld, PolicyVersions]
) -> None:
    made, versions = desk
    calm, strict, shadow = (approved(desk, t) for t in (CALM, STRICT, DECLINE_ALL))
    versions.activate(made.principal("rob"), calm)
    settings = settings_of(served, made.url, shadow, store_scores=True)
    registry = CollectorRegistry()
    live = live_policy(settings, registry)
    assert live is not None
    variants = ServedVariants(
        ServiceSpec("models:/fraud-risk@champion"), settings, lambda _s: served.states, policy=live
    )
    with TestClient(create_app(settings, scorer=variants, registry=registry)) as client:
        first = client.post(
            "/v1/transactions:batch?mode=sync", json=body(served, 0, 30), headers=AUTH
        )
        versions.activate(made.principal("rita"), strict)  # no restart
        wait_for(live, strict)
        second = client.post(
            "/v1/transactions:batch?mode=sync", json=body(served, 30, 30), headers=AUTH
        )
    assert first.status_code == 200 and second.status_code == 200, first.text
    before, after = first.json()["results"], second.json()["results"]
    assert {r["policy_version"] for r in before} == {calm}
    assert {r["policy_version"] for r in after} == {strict}
    for r in before:  # the calm thresholds decided, not the shadow that declines everything
        risk = r["risk_score"]
        assert r["decision"] == (
            "decline" if risk >= 0.97 else "review" if risk >= 0.5 else "approve"
        )
    amounts = [t["tx_amount"] for t in body(served, 30, 30)["transactions"]]  # type: ignore[union-attr]
    assert all(r["decision"] == "decline" for r, a in zip(after, amounts, strict=True) if a >= 20)
    store = AlertStore(made.url)
    with store.engine.connect() as connection:
        stored = dict(
            connection.execute(sa.select(SCORES.c.transaction_id, SCORES.c.policy_version)).all()
        )
    assert {stored[r["transaction_id"]] for r in before} == {calm}
    assert {stored[r["transaction_id"]] for r in after} == {strict}
    assert live.shadow is not None and live.shadow.drain()
    rows = ShadowStore(made.url).read(shadow)
    assert len(rows) == 60 and {r["shadow_decision"] for r in rows} == {"decline"}
    live.stop()


def test_the_api_builds_its_variants_with_the_live_policy(
    served: Served, desk: tuple[CaseWorld, PolicyVersions]
) -> None:
    made, versions = desk
    versions.activate(made.principal("rob"), approved(desk, CALM))
    variants = default_variants(settings_of(served, made.url), CollectorRegistry())
    assert isinstance(variants.policy, LivePolicy) and variants.policy.version == 1
    variants.policy.stop()
    off = settings_of(served, made.url).model_copy(update={"policy": PolicySettings(live=False)})
    assert default_variants(off, CollectorRegistry()).policy is None


def test_kserve_v1_and_v2_outputs_carry_the_policy_version(
    served: Served, desk: tuple[CaseWorld, PolicyVersions]
) -> None:
    made, versions = desk
    settings = settings_of(served, made.url)
    plain = FraudRiskModel(
        ServiceSpec("models:/fraud-risk@champion"), settings, lambda _s: served.states
    )
    plain.load()  # no policy factory: the model's thresholds, no version
    assert {p["policy_version"] for p in plain.predict(instances(served, 5))["predictions"]} == {
        None
    }
    outputs = {o.name: o for o in plain.predict(v2_request(served, 5)).outputs}
    assert outputs["policy_version"].data == [NO_POLICY] * 5
    versions.activate(made.principal("rob"), approved(desk, STRICT))
    model = FraudRiskModel(
        ServiceSpec("models:/fraud-risk@champion"),
        settings,
        lambda _s: served.states,
        policy_factory=lambda s: live_policy(s, CollectorRegistry()),
    )
    assert model.load()
    v1 = model.predict(instances(served, 5))["predictions"]
    v2 = {o.name: o for o in model.predict(v2_request(served, 5)).outputs}
    assert {p["policy_version"] for p in v1} == {1} and v2["policy_version"].data == [1] * 5
    assert v2["policy_version"].datatype == "INT64"
    assert [p["decision"] for p in v1] == v2["decision"].data
    amounts = np.array([t["tx_amount"] for t in instances(served, 5)["instances"]])
    assert all(p["decision"] == "decline" for p, a in zip(v1, amounts, strict=True) if a >= 20)
    assert isinstance(model.policy, LivePolicy)
    model.policy.stop()


def test_a_policy_route_and_priority_factor_reach_the_case(tmp_path: Path) -> None:
    made = world(f"sqlite:///{tmp_path / 'cases.db'}")
    stamp = dt.datetime(2018, 6, 1, 3, 0)
    records = [
        # (tx, customer, amount, risk, route, factor): a policy route, and the routing file's
        ScoreRecord(1, 11, 5, stamp, 30.0, 0.6, "review", "[]", "1", "champion", False, 4,
                    "high-value", 2.0, "[]"),
        ScoreRecord(2, 12, 5, stamp, 30.0, 0.6, "review", "[]", "1", "champion", False),
    ]  # fmt: skip
    made.store.write(records)
    made.ingester().ingest_all()
    with made.engine.connect() as connection:
        rows = connection.execute(
            sa.select(CASES.c.customer_id, QUEUES.c.name, CASES.c.priority, CASES.c.routing_rule)
            .join(QUEUES, QUEUES.c.id == CASES.c.queue_id)
            .order_by(CASES.c.customer_id)
        ).all()
    routed, plain = rows
    assert routed.name == "high-value" and routed.routing_rule.endswith(":policy-route")
    assert routed.priority == pytest.approx(0.6 * 30.0 * 2.0)
    assert plain.name != "high-value" and plain.priority == pytest.approx(0.6 * 30.0)
    made.close()
