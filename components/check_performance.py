"""Component ``check_performance``: delayed-label performance of the latest labelled window."""

from typing import NamedTuple

from fraudrisk.components import FRAUDRISK_IMAGE, PACKAGES
from kfp import dsl
from kfp.dsl import Artifact, Metrics, Output


@dsl.component(base_image=FRAUDRISK_IMAGE, packages_to_install=PACKAGES, install_kfp_package=False)
def check_performance(
    result: Output[Artifact],
    metrics: Output[Metrics],
    model_uri: str = "models:/fraud-risk@champion",
    source: str = "lake",
    window_days: int = 7,
    end: str = "",
    metrics_dir: str = "",
) -> NamedTuple("Outputs", [("triggered", bool)]):  # type: ignore[valid-type]
    """AP, CP@100 and recall per day and variant over the days whose labels are known.

    The labelled window is the ``window_days`` days ending ``monitoring.label_delay_days``
    before ``end``.

    Args:
        result: The :class:`~fraudrisk.monitoring.results.PerformanceResult` as JSON.
        metrics: The window's average precision, the model's own test AP and the drop.
        model_uri: The monitored model (``models:/<name>@<alias>`` or a version).
        source: ``lake`` (feature table, scored now) or ``scores`` (the score store).
        window_days: Days of the labelled window.
        end: The day of the check, ``YYYY-MM-DD``; empty = the source's latest day.
        metrics_dir: Folder of the Prometheus textfile (empty = HOME/monitoring/metrics).

    Returns:
        ``triggered``: the average precision dropped beyond ``monitoring.max_performance_drop``.
    """
    from collections import namedtuple

    from fraudrisk.monitoring.pipeline_steps import check_component

    checked = check_component(
        "performance", result.path, model_uri, source, window_days, end, metrics_dir
    )
    for name in ("average_precision", "expected_average_precision", "drop"):
        value = getattr(checked, name)
        if value is not None:  # no labelled day yet: nothing to log
            metrics.log_metric(name, value)
    return namedtuple("Outputs", ["triggered"])(checked.triggered)
