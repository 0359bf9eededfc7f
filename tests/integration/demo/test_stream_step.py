"""Demo step 7 on a small home: the test week through the Transaction API, a real Kafka broker
and the stream scorer (subprocesses), every transaction scored once, the stream's scores equal
to the offline feature table's, and nothing left running.
"""

from __future__ import annotations

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
    from fraudrisk.demo.stream_step import run_stream_step, test_week

    settings, table_uri = home
    monkeypatch.setenv(JARS_DIR_ENV, str(jars_dir))  # the broker's jars: the shared cache
    week = test_week(settings, 10**9)
    limit = week.rows.num_rows - 100  # a bounded replay, as on the handbook data
    before = set(psutil.Process().children(recursive=True))

    assert run_stream_step(settings, table_uri, max_transactions=limit)

    out = " ".join(capsys.readouterr().out.split())
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
