"""The training stages chained in-process on a small 183-day synthetic lake."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from tests.support.data import PERMISSIVE, build_lake

from fraudrisk.config import Settings, get_settings
from fraudrisk.registry import versions as registry
from fraudrisk.registry.mlflow_io import mlflow_client
from fraudrisk.training import results
from fraudrisk.training.holdout import plan_windows
from fraudrisk.training.run import TrainingResult, resolve_recipe, run_training
from fraudrisk.training.step_files import read_dataset
from fraudrisk.training.tune import default_study_name


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("training")
    patch = pytest.MonkeyPatch()
    patch.setenv("FRAUDRISK_HOME", str(root / "home"))
    get_settings.cache_clear()
    yield root
    patch.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def lake(home: Path) -> tuple[str, str]:
    return build_lake(home)


def fast_run(settings: Settings, lake: tuple[str, str], workdir: Path) -> TrainingResult:
    table_uri, lake_uri = lake
    return run_training(
        settings,
        table_uri=table_uri,
        lake_uri=lake_uri,
        n_trials=2,
        timeout_s=None,
        workdir=workdir,
        bootstrap=True,
        gate_config=PERMISSIVE,
        window_days=14,
    )


@pytest.fixture(scope="module")
def first_run(home: Path, lake: tuple[str, str]) -> TrainingResult:
    return fast_run(get_settings(), lake, home / "run-1")


def test_run_registers_a_challenger_and_bootstraps_the_champion(
    first_run: TrainingResult,
) -> None:
    assert first_run.gate.passed
    assert first_run.version.alias == registry.CHALLENGER
    assert first_run.aliases == [registry.CHALLENGER, registry.CHAMPION]
    assert first_run.version.model_uri == "models:/fraud-risk/1"
    assert set(first_run.seconds) == {
        "dataset",
        "tune",
        "train",
        "calibrate",
        "evaluate",
        "validate",
        "register",
    }


def test_artifacts_and_metrics_json(first_run: TrainingResult) -> None:
    for name in ("reliability", "pr_curve", "feature_importance", "shap_summary"):
        assert first_run.artifacts[name].stat().st_size > 1000
    metrics = json.loads(first_run.artifacts["metrics"].read_text())
    assert set(metrics) >= {
        "baseline",
        "test_folds",
        "per_fold",
        "scenario_recall",
        "holdout",
        "thresholds",
        "shap",
    }
    assert metrics["shap"]["plot"] == "plots/shap_summary.png"
    assert len(metrics["shap"]["mean_abs"]) == 19
    assert set(metrics["test_folds"]) == {"mean", "std"}
    assert set(metrics["test_folds"]["mean"]) == {
        "auc_roc",
        "average_precision",
        "card_precision_at_100",
    }
    assert len(metrics["per_fold"]) == 4
    assert "all" in metrics["scenario_recall"]
    assert 0 <= metrics["thresholds"]["review"] <= metrics["thresholds"]["decline"]


def test_registered_run_records_recipe_and_gate_metrics(first_run: TrainingResult) -> None:
    client = mlflow_client(get_settings())
    run = client.get_run(first_run.version.run_id)
    assert resolve_recipe("TUNED_56DAY").model == "xgboost"
    recorded = run.data.params["recipe"]
    assert json.loads(recorded)["window_days"] == 14
    assert run.data.metrics["average_precision"] == pytest.approx(
        first_run.metrics["test_folds"]["mean"]["average_precision"]
    )
    plots = {item.path for item in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {
        f"plots/{name}.png"
        for name in ("reliability", "pr_curve", "feature_importance", "shap_summary")
    }


def test_results_read_the_version_back_from_mlflow(first_run: TrainingResult, home: Path) -> None:
    settings = get_settings()
    versions = results.registered_versions(settings)
    assert versions.loc[1, "aliases"] == "challenger, champion"
    assert versions.loc[1, "status"] == registry.PASSED
    assert results.aliases(settings, "1") == ["challenger", "champion"]
    table = results.version_metrics(settings, "1")
    mean = first_run.metrics["test_folds"]["mean"]
    assert table.loc["average_precision", "test folds (mean)"] == pytest.approx(
        mean["average_precision"]
    )
    assert table.loc["average_precision", "book best"] == 0.694
    assert table.loc["auc_roc", "baseline fold"] == pytest.approx(
        first_run.metrics["baseline"]["auc_roc"]
    )
    recall = results.scenario_recall(settings, "1")
    assert recall["all"] == pytest.approx(first_run.metrics["scenario_recall"]["all"])
    plots = results.download_plots(settings, "1", home / "downloaded")
    assert list(plots) == ["feature_importance", "pr_curve", "reliability", "shap_summary"]
    assert plots["shap_summary"].read_bytes() == first_run.artifacts["shap_summary"].read_bytes()


def test_training_window_ends_a_delay_before_the_holdout(first_run: TrainingResult) -> None:
    frame = read_dataset(first_run.artifacts["dataset"])
    windows = plan_windows(frame, 14)
    assert windows.holdout_end == dt.date(2018, 9, 24)  # last day 09-30, 7-day label delay
    assert windows.holdout_start == dt.date(2018, 9, 17)
    assert windows.train_end == dt.date(2018, 9, 10)
    assert windows.train_start == dt.date(2018, 8, 27)


def test_trials_are_nested_mlflow_runs_and_a_second_run_resumes(
    first_run: TrainingResult, home: Path, lake: tuple[str, str]
) -> None:
    settings = get_settings()
    client = mlflow_client(settings)
    experiment = client.get_experiment_by_name("fraud-risk")
    assert experiment is not None
    trials = client.search_runs([experiment.experiment_id], "attributes.run_name LIKE 'trial-%'")
    assert len(trials) == 2
    assert all("mlflow.parentRunId" in run.data.tags for run in trials)
    second = fast_run(settings, lake, home / "run-2")
    study = optuna.load_study(study_name=default_study_name("xgboost", 14), storage=settings.db_url)
    assert len(study.trials) == 4
    assert second.version.version == "2"
    assert second.aliases == [registry.CHALLENGER]  # champion stays on version 1
    assert_compared_head_to_head(first_run, second)


def assert_compared_head_to_head(first: TrainingResult, second: TrainingResult) -> None:
    """The gate scored champion v1 on v2's hold-out, the days v1 was itself calibrated on.

    v1's evaluation measured it on those rows in memory; the gate loaded it back through the
    registry and the serving loader: the two must agree, as must v2's own numbers.
    """
    compared = second.gate.head_to_head
    assert compared is not None, second.gate.comparison
    assert compared.champion_version == "1"
    assert compared.period == "2018-09-17..2018-09-24"
    assert second.gate.comparison.startswith("head-to-head with champion v1")
    for run, side in ((first, compared.champion), (second, compared.candidate)):
        recorded = run.metrics["holdout"]["average_precision"]
        assert side["average_precision"] == pytest.approx(recorded, abs=1e-9)
