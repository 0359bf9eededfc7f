"""Component ``register``: the calibrated model into the MLflow registry (alias challenger)."""

from typing import NamedTuple

from fraudrisk.components import FRAUDRISK_IMAGE, PACKAGES
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model


@dsl.component(base_image=FRAUDRISK_IMAGE, packages_to_install=PACKAGES, install_kfp_package=False)
def register(
    dataset: Input[Dataset],
    recipe: Input[Artifact],
    calibrated_model: Input[Model],
    reliability_plot: Input[Artifact],
    evaluation: Input[Artifact],
    gate_result: Input[Artifact],
    bootstrap: bool = False,
) -> NamedTuple("Outputs", [("version", str), ("model_uri", str)]):  # type: ignore[valid-type]
    """Register the model with its metrics, plots, recipe, data reference and thresholds.

    Args:
        dataset: Output of ``build_dataset``.
        recipe: Output of ``tune``.
        calibrated_model: Output of ``calibrate``.
        reliability_plot: Output of ``calibrate``.
        evaluation: Output of ``evaluate``.
        gate_result: Output of ``validate``.
        bootstrap: Make a passing version ``champion`` when there is no champion.

    Returns:
        ``version`` and ``model_uri`` of the registered version.
    """
    import json
    from collections import namedtuple
    from pathlib import Path

    from fraudrisk.config import get_settings
    from fraudrisk.training import steps
    from fraudrisk.training.gate import GateResult
    from fraudrisk.training.report import evaluation_artifacts

    evaluated = Path(evaluation.path)
    version = steps.register_step(
        get_settings(),
        model_path=Path(calibrated_model.path),
        recipe_path=Path(recipe.path),
        dataset_path=Path(dataset.path) / "dataset.parquet",
        metrics=json.loads((evaluated / "metrics.json").read_text()),
        artifacts=evaluation_artifacts(evaluated)  # PR curve, importance, SHAP, metrics
        | {"plots/reliability.png": Path(reliability_plot.path), "recipe.json": Path(recipe.path)},
        gate_result=GateResult.model_validate_json(Path(gate_result.path).read_text()),
        bootstrap=bootstrap,
    )
    return namedtuple("Outputs", ["version", "model_uri"])(version.version, version.model_uri)
