"""Run the whole training pipeline in-process, with a progress display per stage.

Stages: dataset → tune → train → calibrate → evaluate → validate → register. The same stages
run as KFP components on a cluster; here each one reads and writes files under
``workdir`` exactly as a component would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from fraudrisk.config import Settings
from fraudrisk.console import err_console, progress_bar
from fraudrisk.registry import versions as registry
from fraudrisk.registry.mlflow_io import mlflow_client
from fraudrisk.training import recipes, steps
from fraudrisk.training.gate import GateConfig, GateResult
from fraudrisk.training.head_to_head import CandidateFiles
from fraudrisk.training.recipes import Recipe
from fraudrisk.training.report import evaluation_artifacts

T = TypeVar("T")
DEFAULT_RECIPE = "TUNED_56DAY"


class TrainingResult(BaseModel):
    """What a training run produced."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    version: registry.RegisteredVersion = Field(description="The registered version.")
    aliases: list[str] = Field(description="Aliases the version holds after the run.")
    recipe: Recipe = Field(description="The recipe trained.")
    metrics: dict[str, Any] = Field(description="The evaluation metrics (metrics.json).")
    gate: GateResult = Field(description="The validation gate's verdict.")
    artifacts: dict[str, Path] = Field(description="Files written, by name.")
    seconds: dict[str, float] = Field(description="Wall time of each stage.")


def resolve_recipe(name: str) -> Recipe:
    """A recorded recipe by constant name (``TUNED_56DAY``) or results-table row name.

    Raises:
        ValueError: If no recorded recipe has that name.
    """
    found = getattr(recipes, name, None)
    if isinstance(found, Recipe):
        return found
    if name in recipes.RECORDED:
        return recipes.RECORDED[name]
    known = [n for n in dir(recipes) if isinstance(getattr(recipes, n), Recipe)]
    raise ValueError(f"no recorded recipe {name!r}; known: {', '.join(known)}")


def run_training(
    settings: Settings,
    *,
    table_uri: str,
    lake_uri: str,
    n_trials: int,
    timeout_s: float | None,
    workdir: Path,
    recipe_name: str | None = None,
    recipe: Recipe | None = None,
    bootstrap: bool = False,
    gate_config: GateConfig | None = None,
    window_days: int = recipes.TUNED_56DAY.window_days,
) -> TrainingResult:
    """Chain every stage in-process.

    Args:
        settings: Platform settings (MLflow URIs, database of the Optuna study).
        table_uri: Feature table.
        lake_uri: Lake with the labels and amounts.
        n_trials: Optuna trials of this run; 0 without ``recipe_name`` = the recorded
            ``TUNED_56DAY`` recipe, no tuning.
        timeout_s: Time budget of the tuning (None = none).
        workdir: Where every stage writes its outputs.
        recipe_name: A recorded recipe to train instead of tuning.
        recipe: A recipe to train instead of tuning (wins over ``recipe_name``).
        bootstrap: Make a passing version ``champion`` when there is no champion.
        gate_config: Floors and tolerances of the gate (default :class:`GateConfig`).
        window_days: Training window of the tuned recipe.

    Returns:
        The registered version, its aliases, metrics, gate verdict, artifacts and timings.
    """
    files = {
        "dataset": workdir / "dataset.parquet",
        "recipe": workdir / "recipe.json",
        "model": workdir / "model.pkl",
        "calibrated_model": workdir / "calibrated_model.pkl",
        "reliability": workdir / "plots" / "reliability.png",
        "metrics": workdir / "metrics.json",
        "pr_curve": workdir / "plots" / "pr_curve.png",
        "feature_importance": workdir / "plots" / "feature_importance.png",
        "shap_summary": workdir / "plots" / "shap_summary.png",  # XGBoost only
    }
    seconds: dict[str, float] = {}
    with progress_bar() as progress:
        task = progress.add_task("training", total=7)

        def stage(name: str, call: Callable[[], T]) -> T:
            progress.update(task, description=name)
            began = time.perf_counter()
            value = call()
            seconds[name] = time.perf_counter() - began
            err_console.print(f"  {name}: {seconds[name]:.1f} s")
            progress.advance(task)
            return value

        stage("dataset", lambda: steps.build_dataset(table_uri, lake_uri, files["dataset"]))
        recipe = stage(
            "tune" if recipe is None and recipe_name is None and n_trials > 0 else "recipe",
            lambda: _recipe(
                settings, files, n_trials, timeout_s, recipe or recipe_name, window_days
            ),
        )
        stage("train", lambda: steps.train_step(files["dataset"], files["recipe"], files["model"]))
        stage("calibrate", lambda: steps.calibrate_step(*_calibrate_args(files)))
        metrics = stage(
            "evaluate",
            lambda: steps.evaluate_step(
                files["dataset"], files["recipe"], files["calibrated_model"], workdir
            ),
        )
        candidate = CandidateFiles(files["dataset"], files["recipe"], files["calibrated_model"])
        verdict = stage(
            "validate", lambda: steps.validate_step(metrics, settings, gate_config, candidate)
        )
        version = stage("register", lambda: _register(settings, files, metrics, verdict, bootstrap))
    return TrainingResult(
        version=version,
        aliases=_aliases(settings, version.version),
        recipe=recipe,
        metrics=metrics,
        gate=verdict,
        artifacts=files,
        seconds=seconds,
    )


def _recipe(
    settings: Settings,
    files: dict[str, Path],
    n_trials: int,
    timeout_s: float | None,
    recipe_name: str | Recipe | None,
    window_days: int,
) -> Recipe:
    """Tune, or write the given or recorded recipe (or TUNED_56DAY with 0 trials)."""
    if recipe_name is None and n_trials > 0:
        return steps.tune_step(
            files["dataset"],
            files["recipe"],
            settings=settings,
            n_trials=n_trials,
            timeout_s=timeout_s,
            window_days=window_days,
        )
    recipe = (
        recipe_name
        if isinstance(recipe_name, Recipe)
        else resolve_recipe(recipe_name or DEFAULT_RECIPE)
    )
    files["recipe"].parent.mkdir(parents=True, exist_ok=True)
    files["recipe"].write_text(recipe.to_json())
    return recipe


def _calibrate_args(files: dict[str, Path]) -> tuple[Path, Path, Path, Path, Path]:
    return (
        files["dataset"],
        files["recipe"],
        files["model"],
        files["calibrated_model"],
        files["reliability"],
    )


def _register(
    settings: Settings,
    files: dict[str, Path],
    metrics: dict[str, Any],
    verdict: GateResult,
    bootstrap: bool,
) -> registry.RegisteredVersion:
    artifacts = evaluation_artifacts(files["metrics"].parent)  # with plots/reliability.png
    artifacts["recipe.json"] = files["recipe"]
    return steps.register_step(
        settings,
        model_path=files["calibrated_model"],
        recipe_path=files["recipe"],
        dataset_path=files["dataset"],
        metrics=metrics,
        artifacts=artifacts,
        gate_result=verdict,
        bootstrap=bootstrap,
    )


def _aliases(settings: Settings, version: str) -> list[str]:
    """The aliases that point at ``version`` now."""
    found = mlflow_client(settings).get_model_version(settings.mlflow.model_name, version)
    return sorted(found.aliases)
