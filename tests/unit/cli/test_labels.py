"""``fraudrisk labels ingest FILE`` on an embedded home: labels beside the lake, missed cases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from tests.unit.cli.test_users import invoke, use_home

from fraudrisk.config import get_settings
from fraudrisk.data.labels import LabelsTable
from fraudrisk.io.lake import Lake


def test_a_feed_becomes_labels_and_missed_fraud_cases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_home(monkeypatch, tmp_path / "home")
    feed = tmp_path / "chargebacks.csv"
    frame = pd.DataFrame(
        {
            "transaction_id": [7, 8],
            "tx_fraud": [1, 0],
            "customer_id": [70, 80],
            "tx_amount": [99.5, 10.0],
            "tx_datetime": ["2018-09-30T10:00:00", "2018-09-30T11:00:00"],
        }
    )
    frame.to_csv(feed, index=False)
    done = invoke("labels", "ingest", str(feed))
    assert done.exit_code == 0, done.output
    assert "2 labels (1 frauds): 1 missed-fraud cases opened" in " ".join(done.output.split())
    settings = get_settings()
    table = LabelsTable.beside(Lake.open(settings.lake_uri, settings.lake).storage)
    given = table.read(dt.datetime(2100, 1, 1))
    assert sorted(given["transaction_id"]) == [7, 8] and set(given["source"]) == {"chargeback"}
    again = invoke("labels", "ingest", str(feed))
    assert "0 missed-fraud cases opened" in " ".join(again.output.split())
    frame.drop(columns=["tx_fraud"]).to_csv(feed, index=False)
    refused = invoke("labels", "ingest", str(feed))
    assert refused.exit_code == 1 and "needs the columns ['tx_fraud']" in refused.output
