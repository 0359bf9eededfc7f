"""The training frame joins the feature table with the lake's labels, one row per transaction."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from fraudrisk.data.fast import FastConfig
from fraudrisk.data.labels import LabelMessage, LabelsTable
from fraudrisk.data.simulate import fast_days, write_days
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.features.table import FeatureTable, features_of
from fraudrisk.io.lake import Lake
from fraudrisk.training.dataset import LABEL_COLUMNS, join_labels, load_frame

EPOCH = dt.date(2018, 4, 1)


def build(tmp_path: Path, days: int = 20) -> tuple[str, str, pa.Table]:
    """A small lake and its feature table (no Spark: the kernel on the whole lake)."""
    lake_uri, table_uri = str(tmp_path / "lake"), str(tmp_path / "features")
    lake = Lake.open(lake_uri)
    lake.init(EPOCH)
    write_days(lake, fast_days(FastConfig(n_customers=100, n_terminals=200, nb_days=days)))
    rows = lake.read(include_labels=True)
    columns, _, _ = features_of(rows)
    table = pa.table(columns)
    FeatureTable.open(table_uri).write_day(EPOCH, table)
    return table_uri, lake_uri, rows


def test_load_frame_one_row_per_transaction_with_labels(tmp_path: Path) -> None:
    table_uri, lake_uri, rows = build(tmp_path)
    frame = load_frame(table_uri, lake_uri)
    assert len(frame) == rows.num_rows
    assert frame["transaction_id"].is_monotonic_increasing
    assert frame["transaction_id"].is_unique
    assert isinstance(frame.index, pd.RangeIndex)
    for name in (*FEATURE_NAMES, "tx_time_days", *LABEL_COLUMNS, "tx_datetime", "customer_id"):
        assert name in frame.columns
    lake = rows.to_pandas().set_index("transaction_id")
    joined = frame.set_index("transaction_id")
    assert (joined["tx_fraud"] == lake["tx_fraud"]).all()
    assert (joined["tx_time_days"] == lake["tx_time_days"]).all()
    assert frame["tx_fraud"].sum() > 0


def test_join_fails_clearly_when_counts_differ(tmp_path: Path) -> None:
    table_uri, lake_uri, _ = build(tmp_path, days=5)
    features = FeatureTable.open(table_uri).read().to_pandas()
    labels = Lake.open(lake_uri).read(include_labels=True).to_pandas()
    with pytest.raises(ValueError, match="rows but the lake has"):
        join_labels(features.iloc[:-1], labels)
    shifted = labels.assign(transaction_id=labels["transaction_id"] + 1)
    with pytest.raises(ValueError, match="not in the lake"):
        join_labels(features, shifted)
    with pytest.raises(ValueError, match="repeats"):
        join_labels(features, labels.assign(transaction_id=0))


def test_labels_given_before_the_run_replace_the_lakes_and_later_ones_do_not(
    tmp_path: Path,
) -> None:
    table_uri, lake_uri, rows = build(tmp_path, days=5)
    lake = rows.to_pandas()
    frauds = lake[lake["tx_fraud"] == 1]["transaction_id"].tolist()
    legit = lake[lake["tx_fraud"] == 0]["transaction_id"].tolist()
    run_at = dt.datetime(2026, 12, 7, 12)

    def label(tx: int, fraud: int, at: dt.datetime) -> LabelMessage:
        return LabelMessage(transaction_id=tx, tx_fraud=fraud, labelled_at=at, source="analyst")

    before, after = run_at - dt.timedelta(hours=1), run_at + dt.timedelta(hours=1)
    table = LabelsTable.beside(Lake.open(lake_uri).storage)
    table.append([label(frauds[0], 0, before), label(legit[0], 1, before)])
    table.append([label(legit[1], 1, after)])  # not known yet at the run
    frame = load_frame(table_uri, lake_uri, labels_given_before=run_at).set_index("transaction_id")
    assert frame.loc[frauds[0], "tx_fraud"] == 0 and frame.loc[legit[0], "tx_fraud"] == 1
    assert frame.loc[legit[1], "tx_fraud"] == 0
    assert frame["tx_fraud"].sum() == len(frauds)  # one fraud fewer, one more
    later = load_frame(table_uri, lake_uri, labels_given_before=after + dt.timedelta(seconds=1))
    assert later.set_index("transaction_id").loc[legit[1], "tx_fraud"] == 1
