"""What the model benchmarks build before they time anything: a feature table and a model.

Shared by ``drift_cost.py`` and ``policy_backtest.py``: simulated transactions become a
day-partitioned feature table, and a small XGBoost, isotonic-calibrated on the last 20 % of
its training rows, is registered in MLflow. Nothing here is timed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from fraudrisk.config import Settings

if TYPE_CHECKING:
    from fraudrisk.registry.versions import RegisteredVersion


def write_feature_table(rows: pa.Table, root: Path, epoch: dt.date) -> pd.DataFrame:
    """Compute the features of lake rows and write them as a feature table, a partition a day.

    Args:
        rows: Lake rows with their labels (``tx_fraud``), complete entity histories.
        root: Where the feature table goes.
        epoch: The date of the first day.

    Returns:
        The key columns and features, with ``day`` (days since the first transaction) and
        ``tx_fraud``.
    """
    # deferred: only when a world is built (a demo home may hold one)
    from fraudrisk.features.definitions import FEATURE_NAMES, KEY_COLUMNS
    from fraudrisk.features.table import FeatureTable, features_of

    columns, seconds, _ = features_of(rows)
    frame = pd.DataFrame(columns).assign(
        day=(seconds - seconds.min()) // 86_400, tx_fraud=rows["tx_fraud"].to_numpy()
    )
    table = FeatureTable.open(str(root))
    for index, part in frame.groupby("day"):
        table.write_day(
            epoch + dt.timedelta(days=int(index)),
            pa.Table.from_pandas(part[[*KEY_COLUMNS, *FEATURE_NAMES]], preserve_index=False),
        )
    return frame


def register_small_model(
    settings: Settings, train: pd.DataFrame, reference: bool = False
) -> RegisteredVersion:
    """Fit a small XGBoost on the first 80 % of ``train``, calibrate it on the rest, register it.

    Args:
        settings: Settings over the benchmark's HOME (its MLflow).
        train: Feature rows with ``tx_fraud``, in time order.
        reference: Register ``train`` as the model's reference too (drift reports need one).

    Returns:
        The registered version.
    """
    # deferred: the training stack, only when a world is built
    from xgboost import XGBClassifier

    from fraudrisk.features.definitions import FEATURE_NAMES
    from fraudrisk.registry.versions import register_model
    from fraudrisk.training.calibrate import calibrate
    from fraudrisk.training.gate import GateResult
    from fraudrisk.training.thresholds import choose_thresholds

    names = list(FEATURE_NAMES)
    cut = int(len(train) * 0.8)
    model = XGBClassifier(n_estimators=100, max_depth=4, n_jobs=2, random_state=0)
    model.fit(train[names].iloc[:cut].to_numpy(np.float32), train["tx_fraud"].iloc[:cut])
    hold = train.iloc[cut:]
    calibrated = calibrate(model, hold[names].astype(np.float32), hold["tx_fraud"], "isotonic")
    p = calibrated.predict_fraud_probability(hold[names].astype(np.float32))
    return register_model(
        settings,
        calibrated,
        metrics={"average_precision": 0.0},
        params={},
        artifacts={},
        feature_names=names,
        input_example=hold[names].head(3).astype(np.float32),
        training_data_ref="benchmark",
        thresholds=choose_thresholds(hold["tx_fraud"], p),
        gate_result=GateResult(passed=True),
        reference_rows=train if reference else None,
    )
