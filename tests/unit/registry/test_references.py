"""Each registered version carries its reference: logged at registration, loadable, rebuildable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.unit.monitoring.monitored import (
    REFERENCE_ROWS,
    TRAIN_DAYS,
    Monitored,
    day,
    register,
)
from typer.testing import CliRunner

from fraudrisk.cli.main import app
from fraudrisk.config import get_settings
from fraudrisk.errors import MonitoringError
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.monitoring.backfill import build_missing_reference
from fraudrisk.monitoring.drift import drift_report
from fraudrisk.registry.mlflow_io import mlflow_client
from fraudrisk.registry.references import (
    REFERENCE_TAG,
    SCORE_COLUMN,
    build_reference,
    load_reference,
    resolve_version,
)
from fraudrisk.training import steps
from fraudrisk.training.gate import GateResult
from fraudrisk.training.holdout import plan_windows, rows_between
from fraudrisk.training.protocol import METRICS
from fraudrisk.training.recipes import Recipe
from fraudrisk.training.thresholds import choose_thresholds


def test_registration_logs_a_reference_the_version_points_at(monitored: Monitored) -> None:
    version = resolve_version(monitored.settings, monitored.version.model_uri)
    assert version.tags[REFERENCE_TAG] == f"runs:/{monitored.version.run_id}/reference"
    files = mlflow_client(monitored.settings).list_artifacts(monitored.version.run_id, "reference")
    names = {Path(f.path).name for f in files}
    assert {"features.parquet", "meta.json", "scores.parquet"} <= names
    assert names <= {"features.parquet", "meta.json", "scores.parquet", "importance.json"}


def test_reference_is_a_sample_of_the_training_rows_with_the_models_scores(
    monitored: Monitored,
) -> None:
    reference = load_reference(monitored.settings, monitored.version.model_uri)
    assert reference.feature_names == FEATURE_NAMES
    assert len(reference.rows) == REFERENCE_ROWS < len(monitored.train)
    assert reference.rows["transaction_id"].is_unique
    assert set(reference.rows["transaction_id"]) <= set(monitored.train["transaction_id"])
    training = monitored.train.set_index("transaction_id").loc[reference.rows["transaction_id"]]
    np.testing.assert_allclose(
        reference.rows[list(FEATURE_NAMES)].to_numpy(), training[list(FEATURE_NAMES)].to_numpy()
    )
    expected = monitored.model.predict_fraud_probability(
        training[list(FEATURE_NAMES)].astype(np.float32)
    )
    np.testing.assert_allclose(reference.scores.to_numpy(), expected, rtol=1e-6)
    assert reference.meta["period"] == f"{day(TRAIN_DAYS[0])}..{day(TRAIN_DAYS[1])}"
    assert reference.meta["source_rows"] == len(monitored.train)


def test_alias_and_version_uris_load_the_same_reference(monitored: Monitored) -> None:
    by_alias = load_reference(monitored.settings, "models:/fraud-risk@champion")
    by_version = load_reference(monitored.settings, monitored.version.model_uri)
    assert by_alias.meta["version"] == by_version.meta["version"] == monitored.version.version
    pd.testing.assert_frame_equal(by_alias.rows, by_version.rows)


def test_the_sample_is_seeded(monitored: Monitored) -> None:
    def probability(frame: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(frame))

    first, second = (
        build_reference(monitored.train, FEATURE_NAMES, probability, 200, {}) for _ in range(2)
    )
    assert first.rows["transaction_id"].tolist() == second.rows["transaction_id"].tolist()
    assert len(first.rows) == 200
    with pytest.raises(MonitoringError, match="lack the model's feature"):
        build_reference(
            monitored.train.drop(columns="tx_amount"), FEATURE_NAMES, probability, 9, {}
        )


def test_unknown_models_and_bad_uris_are_clear_errors(monitored: Monitored) -> None:
    with pytest.raises(MonitoringError, match="no registered model models:/fraud-risk/99"):
        load_reference(monitored.settings, "models:/fraud-risk/99")
    with pytest.raises(MonitoringError, match="no registered model models:/fraud-risk@nobody"):
        load_reference(monitored.settings, "models:/fraud-risk@nobody")
    with pytest.raises(MonitoringError, match="not a registry model URI"):
        load_reference(monitored.settings, "fraud-risk")


def test_a_version_without_reference_is_built_one_from_its_recorded_training_period(
    monitored: Monitored,
) -> None:
    period = f"{day(TRAIN_DAYS[0])}..{day(TRAIN_DAYS[1] + 1)}"  # recorded end is exclusive
    ref = json.dumps({"table_uri": monitored.table_uri, "train_period": period})
    older = register(
        monitored.settings,
        monitored.model,
        monitored.train,
        with_reference=False,
        training_data_ref=ref,
    )
    with pytest.raises(MonitoringError, match="fraudrisk monitor reference --model"):
        load_reference(monitored.settings, older.model_uri)

    built = build_missing_reference(monitored.settings, older.model_uri)
    loaded = load_reference(monitored.settings, older.model_uri)
    assert built.meta["period"] == f"{day(TRAIN_DAYS[0])}..{day(TRAIN_DAYS[1])}"
    assert len(loaded.rows) == REFERENCE_ROWS
    assert set(loaded.rows["transaction_id"]) <= set(monitored.train["transaction_id"])
    assert loaded.scores.between(0, 1).all()
    # Same model, same training rows, same seed: the reference it would have had.
    at_registration = load_reference(monitored.settings, monitored.version.model_uri)
    assert set(loaded.rows["transaction_id"]) == set(at_registration.rows["transaction_id"])


def test_a_version_recording_no_period_needs_the_days(monitored: Monitored) -> None:
    with pytest.raises(MonitoringError, match="records no training period: give --start"):
        build_missing_reference(monitored.settings, monitored.version.model_uri)


def test_register_step_logs_the_training_window_as_reference(
    monitored: Monitored, tmp_path: Path
) -> None:
    frame = monitored.frame
    dataset = tmp_path / "dataset.parquet"
    frame.to_parquet(dataset, index=False)
    dataset.with_suffix(".json").write_text(json.dumps({"rows": len(frame)}))
    recipe = tmp_path / "recipe.json"
    recipe.write_text(Recipe(model="xgboost", window_days=14).to_json())
    model = tmp_path / "model.pkl"
    pd.to_pickle(monitored.model, model)
    windows = plan_windows(frame, 14)
    means = {name: 0.5 for name in METRICS}
    metrics = {
        "test_folds": {"mean": means, "std": means},
        "baseline": means,
        "scenario_recall": {},
        "holdout": {"period": "", "train_period": "", "average_precision": 0.5, "brier": 0.1},
        "thresholds": choose_thresholds(
            frame["tx_fraud"], np.linspace(0, 1, len(frame))
        ).model_dump(mode="json"),
    }
    version = steps.register_step(
        monitored.settings,
        model_path=model,
        recipe_path=recipe,
        dataset_path=dataset,
        metrics=metrics,
        artifacts={},
        gate_result=GateResult(passed=True),
    )
    reference = load_reference(monitored.settings, version.model_uri)
    training = rows_between(frame, windows.train_start, windows.train_end)
    assert len(reference.rows) == REFERENCE_ROWS
    assert set(reference.rows["transaction_id"]) <= set(training["transaction_id"])
    assert reference.rows[SCORE_COLUMN].between(0, 1).all()


@pytest.fixture
def cli_home(monitored: Monitored) -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    patch.setenv("FRAUDRISK_HOME", str(monitored.settings.home))
    patch.setenv("FRAUDRISK_MONITORING__REFERENCE_ROWS", str(REFERENCE_ROWS))
    get_settings.cache_clear()
    yield
    patch.undo()
    get_settings.cache_clear()


def test_cli_reference_builds_one_for_an_older_version(
    monitored: Monitored, cli_home: None
) -> None:
    period = f"{day(TRAIN_DAYS[0])}..{day(TRAIN_DAYS[1] + 1)}"
    ref = json.dumps({"table_uri": monitored.table_uri, "train_period": period})
    older = register(
        monitored.settings,
        monitored.model,
        monitored.train,
        with_reference=False,
        training_data_ref=ref,
    )
    command = ["monitor", "reference", "--model", older.model_uri]
    built = CliRunner().invoke(app, command)
    assert built.exit_code == 0, built.output
    assert f"{REFERENCE_ROWS:,} of {len(monitored.train):,} rows" in built.stdout
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 2
    assert "has a reference already (--force replaces it)" in again.output


def test_cli_reference_without_a_recorded_period_asks_for_the_days(
    monitored: Monitored, cli_home: None
) -> None:
    command = ["monitor", "reference", "--model", monitored.version.model_uri, "--force"]
    outcome = CliRunner().invoke(app, command)
    assert outcome.exit_code == 2
    assert "records no training period: give --start and --end" in outcome.output


def test_a_drift_report_of_a_version_without_reference_nor_period_says_what_to_do(
    monitored: Monitored,
) -> None:
    bare = register(monitored.settings, monitored.model, monitored.train, with_reference=False)
    expected = r"has no reference and none can be built .* --model models:/fraud-risk/\d+ --start"
    with pytest.raises(MonitoringError, match=expected):
        drift_report(monitored.settings, bare.model_uri, "lake", day(58), day(64))
