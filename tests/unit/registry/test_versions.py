"""The MLflow registry on the embedded default (SQLite + local artifacts under HOME)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fraudrisk.config import MlflowSettings, Settings
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.registry.mlflow_io import mlflow_client
from fraudrisk.registry.versions import (
    CHALLENGER,
    CHAMPION,
    PROBABILITY_COLUMN,
    RegisteredVersion,
    bootstrap_champion,
    champion_metrics,
    get_alias_version,
    load_pyfunc,
    promote,
    register_model,
)
from fraudrisk.training.calibrate import CalibratedModel, calibrate, reliability_plot
from fraudrisk.training.gate import GateConfig, GateResult, gate
from fraudrisk.training.thresholds import Thresholds, choose_thresholds

FEATURES = list(FEATURE_NAMES[:4])
GOOD = {"average_precision": 0.8, "auc_roc": 0.95, "card_precision@100": 0.4}


def frame(seed: int, n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * x[FEATURES[0]] - 2)))).astype(int).to_numpy()
    return x, y


@pytest.fixture(scope="module")
def calibrated() -> CalibratedModel:
    x, y = frame(0)
    model = LogisticRegression(class_weight="balanced").fit(x, y)
    x_hold, y_hold = frame(1)
    return calibrate(model, x_hold, y_hold, method="sigmoid")


def register(
    settings: Settings, model: CalibratedModel, result: GateResult, plots: Path
) -> RegisteredVersion:
    x, y = frame(2, n=300)
    thresholds = choose_thresholds(y, model.predict_fraud_probability(x))
    return register_model(
        settings,
        model,
        metrics=GOOD,
        params={"model": "logistic_regression", "C": 1.0},
        artifacts={"plots/reliability.png": plots},
        feature_names=FEATURES,
        input_example=x.head(5),
        training_data_ref="lake://test?start=2018-04-01&end=2018-05-01",
        thresholds=thresholds,
        gate_result=result,
        run_name="unit-test",
    )


def test_register_gate_alias_and_promotion(
    tmp_path: Path, calibrated: CalibratedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a stray ./mlruns would show up here
    settings = Settings(home=tmp_path / "home", mlflow=MlflowSettings())
    x, y = frame(3, n=200)
    plot = reliability_plot(y, calibrated.predict_fraud_probability(x), tmp_path / "rel.png")
    before = mlflow.get_tracking_uri()

    first = register(settings, calibrated, gate(GOOD, None), plot)
    assert first.passed and first.alias == CHALLENGER and first.version == "1"
    assert mlflow.get_tracking_uri() == before  # the global URI is restored
    assert get_alias_version(settings, CHALLENGER) == "1"
    assert get_alias_version(settings, CHAMPION) is None
    assert champion_metrics(settings) is None

    registry = mlflow_client(settings)
    version = registry.get_model_version("fraud-risk", "1")
    assert version.tags["feature_service"] == "fraud_scoring_v1"
    assert version.tags["feature_set_version"] == "v1"
    assert version.tags["training_data_ref"].startswith("lake://test")
    assert version.tags["validation_status"] == "passed"
    thresholds = Thresholds.model_validate_json(version.tags["decision_thresholds"])
    assert thresholds.review <= thresholds.decline
    run = registry.get_run(first.run_id)
    assert run.data.metrics["card_precision_at_100"] == pytest.approx(0.4)
    assert run.data.params["model"] == "logistic_regression"
    artifacts = {a.path for a in registry.list_artifacts(first.run_id, "plots")}
    assert artifacts == {"plots/reliability.png"}

    model = load_pyfunc(settings, f"models:/fraud-risk@{CHALLENGER}")
    signature = model.metadata.get_input_schema()
    assert signature.input_names() == FEATURES
    assert model.metadata.get_output_schema().input_names() == [PROBABILITY_COLUMN]
    served = model.predict(x[list(reversed(FEATURES))])
    np.testing.assert_allclose(
        served[PROBABILITY_COLUMN].to_numpy(), calibrated.predict_fraud_probability(x)
    )
    assert (settings.home / "mlartifacts").is_dir()
    assert not (tmp_path / "mlruns").exists()

    rejected = register(
        settings, calibrated, gate({**GOOD, "average_precision": 0.1}, None, GateConfig()), plot
    )
    assert not rejected.passed and rejected.alias is None and rejected.version == "2"
    tags = registry.get_model_version("fraud-risk", "2").tags
    assert tags["validation_status"] == "rejected"
    assert "below the floor" in json.loads(tags["gate_result"])["reasons"][0]
    assert registry.get_model_version("fraud-risk", "2").aliases == []
    assert get_alias_version(settings, CHALLENGER) == "1"
    with pytest.raises(ValueError, match="rejected"):
        promote(settings, 2)
    with pytest.raises(ValueError, match="rejected"):
        bootstrap_champion(settings, 2)

    bootstrap_champion(settings, 1)
    assert get_alias_version(settings, CHAMPION) == "1"
    assert champion_metrics(settings) == pytest.approx(
        {"average_precision": 0.8, "auc_roc": 0.95, "card_precision_at_100": 0.4}
    )
    with pytest.raises(ValueError, match="already exists"):
        bootstrap_champion(settings, 1)

    third = register(settings, calibrated, gate(GOOD, champion_metrics(settings)), plot)
    assert third.alias == CHALLENGER and get_alias_version(settings, CHALLENGER) == "3"
    promote(settings, third.version)
    assert get_alias_version(settings, CHAMPION) == "3"
