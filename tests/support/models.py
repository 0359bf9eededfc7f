"""A small calibrated XGBoost model registered in a throw-away MLflow, and entity states.

For the serving tests: the model is trained on a synthetic lake's feature rows so its scores
mean something, and :func:`states_before` builds the online state a scorer would read.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
from xgboost import XGBClassifier

from fraudrisk.config import Settings
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.features.online import CustomerState, TerminalState
from fraudrisk.registry.versions import RegisteredVersion, register_model
from fraudrisk.scoring.state_reader import MemoryStateReader
from fraudrisk.training.calibrate import CalibratedModel, calibrate
from fraudrisk.training.gate import GateResult
from fraudrisk.training.thresholds import choose_thresholds

GOOD = {"average_precision": 0.8, "auc_roc": 0.95, "card_precision@100": 0.4}


def fit_calibrated(frame: pd.DataFrame, seed: int = 0, n_estimators: int = 40) -> CalibratedModel:
    """XGBoost trained on the first two thirds of ``frame``, calibrated on the rest."""
    names = list(FEATURE_NAMES)
    cut = int(len(frame) * 2 / 3)
    train, hold = frame.iloc[:cut], frame.iloc[cut:]
    model = XGBClassifier(n_estimators=n_estimators, max_depth=3, random_state=seed, n_jobs=1)
    model.fit(train[names].to_numpy(np.float32), train["tx_fraud"].to_numpy())
    return calibrate(model, hold[names].astype(np.float32), hold["tx_fraud"], "isotonic")


def register_xgboost(
    settings: Settings,
    frame: pd.DataFrame,
    seed: int = 0,
    n_estimators: int = 40,
    training_data_ref: str = "synthetic",
) -> RegisteredVersion:
    """Register :func:`fit_calibrated`'s model (passed), thresholds from its last third."""
    names = list(FEATURE_NAMES)
    hold = frame.iloc[int(len(frame) * 2 / 3) :]
    calibrated = fit_calibrated(frame, seed, n_estimators)
    p = calibrated.predict_fraud_probability(hold[names].astype(np.float32))
    return register_model(
        settings,
        calibrated,
        metrics=GOOD,
        params={"model": "xgboost", "seed": seed},
        artifacts={},
        feature_names=names,
        input_example=hold[names].head(3).astype(np.float32),
        training_data_ref=training_data_ref,
        thresholds=choose_thresholds(hold["tx_fraud"], p),
        gate_result=GateResult(passed=True),
        run_name=f"serving-test-{seed}",
    )


def unix_seconds(frame: pd.DataFrame) -> pd.Series:
    """Unix seconds of ``tx_datetime``."""
    return frame["tx_datetime"].astype("datetime64[s]").astype(np.int64)


def states_before(frame: pd.DataFrame, seconds: int) -> MemoryStateReader:
    """Entity state holding every transaction before ``seconds``, all labels known."""
    frame = frame.assign(seconds=unix_seconds(frame))
    past = frame[frame["seconds"] < seconds].sort_values(["seconds", "transaction_id"])
    customers: dict[int, CustomerState] = defaultdict(CustomerState)
    terminals: dict[int, TerminalState] = defaultdict(TerminalState)
    for row in past.itertuples(index=False):
        customers[row.customer_id].merge(
            row.seconds, row.transaction_id, row.tx_amount, row.terminal_id
        )
        terminals[row.terminal_id].merge(row.seconds, row.transaction_id, int(row.tx_fraud))
    return MemoryStateReader(dict(customers), dict(terminals))
