"""Optuna tuning: resumable study in SQLite, pruning of bad trials, best recipe, callbacks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import optuna
import pandas as pd
import pytest
from tests.support.data import synthetic_frame

from fraudrisk.features.definitions import BASELINE_NAMES
from fraudrisk.training import tune as tuning
from fraudrisk.training.protocol import Split
from fraudrisk.training.recipes import Recipe

# Two short validation folds keep each trial well under a second.
FIRST_START = dt.date(2018, 5, 20)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(120, 70)


def test_study_resumes_from_sqlite(frame: pd.DataFrame, tmp_path: Path) -> None:
    seen: list[int] = []

    def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        seen.append(trial.number)

    best = tuning.tune(
        frame,
        "logistic_regression",
        n_trials=3,
        directory=tmp_path,
        callbacks=[record],
        n_folds=2,
        first_start=FIRST_START,
    )
    assert isinstance(best, Recipe)
    assert best.model == "logistic_regression"
    assert "C" in best.params
    assert seen == [0, 1, 2]
    assert (tmp_path / tuning.STUDY_FILE).exists()
    tuning.tune(
        frame,
        "logistic_regression",
        n_trials=2,
        directory=tmp_path,
        n_folds=2,
        first_start=FIRST_START,
    )
    study = optuna.load_study(
        study_name=tuning.default_study_name("logistic_regression", 7),
        storage=tuning.storage_url(tmp_path),
    )
    assert len(study.trials) == 5
    assert isinstance(study.sampler, optuna.samplers.RandomSampler | optuna.samplers.TPESampler)


def test_bad_trials_are_pruned(
    frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []

    def fake_ap(recipe: Recipe, split: Split) -> float:
        # Good for the 4 first trials (2 folds each), obviously bad afterwards.
        calls.append(0.0)
        return 0.9 if len(calls) <= 8 else 0.01

    monkeypatch.setattr(tuning, "fold_average_precision", fake_ap)
    tuning.tune(
        frame,
        "xgboost",
        n_trials=5,
        storage=tuning.storage_url(tmp_path),
        n_folds=2,
        first_start=FIRST_START,
    )
    study = optuna.load_study(
        study_name=tuning.default_study_name("xgboost", 7), storage=tuning.storage_url(tmp_path)
    )
    states = [trial.state for trial in study.trials]
    assert states[:4] == [optuna.trial.TrialState.COMPLETE] * 4
    assert states[4] == optuna.trial.TrialState.PRUNED
    assert study.trials[4].intermediate_values == {0: 0.01}
    assert isinstance(study.pruner, optuna.pruners.MedianPruner)


def test_xgboost_trial_on_real_folds_keeps_features_and_window(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    best = tuning.tune(
        frame,
        "xgboost",
        features=BASELINE_NAMES,
        window_days=14,
        n_trials=1,
        directory=tmp_path,
        start_from=[{"n_estimators": 50, "max_depth": 3}],
        n_folds=2,
        first_start=FIRST_START,
    )
    assert best.features == BASELINE_NAMES
    assert best.window_days == 14
    assert best.params["n_estimators"] == 50
    assert best.params["max_depth"] == 3
    assert set(best.params) == {
        "n_estimators",
        "max_depth",
        "learning_rate",
        "min_child_weight",
        "subsample",
        "colsample_bytree",
        "reg_lambda",
    }
