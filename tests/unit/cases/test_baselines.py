"""The customer's baseline of a feature: the mean over their earlier rows of the window only."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from fraudrisk.cases.baselines import FeatureTableBaselines
from fraudrisk.data.fast import FastConfig
from fraudrisk.data.simulate import fast_days, write_days
from fraudrisk.features.table import FeatureTable, features_of
from fraudrisk.io.lake import Lake

EPOCH = dt.date(2018, 4, 1)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureTable, pd.DataFrame]:
    """A feature table of 20 days, one partition per day, and its rows."""
    root: Path = tmp_path_factory.mktemp("baselines")
    lake = Lake.open(str(root / "lake"))
    lake.init(EPOCH)
    write_days(lake, fast_days(FastConfig(n_customers=40, n_terminals=80, nb_days=20)))
    columns, _, _ = features_of(lake.read(include_labels=True))
    rows = pa.table(columns).to_pandas()
    features = FeatureTable.open(str(root / "features"))
    for day, part in rows.groupby(rows["tx_datetime"].dt.date):
        features.write_day(day, pa.Table.from_pandas(part, preserve_index=False))
    return features, rows


def test_the_baseline_is_the_mean_of_the_customers_earlier_rows_in_the_window(table) -> None:
    features, rows = table
    customer = int(rows["customer_id"].value_counts().index[0])
    mine = rows[rows["customer_id"] == customer].sort_values("tx_datetime")
    alert = mine.iloc[len(mine) // 2]
    before = alert["tx_datetime"].to_pydatetime()
    names = ["customer_id_avg_amount_7day_window", "tx_amount", "no_such_feature"]
    baselines = FeatureTableBaselines(features, days=7)
    found = baselines.customer_baseline(customer, names, before)
    window = mine[
        (mine["tx_datetime"] < before) & (mine["tx_datetime"] >= before - dt.timedelta(days=7))
    ]
    assert len(window) and len(window) < (mine["tx_datetime"] < before).sum()  # window bites
    assert set(found) == {"customer_id_avg_amount_7day_window", "tx_amount"}
    for name in found:
        assert found[name] == pytest.approx(window[name].mean())
    with_own_row = pd.concat([window, mine[mine["tx_datetime"] == before]])
    assert found["tx_amount"] != pytest.approx(with_own_row["tx_amount"].mean())  # not counted


def test_no_earlier_transaction_or_no_table_means_no_baseline(table, tmp_path: Path) -> None:
    features, rows = table
    first = rows.sort_values("tx_datetime").iloc[0]
    at = first["tx_datetime"].to_pydatetime()
    baselines = FeatureTableBaselines(features)
    assert baselines.customer_baseline(int(first["customer_id"]), ["tx_amount"], at) == {}
    empty = FeatureTableBaselines(FeatureTable.open(str(tmp_path / "none")))
    assert empty.customer_baseline(1, ["tx_amount"], dt.datetime(2018, 5, 1)) == {}
