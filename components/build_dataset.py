"""Component ``build_dataset``: the point-in-time training frame from the feature table."""

from fraudrisk.components import FRAUDRISK_IMAGE, PACKAGES
from kfp import dsl
from kfp.dsl import Dataset, Output


@dsl.component(base_image=FRAUDRISK_IMAGE, packages_to_install=PACKAGES, install_kfp_package=False)
def build_dataset(table_uri: str, lake_uri: str, dataset: Output[Dataset]) -> None:
    """Write ``dataset.parquet`` and its data reference ``dataset.json`` into ``dataset``.

    Args:
        table_uri: Feature table.
        lake_uri: Lake with the labels and amounts.
        dataset: Directory artifact holding the frame and its reference.
    """
    from pathlib import Path

    from fraudrisk.training import steps

    steps.build_dataset(table_uri, lake_uri, Path(dataset.path) / "dataset.parquet")
