"""Demo steps 7 and 8 on a small home: the test week through the Transaction API, a real Kafka
broker and the stream scorer (subprocesses), every transaction scored once, the stream's scores
equal to the offline feature table's; then the week's alerts in cases, worked through the case
service (a subprocess) by the scripted analyst, the labels on the topic and in the labels table
and counted by the performance report — and nothing left running.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import psutil
import pytest
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
    from fraudrisk.demo.cases_step import RESOLVE, run_cases_step, week_frauds
    from fraudrisk.demo.stream_step import StreamOutcome, run_stream_step, test_week

    settings, table_uri = home

    def cases(outcome: StreamOutcome) -> bool:
        days = (outcome.week.first, outcome.week.last)
        return run_cases_step(settings, outcome.store_url, outcome.bootstrap, outcome.work, days)

    monkeypatch.setenv(JARS_DIR_ENV, str(jars_dir))  # the broker's jars: the shared cache
    week = test_week(settings, 10**9)
    limit = week.rows.num_rows - 100  # a bounded replay, as on the handbook data
    before = set(psutil.Process().children(recursive=True))

    assert run_stream_step(settings, table_uri, max_transactions=limit, then=cases)

    out = " ".join(capsys.readouterr().out.split())
    assert_cases_worked(settings, out, week_frauds, RESOLVE)
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
    left = set(psutil.Process().children(recursive=True)) - before
    assert not [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


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
