"""Recipes are frozen JSON records that only accept features; fit trains the named estimator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from fraudrisk.features.definitions import BASELINE_NAMES, FEATURE_NAMES
from fraudrisk.training import estimators as models
from fraudrisk.training.recipes import RECORDED, Recipe


def train_frame(rows: int = 400) -> pd.DataFrame:
    """Random features; fraud when the amount is large."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({name: rng.random(rows) for name in FEATURE_NAMES})
    frame["tx_fraud"] = (frame["tx_amount"] > 0.8).astype(int)
    return frame


def test_defaults_and_json_round_trip() -> None:
    recipe = Recipe()
    assert recipe.model == "xgboost"
    assert recipe.features == FEATURE_NAMES
    assert recipe.window_days == 7
    again = Recipe.from_json(recipe.to_json())
    assert again == recipe
    custom = Recipe(model="random_forest", params={"max_depth": 5}, features=BASELINE_NAMES)
    assert Recipe.from_json(custom.to_json()) == custom
    for recorded in RECORDED.values():
        assert Recipe.from_json(recorded.to_json()) == recorded


def test_recipe_is_frozen_and_rejects_labels() -> None:
    recipe = Recipe()
    with pytest.raises(ValidationError):
        setattr(recipe, "window_days", 28)  # noqa: B010
    for bad in (("tx_amount", "tx_fraud"), ("tx_fraud_scenario",), ("tx_time_days",), ()):
        with pytest.raises(ValidationError):
            Recipe(features=bad)
    with pytest.raises(ValidationError):
        Recipe(features=("tx_amount", "tx_amount"))
    with pytest.raises(ValidationError):
        Recipe.model_validate({"model": "svm"})
    with pytest.raises(ValidationError):
        Recipe(window_days=0)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("xgboost", XGBClassifier),
        ("logistic_regression", Pipeline),
        ("random_forest", RandomForestClassifier),
    ],
)
def test_fit_trains_each_kind(kind: str, expected: type) -> None:
    recipe = Recipe.model_validate({"model": kind, "features": ["tx_amount", "tx_during_night"]})
    frame = train_frame()
    estimator = models.fit(recipe, frame)
    assert isinstance(estimator, expected)
    scores = models.predict_scores(estimator, recipe, frame)
    assert scores.shape == (len(frame),)
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[frame["tx_fraud"] == 1].mean() > scores[frame["tx_fraud"] == 0].mean()


def test_xgboost_defaults_and_overrides() -> None:
    estimator = models.build_estimator(Recipe(params={"max_depth": 3}, seed=7))
    params = estimator.get_params()
    assert params["tree_method"] == "hist"
    assert params["base_score"] == 0.5
    assert params["n_jobs"] == 2
    assert params["max_depth"] == 3
    assert params["random_state"] == 7


def test_fit_needs_both_classes() -> None:
    frame = train_frame().assign(tx_fraud=0)
    with pytest.raises(ValueError, match="frauds and genuine"):
        models.fit(Recipe(), frame)
