"""The stages of the training pipeline: plain functions from files and URIs to files.

A KFP component body is one call to one of these; :mod:`fraudrisk.training.run` chains them
in-process. Dates of the *served* model: :func:`fraudrisk.training.holdout.plan_windows`. The
*evaluation* retrains the recipe under the handbook protocol (4 prequential test folds, known
cards filtered): these are the gate's metrics, comparable with the book and the champion.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from fraudrisk.config import Settings
from fraudrisk.io.lake import Lake
from fraudrisk.registry import versions as registry
from fraudrisk.schemas import DecisionCosts, Thresholds
from fraudrisk.training import estimators as models
from fraudrisk.training.calibrate import (
    CalibratedModel,
    CalibrationMethod,
    calibrate,
    reliability_plot,
)
from fraudrisk.training.dataset import load_frame
from fraudrisk.training.explain import shap_summary_plot
from fraudrisk.training.gate import GateConfig, GateResult, gate
from fraudrisk.training.head_to_head import CandidateFiles
from fraudrisk.training.holdout import plan_windows, rows_between
from fraudrisk.training.metrics import average_precision
from fraudrisk.training.protocol import METRICS, SCORE, summarise
from fraudrisk.training.recipes import TUNED_56DAY, ModelKind, Recipe
from fraudrisk.training.report import (
    fold_metrics,
    importance_plot,
    pr_curve_plot,
    scenario_recall,
    score_test_folds,
)
from fraudrisk.training.splits import BASELINE_TRAIN_START
from fraudrisk.training.step_files import dump_pickle, load_pickle, read_dataset, read_recipe
from fraudrisk.training.thresholds import choose_thresholds
from fraudrisk.training.tune import tune

#: Alert budget of the per-scenario recall: cards an analyst team checks per day (as CP@100).
#: Fewer hold-out frauds than this: Platt scaling instead of isotonic regression.
MIN_FRAUDS_ISOTONIC = 200
#: The book's best published test results (§4 of the benchmark spec).
BOOK_BEST = {"auc_roc": 0.875, "average_precision": 0.694, "card_precision_at_100": 0.304}


def build_dataset(table_uri: str, lake_uri: str, out_path: Path) -> Path:
    """Write the training frame (features, labels, ``tx_amount``) as Parquet, plus a JSON ref.

    The sidecar ``<out>.json`` names the sources, the period, the row count and the file's
    SHA-256: the training data reference stored with the model.
    """
    frame = load_frame(table_uri, lake_uri)
    if "tx_amount" not in frame.columns:  # a feature today; the thresholds need it anyway
        amounts = Lake.open(lake_uri).read(columns=["transaction_id", "tx_amount"]).to_pandas()
        frame = frame.merge(amounts, on="transaction_id", how="left", validate="one_to_one")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out_path, index=False)
    ref = {
        "table_uri": table_uri,
        "lake_uri": lake_uri,
        "rows": len(frame),
        "first_day": str(frame["tx_datetime"].min().date()),
        "last_day": str(frame["tx_datetime"].max().date()),
        "sha256": hashlib.sha256(out_path.read_bytes()).hexdigest(),
    }
    out_path.with_suffix(".json").write_text(json.dumps(ref, indent=2))
    return out_path


def tune_step(
    dataset_path: Path,
    out_recipe_path: Path,
    *,
    settings: Settings,
    n_trials: int | None,
    timeout_s: float | None = None,
    storage: str | None = None,
    window_days: int = TUNED_56DAY.window_days,
    model: ModelKind = "xgboost",
) -> Recipe:
    """Tune on the validation folds; every trial is a nested MLflow run of a ``tune`` run.

    The study lives in ``storage`` (default: the settings' database), so a run resumes it; for
    XGBoost at the recorded window the recorded recipe is the first trial.
    """
    frame = read_dataset(dataset_path)
    start = [dict(TUNED_56DAY.params)] if window_days == TUNED_56DAY.window_days else []
    with registry.mlflow_uris(settings) as client:
        experiment_id = _experiment_id(client, settings)
        with mlflow.start_run(experiment_id=experiment_id, run_name="tune", nested=True):
            mlflow.log_params({"model": model, "window_days": window_days, "n_trials": n_trials})
            recipe = tune(
                frame,
                model,
                window_days=window_days,
                n_trials=n_trials,
                timeout_s=timeout_s,
                storage=storage or settings.db_url,
                callbacks=[_log_trial],
                start_from=start if model == "xgboost" else (),
            )
            mlflow.log_param("recipe", recipe.to_json())
    out_recipe_path.parent.mkdir(parents=True, exist_ok=True)
    out_recipe_path.write_text(recipe.to_json())
    return recipe


def _log_trial(study: Any, trial: Any) -> None:
    """Optuna callback: the trial's params and mean validation AP as a nested run."""
    parent = mlflow.active_run()
    experiment_id = parent.info.experiment_id if parent else None
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"trial-{trial.number}", nested=True
    ):
        mlflow.log_params(trial.params)
        mlflow.set_tags({"optuna_study": study.study_name, "state": trial.state.name})
        for step, value in trial.intermediate_values.items():
            mlflow.log_metric("fold_average_precision", value, step=step)
        if trial.value is not None:
            mlflow.log_metric("val_average_precision", trial.value)


def _experiment_id(client: Any, settings: Settings) -> str:
    """The registration experiment (created as the registry would: artifacts under HOME)."""
    name = registry.RegistryOptions().experiment_name
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    local = not settings.mlflow_tracking_uri.startswith(("http://", "https://"))
    location = settings.mlflow_artifacts_uri if local else None
    return str(client.create_experiment(name, artifact_location=location))


def train_step(dataset_path: Path, recipe_path: Path, out_model_path: Path) -> Path:
    """Fit the recipe on its window of :func:`plan_windows` and pickle the estimator."""
    frame, recipe = read_dataset(dataset_path), read_recipe(recipe_path)
    windows = plan_windows(frame, recipe.window_days)
    estimator = models.fit(recipe, rows_between(frame, windows.train_start, windows.train_end))
    return dump_pickle(estimator, out_model_path)


def calibrate_step(
    dataset_path: Path, recipe_path: Path, model_path: Path, out_model_path: Path, plot_path: Path
) -> CalibratedModel:
    """Calibrate on the hold-out week (isotonic, Platt with few frauds); save the plot."""
    frame, recipe = read_dataset(dataset_path), read_recipe(recipe_path)
    windows = plan_windows(frame, recipe.window_days)
    holdout = rows_between(frame, windows.holdout_start, windows.holdout_end)
    labels = holdout["tx_fraud"].to_numpy()
    method: CalibrationMethod = "isotonic" if labels.sum() >= MIN_FRAUDS_ISOTONIC else "sigmoid"
    model = calibrate(load_pickle(model_path), _inputs(recipe, holdout), labels, method=method)
    probabilities = model.predict_fraud_probability(_inputs(recipe, holdout))
    reliability_plot(labels, probabilities, plot_path, title=f"Reliability, hold-out ({method})")
    dump_pickle(model, out_model_path)
    return model


def _inputs(recipe: Recipe, frame: pd.DataFrame) -> pd.DataFrame:
    """The model inputs as a float32 DataFrame in recipe order."""
    return frame[list(recipe.features)].astype(np.float32)


def evaluate_step(
    dataset_path: Path,
    recipe_path: Path,
    model_path: Path,
    out_dir: Path,
    costs: DecisionCosts | None = None,
) -> dict[str, Any]:
    """Test-fold metrics, plots, per-scenario recall and cost-based thresholds.

    Writes ``metrics.json``, ``plots/pr_curve.png``, ``plots/feature_importance.png`` and,
    for XGBoost, ``plots/shap_summary.png`` (TreeSHAP of the base model on a hold-out sample)
    under ``out_dir``. The thresholds are chosen on the calibrated hold-out scores.

    Returns:
        ``baseline``, ``test_folds`` (mean, std), ``per_fold``, ``scenario_recall`` (top
        :data:`CARDS_PER_DAY` cards/day, pooled test folds), ``holdout``, ``thresholds``,
        ``shap`` (mean |SHAP| per feature, or why it was skipped), ``book_best``.
    """
    frame, recipe = read_dataset(dataset_path), read_recipe(recipe_path)
    model: CalibratedModel = load_pickle(model_path)
    scored = score_test_folds(frame, recipe)
    per_fold = {start: fold_metrics(rows) for start, rows in scored.items()}
    pooled = pd.concat(scored.values())
    windows = plan_windows(frame, recipe.window_days)
    holdout = rows_between(frame, windows.holdout_start, windows.holdout_end)
    labels = holdout["tx_fraud"].to_numpy()
    probabilities = model.predict_fraud_probability(_inputs(recipe, holdout))
    thresholds = choose_thresholds(labels, probabilities, costs, holdout["tx_amount"].to_numpy())
    plots = out_dir / "plots"
    pr_curve_plot(pooled["tx_fraud"], pooled[SCORE], plots / "pr_curve.png")
    importance_plot(model.base_model, recipe, holdout, plots / "feature_importance.png")
    shap = shap_summary_plot(model.base_model, recipe, holdout, plots / "shap_summary.png")
    metrics = {
        "baseline": per_fold[BASELINE_TRAIN_START],
        "test_folds": summarise(list(per_fold.values())),
        "per_fold": {str(start): values for start, values in per_fold.items()},
        "scenario_recall": scenario_recall(pooled),
        "holdout": {
            "period": f"{windows.holdout_start}..{windows.holdout_end}",
            "train_period": f"{windows.train_start}..{windows.train_end}",
            "frauds": int(labels.sum()),
            "average_precision": average_precision(labels, probabilities),
            "brier": float(np.mean((probabilities - labels) ** 2)),
        },
        "thresholds": thresholds.model_dump(mode="json"),
        "shap": shap.as_json(),
        "book_best": BOOK_BEST,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def gate_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The metrics the gate checks and the registry logs under the plain names: test-fold means.

    Also ``baseline_*``, ``test_std_*``, ``holdout_*``, ``recall_*`` for the run's record.
    """
    flat = {name: float(metrics["test_folds"]["mean"][name]) for name in METRICS}
    flat |= {f"test_std_{n}": float(v) for n, v in metrics["test_folds"]["std"].items()}
    flat |= {f"baseline_{n}": float(v) for n, v in metrics["baseline"].items()}
    flat |= {f"recall_{n}": float(v) for n, v in metrics["scenario_recall"].items()}
    holdout = metrics["holdout"]
    return flat | {f"holdout_{n}": float(holdout[n]) for n in ("average_precision", "brier")}


def validate_step(
    metrics: dict[str, Any],
    settings: Settings,
    gate_config: GateConfig | None = None,
    candidate: CandidateFiles | None = None,
) -> GateResult:
    """Gate the test-fold means against the floors, and the candidate against the champion.

    With the candidate's files the regression checks compare both models on the candidate's
    hold-out rows (:mod:`fraudrisk.training.head_to_head`); otherwise, or when that is not
    possible, on each model's recorded test-fold metrics.
    """
    recorded = registry.champion_metrics(settings)
    if recorded is None or candidate is None:
        return gate(gate_metrics(metrics), recorded, gate_config)
    compared = candidate.compare_with_champion(settings)
    if isinstance(compared, str):
        return gate(gate_metrics(metrics), recorded, gate_config, fallback_reason=compared)
    return gate(gate_metrics(metrics), recorded, gate_config, head_to_head=compared)


def register_step(
    settings: Settings,
    *,
    model_path: Path,
    recipe_path: Path,
    dataset_path: Path,
    metrics: dict[str, Any],
    artifacts: dict[str, Path],
    gate_result: GateResult,
    bootstrap: bool = False,
) -> registry.RegisteredVersion:
    """Register the calibrated model (recipe as run param ``recipe``); alias if it passed.

    The version carries its monitoring reference: a sample of the rows of its training
    window, scored by the model. With ``bootstrap`` a passing version also becomes
    ``champion`` when there is none.
    """
    recipe, frame = read_recipe(recipe_path), read_dataset(dataset_path)
    ref = json.loads(dataset_path.with_suffix(".json").read_text())
    ref["holdout"], ref["train_period"] = (
        metrics["holdout"][k] for k in ("period", "train_period")
    )
    params = {f"param_{key}": value for key, value in recipe.params.items()}
    windows = plan_windows(frame, recipe.window_days)
    version = registry.register_model(
        settings,
        load_pickle(model_path),
        metrics=gate_metrics(metrics),
        params=params | {"recipe": recipe.to_json(), "model": recipe.model},
        artifacts=artifacts,
        feature_names=list(recipe.features),
        input_example=_inputs(recipe, frame.head(5)),
        training_data_ref=json.dumps(ref),
        thresholds=Thresholds.model_validate(metrics["thresholds"]),
        gate_result=gate_result,
        run_name=f"train-{recipe.model}-{recipe.window_days}d",
        reference_rows=rows_between(frame, windows.train_start, windows.train_end),
    )
    no_champion = registry.get_alias_version(settings, registry.CHAMPION) is None
    if bootstrap and version.passed and no_champion:
        registry.bootstrap_champion(settings, version.version)
    return version
