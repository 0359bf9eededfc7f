"""A registered calibrated XGBoost model and its data: the ``served`` fixture.

Shared by the scoring, serving and release unit tests (registered in tests/unit/conftest.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.support.data import synthetic_frame
from tests.support.models import register_xgboost, states_before, unix_seconds

from fraudrisk.config import MlflowSettings, Settings
from fraudrisk.scoring.state_reader import MemoryStateReader
from fraudrisk.scoring.vectors import TransactionBatch

SCORED_DAY = 35


@dataclass
class Served:
    """A registry with two passed versions (1 = champion), the data and the state."""

    settings: Settings
    frame: pd.DataFrame
    states: MemoryStateReader
    rows: pd.DataFrame
    batch: TransactionBatch


@pytest.fixture(scope="package")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    home: Path = tmp_path_factory.mktemp("serving-home")
    settings = Settings(home=home, mlflow=MlflowSettings())
    frame = synthetic_frame(customers=60, days=40)
    train = frame[frame["tx_time_days"] < SCORED_DAY - 7]
    from fraudrisk.registry.versions import bootstrap_champion

    first = register_xgboost(settings, train, seed=0)
    bootstrap_champion(settings, first.version)
    register_xgboost(settings, train, seed=1, n_estimators=20)
    rows = frame[frame["tx_time_days"] == SCORED_DAY].sort_values(["tx_datetime", "transaction_id"])
    batch = TransactionBatch(
        transaction_id=rows["transaction_id"].to_numpy(np.int64),
        seconds=unix_seconds(rows).to_numpy(np.int64),
        customer_id=rows["customer_id"].to_numpy(np.int64),
        terminal_id=rows["terminal_id"].to_numpy(np.int64),
        tx_amount=rows["tx_amount"].to_numpy(np.float64),
    )
    states = states_before(frame, int(batch.seconds.min()))
    return Served(settings, frame, states, rows, batch)
