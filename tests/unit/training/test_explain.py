"""SHAP summary from XGBoost's TreeSHAP; other model kinds are skipped with a reason."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudrisk.training import estimators as models
from fraudrisk.training.explain import shap_summary_plot, shap_values
from fraudrisk.training.recipes import Recipe
from fraudrisk.training.report import evaluation_artifacts

SIGNAL, NOISE, WEAK = "tx_amount", "tx_during_weekend", "customer_id_nb_tx_1day_window"
XGB = Recipe(
    model="xgboost", params={"n_estimators": 40, "max_depth": 3}, features=(SIGNAL, NOISE, WEAK)
)


def labelled_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """The label follows SIGNAL strongly, WEAK a little and NOISE not at all."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=n) for name in (SIGNAL, NOISE, WEAK)})
    logit = 3.0 * frame[SIGNAL] + 0.5 * frame[WEAK] - 2.0
    frame["tx_fraud"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


@pytest.fixture(scope="module")
def fitted() -> tuple[object, pd.DataFrame]:
    frame = labelled_frame()
    return models.fit(XGB, frame), frame


def test_shap_values_add_up_to_the_margin(fitted: tuple[object, pd.DataFrame]) -> None:
    estimator, frame = fitted
    values = shap_values(estimator, XGB, frame.head(200))
    assert list(values.columns) == list(XGB.features)
    from xgboost import DMatrix

    booster = estimator.get_booster()  # type: ignore[attr-defined]
    inputs = DMatrix(models.feature_matrix(XGB, frame.head(200)))
    margin = booster.predict(inputs, output_margin=True)
    bias = booster.predict(inputs, pred_contribs=True)[:, -1]
    np.testing.assert_allclose(values.sum(axis=1) + bias, margin, rtol=1e-4, atol=1e-4)


def test_summary_plot_ranks_the_informative_feature_first(
    fitted: tuple[object, pd.DataFrame], tmp_path: Path
) -> None:
    estimator, frame = fitted
    path = tmp_path / "plots" / "shap_summary.png"
    summary = shap_summary_plot(estimator, XGB, frame, path, rows=1000)
    assert summary.path == path and summary.skipped is None and summary.rows == 1000
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 20_000
    assert list(summary.mean_abs) == [SIGNAL, WEAK, NOISE]
    assert summary.mean_abs[SIGNAL] > 5 * summary.mean_abs[NOISE]
    assert summary.as_json()["plot"] == "plots/shap_summary.png"


def test_non_xgboost_models_are_skipped_with_a_logged_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recipe = XGB.model_copy(update={"model": "logistic_regression", "params": {}})
    frame = labelled_frame()
    estimator = models.fit(recipe, frame)
    path = tmp_path / "shap_summary.png"
    path.write_bytes(b"stale summary of an earlier model")
    with caplog.at_level(logging.WARNING, logger="fraudrisk.training.explain"):
        summary = shap_summary_plot(estimator, recipe, frame, path)
    assert summary.path is None and not path.exists()
    assert summary.skipped is not None and "logistic_regression" in summary.skipped
    assert summary.as_json() == {"skipped": summary.skipped}
    assert "SHAP summary skipped" in caplog.text
    with pytest.raises(TypeError, match="TreeSHAP"):
        shap_values(estimator, recipe, frame)


def test_evaluation_artifacts_list_every_plot_and_the_metrics(tmp_path: Path) -> None:
    for name in ("pr_curve.png", "shap_summary.png", "notes.txt"):
        (tmp_path / "plots").mkdir(exist_ok=True)
        (tmp_path / "plots" / name).write_bytes(b"x")
    assert evaluation_artifacts(tmp_path) == {
        "plots/pr_curve.png": tmp_path / "plots" / "pr_curve.png",
        "plots/shap_summary.png": tmp_path / "plots" / "shap_summary.png",
        "evaluation/metrics.json": tmp_path / "metrics.json",
    }
