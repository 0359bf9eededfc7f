"""`fraudrisk simulate --preset handbook` reproduces the published dataset (spec §1 fingerprint)."""

import datetime as dt
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fraudrisk.io.lake import Lake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def handbook(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("handbook") / "lake"
    subprocess.run(
        [sys.executable, "-m", "fraudrisk", "simulate", "--preset", "handbook", "--out", str(out)],
        check=True,
    )
    return Lake.open(str(out)).read(include_labels=True).to_pandas()


def test_counts_and_scenarios(handbook):
    assert len(handbook) == 1_754_155
    assert handbook.tx_fraud.sum() == 14_681
    assert handbook[handbook.tx_fraud == 1].tx_fraud_scenario.value_counts().to_dict() == {
        2: 9_077,
        3: 4_631,
        1: 973,
    }
    assert handbook.transaction_id.tolist() == list(range(1_754_155))


def test_first_and_last_rows(handbook):
    cols = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    rows = [tuple(r) for r in handbook[cols].iloc[[0, 1, 2, -1]].itertuples(index=False)]
    assert rows == [
        (0, pd.Timestamp("2018-04-01 00:00:31"), 596, 3156, 57.16),
        (1, pd.Timestamp("2018-04-01 00:02:10"), 4961, 3412, 81.51),
        (2, pd.Timestamp("2018-04-01 00:07:56"), 2, 1365, 146.00),
        (1754154, pd.Timestamp("2018-09-30 23:59:57"), 3542, 9849, 23.59),
    ]


def test_sums(handbook):
    assert round(handbook.tx_amount.sum(), 2) == 94_079_370.08
    assert handbook.terminal_id.sum() == 8_765_044_444
    assert handbook.customer_id.sum() == 4_392_424_120
    assert handbook.tx_time_seconds.sum() == 13_863_496_926_060
    assert (handbook.tx_amount == 0).sum() == 42


def test_first_days(handbook):
    first = handbook[handbook.tx_time_days < 3].groupby("tx_time_days")
    assert first.size().tolist() == [9_488, 9_583, 9_747]
    assert first.tx_fraud.sum().tolist() == [3, 13, 15]
    assert handbook.tx_datetime.dt.date.iloc[-1] == dt.date(2018, 9, 30)
    assert np.all(np.diff(handbook.tx_time_seconds.to_numpy()) >= 0)
