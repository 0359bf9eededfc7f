"""Small synthetic lakes and feature tables for the training tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa

from fraudrisk.data.fast import FastConfig
from fraudrisk.data.simulate import fast_days, write_days
from fraudrisk.features.state import states_as_of
from fraudrisk.features.table import FeatureTable, features_of
from fraudrisk.io.lake import Lake
from fraudrisk.training.dataset import join_labels
from fraudrisk.training.gate import GateConfig

EPOCH = dt.date(2018, 4, 1)
#: A gate every model passes (tests of the mechanics, not of model quality).
PERMISSIVE = GateConfig(
    min_average_precision=0.0,
    min_auc_roc=0.0,
    min_card_precision_at_100=0.0,
    max_regression={"average_precision": 1.0},
)


def synthetic_frame(customers: int, days: int) -> pd.DataFrame:
    """A small simulated lake (2018-04-01 onward) joined with its features, in memory."""
    config = FastConfig(n_customers=customers, n_terminals=2 * customers, nb_days=days)
    rows = pa.concat_tables([table for _, table in fast_days(config)])
    columns, _, _ = features_of(rows)
    labels = rows.select(["transaction_id", "tx_time_days", "tx_fraud", "tx_fraud_scenario"])
    return join_labels(pd.DataFrame(columns), labels.to_pandas())


def build_lake(root: Path, customers: int = 150, days: int = 183) -> tuple[str, str]:
    """A small lake from 2018-04-01, its feature table (one partition) and entity state.

    Returns:
        ``(table_uri, lake_uri)``.
    """
    lake_uri, table_uri = str(root / "lake"), str(root / "features")
    lake = Lake.open(lake_uri)
    lake.init(EPOCH)
    config = FastConfig(n_customers=customers, n_terminals=2 * customers, nb_days=days)
    write_days(lake, fast_days(config))
    rows = lake.read(include_labels=True)
    columns, seconds, fraud = features_of(rows)
    table = FeatureTable.open(table_uri)
    table.write_day(EPOCH, pa.table(columns))
    for entity, state in states_as_of(rows, seconds, fraud).items():  # as the batch job does
        table.write_state(entity, state)
    return table_uri, lake_uri
