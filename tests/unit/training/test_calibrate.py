"""Calibration on held-out data: probabilities that match observed fraud rates."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fraudrisk.training.calibrate import CalibratedModel, brier, calibrate, reliability_plot


def miscalibrated_data(seed: int, n: int = 4000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    p_true = 1 / (1 + np.exp(-(2.5 * x[:, 0] - 3.0)))
    y = (rng.random(n) < p_true).astype(int)
    return pd.DataFrame(x, columns=["a", "b"]), y


@pytest.fixture(scope="module")
def overconfident_model() -> LogisticRegression:
    # Balanced class weights push every score up: a ranker, not a probability.
    x, y = miscalibrated_data(0)
    return LogisticRegression(class_weight="balanced").fit(x, y)


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibration_lowers_the_brier_score_on_new_data(
    overconfident_model: LogisticRegression, method: str
) -> None:
    x_hold, y_hold = miscalibrated_data(1)
    x_test, y_test = miscalibrated_data(2)
    calibrated = calibrate(overconfident_model, x_hold, y_hold, method=method)  # type: ignore[arg-type]
    raw = overconfident_model.predict_proba(x_test)[:, 1]
    cal = calibrated.predict_proba(x_test)[:, 1]
    assert brier(y_test, cal) < 0.8 * brier(y_test, raw)
    # Mean predicted probability close to the observed fraud rate.
    assert cal.mean() == pytest.approx(y_test.mean(), abs=0.02)


def test_the_model_is_frozen_and_the_wrapper_picklable(
    overconfident_model: LogisticRegression,
) -> None:
    coef = overconfident_model.coef_.copy()
    x_hold, y_hold = miscalibrated_data(1)
    calibrated = calibrate(overconfident_model, x_hold, y_hold)
    assert np.array_equal(overconfident_model.coef_, coef)
    assert calibrated.base_model is overconfident_model
    clone = pickle.loads(pickle.dumps(calibrated))
    assert isinstance(clone, CalibratedModel)
    proba = calibrated.predict_proba(x_hold)
    assert proba.shape == (len(x_hold), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(clone.predict_proba(x_hold), proba)
    # Columns are reordered to the training order.
    np.testing.assert_allclose(
        calibrated.predict_fraud_probability(x_hold[["b", "a"]]), proba[:, 1]
    )


def test_calibration_needs_both_classes(overconfident_model: LogisticRegression) -> None:
    x_hold, _ = miscalibrated_data(1, n=50)
    with pytest.raises(ValueError, match="both classes"):
        calibrate(overconfident_model, x_hold, np.zeros(50, dtype=int))


def test_brier_of_perfect_and_worst_predictions() -> None:
    assert brier([0, 1], [0.0, 1.0]) == 0.0
    assert brier([0, 1], [1.0, 0.0]) == 1.0


def test_reliability_plot_writes_a_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p = rng.random(1000)
    y = (rng.random(1000) < p).astype(int)
    out = reliability_plot(y, p, tmp_path / "plots" / "reliability.png", n_bins=8)
    assert out == tmp_path / "plots" / "reliability.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
