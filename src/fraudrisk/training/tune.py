"""Hyperparameter tuning with Optuna under the handbook's prequential validation.

Objective: the mean validation Average Precision over the 4 prequential *validation* folds
(book training starts 2018-07-11, 07-04, 06-27, 06-20; 7-day delay; known-card filtering). Each
fold's AP is reported as the intermediate value of step = fold index, so the median pruner
stops a trial whose early folds fall below the median of earlier trials. TPE sampler (seeded).
The study lives in a database (SQLite under a directory by default, any SQLAlchemy URL by
setting, e.g. PostgreSQL) and is loaded if it exists, so an interrupted run resumes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from fraudrisk.config import get_settings
from fraudrisk.features.definitions import FEATURE_NAMES, FEATURE_SET_VERSION
from fraudrisk.training import estimators as models
from fraudrisk.training.metrics import average_precision
from fraudrisk.training.protocol import Split, fold_starts, split_for_window
from fraudrisk.training.recipes import ModelKind, ParamValue, Recipe
from fraudrisk.training.splits import N_FOLDS, VALIDATION_FOLDS_START

TrialCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]
RECIPE_ATTR = "recipe"
STUDY_FILE = "optuna.db"


def suggest_params(trial: optuna.Trial, model: ModelKind) -> dict[str, ParamValue]:
    """Draw one point of the model kind's search space."""
    if model == "xgboost":
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 300, step=25),
            "max_depth": trial.suggest_int("max_depth", 2, 8),
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 20.0, log=True),
        }
    if model == "logistic_regression":
        return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 300, step=25),
        "max_depth": trial.suggest_int("max_depth", 4, 24),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 50, log=True),
        "max_features": trial.suggest_float("max_features", 0.2, 1.0),
    }


def storage_url(directory: Path) -> str:
    """The default study storage: SQLite file ``optuna.db`` under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(directory / STUDY_FILE).resolve()}"


def default_study_name(model: ModelKind, window_days: int) -> str:
    """Study name keyed by what changes the objective: model, window and feature set."""
    return f"fraudrisk-{model}-{window_days}d-features-{FEATURE_SET_VERSION}"


def fold_average_precision(recipe: Recipe, split: Split) -> float:
    """Train on a fold's training rows and return the AP on its assessment rows."""
    estimator = models.fit(recipe, split.train)
    scores = models.predict_scores(estimator, recipe, split.test)
    return average_precision(split.test["tx_fraud"].to_numpy(), scores)


def make_objective(splits: Sequence[Split], base: Recipe) -> Callable[[optuna.Trial], float]:
    """The objective: mean validation AP of ``base`` with the trial's hyperparameters."""

    def objective(trial: optuna.Trial) -> float:
        recipe = base.model_copy(update={"params": suggest_params(trial, base.model)})
        trial.set_user_attr(RECIPE_ATTR, recipe.to_json())
        scores: list[float] = []
        for step, split in enumerate(splits):
            scores.append(fold_average_precision(recipe, split))
            trial.report(scores[-1], step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    return objective


def create_study(
    storage: str, study_name: str, seed: int = 0, n_startup_trials: int = 3
) -> optuna.Study:
    """Create or load (resume) a maximising study with a seeded TPE sampler and median pruner."""
    return optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=0),
        load_if_exists=True,
    )


def tune(
    frame: pd.DataFrame,
    model: ModelKind = "xgboost",
    features: Sequence[str] = FEATURE_NAMES,
    window_days: int = 7,
    n_trials: int | None = 20,
    timeout_s: float | None = None,
    directory: Path | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    callbacks: list[TrialCallback] | None = None,
    first_start: dt.date = VALIDATION_FOLDS_START,
    n_folds: int = N_FOLDS,
    start_from: Sequence[dict[str, Any]] = (),
) -> Recipe:
    """Tune a model kind's hyperparameters on the prequential validation folds.

    Args:
        frame: Frame of :func:`~fraudrisk.training.dataset.load_frame`.
        model: Model kind to tune.
        features: Model inputs (feature-table features).
        window_days: Training days of every fold (ending where the book's 7-day window ends).
        n_trials: Trials to run in this call (None = until the timeout).
        timeout_s: Seconds budget of this call (None = until ``n_trials``).
        directory: Where the default SQLite study lives (default: FRAUDRISK_HOME/optuna).
        storage: SQLAlchemy URL of the study storage; overrides ``directory``.
        study_name: Study name (default :func:`default_study_name`); an existing one resumes.
        seed: Seed of the sampler and of the models.
        callbacks: Called after each trial with ``(study, frozen_trial)`` (e.g. MLflow logging).
        first_start: Book training start of the first validation fold.
        n_folds: Number of validation folds.
        start_from: Hyperparameters to enqueue first (e.g. the recorded recipe).

    Returns:
        The best recipe of the whole study (this call's trials and earlier ones).
    """
    if storage is None:
        storage = storage_url(directory or get_settings().optuna_dir)
    base = Recipe(model=model, features=tuple(features), window_days=window_days, seed=seed)
    study = create_study(storage, study_name or default_study_name(model, window_days), seed)
    for params in start_from:
        study.enqueue_trial(params, skip_if_exists=True)
    splits = [split_for_window(frame, s, window_days) for s in fold_starts(first_start, n_folds)]
    study.optimize(
        make_objective(splits, base),
        n_trials=n_trials,
        timeout=timeout_s,
        callbacks=callbacks,
        gc_after_trial=True,
    )
    return Recipe.from_json(str(study.best_trial.user_attrs[RECIPE_ATTR]))
