"""Component ``calibrate``: isotonic or Platt calibration on the hold-out week."""

from fraudrisk.components import FRAUDRISK_IMAGE, PACKAGES
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output


@dsl.component(base_image=FRAUDRISK_IMAGE, packages_to_install=PACKAGES, install_kfp_package=False)
def calibrate(
    dataset: Input[Dataset],
    recipe: Input[Artifact],
    model: Input[Model],
    calibrated_model: Output[Model],
    reliability_plot: Output[Artifact],
) -> None:
    """Calibrate the model so its score is a probability; save the reliability plot (PNG).

    Args:
        dataset: Output of ``build_dataset``.
        recipe: Output of ``tune``.
        model: Output of ``train``.
        calibrated_model: The calibrated model (pickle).
        reliability_plot: Reliability diagram on the hold-out week (PNG).
    """
    from pathlib import Path

    from fraudrisk.training import steps

    steps.calibrate_step(
        Path(dataset.path) / "dataset.parquet",
        Path(recipe.path),
        Path(model.path),
        Path(calibrated_model.path),
        Path(reliability_plot.path),
    )
