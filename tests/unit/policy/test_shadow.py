"""A shadow version is decided, counted and stored, never returned; old stores gain the policy
columns; the shadow report compares both side by side."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import typer
from prometheus_client import CollectorRegistry
from tests.unit.policy.test_live import EPOCH, RULES, Source, inputs
from tests.unit.scoring.served import Served
from typer.testing import CliRunner

from fraudrisk.alerts.records import ScoreColumns
from fraudrisk.alerts.shadow import ShadowStore
from fraudrisk.alerts.store import AlertStore
from fraudrisk.cli import policy_shadow
from fraudrisk.config import ServingSettings, get_settings
from fraudrisk.policy.live import LivePolicy
from fraudrisk.policy.live_version import AppliedVersion, policy_metrics
from fraudrisk.policy.shadow import ShadowRunner
from fraudrisk.policy.versions import digest_of
from fraudrisk.scoring.model import load_model
from fraudrisk.scoring.scorer import Scorer

DECLINE_ALL = """name: paranoid
thresholds: {review: 0.3, decline: 0.9}
alert_budget: 1
rules:
  - {name: everything, when: amount >= 0, action: decline, reason: decline everything}
"""


def scorer(served: Served, live: LivePolicy) -> Scorer:
    model = load_model(served.settings, "models:/fraud-risk@champion")
    return Scorer(model, served.states, ServingSettings(), variant="champion", policy=live)


def live_with_shadow(url: str | None, registry: CollectorRegistry) -> LivePolicy:
    source = Source(v1=RULES, v2=DECLINE_ALL)
    source.active = 1
    metrics = policy_metrics(registry)
    shadow = None
    if url is not None:
        applied = AppliedVersion.of_text(DECLINE_ALL, 2, digest_of(DECLINE_ALL), EPOCH)
        shadow = ShadowRunner(applied, ShadowStore(url), metrics)
    live = LivePolicy(source, EPOCH, metrics=metrics, shadow=shadow)
    live.refresh()
    return live


def test_a_shadow_that_declines_everything_changes_no_answer(
    served: Served, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    registry = CollectorRegistry()
    alone = scorer(served, live_with_shadow(None, CollectorRegistry())).score(served.batch)
    live = live_with_shadow(url, registry)
    scored = scorer(served, live).score(served.batch)
    assert live.shadow is not None and live.shadow.drain()
    assert scored.decision.tolist() == alone.decision.tolist()
    assert scored.reason_codes == alone.reason_codes and scored.policy_version == 1
    assert "decline" not in set(scored.decision.tolist()) or len(set(scored.decision)) > 1
    rows = ShadowStore(url).read(2)
    assert len(rows) == len(served.batch)
    assert {r["shadow_decision"] for r in rows} == {"decline"}
    assert [r["active_decision"] for r in rows] == scored.decision.tolist()
    assert {r["active_version"] for r in rows} == {1}
    assert json.loads(rows[0]["shadow_rules"])[0]["rule"] == "everything"
    shadow = {"policy_version": "2", "role": "shadow", "decision": "decline"}
    assert registry.get_sample_value("fraudrisk_policy_decisions_total", shadow) == len(rows)
    live.stop()


def test_a_replayed_batch_stores_no_second_shadow_row(served: Served, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    live = live_with_shadow(url, CollectorRegistry())
    for _ in range(2):
        scorer(served, live).score(served.batch)
    assert live.shadow is not None and live.shadow.drain()
    assert len(ShadowStore(url).read()) == len(served.batch)
    live.stop()


def test_an_old_store_gains_the_policy_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # the scores table as stores made before policies
        connection.exec_driver_sql(
            "CREATE TABLE scores (transaction_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL,"
            " terminal_id BIGINT NOT NULL, tx_datetime DATETIME NOT NULL, tx_amount FLOAT NOT"
            " NULL, risk_score FLOAT NOT NULL, decision VARCHAR(8) NOT NULL, reason_codes TEXT"
            " NOT NULL, model_version VARCHAR(32) NOT NULL, variant VARCHAR(32) NOT NULL,"
            " fallback BOOLEAN NOT NULL, scored_at DATETIME NOT NULL)"
        )
        connection.exec_driver_sql(
            "INSERT INTO scores VALUES (1, 1, 1, '2018-06-01 00:00:00', 10.0, 0.9, 'decline',"
            " '[]', '1', 'champion', 0, '2018-06-01 00:00:01')"
        )
    store = AlertStore(url)
    AlertStore(url).close()  # idempotent: a second open adds nothing
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("scores")}
    assert {"policy_version", "route", "priority_factor", "policy_rules"} <= columns
    batch = ScoreColumns(
        [1, 2], [1, 2], [1, 2], [dt.datetime(2018, 6, 1)] * 2, [10.0, 20.0], [0.9, 0.5],
        ["decline", "review"], ["[]", "[]"], ["1", "1"], ["champion"] * 2, [False, False],
        [None, 4], [None, "high-value"], [1.0, 2.0], ["[]", "[]"],
    )  # fmt: skip
    written = store.write_columns(batch)
    assert written.scores == 1 and written.earlier[1].policy_version is None
    assert written.earlier[1].priority_factor == 1.0 and written.earlier[1].policy_rules == "[]"
    (alert,) = [a for a in store.top_alerts() if a["transaction_id"] == 2]
    assert alert["priority"] == pytest.approx(0.5 * 20.0 * 2.0)  # expected loss × the factor
    store.close()


def test_the_shadow_report_shows_both_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    store = ShadowStore(url)
    given = inputs(300)
    active = AppliedVersion.of_text(RULES, 1, "a", EPOCH).apply(given)
    runner = ShadowRunner(
        AppliedVersion.of_text(DECLINE_ALL, 2, "b", EPOCH),
        store,
        policy_metrics(CollectorRegistry()),
    )
    runner.submit(given, active)
    runner.drain()
    labels = {int(t): bool(t % 3 == 0) for t in given.batch.transaction_id.tolist()}
    report = policy_shadow.shadow_report(ShadowStore(url), 2, labels=labels)
    counts = dict(zip(*np.unique(active.decision, return_counts=True), strict=True))
    assert report.active_counts == {k: int(v) for k, v in counts.items()}
    assert report.shadow_counts == {"decline": 300}
    assert report.rows == 300 and report.agree == counts.get("decline", 0)
    assert (
        sum(report.pairs.values()) + report.agree == 300 and "decline→decline" not in report.pairs
    )
    flagged = [t for t, d in zip(range(300), active.decision, strict=True) if d != "approve"]
    assert report.active_precision == pytest.approx(sum(labels[t] for t in flagged) / len(flagged))
    assert report.shadow_precision == pytest.approx(sum(labels.values()) / 300)
    app = typer.Typer()
    policy_shadow.register(app)
    app.command("noop")(lambda: None)  # a group of one command would run it without its name
    monkeypatch.setenv("FRAUDRISK_DB__URL", url)
    get_settings.cache_clear()  # the command reads the settings of this environment
    try:
        result = CliRunner().invoke(app, ["shadow-report", "--version", "2", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["shadow_version"] == 2 and data["shadow_counts"] == {"decline": 300}
    runner.close()
