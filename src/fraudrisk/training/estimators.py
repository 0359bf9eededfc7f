"""Build, fit and score the estimators a :class:`~fraudrisk.training.recipes.Recipe` names.

Defaults per kind, overridden by the recipe's ``params``:

* ``xgboost``: ``tree_method="hist"``, 100 trees of depth 6, learning rate 0.3 and
  ``base_score=0.5``. XGBoost >= 2 fits ``base_score`` from the labels by default; on the
  handbook's 0.8 % fraud rate that start costs about 0.07 AP (§4 of the benchmark spec), so the
  book's fixed 0.5 is kept. ``n_jobs=2``.
* ``logistic_regression``: ``StandardScaler`` then ``LogisticRegression`` (C = 1, lbfgs).
* ``random_forest``: scikit-learn's defaults (100 fully grown trees), ``n_jobs=2``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from fraudrisk.training.recipes import Recipe

LABEL = "tx_fraud"
N_JOBS = 2

XGBOOST_DEFAULTS: dict[str, Any] = {
    "tree_method": "hist",
    "n_estimators": 100,
    "max_depth": 6,
    "learning_rate": 0.3,
    "base_score": 0.5,
    "n_jobs": N_JOBS,
}
LOGISTIC_REGRESSION_DEFAULTS: dict[str, Any] = {"C": 1.0, "max_iter": 1000}
RANDOM_FOREST_DEFAULTS: dict[str, Any] = {"n_estimators": 100, "n_jobs": N_JOBS}


def build_estimator(recipe: Recipe) -> Any:
    """An unfitted scikit-learn-compatible classifier for the recipe.

    Args:
        recipe: The recipe; its ``params`` override the kind's defaults.

    Returns:
        An estimator with ``fit`` and ``predict_proba``.
    """
    params = dict(recipe.params)
    if recipe.model == "xgboost":
        from xgboost import XGBClassifier  # deferred: xgboost (≈1 s) only for xgboost recipes

        return XGBClassifier(**(XGBOOST_DEFAULTS | params), random_state=recipe.seed)
    if recipe.model == "logistic_regression":
        model = LogisticRegression(
            **(LOGISTIC_REGRESSION_DEFAULTS | params), random_state=recipe.seed
        )
        return Pipeline([("scale", StandardScaler()), ("model", model)])
    return RandomForestClassifier(**(RANDOM_FOREST_DEFAULTS | params), random_state=recipe.seed)


def feature_matrix(recipe: Recipe, frame: pd.DataFrame) -> npt.NDArray[np.float32]:
    """The recipe's features of ``frame`` as a float32 matrix, columns in recipe order."""
    return frame[list(recipe.features)].to_numpy(dtype=np.float32)


def fit(recipe: Recipe, train: pd.DataFrame) -> Any:
    """Fit the recipe's estimator on a training frame.

    Args:
        recipe: What to train.
        train: Rows with the recipe's features and ``tx_fraud``.

    Returns:
        The fitted estimator.

    Raises:
        ValueError: If the training frame has a single class.
    """
    labels = train[LABEL].to_numpy()
    if len(np.unique(labels)) < 2:
        raise ValueError("the training frame needs frauds and genuine transactions")
    estimator = build_estimator(recipe)
    estimator.fit(feature_matrix(recipe, train), labels)
    return estimator


def predict_scores(estimator: Any, recipe: Recipe, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Fraud probabilities of ``frame``'s rows from a fitted estimator."""
    proba = estimator.predict_proba(feature_matrix(recipe, frame))
    return np.asarray(proba[:, 1], dtype=np.float64)
