"""The gate's head-to-head: the champion scored on the candidate's hold-out, beside it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.support.data import synthetic_frame
from tests.support.models import fit_calibrated, register_xgboost

from fraudrisk.config import MlflowSettings, Settings
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.registry.versions import bootstrap_champion
from fraudrisk.training.calibrate import CalibratedModel
from fraudrisk.training.gate import HeadToHead
from fraudrisk.training.head_to_head import compare_on_holdout
from fraudrisk.training.holdout import rows_between
from fraudrisk.training.metrics import average_precision
from fraudrisk.training.recipes import TUNED_56DAY

HOLDOUT = (dt.date(2018, 5, 3), dt.date(2018, 5, 10))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(customers=80, days=40)


@pytest.fixture(scope="module")
def holdout(frame: pd.DataFrame) -> pd.DataFrame:
    rows = rows_between(frame, *HOLDOUT)
    assert rows["tx_fraud"].sum() > 0
    return rows


def settings_with_champion(home: Path, frame: pd.DataFrame, train_period: str | None) -> Settings:
    settings = Settings(home=home, mlflow=MlflowSettings())
    ref = json.dumps({"train_period": train_period}) if train_period else "by hand"
    version = register_xgboost(settings, frame, seed=1, n_estimators=20, training_data_ref=ref)
    bootstrap_champion(settings, version.version)
    return settings


def compare(
    home: Path, frame: pd.DataFrame, holdout: pd.DataFrame, champion_trained: str
) -> tuple[HeadToHead | str, CalibratedModel]:
    """A champion trained on ``champion_trained`` days against a candidate, on ``holdout``."""
    settings = settings_with_champion(home, frame, champion_trained)
    candidate = fit_calibrated(frame, seed=2, n_estimators=30)
    return compare_on_holdout(settings, holdout, HOLDOUT, TUNED_56DAY, candidate), candidate


def test_both_models_are_scored_on_the_same_rows(
    tmp_path: Path, frame: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    compared, candidate = compare(tmp_path, frame, holdout, "2018-04-01..2018-04-20")
    assert isinstance(compared, HeadToHead), compared
    assert compared.champion_version == "1"
    assert (compared.transactions, compared.frauds) == (len(holdout), holdout["tx_fraud"].sum())
    inputs = holdout[list(FEATURE_NAMES)].astype(np.float32)
    labels = holdout["tx_fraud"]
    # The champion as registered (loaded through the serving path) = the same model in memory.
    champion = fit_calibrated(frame, seed=1, n_estimators=20)
    expected = average_precision(labels, champion.predict_fraud_probability(inputs))
    assert compared.champion["average_precision"] == pytest.approx(expected, abs=1e-9)
    expected = average_precision(labels, candidate.predict_fraud_probability(inputs))
    assert compared.candidate["average_precision"] == pytest.approx(expected, abs=1e-9)
    assert set(compared.candidate) == {"auc_roc", "average_precision", "card_precision_at_100"}


def test_a_champion_trained_on_the_holdout_days_is_not_compared_there(
    tmp_path: Path, frame: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    reason, _ = compare(tmp_path, frame, holdout, "2018-04-20..2018-05-05")
    assert isinstance(reason, str)
    assert "2018-04-20..2018-05-05, which overlaps the hold-out 2018-05-03..2018-05-10" in reason


def test_no_champion_and_no_fraud_are_said(
    tmp_path: Path, frame: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    candidate = fit_calibrated(frame, seed=2, n_estimators=10)
    empty = Settings(home=tmp_path / "empty", mlflow=MlflowSettings())
    assert compare_on_holdout(empty, holdout, HOLDOUT, TUNED_56DAY, candidate) == "no champion"
    settings = settings_with_champion(tmp_path / "one", frame, None)
    genuine = holdout[holdout["tx_fraud"] == 0]
    reason = compare_on_holdout(settings, genuine, HOLDOUT, TUNED_56DAY, candidate)
    assert reason == "no fraud in the hold-out 2018-05-03..2018-05-10"
