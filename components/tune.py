"""Component ``tune``: Optuna search of the recipe on the prequential validation folds."""

from fraudrisk.components import FRAUDRISK_IMAGE, PACKAGES
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output


@dsl.component(base_image=FRAUDRISK_IMAGE, packages_to_install=PACKAGES, install_kfp_package=False)
def tune(
    dataset: Input[Dataset],
    recipe: Output[Artifact],
    n_trials: int,
    timeout_s: float = 0.0,
    window_days: int = 56,
    model: str = "xgboost",
    storage: str = "",
) -> None:
    """Tune and write the best recipe as JSON; the study resumes from ``storage``.

    Args:
        dataset: Output of ``build_dataset``.
        recipe: The recipe (JSON file).
        n_trials: Optuna trials of this run.
        timeout_s: Time budget of the tuning in seconds (0 = none).
        window_days: Training window of the recipe.
        model: ``xgboost`` or a scikit-learn baseline kind.
        storage: Optuna storage URL (empty = the settings' database).
    """
    from pathlib import Path

    from fraudrisk.config import get_settings
    from fraudrisk.training import steps

    steps.tune_step(
        Path(dataset.path) / "dataset.parquet",
        Path(recipe.path),
        settings=get_settings(),
        n_trials=n_trials,
        timeout_s=timeout_s or None,
        storage=storage or None,
        window_days=window_days,
        model=model,  # type: ignore[arg-type]
    )
