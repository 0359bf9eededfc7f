"""Demo steps 7 and 8 on a small home: the test week through the Transaction API, a real Kafka
broker and the stream scorer (subprocesses), every transaction scored once, the stream's scores
equal to the offline feature table's; then the week's alerts in cases, worked through the case
service (a subprocess) by the scripted analyst, the labels on the topic and in the labels table
and counted by the performance report, the dashboard served on that database (its URL and rerun
command printed); then step 9: the default policy approved by four eyes and
applied live to half the week, a backtested candidate (its author's own approval refused)
applied to the other half without a restart, every decision by its version's thresholds — and
nothing left running.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import partial
from pathlib import Path

import psutil
import pyarrow as pa
import pytest
import sqlalchemy as sa
from tests.support.data import build_lake
from tests.support.models import register_xgboost

from fraudrisk.alerts.store import AlertStore
from fraudrisk.config import MlflowSettings, Settings
from fraudrisk.io.jars import JARS_DIR_ENV

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DAYS = 45


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str]:
    """A lake of DAYS days, its feature table, and a champion trained before the last week."""
    from fraudrisk.registry.versions import bootstrap_champion
    from fraudrisk.training.dataset import load_frame

    root = tmp_path_factory.mktemp("demo-stream")
    table_uri, lake_uri = build_lake(root, customers=100, days=DAYS)
    settings = Settings(home=root, mlflow=MlflowSettings())
    assert settings.lake_uri == lake_uri
    frame = load_frame(table_uri, lake_uri)
    version = register_xgboost(settings, frame[frame["tx_time_days"] < DAYS - 7], n_estimators=30)
    bootstrap_champion(settings, version.version)
    return settings, table_uri


def test_the_week_goes_through_the_api_and_kafka_into_the_store_once(
    home: tuple[Settings, str],
    jars_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fraudrisk.demo.cases_step import RESOLVE, week_frauds
    from fraudrisk.demo.run import work_cases
    from fraudrisk.demo.stream_step import run_stream_step, test_week

    settings, table_uri = home
    monkeypatch.setenv(JARS_DIR_ENV, str(jars_dir))  # the broker's jars: the shared cache
    week = test_week(settings, 10**9)
    limit = week.rows.num_rows - 100  # a bounded replay, as on the handbook data
    before = set(psutil.Process().children(recursive=True))

    assert run_stream_step(
        settings, table_uri, max_transactions=limit, then=partial(work_cases, settings)
    )

    out = " ".join(capsys.readouterr().out.split())
    assert_cases_worked(settings, out, week_frauds, RESOLVE)
    assert_policy_applied_live(settings, out, week.rows.slice(0, limit))
    sent = week.rows.slice(0, limit)["transaction_id"].to_pylist()
    assert f"(the first {limit:,} of {week.rows.num_rows:,})" in out
    assert f"scored {limit:,} of {limit:,}" in out
    store = AlertStore(f"sqlite:///{settings.home / 'stream-demo' / 'alerts.db'}")
    try:
        stored = sorted(store.transaction_ids())
        alerts = store.count("alerts")
    finally:
        store.close()
    assert stored == sorted(sent)  # each transaction once, none of the 100 left out
    decisions = re.search(r"alerts by decision: review ([\d,]+), decline ([\d,]+)", out)
    assert decisions, out[-2000:]
    assert sum(int(n.replace(",", "")) for n in decisions.groups()) == alerts
    agreement = re.search(r"for ([\d.]+) % of ([\d,]+) transactions", out)
    assert agreement and float(agreement.group(1)) == 100.0, out[-2000:]
    assert int(agreement.group(2).replace(",", "")) == limit
    assert "top alerts by expected loss" in out
    assert "stream scorer: consumed" in out
    assert_dashboard_served(settings, out)
    left = set(psutil.Process().children(recursive=True)) - before
    assert not [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def assert_dashboard_served(settings: Settings, out: str) -> None:
    """Step 8's dashboard: its URL, who to sign in as, the command to rerun it; now stopped."""
    import httpx

    served = re.search(r"dashboard at (http://127\.0\.0\.1:\d+)/login", out)
    assert served, out[-3000:]
    assert "ana (analyst" in out and "rita or raj (risk manager" in out
    db = f"sqlite:///{settings.home / 'stream-demo' / 'alerts.db'}"
    command = f"FRAUDRISK_HOME={settings.home} FRAUDRISK_DB__URL={db} fraudrisk dashboard serve"
    assert f"{command} --insecure-http" in out, out[-3000:]
    with pytest.raises(httpx.ConnectError):  # stopped with the demo
        httpx.get(f"{served.group(1)}/login", timeout=2)
    gone = [p for p in psutil.process_iter(["cmdline"]) if "dashboard" in (p.info["cmdline"] or [])]
    assert not [p for p in gone if served.group(1).rsplit(":", 1)[1] in p.info["cmdline"]]


def assert_cases_worked(settings: Settings, out: str, week_frauds, resolve: int) -> None:
    """Step 8: every alert in a case, cases resolved by ana with the true label, labels back."""
    from fraudrisk.data.labels import LabelsTable
    from fraudrisk.identity.audit import AuditLog, AuditQuery
    from fraudrisk.io.database import open_database
    from fraudrisk.io.lake import Lake

    ingested = re.search(r"case ingester: ([\d,]+) alerts → ([\d,]+) cases", out)
    assert ingested, out[-3000:]
    for username, role in (("ana", "analyst"), ("rita", "risk-manager"), ("ada", "admin")):
        assert re.search(rf"{username} +{role} +password \S{{16}} TOTP seed [A-Z2-7]{{16,}}", out)
    labels = re.search(
        r"labels: (\d+) transactions resolved → (\d+) in the lake's labels table .* (\d+) on "
        r"the labels topic",
        out,
    )
    assert labels and labels.group(1) == labels.group(2) == labels.group(3), out[-3000:]
    report = re.search(r"AP [\d.]+ on labels from ([\d,]+) analyst, ([\d,]+) lake", out)
    assert report and int(report.group(1)) == int(labels.group(1)), out[-3000:]
    lake = Lake.open(settings.lake_uri)
    given = LabelsTable.beside(lake.storage).read(dt.datetime(2100, 1, 1))
    analyst = given[given["source"] == "analyst"]
    assert len(analyst) == int(labels.group(1)) and set(analyst["labelled_by"]) == {"ana"}
    days = lake.days()
    frauds = week_frauds(lake, (days[-7], days[-1]))
    truth = analyst["transaction_id"].isin(frauds).astype(int)
    # a case's label covers all its transactions: fraud if any was, as the analyst resolved it
    by_case = analyst.assign(truth=truth).groupby("case_id")
    assert (by_case["tx_fraud"].max() == by_case["truth"].max()).all()
    assert analyst["case_id"].nunique() == resolve
    engine = open_database(f"sqlite:///{settings.home / 'stream-demo' / 'alerts.db'}")
    try:
        log = AuditLog(engine)
        resolved = log.read(AuditQuery(actor="ana", action="case.resolve"))
        assert len(resolved) == resolve
        assert log.verify() is None  # the hash chain is intact
    finally:
        engine.dispose()


def assert_policy_applied_live(settings: Settings, out: str, sent: pa.Table) -> None:
    """Step 9: v1 decided the first half, v2 the second, each by its own thresholds."""
    import yaml

    from fraudrisk.alerts.store import SCORES
    from fraudrisk.io.database import open_database

    assert "rita approving her own v2 → HTTP 403" in out, out[-3000:]
    assert re.search(
        r"raj approved and activated v2: status active, author rita, approver raj", out
    )
    assert "the live scorer applies v2" in out and "Candidate vs active" in out
    work = settings.home / "stream-demo" / "policy"
    assert {p.name for p in (work / "backtest").glob("*.png")} >= {"review_cost.png"}
    candidate = yaml.safe_load((work / "candidate.yaml").read_text())["thresholds"]
    thresholds = {1: (0.045, 0.85), 2: (candidate["review"], candidate["decline"])}
    engine = open_database(f"sqlite:///{work / 'scores.db'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    SCORES.c.transaction_id,
                    SCORES.c.policy_version,
                    SCORES.c.risk_score,
                    SCORES.c.decision,
                    SCORES.c.policy_rules,
                )
            ).all()
    finally:
        engine.dispose()
    ids = sent["transaction_id"].to_pylist()
    half = len(ids) // 2
    version_of = {tx: 1 if i < half else 2 for i, tx in enumerate(ids)}
    assert sorted(r.transaction_id for r in rows) == sorted(ids)  # each once
    assert all(r.policy_version == version_of[r.transaction_id] for r in rows)
    for r in rows:
        if json.loads(r.policy_rules):
            continue  # a rule decided (or shaped) it
        review_at, decline_at = thresholds[r.policy_version]
        expected = (
            "decline"
            if r.risk_score >= decline_at
            else "review"
            if r.risk_score >= review_at
            else "approve"
        )
        assert r.decision == expected, r
    by_version = re.search(r"decisions by the policy version that made them", out)
    assert by_version, out[-3000:]
