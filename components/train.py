"""Component ``train``: fit the recipe on the served model's training window."""

from fraudrisk.components import FRAUDRISK_IMAGE, PACKAGES
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output


@dsl.component(base_image=FRAUDRISK_IMAGE, packages_to_install=PACKAGES, install_kfp_package=False)
def train(dataset: Input[Dataset], recipe: Input[Artifact], model: Output[Model]) -> None:
    """Fit the recipe and pickle the estimator into ``model``.

    Args:
        dataset: Output of ``build_dataset``.
        recipe: Output of ``tune``.
        model: The fitted, uncalibrated estimator (pickle).
    """
    from pathlib import Path

    from fraudrisk.training import steps

    steps.train_step(Path(dataset.path) / "dataset.parquet", Path(recipe.path), Path(model.path))
