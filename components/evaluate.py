"""Component ``evaluate``: test-fold metrics, plots and cost-based thresholds."""

from fraudrisk.components import FRAUDRISK_IMAGE, PACKAGES
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=FRAUDRISK_IMAGE, packages_to_install=PACKAGES, install_kfp_package=False)
def evaluate(
    dataset: Input[Dataset],
    recipe: Input[Artifact],
    calibrated_model: Input[Model],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    costs: dict = {},  # noqa: B006 -- KFP parameter default, never mutated
) -> None:
    """Write ``metrics.json`` and ``plots/*.png`` (PR curve, importance, SHAP) into ``evaluation``.

    Args:
        dataset: Output of ``build_dataset``.
        recipe: Output of ``tune``.
        calibrated_model: Output of ``calibrate``.
        evaluation: Directory with ``metrics.json`` and ``plots/``.
        metrics: The test-fold means and the run's other scalar metrics.
        costs: Decision costs (:class:`~fraudrisk.training.thresholds.DecisionCosts` fields).
    """
    from pathlib import Path

    from fraudrisk.schemas import DecisionCosts
    from fraudrisk.training import steps

    result = steps.evaluate_step(
        Path(dataset.path) / "dataset.parquet",
        Path(recipe.path),
        Path(calibrated_model.path),
        Path(evaluation.path),
        DecisionCosts.model_validate(costs),
    )
    for name, value in steps.gate_metrics(result).items():
        metrics.log_metric(name, value)
