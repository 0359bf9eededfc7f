"""Component ``check_drift``: Evidently drift of the latest window against the model's reference."""

from typing import NamedTuple

from fraudrisk.components import FRAUDRISK_IMAGE, PACKAGES
from kfp import dsl
from kfp.dsl import HTML, Artifact, Metrics, Output


@dsl.component(base_image=FRAUDRISK_IMAGE, packages_to_install=PACKAGES, install_kfp_package=False)
def check_drift(
    result: Output[Artifact],
    report: Output[HTML],
    metrics: Output[Metrics],
    model_uri: str = "models:/fraud-risk@champion",
    source: str = "lake",
    window_days: int = 7,
    end: str = "",
    metrics_dir: str = "",
) -> NamedTuple("Outputs", [("triggered", bool), ("drift_share", float)]):  # type: ignore[valid-type]
    """Compare the last ``window_days`` days of ``source`` with the model's reference.

    Args:
        result: The :class:`~fraudrisk.monitoring.results.DriftResult` as JSON.
        report: A copy of the Evidently HTML report (shown by the KFP UI).
        metrics: Drift share, number of drifted features and score PSI.
        model_uri: The monitored model (``models:/<name>@<alias>`` or a version).
        source: ``lake`` (feature table, scored now) or ``scores`` (the score store).
        window_days: Days of the window.
        end: Last day of the window, ``YYYY-MM-DD``; empty = the source's latest day.
        metrics_dir: Folder of the Prometheus textfile (empty = HOME/monitoring/metrics).

    Returns:
        ``triggered`` (drift beyond its thresholds) and ``drift_share``.
    """
    import shutil
    from collections import namedtuple

    from fraudrisk.monitoring.pipeline_steps import check_component

    checked = check_component(
        "drift", result.path, model_uri, source, window_days, end, metrics_dir
    )
    shutil.copyfile(checked.report, report.path)
    metrics.log_metric("drift_share", checked.drift_share)
    metrics.log_metric("drifted_features", len(checked.drifted_features))
    if checked.score_drift is not None:
        metrics.log_metric("score_drift_psi", checked.score_drift)
    outputs = namedtuple("Outputs", ["triggered", "drift_share"])
    return outputs(checked.triggered, checked.drift_share)
